#include "kiln/data/split.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "kiln/tensor/error.h"

namespace kiln::data {

namespace {

size_t test_count(size_t n, double test_fraction, std::string_view op) {
  KILN_CHECK(test_fraction >= 0.0 && test_fraction <= 1.0,
             "{}: test_fraction is {} (it must lie in [0, 1])", op, test_fraction);
  return static_cast<size_t>(std::llround(static_cast<double>(n) * test_fraction));
}

// Rows of each distinct label, classes in ascending label order, rows ascending.
std::vector<std::vector<size_t>> group_by_label(std::span<const int64_t> labels) {
  std::map<int64_t, std::vector<size_t>> groups;
  for (size_t i = 0; i < labels.size(); ++i) groups[labels[i]].push_back(i);
  std::vector<std::vector<size_t>> out;
  out.reserve(groups.size());
  for (auto& entry : groups) out.push_back(std::move(entry.second));
  return out;
}

SplitIndices stratified_from_groups(std::vector<std::vector<size_t>> groups, size_t n,
                                    double test_fraction, uint64_t seed) {
  const size_t total_test = test_count(n, test_fraction, "stratified_split");
  // Largest-remainder apportionment of total_test across classes.
  std::vector<size_t> take(groups.size());
  std::vector<double> remainder(groups.size());
  size_t assigned = 0;
  for (size_t c = 0; c < groups.size(); ++c) {
    const double exact = static_cast<double>(groups[c].size()) * test_fraction;
    take[c] = std::min(groups[c].size(), static_cast<size_t>(std::floor(exact)));
    remainder[c] = exact - static_cast<double>(take[c]);
    assigned += take[c];
  }
  std::vector<size_t> order(groups.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return remainder[a] > remainder[b]; });
  for (size_t i = 0; assigned < total_test && i < order.size(); ++i) {
    if (take[order[i]] < groups[order[i]].size()) {
      ++take[order[i]];
      ++assigned;
    }
  }
  SplitMix64 rng(seed);
  SplitIndices out;
  for (size_t c = 0; c < groups.size(); ++c) {
    shuffle(groups[c], rng);
    out.test.insert(out.test.end(), groups[c].begin(), groups[c].begin() + take[c]);
    out.train.insert(out.train.end(), groups[c].begin() + take[c], groups[c].end());
  }
  std::sort(out.train.begin(), out.train.end());
  std::sort(out.test.begin(), out.test.end());
  return out;
}

// Fold i's test = folds[i]; train = every other fold; both sorted.
std::vector<SplitIndices> assemble_folds(const std::vector<std::vector<size_t>>& folds) {
  std::vector<SplitIndices> out(folds.size());
  for (size_t i = 0; i < folds.size(); ++i) {
    out[i].test = folds[i];
    for (size_t j = 0; j < folds.size(); ++j) {
      if (j != i) out[i].train.insert(out[i].train.end(), folds[j].begin(), folds[j].end());
    }
    std::sort(out[i].test.begin(), out[i].test.end());
    std::sort(out[i].train.begin(), out[i].train.end());
  }
  return out;
}

}  // namespace

uint64_t SplitMix64::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t SplitMix64::bounded(uint64_t n) {
  KILN_CHECK(n > 0, "SplitMix64::bounded: n must be positive (draws lie in [0, n))");
  // x * n / 2^64 maps 64 random bits onto [0, n); the low word tells when x fell in the few values
  // that would over-represent some outputs ((2^64 - n) mod n of them), and those are redrawn.
  unsigned __int128 m = static_cast<unsigned __int128>(next()) * n;
  auto low = static_cast<uint64_t>(m);
  if (low < n) {
    const uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<unsigned __int128>(next()) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

void shuffle(std::span<size_t> values, SplitMix64& rng) {
  for (size_t i = values.size(); i > 1; --i) {
    std::swap(values[i - 1], values[rng.bounded(i)]);
  }
}

std::vector<size_t> permutation(size_t n, uint64_t seed) {
  std::vector<size_t> p(n);
  std::iota(p.begin(), p.end(), size_t{0});
  SplitMix64 rng(seed);
  shuffle(p, rng);
  return p;
}

SplitIndices train_test_split(size_t n, double test_fraction, uint64_t seed) {
  const size_t n_test = test_count(n, test_fraction, "train_test_split");
  const std::vector<size_t> p = permutation(n, seed);
  SplitIndices out;
  out.test.assign(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(n_test));
  out.train.assign(p.begin() + static_cast<std::ptrdiff_t>(n_test), p.end());
  std::sort(out.train.begin(), out.train.end());
  std::sort(out.test.begin(), out.test.end());
  return out;
}

SplitIndices stratified_split(std::span<const int64_t> labels, double test_fraction,
                              uint64_t seed) {
  return stratified_from_groups(group_by_label(labels), labels.size(), test_fraction, seed);
}

SplitIndices stratified_split(std::span<const std::string> labels, double test_fraction,
                              uint64_t seed) {
  std::map<std::string_view, std::vector<size_t>> groups;
  for (size_t i = 0; i < labels.size(); ++i) groups[labels[i]].push_back(i);
  std::vector<std::vector<size_t>> ordered;
  for (auto& entry : groups) ordered.push_back(std::move(entry.second));
  return stratified_from_groups(std::move(ordered), labels.size(), test_fraction, seed);
}

std::vector<SplitIndices> kfold(size_t n, size_t k, uint64_t seed) {
  KILN_CHECK(k >= 2 && k <= n, "kfold: k is {} for {} rows (it must satisfy 2 <= k <= rows)", k, n);
  const std::vector<size_t> p = permutation(n, seed);
  std::vector<std::vector<size_t>> folds(k);
  size_t start = 0;
  for (size_t i = 0; i < k; ++i) {
    const size_t size = n / k + (i < n % k ? 1 : 0);
    folds[i].assign(p.begin() + static_cast<std::ptrdiff_t>(start),
                    p.begin() + static_cast<std::ptrdiff_t>(start + size));
    start += size;
  }
  return assemble_folds(folds);
}

std::vector<SplitIndices> stratified_kfold(std::span<const int64_t> labels, size_t k,
                                           uint64_t seed) {
  KILN_CHECK(k >= 2 && k <= labels.size(),
             "stratified_kfold: k is {} for {} rows (it must satisfy 2 <= k <= rows)", k,
             labels.size());
  std::vector<std::vector<size_t>> groups = group_by_label(labels);
  SplitMix64 rng(seed);
  std::vector<std::vector<size_t>> folds(k);
  size_t next_fold = 0;  // continues across classes so fold sizes stay within one of each other
  for (std::vector<size_t>& g : groups) {
    shuffle(g, rng);
    for (size_t row : g) folds[next_fold++ % k].push_back(row);
  }
  return assemble_folds(folds);
}

}  // namespace kiln::data
