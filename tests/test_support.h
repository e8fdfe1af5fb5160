#pragma once
// Helpers every test suite may use (tests/ is on each suite's include path).
#include "kiln/tensor/parallel.h"

namespace kiln::testing {

/// Sets the thread count for a scope and restores the previous one however the scope ends (a failed
/// ASSERT returns early): tests/test_main.cpp fails the run when a test leaves the count changed.
///   ScopedNumThreads threads(1);  ...  threads.set(2);  ...
class ScopedNumThreads {
 public:
  explicit ScopedNumThreads(int n) : saved_(get_num_threads()) { set_num_threads(n); }
  ~ScopedNumThreads() { set_num_threads(saved_); }
  ScopedNumThreads(const ScopedNumThreads&) = delete;
  ScopedNumThreads& operator=(const ScopedNumThreads&) = delete;
  void set(int n) { set_num_threads(n); }

 private:
  int saved_;
};

}  // namespace kiln::testing
