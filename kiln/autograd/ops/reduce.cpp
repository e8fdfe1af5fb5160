// Reductions. Backward broadcasts the output gradient back over the reduced dims.
#include <cmath>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/op.h"
#include "kiln/autograd/op_registry.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/ops.h"
#include "kiln/tensor/reduce.h"

namespace kiln {
namespace {
// Every op name this file records (kiln/autograd/op_registry.h): a test fails when an op is
// recorded undeclared, and the gradcheck table needs a case for each differentiable one.
const OpDeclarations kOps({"amax", "amin", "logsumexp", "max", "mean", "min", "norm", "sum", "var"},
                          {"argmax", "argmin"});
}  // namespace

using kernels::BinaryOp;
using kernels::UnaryOp;

namespace {
// dy of a reduction (possibly without the kept dims) reshaped to keepdim form, then expanded to
// `shape`.
Array expand_back(const Array& dy, const Shape& shape, const Dims& dims) {
  Shape keep = kernels::reduced_shape(shape, dims, true);
  return dy.reshape(keep).expand(shape);
}
Attrs reduce_attrs(const Dims& dims, bool keepdim) {
  return {{"axes", std::vector<int64_t>(dims.begin(), dims.end())}, {"keepdims", int64_t{keepdim}}};
}
}  // namespace

// sum: dx = dy broadcast over the reduced dims.
Tensor sum(const Tensor& x, const Dims& dims_in, bool keepdim) {
  Dims dims = kernels::normalize_dims(dims_in, x.dim(), "sum");
  Shape s = x.shape();
  return make_op(
      "sum", {x}, kernels::sum(x.data(), dims, keepdim),
      [s, dims](const Array& dy) -> Grads { return {expand_back(dy, s, dims).contiguous()}; },
      reduce_attrs(dims, keepdim));
}

// mean: dx = dy / R broadcast.
Tensor mean(const Tensor& x, const Dims& dims_in, bool keepdim) {
  Dims dims = kernels::normalize_dims(dims_in, x.dim(), "mean");
  Shape s = x.shape();
  int64_t R = 1;
  for (int64_t d : dims) R *= s[d];
  return make_op(
      "mean", {x}, kernels::mean(x.data(), dims, keepdim),
      [s, dims, R](const Array& dy) -> Grads {
        return {kernels::mul(expand_back(dy, s, dims), 1.0 / static_cast<double>(R))};
      },
      reduce_attrs(dims, keepdim));
}

// var: dx = dy · 2(x − mean) / (R − correction)
Tensor var(const Tensor& x, const Dims& dims_in, int64_t correction, bool keepdim) {
  Dims dims = kernels::normalize_dims(dims_in, x.dim(), "var");
  Shape s = x.shape();
  int64_t R = 1;
  for (int64_t d : dims) R *= s[d];
  return make_op("var", {x}, kernels::var(x.data(), dims, correction, keepdim),
                 [X = save(x, "var"), s, dims, R, correction](const Array& dy) -> Grads {
                   Array m = kernels::mean(X.get(), dims, true);
                   Array c = kernels::sub(X.get(), m);
                   double k = 2.0 / static_cast<double>(std::max<int64_t>(R - correction, 1));
                   return {kernels::mul(kernels::mul(expand_back(dy, s, dims), c), k)};
                 },
                 {{"axes", dims}, {"keepdims", int64_t{keepdim}}, {"correction", correction}});
}

// std = sqrt(var): composite, gradients free.
Tensor std(const Tensor& x, const Dims& dims, int64_t correction, bool keepdim) {
  return sqrt(var(x, dims, correction, keepdim));
}

// logsumexp: dx = dy · softmax(x) over dims.
Tensor logsumexp(const Tensor& x, const Dims& dims_in, bool keepdim) {
  Dims dims = kernels::normalize_dims(dims_in, x.dim(), "logsumexp");
  Shape s = x.shape();
  Array y = kernels::logsumexp(x.data(), dims, keepdim);
  return make_op(
      "logsumexp", {x}, y,
      [X = save(x, "logsumexp"), Y = save(y, "logsumexp"), s, dims](const Array& dy) -> Grads {
        Array yk = expand_back(Y.get(), s, dims);
        Array p = kernels::unary(UnaryOp::Exp, kernels::sub(X.get(), yk));
        return {kernels::mul(expand_back(dy, s, dims), p)};
      },
      reduce_attrs(dims, keepdim));
}

// norm: p = 2 → dx = dy·x/‖x‖ (0 where ‖x‖ = 0); general p → dy·|x|^(p−1)·sign(x)/‖x‖^(p−1).
Tensor norm(const Tensor& x, double p, const Dims& dims_in, bool keepdim) {
  Dims dims = kernels::normalize_dims(dims_in, x.dim(), "norm");
  Shape s = x.shape();
  Array y = kernels::norm(x.data(), p, dims, keepdim);
  return make_op(
      "norm", {x}, y,
      [X = save(x, "norm"), Y = save(y, "norm"), s, dims, p](const Array& dy) -> Grads {
        Array yk = expand_back(Y.get(), s, dims);
        Array g = expand_back(dy, s, dims);
        Array sign = kernels::unary(UnaryOp::Sign, X.get());
        Array num = p == 1.0
                        ? sign
                        : kernels::mul(sign, kernels::binary(BinaryOp::Pow,
                                                             kernels::unary(UnaryOp::Abs, X.get()),
                                                             p - 1.0));
        Array den = p == 1.0 ? kernels::scalar(1.0, dy.dtype())
                             : kernels::binary(BinaryOp::Pow, yk, p - 1.0);
        Array r = kernels::div(kernels::mul(g, num), den);
        // ‖x‖ = 0 gives 0/0: the subgradient 0, as PyTorch.
        Array zero_norm = kernels::binary(BinaryOp::Eq, yk, 0.0);
        return {kernels::masked_fill(r, zero_norm, 0.0)};
      },
      {{"p", p}, {"axes", dims}, {"keepdims", int64_t{keepdim}}});
}

// amax / amin: gradient split evenly among the tied extreme elements (as PyTorch).
static Tensor extreme(const char* name, const Tensor& x, const Dims& dims_in, bool keepdim,
                      bool is_max) {
  Dims dims = kernels::normalize_dims(dims_in, x.dim(), name);
  Shape s = x.shape();
  Array y =
      is_max ? kernels::amax(x.data(), dims, keepdim) : kernels::amin(x.data(), dims, keepdim);
  return make_op(
      name, {x}, y,
      [X = save(x, name), Y = save(y, name), s, dims](const Array& dy) -> Grads {
        Array mask =
            kernels::binary(BinaryOp::Eq, X.get(), expand_back(Y.get(), s, dims)).to(dy.dtype());
        Array count = kernels::sum(mask, dims, true);
        return {kernels::div(kernels::mul(expand_back(dy, s, dims), mask), count)};
      },
      reduce_attrs(dims, keepdim));
}
Tensor amax(const Tensor& x, const Dims& dims, bool keepdim) {
  return extreme("amax", x, dims, keepdim, true);
}
Tensor amin(const Tensor& x, const Dims& dims, bool keepdim) {
  return extreme("amin", x, dims, keepdim, false);
}

// max / min along a dim: values get the gradient at the arg index; indices are not differentiable.
static TensorPair arg_extreme(const char* name, const Tensor& x, int64_t dim, bool keepdim,
                              bool is_max) {
  dim = wrap_dim(dim, x.dim(), name);
  kernels::ValuesIndices r =
      is_max ? kernels::max(x.data(), dim, keepdim) : kernels::min(x.data(), dim, keepdim);
  Shape s = x.shape();
  Array idx = r.indices;
  auto outs =
      make_multi_op(name, {x}, {r.values, r.indices},
                    [idx, s, dim, keepdim](const std::vector<Array>& g, const Needs&) -> Grads {
                      // Scatter dy into a zero tensor at the selected indices along dim.
                      Array dy = keepdim ? g[0] : g[0].unsqueeze(dim);
                      Array ix = keepdim ? idx : idx.unsqueeze(dim);
                      Array out = kernels::zeros(s, dy.dtype());
                      Array dyc = dy.contiguous(), ixc = ix.contiguous();
                      int64_t outer = 1, inner = 1;
                      for (int64_t d = 0; d < dim; ++d) outer *= s[d];
                      for (size_t d = dim + 1; d < s.size(); ++d) inner *= s[d];
                      int64_t n = s.empty() ? 1 : s[dim];
                      KILN_DISPATCH_FLOATING(dy.dtype(), "max_backward", [&] {
                        const scalar_t* gp = dyc.data<scalar_t>();
                        const int64_t* ip = ixc.data<int64_t>();
                        scalar_t* op = out.data<scalar_t>();
                        for (int64_t o = 0; o < outer; ++o)
                          for (int64_t i = 0; i < inner; ++i)
                            op[(o * n + ip[o * inner + i]) * inner + i] += gp[o * inner + i];
                      });
                      return {out};
                    },
                    {{"axis", dim}, {"keepdims", int64_t{keepdim}}});
  return {outs[0], outs[1]};
}
TensorPair max(const Tensor& x, int64_t dim, bool keepdim) {
  return arg_extreme("max", x, dim, keepdim, true);
}
TensorPair min(const Tensor& x, int64_t dim, bool keepdim) {
  return arg_extreme("min", x, dim, keepdim, false);
}
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  return make_nondiff_op(
      "argmax", {x}, kernels::argmax(x.data(), dim, keepdim),
      {{"axis", wrap_dim(dim, x.dim(), "argmax")}, {"keepdims", int64_t{keepdim}}});
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  return make_nondiff_op(
      "argmin", {x}, kernels::argmin(x.data(), dim, keepdim),
      {{"axis", wrap_dim(dim, x.dim(), "argmin")}, {"keepdims", int64_t{keepdim}}});
}

}  // namespace kiln
