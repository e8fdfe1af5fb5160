#pragma once
// Seeded train/test splits and k-fold cross-validation as row INDICES (apply them with
// Table::select_rows or a Dataset subset). The same seed gives the same split on every platform and
// standard library: the generator is splitmix64 and the shuffle a Fisher-Yates with an unbiased
// bounded draw written here, not std::shuffle / std::uniform_int_distribution (whose output is
// implementation-defined).
//
//   SplitIndices s = stratified_split(table["Species"].keys(), /*test_fraction=*/0.2, /*seed=*/42);
//   Table train = table.select_rows(s.train), test = table.select_rows(s.test);
//   for (const SplitIndices& fold : kfold(table.num_rows(), 5, 42)) { ... }
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace kiln::data {

/// splitmix64 (Steele, Lea & Flood, "Fast Splittable Pseudorandom Number Generators", 2014; the
/// constants of Vigna's reference C code). Small, fast, and identical everywhere.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  /// The next 64 random bits.
  uint64_t next();
  /// Uniform in [0, n), unbiased: Lemire's multiply-shift with rejection ("Fast Random Integer
  /// Generation in an Interval", 2019). Throws kiln::Error when n == 0.
  uint64_t bounded(uint64_t n);

 private:
  uint64_t state_;
};

/// Shuffles `values` in place: Fisher-Yates (Durstenfeld's form), for i = n-1 down to 1 swap
/// values[i] with values[rng.bounded(i + 1)].
void shuffle(std::span<size_t> values, SplitMix64& rng);
/// A seeded permutation of 0..n-1.
std::vector<size_t> permutation(size_t n, uint64_t seed);

/// Row indices of the two sides of a split, each sorted ascending.
struct SplitIndices {
  std::vector<size_t> train;
  std::vector<size_t> test;
};

/// Splits rows 0..n-1 at random: round(n * test_fraction) rows go to test, the rest to train.
/// test_fraction must lie in [0, 1].
SplitIndices train_test_split(size_t n, double test_fraction, uint64_t seed);

/// Splits rows so every class keeps its share: the test side holds round(N * test_fraction) rows
/// and class c contributes floor or ceil of n_c * test_fraction of them (largest remainders get the
/// ceilings, ties to the smaller label). labels (N).
SplitIndices stratified_split(std::span<const int64_t> labels, double test_fraction, uint64_t seed);
SplitIndices stratified_split(std::span<const std::string> labels, double test_fraction,
                              uint64_t seed);

/// k folds of a seeded permutation of 0..n-1: fold i's test is its i-th slice (the first n % k
/// slices hold one extra row), its train everything else. Requires 2 <= k <= n.
std::vector<SplitIndices> kfold(size_t n, size_t k, uint64_t seed);
/// k folds that keep class shares: each class is shuffled and dealt round-robin across the folds,
/// so fold sizes and per-class counts differ by at most one. Requires 2 <= k <= N.
std::vector<SplitIndices> stratified_kfold(std::span<const int64_t> labels, size_t k,
                                           uint64_t seed);

}  // namespace kiln::data
