// Elementwise kernels. Legend: x, y inputs/outputs; dy an incoming gradient; n element count.
#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>

#include <cmath>
#include <iterator>
#include <limits>

#include "kiln/tensor/error.h"
#include "kiln/tensor/kernels/loops.h"
#include "kiln/tensor/ops.h"

namespace kiln::kernels {
namespace {

constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kSqrt2OverPi = 0.79788456080286535588;

bool is_float_only(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg:
    case UnaryOp::Abs:
    case UnaryOp::Sign:
    case UnaryOp::Square:
    case UnaryOp::Relu:
    case UnaryOp::Floor:
    case UnaryOp::Ceil:
    case UnaryOp::Round:
    case UnaryOp::LogicalNot:
      return false;
    default:
      return true;
  }
}

template <typename T>
struct UnaryFn {
  UnaryOp op;
  T operator()(T v) const {
    using A = std::conditional_t<std::is_floating_point_v<T>, T, double>;
    A x = static_cast<A>(v);
    switch (op) {
      case UnaryOp::Neg:
        return static_cast<T>(-x);
      case UnaryOp::Abs:
        return static_cast<T>(std::abs(x));
      case UnaryOp::Exp:
        return static_cast<T>(std::exp(x));
      case UnaryOp::Log:
        return static_cast<T>(std::log(x));
      case UnaryOp::Sqrt:
        return static_cast<T>(std::sqrt(x));
      case UnaryOp::Rsqrt:
        return static_cast<T>(A(1) / std::sqrt(x));
      case UnaryOp::Sin:
        return static_cast<T>(std::sin(x));
      case UnaryOp::Cos:
        return static_cast<T>(std::cos(x));
      case UnaryOp::Tanh:
        return static_cast<T>(std::tanh(x));
      case UnaryOp::Sigmoid:
        return static_cast<T>(A(1) / (A(1) + std::exp(-x)));
      case UnaryOp::Relu:
        return static_cast<T>(x > A(0) ? x : A(0));
      case UnaryOp::GeluErf:
        return static_cast<T>(A(0.5) * x * (A(1) + std::erf(x * A(kSqrt1_2))));
      case UnaryOp::GeluTanh:
        return static_cast<T>(A(0.5) * x *
                              (A(1) + std::tanh(A(kSqrt2OverPi) * (x + A(0.044715) * x * x * x))));
      case UnaryOp::Sign:
        return static_cast<T>((x > A(0)) - (x < A(0)));
      case UnaryOp::Reciprocal:
        return static_cast<T>(A(1) / x);
      case UnaryOp::Square:
        return static_cast<T>(x * x);
      case UnaryOp::Log1p:
        return static_cast<T>(std::log1p(x));
      case UnaryOp::Expm1:
        return static_cast<T>(std::expm1(x));
      case UnaryOp::Erf:
        return static_cast<T>(std::erf(x));
      case UnaryOp::Floor:
        return static_cast<T>(std::floor(x));
      case UnaryOp::Ceil:
        return static_cast<T>(std::ceil(x));
      case UnaryOp::Round:
        return static_cast<T>(std::nearbyint(x));
      case UnaryOp::LogicalNot:
        return static_cast<T>(x == A(0));
      case UnaryOp::Silu:
        return static_cast<T>(x / (A(1) + std::exp(-x)));
    }
    return T{};
  }
};

// Vectorised float32 path over a contiguous chunk. Returns false when the op has no Eigen form.
template <typename T>
bool eigen_unary(UnaryOp op, const T* xp, T* yp, int64_t n) {
  if constexpr (!std::is_same_v<T, float>) {
    return false;
  } else {
    Eigen::Map<const Eigen::ArrayXf> x(xp, n);
    Eigen::Map<Eigen::ArrayXf> y(yp, n);
    switch (op) {
      case UnaryOp::Neg:
        y = -x;
        return true;
      case UnaryOp::Abs:
        y = x.abs();
        return true;
      case UnaryOp::Exp:
        y = x.exp();
        return true;
      case UnaryOp::Log:
        y = x.log();
        return true;
      case UnaryOp::Sqrt:
        y = x.sqrt();
        return true;
      case UnaryOp::Rsqrt:
        y = x.rsqrt();
        return true;
      case UnaryOp::Tanh:
        y = x.tanh();
        return true;
      case UnaryOp::Sigmoid:
        y = (1.0f + (-x).exp()).inverse();
        return true;
      case UnaryOp::Relu:
        y = x.max(0.0f);
        return true;
      case UnaryOp::GeluErf:
        y = 0.5f * x * (1.0f + (x * float(kSqrt1_2)).erf());
        return true;
      case UnaryOp::GeluTanh:
        y = 0.5f * x * (1.0f + (float(kSqrt2OverPi) * (x + 0.044715f * x.cube())).tanh());
        return true;
      case UnaryOp::Reciprocal:
        y = x.inverse();
        return true;
      case UnaryOp::Square:
        y = x.square();
        return true;
      case UnaryOp::Erf:
        y = x.erf();
        return true;
      case UnaryOp::Silu:
        y = x * (1.0f + (-x).exp()).inverse();
        return true;
      default:
        return false;
    }
  }
}

DType unary_result_dtype(UnaryOp op, DType in) {
  if (op == UnaryOp::LogicalNot) return kBool;
  if (is_float_only(op) && !is_floating(in)) return kFloat32;
  return in;
}

bool is_comparison(BinaryOp op) {
  switch (op) {
    case BinaryOp::Eq:
    case BinaryOp::Ne:
    case BinaryOp::Lt:
    case BinaryOp::Le:
    case BinaryOp::Gt:
    case BinaryOp::Ge:
    case BinaryOp::LogicalAnd:
    case BinaryOp::LogicalOr:
      return true;
    default:
      return false;
  }
}
bool is_grad_op(BinaryOp op) {
  return op >= BinaryOp::ReluGrad;
}

template <typename T>
inline T binop(BinaryOp op, T a, T b) {
  // Arithmetic in T for floats; the gradient formulas below use double (A), where float32 rounding
  // of saturated tanh/erf would otherwise leave ~1e-6 residues that PyTorch does not have.
  using A = double;
  switch (op) {
    case BinaryOp::Add:
      return static_cast<T>(a + b);
    case BinaryOp::Sub:
      return static_cast<T>(a - b);
    case BinaryOp::Mul:
      return static_cast<T>(a * b);
    case BinaryOp::Div:
      return static_cast<T>(static_cast<A>(a) / static_cast<A>(b));
    case BinaryOp::Pow:
      return static_cast<T>(std::pow(static_cast<A>(a), static_cast<A>(b)));
    case BinaryOp::Maximum:
      return a > b || a != a ? a : b;  // NaN propagates, as torch.maximum
    case BinaryOp::Minimum:
      return a < b || a != a ? a : b;
    case BinaryOp::ReluGrad:
      return b > T(0) ? a : T(0);
    case BinaryOp::GeluErfGrad: {
      A x = b;
      A cdf = A(0.5) * (A(1) + std::erf(x * A(kSqrt1_2)));
      A pdf = std::exp(A(-0.5) * x * x) * A(kInvSqrt2Pi);
      return static_cast<T>(a * (cdf + x * pdf));
    }
    case BinaryOp::GeluTanhGrad: {
      A x = b;
      A inner = A(kSqrt2OverPi) * (x + A(0.044715) * x * x * x);
      A t = std::tanh(inner);
      A dinner = A(kSqrt2OverPi) * (A(1) + A(3 * 0.044715) * x * x);
      return static_cast<T>(a * (A(0.5) * (A(1) + t) + A(0.5) * x * (A(1) - t * t) * dinner));
    }
    case BinaryOp::SigmoidGrad:
      return static_cast<T>(a * b * (T(1) - b));
    case BinaryOp::TanhGrad:
      return static_cast<T>(a * (T(1) - b * b));
    case BinaryOp::SiluGrad: {
      A x = b;
      A s = A(1) / (A(1) + std::exp(-x));
      return static_cast<T>(a * s * (A(1) + x * (A(1) - s)));
    }
    default:
      return T{};
  }
}

template <typename T>
inline bool cmpop(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Eq:
      return a == b;
    case BinaryOp::Ne:
      return a != b;
    case BinaryOp::Lt:
      return a < b;
    case BinaryOp::Le:
      return a <= b;
    case BinaryOp::Gt:
      return a > b;
    case BinaryOp::Ge:
      return a >= b;
    case BinaryOp::LogicalAnd:
      return a != T(0) && b != T(0);
    case BinaryOp::LogicalOr:
      return a != T(0) || b != T(0);
    default:
      return false;
  }
}

// Vectorised float32 contiguous same-shape binary paths for the hot ops.
template <typename T, typename Z>
bool eigen_binary(BinaryOp op, const T* ap, const T* bp, Z* zp, int64_t n) {
  if constexpr (!std::is_same_v<T, float> || !std::is_same_v<Z, float>) {
    return false;
  } else {
    Eigen::Map<const Eigen::ArrayXf> a(ap, n), b(bp, n);
    Eigen::Map<Eigen::ArrayXf> z(zp, n);
    switch (op) {
      case BinaryOp::Add:
        z = a + b;
        return true;
      case BinaryOp::Sub:
        z = a - b;
        return true;
      case BinaryOp::Mul:
        z = a * b;
        return true;
      case BinaryOp::Div:
        z = a / b;
        return true;
      case BinaryOp::ReluGrad:
        z = (b > 0.0f).select(a, 0.0f);
        return true;
      case BinaryOp::SigmoidGrad:
        z = a * b * (1.0f - b);
        return true;
      case BinaryOp::TanhGrad:
        z = a * (1.0f - b.square());
        return true;
      case BinaryOp::GeluErfGrad: {
        z = a * (0.5f * (1.0f + (b * float(kSqrt1_2)).erf()) +
                 b * (-0.5f * b.square()).exp() * float(kInvSqrt2Pi));
        return true;
      }
      default:
        return false;
    }
  }
}

DType binary_result_dtype(BinaryOp op, DType a, DType b) {
  if (is_comparison(op)) return kBool;
  DType t = promote_types(a, b);
  if ((op == BinaryOp::Div || is_grad_op(op)) && !is_floating(t)) return kFloat32;
  return t;
}

// z[i] = a[i] op b[i] over n elements where a and b each step by one element or are one scalar
// (ua / ub = false): the broadcast rows of a bias or mask. Add, Sub, Mul and Div only, with the op
// chosen outside the loop so the compiler vectorises it (the generic loop switches per element);
// false for other ops.
template <typename T, typename Z>
bool arith_row(BinaryOp op, const T* a, bool ua, const T* b, bool ub, Z* z, int64_t n) {
  if constexpr (!std::is_same_v<T, Z> || !std::is_floating_point_v<T>) {
    return false;
  } else {
    auto run = [&](auto fn) {
      if (ua && ub) {
        for (int64_t i = 0; i < n; ++i) z[i] = fn(a[i], b[i]);
      } else if (ua) {
        const T bv = *b;
        for (int64_t i = 0; i < n; ++i) z[i] = fn(a[i], bv);
      } else {
        const T av = *a;
        for (int64_t i = 0; i < n; ++i) z[i] = fn(av, b[i]);
      }
    };
    switch (op) {
      case BinaryOp::Add:
        run([](T x, T y) { return x + y; });
        return true;
      case BinaryOp::Sub:
        run([](T x, T y) { return x - y; });
        return true;
      case BinaryOp::Mul:
        run([](T x, T y) { return x * y; });
        return true;
      case BinaryOp::Div:
        run([](T x, T y) { return x / y; });
        return true;
      default:
        return false;
    }
  }
}

// Applies a binary op with all operands already of dtype T (z may differ only for comparisons).
template <typename T, typename Z>
void binary_kernel(BinaryOp op, const Array& a, const Array& b, Array& z) {
  const bool cmp = is_comparison(op);
  auto f = [op, cmp](T x, T y) -> Z {
    if (cmp) return static_cast<Z>(cmpop<T>(op, x, y));
    return static_cast<Z>(binop<T>(op, x, y));
  };
  // Fast path: everything contiguous and the same shape.
  if (a.is_contiguous() && b.is_contiguous() && a.shape() == z.shape() && b.shape() == z.shape()) {
    const T* ap = static_cast<const T*>(a.raw_data());
    const T* bp = static_cast<const T*>(b.raw_data());
    Z* zp = static_cast<Z*>(z.raw_data());
    parallel_for(0, z.numel(), kGrainSize, [&](int64_t s, int64_t e) {
      if (eigen_binary(op, ap + s, bp + s, zp + s, e - s)) return;
      for (int64_t i = s; i < e; ++i) zp[i] = f(ap[i], bp[i]);
    });
    return;
  }
  auto plan = detail::make_plan<3>(z.shape(), {&z, &a, &b});
  detail::run_plan(plan, [&](std::array<char*, 3> p, std::array<int64_t, 3> s, int64_t n) {
    Z* zp = reinterpret_cast<Z*>(p[0]);
    const T* ap = reinterpret_cast<const T*>(p[1]);
    const T* bp = reinterpret_cast<const T*>(p[2]);
    const bool unit_a = s[1] == sizeof(T), unit_b = s[2] == sizeof(T);
    if (s[0] == sizeof(Z) && (unit_a || s[1] == 0) && (unit_b || s[2] == 0) && (unit_a || unit_b) &&
        arith_row(op, ap, unit_a, bp, unit_b, zp, n))
      return;
    if (s[0] == sizeof(Z) && s[1] == sizeof(T) && s[2] == sizeof(T)) {
      for (int64_t i = 0; i < n; ++i) zp[i] = f(ap[i], bp[i]);
    } else if (s[0] == sizeof(Z) && s[1] == sizeof(T) && s[2] == 0) {
      const T bv = *bp;
      for (int64_t i = 0; i < n; ++i) zp[i] = f(ap[i], bv);
    } else if (s[0] == sizeof(Z) && s[1] == 0 && s[2] == sizeof(T)) {
      const T av = *ap;
      for (int64_t i = 0; i < n; ++i) zp[i] = f(av, bp[i]);
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<Z*>(p[0] + i * s[0]) = f(*reinterpret_cast<const T*>(p[1] + i * s[1]),
                                                   *reinterpret_cast<const T*>(p[2] + i * s[2]));
    }
  });
}

}  // namespace

const char* op_name(UnaryOp op) {
  static constexpr const char* names[] = {
      "neg",   "abs",     "exp",  "log",   "sqrt",      "rsqrt", "sin",         "cos",
      "tanh",  "sigmoid", "relu", "gelu",  "gelu_tanh", "sign",  "reciprocal",  "square",
      "log1p", "expm1",   "erf",  "floor", "ceil",      "round", "logical_not", "silu"};
  // One name per enumerator: a UnaryOp added without its name fails to compile.
  static_assert(std::size(names) == static_cast<size_t>(UnaryOp::Silu) + 1);
  return names[static_cast<int>(op)];
}
const char* op_name(BinaryOp op) {
  static constexpr const char* names[] = {"add",
                                          "sub",
                                          "mul",
                                          "div",
                                          "pow",
                                          "maximum",
                                          "minimum",
                                          "eq",
                                          "ne",
                                          "lt",
                                          "le",
                                          "gt",
                                          "ge",
                                          "logical_and",
                                          "logical_or",
                                          "relu_backward",
                                          "gelu_backward",
                                          "gelu_tanh_backward",
                                          "sigmoid_backward",
                                          "tanh_backward",
                                          "silu_backward"};
  static_assert(std::size(names) == static_cast<size_t>(BinaryOp::SiluGrad) + 1);
  return names[static_cast<int>(op)];
}

Array scalar(double v, DType dtype) {
  Array a(Shape{}, dtype);
  a.fill_(v);
  return a;
}

Array unary(UnaryOp op, const Array& x_in) {
  KILN_CHECK(x_in.defined(), "{}: input is undefined", op_name(op));
  DType out_t = unary_result_dtype(op, x_in.dtype());
  Array x = op == UnaryOp::LogicalNot ? x_in : x_in.to(out_t);
  Array y(x.shape(), out_t);
  if (y.numel() == 0) return y;
  if (op == UnaryOp::LogicalNot) {
    KILN_DISPATCH_ALL(x.dtype(), "logical_not", [&] {
      Array xc = x.contiguous();
      const scalar_t* xp = xc.data<scalar_t>();
      bool* yp = y.data<bool>();
      for (int64_t i = 0; i < y.numel(); ++i) yp[i] = xp[i] == scalar_t(0);
    });
    return y;
  }
  KILN_DISPATCH_NUMERIC(out_t, op_name(op), [&] {
    UnaryFn<scalar_t> f{op};
    if (x.is_contiguous()) {
      const scalar_t* xp = static_cast<const scalar_t*>(x.raw_data());
      scalar_t* yp = y.data<scalar_t>();
      parallel_for(0, y.numel(), kGrainSize / 4, [&](int64_t s, int64_t e) {
        if (eigen_unary(op, xp + s, yp + s, e - s)) return;
        for (int64_t i = s; i < e; ++i) yp[i] = f(xp[i]);
      });
    } else {
      auto plan = detail::make_plan<2>(y.shape(), {&y, &x});
      detail::run_plan(plan, [&](std::array<char*, 2> p, std::array<int64_t, 2> s, int64_t n) {
        for (int64_t i = 0; i < n; ++i)
          *reinterpret_cast<scalar_t*>(p[0] + i * s[0]) =
              f(*reinterpret_cast<const scalar_t*>(p[1] + i * s[1]));
      });
    }
  });
  return y;
}

Array binary(BinaryOp op, const Array& a_in, const Array& b_in) {
  KILN_CHECK(a_in.defined() && b_in.defined(), "{}: input is undefined", op_name(op));
  Shape out_shape = broadcast_shapes(a_in.shape(), b_in.shape(), op_name(op));
  DType compute_t = promote_types(a_in.dtype(), b_in.dtype());
  if ((op == BinaryOp::Div || is_grad_op(op)) && !is_floating(compute_t)) compute_t = kFloat32;
  DType out_t = binary_result_dtype(op, a_in.dtype(), b_in.dtype());
  Array a = a_in.to(compute_t), b = b_in.to(compute_t);
  Array z(out_shape, out_t);
  if (z.numel() == 0) return z;
  if (out_t == kBool) {
    KILN_DISPATCH_ALL(compute_t, op_name(op), [&] { binary_kernel<scalar_t, bool>(op, a, b, z); });
  } else {
    KILN_DISPATCH_NUMERIC(compute_t, op_name(op),
                          [&] { binary_kernel<scalar_t, scalar_t>(op, a, b, z); });
  }
  return z;
}

Array binary(BinaryOp op, const Array& a, double s) {
  // PyTorch: a Python scalar does not change an array's dtype unless it is fractional and the array
  // is integral (then the default float dtype, float32).
  DType st = a.dtype();
  if (!is_floating(st) && (s != std::floor(s) || !std::isfinite(s))) st = kFloat32;
  if (st == kBool) st = kInt64;
  return binary(op, a, scalar(s, st));
}

void binary_(BinaryOp op, Array& a, const Array& b) {
  Shape bs = broadcast_shapes(a.shape(), b.shape(), op_name(op));
  KILN_CHECK_SHAPE(bs == a.shape(), "{}_: operand {} cannot be broadcast to the in-place target {}",
                   op_name(op), b.shape(), a.shape());
  Array bb = b.to(a.dtype());
  a.bump_version();
  if (a.numel() == 0) return;
  if (is_comparison(op)) {
    a.copy_(binary(op, a, bb));
    return;
  }
  KILN_DISPATCH_NUMERIC(a.dtype(), op_name(op),
                        [&] { binary_kernel<scalar_t, scalar_t>(op, a, bb, a); });
}

void binary_(BinaryOp op, Array& a, double s) {
  binary_(op, a, scalar(s, a.dtype()));
}

Array where(const Array& cond, const Array& a_in, const Array& b_in) {
  Shape s = broadcast_shapes(broadcast_shapes(cond.shape(), a_in.shape(), "where"), b_in.shape(),
                             "where");
  DType t = promote_types(a_in.dtype(), b_in.dtype());
  Array c = cond.to(kBool), a = a_in.to(t), b = b_in.to(t);
  Array z(s, t);
  if (z.numel() == 0) return z;
  auto plan = detail::make_plan<4>(s, {&z, &c, &a, &b});
  KILN_DISPATCH_ALL(t, "where", [&] {
    detail::run_plan(plan, [](std::array<char*, 4> p, std::array<int64_t, 4> st, int64_t n) {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<scalar_t*>(p[0] + i * st[0]) =
            *reinterpret_cast<const bool*>(p[1] + i * st[1])
                ? *reinterpret_cast<const scalar_t*>(p[2] + i * st[2])
                : *reinterpret_cast<const scalar_t*>(p[3] + i * st[3]);
    });
  });
  return z;
}

Array masked_fill(const Array& a, const Array& mask, double value) {
  KILN_CHECK_TYPE(mask.dtype() == kBool, "masked_fill: mask must be bool, got {}", mask.dtype());
  Shape s = broadcast_shapes(a.shape(), mask.shape(), "masked_fill");
  KILN_CHECK_SHAPE(s == a.shape(), "masked_fill: mask {} cannot be broadcast to input {}",
                   mask.shape(), a.shape());
  return where(mask, scalar(value, a.dtype()), a);
}

Array clamp(const Array& x, double lo, double hi) {
  KILN_CHECK(!(lo > hi), "clamp: min {} is greater than max {}", lo, hi);
  Array y(x.shape(), x.dtype());
  Array xc = x.contiguous();
  KILN_DISPATCH_NUMERIC(x.dtype(), "clamp", [&] {
    const scalar_t* xp = xc.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    const double l = lo, h = hi;
    if constexpr (std::is_floating_point_v<scalar_t>) {
      // Compare in the element type: a branch-free select the compiler vectorises (the double
      // comparison below is a data-dependent branch per element, 25% of PP-OCR cls's time in its
      // ReLU6/HardSwish clips). Rounding the bounds to scalar_t is monotonic, so every element
      // gets the same result; NaN still passes through.
      const auto lt = static_cast<scalar_t>(l), ht = static_cast<scalar_t>(h);
      parallel_for(0, y.numel(), kGrainSize, [&](int64_t s, int64_t e) {
        // Locals: through the captured references every store could alias the bounds and pointers.
        const scalar_t* __restrict in = xp;
        scalar_t* __restrict out = yp;
        const scalar_t a = lt, b = ht;
        for (int64_t i = s; i < e; ++i) {
          const scalar_t v = in[i];
          out[i] = v < a ? a : (v > b ? b : v);
        }
      });
      return;
    }
    parallel_for(0, y.numel(), kGrainSize, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        double v = static_cast<double>(xp[i]);
        yp[i] = v < l ? static_cast<scalar_t>(l) : v > h ? static_cast<scalar_t>(h) : xp[i];
      }
    });
  });
  return y;
}

Array clamp_backward(const Array& dy, const Array& x, double lo, double hi) {
  Array out(x.shape(), dy.dtype());
  Array dyc = dy.contiguous(), xc = x.to(dy.dtype()).contiguous();
  KILN_DISPATCH_FLOATING(dy.dtype(), "clamp_backward", [&] {
    const scalar_t* g = dyc.data<scalar_t>();
    const scalar_t* xp = xc.data<scalar_t>();
    scalar_t* o = out.data<scalar_t>();
    for (int64_t i = 0; i < out.numel(); ++i)
      o[i] = (xp[i] >= lo && xp[i] <= hi) ? g[i] : scalar_t(0);
  });
  return out;
}

void axpy_(Array& y, double alpha, const Array& x) {
  KILN_CHECK_SHAPE(y.shape() == x.shape(), "axpy_: shapes differ: y {} vs x {} (must be equal)",
                   y.shape(), x.shape());
  if (!(y.is_contiguous() && x.is_contiguous() && x.dtype() == y.dtype())) {
    binary_(BinaryOp::Add, y, mul(x, alpha));
    return;
  }
  y.bump_version();
  KILN_DISPATCH_FLOATING(y.dtype(), "axpy_", [&] {
    scalar_t* yp = y.data<scalar_t>();
    const scalar_t* xp = x.data<scalar_t>();
    const scalar_t a = static_cast<scalar_t>(alpha);
    parallel_for(0, y.numel(), kGrainSize, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) yp[i] += a * xp[i];
    });
  });
}

}  // namespace kiln::kernels
