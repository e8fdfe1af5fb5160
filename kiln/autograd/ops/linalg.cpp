// Matrix products. dA = dC · Bᵀ, dB = Aᵀ · dC; batch dims broadcast and are summed back.
#include "kiln/tensor/linalg.h"
#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/autograd/op.h"
#include "kiln/autograd/op_registry.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/ops.h"
#include "kiln/tensor/parallel.h"
#include "kiln/tensor/reduce.h"

namespace kiln {
namespace {
// Every op name this file records (kiln/autograd/op_registry.h): a test fails when an op is
// recorded undeclared, and the gradcheck table needs a case for each differentiable one.
const OpDeclarations kOps({"linear", "matmul"});
}  // namespace

// matmul: (*, M, K) x (*, K, N) -> (*, M, N)
Tensor matmul(const Tensor& a, const Tensor& b) {
  KILN_CHECK_SHAPE(a.dim() >= 1 && b.dim() >= 1,
                   "matmul: both operands need at least 1 dim, got lhs {} and rhs {}", a.shape(),
                   b.shape());
  KILN_CHECK_SHAPE(a.shape().back() == (b.dim() == 1 ? b.shape()[0] : b.shape()[b.dim() - 2]),
                   "matmul: inner dimensions differ: lhs {} vs rhs {} (lhs[-1] must equal rhs[-2])",
                   a.shape(), b.shape());
  Shape sa = a.shape(), sb = b.shape();
  return make_op(
      "matmul", {a, b}, kernels::matmul(a.data(), b.data()),
      [A = save(a, "matmul"), B = save(b, "matmul"), sa, sb](const Array& dy,
                                                             const Needs& n) -> Grads {
        // Promote 1-D operands to matrices so the same formulas apply, then shape back.
        Array av = A.get(), bv = B.get();
        if (sa.size() == 1) av = av.unsqueeze(0);
        if (sb.size() == 1) bv = bv.unsqueeze(1);
        Shape ba(av.shape().begin(), av.shape().end() - 2),
            bb(bv.shape().begin(), bv.shape().end() - 2);
        Shape full = broadcast_shapes(ba, bb, "matmul");
        full.push_back(av.shape()[av.dim() - 2]);
        full.push_back(bv.shape()[bv.dim() - 1]);
        Array g = dy.reshape(full);
        Array da, db;
        if (n[0]) da = kernels::sum_to(kernels::matmul(g, bv, false, true), av.shape()).reshape(sa);
        if (n[1]) db = kernels::sum_to(kernels::matmul(av, g, true, false), bv.shape()).reshape(sb);
        return {da, db};
      });
}

namespace {

// The checks linear and linear_gelu share (op names the caller).
void check_linear(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  KILN_CHECK_SHAPE(weight.dim() == 2, "{}: weight must be 2-D (out, in), got {}", op,
                   weight.shape());
  KILN_CHECK_SHAPE(
      x.dim() >= 1 && x.shape().back() == weight.shape()[1],
      "{}: input features differ: input {} vs weight {} (input[-1] must equal weight[1])", op,
      x.shape(), weight.shape());
  KILN_CHECK_SHAPE(!bias.defined() || (bias.dim() == 1 && bias.shape()[0] == weight.shape()[0]),
                   "{}: bias {} does not match weight {} (bias must be (out))", op,
                   bias.defined() ? bias.shape() : Shape{}, weight.shape());
}

// dx = dz·W, dW = dzᵀ·x, db = Σ dz over rows, from the gradient dz (rows, out) of x·Wᵀ + b.
Grads linear_grads(const Array& dz, const Saved& X, const Saved& W, const Shape& xs,
                   const Needs& n) {
  const int64_t rows = dz.size(0), in = W.get().size(1), out = dz.size(1);
  Grads g(n.size());
  auto input_grad = [&] {
    if (n[0]) g[0] = kernels::matmul(dz, W.get()).reshape(xs);
  };
  auto weight_grads = [&] {
    if (n[1]) g[1] = kernels::matmul(dz, X.get(), true, false);
    if (n.size() > 2 && n[2]) g[2] = kernels::sum(dz, {0});
  };
  // dx and dW are independent products of the same size: small ones run side by side, one
  // thread each (parallel.h says why and where the line is).
  if (n[0] && n[1] && rows * in * out < kSideBySideMacs) {
    parallel_invoke(input_grad, weight_grads);
  } else {
    input_grad();
    weight_grads();
  }
  return g;
}

std::vector<Tensor> linear_inputs(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  std::vector<Tensor> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  return inputs;
}

}  // namespace

// linear: y = x·Wᵀ + b.   x: (*, in)  W: (out, in)  b: (out)
// dx = dy·W, dW = dyᵀ·x (batch folded into rows), db = Σ dy over rows. The bias is added as the
// GEMM's epilogue (kernels::linear_forward).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_linear("linear", x, weight, bias);
  const int64_t in = weight.shape()[1], out = weight.shape()[0];
  const Array x2 = x.data().reshape({-1, in}).contiguous();
  const Array b = bias.defined() ? bias.data().to(x.dtype()).contiguous() : Array();
  // Without grad mode this is inference: the weight will be multiplied again unchanged, so its
  // packed copy is kept across calls (kernels::linear_forward's reuse_weights).
  const Array y = kernels::linear_forward(x2, weight.data().contiguous(), b, !grad_enabled());
  Shape ys = x.shape();
  ys.back() = out;
  return make_op("linear", linear_inputs(x, weight, bias), y.view(ys),
                 [X = save(x2, "linear"), W = save(weight, "linear"), xs = x.shape(), out](
                     const Array& dy, const Needs& n) -> Grads {
                   return linear_grads(dy.reshape({-1, out}).contiguous(), X, W, xs, n);
                 });
}

}  // namespace kiln
