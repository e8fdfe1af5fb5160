#include "kiln/distributed/sampler.h"

#include <algorithm>
#include <numeric>

#include "kiln/distributed/distributed.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"

namespace kiln::distributed {

DistributedSampler::DistributedSampler(int64_t size, DistributedSamplerOptions o)
    : size_(size),
      o_(o),
      rank_(o.rank >= 0 ? o.rank : distributed::rank()),
      world_(o.world_size >= 0 ? o.world_size : distributed::world_size()) {
  KILN_CHECK(size >= 0, "DistributedSampler: size must be >= 0, got {}", size);
  KILN_CHECK(o.batch_size > 0, "DistributedSampler: batch_size must be positive, got {}",
             o.batch_size);
  KILN_CHECK(world_ >= 1 && rank_ >= 0 && rank_ < world_,
             "DistributedSampler: rank {} is not in [0, world_size = {})", rank_, world_);
  KILN_CHECK(o.lengths.empty() || static_cast<int64_t>(o.lengths.size()) == size,
             "DistributedSampler: lengths has {} entries but there are {} samples (need one per "
             "sample, or none)",
             o.lengths.size(), size);
  set_epoch(0);
}

void DistributedSampler::set_epoch(int64_t epoch) {
  order_.resize(static_cast<size_t>(size_));
  if (!o_.shuffle) {
    std::iota(order_.begin(), order_.end(), int64_t{0});
    return;
  }
  Generator g(mix_seed(o_.seed, static_cast<uint64_t>(epoch)));
  const Array perm = kernels::randperm(size_, &g);
  const int64_t* p = perm.data<int64_t>();
  order_.assign(p, p + size_);
  if (o_.lengths.empty()) return;
  const int64_t run = kLengthGroupBatches * o_.batch_size;
  const auto& len = o_.lengths;
  for (int64_t begin = 0; begin < size_; begin += run) {
    const auto first = order_.begin() + begin;
    const auto last = order_.begin() + std::min(size_, begin + run);
    std::stable_sort(first, last, [&](int64_t a, int64_t b) {
      return len[static_cast<size_t>(a)] > len[static_cast<size_t>(b)];
    });
  }
}

int64_t DistributedSampler::num_batches() const {
  return (size_ + o_.batch_size - 1) / o_.batch_size;
}

int64_t DistributedSampler::global_batch_size(int64_t b) const {
  KILN_CHECK(b >= 0 && b < num_batches(), "DistributedSampler: batch {} is not in [0, {})", b,
             num_batches());
  return std::min(o_.batch_size, size_ - b * o_.batch_size);
}

std::vector<int64_t> DistributedSampler::batch_indices(int64_t b) const {
  const int64_t begin = b * o_.batch_size, end = begin + global_batch_size(b);
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>((end - begin + world_ - 1) / world_));
  for (int64_t i = begin + rank_; i < end; i += world_)
    out.push_back(order_[static_cast<size_t>(i)]);
  return out;
}

std::vector<int64_t> DistributedSampler::indices() const {
  std::vector<int64_t> out;
  for (int64_t b = 0; b < num_batches(); ++b) {
    std::vector<int64_t> part = batch_indices(b);
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

}  // namespace kiln::distributed
