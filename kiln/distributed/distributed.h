#pragma once
// kiln::distributed — data-parallel training across processes over MPI (Open MPI, Debian's
// libopenmpi-dev). One process per rank runs the same program; `mpirun -np N ./train` starts them.
//
//   kiln::distributed::init();                       // MPI_Init; rank() and world_size() valid
//   kiln::distributed::broadcast_parameters(*net);   // every rank starts from rank 0's weights
//   kiln::distributed::DistributedDataParallel ddp(net->named_parameters());
//   for (...) {                                      // each rank: its share of the global batch
//     ddp.prepare_for_backward(n_local / double(n_global));
//     loss.backward();                               // buckets all-reduce while backward runs
//     ddp.finish_gradient_synchronization();         // grads = the global batch's mean gradient
//     optimizer.step();
//   }
//
// kiln::Model::fit does all of this by itself when the program runs under mpirun (see model.h).
//
// Collectives run on a duplicate of MPI_COMM_WORLD, non-blocking, and every wait is bounded by a
// timeout (timeout_seconds(), default 300 s, environment KILN_DIST_TIMEOUT): a rank that dies or
// hangs makes the others print which collective did not complete and call MPI_Abort, which ends
// the whole job — no rank waits forever. (A rank that exits or crashes is usually noticed sooner
// by mpirun itself, which then kills the others.)
//
// Built without MPI (libopenmpi-dev absent at configure time), rank() is 0, world_size() is 1 and
// init() and every collective throw an Error saying Kiln was built without MPI.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kiln/nn/module.h"

namespace kiln::distributed {

/// True when Kiln was built with MPI.
bool available();

/// Initialises MPI (MPI_Init_thread, MPI_THREAD_FUNNELED: only the thread that called init() may
/// run collectives; oneTBB workers never do) unless the program already did, and arranges for
/// MPI_Finalize at exit. Idempotent. Throws when Kiln was built without MPI.
void init();
/// Initialises when the process was started by a launcher for more than one process (mpirun's
/// OMPI_COMM_WORLD_SIZE, MPICH/Hydra's PMI_SIZE, or Slurm's SLURM_NTASKS with PMIx's PMIX_RANK)
/// and KILN_DISTRIBUTED is not "0". Returns whether distributed training is on (world_size() >
/// 1). Throws when such a launch finds Kiln built without MPI (N independent copies of one run
/// would otherwise train silently). Model::compile calls it.
bool init_from_environment();
/// The process count the launcher's environment announces (1 when none).
int launched_world_size();
bool is_initialized();

/// This process's rank in [0, world_size()); 0 before init().
int rank();
/// The number of processes; 1 before init().
int world_size();

/// Seconds any wait for a collective may take before the job is aborted (default 300, or the
/// environment's KILN_DIST_TIMEOUT).
double timeout_seconds();
void set_timeout_seconds(double seconds);

/// Blocks until every rank has called barrier().
void barrier();
/// Overwrites every rank's tensors with rank `root`'s, byte for byte (any dtypes; the shapes must
/// match on every rank: a mismatch is caught by comparing a fingerprint of the shapes first).
void broadcast(const std::vector<Tensor>& tensors, int root = 0);
/// Overwrites every rank's parameters and buffers with rank `root`'s (in named order).
void broadcast_parameters(nn::Module& module, int root = 0);
/// Overwrites every rank's buffers (e.g. BatchNorm running statistics) with rank `root`'s.
void broadcast_buffers(nn::Module& module, int root = 0);
/// Element-wise sum over ranks, in place; every rank gets the same values.
void all_reduce_sum(std::span<double> values);
/// The largest value over ranks.
int64_t all_reduce_max(int64_t value);
/// Every rank's `values` (any length per rank), in rank order, on every rank.
std::vector<std::vector<double>> all_gather(const std::vector<double>& values);

/// A non-blocking in-place sum all-reduce (MPI_Iallreduce) in flight over float32 or float64
/// data. MPI moves data only while some MPI call runs (Open MPI has no progress thread), so the
/// owner calls test() now and then while computing; wait() blocks, bounded by timeout_seconds().
class AllReduceRequest {
 public:
  AllReduceRequest();
  /// Starts summing `count` elements at `data` (float32 when !is_double) across ranks; `what`
  /// names the data in timeout messages. `data` must stay untouched until done.
  AllReduceRequest(void* data, int64_t count, bool is_double, std::string what);
  ~AllReduceRequest();
  AllReduceRequest(AllReduceRequest&&) noexcept;
  AllReduceRequest& operator=(AllReduceRequest&&) noexcept;
  bool pending() const;
  /// Lets MPI progress; true when complete (or never started).
  bool test();
  /// Blocks until complete; returns the seconds spent waiting.
  double wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::distributed
