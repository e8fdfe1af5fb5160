#include "kiln/tensor/parallel.h"

#include <cblas.h>
#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_invoke.h>
#include <tbb/task_group.h>

#include <exception>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>

#include "kiln/tensor/error.h"

namespace kiln {
namespace {

struct ThreadState {
  std::mutex mu;
  int n = 0;
  std::unique_ptr<tbb::global_control> control;
};

ThreadState& state() {
  static ThreadState s;
  return s;
}

int initial_threads() {
  if (const char* env = std::getenv("KILN_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

void apply(ThreadState& s, int n) {
  s.n = n;
  s.control = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                    static_cast<size_t>(n));
  // OpenBLAS stays single-threaded: kernels::gemm splits its work over oneTBB's workers, so one
  // pool owns the cores (two pools spinning against each other on 2 cores cost more than BLAS's
  // own split gains).
  openblas_set_num_threads(1);
}

void ensure_init() {
  ThreadState& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.n == 0) apply(s, initial_threads());
}

}  // namespace

void set_num_threads(int n) {
  KILN_CHECK(n >= 1, "set_num_threads: n must be >= 1, got {}", n);
  ThreadState& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  apply(s, n);
}

int get_num_threads() {
  ensure_init();
  return state().n;
}

namespace {
// Inside a parallel_invoke branch: that branch's share of the threads; inside a parallel_entries
// task with serial bodies: 1; 0 elsewhere.
thread_local int t_branch_threads = 0;

// Sets this thread's share for a branch or task and restores it however that ends.
struct Share {
  int prev = t_branch_threads;
  explicit Share(int n) { t_branch_threads = n; }
  ~Share() { t_branch_threads = prev; }
  Share(const Share&) = delete;
  Share& operator=(const Share&) = delete;
};
}  // namespace

int available_threads() {
  return t_branch_threads > 0 ? t_branch_threads : get_num_threads();
}

void parallel_entries(int64_t n, FunctionRef<void(int64_t, int64_t)> body) {
  const bool serial_inside = n >= 2 * int64_t{available_threads()};
  parallel_for(0, n, 1, [&](int64_t i0, int64_t i1) {
    if (!serial_inside) return body(i0, i1);
    Share one(1);
    body(i0, i1);
  });
}

void parallel_invoke(FunctionRef<void()> a, FunctionRef<void()> b) {
  const int n = available_threads();
  if (n == 1) {
    a();
    b();
    return;
  }
  auto branch = [share = std::max(1, n / 2)](FunctionRef<void()> f) {
    Share s(share);
    f();
  };
  tbb::parallel_invoke([&] { branch(a); }, [&] { branch(b); });
}

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  FunctionRef<void(int64_t, int64_t)> body) {
  if (end <= begin) return;
  grain = std::max<int64_t>(grain, 1);
  int n = available_threads();
  if (n == 1 || end - begin <= grain) {
    body(begin, end);
    return;
  }
  // At most a few chunks per thread: small bodies stay cheap, and the split is deterministic.
  int64_t chunks = std::min<int64_t>((end - begin + grain - 1) / grain, int64_t{4} * n);
  int64_t step = (end - begin + chunks - 1) / chunks;
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, chunks, 1),
      [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t c = r.begin(); c != r.end(); ++c) {
          int64_t b = begin + c * step, e = std::min(end, b + step);
          if (b < e) body(b, e);
        }
      },
      tbb::simple_partitioner());
}

struct AsyncTask::Impl {
  tbb::task_group group;
  std::exception_ptr error;
  bool waited = false;
};

AsyncTask::AsyncTask(std::function<void()> fn) : impl_(std::make_unique<Impl>()) {
  get_num_threads();  // apply the thread setting before the first task
  Impl* impl = impl_.get();
  impl_->group.run([impl, fn = std::move(fn)] {
    try {
      fn();
    } catch (...) {
      impl->error = std::current_exception();
    }
  });
}

AsyncTask::~AsyncTask() {
  if (impl_ && !impl_->waited) impl_->group.wait();
}

void AsyncTask::wait() {
  if (!impl_->waited) {
    impl_->group.wait();
    impl_->waited = true;
  }
  if (impl_->error) std::rethrow_exception(impl_->error);
}

}  // namespace kiln
