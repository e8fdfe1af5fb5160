// ONNX quantisation ops for import_model (see import_ops_internal.h): QuantizeLinear,
// DequantizeLinear, DynamicQuantizeLinear, and the integer products MatMulInteger, ConvInteger,
// QLinearMatMul and QLinearConv. Kiln has uint8 but no int8, so models quantised to int8 are
// refused (their zero points or inputs carry the type). No gradients: a quantised value is a step
// function of its input. Rounding is to nearest, ties to even (std::nearbyint in the default
// FE_TONEAREST mode), as the spec's saturate(round(x / scale) + zero_point) asks.
//
// The integer products run on Kiln's float64 matmul/conv kernels after the zero points are
// subtracted: a uint8 product is below 2^16 and a sum of K of them is exact in a double while
// K < 2^37, so the int32 result is exact for any kernel that fits in memory.
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "kiln/onnx/import_ops_internal.h"

namespace kiln::onnx::detail {
namespace {

using Outs = std::vector<Tensor>;

// The range of a quantised type (uint8 only: Kiln has no int8).
struct QRange {
  double lo, hi;
};
QRange qrange(const NodeContext& n, DType d) {
  KILN_CHECK_TYPE(d == kUInt8 || d == kInt32,
                  "{}: quantised type {} is not supported (Kiln has uint8 but no int8)", n.where(),
                  d);
  if (d == kInt32) return {-2147483648.0, 2147483647.0};
  return {0.0, 255.0};
}

// A scale or zero point laid out to broadcast against x: a scalar stays a scalar, a 1-D tensor of
// x.size(axis) values becomes (1, .., L, .., 1) along `axis` (per-axis quantisation; a negative
// axis counts from the back).
Tensor per_axis(const NodeContext& n, const Tensor& p, const Tensor& x, int64_t ax,
                const char* what) {
  if (p.numel() == 1 && p.dim() <= 1) return reshape(p, {});
  ax = axis(n, ax, x.dim());
  KILN_CHECK_SHAPE(p.dim() == 1 && p.size(0) == x.size(ax),
                   "{}: {} has shape [{}]; per-axis values must be 1-D with x.shape[{}] entries",
                   n.where(), what, fmt::join(p.shape(), ", "), ax);
  Shape s(static_cast<size_t>(x.dim()), 1);
  s[static_cast<size_t>(ax)] = p.size(0);
  return reshape(p, s);
}

// out[i] = f(x[i], s[i], z[i]) over the broadcast of the three, each read as T.
template <typename T, typename F>
Array map3(const Array& x, const Array& s, const Array& z, DType out, F f) {
  const Shape shape = x.shape();
  const DType work = dtype_v<T>;
  Array px = x.to(work).contiguous(), ps = s.to(work).expand(shape).contiguous(),
        pz = z.to(work).expand(shape).contiguous();
  Array y(shape, work);
  const T *a = px.data<T>(), *b = ps.data<T>(), *c = pz.data<T>();
  T* o = y.data<T>();
  for (int64_t k = 0; k < y.numel(); ++k) o[k] = f(a[k], b[k], c[k]);
  return y.to(out);
}

// y = saturate(round(x / scale) + zero_point); the division runs in x's own precision (float32
// for float32 inputs), as the spec's reference does.
Outs quantize_linear_op(const NodeContext& n, const Inputs& in) {
  const Tensor &x = required(n, in, 0), &scale = required(n, in, 1);
  const bool has_zp = in.size() > 2 && in[2].defined();
  const DType out = has_zp ? in[2].dtype() : kUInt8;
  const QRange r = qrange(n, out);
  const int64_t ax = n.opset >= 13 ? n.i("axis", 1) : 1;
  const Tensor s = per_axis(n, scale, x, ax, "y_scale");
  const Tensor z = has_zp ? per_axis(n, in[2], x, ax, "y_zero_point") : zeros({}, out);
  auto q = [r](auto v, auto sc, auto zp) {
    const double y = std::nearbyint(v / sc) + static_cast<double>(zp);
    return static_cast<decltype(v)>(std::clamp(y, r.lo, r.hi));
  };
  if (x.dtype() == kFloat32)
    return {nondiff(n, in, map3<float>(x.data(), s.data(), z.data(), out, q))};
  return {nondiff(n, in, map3<double>(x.data(), s.data(), z.data(), out, q))};
}

// y = (x - zero_point) · scale, in the scale's type.
Outs dequantize_linear_op(const NodeContext& n, const Inputs& in) {
  const Tensor &x = required(n, in, 0), &scale = required(n, in, 1);
  KILN_CHECK_TYPE(is_floating(scale.dtype()), "{}: x_scale must be float, got {}", n.where(),
                  scale.dtype());
  const int64_t ax = n.opset >= 13 ? n.i("axis", 1) : 1;
  const Tensor s = per_axis(n, scale, x, ax, "x_scale");
  const Tensor z = in.size() > 2 && in[2].defined() ? per_axis(n, in[2], x, ax, "x_zero_point")
                                                    : zeros({}, x.dtype());
  auto dq = [](auto v, auto sc, auto zp) { return (v - zp) * sc; };
  if (scale.dtype() == kFloat32)
    return {nondiff(n, in, map3<float>(x.data(), s.data(), z.data(), kFloat32, dq))};
  return {nondiff(n, in, map3<double>(x.data(), s.data(), z.data(), kFloat64, dq))};
}

// DynamicQuantizeLinear: uint8 with the range [min(0, min x), max(0, max x)] mapped onto
// [0, 255]: scale = range / 255, zero_point = saturate(round(-min / scale)). float32 throughout,
// as the spec computes it.
Outs dynamic_quantize_linear_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  KILN_CHECK_TYPE(x.dtype() == kFloat32, "{}: x must be float32, got {}", n.where(), x.dtype());
  const std::vector<float> v = x.to_vector<float>();
  float lo = 0.0f, hi = 0.0f;
  for (float e : v) {
    lo = std::min(lo, e);
    hi = std::max(hi, e);
  }
  const float scale = (hi == lo ? 1.0f : hi - lo) / 255.0f;
  const float zp = std::nearbyint(std::clamp(0.0f - lo / scale, 0.0f, 255.0f));
  Array y(x.shape(), kUInt8);
  uint8_t* py = y.data<uint8_t>();
  for (size_t k = 0; k < v.size(); ++k)
    py[k] = static_cast<uint8_t>(std::clamp(std::nearbyint(v[k] / scale) + zp, 0.0f, 255.0f));
  Array s(Shape{}, kFloat32), z(Shape{}, kUInt8);
  s.data<float>()[0] = scale;
  z.data<uint8_t>()[0] = static_cast<uint8_t>(zp);
  return {nondiff(n, in, y), nondiff(n, in, s), nondiff(n, in, z)};
}

// x - zero_point in float64 (exact for 8-bit values). `zp_axis` is the axis a 1-D zero point
// runs along (rows of MatMulInteger's A, output channels of a convolution's weight).
Tensor centred(const NodeContext& n, const Inputs& in, size_t k, size_t zp, int64_t zp_axis,
               const char* what) {
  const Tensor& x = required(n, in, k);
  KILN_CHECK_TYPE(x.dtype() == kUInt8 || x.dtype() == kInt32,
                  "{}: {} must be uint8 (Kiln has no int8), got {}", n.where(), what, x.dtype());
  Tensor v = to_dtype(x, kFloat64);
  if (zp < in.size() && in[zp].defined()) {
    v = sub(v, to_dtype(per_axis(n, in[zp], x, zp_axis, "zero point"), kFloat64));
  }
  return v;
}

Outs matmul_integer_op(const NodeContext& n, const Inputs& in) {
  const Tensor a = centred(n, in, 0, 2, -2, "A"), b = centred(n, in, 1, 3, -1, "B");
  return {nondiff(n, in, matmul(a, b).data().to(kInt32))};
}

// The Conv entry of the table on float64 operands (the node's attributes are Conv's).
Tensor conv_f64(const NodeContext& n, const Tensor& x, const Tensor& w) {
  return op_table().at("Conv").fn(n, {x, w})[0];
}

Outs conv_integer_op(const NodeContext& n, const Inputs& in) {
  const Tensor x = centred(n, in, 0, 2, 1, "x"), w = centred(n, in, 1, 3, 0, "w");
  return {nondiff(n, in, conv_f64(n, x, w).data().to(kInt32))};
}

// Requantisation of an int32 accumulator: saturate(round(acc · (a_scale·b_scale / y_scale)) +
// y_zero_point). The multiplier is formed in float32 from the float32 scales, as the spec does;
// `scale_b` may hold one value per output channel (laid out to broadcast against acc).
Tensor requantize(const NodeContext& n, const Inputs& in, const Tensor& acc, const Tensor& scale_a,
                  const Tensor& scale_b, const Tensor& scale_y, size_t y_zp) {
  KILN_CHECK(scale_a.numel() == 1 && scale_y.numel() == 1,
             "{}: the input and output scales must be scalars", n.where());
  const Tensor& zp = required(n, in, y_zp);
  const QRange r = qrange(n, zp.dtype());
  const float sa = scale_a.to_vector<float>()[0], sy = scale_y.to_vector<float>()[0];
  const double z = zp.to_vector<double>()[0];
  const Shape shape = acc.shape();
  Array a = acc.data().to(kFloat64).contiguous();
  Array sb = scale_b.data().to(kFloat32).expand(shape).contiguous();
  Array y(shape, kFloat64);
  const double* pa = a.data<double>();
  const float* ps = sb.data<float>();
  double* py = y.data<double>();
  for (int64_t k = 0; k < y.numel(); ++k) {
    const float m = sa * ps[k] / sy;
    py[k] = std::clamp(std::nearbyint(pa[k] * static_cast<double>(m) + z), r.lo, r.hi);
  }
  return nondiff(n, in, y.to(zp.dtype()));
}

// QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp).
Outs qlinear_matmul_op(const NodeContext& n, const Inputs& in) {
  const Tensor a = centred(n, in, 0, 2, -2, "a"), b = centred(n, in, 3, 5, -1, "b");
  const Tensor acc = matmul(a, b);
  const Tensor& sb = required(n, in, 4);
  const Tensor b_scale = sb.numel() == 1 ? reshape(sb, {}) : sb;  // per column: broadcasts
  return {requantize(n, in, acc, required(n, in, 1), b_scale, required(n, in, 6), 7)};
}

// QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B): B is int32 in the
// accumulator's scale (x_scale · w_scale), added before requantisation.
Outs qlinear_conv_op(const NodeContext& n, const Inputs& in) {
  const Tensor x = centred(n, in, 0, 2, 1, "x"), w = centred(n, in, 3, 5, 0, "w");
  Tensor acc = conv_f64(n, x, w);
  if (in.size() > 8 && in[8].defined()) {
    Shape s(static_cast<size_t>(acc.dim()), 1);
    s[1] = in[8].numel();
    acc = add(acc, reshape(to_dtype(in[8], kFloat64), s));
  }
  const Tensor& ws = required(n, in, 4);
  Tensor w_scale = reshape(ws, {});
  if (ws.numel() != 1) {
    Shape s(static_cast<size_t>(acc.dim()), 1);
    s[1] = ws.numel();
    KILN_CHECK_SHAPE(ws.numel() == acc.size(1), "{}: w_scale has {} values for {} output channels",
                     n.where(), ws.numel(), acc.size(1));
    w_scale = reshape(ws, s);
  }
  return {requantize(n, in, acc, required(n, in, 1), w_scale, required(n, in, 6), 7)};
}

}  // namespace

void register_quant_ops(OpTable& t) {
  t["QuantizeLinear"] = quantize_linear_op;
  t["DequantizeLinear"] = dequantize_linear_op;
  t["DynamicQuantizeLinear"] = dynamic_quantize_linear_op;
  t["MatMulInteger"] = matmul_integer_op;
  t["ConvInteger"] = conv_integer_op;
  t["QLinearMatMul"] = qlinear_matmul_op;
  t["QLinearConv"] = qlinear_conv_op;
}

}  // namespace kiln::onnx::detail
