#pragma once
// Reductions over any set of dims, with keepdim. Results are the same at any thread count: each
// output element is reduced by one thread in a fixed order, and full reductions combine fixed-size
// blocks in order. float32 sums accumulate in float64.
#include <vector>

#include "kiln/tensor/array.h"

namespace kiln::kernels {

/// Dims to reduce; empty means all dims.
using Dims = std::vector<int64_t>;

Array sum(const Array& x, const Dims& dims = {}, bool keepdim = false);
Array mean(const Array& x, const Dims& dims = {}, bool keepdim = false);
/// Variance with `correction` (1 = unbiased, as torch.var's default).
Array var(const Array& x, const Dims& dims = {}, int64_t correction = 1, bool keepdim = false);
Array std(const Array& x, const Dims& dims = {}, int64_t correction = 1, bool keepdim = false);
/// log Σ exp(x) over dims, computed stably (max subtracted first).
Array logsumexp(const Array& x, const Dims& dims, bool keepdim = false);
/// (Σ |x|^p)^(1/p) over dims.
Array norm(const Array& x, double p = 2.0, const Dims& dims = {}, bool keepdim = false);
Array amax(const Array& x, const Dims& dims = {}, bool keepdim = false);
Array amin(const Array& x, const Dims& dims = {}, bool keepdim = false);

/// Values and int64 indices of the max / min along one dim (first occurrence wins on ties).
struct ValuesIndices {
  Array values;
  Array indices;
};
ValuesIndices max(const Array& x, int64_t dim, bool keepdim = false);
ValuesIndices min(const Array& x, int64_t dim, bool keepdim = false);
Array argmax(const Array& x, int64_t dim, bool keepdim = false);
Array argmin(const Array& x, int64_t dim, bool keepdim = false);

/// Sums `grad` down to `shape` (the inverse of broadcasting): autograd's reduction for broadcast
/// inputs.
Array sum_to(const Array& grad, const Shape& shape);
/// The output shape of reducing `shape` over `dims` (sorted, wrapped) with keepdim.
Shape reduced_shape(const Shape& shape, const Dims& dims, bool keepdim);
/// Wraps, sorts and de-duplicates dims; empty input means all dims.
Dims normalize_dims(const Dims& dims, int64_t ndim, const char* op);

}  // namespace kiln::kernels
