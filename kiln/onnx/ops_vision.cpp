// ONNX detection and sampling ops for import_model (see import_ops_internal.h): NonMaxSuppression
// (index output, no gradient), MaxUnpool (a scatter of X into zeros: gradient to X), GridSample (a
// gather of X's taps weighted by polynomials of the grid: gradient to X and to the grid) and
// RoiAlign (a weighted gather: gradient to X).
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kiln/onnx/import_ops_internal.h"

namespace kiln::onnx::detail {
namespace {

using Outs = std::vector<Tensor>;

// A constant tensor of `dtype` holding v (row-major) with `shape`.
Tensor constant(const std::vector<double>& v, Shape shape, DType dtype) {
  Array a(std::move(shape), kFloat64);
  std::copy(v.begin(), v.end(), a.data<double>());
  return Tensor(a.to(dtype));
}

// ---- NonMaxSuppression --------------------------------------------------------------------

// Intersection over union of boxes a and b, each [y1, x1, y2, x2] (corners in either order) or,
// with center_point_box, [x_center, y_center, width, height]; 0 when either box is empty.
double iou(const double* a, const double* b, bool center) {
  auto corners = [center](const double* p, double& y0, double& x0, double& y1, double& x1) {
    if (center) {
      x0 = p[0] - p[2] / 2;
      x1 = p[0] + p[2] / 2;
      y0 = p[1] - p[3] / 2;
      y1 = p[1] + p[3] / 2;
    } else {
      y0 = std::min(p[0], p[2]);
      y1 = std::max(p[0], p[2]);
      x0 = std::min(p[1], p[3]);
      x1 = std::max(p[1], p[3]);
    }
  };
  double ay0, ax0, ay1, ax1, by0, bx0, by1, bx1;
  corners(a, ay0, ax0, ay1, ax1);
  corners(b, by0, bx0, by1, bx1);
  const double iw = std::min(ax1, bx1) - std::max(ax0, bx0),
               ih = std::min(ay1, by1) - std::max(ay0, by0);
  if (iw <= 0 || ih <= 0) return 0.0;
  const double inter = iw * ih, area_a = (ax1 - ax0) * (ay1 - ay0),
               area_b = (bx1 - bx0) * (by1 - by0), uni = area_a + area_b - inter;
  if (area_a <= 0 || area_b <= 0 || uni <= 0) return 0.0;
  return inter / uni;
}

// NonMaxSuppression(boxes (B, N, 4), scores (B, C, N), max_output_boxes_per_class,
// iou_threshold, score_threshold) -> (K, 3) int64 rows [batch, class, box]. Per batch and class,
// boxes scoring above score_threshold are taken best first (ties: lower index first); one is kept
// unless its IoU with a kept box exceeds iou_threshold; at most max_output_boxes_per_class kept.
Outs non_max_suppression_op(const NodeContext& n, const Inputs& in) {
  const Tensor &boxes = required(n, in, 0), &scores = required(n, in, 1);
  KILN_CHECK_SHAPE(boxes.dim() == 3 && boxes.size(2) == 4 && scores.dim() == 3 &&
                       scores.size(0) == boxes.size(0) && scores.size(2) == boxes.size(1),
                   "{}: boxes [{}] must be (B, N, 4) and scores [{}] (B, C, N)", n.where(),
                   fmt::join(boxes.shape(), ", "), fmt::join(scores.shape(), ", "));
  auto opt = [&](size_t k) { return k < in.size() && in[k].defined() && in[k].numel() > 0; };
  const int64_t max_out =
      opt(2) ? std::max<int64_t>(0, static_cast<int64_t>(scalar_value(n, in[2], "max_output"))) : 0;
  const double iou_t = opt(3) ? scalar_value(n, in[3], "iou_threshold") : 0.0;
  const bool use_score = opt(4);
  const double score_t = use_score ? scalar_value(n, in[4], "score_threshold") : 0.0;
  const bool center = n.i("center_point_box", 0) != 0;
  const int64_t B = boxes.size(0), N = boxes.size(1), C = scores.size(1);
  const std::vector<double> bx = boxes.to_vector<double>(), sc = scores.to_vector<double>();
  std::vector<int64_t> out;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const double* s = sc.data() + (b * C + c) * N;
      std::vector<int64_t> order;
      for (int64_t i = 0; i < N; ++i)
        if (!use_score || s[i] > score_t) order.push_back(i);
      std::stable_sort(order.begin(), order.end(),
                       [s](int64_t i, int64_t j) { return s[i] > s[j]; });
      std::vector<int64_t> kept;
      for (int64_t i : order) {
        if (static_cast<int64_t>(kept.size()) >= max_out) break;
        bool keep = true;
        for (int64_t j : kept)
          if (iou(bx.data() + (b * N + i) * 4, bx.data() + (b * N + j) * 4, center) > iou_t) {
            keep = false;
            break;
          }
        if (!keep) continue;
        kept.push_back(i);
        out.insert(out.end(), {b, c, i});
      }
    }
  return {int64_tensor(out, {static_cast<int64_t>(out.size() / 3), 3})};
}

// ---- MaxUnpool ----------------------------------------------------------------------------

// MaxUnpool(X (N, C, *), I (indices into the flattened output, as MaxPool returns them),
// output_shape?): zeros of (in - 1)·stride - pad_begin - pad_end + kernel per spatial dim with
// X's values scattered to I, padded at the end to output_shape when given.
Outs max_unpool_op(const NodeContext& n, const Inputs& in) {
  const Tensor &x = required(n, in, 0), &idx = required(n, in, 1);
  KILN_CHECK_SHAPE(idx.shape() == x.shape(), "{}: indices [{}] and X [{}] differ", n.where(),
                   fmt::join(idx.shape(), ", "), fmt::join(x.shape(), ", "));
  const std::vector<int64_t> k = n.ints("kernel_shape");
  const size_t r = k.size();
  KILN_CHECK_SHAPE(r > 0 && x.dim() == static_cast<int64_t>(r) + 2,
                   "{}: kernel_shape [{}] does not fit X [{}]", n.where(), fmt::join(k, ", "),
                   fmt::join(x.shape(), ", "));
  const std::vector<int64_t> s = n.ints("strides", std::vector<int64_t>(r, 1)),
                             p = n.ints("pads", std::vector<int64_t>(2 * r, 0));
  KILN_CHECK_SHAPE(s.size() == r && p.size() == 2 * r, "{}: strides/pads need {}/{} values",
                   n.where(), r, 2 * r);
  Shape inferred = {x.size(0), x.size(1)};
  for (size_t i = 0; i < r; ++i)
    inferred.push_back((x.size(static_cast<int64_t>(i) + 2) - 1) * s[i] - p[i] - p[i + r] + k[i]);
  check_numel(n, inferred);
  int64_t total = 1;
  for (int64_t d : inferred) total *= d;
  const std::vector<int64_t> iv = idx.to_vector<int64_t>();
  for (int64_t v : iv)
    KILN_CHECK_SHAPE(v >= 0 && v < total, "{}: index {} is outside the output's {} elements",
                     n.where(), v, total);
  Tensor y = scatter_add(zeros({total}, x.dtype()), 0, index_tensor(iv), reshape(x, {x.numel()}));
  y = reshape(y, inferred);
  if (in.size() > 2 && in[2].defined()) {
    const std::vector<int64_t> want = int_values(n, in[2], "output_shape");
    KILN_CHECK_SHAPE(want.size() == inferred.size(), "{}: output_shape [{}] has rank {}, not {}",
                     n.where(), fmt::join(want, ", "), want.size(), inferred.size());
    std::vector<int64_t> kp;  // Kiln's pad order: last dim first, (begin, end) pairs
    for (size_t i = inferred.size(); i-- > 0;) {
      KILN_CHECK_SHAPE(want[i] >= inferred[i], "{}: output_shape [{}] is smaller than [{}]",
                       n.where(), fmt::join(want, ", "), fmt::join(inferred, ", "));
      kp.push_back(0);
      kp.push_back(want[i] - inferred[i]);
    }
    y = pad(y, kp, 0.0);
  }
  return {y};
}

// ---- GridSample ---------------------------------------------------------------------------

// Reflects v into [lo, hi] by folding at the nearer border until inside (the spec's reflection).
double reflect(double v, double lo, double hi) {
  const double range = hi - lo;
  if (range <= 0) return lo;
  if (v < lo) {
    const double dx = lo - v;
    const auto k = static_cast<int64_t>(dx / range);
    const double rest = dx - static_cast<double>(k) * range;
    return k % 2 == 0 ? lo + rest : hi - rest;
  }
  if (v > hi) {
    const double dx = v - hi;
    const auto k = static_cast<int64_t>(dx / range);
    const double rest = dx - static_cast<double>(k) * range;
    return k % 2 == 0 ? hi - rest : lo + rest;
  }
  return v;
}

// d reflect(v) / dv outside [lo, hi]: -1 after an even number of folds past the first, else 1.
double reflect_slope(double v, double lo, double hi) {
  const double dx = v < lo ? lo - v : v - hi;
  return static_cast<int64_t>(dx / (hi - lo)) % 2 == 0 ? -1.0 : 1.0;
}

// The taps of one spatial dim: per output point (P of them) T source indices, whether each lies
// inside the input, and their weights (a differentiable function of the grid).
struct Taps {
  std::vector<int64_t> index;  // (P, T)
  std::vector<double> valid;   // (P, T): 0 for a zero-padded tap
  Tensor weight;               // (P, T)
  int64_t T = 0;
};

// Keys' cubic convolution weights (A = -0.75) of the 4 taps at offsets -1, 0, 1, 2 from floor(v)
// for t = v - floor(v) in [0, 1).
std::vector<Tensor> cubic_weights(const Tensor& t) {
  const double A = -0.75;
  auto far = [A](const Tensor& d) {  // 1 < d < 2
    return sub(mul(add(mul(sub(mul(d, A), 5 * A), d), 8 * A), d), 4 * A);
  };
  auto near = [A](const Tensor& d) {  // 0 <= d <= 1
    return add(mul(mul(sub(mul(d, A + 2), A + 3), d), d), 1.0);
  };
  return {far(add(t, 1.0)), near(t), near(rsub(t, 1.0)), far(rsub(t, 2.0))};
}

// v: (P) source coordinates in pixels along a dim of length L (a tensor of the grid's graph).
Taps taps_of(const Tensor& v, int64_t L, const std::string& mode, const std::string& padding,
             bool align, DType dtype) {
  const int64_t P = v.numel();
  const double lo = align ? 0.0 : -0.5, hi = align ? static_cast<double>(L - 1) : L - 0.5;
  const std::vector<double> raw = v.to_vector<double>();
  // Out-of-range coordinates are moved inside first (border: clamped; reflection: folded) as
  // v' = a·v + b with a in {-1, 0, 1}, so the weights keep their gradient where it exists.
  std::vector<double> a(static_cast<size_t>(P), 1.0), b(static_cast<size_t>(P), 0.0);
  for (int64_t p = 0; p < P; ++p) {
    double x = raw[static_cast<size_t>(p)];
    if (mode == "nearest") {
      a[static_cast<size_t>(p)] = 0.0;
      x = std::nearbyint(x);
    }
    if (x < lo || x > hi) {
      if (padding == "border") {
        a[static_cast<size_t>(p)] = 0.0;
        x = std::clamp(x, 0.0, static_cast<double>(L - 1));
      } else if (padding == "reflection") {
        const double f = reflect(x, lo, hi);
        if (a[static_cast<size_t>(p)] != 0.0) {
          a[static_cast<size_t>(p)] = reflect_slope(x, lo, hi);
          b[static_cast<size_t>(p)] = f - a[static_cast<size_t>(p)] * x;
          continue;
        }
        x = f;
      }
    }
    if (a[static_cast<size_t>(p)] == 0.0) b[static_cast<size_t>(p)] = x;
  }
  const Tensor vv = add(mul(to_dtype(v, dtype), constant(a, {P}, dtype)), constant(b, {P}, dtype));
  const std::vector<double> moved = vv.to_vector<double>();
  // A tap's source index for the padding mode; `ok` false for a zero-padded one.
  auto source = [&](int64_t i, bool& ok) {
    ok = true;
    if (i >= 0 && i < L) return i;
    if (padding == "zeros") {
      ok = false;
      return int64_t{0};
    }
    if (padding == "border") return std::clamp<int64_t>(i, 0, L - 1);
    return std::clamp<int64_t>(static_cast<int64_t>(reflect(static_cast<double>(i), lo, hi)), 0,
                               L - 1);
  };
  Taps t;
  std::vector<int64_t> first(static_cast<size_t>(P));
  std::vector<double> base(static_cast<size_t>(P));
  std::vector<int64_t> offsets;
  std::vector<Tensor> weights;
  if (mode == "nearest") {
    for (int64_t p = 0; p < P; ++p)
      first[static_cast<size_t>(p)] = static_cast<int64_t>(moved[static_cast<size_t>(p)]);
    offsets = {0};
    weights = {ones({P}, dtype)};
  } else {
    for (int64_t p = 0; p < P; ++p) {
      base[static_cast<size_t>(p)] = std::floor(moved[static_cast<size_t>(p)]);
      first[static_cast<size_t>(p)] = static_cast<int64_t>(base[static_cast<size_t>(p)]);
    }
    const Tensor frac = sub(vv, constant(base, {P}, dtype));  // t = v - floor(v)
    if (mode == "cubic") {
      offsets = {-1, 0, 1, 2};
      weights = cubic_weights(frac);
    } else {
      offsets = {0, 1};
      weights = {rsub(frac, 1.0), frac};
    }
  }
  t.T = static_cast<int64_t>(offsets.size());
  for (int64_t p = 0; p < P; ++p)
    for (int64_t o : offsets) {
      bool ok = true;
      t.index.push_back(source(first[static_cast<size_t>(p)] + o, ok));
      t.valid.push_back(ok ? 1.0 : 0.0);
    }
  for (Tensor& w : weights) w = unsqueeze(w, 1);
  t.weight = mul(cat(weights, 1), constant(t.valid, {P, t.T}, dtype));
  return t;
}

// GridSample(X (N, C, D1..Dr), grid (N, O1..Or, r)) -> (N, C, O1..Or): grid[..., 0] is the
// normalised coordinate along the last dim Dr (x), grid[..., 1] along D(r-1) (y), ...; -1 and 1
// are the centres of the corner pixels (align_corners) or their outer edges. Each output is
// Σ_taps w · X[taps]: 1 tap (nearest, ties to even), 2 per dim (linear) or 4 (Keys cubic).
// Coordinates and weights are computed in float64 (ties of `nearest` and floor() then fall as
// the spec's float64 reference has them) and cast to X's type.
Outs grid_sample_op(const NodeContext& n, const Inputs& in) {
  const Tensor &x = required(n, in, 0), &grid = required(n, in, 1);
  const int64_t r = x.dim() - 2;
  KILN_CHECK_SHAPE(r >= 1 && grid.dim() == r + 2 && grid.size(0) == x.size(0) && grid.size(-1) == r,
                   "{}: X [{}] and grid [{}] must be (N, C, D1..Dr) and (N, O1..Or, r)", n.where(),
                   fmt::join(x.shape(), ", "), fmt::join(grid.shape(), ", "));
  std::string mode = n.s("mode", n.opset >= 20 ? "linear" : "bilinear");
  if (mode == "bilinear") mode = "linear";
  if (mode == "bicubic") mode = "cubic";
  const std::string padding = n.s("padding_mode", "zeros");
  KILN_CHECK(mode == "linear" || mode == "nearest" || mode == "cubic",
             "{}: mode '{}' is not supported (bilinear/linear, nearest, bicubic/cubic)", n.where(),
             mode);
  KILN_CHECK(padding == "zeros" || padding == "border" || padding == "reflection",
             "{}: padding_mode '{}' is not supported (zeros, border, reflection)", n.where(),
             padding);
  const bool align = n.i("align_corners", 0) != 0;
  const int64_t N = x.size(0), C = x.size(1);
  int64_t P = 1, S = 1;
  for (int64_t d = 1; d <= r; ++d) P *= grid.size(d);
  for (int64_t d = 2; d < x.dim(); ++d) S *= x.size(d);
  const DType dt = x.dtype();
  // Combine the dims' taps: index = Σ index_d · stride_d, weight = Π weight_d, over (N·P, T).
  std::vector<int64_t> index;
  Tensor weight;
  int64_t T = 1;
  for (int64_t d = 0; d < r; ++d) {
    const int64_t L = x.size(d + 2);
    const Tensor g = to_dtype(reshape(select(grid, -1, r - 1 - d), {N * P}), kFloat64);
    const Tensor v = align ? mul(add(g, 1.0), 0.5 * static_cast<double>(L - 1))
                           : mul(sub(mul(add(g, 1.0), static_cast<double>(L)), 1.0), 0.5);
    const Taps t = taps_of(v, L, mode, padding, align, kFloat64);
    std::vector<int64_t> next(static_cast<size_t>(N * P * T * t.T));
    for (int64_t p = 0; p < N * P; ++p)
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j < t.T; ++j)
          next[static_cast<size_t>((p * T + i) * t.T + j)] =
              (d == 0 ? 0 : index[static_cast<size_t>(p * T + i)] * L) +
              t.index[static_cast<size_t>(p * t.T + j)];
    index = std::move(next);
    weight = d == 0 ? t.weight
                    : reshape(mul(unsqueeze(weight, 2), unsqueeze(t.weight, 1)), {N * P, T * t.T});
    T *= t.T;
  }
  // X as (N, C, S) gathered at (N, C, P·T), weighted and summed over the taps.
  const Tensor idx = expand(int64_tensor(index, {N, 1, P * T}), {N, C, P * T});
  const Tensor xs = gather(reshape(x, {N, C, S}), 2, contiguous(idx));
  Tensor y = sum(mul(reshape(xs, {N, C, P, T}), reshape(to_dtype(weight, dt), {N, 1, P, T})), {3});
  Shape out = {N, C};
  for (int64_t d = 1; d <= r; ++d) out.push_back(grid.size(d));
  return {reshape(y, out)};
}

// ---- RoiAlign -----------------------------------------------------------------------------

// RoiAlign(X (N, C, H, W), rois (R, 4) [x1, y1, x2, y2], batch_indices (R)) -> (R, C, OH, OW)
// (Mask R-CNN's RoIAlign). Each output bin averages (mode avg) or takes the largest weighted corner
// of (mode max, as ONNX Runtime defines it) a grid of sampling_ratio² points (or
// ceil(roi size / bins) per dim when 0), each bilinearly interpolated; points more than a pixel
// outside X count as 0. Coordinates are scaled by spatial_scale and shifted by -0.5 under
// half_pixel (the default from opset 16; output_half_pixel keeps them and makes rois at least 1
// pixel). Computed as a weighted gather of X, so X gets a gradient (the rois do not).
Outs roi_align_op(const NodeContext& n, const Inputs& in) {
  const Tensor &x = required(n, in, 0), &rois = required(n, in, 1), &bidx = required(n, in, 2);
  KILN_CHECK_SHAPE(x.dim() == 4 && rois.dim() == 2 && rois.size(1) == 4 && bidx.dim() == 1 &&
                       bidx.size(0) == rois.size(0),
                   "{}: X [{}], rois [{}], batch_indices [{}] must be (N, C, H, W), (R, 4), (R)",
                   n.where(), fmt::join(x.shape(), ", "), fmt::join(rois.shape(), ", "),
                   fmt::join(bidx.shape(), ", "));
  const std::string mode = n.s("mode", "avg");
  KILN_CHECK(mode == "avg" || mode == "max", "{}: mode '{}' is neither avg nor max", n.where(),
             mode);
  const bool half = n.s("coordinate_transformation_mode",
                        n.opset >= 16 ? "half_pixel" : "output_half_pixel") == "half_pixel";
  const int64_t OH = n.i("output_height", 1), OW = n.i("output_width", 1),
                ratio = n.i("sampling_ratio", 0);
  const double scale = n.f("spatial_scale", 1.0), off = half ? 0.5 : 0.0;
  KILN_CHECK(OH > 0 && OW > 0 && ratio >= 0, "{}: output sizes must be positive", n.where());
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), R = rois.size(0);
  const std::vector<double> box = rois.to_vector<double>();
  const std::vector<int64_t> batch = bidx.to_vector<int64_t>();
  const Tensor planes = reshape(x, {N, C, H * W});
  std::vector<Tensor> outs;
  for (int64_t r = 0; r < R; ++r) {
    const int64_t b = batch[static_cast<size_t>(r)];
    KILN_CHECK_SHAPE(b >= 0 && b < N, "{}: batch index {} is outside [0, {})", n.where(), b, N);
    const double* q = box.data() + 4 * r;
    const double x0 = q[0] * scale - off, y0 = q[1] * scale - off;
    double rw = q[2] * scale - off - x0, rh = q[3] * scale - off - y0;
    if (!half) {
      rw = std::max(rw, 1.0);
      rh = std::max(rh, 1.0);
    }
    const double bh = rh / static_cast<double>(OH), bw = rw / static_cast<double>(OW);
    const int64_t gh = ratio > 0 ? ratio : static_cast<int64_t>(std::ceil(rh / OH)),
                  gw = ratio > 0 ? ratio : static_cast<int64_t>(std::ceil(rw / OW));
    const double count = static_cast<double>(std::max<int64_t>(gh * gw, 1));
    const int64_t T = std::max<int64_t>(gh * gw, 1) * 4;  // 4 corners per sampling point
    std::vector<int64_t> idx(static_cast<size_t>(OH * OW * T), 0);
    std::vector<double> wt(idx.size(), 0.0);
    for (int64_t p = 0; p < OH * OW; ++p)
      for (int64_t s = 0; s < gh * gw; ++s) {
        const int64_t ph = p / OW, pw = p % OW, iy = s / gw, ix = s % gw;
        double y = y0 + static_cast<double>(ph) * bh +
                   (static_cast<double>(iy) + 0.5) * bh / static_cast<double>(gh);
        double xx = x0 + static_cast<double>(pw) * bw +
                    (static_cast<double>(ix) + 0.5) * bw / static_cast<double>(gw);
        if (y < -1.0 || y > static_cast<double>(H) || xx < -1.0 || xx > static_cast<double>(W))
          continue;  // weight 0
        y = std::max(y, 0.0);
        xx = std::max(xx, 0.0);
        auto corners = [](double& v, int64_t L, int64_t& lo, int64_t& hi) {
          lo = static_cast<int64_t>(v);
          if (lo >= L - 1) {
            lo = hi = L - 1;
            v = static_cast<double>(lo);
          } else {
            hi = lo + 1;
          }
        };
        int64_t yl, yh, xl, xh;
        corners(y, H, yl, yh);
        corners(xx, W, xl, xh);
        const double ly = y - static_cast<double>(yl), lx = xx - static_cast<double>(xl);
        const int64_t pos[4] = {yl * W + xl, yl * W + xh, yh * W + xl, yh * W + xh};
        const double w[4] = {(1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx};
        for (int k = 0; k < 4; ++k) {
          const size_t at = static_cast<size_t>((p * T) + s * 4 + k);
          idx[at] = pos[k];
          wt[at] = mode == "avg" ? w[k] / count : w[k];
        }
      }
    // (C, OH·OW·T) samples of this roi's image, weighted, reduced over the taps.
    const Tensor v =
        reshape(index_select(select(planes, 0, b), 1, index_tensor(idx)), {C, OH * OW, T});
    const Tensor weighted =
        mul(v, reshape(constant(wt, {OH * OW * T}, x.dtype()), {1, OH * OW, T}));
    const Tensor pooled = mode == "avg" ? sum(weighted, {2}) : amax(weighted, {2});
    outs.push_back(reshape(pooled, {C, OH, OW}));
  }
  if (outs.empty()) return {zeros({0, C, OH, OW}, x.dtype())};
  return {stack(outs, 0)};
}

}  // namespace

void register_vision_ops(OpTable& t) {
  t["RoiAlign"] = roi_align_op;
  t["NonMaxSuppression"] = non_max_suppression_op;
  t["MaxUnpool"] = max_unpool_op;
  t["GridSample"] = grid_sample_op;
}

}  // namespace kiln::onnx::detail
