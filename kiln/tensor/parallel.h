#pragma once
// Threading. One pool: oneTBB's. OpenBLAS and oneDNN are kept single-threaded and kernels::gemm
// splits large products over oneTBB's workers, so BLAS may be called from inside a parallel_for
// body and two thread pools never compete for the cores.
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace kiln {

/// Sets the threads used by Kiln's loops and GEMMs (oneTBB). n >= 1.
void set_num_threads(int n);
/// Current thread count (defaults to the hardware concurrency, or KILN_NUM_THREADS if set).
int get_num_threads();

/// A non-owning callable reference (no allocation), for parallel_for bodies.
template <typename Sig>
class FunctionRef;
template <typename R, typename... A>
class FunctionRef<R(A...)> {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f)  // NOLINT(google-explicit-constructor)
      : obj_(const_cast<void*>(static_cast<const void*>(&f))), call_([](void* o, A... a) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<A>(a)...);
        }) {}
  R operator()(A... a) const { return call_(obj_, std::forward<A>(a)...); }

 private:
  void* obj_;
  R (*call_)(void*, A...);
};

/// Elements per task below which loops stay serial.
constexpr int64_t kGrainSize = 32768;

/// Calls body(b, e) over disjoint chunks covering [begin, end). Serial when the range is at most
/// `grain` or one thread is set; otherwise oneTBB splits it. Chunk boundaries never change results
/// of elementwise work; reductions combine chunk results in a fixed order.
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  FunctionRef<void(int64_t, int64_t)> body);

/// Runs a() and b() concurrently and returns when both have finished (rethrowing what either
/// threw). Each branch gets half of the threads: with two, loops and GEMMs inside a branch run
/// serially, because two independent products on one core each beat each product split over both
/// (a split small GEMM loses ~25% to packing and edges). With one thread: a() then b().
void parallel_invoke(FunctionRef<void()> a, FunctionRef<void()> b);

/// Backward ops run their input and weight gradients with parallel_invoke when each product is
/// below this many multiply-adds. Measured at two threads: W3's 128×512×256 linears and W4's
/// convolutions gain 5–15%; W5's 2048-row products (≥ 2²⁷) split at full rate and lose ~3%.
constexpr int64_t kSideBySideMacs = int64_t{1} << 25;

/// The threads a loop or GEMM started here may use: get_num_threads(), or inside a
/// parallel_invoke branch that branch's share of them (at least 1).
int available_threads();

/// parallel_for over n independent entries (grain 1), e.g. the (batch, head) products of attention.
/// With at least two entries per thread, the loops and GEMMs inside a task run on its thread
/// instead of splitting again: W5's 128 (128 × 128 × 64) attention products
/// at 2 threads took 3.0 ms split, 2.4 ms not (Zen 5).
void parallel_entries(int64_t n, FunctionRef<void(int64_t, int64_t)> body);

/// Runs `fn` on a oneTBB worker (the data loader's background prefetch). wait() blocks until it has
/// finished and rethrows anything it threw; the destructor waits too. With one thread set, the task
/// runs inside wait() on the calling thread.
class AsyncTask {
 public:
  explicit AsyncTask(std::function<void()> fn);
  ~AsyncTask();
  AsyncTask(const AsyncTask&) = delete;
  AsyncTask& operator=(const AsyncTask&) = delete;
  void wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln
