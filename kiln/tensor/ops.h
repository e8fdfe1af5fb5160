#pragma once
// Elementwise math on Arrays (no autograd): unary, binary with NumPy broadcasting and PyTorch type
// promotion, comparisons, where/masked_fill/clamp, and the fused backward helpers activations need.
// Float32 contiguous paths are vectorised (Eigen packet math) and split across threads above
// kGrainSize.
#include "kiln/tensor/array.h"

namespace kiln::kernels {

enum class UnaryOp {
  Neg,
  Abs,
  Exp,
  Log,
  Sqrt,
  Rsqrt,
  Sin,
  Cos,
  Tanh,
  Sigmoid,
  Relu,
  GeluErf,   // 0.5·x·(1 + erf(x/√2))
  GeluTanh,  // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
  Sign,
  Reciprocal,
  Square,
  Log1p,
  Expm1,
  Erf,
  Floor,
  Ceil,
  Round,
  LogicalNot,
  Silu  // stays last: op_name's table checks it
};
enum class BinaryOp {
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  Maximum,
  Minimum,
  Eq,
  Ne,
  Lt,
  Le,
  Gt,
  Ge,
  LogicalAnd,
  LogicalOr,
  // Fused backward helpers, (dy, saved) -> dx (SiluGrad stays last: op_name's table checks it):
  ReluGrad,      // dy · [x > 0]
  GeluErfGrad,   // dy · (Φ(x) + x·φ(x))
  GeluTanhGrad,  // dy · d/dx GeluTanh(x)
  SigmoidGrad,   // (dy, y) -> dy · y · (1 − y)
  TanhGrad,      // (dy, y) -> dy · (1 − y²)
  SiluGrad       // dy · (σ(x) · (1 + x·(1 − σ(x))))
};

const char* op_name(UnaryOp op);
const char* op_name(BinaryOp op);

/// y = op(x); same shape. Float-only ops promote integer inputs to float32 (as PyTorch does).
Array unary(UnaryOp op, const Array& x);
/// z = op(a, b) with broadcasting. Arithmetic results take the promoted dtype, comparisons bool.
Array binary(BinaryOp op, const Array& a, const Array& b);
/// z = op(a, s) for a scalar s. An integer array with a fractional scalar becomes float32.
Array binary(BinaryOp op, const Array& a, double s);
/// a = op(a, b) in place (b broadcast to a's shape; result cast to a's dtype). Bumps a's version.
void binary_(BinaryOp op, Array& a, const Array& b);
void binary_(BinaryOp op, Array& a, double s);

/// A 0-d array holding `v`.
Array scalar(double v, DType dtype = kFloat32);

inline Array add(const Array& a, const Array& b) {
  return binary(BinaryOp::Add, a, b);
}
inline Array sub(const Array& a, const Array& b) {
  return binary(BinaryOp::Sub, a, b);
}
inline Array mul(const Array& a, const Array& b) {
  return binary(BinaryOp::Mul, a, b);
}
inline Array div(const Array& a, const Array& b) {
  return binary(BinaryOp::Div, a, b);
}
inline Array add(const Array& a, double s) {
  return binary(BinaryOp::Add, a, s);
}
inline Array mul(const Array& a, double s) {
  return binary(BinaryOp::Mul, a, s);
}
inline Array neg(const Array& a) {
  return unary(UnaryOp::Neg, a);
}

/// out[i] = cond[i] ? a[i] : b[i], all three broadcast together.
Array where(const Array& cond, const Array& a, const Array& b);
/// Copy of a with value where mask (bool, broadcast to a) is true.
Array masked_fill(const Array& a, const Array& mask, double value);
/// min(max(x, lo), hi); pass ±infinity to leave a side open.
Array clamp(const Array& x, double lo, double hi);
/// dy · [lo <= x <= hi] (gradient of clamp).
Array clamp_backward(const Array& dy, const Array& x, double lo, double hi);
/// y += alpha · x (same shape, float), in place; the optimiser's workhorse.
void axpy_(Array& y, double alpha, const Array& x);

}  // namespace kiln::kernels
