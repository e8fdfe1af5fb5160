// ONNX ops that make tensors for import_model (see import_ops_internal.h): Constant,
// ConstantOfShape, Shape, Size, Range, OneHot, NonZero, EyeLike and Trilu masks, casts, TopK,
// Dropout and the depth/space rearrangements. Shape arithmetic produces constants (no gradient);
// casts between float types, TopK values, Dropout and the rearrangements are Kiln autograd ops.
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "kiln/onnx/import_ops_internal.h"
#include "kiln/tensor/ops.h"
#include "kiln/tensor/shape.h"

namespace kiln::onnx::detail {
namespace {

using Outs = std::vector<Tensor>;

Outs shape_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const int64_t r = x.dim();
  int64_t s = n.i("start", 0), e = n.i("end", r);
  if (s < 0) s += r;
  if (e < 0) e += r;
  s = std::clamp<int64_t>(s, 0, r);
  e = std::clamp<int64_t>(e, 0, r);
  std::vector<int64_t> dims;
  for (int64_t d = s; d < e; ++d) dims.push_back(x.size(d));
  return {index_tensor(dims)};
}
Outs size_op(const NodeContext& n, const Inputs& in) {
  return {int64_tensor({required(n, in, 0).numel()}, {})};
}

bool onnx_dtype(int64_t t, DType& out) {
  switch (t) {
    case 1:
      out = kFloat32;
      return true;
    case 2:
      out = kUInt8;
      return true;
    case 6:
      out = kInt32;
      return true;
    case 7:
      out = kInt64;
      return true;
    case 9:
      out = kBool;
      return true;
    case 11:
      out = kFloat64;
      return true;
    case 10:  // float16: held as float32 (Cast rounds the values to half precision)
      out = kFloat32;
      return true;
    default:
      return false;
  }
}
DType dtype_attr(const NodeContext& n, const char* attr, int64_t def) {
  DType d;
  const int64_t t = n.i(attr, def);
  KILN_CHECK_TYPE(
      onnx_dtype(t, d),
      "{}: element type {} is not supported (float32, float64, float16, int32, int64, uint8, bool)",
      n.where(), t);
  return d;
}

// Cast to FLOAT16 rounds to the nearest half-precision value (ties to even; beyond ±65504 to
// infinity) and keeps float32, the dtype Kiln holds float16 values in. The rounding is added as a
// constant, so the gradient passes straight through as it does for other float casts.
Tensor round_to_half(const NodeContext& n, const Inputs& in, const Tensor& x) {
  const Tensor y = to_dtype(x, kFloat32);
  Array d(y.shape(), kFloat32);
  const Array src = x.data().to(kFloat64).contiguous();
  const double* s = src.data<double>();
  const std::vector<float> v = y.to_vector<float>();
  float* o = d.data<float>();
  for (size_t k = 0; k < v.size(); ++k) {
    const float h = static_cast<float>(static_cast<_Float16>(s[k]));
    o[k] = std::isnan(h) || h == v[k] ? 0.0f : h - v[k];
  }
  return add(y, nondiff(n, in, d));
}
Outs cast_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  if (n.i("to", 1) == 10) return {round_to_half(n, in, x)};
  return {to_dtype(x, dtype_attr(n, "to", 1))};
}
// CastLike towards a float16 value arrives with to = FLOAT16 (set at import: Kiln holds that
// value as float32, so its dtype alone would skip the rounding).
Outs cast_like_op(const NodeContext& n, const Inputs& in) {
  if (n.has("to")) return cast_op(n, in);
  return {to_dtype(required(n, in, 0), required(n, in, 1).dtype())};
}

Outs constant_op(const NodeContext& n, const Inputs&) {
  if (n.has("value")) return {n.tensor("value")};
  if (n.has("value_float")) return {scalar_tensor(n.f("value_float", 0), kFloat32)};
  if (n.has("value_int")) return {int64_tensor({n.i("value_int", 0)}, {})};
  if (n.has("value_floats")) {
    const auto v = n.floats("value_floats");
    return {
        to_dtype(Tensor(from_vector(std::vector<double>(v.begin(), v.end())).data()), kFloat32)};
  }
  if (n.has("value_ints")) return {index_tensor(n.ints("value_ints"))};
  KILN_CHECK(false, "{}: only tensor, float(s) and int(s) constants are supported", n.where());
  return {};
}
Outs constant_of_shape_op(const NodeContext& n, const Inputs& in) {
  const std::vector<int64_t> s = int_values(n, required(n, in, 0), "shape");
  check_numel(n, s);
  Tensor v = n.has("value") ? n.tensor("value") : scalar_tensor(0.0, kFloat32);
  KILN_CHECK_SHAPE(v.numel() == 1, "{}: value must hold one element", n.where());
  Array out(s, v.dtype());
  out.copy_(v.data().reshape({}));
  return {Tensor(out)};
}
Outs range_op(const NodeContext& n, const Inputs& in) {
  const Tensor& start = required(n, in, 0);
  const double s = scalar_value(n, start, "start"),
               l = scalar_value(n, required(n, in, 1), "limit"),
               d = scalar_value(n, required(n, in, 2), "delta");
  KILN_CHECK(d != 0, "{}: delta must not be 0", n.where());
  const double count = std::max(std::ceil((l - s) / d), 0.0);
  KILN_CHECK(count <= double(int64_t{1} << 34), "{}: range of {} elements is too large", n.where(),
             count);
  Array out(Shape{static_cast<int64_t>(count)}, kFloat64);
  for (int64_t k = 0; k < out.numel(); ++k) out.data<double>()[k] = s + static_cast<double>(k) * d;
  return {nondiff(n, in, out.to(start.dtype()))};
}
Outs onehot_op(const NodeContext& n, const Inputs& in) {
  const Tensor &idx = required(n, in, 0), &values = required(n, in, 2);
  const int64_t depth = static_cast<int64_t>(scalar_value(n, required(n, in, 1), "depth"));
  KILN_CHECK_SHAPE(depth > 0 && values.numel() == 2, "{}: depth {} / values of {} elements",
                   n.where(), depth, values.numel());
  const std::vector<double> iv = idx.to_vector<double>(), vv = values.to_vector<double>();
  const int64_t a = axis(n, n.i("axis", -1), idx.dim() + 1);
  Shape s = idx.shape();
  s.insert(s.begin() + a, depth);
  check_numel(n, s);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < a; ++d) outer *= idx.size(d);
  for (int64_t d = a; d < idx.dim(); ++d) inner *= idx.size(d);
  Array out(s, kFloat64);
  double* p = out.data<double>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < depth; ++c)
      for (int64_t i = 0; i < inner; ++i) {
        auto v = static_cast<int64_t>(iv[static_cast<size_t>(o * inner + i)]);
        if (v < 0) v += depth;
        p[(o * depth + c) * inner + i] = v == c ? vv[1] : vv[0];
      }
  return {nondiff(n, in, out.to(values.dtype()))};
}
Outs nonzero_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const std::vector<double> v = x.to_vector<double>();
  std::vector<int64_t> hits;
  for (size_t k = 0; k < v.size(); ++k)
    if (v[k] != 0) hits.push_back(static_cast<int64_t>(k));
  const int64_t r = std::max<int64_t>(x.dim(), 1), cnt = static_cast<int64_t>(hits.size());
  Array out(Shape{x.dim() == 0 ? 0 : r, cnt}, kInt64);
  if (x.dim() > 0)
    for (int64_t h = 0; h < cnt; ++h) {
      int64_t rem = hits[static_cast<size_t>(h)];
      for (int64_t d = x.dim() - 1; d >= 0; --d) {
        out.data<int64_t>()[d * cnt + h] = rem % x.size(d);
        rem /= x.size(d);
      }
    }
  return {nondiff(n, in, out)};
}
Outs topk_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const int64_t k =
      n.opset >= 10 ? static_cast<int64_t>(scalar_value(n, required(n, in, 1), "K")) : n.i("k", 1);
  const int64_t a = axis(n, n.i("axis", -1), x.dim());
  KILN_CHECK_SHAPE(k >= 0 && k <= x.size(a), "{}: K = {} for a dim of size {}", n.where(), k,
                   x.size(a));
  TensorPair r = topk(x, k, a, n.i("largest", 1) != 0);
  return {r.values, r.indices};
}
Outs dropout_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  bool train = n.training;
  double ratio = n.f("ratio", 0.5);
  if (in.size() > 1 && in[1].defined()) ratio = scalar_value(n, in[1], "ratio");
  if (in.size() > 2 && in[2].defined()) train = scalar_value(n, in[2], "training_mode") != 0;
  if (!train || ratio == 0.0)
    return {x, Tensor(kernels::binary(kernels::BinaryOp::Eq, x.data(), x.data())
                          .expand(x.shape())
                          .contiguous())};
  Tensor y = dropout(x, ratio, true);
  return {y, nondiff(n, in, kernels::binary(kernels::BinaryOp::Ne, y.data(), 0.0))};
}
Outs depth_to_space_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  KILN_CHECK_SHAPE(x.dim() == 4, "{}: input must be 4-D", n.where());
  const int64_t b = n.i("blocksize", 1), B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  KILN_CHECK_SHAPE(b > 0 && C % (b * b) == 0, "{}: channels {} not divisible by blocksize² {}",
                   n.where(), C, b * b);
  const bool crd = n.s("mode", "DCR") == "CRD";
  Tensor t = crd ? permute(reshape(x, {B, C / (b * b), b, b, H, W}), {0, 1, 4, 2, 5, 3})
                 : permute(reshape(x, {B, b, b, C / (b * b), H, W}), {0, 3, 4, 1, 5, 2});
  return {reshape(t, {B, C / (b * b), H * b, W * b})};
}
Outs space_to_depth_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  KILN_CHECK_SHAPE(x.dim() == 4, "{}: input must be 4-D", n.where());
  const int64_t b = n.i("blocksize", 1), B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  KILN_CHECK_SHAPE(b > 0 && H % b == 0 && W % b == 0, "{}: spatial dims not divisible by {}",
                   n.where(), b);
  Tensor t = permute(reshape(x, {B, C, H / b, b, W / b, b}), {0, 3, 5, 1, 2, 4});
  return {reshape(t, {B, C * b * b, H / b, W / b})};
}
Outs trilu_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  KILN_CHECK_SHAPE(x.dim() >= 2, "{}: input must be at least 2-D", n.where());
  const int64_t k =
      in.size() > 1 && in[1].defined() ? static_cast<int64_t>(scalar_value(n, in[1], "k")) : 0;
  const bool upper = n.i("upper", 1) != 0;
  const int64_t R = x.size(-2), C = x.size(-1);
  Array mask(Shape{R, C}, kBool);
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < C; ++j) mask.data<bool>()[i * C + j] = upper ? j - i >= k : j - i <= k;
  if (!is_floating(x.dtype()))
    return {nondiff(n, in, kernels::where(mask, x.data(), kernels::scalar(0, x.dtype())))};
  return {mul(x, Tensor(mask.to(x.dtype())))};
}
Outs eye_like_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  KILN_CHECK_SHAPE(x.dim() == 2, "{}: input must be 2-D", n.where());
  const DType d = n.has("dtype") ? dtype_attr(n, "dtype", 1) : x.dtype();
  const int64_t k = n.i("k", 0);
  Array out(x.shape(), kFloat64);
  for (int64_t i = 0; i < x.size(0); ++i)
    for (int64_t j = 0; j < x.size(1); ++j) out.data<double>()[i * x.size(1) + j] = j - i == k;
  return {nondiff(n, in, out.to(d))};
}

// Hann / Hamming / Blackman windows of `size` samples (periodic: denominator size, else size-1).
template <int Kind>
Outs window_op(const NodeContext& n, const Inputs& in) {
  const auto N = static_cast<int64_t>(scalar_value(n, required(n, in, 0), "size"));
  KILN_CHECK_SHAPE(N >= 0 && N <= (int64_t{1} << 30), "{}: size {} out of range", n.where(), N);
  const double D = static_cast<double>(n.i("periodic", 1) != 0 ? N : N - 1);
  const double two_pi = 2.0 * 3.14159265358979323846;
  Array w(Shape{N}, kFloat64);
  for (int64_t k = 0; k < N; ++k) {
    const double c = D > 0 ? two_pi * static_cast<double>(k) / D : 0.0;
    double v = Kind == 0   ? 0.5 - 0.5 * std::cos(c)
               : Kind == 1 ? 25.0 / 46.0 - 21.0 / 46.0 * std::cos(c)
                           : 0.42 - 0.5 * std::cos(c) + 0.08 * std::cos(2 * c);
    w.data<double>()[k] = v;
  }
  return {nondiff(n, in, w.to(dtype_attr(n, "output_datatype", 1)))};
}

// MeanVarianceNormalization: (x - E[x]) / (sqrt(E[x²] - E[x]²) + 1e-9) over `axes`.
Outs mvn_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  std::vector<int64_t> axes = n.ints("axes", {0, 2, 3});
  for (auto& a : axes) a = axis(n, a, x.dim());
  const Tensor mu = mean(x, axes, true);
  const Tensor sd = sqrt(sub(mean(square(x), axes, true), square(mu)));
  return {div(sub(x, mu), add(sd, 1e-9))};
}

// ReverseSequence: along time_axis, the first len[b] steps of batch b reversed (a gather).
Outs reverse_sequence_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const std::vector<int64_t> lens = int_values(n, required(n, in, 1), "sequence_lens");
  const int64_t ta = axis(n, n.i("time_axis", 0), x.dim()),
                ba = axis(n, n.i("batch_axis", 1), x.dim());
  KILN_CHECK_SHAPE(ta != ba && static_cast<int64_t>(lens.size()) == x.size(ba),
                   "{}: {} sequence_lens for batch {}", n.where(), lens.size(), x.size(ba));
  const Strides st = contiguous_strides(x.shape());
  Array idx(x.shape(), kInt64);
  int64_t* p = idx.data<int64_t>();
  for (int64_t e = 0; e < x.numel(); ++e) {
    const int64_t t = (e / st[static_cast<size_t>(ta)]) % x.size(ta);
    const int64_t b = (e / st[static_cast<size_t>(ba)]) % x.size(ba);
    const int64_t len = std::clamp<int64_t>(lens[static_cast<size_t>(b)], 0, x.size(ta));
    p[e] = t < len ? len - 1 - t : t;
  }
  return {gather(x, ta, Tensor(idx))};
}

// Compress: the slices along `axis` (of the flattened input without one) where condition holds.
Outs compress_op(const NodeContext& n, const Inputs& in) {
  Tensor x = required(n, in, 0);
  const std::vector<double> cond = required(n, in, 1).to_vector<double>();
  int64_t a = 0;
  if (n.has("axis"))
    a = axis(n, n.i("axis", 0), x.dim());
  else
    x = reshape(x, {x.numel()});
  std::vector<int64_t> keep;
  for (size_t k = 0; k < cond.size() && static_cast<int64_t>(k) < x.size(a); ++k)
    if (cond[k] != 0) keep.push_back(static_cast<int64_t>(k));
  return {index_select(x, a, index_tensor(keep))};
}

}  // namespace

void register_create_ops(OpTable& t) {
  t["HannWindow"] = window_op<0>;
  t["HammingWindow"] = window_op<1>;
  t["BlackmanWindow"] = window_op<2>;
  t["MeanVarianceNormalization"] = mvn_op;
  t["ReverseSequence"] = reverse_sequence_op;
  t["Compress"] = compress_op;
  t["Shape"] = shape_op;
  t["Size"] = size_op;
  t["Cast"] = cast_op;
  t["CastLike"] = cast_like_op;
  t["Constant"] = constant_op;
  t["ConstantOfShape"] = constant_of_shape_op;
  t["Range"] = range_op;
  t["OneHot"] = onehot_op;
  t["NonZero"] = nonzero_op;
  t["TopK"] = topk_op;
  t["Dropout"] = dropout_op;
  t["DepthToSpace"] = depth_to_space_op;
  t["SpaceToDepth"] = space_to_depth_op;
  t["Trilu"] = trilu_op;
  t["EyeLike"] = eye_like_op;
}

}  // namespace kiln::onnx::detail
