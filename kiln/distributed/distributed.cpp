// Process group, collectives and the bounded wait, over MPI. Everything MPI stays in this file.
#include "kiln/distributed/distributed.h"

#include <sched.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"

#if KILN_HAVE_MPI
#include <mpi.h>
#endif

namespace kiln::distributed {
namespace {

double timeout_from_env() {
  const char* v = std::getenv("KILN_DIST_TIMEOUT");
  if (v == nullptr || *v == '\0') return 300.0;
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  KILN_CHECK(end != v && *end == '\0' && s > 0,
             "distributed: KILN_DIST_TIMEOUT must be a positive number of seconds, got \"{}\"", v);
  return s;
}

struct State {
  bool initialized = false;
  int rank = 0;
  int size = 1;
  double timeout = -1.0;  // < 0: not read from the environment yet
#if KILN_HAVE_MPI
  MPI_Comm comm = MPI_COMM_NULL;
#endif
};

State& state() {
  static State s;
  return s;
}

void require_init(const char* op) {
  KILN_CHECK(available(),
             "distributed::{}: Kiln was built without MPI (install Debian's libopenmpi-dev and "
             "openmpi-bin, then configure CMake again)",
             op);
  KILN_CHECK(state().initialized,
             "distributed::{}: MPI is not initialised (call kiln::distributed::init() first, and "
             "start the program with mpirun -np N)",
             op);
}

// Reads an integer environment variable; 0 when absent or not a number.
int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::atoi(v) : 0;
}

}  // namespace

int launched_world_size() {
  if (int n = env_int("OMPI_COMM_WORLD_SIZE"); n > 0) return n;  // Open MPI's mpirun
  if (int n = env_int("PMI_SIZE"); n > 0) return n;              // MPICH / Hydra, Slurm PMI-2
  if (std::getenv("PMIX_RANK") != nullptr)                       // Slurm srun --mpi=pmix
    if (int n = env_int("SLURM_NTASKS"); n > 0) return n;
  return 1;
}

bool init_from_environment() {
  const int n = launched_world_size();
  const char* off = std::getenv("KILN_DISTRIBUTED");
  if (n <= 1 || (off != nullptr && std::string(off) == "0"))
    return state().initialized && state().size > 1;
  KILN_CHECK(available(),
             "distributed: this process is one of {} started by a launcher (mpirun / srun), but "
             "Kiln was built without MPI, so each would train alone on all the data. Install "
             "Debian's libopenmpi-dev and rebuild, or set KILN_DISTRIBUTED=0 to run independent "
             "copies on purpose",
             n);
  init();
  return state().size > 1;
}

bool is_initialized() {
  return state().initialized;
}
int rank() {
  return state().rank;
}
int world_size() {
  return state().size;
}

double timeout_seconds() {
  State& s = state();
  if (s.timeout < 0) s.timeout = timeout_from_env();
  return s.timeout;
}

void set_timeout_seconds(double seconds) {
  KILN_CHECK(seconds > 0, "distributed::set_timeout_seconds: must be positive, got {}", seconds);
  state().timeout = seconds;
}

void broadcast_parameters(nn::Module& module, int root) {
  std::vector<Tensor> all;
  for (auto& [name, p] : module.named_parameters()) all.push_back(p);
  for (auto& [name, b] : module.named_buffers()) all.push_back(b);
  broadcast(all, root);
}

void broadcast_buffers(nn::Module& module, int root) {
  std::vector<Tensor> all;
  for (auto& [name, b] : module.named_buffers()) all.push_back(b);
  if (!all.empty()) broadcast(all, root);
}

#if KILN_HAVE_MPI
// ======================================================================= with MPI

namespace {

void check_mpi(int rc, const char* op) {
  if (rc == MPI_SUCCESS) return;
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, buf, &len);
  throw Error(fmt::format("distributed::{}: MPI error: {}", op, std::string(buf, len)));
}

int checked_count(int64_t n, const char* op) {
  KILN_CHECK(n >= 0 && n <= INT_MAX, "distributed::{}: {} elements exceed MPI's int count limit {}",
             op, n, INT_MAX);
  return static_cast<int>(n);
}

[[noreturn]] void abort_job(const std::string& what, double limit) {
  std::fprintf(stderr,
               "kiln::distributed: rank %d of %d: %s did not complete within %g s "
               "(KILN_DIST_TIMEOUT): another rank has died, hung, or stopped calling the same "
               "collectives. Aborting the job.\n",
               state().rank, state().size, what.c_str(), limit);
  std::fflush(stderr);
  MPI_Abort(state().comm != MPI_COMM_NULL ? state().comm : MPI_COMM_WORLD, 3);
  std::abort();
}

// Waits for `req` by polling MPI_Test (which is also what progresses the collective: Open MPI has
// no progress thread), bounded by timeout_seconds(). For the first second each poll is followed by
// sched_yield() — the collective's rounds need both ranks polling, so a sleep here would add its
// length to every round, while yield costs nothing when no other thread wants the core; after
// that each poll sleeps 1 ms, so a long wait (a peer still validating, or a hung peer) leaves the
// CPU to others.
double wait_request(MPI_Request& req, const std::string& what) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const double limit = timeout_seconds();
  for (;;) {
    int done = 0;
    check_mpi(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "wait");
    if (done) return std::chrono::duration<double>(clock::now() - t0).count();
    const double waited = std::chrono::duration<double>(clock::now() - t0).count();
    if (waited > limit) abort_job(what, limit);
    if (waited < 1.0) {
      sched_yield();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
}

void finalize_at_exit() {
  State& s = state();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (s.comm != MPI_COMM_NULL) MPI_Comm_free(&s.comm);
  MPI_Finalize();
}

}  // namespace

bool available() {
  return true;
}

void init() {
  State& s = state();
  if (s.initialized) return;
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    int provided = 0;
    check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "init");
    // Finalise only what Kiln initialised; a program that called MPI_Init finalises itself.
    std::atexit(finalize_at_exit);
  }
  // Kiln's own communicator: its collectives never match a user's messages on MPI_COMM_WORLD.
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &s.comm), "init");
  MPI_Comm_set_errhandler(s.comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(s.comm, &s.rank);
  MPI_Comm_size(s.comm, &s.size);
  s.initialized = true;
}

void barrier() {
  require_init("barrier");
  MPI_Request req;
  check_mpi(MPI_Ibarrier(state().comm, &req), "barrier");
  wait_request(req, "barrier");
}

void all_reduce_sum(std::span<double> values) {
  require_init("all_reduce_sum");
  MPI_Request req;
  check_mpi(MPI_Iallreduce(MPI_IN_PLACE, values.data(),
                           checked_count(static_cast<int64_t>(values.size()), "all_reduce_sum"),
                           MPI_DOUBLE, MPI_SUM, state().comm, &req),
            "all_reduce_sum");
  wait_request(req, "all_reduce_sum");
}

int64_t all_reduce_max(int64_t value) {
  require_init("all_reduce_max");
  MPI_Request req;
  check_mpi(MPI_Iallreduce(MPI_IN_PLACE, &value, 1, MPI_INT64_T, MPI_MAX, state().comm, &req),
            "all_reduce_max");
  wait_request(req, "all_reduce_max");
  return value;
}

std::vector<std::vector<double>> all_gather(const std::vector<double>& values) {
  require_init("all_gather");
  const State& s = state();
  int mine = checked_count(static_cast<int64_t>(values.size()), "all_gather");
  std::vector<int> counts(static_cast<size_t>(s.size)), offsets(static_cast<size_t>(s.size));
  MPI_Request req;
  check_mpi(MPI_Iallgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, s.comm, &req),
            "all_gather");
  wait_request(req, "all_gather (lengths)");
  int64_t total = 0;
  for (size_t r = 0; r < counts.size(); ++r) {
    offsets[r] = checked_count(total, "all_gather");
    total += counts[r];
  }
  std::vector<double> flat(static_cast<size_t>(total));
  check_mpi(MPI_Iallgatherv(values.data(), mine, MPI_DOUBLE, flat.data(), counts.data(),
                            offsets.data(), MPI_DOUBLE, s.comm, &req),
            "all_gather");
  wait_request(req, "all_gather");
  std::vector<std::vector<double>> out(counts.size());
  for (size_t r = 0; r < counts.size(); ++r)
    out[r].assign(flat.begin() + offsets[r], flat.begin() + offsets[r] + counts[r]);
  return out;
}

void broadcast(const std::vector<Tensor>& tensors, int root) {
  require_init("broadcast");
  const State& s = state();
  KILN_CHECK(root >= 0 && root < s.size, "distributed::broadcast: root {} is not a rank in [0, {})",
             root, s.size);
  // Fingerprint of the layout (FNV-1a over dtypes and shapes): ranks whose tensors differ from the
  // root's all throw, rather than copy bytes into the wrong places.
  uint64_t fp = 1469598103934665603ULL;
  auto mix = [&](uint64_t v) { fp = (fp ^ v) * 1099511628211ULL; };
  int64_t bytes = 0;
  for (const Tensor& t : tensors) {
    mix(static_cast<uint64_t>(t.dtype()));
    for (int64_t d : t.shape()) mix(static_cast<uint64_t>(d));
    mix(0xFFFF);
    bytes += static_cast<int64_t>(t.data().nbytes());
  }
  uint64_t root_fp = fp;
  MPI_Request req;
  check_mpi(MPI_Ibcast(&root_fp, 1, MPI_UINT64_T, root, s.comm, &req), "broadcast");
  wait_request(req, "broadcast (layout)");
  const int64_t mismatch = all_reduce_max(root_fp != fp ? 1 : 0);
  KILN_CHECK(mismatch == 0,
             "distributed::broadcast: the {} tensors differ in dtype or shape between ranks (this "
             "is rank {}; its layout {} the root's): every rank must build the same model",
             tensors.size(), s.rank, root_fp == fp ? "matches" : "differs from");
  std::vector<char> buf(static_cast<size_t>(bytes));
  if (s.rank == root) {
    size_t at = 0;
    for (const Tensor& t : tensors) {
      const Array c = t.data().contiguous();
      std::memcpy(buf.data() + at, c.raw_data(), c.nbytes());
      at += c.nbytes();
    }
  }
  // MPI counts are ints: send in pieces of at most 1 GiB.
  constexpr int64_t kPiece = int64_t{1} << 30;
  for (int64_t at = 0; at < bytes; at += kPiece) {
    const int n = static_cast<int>(std::min(kPiece, bytes - at));
    check_mpi(MPI_Ibcast(buf.data() + at, n, MPI_BYTE, root, s.comm, &req), "broadcast");
    wait_request(req, "broadcast");
  }
  if (s.rank != root) {
    size_t at = 0;
    for (const Tensor& t : tensors) {
      const Array& a = t.data();
      Array src = kernels::empty(a.shape(), a.dtype());
      std::memcpy(src.raw_data(), buf.data() + at, a.nbytes());
      a.copy_(src);  // handles strided destinations and bumps the version counter
      at += a.nbytes();
    }
  }
}

struct AllReduceRequest::Impl {
  MPI_Request req = MPI_REQUEST_NULL;
  std::string what;
};

AllReduceRequest::AllReduceRequest() = default;
AllReduceRequest::~AllReduceRequest() {
  // Never leave MPI writing into freed memory: a request destroyed in flight is completed first.
  if (impl_ && impl_->req != MPI_REQUEST_NULL) wait_request(impl_->req, impl_->what);
}
AllReduceRequest::AllReduceRequest(AllReduceRequest&&) noexcept = default;
AllReduceRequest& AllReduceRequest::operator=(AllReduceRequest&& other) noexcept {
  if (this != &other) {
    if (pending()) wait();  // the buffer of a request replaced in flight must not be written later
    impl_ = std::move(other.impl_);
  }
  return *this;
}

AllReduceRequest::AllReduceRequest(void* data, int64_t count, bool is_double, std::string what)
    : impl_(std::make_unique<Impl>()) {
  require_init("all_reduce");
  impl_->what = std::move(what);
  check_mpi(MPI_Iallreduce(MPI_IN_PLACE, data, checked_count(count, "all_reduce"),
                           is_double ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, state().comm, &impl_->req),
            "all_reduce");
}

bool AllReduceRequest::pending() const {
  return impl_ && impl_->req != MPI_REQUEST_NULL;
}

bool AllReduceRequest::test() {
  if (!pending()) return true;
  int done = 0;
  check_mpi(MPI_Test(&impl_->req, &done, MPI_STATUS_IGNORE), "all_reduce");
  return done != 0;
}

double AllReduceRequest::wait() {
  if (!pending()) return 0.0;
  return wait_request(impl_->req, impl_->what);
}

#else
// ======================================================================= without MPI

bool available() {
  return false;
}
void init() {
  require_init("init");
}
void barrier() {
  require_init("barrier");
}
void all_reduce_sum(std::span<double>) {
  require_init("all_reduce_sum");
}
int64_t all_reduce_max(int64_t value) {
  require_init("all_reduce_max");
  return value;
}
std::vector<std::vector<double>> all_gather(const std::vector<double>&) {
  require_init("all_gather");
  return {};
}
void broadcast(const std::vector<Tensor>&, int) {
  require_init("broadcast");
}

struct AllReduceRequest::Impl {};
AllReduceRequest::AllReduceRequest() = default;
AllReduceRequest::~AllReduceRequest() = default;
AllReduceRequest::AllReduceRequest(AllReduceRequest&&) noexcept = default;
AllReduceRequest& AllReduceRequest::operator=(AllReduceRequest&&) noexcept = default;
AllReduceRequest::AllReduceRequest(void*, int64_t, bool, std::string) {
  require_init("all_reduce");
}
bool AllReduceRequest::pending() const {
  return false;
}
bool AllReduceRequest::test() {
  return true;
}
double AllReduceRequest::wait() {
  return 0.0;
}

#endif

}  // namespace kiln::distributed
