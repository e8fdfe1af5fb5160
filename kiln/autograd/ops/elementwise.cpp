// Elementwise ops. Broadcast inputs get their gradient summed back to their own shape (sum_to).
#include <cmath>
#include <limits>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/op.h"
#include "kiln/autograd/op_registry.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/ops.h"
#include "kiln/tensor/reduce.h"

namespace kiln {
namespace {
// Every op name this file records (kiln/autograd/op_registry.h): a test fails when an op is
// recorded undeclared, and the gradcheck table needs a case for each differentiable one.
const OpDeclarations kOps({"abs",         "add",        "add_scalar",  "clamp",   "cos",
                           "div",         "erf",        "exp",         "gelu",    "leaky_relu",
                           "log",         "log1p",      "masked_fill", "maximum", "minimum",
                           "mul",         "mul_scalar", "neg",         "pow",     "pow_scalar",
                           "rdiv_scalar", "reciprocal", "relu",        "rsqrt",   "rsub_scalar",
                           "sigmoid",     "silu",       "sin",         "sqrt",    "square",
                           "sub",         "tanh",       "where"},
                          {"eq", "ge", "gt", "le", "logical_and", "logical_not", "lt", "ne"});
}  // namespace

using kernels::BinaryOp;
using kernels::UnaryOp;

namespace {
Array scalar_like(double v, const Array& a) {
  return kernels::scalar(v, a.dtype());
}
}  // namespace

// add: z = a + b.   da = dz, db = dz (each summed to its shape)
Tensor add(const Tensor& a, const Tensor& b) {
  Shape sa = a.shape(), sb = b.shape();
  return make_op(
      "add", {a, b}, kernels::add(a.data(), b.data()),
      [sa, sb](const Array& dy, const Needs& n) -> Grads {
        return {n[0] ? kernels::sum_to(dy, sa) : Array{}, n[1] ? kernels::sum_to(dy, sb) : Array{}};
      });
}

// sub: z = a − b.   da = dz, db = −dz
Tensor sub(const Tensor& a, const Tensor& b) {
  Shape sa = a.shape(), sb = b.shape();
  return make_op("sub", {a, b}, kernels::sub(a.data(), b.data()),
                 [sa, sb](const Array& dy, const Needs& n) -> Grads {
                   return {n[0] ? kernels::sum_to(dy, sa) : Array{},
                           n[1] ? kernels::sum_to(kernels::neg(dy), sb) : Array{}};
                 });
}

// mul: z = a·b.   da = dz·b, db = dz·a
Tensor mul(const Tensor& a, const Tensor& b) {
  Shape sa = a.shape(), sb = b.shape();
  return make_op(
      "mul", {a, b}, kernels::mul(a.data(), b.data()),
      [A = save(a, "mul"), B = save(b, "mul"), sa, sb](const Array& dy, const Needs& n) -> Grads {
        return {n[0] ? kernels::sum_to(kernels::mul(dy, B.get()), sa) : Array{},
                n[1] ? kernels::sum_to(kernels::mul(dy, A.get()), sb) : Array{}};
      });
}

// div: z = a / b.   da = dz / b, db = −dz·a / b²
Tensor div(const Tensor& a, const Tensor& b) {
  Shape sa = a.shape(), sb = b.shape();
  return make_op(
      "div", {a, b}, kernels::div(a.data(), b.data()),
      [A = save(a, "div"), B = save(b, "div"), sa, sb](const Array& dy, const Needs& n) -> Grads {
        Array da, db;
        if (n[0]) da = kernels::sum_to(kernels::div(dy, B.get()), sa);
        if (n[1]) {
          Array b2 = kernels::mul(B.get(), B.get());
          db = kernels::sum_to(kernels::neg(kernels::div(kernels::mul(dy, A.get()), b2)), sb);
        }
        return {da, db};
      });
}

// pow: z = a^b.   da = dz·b·a^(b−1), db = dz·z·log(a)
Tensor pow(const Tensor& a, const Tensor& b) {
  Shape sa = a.shape(), sb = b.shape();
  Array z = kernels::binary(BinaryOp::Pow, a.data(), b.data());
  return make_op(
      "pow", {a, b}, z,
      [A = save(a, "pow"), B = save(b, "pow"), Z = save(z, "pow"), sa, sb](
          const Array& dy, const Needs& n) -> Grads {
        Array da, db;
        if (n[0]) {
          Array e = kernels::binary(BinaryOp::Pow, A.get(), kernels::add(B.get(), -1.0));
          da = kernels::sum_to(kernels::mul(dy, kernels::mul(B.get(), e)), sa);
        }
        if (n[1])
          db = kernels::sum_to(
              kernels::mul(dy, kernels::mul(Z.get(), kernels::unary(UnaryOp::Log, A.get()))), sb);
        return {da, db};
      });
}

Tensor add(const Tensor& a, double s) {
  return make_op("add_scalar", {a}, kernels::add(a.data(), s),
                 [](const Array& dy) -> Grads { return {dy}; }, {{"value", s}});
}
Tensor mul(const Tensor& a, double s) {
  return make_op("mul_scalar", {a}, kernels::mul(a.data(), s),
                 [s](const Array& dy) -> Grads { return {kernels::mul(dy, s)}; }, {{"value", s}});
}
// pow_scalar: z = a^p.   da = dz·p·a^(p−1)
Tensor pow(const Tensor& a, double p) {
  return make_op("pow_scalar", {a}, kernels::binary(BinaryOp::Pow, a.data(), p),
                 [A = save(a, "pow_scalar"), p](const Array& dy) -> Grads {
                   return {kernels::mul(
                       kernels::mul(dy, kernels::binary(BinaryOp::Pow, A.get(), p - 1.0)), p)};
                 },
                 {{"exponent", p}});
}
Tensor sub(const Tensor& a, double s) {
  return add(a, -s);
}
Tensor div(const Tensor& a, double s) {
  return mul(a, 1.0 / s);
}

// rsub: z = s − a
Tensor rsub(const Tensor& a, double s) {
  return make_op("rsub_scalar", {a},
                 kernels::binary(BinaryOp::Sub, scalar_like(s, a.data()), a.data()),
                 [](const Array& dy) -> Grads { return {kernels::neg(dy)}; }, {{"value", s}});
}
// rdiv: z = s / a.   da = −dz·s / a²
Tensor rdiv(const Tensor& a, double s) {
  Array z = kernels::binary(BinaryOp::Div, scalar_like(s, a.data()), a.data());
  return make_op("rdiv_scalar", {a}, z,
                 [A = save(a, "rdiv_scalar"), s](const Array& dy) -> Grads {
                   Array a2 = kernels::mul(A.get(), A.get());
                   return {kernels::neg(kernels::mul(kernels::div(dy, a2), s))};
                 },
                 {{"value", s}});
}

// maximum / minimum: the gradient goes to the selected side (split evenly on ties, as PyTorch).
static Tensor minmax(const char* name, BinaryOp op, const Tensor& a, const Tensor& b) {
  Shape sa = a.shape(), sb = b.shape();
  return make_op(
      name, {a, b}, kernels::binary(op, a.data(), b.data()),
      [A = save(a, name), B = save(b, name), sa, sb, op](const Array& dy, const Needs& n) -> Grads {
        BinaryOp pick = op == BinaryOp::Maximum ? BinaryOp::Gt : BinaryOp::Lt;
        Array wa = kernels::binary(pick, A.get(), B.get()).to(dy.dtype());
        Array tie = kernels::binary(BinaryOp::Eq, A.get(), B.get()).to(dy.dtype());
        wa = kernels::add(wa, kernels::mul(tie, 0.5));
        Array wb = kernels::binary(BinaryOp::Sub, kernels::scalar(1.0, dy.dtype()), wa);
        return {n[0] ? kernels::sum_to(kernels::mul(dy, wa), sa) : Array{},
                n[1] ? kernels::sum_to(kernels::mul(dy, wb), sb) : Array{}};
      });
}
Tensor maximum(const Tensor& a, const Tensor& b) {
  return minmax("maximum", BinaryOp::Maximum, a, b);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return minmax("minimum", BinaryOp::Minimum, a, b);
}

Tensor neg(const Tensor& x) {
  return make_op("neg", {x}, kernels::neg(x.data()),
                 [](const Array& dy) -> Grads { return {kernels::neg(dy)}; });
}
// abs: dx = dz·sign(x)
Tensor abs(const Tensor& x) {
  return make_op("abs", {x}, kernels::unary(UnaryOp::Abs, x.data()),
                 [X = save(x, "abs")](const Array& dy) -> Grads {
                   return {kernels::mul(dy, kernels::unary(UnaryOp::Sign, X.get()))};
                 });
}
// exp: dx = dz·y
Tensor exp(const Tensor& x) {
  Array y = kernels::unary(UnaryOp::Exp, x.data());
  return make_op("exp", {x}, y, [Y = save(y, "exp")](const Array& dy) -> Grads {
    return {kernels::mul(dy, Y.get())};
  });
}
// log: dx = dz / x
Tensor log(const Tensor& x) {
  return make_op(
      "log", {x}, kernels::unary(UnaryOp::Log, x.data()),
      [X = save(x, "log")](const Array& dy) -> Grads { return {kernels::div(dy, X.get())}; });
}
// log1p: dx = dz / (1 + x)
Tensor log1p(const Tensor& x) {
  return make_op("log1p", {x}, kernels::unary(UnaryOp::Log1p, x.data()),
                 [X = save(x, "log1p")](const Array& dy) -> Grads {
                   return {kernels::div(dy, kernels::add(X.get(), 1.0))};
                 });
}
// sqrt: dx = dz / (2·y)
Tensor sqrt(const Tensor& x) {
  Array y = kernels::unary(UnaryOp::Sqrt, x.data());
  return make_op("sqrt", {x}, y, [Y = save(y, "sqrt")](const Array& dy) -> Grads {
    return {kernels::div(dy, kernels::mul(Y.get(), 2.0))};
  });
}
// rsqrt: y = x^(−1/2); dx = −dz·y³/2
Tensor rsqrt(const Tensor& x) {
  Array y = kernels::unary(UnaryOp::Rsqrt, x.data());
  return make_op("rsqrt", {x}, y, [Y = save(y, "rsqrt")](const Array& dy) -> Grads {
    Array y3 = kernels::mul(kernels::mul(Y.get(), Y.get()), Y.get());
    return {kernels::mul(kernels::mul(dy, y3), -0.5)};
  });
}
// square: dx = 2·dz·x
Tensor square(const Tensor& x) {
  return make_op("square", {x}, kernels::unary(UnaryOp::Square, x.data()),
                 [X = save(x, "square")](const Array& dy) -> Grads {
                   return {kernels::mul(kernels::mul(dy, X.get()), 2.0)};
                 });
}
// reciprocal: y = 1/x; dx = −dz·y²
Tensor reciprocal(const Tensor& x) {
  Array y = kernels::unary(UnaryOp::Reciprocal, x.data());
  return make_op("reciprocal", {x}, y, [Y = save(y, "reciprocal")](const Array& dy) -> Grads {
    return {kernels::neg(kernels::mul(dy, kernels::mul(Y.get(), Y.get())))};
  });
}
// sin: dx = dz·cos(x)
Tensor sin(const Tensor& x) {
  return make_op("sin", {x}, kernels::unary(UnaryOp::Sin, x.data()),
                 [X = save(x, "sin")](const Array& dy) -> Grads {
                   return {kernels::mul(dy, kernels::unary(UnaryOp::Cos, X.get()))};
                 });
}
// cos: dx = −dz·sin(x)
Tensor cos(const Tensor& x) {
  return make_op("cos", {x}, kernels::unary(UnaryOp::Cos, x.data()),
                 [X = save(x, "cos")](const Array& dy) -> Grads {
                   return {kernels::neg(kernels::mul(dy, kernels::unary(UnaryOp::Sin, X.get())))};
                 });
}
// erf: dx = dz·2/√π·exp(−x²)
Tensor erf(const Tensor& x) {
  return make_op("erf", {x}, kernels::unary(UnaryOp::Erf, x.data()),
                 [X = save(x, "erf")](const Array& dy) -> Grads {
                   Array e = kernels::unary(UnaryOp::Exp,
                                            kernels::neg(kernels::unary(UnaryOp::Square, X.get())));
                   return {kernels::mul(kernels::mul(dy, e), 1.1283791670955126)};
                 });
}
// tanh: dx = dz·(1 − y²)
Tensor tanh(const Tensor& x) {
  Array y = kernels::unary(UnaryOp::Tanh, x.data());
  return make_op("tanh", {x}, y, [Y = save(y, "tanh")](const Array& dy) -> Grads {
    return {kernels::binary(BinaryOp::TanhGrad, dy, Y.get())};
  });
}
// sigmoid: dx = dz·y·(1 − y)
Tensor sigmoid(const Tensor& x) {
  Array y = kernels::unary(UnaryOp::Sigmoid, x.data());
  return make_op("sigmoid", {x}, y, [Y = save(y, "sigmoid")](const Array& dy) -> Grads {
    return {kernels::binary(BinaryOp::SigmoidGrad, dy, Y.get())};
  });
}
// relu: dx = dz·[x > 0]
Tensor relu(const Tensor& x) {
  Array y = kernels::unary(UnaryOp::Relu, x.data());
  return make_op("relu", {x}, y, [Y = save(y, "relu")](const Array& dy) -> Grads {
    return {kernels::binary(BinaryOp::ReluGrad, dy, Y.get())};
  });
}
// leaky_relu: y = x if x > 0 else slope·x
Tensor leaky_relu(const Tensor& x, double slope) {
  Array pos = kernels::binary(BinaryOp::Gt, x.data(), 0.0);
  Array y = kernels::where(pos, x.data(), kernels::mul(x.data(), slope));
  return make_op("leaky_relu", {x}, y,
                 [P = save(pos, "leaky_relu"), slope](const Array& dy) -> Grads {
                   return {kernels::where(P.get(), dy, kernels::mul(dy, slope))};
                 },
                 {{"alpha", slope}});
}
// gelu: erf form 0.5·x·(1 + erf(x/√2)) or the tanh approximation; fused backward kernels.
Tensor gelu(const Tensor& x, const std::string& approximate) {
  KILN_CHECK(approximate == "none" || approximate == "tanh",
             "gelu: approximate must be \"none\" or \"tanh\", got \"{}\"", approximate);
  bool t = approximate == "tanh";
  return make_op(
      "gelu", {x}, kernels::unary(t ? UnaryOp::GeluTanh : UnaryOp::GeluErf, x.data()),
      [X = save(x, "gelu"), t](const Array& dy) -> Grads {
        return {kernels::binary(t ? BinaryOp::GeluTanhGrad : BinaryOp::GeluErfGrad, dy, X.get())};
      },
      {{"approximate", approximate}});
}
// silu: y = x·σ(x)
Tensor silu(const Tensor& x) {
  return make_op("silu", {x}, kernels::unary(UnaryOp::Silu, x.data()),
                 [X = save(x, "silu")](const Array& dy) -> Grads {
                   return {kernels::binary(BinaryOp::SiluGrad, dy, X.get())};
                 });
}
// clamp: dx = dz where lo <= x <= hi
Tensor clamp(const Tensor& x, double lo, double hi) {
  return make_op("clamp", {x}, kernels::clamp(x.data(), lo, hi),
                 [X = save(x, "clamp"), lo, hi](const Array& dy) -> Grads {
                   return {kernels::clamp_backward(dy, X.get(), lo, hi)};
                 },
                 {{"min", lo}, {"max", hi}});
}
// where: gradient to a where cond, to b elsewhere.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  KILN_CHECK_TYPE(cond.dtype() == kBool, "where: condition must be bool, got {}", cond.dtype());
  Shape sa = a.shape(), sb = b.shape();
  return make_op("where", {cond, a, b}, kernels::where(cond.data(), a.data(), b.data()),
                 [C = save(cond, "where"), sa, sb](const Array& dy, const Needs& n) -> Grads {
                   Array zero = kernels::scalar(0.0, dy.dtype());
                   return {Array{},
                           n[1] ? kernels::sum_to(kernels::where(C.get(), dy, zero), sa) : Array{},
                           n[2] ? kernels::sum_to(kernels::where(C.get(), zero, dy), sb) : Array{}};
                 });
}
// masked_fill: filled positions get no gradient.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  return make_op("masked_fill", {x, mask}, kernels::masked_fill(x.data(), mask.data(), value),
                 [M = save(mask, "masked_fill")](const Array& dy) -> Grads {
                   return {kernels::masked_fill(dy, M.get(), 0.0), Array{}};
                 },
                 {{"value", value}});
}

// ---- comparisons (not differentiable) ----
#define KILN_CMP(fn, op)                                                                    \
  Tensor fn(const Tensor& a, const Tensor& b) {                                             \
    return make_nondiff_op(#fn, {a, b}, kernels::binary(BinaryOp::op, a.data(), b.data())); \
  }
KILN_CMP(eq, Eq)
KILN_CMP(ne, Ne)
KILN_CMP(lt, Lt)
KILN_CMP(le, Le)
KILN_CMP(gt, Gt)
KILN_CMP(ge, Ge)
KILN_CMP(logical_and, LogicalAnd)
#undef KILN_CMP
Tensor eq(const Tensor& a, double s) {
  return make_nondiff_op("eq", {a}, kernels::binary(BinaryOp::Eq, a.data(), s), {{"value", s}});
}
Tensor gt(const Tensor& a, double s) {
  return make_nondiff_op("gt", {a}, kernels::binary(BinaryOp::Gt, a.data(), s), {{"value", s}});
}
Tensor lt(const Tensor& a, double s) {
  return make_nondiff_op("lt", {a}, kernels::binary(BinaryOp::Lt, a.data(), s), {{"value", s}});
}
Tensor logical_not(const Tensor& a) {
  return make_nondiff_op("logical_not", {a}, kernels::unary(UnaryOp::LogicalNot, a.data()));
}

Tensor operator+(const Tensor& a, const Tensor& b) {
  return add(a, b);
}
Tensor operator-(const Tensor& a, const Tensor& b) {
  return sub(a, b);
}
Tensor operator*(const Tensor& a, const Tensor& b) {
  return mul(a, b);
}
Tensor operator/(const Tensor& a, const Tensor& b) {
  return div(a, b);
}
Tensor operator-(const Tensor& a) {
  return neg(a);
}
Tensor operator+(const Tensor& a, double s) {
  return add(a, s);
}
Tensor operator-(const Tensor& a, double s) {
  return add(a, -s);
}
Tensor operator*(const Tensor& a, double s) {
  return mul(a, s);
}
Tensor operator/(const Tensor& a, double s) {
  return mul(a, 1.0 / s);
}
Tensor operator+(double s, const Tensor& a) {
  return add(a, s);
}
Tensor operator-(double s, const Tensor& a) {
  return rsub(a, s);
}
Tensor operator*(double s, const Tensor& a) {
  return mul(a, s);
}
Tensor operator/(double s, const Tensor& a) {
  return rdiv(a, s);
}

}  // namespace kiln
