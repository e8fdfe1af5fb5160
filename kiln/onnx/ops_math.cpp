// ONNX elementwise math, comparisons, reductions and softmax for import_model (see
// import_ops_internal.h). Differentiable ONNX ops are Kiln autograd ops or composites of them
// (their gradients come free); the rest produce constants (no gradient): comparisons, logic,
// Floor/Ceil/Round/Sign, IsNaN/IsInf, Mod, BitShift, integer Div, and Asin/Acos/Atan (Kiln has no
// autograd entry for them yet).
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kiln/onnx/import_ops_internal.h"
#include "kiln/tensor/ops.h"
#include "kiln/tensor/reduce.h"
#include "kiln/tensor/shape.h"

namespace kiln::onnx::detail {
namespace {

using Outs = std::vector<Tensor>;

// out[i] = f(a[i]) in T (double for floats, int64 for integers), then converted to `out`.
template <typename T, typename F>
Array map1(const Array& a, DType out, F f) {
  const DType work = dtype_v<T>;
  Array x = a.to(work).contiguous();
  Array y(a.shape(), work);
  const T* px = x.data<T>();
  T* py = y.data<T>();
  for (int64_t k = 0; k < x.numel(); ++k) py[k] = f(px[k]);
  return y.to(out);
}

// out[i] = f(a[i], b[i]) with NumPy broadcasting, computed in T.
template <typename T, typename F>
Array map2(const Array& a, const Array& b, DType out, F f, const char* op) {
  const Shape s = broadcast_shapes(a.shape(), b.shape(), op);
  const DType work = dtype_v<T>;
  Array x = a.to(work).expand(s).contiguous();
  Array y = b.to(work).expand(s).contiguous();
  Array z(s, work);
  const T *px = x.data<T>(), *py = y.data<T>();
  T* pz = z.data<T>();
  for (int64_t k = 0; k < z.numel(); ++k) pz[k] = f(px[k], py[k]);
  return z.to(out);
}

// ---- binary arithmetic --------------------------------------------------------------------

// A constant one-element float operand (Paddle and TF exports scale by [1]-shaped constants)
// takes Kiln's scalar path: one vectorised pass instead of a broadcast loop. The result keeps the
// broadcast shape and the gradient w.r.t. the other operand.
bool scalar_const(const Tensor& s, const Tensor& other) {
  return s.numel() == 1 && !s.requires_grad() && s.dtype() == other.dtype() &&
         is_floating(other.dtype()) && s.dim() <= other.dim();
}
enum class Arith { Add, Sub, Mul, Div };
template <Arith A>
Outs arith_op(const NodeContext& n, const Inputs& in) {
  const Tensor &a = required(n, in, 0), &b = required(n, in, 1);
  if (scalar_const(b, a)) {
    const double v = b.to_vector<double>()[0];
    if (A == Arith::Add) return {add(a, v)};
    if (A == Arith::Sub) return {sub(a, v)};
    if (A == Arith::Mul) return {mul(a, v)};
    return {div(a, v)};
  }
  if (scalar_const(a, b)) {
    const double v = a.to_vector<double>()[0];
    if (A == Arith::Add) return {add(b, v)};
    if (A == Arith::Sub) return {rsub(b, v)};
    if (A == Arith::Mul) return {mul(b, v)};
    return {rdiv(b, v)};
  }
  if (A == Arith::Add) return {add(a, b)};
  if (A == Arith::Sub) return {sub(a, b)};
  return {mul(a, b)};
}
// Integer Div truncates toward zero (C semantics), float Div is true division.
Outs div_op(const NodeContext& n, const Inputs& in) {
  const Tensor &a = required(n, in, 0), &b = required(n, in, 1);
  if (is_floating(a.dtype()))
    return scalar_const(b, a) || scalar_const(a, b) ? arith_op<Arith::Div>(n, in) : Outs{div(a, b)};
  KILN_CHECK(b.data().to(kInt64).numel() == 0 ||
                 kernels::sum(kernels::binary(kernels::BinaryOp::Eq, b.data(), 0.0).to(kInt64))
                         .item<int64_t>() == 0,
             "{}: integer division by zero", n.where());
  return {nondiff(
      n, in,
      map2<int64_t>(
          a.data(), b.data(), a.dtype(), [](int64_t x, int64_t y) { return x / y; }, "Div"))};
}
// Pow's result has the base's type (the exponent may be another type since opset 12).
Outs pow_op(const NodeContext& n, const Inputs& in) {
  const Tensor &a = required(n, in, 0), &b = required(n, in, 1);
  if (!is_floating(a.dtype()))
    return {nondiff(n, in,
                    map2<double>(
                        a.data(), b.data(), a.dtype(),
                        [](double x, double y) { return std::pow(x, y); }, "Pow"))};
  if (b.numel() == 1 && !b.requires_grad() && b.dim() <= a.dim()) {
    const double e = scalar_value(n, b, "exponent");
    if (e == 2.0) return {square(a)};
    Tensor r = pow(a, e);
    return {b.dim() == 0 ? r : reshape(r, broadcast_shapes(a.shape(), b.shape(), "Pow"))};
  }
  return {to_dtype(pow(a, to_dtype(b, a.dtype())), a.dtype())};
}
Outs mod_op(const NodeContext& n, const Inputs& in) {
  const Tensor &a = required(n, in, 0), &b = required(n, in, 1);
  const bool fmod = n.i("fmod", 0) != 0;
  if (is_floating(a.dtype()) || fmod)
    return {nondiff(n, in,
                    map2<double>(
                        a.data(), b.data(), a.dtype(),
                        [fmod](double x, double y) {
                          double r = std::fmod(x, y);
                          if (!fmod && r != 0 && ((r < 0) != (y < 0))) r += y;
                          return r;
                        },
                        "Mod"))};
  return {nondiff(n, in,
                  map2<int64_t>(
                      a.data(), b.data(), a.dtype(),
                      [](int64_t x, int64_t y) {
                        if (y == 0) return int64_t{0};
                        int64_t r = x % y;
                        if (r != 0 && ((r < 0) != (y < 0))) r += y;
                        return r;
                      },
                      "Mod"))};
}

// ---- variadic -----------------------------------------------------------------------------

template <Tensor (*F)(const Tensor&, const Tensor&)>
Outs fold_op(const NodeContext& n, const Inputs& in) {
  Tensor acc = required(n, in, 0);
  for (size_t k = 1; k < in.size(); ++k) acc = F(acc, required(n, in, k));
  return {acc};
}
Tensor add2(const Tensor& a, const Tensor& b) {
  return add(a, b);
}
Outs mean_op(const NodeContext& n, const Inputs& in) {
  return {div(fold_op<add2>(n, in)[0], static_cast<double>(in.size()))};
}

// ---- unary --------------------------------------------------------------------------------

template <Tensor (*F)(const Tensor&)>
Outs unary_op(const NodeContext& n, const Inputs& in) {
  return {F(required(n, in, 0))};
}
template <kernels::UnaryOp Op>
Outs unary_nondiff(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  return {nondiff(n, in, kernels::unary(Op, x.data()).to(x.dtype()))};
}
template <double (*F)(double)>
Outs unary_math(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  return {nondiff(n, in, map1<double>(x.data(), x.dtype(), F))};
}
double asin_f(double x) {
  return std::asin(x);
}
double acos_f(double x) {
  return std::acos(x);
}
double atan_f(double x) {
  return std::atan(x);
}

Tensor tan_f(const Tensor& x) {
  return div(sin(x), cos(x));
}
Tensor sinh_f(const Tensor& x) {
  return mul(sub(exp(x), exp(neg(x))), 0.5);
}
Tensor cosh_f(const Tensor& x) {
  return mul(add(exp(x), exp(neg(x))), 0.5);
}
Tensor asinh_f(const Tensor& x) {
  return log(add(x, sqrt(add(square(x), 1.0))));
}
Tensor acosh_f(const Tensor& x) {
  return log(add(x, sqrt(sub(square(x), 1.0))));
}
Tensor atanh_f(const Tensor& x) {
  return mul(log(div(add(x, 1.0), rsub(x, 1.0))), 0.5);
}
// log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|).
Tensor softplus_f(const Tensor& x) {
  return add(relu(x), log1p(exp(neg(abs(x)))));
}
Tensor softsign_f(const Tensor& x) {
  return div(x, add(abs(x), 1.0));
}
Tensor mish_f(const Tensor& x) {
  return mul(x, tanh(softplus_f(x)));
}
// e^min(x,0) - 1 keeps the unused branch of Elu/Selu finite (so its masked gradient is 0, not NaN).
Tensor expm1_neg(const Tensor& x) {
  return sub(exp(minimum(x, zeros_like(x))), 1.0);
}

Outs elu_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const double alpha = n.f("alpha", 1.0);
  return {add(relu(x), mul(expm1_neg(x), alpha))};
}
Outs selu_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const double alpha = n.f("alpha", 1.67326319217681884765625);
  const double gamma = n.f("gamma", 1.05070102214813232421875);
  return {mul(add(relu(x), mul(expm1_neg(x), alpha)), gamma)};
}
Outs celu_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const double alpha = n.f("alpha", 1.0);
  return {add(relu(x), mul(expm1_neg(div(x, alpha)), alpha))};
}
Outs leaky_relu_op(const NodeContext& n, const Inputs& in) {
  return {leaky_relu(required(n, in, 0), n.f("alpha", 0.01))};
}
Outs thresholded_relu_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  return {mul(x, to_dtype(gt(x, n.f("alpha", 1.0)), x.dtype()))};
}
Outs hard_sigmoid_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  return {clamp(add(mul(x, n.f("alpha", 0.2)), n.f("beta", 0.5)), 0.0, 1.0)};
}
Outs hard_swish_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  return {mul(x, clamp(add(mul(x, 1.0 / 6.0), 0.5), 0.0, 1.0))};
}
// PRelu: x for x >= 0, slope·x below; slope broadcasts (unidirectionally) to x.
Outs prelu_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  Tensor slope = required(n, in, 1);
  // Before opset 7 a 1-D slope of C values applies along dim 1 (per channel).
  if (n.opset < 7 && slope.dim() == 1 && x.dim() > 2 && slope.size(0) == x.size(1)) {
    Shape s(static_cast<size_t>(x.dim() - 1), 1);
    s[0] = slope.size(0);
    slope = reshape(slope, s);
  }
  return {sub(relu(x), mul(slope, relu(neg(x))))};
}
Outs gelu_op(const NodeContext& n, const Inputs& in) {
  return {gelu(required(n, in, 0), n.s("approximate", "none"))};
}
Outs shrink_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const double lambd = n.f("lambd", 0.5), bias = n.f("bias", 0.0);
  const Tensor below = to_dtype(lt(x, -lambd), x.dtype()),
               above = to_dtype(gt(x, lambd), x.dtype());
  return {add(mul(add(x, bias), below), mul(sub(x, bias), above))};
}
Outs clip_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  double lo = -std::numeric_limits<double>::infinity(), hi = -lo;
  if (n.opset < 11) {
    lo = n.f("min", lo);
    hi = n.f("max", hi);
  } else {
    if (in.size() > 1 && in[1].defined()) lo = scalar_value(n, in[1], "min");
    if (in.size() > 2 && in[2].defined()) hi = scalar_value(n, in[2], "max");
  }
  if (!is_floating(x.dtype())) {
    if (std::isinf(lo)) lo = -1e300;
    if (std::isinf(hi)) hi = 1e300;
  }
  return {clamp(x, lo, hi)};
}
Outs sign_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  return {nondiff(n, in, map1<double>(x.data(), x.dtype(), [](double v) {
                    return double((v > 0) - (v < 0));
                  }))};
}
Outs isnan_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  return {nondiff(n, in,
                  map1<double>(x.data(), kBool, [](double v) { return double(std::isnan(v)); }))};
}
Outs isinf_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const bool pos = n.i("detect_positive", 1) != 0, neg_ = n.i("detect_negative", 1) != 0;
  return {nondiff(n, in, map1<double>(x.data(), kBool, [=](double v) {
                    return double(std::isinf(v) && ((v > 0 && pos) || (v < 0 && neg_)));
                  }))};
}

// ---- comparisons and logic (bool results) -------------------------------------------------

// Comparisons and logic through Kiln's traced ops (so a re-export writes them, not constants).
template <Tensor (*F)(const Tensor&, const Tensor&)>
Outs compare_op(const NodeContext& n, const Inputs& in) {
  return {F(required(n, in, 0), required(n, in, 1))};
}
Tensor or_f(const Tensor& a, const Tensor& b) {
  return logical_not(logical_and(logical_not(a), logical_not(b)));
}
Outs not_op(const NodeContext& n, const Inputs& in) {
  return {logical_not(required(n, in, 0))};
}
Outs where_op(const NodeContext& n, const Inputs& in) {
  return {where(required(n, in, 0), required(n, in, 1), required(n, in, 2))};
}
Outs bitshift_op(const NodeContext& n, const Inputs& in) {
  const Tensor &a = required(n, in, 0), &b = required(n, in, 1);
  const bool left = n.s("direction", "") == "LEFT";
  return {nondiff(n, in,
                  map2<int64_t>(
                      a.data(), b.data(), a.dtype(),
                      [left](int64_t x, int64_t s) {
                        if (s < 0 || s > 63) return int64_t{0};
                        const auto u = static_cast<uint64_t>(x);
                        return static_cast<int64_t>(left ? u << s : u >> s);
                      },
                      "BitShift"))};
}

// ---- reductions ---------------------------------------------------------------------------

// The axes of a Reduce* node: an attribute before opset 18 (13 for ReduceSum), an input after.
// Empty means all axes unless noop_with_empty_axes.
struct ReduceSpec {
  Dims dims;
  bool keepdim = true;
  bool noop = false;
};
ReduceSpec reduce_spec(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  ReduceSpec r;
  r.keepdim = n.i("keepdims", 1) != 0;
  const bool axes_input = (n.op_type == "ReduceSum" && n.opset >= 13) || n.opset >= 18;
  std::vector<int64_t> axes = axes_input
                                  ? (in.size() > 1 && in[1].defined() ? int_values(n, in[1], "axes")
                                                                      : std::vector<int64_t>{})
                                  : n.ints("axes");
  if (axes.empty()) {
    r.noop = n.i("noop_with_empty_axes", 0) != 0;
    for (int64_t d = 0; d < x.dim(); ++d) r.dims.push_back(d);
  } else {
    for (int64_t a : axes) r.dims.push_back(axis(n, a, x.dim()));
  }
  return r;
}

enum class Reduce { Sum, Mean, Max, Min, Prod, L1, L2, LogSum, LogSumExp, SumSquare };

template <Reduce R>
Outs reduce_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const ReduceSpec r = reduce_spec(n, in);
  if (r.noop) return {x};
  if (x.dim() == 0) return {x};
  const bool k = r.keepdim;
  const bool empty = x.numel() == 0;
  switch (R) {
    case Reduce::Sum:
      return {is_floating(x.dtype())
                  ? sum(x, r.dims, k)
                  : nondiff(n, in, kernels::sum(x.data(), r.dims, k).to(x.dtype()))};
    case Reduce::Mean:
      return {mean(x, r.dims, k)};
    case Reduce::Max:
      if (empty)
        return {nondiff(n, in,
                        kernels::add(kernels::sum(x.data(), r.dims, k),
                                     -std::numeric_limits<double>::infinity())
                            .to(x.dtype()))};
      return {is_floating(x.dtype()) ? amax(x, r.dims, k)
                                     : nondiff(n, in, kernels::amax(x.data(), r.dims, k))};
    case Reduce::Min:
      if (empty)
        return {nondiff(
            n, in,
            kernels::add(kernels::sum(x.data(), r.dims, k), std::numeric_limits<double>::infinity())
                .to(x.dtype()))};
      return {is_floating(x.dtype()) ? amin(x, r.dims, k)
                                     : nondiff(n, in, kernels::amin(x.data(), r.dims, k))};
    case Reduce::Prod: {
      // Π x = exp(Σ log|x|) · sign; computed directly (no gradient) to stay exact for zeros.
      Array moved = x.data().to(kFloat64);
      Shape out_shape = kernels::reduced_shape(x.shape(), r.dims, k);
      std::vector<int64_t> perm, keep;
      for (int64_t d = 0; d < x.dim(); ++d)
        if (std::find(r.dims.begin(), r.dims.end(), d) == r.dims.end()) perm.push_back(d);
      keep = perm;
      for (int64_t d : r.dims) perm.push_back(d);
      Array p = moved.permute(perm).contiguous();
      int64_t outer = 1;
      for (int64_t d : keep) outer *= x.size(d);
      const int64_t inner = outer == 0 ? 0 : p.numel() / std::max<int64_t>(outer, 1);
      Array o(Shape{outer}, kFloat64);
      const double* src = p.data<double>();
      for (int64_t i = 0; i < outer; ++i) {
        double acc = 1.0;
        for (int64_t j = 0; j < inner; ++j) acc *= src[i * inner + j];
        o.data<double>()[i] = acc;
      }
      return {nondiff(n, in, o.reshape(out_shape).to(x.dtype()))};
    }
    case Reduce::L1:
      return {sum(abs(x), r.dims, k)};
    case Reduce::L2:
      return {sqrt(sum(square(x), r.dims, k))};
    case Reduce::LogSum:
      return {log(sum(x, r.dims, k))};
    case Reduce::LogSumExp:
      return {logsumexp(x, r.dims, k)};
    case Reduce::SumSquare:
      return {sum(square(x), r.dims, k)};
  }
  return {};
}

// ArgMax/ArgMin; select_last_index picks the last of equal values (reverse, pick, map back).
template <bool Max>
Outs arg_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const int64_t a = axis(n, n.i("axis", 0), x.dim());
  const bool keep = n.i("keepdims", 1) != 0;
  Array xv = x.data();
  const bool last = n.i("select_last_index", 0) != 0;
  if (last) xv = xv.contiguous();
  if (last) {
    const int64_t len = x.size(a);
    Array idx(Shape{len}, kInt64);
    for (int64_t k = 0; k < len; ++k) idx.data<int64_t>()[k] = len - 1 - k;
    xv = index_select(Tensor(xv), a, Tensor(idx)).data();
    Array r = Max ? kernels::argmax(xv, a, keep) : kernels::argmin(xv, a, keep);
    return {nondiff(n, in, kernels::sub(kernels::scalar(static_cast<double>(len - 1), kInt64), r))};
  }
  return {nondiff(n, in, Max ? kernels::argmax(xv, a, keep) : kernels::argmin(xv, a, keep))};
}

// ---- softmax family -----------------------------------------------------------------------

// Before opset 13 the input is seen as 2-D (dims before `axis` x dims from `axis`), softmax over
// the second; from 13 on, over the one axis (default -1).
template <int Kind>  // 0 softmax, 1 log-softmax, 2 hardmax
Outs softmax_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  auto apply = [&](const Tensor& t, int64_t d) -> Tensor {
    if (Kind == 0) return softmax(t, d);
    if (Kind == 1) return log_softmax(t, d);
    Tensor idx = argmax(t, d, true);
    Array oh =
        kernels::binary(kernels::BinaryOp::Eq,
                        arange(0, static_cast<double>(t.size(d)), 1.0, kInt64).data().reshape([&] {
                          Shape s(static_cast<size_t>(t.dim()), 1);
                          s[static_cast<size_t>(d)] = t.size(d);
                          return s;
                        }()),
                        idx.data());
    return nondiff(n, in, oh.to(t.dtype()));
  };
  if (x.dim() == 0) return {apply(reshape(x, {1}), 0).reshape({})};
  if (n.opset >= 13) return {apply(x, axis(n, n.i("axis", -1), x.dim()))};
  const int64_t a = axis(n, n.i("axis", 1), x.dim());
  int64_t outer = 1;
  for (int64_t d = 0; d < a; ++d) outer *= x.size(d);
  const int64_t inner = outer == 0 ? 0 : x.numel() / std::max<int64_t>(outer, 1);
  return {reshape(apply(reshape(x, {outer, inner}), 1), x.shape())};
}

// CumSum along `axis` as a product with a triangular 0/1 matrix (differentiable; the axis is
// usually short).
Outs cumsum_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const int64_t a =
      axis(n, static_cast<int64_t>(scalar_value(n, required(n, in, 1), "axis")), x.dim());
  const bool exclusive = n.i("exclusive", 0) != 0, reverse = n.i("reverse", 0) != 0;
  const int64_t len = x.size(a);
  Array tri(Shape{len, len}, kFloat64);
  for (int64_t i = 0; i < len; ++i)
    for (int64_t j = 0; j < len; ++j) {
      // out[j] = Σ_i x[i]·tri[i][j]
      const bool on = reverse ? (exclusive ? i > j : i >= j) : (exclusive ? i < j : i <= j);
      tri.data<double>()[i * len + j] = on ? 1.0 : 0.0;
    }
  const DType work = is_floating(x.dtype()) ? x.dtype() : kFloat64;
  Tensor moved = transpose(to_dtype(x, work), a, -1);
  Tensor r = transpose(matmul(moved, Tensor(tri.to(work))), a, -1);
  if (!is_floating(x.dtype())) return {nondiff(n, in, r.data().to(x.dtype()))};
  return {contiguous(r)};
}

}  // namespace

void register_math_ops(OpTable& t) {
  using kernels::UnaryOp;
  t["Add"] = arith_op<Arith::Add>;
  t["Sub"] = arith_op<Arith::Sub>;
  t["Mul"] = arith_op<Arith::Mul>;
  t["Div"] = div_op;
  t["Pow"] = pow_op;
  t["Mod"] = mod_op;
  t["Max"] = fold_op<maximum>;
  t["Min"] = fold_op<minimum>;
  t["Sum"] = fold_op<add2>;
  t["Mean"] = mean_op;
  t["Neg"] = unary_op<neg>;
  t["Abs"] = unary_op<abs>;
  t["Exp"] = unary_op<exp>;
  t["Log"] = unary_op<log>;
  t["Sqrt"] = unary_op<sqrt>;
  t["Reciprocal"] = unary_op<reciprocal>;
  t["Sin"] = unary_op<sin>;
  t["Cos"] = unary_op<cos>;
  t["Tan"] = unary_op<tan_f>;
  t["Sinh"] = unary_op<sinh_f>;
  t["Cosh"] = unary_op<cosh_f>;
  t["Asinh"] = unary_op<asinh_f>;
  t["Acosh"] = unary_op<acosh_f>;
  t["Atanh"] = unary_op<atanh_f>;
  t["Asin"] = unary_math<asin_f>;
  t["Acos"] = unary_math<acos_f>;
  t["Atan"] = unary_math<atan_f>;
  t["Erf"] = unary_op<erf>;
  t["Tanh"] = unary_op<tanh>;
  t["Sigmoid"] = unary_op<sigmoid>;
  t["Relu"] = unary_op<relu>;
  t["Softplus"] = unary_op<softplus_f>;
  t["Softsign"] = unary_op<softsign_f>;
  t["Mish"] = unary_op<mish_f>;
  t["Elu"] = elu_op;
  t["Selu"] = selu_op;
  t["Celu"] = celu_op;
  t["LeakyRelu"] = leaky_relu_op;
  t["ThresholdedRelu"] = thresholded_relu_op;
  t["HardSigmoid"] = hard_sigmoid_op;
  t["HardSwish"] = hard_swish_op;
  t["PRelu"] = prelu_op;
  t["Gelu"] = gelu_op;
  t["Shrink"] = shrink_op;
  t["Clip"] = clip_op;
  t["Floor"] = unary_nondiff<UnaryOp::Floor>;
  t["Ceil"] = unary_nondiff<UnaryOp::Ceil>;
  t["Round"] = unary_nondiff<UnaryOp::Round>;
  t["Sign"] = sign_op;
  t["IsNaN"] = isnan_op;
  t["IsInf"] = isinf_op;
  t["Equal"] = compare_op<eq>;
  t["Less"] = compare_op<lt>;
  t["LessOrEqual"] = compare_op<le>;
  t["Greater"] = compare_op<gt>;
  t["GreaterOrEqual"] = compare_op<ge>;
  t["And"] = compare_op<logical_and>;
  t["Or"] = compare_op<or_f>;
  t["Xor"] = compare_op<ne>;
  t["Not"] = not_op;
  t["Where"] = where_op;
  t["BitShift"] = bitshift_op;
  t["ReduceSum"] = reduce_op<Reduce::Sum>;
  t["ReduceMean"] = reduce_op<Reduce::Mean>;
  t["ReduceMax"] = reduce_op<Reduce::Max>;
  t["ReduceMin"] = reduce_op<Reduce::Min>;
  t["ReduceProd"] = reduce_op<Reduce::Prod>;
  t["ReduceL1"] = reduce_op<Reduce::L1>;
  t["ReduceL2"] = reduce_op<Reduce::L2>;
  t["ReduceLogSum"] = reduce_op<Reduce::LogSum>;
  t["ReduceLogSumExp"] = reduce_op<Reduce::LogSumExp>;
  t["ReduceSumSquare"] = reduce_op<Reduce::SumSquare>;
  t["ArgMax"] = arg_op<true>;
  t["ArgMin"] = arg_op<false>;
  t["Softmax"] = softmax_op<0>;
  t["LogSoftmax"] = softmax_op<1>;
  t["Hardmax"] = softmax_op<2>;
  t["CumSum"] = cumsum_op;
}

}  // namespace kiln::onnx::detail
