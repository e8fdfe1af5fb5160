#pragma once
// DistributedSampler: which samples each rank trains on, per epoch and per global batch.
//
// All ranks draw the same permutation of [0, size) from (seed, epoch) (identity without shuffle)
// and cut it into global batches of batch_size. Rank r's share of global batch b is every W-th
// position of it starting at r (W = world size): shares are disjoint, together they are exactly
// the global batch, and they differ in size by at most one. So W ranks with shares of one global
// batch see the same samples per step as one process with the whole batch — which is what makes
// distributed training reproduce single-process training (see ddp.h for the gradient side), and
// why a checkpoint resumes at any world size. At W = 1 the order is Model::fit's own.
//
//   distributed::DistributedSampler sampler(n, {.batch_size = 64, .seed = 1});
//   for (int epoch = 0; epoch < 3; ++epoch) {
//     sampler.set_epoch(epoch);                       // reshuffles (same on every rank)
//     for (int64_t b = 0; b < sampler.num_batches(); ++b) {
//       std::vector<int64_t> mine = sampler.batch_indices(b);   // ~64 / W positions
//       ...
//     }
//   }
#include <cstdint>
#include <vector>

namespace kiln::distributed {

struct DistributedSamplerOptions {
  /// The global batch: all ranks' shares together.
  int64_t batch_size = 32;
  bool shuffle = true;
  uint64_t seed = 0;
  /// -1: distributed::rank() / distributed::world_size().
  int rank = -1;
  int world_size = -1;
  /// Group by length (Hugging Face's group_by_length): one length per sample. When set (and
  /// shuffling), every run of kLengthGroupBatches global batches of the shuffled order is sorted
  /// by length, longest first (stable: equal lengths keep the shuffled order), so a batch holds
  /// texts of similar length and pads less. Empty: off.
  std::vector<int64_t> lengths = {};
};

/// Global batches per length-sorted run (DistributedSamplerOptions::lengths), as in Hugging Face's
/// LengthGroupedSampler ("megabatches" of 50 batches).
inline constexpr int64_t kLengthGroupBatches = 50;

class DistributedSampler {
 public:
  /// Samples 0 .. size-1 (positions; map them to rows as the caller likes).
  explicit DistributedSampler(int64_t size, DistributedSamplerOptions options = {});
  /// Draws epoch `epoch`'s order (a permutation seeded by mix_seed(seed, epoch)).
  void set_epoch(int64_t epoch);
  int64_t size() const { return size_; }
  int rank() const { return rank_; }
  int world_size() const { return world_; }
  /// Global batches per epoch, ceil(size / batch_size): the same on every rank.
  int64_t num_batches() const;
  /// Samples in global batch b (all ranks' shares).
  int64_t global_batch_size(int64_t b) const;
  /// This rank's share of global batch b: order[b·B + rank + k·W] for k = 0, 1, ... (may be
  /// empty when the last batch has fewer samples than ranks).
  std::vector<int64_t> batch_indices(int64_t b) const;
  /// Every sample this rank sees this epoch (its shares in batch order): disjoint from the other
  /// ranks', and together they cover [0, size) once.
  std::vector<int64_t> indices() const;
  /// This epoch's order of all samples.
  const std::vector<int64_t>& order() const { return order_; }

 private:
  int64_t size_;
  DistributedSamplerOptions o_;
  int rank_, world_;
  std::vector<int64_t> order_;
};

}  // namespace kiln::distributed
