#pragma once
// Internal: strided N-operand loops. Dims are collapsed where every operand is contiguous across
// them, then the innermost dim runs as a tight loop and the outer rows are split across threads.
// Only tensor/ sources include this.
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kiln/tensor/array.h"
#include "kiln/tensor/parallel.h"

namespace kiln::detail {

/// Operand layouts over a common (broadcast) shape, in bytes.
template <size_t N>
struct LoopPlan {
  Shape shape;                                  // collapsed shape, innermost last (at least 1 dim)
  std::array<char*, N> base;                    // first element of each operand
  std::array<std::vector<int64_t>, N> strides;  // byte strides per collapsed dim
};

/// Builds a plan: `arrays[i]` must be broadcastable to `shape` (its strides are taken as expanded).
template <size_t N>
LoopPlan<N> make_plan(const Shape& shape, const std::array<const Array*, N>& arrays) {
  LoopPlan<N> p;
  size_t nd = shape.size();
  std::array<std::vector<int64_t>, N> st;
  for (size_t i = 0; i < N; ++i) {
    const Array& a = *arrays[i];
    p.base[i] = static_cast<char*>(a.raw_data());
    st[i].assign(nd, 0);
    size_t off = nd - a.shape().size();
    for (size_t d = 0; d < a.shape().size(); ++d)
      st[i][off + d] =
          a.shape()[d] == 1 && shape[off + d] != 1 ? 0 : a.strides()[d] * int64_t(a.itemsize());
  }
  // Collapse dim d into d+1 when, for every operand, stride[d] == stride[d+1] * size[d+1].
  Shape cs;
  std::array<std::vector<int64_t>, N> cst;
  for (size_t d = 0; d < nd; ++d) {
    if (shape[d] == 1) continue;  // size-1 dims carry no iteration
    if (!cs.empty()) {
      bool merge = true;
      for (size_t i = 0; i < N; ++i)
        if (cst[i].back() != st[i][d] * shape[d]) merge = false;
      if (merge) {
        cs.back() *= shape[d];
        for (size_t i = 0; i < N; ++i) cst[i].back() = st[i][d];
        continue;
      }
    }
    cs.push_back(shape[d]);
    for (size_t i = 0; i < N; ++i) cst[i].push_back(st[i][d]);
  }
  if (cs.empty()) {
    cs.push_back(1);
    for (size_t i = 0; i < N; ++i) cst[i].push_back(0);
  }
  p.shape = std::move(cs);
  p.strides = std::move(cst);
  return p;
}

/// Calls inner(ptrs, inner_strides, n) for every innermost row of the plan, rows split across
/// threads when the plan has more than `grain` elements. `ptrs` point at the row's first element
/// per operand.
template <size_t N, typename Inner>
void run_plan(const LoopPlan<N>& p, Inner&& inner, int64_t grain = kGrainSize) {
  const int64_t nd = static_cast<int64_t>(p.shape.size());
  const int64_t n_inner = p.shape.back();
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < nd; ++d) rows *= p.shape[d];
  std::array<int64_t, N> inner_st;
  for (size_t i = 0; i < N; ++i) inner_st[i] = p.strides[i].back();
  const int64_t row_grain = std::max<int64_t>(1, grain / std::max<int64_t>(n_inner, 1));
  parallel_for(0, rows, row_grain, [&](int64_t r0, int64_t r1) {
    // Decompose r0 into an outer multi-index, then step it like an odometer.
    std::vector<int64_t> idx(std::max<int64_t>(nd - 1, 0), 0);
    std::array<char*, N> ptr = p.base;
    int64_t rem = r0;
    for (int64_t d = nd - 2; d >= 0; --d) {
      idx[d] = rem % p.shape[d];
      rem /= p.shape[d];
      for (size_t i = 0; i < N; ++i) ptr[i] += idx[d] * p.strides[i][d];
    }
    for (int64_t r = r0; r < r1; ++r) {
      inner(ptr, inner_st, n_inner);
      for (int64_t d = nd - 2; d >= 0; --d) {
        for (size_t i = 0; i < N; ++i) ptr[i] += p.strides[i][d];
        if (++idx[d] < p.shape[d]) break;
        for (size_t i = 0; i < N; ++i) ptr[i] -= p.strides[i][d] * p.shape[d];
        idx[d] = 0;
      }
    }
  });
}

}  // namespace kiln::detail
