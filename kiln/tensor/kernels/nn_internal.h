#pragma once
// Internal to kiln_tensor's fused nn kernels (softmax.cpp, normalization.cpp, loss.cpp,
// dropout.cpp): Eigen maps over rows and float64 row sums on 16 independent lanes (vectorised sums
// without reassociating anything, so results do not depend on the compiler's choices). Only those
// sources include this header; it is not installed.
#include <Eigen/Core>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "kiln/tensor/array.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"

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

}  // namespace kiln::kernels::nn_detail
