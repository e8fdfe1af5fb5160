#pragma once
// DistributedDataParallel: gradient averaging across ranks that overlaps backward (PyTorch DDP's
// reducer, over MPI_Iallreduce).
//
// The trainable parameters are split, in reverse registration order (roughly the order backward
// produces their gradients), into buckets of at most bucket_cap_mb of gradient each, per dtype. A
// hook on each parameter's gradient accumulator (Tensor::register_post_accumulate_grad_hook)
// copies the finished gradient, scaled by this rank's weight, into its bucket; when a bucket's
// last gradient arrives, the bucket starts a non-blocking in-place sum all-reduce while backward
// goes on computing the gradients of earlier layers. Buckets start strictly in index order on
// every rank (collectives must match across ranks); finish_gradient_synchronization() starts any
// bucket not started yet, waits for all of them and writes the sums back into .grad.
//
// Weights: with weight_r = n_r / N (this rank's samples over the global batch's) and each rank's
// loss a mean over its own samples, Σ_r weight_r · grad_r is the gradient of the mean loss over
// the global batch — the single-process gradient, up to float rounding, also when the ranks' shares
// differ in size (an empty share has weight 0).
//
// A parameter that gets no gradient on a rank (unused in its forward) counts as zero there; each
// bucket carries one flag per parameter, summed with the gradients, so a parameter no rank touched
// keeps an undefined .grad on every rank (optimisers skip it) exactly as in one process.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/distributed/distributed.h"
#include "kiln/nn/module.h"

namespace kiln::distributed {

struct DistributedDataParallelOptions {
  /// Gradient megabytes (10⁶ bytes) per bucket; PyTorch's default is 25.
  double bucket_cap_mb = 25.0;
};

/// Counters since construction or reset_stats().
struct DdpStats {
  int64_t steps = 0;                        // finish_gradient_synchronization() calls
  double wait_seconds = 0.0;                // blocked waiting for buckets in finish
  int64_t buckets_started_in_backward = 0;  // by the hooks: overlapped with backward
  int64_t buckets_started_at_finish = 0;    // by finish (unused parameters, or out of order)
  int64_t bytes_reduced = 0;                // gradient bytes all-reduced (flags not counted)
};

class DistributedDataParallel {
 public:
  /// `params`: the parameters to average (those that do not require grad are skipped), in the
  /// module's registration order (named_parameters()). Every rank must pass the same list: the
  /// constructor compares a fingerprint of the names, shapes and dtypes across ranks and throws on
  /// every rank when one differs. Needs distributed::init().
  explicit DistributedDataParallel(nn::NamedTensors params,
                                   DistributedDataParallelOptions options = {});
  ~DistributedDataParallel();
  DistributedDataParallel(const DistributedDataParallel&) = delete;
  DistributedDataParallel& operator=(const DistributedDataParallel&) = delete;

  /// Arms the hooks for the next backward. weight: this rank's share n_local / n_global of the
  /// global batch (see above); < 0 means 1 / world_size().
  void prepare_for_backward(double weight = -1.0);
  /// Starts the buckets the backward did not, waits for every bucket (bounded by
  /// timeout_seconds()) and sets each parameter's .grad to the weighted sum over ranks.
  void finish_gradient_synchronization();

  int64_t num_buckets() const;
  /// Parameter names per bucket, in start order.
  std::vector<std::vector<std::string>> bucket_parameter_names() const;
  const DdpStats& stats() const;
  void reset_stats();

 private:
  struct Reducer;
  std::unique_ptr<Reducer> r_;
};

}  // namespace kiln::distributed
