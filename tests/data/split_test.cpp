// Seeded splits: determinism, partition properties, class proportions, pinned outputs.
#include "kiln/data/split.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "kiln/tensor/error.h"

namespace kiln::data {
namespace {

// train ∪ test = 0..n-1, disjoint, each sorted.
void expect_partition(const SplitIndices& s, size_t n) {
  EXPECT_TRUE(std::is_sorted(s.train.begin(), s.train.end()));
  EXPECT_TRUE(std::is_sorted(s.test.begin(), s.test.end()));
  std::vector<size_t> all = s.train;
  all.insert(all.end(), s.test.begin(), s.test.end());
  std::sort(all.begin(), all.end());
  std::vector<size_t> want(n);
  std::iota(want.begin(), want.end(), size_t{0});
  EXPECT_EQ(all, want);
}

TEST(SplitMix64, MatchesTheReferenceSequence) {
  // Vigna's splitmix64.c seeded with 0.
  SplitMix64 rng(0);
  EXPECT_EQ(rng.next(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(rng.next(), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(rng.next(), 0x06c45d188009454fULL);
}

TEST(SplitMix64, BoundedIsInRangeAndRoughlyUniform) {
  SplitMix64 rng(7);
  std::vector<int> counts(6);
  for (int i = 0; i < 60000; ++i) ++counts[rng.bounded(6)];
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);  // ~4.3 sigma for Binomial(60000, 1/6)
  EXPECT_EQ(rng.bounded(1), 0u);
  EXPECT_THROW(rng.bounded(0), Error);
}

TEST(TrainTestSplit, DeterministicPartitionOfTheRightSize) {
  const SplitIndices a = train_test_split(100, 0.2, 42);
  const SplitIndices b = train_test_split(100, 0.2, 42);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.test, b.test);
  EXPECT_EQ(a.test.size(), 20u);
  expect_partition(a, 100);
  EXPECT_NE(train_test_split(100, 0.2, 43).test, a.test);
  EXPECT_EQ(train_test_split(7, 0.5, 1).test.size(), 4u);  // round(3.5) = 4
  EXPECT_EQ(train_test_split(10, 0.0, 1).test.size(), 0u);
  EXPECT_EQ(train_test_split(10, 1.0, 1).train.size(), 0u);
  EXPECT_EQ(train_test_split(0, 0.3, 1).train.size(), 0u);
  EXPECT_THROW(train_test_split(10, 1.5, 1), Error);
  EXPECT_THROW(train_test_split(10, NAN, 1), Error);
}

TEST(TrainTestSplit, PinnedOutputForSeed42) {
  // Pins the generator + bounded draw + Fisher-Yates so a change to any is noticed (the split must
  // be the same on every platform and standard library). Expected values come from an independent
  // Python transcription of splitmix64, Lemire's draw and Durstenfeld's loop, not from this code.
  EXPECT_EQ(permutation(10, 42), (std::vector<size_t>{8, 3, 6, 5, 4, 0, 9, 2, 1, 7}));
}

TEST(StratifiedSplit, KeepsClassProportions) {
  // 60 of class 0, 30 of class 1, 10 of class 2, interleaved.
  std::vector<int64_t> labels;
  for (int i = 0; i < 100; ++i) labels.push_back(i % 10 == 9 ? 2 : (i % 3 == 0 ? 1 : 0));
  std::map<int64_t, size_t> total;
  for (int64_t y : labels) ++total[y];
  const SplitIndices s = stratified_split(labels, 0.25, 3);
  expect_partition(s, labels.size());
  EXPECT_EQ(s.test.size(), 25u);
  std::map<int64_t, size_t> in_test;
  for (size_t i : s.test) ++in_test[labels[i]];
  for (const auto& [y, n] : total) {
    const double exact = static_cast<double>(n) * 0.25;
    EXPECT_GE(static_cast<double>(in_test[y]), std::floor(exact)) << "class " << y;
    EXPECT_LE(static_cast<double>(in_test[y]), std::ceil(exact)) << "class " << y;
  }
  const SplitIndices again = stratified_split(labels, 0.25, 3);
  EXPECT_EQ(again.test, s.test);
}

TEST(StratifiedSplit, StringLabelsMatchTheirKeys) {
  const std::vector<std::string> names{"b", "a", "b", "b", "a", "c", "b", "a"};
  std::vector<int64_t> keys;
  for (const std::string& n : names) keys.push_back(n[0] - 'a');  // same order as the strings
  const SplitIndices s = stratified_split(names, 0.5, 9);
  const SplitIndices k = stratified_split(keys, 0.5, 9);
  EXPECT_EQ(s.test, k.test);
  expect_partition(s, names.size());
  EXPECT_EQ(s.test.size(), 4u);
}

TEST(KFold, FoldsPartitionTheRows) {
  const auto folds = kfold(23, 5, 11);
  ASSERT_EQ(folds.size(), 5u);
  std::vector<size_t> all_test;
  for (size_t i = 0; i < folds.size(); ++i) {
    expect_partition(folds[i], 23);
    EXPECT_EQ(folds[i].test.size(), i < 3 ? 5u : 4u);
    all_test.insert(all_test.end(), folds[i].test.begin(), folds[i].test.end());
  }
  std::sort(all_test.begin(), all_test.end());
  EXPECT_EQ(std::adjacent_find(all_test.begin(), all_test.end()), all_test.end());
  EXPECT_EQ(all_test.size(), 23u);
  EXPECT_EQ(kfold(23, 5, 11)[2].test, folds[2].test);
  EXPECT_THROW(kfold(3, 4, 1), Error);
  EXPECT_THROW(kfold(3, 1, 1), Error);
}

TEST(KFold, StratifiedFoldsBalanceClasses) {
  std::vector<int64_t> labels(30, 0);
  for (size_t i = 0; i < 9; ++i) labels[i * 3] = 1;  // 9 of class 1, 21 of class 0
  const auto folds = stratified_kfold(labels, 3, 5);
  for (const SplitIndices& f : folds) {
    expect_partition(f, 30);
    EXPECT_EQ(f.test.size(), 10u);
    size_t ones = 0;
    for (size_t i : f.test) ones += labels[i] == 1;
    EXPECT_EQ(ones, 3u);
  }
}

}  // namespace
}  // namespace kiln::data
