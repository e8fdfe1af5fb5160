// DistributedSampler: disjoint shares that together are each global batch, reshuffled per epoch
// from one seed, and at one rank the order Model::fit always used. No MPI needed (rank and world
// size are given).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "kiln/distributed/sampler.h"
#include "kiln/tensor/creation.h"

namespace {

using kiln::distributed::DistributedSampler;
using kiln::distributed::DistributedSamplerOptions;

DistributedSampler make(int64_t n, int rank, int world, int64_t batch, uint64_t seed = 3) {
  return DistributedSampler(
      n, {.batch_size = batch, .shuffle = true, .seed = seed, .rank = rank, .world_size = world});
}

TEST(DistributedSampler, SharesPartitionEveryGlobalBatch) {
  const int64_t n = 103, batch = 10;  // the last batch has 3 samples: one rank of 4 gets none
  for (int world : {1, 2, 3, 4}) {
    std::vector<DistributedSampler> ranks;
    for (int r = 0; r < world; ++r) ranks.push_back(make(n, r, world, batch));
    for (auto& s : ranks) s.set_epoch(5);
    ASSERT_EQ(ranks[0].num_batches(), 11);
    for (int64_t b = 0; b < ranks[0].num_batches(); ++b) {
      std::vector<int64_t> together;
      size_t smallest = SIZE_MAX, largest = 0;
      for (auto& s : ranks) {
        auto part = s.batch_indices(b);
        smallest = std::min(smallest, part.size());
        largest = std::max(largest, part.size());
        together.insert(together.end(), part.begin(), part.end());
      }
      // The same samples as one process's batch b, each once; shares differ by at most one.
      const auto& order = ranks[0].order();
      std::vector<int64_t> whole(order.begin() + b * batch,
                                 order.begin() + std::min(n, (b + 1) * batch));
      std::sort(together.begin(), together.end());
      std::sort(whole.begin(), whole.end());
      EXPECT_EQ(together, whole) << "world " << world << " batch " << b;
      EXPECT_LE(largest - smallest, 1u);
    }
    // Over the epoch: disjoint shares covering every sample once.
    std::set<int64_t> seen;
    size_t total = 0;
    for (auto& s : ranks) {
      auto mine = s.indices();
      total += mine.size();
      seen.insert(mine.begin(), mine.end());
    }
    EXPECT_EQ(total, static_cast<size_t>(n));
    EXPECT_EQ(seen.size(), static_cast<size_t>(n));
  }
}

TEST(DistributedSampler, ReshufflesPerEpochTheSameOnEveryRank) {
  auto a = make(50, 0, 2, 8), b = make(50, 1, 2, 8);
  a.set_epoch(1);
  b.set_epoch(1);
  EXPECT_EQ(a.order(), b.order());
  const auto first = a.order();
  a.set_epoch(2);
  EXPECT_NE(a.order(), first);
  a.set_epoch(1);
  EXPECT_EQ(a.order(), first);  // a function of (seed, epoch) only
  auto other_seed = make(50, 0, 2, 8, /*seed=*/4);
  other_seed.set_epoch(1);
  EXPECT_NE(other_seed.order(), first);
}

TEST(DistributedSampler, OneRankKeepsFitsOrder) {
  // Model::fit's order before the sampler existed: randperm from Generator(mix_seed(seed, epoch)).
  auto s = make(40, 0, 1, 7, /*seed=*/11);
  s.set_epoch(3);
  kiln::Generator g(kiln::mix_seed(11, 3));
  kiln::Array perm = kiln::kernels::randperm(40, &g);
  std::vector<int64_t> want(perm.data<int64_t>(), perm.data<int64_t>() + 40);
  EXPECT_EQ(s.order(), want);
  EXPECT_EQ(s.batch_indices(1), std::vector<int64_t>(want.begin() + 7, want.begin() + 14));
  DistributedSampler plain(5, {.batch_size = 2, .shuffle = false, .rank = 0, .world_size = 1});
  EXPECT_EQ(plain.indices(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

TEST(DistributedSampler, BadArgumentsNameTheRule) {
  EXPECT_THROW(make(10, 2, 2, 4), kiln::Error);
  EXPECT_THROW(make(10, 0, 2, 0), kiln::Error);
  auto s = make(10, 0, 2, 4);
  EXPECT_THROW(s.batch_indices(3), kiln::Error);
}

// Group by length: each run of kLengthGroupBatches global batches of the shuffled order is the
// same set of samples as without lengths, sorted longest first (ties keep the shuffled order).
TEST(DistributedSampler, GroupByLengthSortsEachRunOfBatchesOfTheShuffledOrder) {
  const int64_t n = 1234, batch = 8;
  std::vector<int64_t> lengths(n);
  for (int64_t i = 0; i < n; ++i) lengths[static_cast<size_t>(i)] = (i * 7919) % 61;
  DistributedSampler plain(n, {.batch_size = batch, .seed = 5, .rank = 0, .world_size = 1});
  DistributedSampler grouped(
      n, {.batch_size = batch, .seed = 5, .rank = 0, .world_size = 1, .lengths = lengths});
  plain.set_epoch(2);
  grouped.set_epoch(2);
  const int64_t run = kiln::distributed::kLengthGroupBatches * batch;  // 400 samples
  for (int64_t begin = 0; begin < n; begin += run) {
    const int64_t end = std::min(n, begin + run);
    std::vector<int64_t> want(plain.order().begin() + begin, plain.order().begin() + end);
    std::stable_sort(want.begin(), want.end(), [&](int64_t a, int64_t b) {
      return lengths[static_cast<size_t>(a)] > lengths[static_cast<size_t>(b)];
    });
    const std::vector<int64_t> got(grouped.order().begin() + begin, grouped.order().begin() + end);
    EXPECT_EQ(got, want) << "run starting at " << begin;
  }
  // Padding to each batch's longest: far fewer padded positions than the plain order.
  auto padded = [&](const DistributedSampler& s) {
    int64_t total = 0;
    for (int64_t b = 0; b < s.num_batches(); ++b) {
      int64_t longest = 0;
      for (int64_t i : s.batch_indices(b))
        longest = std::max(longest, lengths[static_cast<size_t>(i)]);
      total += longest * s.global_batch_size(b);
    }
    return total;
  };
  EXPECT_LT(padded(grouped), padded(plain) * 3 / 4);
  // One length per sample, or none.
  EXPECT_THROW(
      DistributedSampler(
          n,
          {.batch_size = batch, .rank = 0, .world_size = 1, .lengths = std::vector<int64_t>(5, 1)}),
      kiln::Error);
}

}  // namespace
