#pragma once
// Internal to kiln_tensor's fused nn kernels (softmax.cpp, normalization.cpp, loss.cpp,
// dropout.cpp): Eigen maps over rows and float64 row sums on 16 independent lanes (vectorised sums
// without reassociating anything, so results do not depend on the compiler's choices). Only those
// sources include this header; it is not installed.
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kiln/tensor/array.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"
#include "kiln/tensor/random.h"

namespace kiln::kernels::nn_detail {

template <typename T>
using Vec = Eigen::Array<T, Eigen::Dynamic, 1>;
template <typename T>
using CMap = Eigen::Map<const Vec<T>>;
template <typename T>
using MMap = Eigen::Map<Vec<T>>;

inline constexpr double kInf = std::numeric_limits<double>::infinity();

// Σ f(j) for j in [0, n) in float64, over 16 independent lanes (the compiler vectorises the lanes
// into two accumulators, which hides the add latency).
inline constexpr int kLanes = 16;
template <typename F>
double lane_sum(int64_t n, F f) {
  double lanes[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int k = 0; k < kLanes; ++k) lanes[k] += f(j + k);
  double acc = 0;
  for (; j < n; ++j) acc += f(j);
  for (double l : lanes) acc += l;
  return acc;
}
template <typename T>
double sum_f64(const T* p, int64_t n) {
  return lane_sum(n, [p](int64_t j) { return static_cast<double>(p[j]); });
}
template <typename T>
double dot_f64(const T* a, const T* b, int64_t n) {
  return lane_sum(
      n, [a, b](int64_t j) { return static_cast<double>(a[j]) * static_cast<double>(b[j]); });
}
template <typename T>
T max_of(const T* p, int64_t n) {
  return CMap<T>(p, n).maxCoeff();
}

// Rows of `width` elements per task so that each task holds about `work` elements.
inline int64_t row_grain(int64_t width, int64_t work = kGrainSize / 4) {
  return std::max<int64_t>(1, work / std::max<int64_t>(width, 1));
}

// x as a contiguous array of dtype `dt` (a copy only when needed).
inline Array contiguous_as(const Array& x, DType dt) {
  return x.dtype() == dt ? x.contiguous() : x.to(dt).contiguous();
}

inline void check_float(const Array& x, const char* op) {
  KILN_CHECK_TYPE(is_floating(x.dtype()),
                  "{}: dtype {} is not supported (float32 or float64 required)", op, x.dtype());
}

// ---------------------------------------------------------------- dropout's mask (dropout.h)
// MurmurHash3's 32-bit finaliser (a bijection).
inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bU;
  h ^= h >> 13;
  h *= 0xc2b2ae35U;
  h ^= h >> 16;
  return h;
}

// Keep threshold on the hash's top 24 bits: an element is kept when (h >> 8) >= it. <= 2^24.
inline int32_t dropout_threshold(double p) {
  return static_cast<int32_t>(std::llround(p * 16777216.0));
}

// y[j] = x[j] · keep(offset + i0 + j) · scale for j in [0, n): dropout's mask (dropout_keep() in
// dropout.h is its scalar definition) over the counters of elements i0 .. i0 + n of a draw that
// starts at `offset`. Shared by dropout and the fused residual kernels, so one mask definition
// serves all. x and y must not overlap (__restrict: the loop vectorises).
template <typename T>
void apply_dropout_mask(const T* x, T* y, int64_t i0, int64_t n, uint64_t seed, uint64_t offset,
                        int32_t thr, T scale) {
  int64_t i = 0;
  while (i < n) {
    // Runs of counters with the same high word share one key; within a run the loop is 32-bit
    // integer work the compiler vectorises.
    const uint64_t c0 = offset + static_cast<uint64_t>(i0 + i);
    const uint64_t room = (uint64_t{1} << 32) - (c0 & 0xffffffffU);  // 1 .. 2^32 left in run
    const int64_t e = static_cast<uint64_t>(n - i) <= room ? n : i + static_cast<int64_t>(room);
    const uint64_t key = Generator::hash(seed, c0 >> 32);
    const uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
    const uint32_t lo0 = static_cast<uint32_t>(c0);
    const T* __restrict xs = x + i;
    T* __restrict ys = y + i;
    const int64_t m = e - i;
    for (int64_t j = 0; j < m; ++j) {
      const uint32_t h = fmix32(fmix32((lo0 + static_cast<uint32_t>(j)) ^ k0) + k1);
      // x · mask / (1 − p), as PyTorch computes it (a dropped inf or NaN stays NaN); written
      // without a branch (and with a signed compare: AVX2 has no unsigned one; both sides are
      // below 2^24) so the loop vectorises.
      const int32_t keep = static_cast<int32_t>(h >> 8) >= thr;
      ys[j] = xs[j] * (scale * static_cast<T>(keep));
    }
    i = e;
  }
}

}  // namespace kiln::kernels::nn_detail
