// Shape ops and views. Views share storage with their input; backward maps the gradient back.
#include "kiln/autograd/functions.h"
#include "kiln/autograd/op.h"
#include "kiln/autograd/op_registry.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/reduce.h"

namespace kiln {
namespace {
// Every op name this file records (kiln/autograd/op_registry.h): a test fails when an op is
// recorded undeclared, and the gradcheck table needs a case for each differentiable one.
const OpDeclarations kOps({"cast", "expand", "identity", "reshape", "select", "slice", "transpose"},
                          {"cast"});
}  // namespace

// reshape / view: dx = dy reshaped to x's shape.
Tensor reshape(const Tensor& x, Shape shape) {
  Shape s = x.shape();
  Array y = x.data().reshape(std::move(shape));
  Shape ys = y.shape();
  return make_op("reshape", {x}, y, [s](const Array& dy) -> Grads { return {dy.reshape(s)}; },
                 {{"shape", ys}});
}
Tensor view(const Tensor& x, Shape shape) {
  Shape s = x.shape();
  Array y = x.data().view(std::move(shape));
  Shape ys = y.shape();
  return make_op("reshape", {x}, y, [s](const Array& dy) -> Grads { return {dy.reshape(s)}; },
                 {{"shape", ys}});
}
Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  Shape s = x.shape();
  Array y = x.data().flatten(start_dim, end_dim);
  Shape ys = y.shape();
  return make_op("reshape", {x}, y, [s](const Array& dy) -> Grads { return {dy.reshape(s)}; },
                 {{"shape", ys}});
}
Tensor squeeze(const Tensor& x, int64_t dim) {
  Shape s = x.shape();
  Array y = x.data().squeeze(dim);
  Shape ys = y.shape();
  return make_op("reshape", {x}, y, [s](const Array& dy) -> Grads { return {dy.reshape(s)}; },
                 {{"shape", ys}});
}
Tensor unsqueeze(const Tensor& x, int64_t dim) {
  Shape s = x.shape();
  Array y = x.data().unsqueeze(dim);
  Shape ys = y.shape();
  return make_op("reshape", {x}, y, [s](const Array& dy) -> Grads { return {dy.reshape(s)}; },
                 {{"shape", ys}});
}

// transpose: dx = dyᵀ (same dims swapped back).
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  d0 = wrap_dim(d0, x.dim(), "transpose");
  d1 = wrap_dim(d1, x.dim(), "transpose");
  std::vector<int64_t> perm(x.dim());
  for (int64_t i = 0; i < x.dim(); ++i) perm[i] = i;
  std::swap(perm[d0], perm[d1]);
  return make_op("transpose", {x}, x.data().transpose(d0, d1),
                 [d0, d1](const Array& dy) -> Grads { return {dy.transpose(d0, d1)}; },
                 {{"perm", perm}});
}

// permute: dx = dy permuted by the inverse permutation.
Tensor permute(const Tensor& x, std::vector<int64_t> dims) {
  Array y = x.data().permute(dims);
  std::vector<int64_t> inv(dims.size()), perm(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    perm[i] = wrap_dim(dims[i], x.dim(), "permute");
    inv[perm[i]] = static_cast<int64_t>(i);
  }
  return make_op("transpose", {x}, y, [inv](const Array& dy) -> Grads { return {dy.permute(inv)}; },
                 {{"perm", perm}});
}

// slice: dx = zeros with dy written into the sliced region.
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  dim = wrap_dim(dim, x.dim(), "slice");
  Array y = x.data().slice(dim, start, end, step);
  Shape s = x.shape();
  // Normalised bounds for export and backward.
  int64_t n = s[dim];
  int64_t st = start < 0 ? start + n : start, en = end < 0 ? end + n : end;
  st = std::clamp<int64_t>(st, 0, n);
  en = std::clamp<int64_t>(en, st, n);
  return make_op("slice", {x}, y,
                 [s, dim, st, en, step](const Array& dy) -> Grads {
                   Array dx = kernels::zeros(s, dy.dtype());
                   dx.slice(dim, st, en, step).copy_(dy);
                   return {dx};
                 },
                 {{"starts", std::vector<int64_t>{st}},
                  {"ends", std::vector<int64_t>{en}},
                  {"axes", std::vector<int64_t>{dim}},
                  {"steps", std::vector<int64_t>{step}}});
}
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  dim = wrap_dim(dim, x.dim(), "narrow");
  if (start < 0) start += x.shape()[dim];
  KILN_CHECK_SHAPE(start >= 0 && length >= 0 && start + length <= x.shape()[dim],
                   "narrow: start {} + length {} exceeds dim {} of size {} (shape {})", start,
                   length, dim, x.shape()[dim], x.shape());
  return slice(x, dim, start, start + length, 1);
}

// select: slice of length 1 with the dim removed.
Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  dim = wrap_dim(dim, x.dim(), "select");
  int64_t n = x.shape()[dim];
  KILN_CHECK_SHAPE(index >= -n && index < n,
                   "select: index {} out of range for dim {} of size {} (shape {})", index, dim, n,
                   x.shape());
  if (index < 0) index += n;
  Array y = x.data().select(dim, index);
  Shape s = x.shape();
  return make_op("select", {x}, y,
                 [s, dim, index](const Array& dy) -> Grads {
                   Array dx = kernels::zeros(s, dy.dtype());
                   dx.select(dim, index).copy_(dy);
                   return {dx};
                 },
                 {{"axis", dim}, {"index", index}});
}

// expand: dx = dy summed over the broadcast dims.
Tensor expand(const Tensor& x, Shape shape) {
  Shape s = x.shape();
  Array y = x.data().expand(shape);
  Shape ys = y.shape();
  return make_op("expand", {x}, y,
                 [s](const Array& dy) -> Grads { return {kernels::sum_to(dy, s)}; },
                 {{"shape", ys}});
}

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  return make_op("identity", {x}, x.data().contiguous(),
                 [](const Array& dy) -> Grads { return {dy}; });
}
Tensor clone(const Tensor& x) {
  return make_op("identity", {x}, x.data().clone(), [](const Array& dy) -> Grads { return {dy}; });
}

// to_dtype: gradient converted back to the input dtype (float ↔ float only).
Tensor to_dtype(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  DType from = x.dtype();
  if (!is_floating(dtype) || !is_floating(from))
    return make_nondiff_op("cast", {x}, x.data().to(dtype), {{"to", static_cast<int64_t>(dtype)}});
  return make_op("cast", {x}, x.data().to(dtype),
                 [from](const Array& dy) -> Grads { return {dy.to(from)}; },
                 {{"to", static_cast<int64_t>(dtype)}});
}

}  // namespace kiln
