// ONNX Resize (opsets 10-18) and Upsample (7-9) for import_model (see import_ops_internal.h):
// nearest, linear and cubic, every coordinate transformation mode but half_pixel_symmetric, as
// separable per-axis gathers and blends of Kiln autograd ops (so the gradient flows to the input).
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "kiln/onnx/import_ops_internal.h"

namespace kiln::onnx::detail {
namespace {

using Outs = std::vector<Tensor>;

// Resize / Upsample, one axis at a time: each output index maps to a source coordinate by the
// coordinate transformation mode; nearest picks one source row, linear blends two, cubic four.
struct ResizeMode {
  std::string mode, coord, nearest;
  double cubic_a = -0.75;
  bool exclude_outside = false;
  // tf_crop_and_resize: the crop of the current axis (normalised to [0, 1]) and the value of
  // outputs whose source falls outside the input.
  double roi_start = 0.0, roi_end = 1.0, extrapolation = 0.0;
};
// `out_f` is the unrounded output length (in · scale when scales are given), as the spec uses it.
double source_coord(const ResizeMode& m, int64_t o, int64_t in, int64_t out, double out_f,
                    double scale) {
  const double x = static_cast<double>(o);
  if (m.coord == "half_pixel") return (x + 0.5) / scale - 0.5;
  if (m.coord == "pytorch_half_pixel") return out > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
  if (m.coord == "align_corners")
    return out == 1 ? 0.0 : x * static_cast<double>(in - 1) / (out_f - 1);
  if (m.coord == "tf_half_pixel_for_nn") return (x + 0.5) / scale;
  if (m.coord == "tf_crop_and_resize") {
    const double span = (m.roi_end - m.roi_start) * static_cast<double>(in - 1);
    return out > 1
               ? m.roi_start * static_cast<double>(in - 1) + x * span / static_cast<double>(out - 1)
               : 0.5 * (m.roi_start + m.roi_end) * static_cast<double>(in - 1);
  }
  return x / scale;  // asymmetric
}
int64_t nearest_index(const ResizeMode& m, double c, int64_t in) {
  double r;
  if (m.nearest == "floor")
    r = std::floor(c);
  else if (m.nearest == "ceil")
    r = std::ceil(c);
  else if (m.nearest == "round_prefer_ceil")
    r = std::floor(c + 0.5);
  else
    r = (c - std::floor(c) == 0.5) ? std::floor(c) : std::round(c);  // round_prefer_floor
  return std::clamp<int64_t>(static_cast<int64_t>(r), 0, in - 1);
}
Tensor resize_axis_inside(const Tensor& x, int64_t a, int64_t out, double out_f, double scale,
                          const ResizeMode& m);
// tf_crop_and_resize sets outputs whose source lies outside [0, in - 1] to the extrapolation value.
Tensor resize_axis(const Tensor& x, int64_t a, int64_t out, double out_f, double scale,
                   const ResizeMode& m) {
  Tensor y = resize_axis_inside(x, a, out, out_f, scale, m);
  if (m.coord != "tf_crop_and_resize") return y;
  const int64_t in = x.size(a);
  std::vector<double> keep(static_cast<size_t>(out)), fill(static_cast<size_t>(out));
  bool any = false;
  for (int64_t o = 0; o < out; ++o) {
    const double c = source_coord(m, o, in, out, out_f, scale);
    const bool outside = c < 0 || c > static_cast<double>(in - 1);
    any = any || outside;
    keep[static_cast<size_t>(o)] = outside ? 0.0 : 1.0;
    fill[static_cast<size_t>(o)] = outside ? m.extrapolation : 0.0;
  }
  if (!any) return y;
  Shape ws(static_cast<size_t>(x.dim()), 1);
  ws[static_cast<size_t>(a)] = out;
  Array k(ws, kFloat64), f(ws, kFloat64);
  std::copy(keep.begin(), keep.end(), k.data<double>());
  std::copy(fill.begin(), fill.end(), f.data<double>());
  return add(mul(y, Tensor(k.to(x.dtype()))), Tensor(f.to(x.dtype())));
}
Tensor resize_axis_inside(const Tensor& x, int64_t a, int64_t out, double out_f, double scale,
                          const ResizeMode& m) {
  const int64_t in = x.size(a);
  if (m.mode == "nearest") {
    std::vector<int64_t> idx;
    for (int64_t o = 0; o < out; ++o)
      idx.push_back(nearest_index(m, source_coord(m, o, in, out, out_f, scale), in));
    // An integer upsampling that repeats each row r times (the common 2x) is one broadcast copy.
    const int64_t r = out / in;
    bool repeat = r > 1 && out == r * in;
    for (int64_t o = 0; repeat && o < out; ++o) repeat = idx[static_cast<size_t>(o)] == o / r;
    if (repeat) {
      Shape s1 = x.shape(), s2 = x.shape(), s3 = x.shape();
      s1.insert(s1.begin() + a + 1, 1);
      s2.insert(s2.begin() + a + 1, r);
      s3[static_cast<size_t>(a)] = out;
      return reshape(contiguous(expand(reshape(x, s1), s2)), s3);
    }
    return index_select(x, a, index_tensor(idx));
  }
  const int taps = m.mode == "cubic" ? 4 : 2;
  std::vector<std::vector<int64_t>> idx(static_cast<size_t>(taps),
                                        std::vector<int64_t>(static_cast<size_t>(out)));
  Array wts(Shape{taps, out}, kFloat64);
  for (int64_t o = 0; o < out; ++o) {
    double c = source_coord(m, o, in, out, out_f, scale);
    if (m.mode != "cubic") c = std::clamp(c, 0.0, static_cast<double>(in - 1));
    const double f = std::floor(c), t = c - f;
    const auto base = static_cast<int64_t>(f);
    double w[4];
    if (taps == 2) {
      w[0] = 1 - t;
      w[1] = t;
    } else {
      const double A = m.cubic_a;
      auto far = [A](double u) { return ((A * u - 5 * A) * u + 8 * A) * u - 4 * A; };
      auto near = [A](double u) { return ((A + 2) * u - (A + 3)) * u * u + 1; };
      w[0] = far(t + 1);
      w[1] = near(t);
      w[2] = near(1 - t);
      w[3] = far(2 - t);
    }
    double total = 0;
    for (int j = 0; j < taps; ++j) {
      const int64_t src = base + j - (taps == 4 ? 1 : 0);
      if (m.exclude_outside && (src < 0 || src >= in)) w[j] = 0;
      total += w[j];
      idx[static_cast<size_t>(j)][static_cast<size_t>(o)] = std::clamp<int64_t>(src, 0, in - 1);
    }
    for (int j = 0; j < taps; ++j)
      wts.data<double>()[j * out + o] = m.exclude_outside && total != 0 ? w[j] / total : w[j];
  }
  Shape ws(static_cast<size_t>(x.dim()), 1);
  ws[static_cast<size_t>(a)] = out;
  Tensor y;
  for (int j = 0; j < taps; ++j) {
    Tensor wj = Tensor(wts.select(0, j).contiguous().to(x.dtype()).reshape(ws));
    Tensor term = mul(index_select(x, a, index_tensor(idx[static_cast<size_t>(j)])), wj);
    y = j == 0 ? term : add(y, term);
  }
  return y;
}

Outs resize_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  KILN_CHECK_TYPE(is_floating(x.dtype()), "{}: input must be floating point, got {}", n.where(),
                  x.dtype());
  ResizeMode m;
  m.mode = n.s("mode", "nearest");
  const bool upsample = n.op_type == "Upsample";
  const bool legacy = upsample || n.opset < 11;
  m.coord = legacy ? "asymmetric" : n.s("coordinate_transformation_mode", "half_pixel");
  m.nearest = legacy ? "floor" : n.s("nearest_mode", "round_prefer_floor");
  m.cubic_a = n.f("cubic_coeff_a", -0.75);
  m.exclude_outside = n.i("exclude_outside", 0) != 0;
  if (m.mode == "bilinear" || m.mode == "trilinear") m.mode = "linear";
  KILN_CHECK(m.mode == "nearest" || m.mode == "linear" || m.mode == "cubic",
             "{}: mode '{}' is not supported", n.where(), m.mode);
  KILN_CHECK(m.coord != "half_pixel_symmetric",
             "{}: coordinate_transformation_mode '{}' is not supported", n.where(), m.coord);
  KILN_CHECK(!n.has("axes") && n.s("keep_aspect_ratio_policy", "stretch") == "stretch",
             "{}: axes / keep_aspect_ratio_policy are not supported", n.where());
  KILN_CHECK(n.i("antialias", 0) == 0, "{}: antialias (opset 18) is not supported", n.where());
  std::vector<double> scales;
  std::vector<int64_t> sizes;
  if (upsample && n.opset < 9) {
    scales = n.floats("scales");
  } else {
    const size_t si = upsample || n.opset < 11 ? 1 : 2;
    if (in.size() > si && in[si].defined() && in[si].numel() > 0)
      scales = in[si].to_vector<double>();
    if (!upsample && n.opset >= 11 && in.size() > 3 && in[3].defined() && in[3].numel() > 0)
      sizes = int_values(n, in[3], "sizes");
  }
  KILN_CHECK_SHAPE(static_cast<int64_t>(sizes.empty() ? scales.size() : sizes.size()) == x.dim(),
                   "{}: needs one scale or size per dim of the rank-{} input", n.where(), x.dim());
  // tf_crop_and_resize's roi (input 1): [start_1..start_r, end_1..end_r], normalised.
  std::vector<double> roi;
  if (m.coord == "tf_crop_and_resize") {
    if (in.size() > 1 && in[1].defined()) roi = in[1].to_vector<double>();
    KILN_CHECK_SHAPE(static_cast<int64_t>(roi.size()) == 2 * x.dim(),
                     "{}: tf_crop_and_resize needs a roi of {} values, got {}", n.where(),
                     2 * x.dim(), roi.size());
    m.extrapolation = n.f("extrapolation_value", 0.0);
  }
  Tensor y = x;
  for (int64_t a = 0; a < x.dim(); ++a) {
    if (!roi.empty()) {
      m.roi_start = roi[static_cast<size_t>(a)];
      m.roi_end = roi[static_cast<size_t>(a + x.dim())];
    }
    const int64_t len = x.size(a);
    int64_t out;
    double scale, out_f;
    if (!sizes.empty()) {
      out = sizes[static_cast<size_t>(a)];
      scale = len == 0 ? 1.0 : static_cast<double>(out) / static_cast<double>(len);
      out_f = static_cast<double>(out);
    } else {
      scale = scales[static_cast<size_t>(a)];
      KILN_CHECK_SHAPE(scale > 0 && scale < 1e6, "{}: scale {} must be positive", n.where(), scale);
      out_f = static_cast<double>(len) * scale;
      out = static_cast<int64_t>(std::floor(out_f));
    }
    KILN_CHECK_SHAPE(out >= 0 && out <= (int64_t{1} << 30), "{}: output size {} out of range",
                     n.where(), out);
    if (out == len && scale == 1.0 && (roi.empty() || (m.roi_start == 0 && m.roi_end == 1)))
      continue;
    KILN_CHECK_SHAPE(len > 0, "{}: cannot resize an empty dim", n.where());
    y = resize_axis(y, a, out, out_f, scale, m);
  }
  return {y};
}

}  // namespace

void register_resize_ops(OpTable& t) {
  t["Resize"] = resize_op;
  t["Upsample"] = resize_op;
}

}  // namespace kiln::onnx::detail
