// Pooling kernels. Legend as in pool.h: B batch, C channels, H × W input plane, kh × kw window,
// Ho × Wo output plane, P = Ho · Wo. Every kernel works plane by plane: the B·C planes are
// independent, so they split across threads with no shared writes (backward scatters stay inside
// one plane).
#include "kiln/tensor/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"

namespace kiln::kernels {
namespace {

// The geometry of one call in the 4-D view (1-D pooling has H = kh = Ho = 1).
struct PoolGeom {
  int64_t planes, H, W, Ho, Wo;
  int64_t kh, kw, sh, sw, ph, pw;
  int64_t HW() const { return H * W; }
  int64_t P() const { return Ho * Wo; }
};

Shape to4d(const Shape& s) {
  if (s.size() != 3) return s;
  return {s[0], s[1], 1, s[2]};
}

PoolGeom make_geom(const Shape& x, const Shape& y, const Pool2dParams& p) {
  Shape x4 = to4d(x), y4 = to4d(y);
  return {x4[0] * x4[1], x4[2],      x4[3],      y4[2],   y4[3],  p.kernel_h,
          p.kernel_w,    p.stride_h, p.stride_w, p.pad_h, p.pad_w};
}

int64_t plane_grain(int64_t work_per_plane) {
  return std::max<int64_t>(1, kGrainSize / std::max<int64_t>(work_per_plane, 1));
}

// PyTorch's adaptive bin [start, end) for output cell i of n_out over n_in inputs.
int64_t bin_start(int64_t i, int64_t n_in, int64_t n_out) {
  return (i * n_in) / n_out;
}
int64_t bin_end(int64_t i, int64_t n_in, int64_t n_out) {
  return ((i + 1) * n_in + n_out - 1) / n_out;
}

// An average-pooling window clipped to the input, with PyTorch's count_include_pad divisor: the
// window size clipped only to the padded input.
struct Window {
  int64_t h0, h1, w0, w1;
  int64_t divisor;
};
Window avg_window(const PoolGeom& g, int64_t oh, int64_t ow) {
  int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  int64_t h1 = std::min(h0 + g.kh, g.H + g.ph), w1 = std::min(w0 + g.kw, g.W + g.pw);
  int64_t divisor = (h1 - h0) * (w1 - w0);
  return {std::max<int64_t>(h0, 0), std::min(h1, g.H), std::max<int64_t>(w0, 0), std::min(w1, g.W),
          divisor};
}
Window adaptive_window(const PoolGeom& g, int64_t oh, int64_t ow) {
  int64_t h0 = bin_start(oh, g.H, g.Ho), h1 = bin_end(oh, g.H, g.Ho);
  int64_t w0 = bin_start(ow, g.W, g.Wo), w1 = bin_end(ow, g.W, g.Wo);
  return {h0, h1, w0, w1, (h1 - h0) * (w1 - w0)};
}

// ---- fast kernels ----

// The 2 × 2, stride 2, unpadded window (LeNet's, VGG's): every window lies inside the input, so no
// clipping. The four taps are compared in max_forward's order (row-major; strictly greater or NaN
// replaces, so the first maximum and the last NaN win) with selects instead of branches.
bool is_2x2_stride_2(const PoolGeom& g) {
  return g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0;
}

// Written over each output row's stride-2 inputs, GCC compiled the selects to scalar compares and
// branches (perf annotate: a `jp`/`ja` per tap; 12.7 % of the W4 LeNet step, mispredicted on random
// data), and LeNet's rows (14 and 5 outputs) are too short for a vector loop anyway. So outputs are
// taken in chunks of 64 across rows and planes: a copy loop gathers each window's four taps into
// contiguous arrays, the select loop runs over a full chunk with a 32-bit tap code (the width of
// float, so it vectorises), and a last loop writes the values and widens the codes to indices.
template <typename T>
struct Taps2x2 {
  static constexpr int64_t kChunk = 64;
  alignas(64) T a[kChunk], b[kChunk], c[kChunk], d[kChunk], m[kChunk];
  alignas(64) int32_t code[kChunk];  // 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right
  int64_t pos[kChunk];               // the top-left tap's index in its plane

  // Selects over the first n windows, in max_forward's order.
  template <int64_t N>
  void select(int64_t n) {
    const int64_t e = N > 0 ? N : n;
    for (int64_t j = 0; j < e; ++j) {
      T v = a[j];
      int32_t k = 0;
      bool r = (b[j] > v) | (b[j] != b[j]);  // x != x: NaN
      v = r ? b[j] : v;
      k = r ? 1 : k;
      r = (c[j] > v) | (c[j] != c[j]);
      v = r ? c[j] : v;
      k = r ? 2 : k;
      r = (d[j] > v) | (d[j] != d[j]);
      v = r ? d[j] : v;
      k = r ? 3 : k;
      m[j] = v;
      code[j] = k;
    }
  }
  // Selects over n windows and writes outputs o0 .. o0 + n − 1.
  void flush(int64_t n, int64_t W, T* y, int64_t* idx, int64_t o0) {
    if (n == kChunk)
      select<kChunk>(n);
    else
      select<0>(n);
    for (int64_t j = 0; j < n; ++j) {
      y[o0 + j] = m[j];
      idx[o0 + j] = pos[j] + (code[j] & 1) + (code[j] >> 1) * W;
    }
  }
};

template <typename T>
void max_forward_2x2(const T* x, const PoolGeom& g, T* y, int64_t* idx) {
  parallel_for(0, g.planes, plane_grain(g.P() * 4), [&](int64_t r0, int64_t r1) {
    Taps2x2<T> t;
    int64_t n = 0, o0 = r0 * g.P();  // outputs of planes r0 .. r1 are contiguous from o0
    for (int64_t r = r0; r < r1; ++r) {
      const T* xp = x + r * g.HW();
      for (int64_t oh = 0; oh < g.Ho; ++oh)
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          const int64_t p = 2 * oh * g.W + 2 * ow;
          t.a[n] = xp[p];
          t.b[n] = xp[p + 1];
          t.c[n] = xp[p + g.W];
          t.d[n] = xp[p + g.W + 1];
          t.pos[n] = p;
          if (++n == Taps2x2<T>::kChunk) {
            t.flush(n, g.W, y, idx, o0);
            o0 += n;
            n = 0;
          }
        }
    }
    if (n > 0) t.flush(n, g.W, y, idx, o0);
  });
}

template <typename T>
void max_forward(const T* x, const PoolGeom& g, T* y, int64_t* idx) {
  if (is_2x2_stride_2(g)) return max_forward_2x2(x, g, y, idx);
  parallel_for(0, g.planes, plane_grain(g.P() * g.kh * g.kw), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xp = x + r * g.HW();
      T* yp = y + r * g.P();
      int64_t* ip = idx + r * g.P();
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        const int64_t hs = oh * g.sh - g.ph;
        const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min(hs + g.kh, g.H);
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          const int64_t ws = ow * g.sw - g.pw;
          const int64_t w0 = std::max<int64_t>(ws, 0), w1 = std::min(ws + g.kw, g.W);
          T m = -std::numeric_limits<T>::infinity();
          int64_t mi = h0 * g.W + w0;
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) {
              const T v = xp[ih * g.W + iw];
              if (v > m || std::isnan(v)) {
                m = v;
                mi = ih * g.W + iw;
              }
            }
          yp[oh * g.Wo + ow] = m;
          ip[oh * g.Wo + ow] = mi;
        }
      }
    }
  });
}

template <typename T>
void max_backward(const T* dy, const int64_t* idx, const PoolGeom& g, T* dx) {
  parallel_for(0, g.planes, plane_grain(g.HW() + g.P()), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T* dxp = dx + r * g.HW();
      std::fill(dxp, dxp + g.HW(), T(0));
      const T* dyp = dy + r * g.P();
      const int64_t* ip = idx + r * g.P();
      for (int64_t o = 0; o < g.P(); ++o) dxp[ip[o]] += dyp[o];
    }
  });
}

// Average over windows chosen by `window(g, oh, ow)` (fixed or adaptive); sums in float64.
template <typename T, typename WindowFn>
void avg_forward(const T* x, const PoolGeom& g, T* y, WindowFn window, int64_t work_per_output) {
  parallel_for(0, g.planes, plane_grain(g.P() * work_per_output), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xp = x + r * g.HW();
      T* yp = y + r * g.P();
      for (int64_t oh = 0; oh < g.Ho; ++oh)
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          const Window win = window(g, oh, ow);
          double s = 0;
          for (int64_t ih = win.h0; ih < win.h1; ++ih)
            for (int64_t iw = win.w0; iw < win.w1; ++iw) s += xp[ih * g.W + iw];
          yp[oh * g.Wo + ow] = static_cast<T>(s / static_cast<double>(win.divisor));
        }
    }
  });
}

template <typename T, typename WindowFn>
void avg_backward(const T* dy, const PoolGeom& g, T* dx, WindowFn window, int64_t work_per_output) {
  parallel_for(0, g.planes, plane_grain(g.HW() + g.P() * work_per_output),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   T* dxp = dx + r * g.HW();
                   std::fill(dxp, dxp + g.HW(), T(0));
                   const T* dyp = dy + r * g.P();
                   for (int64_t oh = 0; oh < g.Ho; ++oh)
                     for (int64_t ow = 0; ow < g.Wo; ++ow) {
                       const Window win = window(g, oh, ow);
                       const T share = dyp[oh * g.Wo + ow] / static_cast<T>(win.divisor);
                       for (int64_t ih = win.h0; ih < win.h1; ++ih)
                         for (int64_t iw = win.w0; iw < win.w1; ++iw) dxp[ih * g.W + iw] += share;
                     }
                 }
               });
}

void check_layout(std::string_view op, const Shape& s, const Pool2dParams& p) {
  if (s.size() == 3)
    KILN_CHECK(
        p.kernel_h == 1 && p.stride_h == 1 && p.pad_h == 0,
        "{}: a 1-D pooling takes only the *_w parameters (kernel_h {}, stride_h {}, pad_h {} "
        "must be 1, 1, 0)",
        op, p.kernel_h, p.stride_h, p.pad_h);
}

}  // namespace

Shape pool2d_output_shape(std::string_view op, const Array& x, const Pool2dParams& p) {
  const Shape& xs = x.shape();
  const bool one_d = xs.size() == 3;
  const Shape kernel = one_d ? Shape{p.kernel_w} : Shape{p.kernel_h, p.kernel_w};
  KILN_CHECK_SHAPE(xs.size() == 4 || xs.size() == 3,
                   "{}: input {} must be 4-D (B, C, H, W) or 3-D (B, C, L) (kernel {})", op, xs,
                   kernel);
  KILN_CHECK_TYPE(is_floating(x.dtype()), "{}: dtype {} is not supported (float32 or float64)", op,
                  x.dtype());
  check_layout(op, xs, p);
  const int64_t k[2] = {p.kernel_h, p.kernel_w}, s[2] = {p.stride_h, p.stride_w},
                pad[2] = {p.pad_h, p.pad_w};
  Shape out = {xs[0], xs[1]};
  for (int d = one_d ? 1 : 0; d < 2; ++d) {
    const size_t dim = one_d ? 2 : static_cast<size_t>(2 + d);
    KILN_CHECK_SHAPE(k[d] >= 1 && s[d] >= 1 && pad[d] >= 0,
                     "{}: invalid kernel {}, stride {} or padding {} for input {} (kernel and "
                     "stride must be >= 1, padding >= 0)",
                     op, k[d], s[d], pad[d], xs);
    KILN_CHECK_SHAPE(pad[d] <= k[d] / 2,
                     "{}: padding {} is more than half the kernel {} for input {} (padding must be "
                     "<= kernel / 2)",
                     op, pad[d], kernel, xs);
    const int64_t padded = xs[dim] + 2 * pad[d];
    KILN_CHECK_SHAPE(
        padded >= k[d],
        "{}: input {} is too small for kernel {}: padded size {} < kernel {} on dim {} "
        "(input + 2·padding must be >= kernel)",
        op, xs, kernel, padded, k[d], dim);
    out.push_back((padded - k[d]) / s[d] + 1);
  }
  return out;
}

Shape adaptive_pool2d_output_shape(std::string_view op, const Array& x, int64_t out_h,
                                   int64_t out_w) {
  const Shape out_size = {out_h, out_w};
  KILN_CHECK_SHAPE(x.dim() == 4, "{}: input {} must be 4-D (B, C, H, W) (output_size {})", op,
                   x.shape(), out_size);
  KILN_CHECK_TYPE(is_floating(x.dtype()), "{}: dtype {} is not supported (float32 or float64)", op,
                  x.dtype());
  KILN_CHECK_SHAPE(out_h >= 1 && out_w >= 1 && x.size(2) >= 1 && x.size(3) >= 1,
                   "{}: output_size {} is invalid for input {} (output and input sizes must be "
                   ">= 1)",
                   op, out_size, x.shape());
  return {x.size(0), x.size(1), out_h, out_w};
}

MaxPoolResult max_pool2d_forward(const Array& x_in, const Pool2dParams& p) {
  Shape ys = pool2d_output_shape("max_pool2d", x_in, p);
  Array x = x_in.contiguous();
  const PoolGeom g = make_geom(x.shape(), ys, p);
  MaxPoolResult r{Array(ys, x.dtype()), Array(ys, kInt64)};
  KILN_DISPATCH_FLOATING(x.dtype(), "max_pool2d", [&] {
    max_forward<scalar_t>(x.data<scalar_t>(), g, r.values.data<scalar_t>(),
                          r.indices.data<int64_t>());
  });
  return r;
}

Array max_pool2d_backward(const Array& dy_in, const Array& indices_in, const Shape& x_shape) {
  KILN_CHECK_SHAPE(dy_in.shape() == indices_in.shape(),
                   "max_pool2d_backward: grad {} and indices {} differ (same shape required)",
                   dy_in.shape(), indices_in.shape());
  Array dy = dy_in.contiguous(), indices = indices_in.contiguous();
  const PoolGeom g = make_geom(x_shape, dy.shape(), Pool2dParams{});
  Array dx(x_shape, dy.dtype());
  KILN_DISPATCH_FLOATING(dy.dtype(), "max_pool2d_backward", [&] {
    max_backward<scalar_t>(dy.data<scalar_t>(), indices.data<int64_t>(), g, dx.data<scalar_t>());
  });
  return dx;
}

Array avg_pool2d_forward(const Array& x_in, const Pool2dParams& p) {
  Shape ys = pool2d_output_shape("avg_pool2d", x_in, p);
  Array x = x_in.contiguous();
  const PoolGeom g = make_geom(x.shape(), ys, p);
  Array y(ys, x.dtype());
  KILN_DISPATCH_FLOATING(x.dtype(), "avg_pool2d", [&] {
    avg_forward<scalar_t>(x.data<scalar_t>(), g, y.data<scalar_t>(), avg_window, g.kh * g.kw);
  });
  return y;
}

Array avg_pool2d_backward(const Array& dy_in, const Shape& x_shape, const Pool2dParams& p) {
  Array dy = dy_in.contiguous();
  const PoolGeom g = make_geom(x_shape, dy.shape(), p);
  Array dx(x_shape, dy.dtype());
  KILN_DISPATCH_FLOATING(dy.dtype(), "avg_pool2d_backward", [&] {
    avg_backward<scalar_t>(dy.data<scalar_t>(), g, dx.data<scalar_t>(), avg_window, g.kh * g.kw);
  });
  return dx;
}

Array adaptive_avg_pool2d_forward(const Array& x_in, int64_t out_h, int64_t out_w) {
  Shape ys = adaptive_pool2d_output_shape("adaptive_avg_pool2d", x_in, out_h, out_w);
  Array x = x_in.contiguous();
  const PoolGeom g = make_geom(x.shape(), ys, Pool2dParams{});
  const int64_t work = (g.H / out_h + 2) * (g.W / out_w + 2);
  Array y(ys, x.dtype());
  KILN_DISPATCH_FLOATING(x.dtype(), "adaptive_avg_pool2d", [&] {
    avg_forward<scalar_t>(x.data<scalar_t>(), g, y.data<scalar_t>(), adaptive_window, work);
  });
  return y;
}

Array adaptive_avg_pool2d_backward(const Array& dy_in, const Shape& x_shape) {
  Array dy = dy_in.contiguous();
  const PoolGeom g = make_geom(x_shape, dy.shape(), Pool2dParams{});
  const int64_t work = (g.H / g.Ho + 2) * (g.W / g.Wo + 2);
  Array dx(x_shape, dy.dtype());
  KILN_DISPATCH_FLOATING(dy.dtype(), "adaptive_avg_pool2d_backward", [&] {
    avg_backward<scalar_t>(dy.data<scalar_t>(), g, dx.data<scalar_t>(), adaptive_window, work);
  });
  return dx;
}

// ---- reference twins: every tap of every output visited with explicit bounds checks ----

namespace {

Array contiguous_f64(const Array& a) {
  return a.to(kFloat64).contiguous();
}

// Calls f(plane, oh, ow, ih, iw) for each in-range tap of a fixed window, row-major within it.
template <typename F>
void for_each_tap(const PoolGeom& g, F&& f) {
  for (int64_t r = 0; r < g.planes; ++r)
    for (int64_t oh = 0; oh < g.Ho; ++oh)
      for (int64_t ow = 0; ow < g.Wo; ++ow)
        for (int64_t i = 0; i < g.kh; ++i)
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t ih = oh * g.sh - g.ph + i, iw = ow * g.sw - g.pw + j;
            if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) f(r, oh, ow, ih, iw);
          }
}

}  // namespace

MaxPoolResult max_pool2d_reference(const Array& x_in, const Pool2dParams& p) {
  Shape ys = pool2d_output_shape("max_pool2d_reference", x_in, p);
  Array x = contiguous_f64(x_in);
  const PoolGeom g = make_geom(x.shape(), ys, p);
  Array y(ys, kFloat64), idx(ys, kInt64);
  y.fill_(-std::numeric_limits<double>::infinity());
  idx.fill_(-1);
  double* yp = y.data<double>();
  int64_t* ip = idx.data<int64_t>();
  for_each_tap(g, [&](int64_t r, int64_t oh, int64_t ow, int64_t ih, int64_t iw) {
    const int64_t o = r * g.P() + oh * g.Wo + ow;
    const double v = x.data<double>()[r * g.HW() + ih * g.W + iw];
    if (ip[o] < 0 || v > yp[o] || std::isnan(v)) {  // the last NaN wins, as in PyTorch
      yp[o] = v;
      ip[o] = ih * g.W + iw;
    }
  });
  return {y.to(x_in.dtype()), idx};
}

Array max_pool2d_backward_reference(const Array& dy_in, const Array& indices_in,
                                    const Shape& x_shape) {
  Array dy = contiguous_f64(dy_in), idx = indices_in.contiguous();
  const PoolGeom g = make_geom(x_shape, dy.shape(), Pool2dParams{});
  Array dx(x_shape, kFloat64);
  dx.zero_();
  for (int64_t r = 0; r < g.planes; ++r)
    for (int64_t o = 0; o < g.P(); ++o)
      dx.data<double>()[r * g.HW() + idx.data<int64_t>()[r * g.P() + o]] +=
          dy.data<double>()[r * g.P() + o];
  return dx.to(dy_in.dtype());
}

Array avg_pool2d_reference(const Array& x_in, const Pool2dParams& p) {
  Shape ys = pool2d_output_shape("avg_pool2d_reference", x_in, p);
  Array x = contiguous_f64(x_in);
  const PoolGeom g = make_geom(x.shape(), ys, p);
  Array y(ys, kFloat64);
  y.zero_();
  // count_include_pad with ceil_mode off: every window lies inside the padded input.
  const double divisor = static_cast<double>(g.kh * g.kw);
  for_each_tap(g, [&](int64_t r, int64_t oh, int64_t ow, int64_t ih, int64_t iw) {
    y.data<double>()[r * g.P() + oh * g.Wo + ow] +=
        x.data<double>()[r * g.HW() + ih * g.W + iw] / divisor;
  });
  return y.to(x_in.dtype());
}

Array avg_pool2d_backward_reference(const Array& dy_in, const Shape& x_shape,
                                    const Pool2dParams& p) {
  Array dy = contiguous_f64(dy_in);
  const PoolGeom g = make_geom(x_shape, dy.shape(), p);
  Array dx(x_shape, kFloat64);
  dx.zero_();
  const double divisor = static_cast<double>(g.kh * g.kw);
  for_each_tap(g, [&](int64_t r, int64_t oh, int64_t ow, int64_t ih, int64_t iw) {
    dx.data<double>()[r * g.HW() + ih * g.W + iw] +=
        dy.data<double>()[r * g.P() + oh * g.Wo + ow] / divisor;
  });
  return dx.to(dy_in.dtype());
}

Array adaptive_avg_pool2d_reference(const Array& x_in, int64_t out_h, int64_t out_w) {
  Shape ys = adaptive_pool2d_output_shape("adaptive_avg_pool2d_reference", x_in, out_h, out_w);
  Array x = contiguous_f64(x_in);
  const int64_t planes = ys[0] * ys[1], H = x.size(2), W = x.size(3);
  Array y(ys, kFloat64);
  for (int64_t r = 0; r < planes; ++r)
    for (int64_t i = 0; i < out_h; ++i)
      for (int64_t j = 0; j < out_w; ++j) {
        // Bin edges straight from the definition: floor(i·H/out) and ceil((i+1)·H/out).
        const auto h0 = static_cast<int64_t>(std::floor(double(i * H) / double(out_h)));
        const auto h1 = static_cast<int64_t>(std::ceil(double((i + 1) * H) / double(out_h)));
        const auto w0 = static_cast<int64_t>(std::floor(double(j * W) / double(out_w)));
        const auto w1 = static_cast<int64_t>(std::ceil(double((j + 1) * W) / double(out_w)));
        double s = 0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) s += x.data<double>()[(r * H + ih) * W + iw];
        y.data<double>()[(r * out_h + i) * out_w + j] = s / double((h1 - h0) * (w1 - w0));
      }
  return y.to(x_in.dtype());
}

Array adaptive_avg_pool2d_backward_reference(const Array& dy_in, const Shape& x_shape) {
  Array dy = contiguous_f64(dy_in);
  const int64_t planes = x_shape[0] * x_shape[1], H = x_shape[2], W = x_shape[3];
  const int64_t out_h = dy.size(2), out_w = dy.size(3);
  Array dx(x_shape, kFloat64);
  dx.zero_();
  for (int64_t r = 0; r < planes; ++r)
    for (int64_t i = 0; i < out_h; ++i)
      for (int64_t j = 0; j < out_w; ++j) {
        const auto h0 = static_cast<int64_t>(std::floor(double(i * H) / double(out_h)));
        const auto h1 = static_cast<int64_t>(std::ceil(double((i + 1) * H) / double(out_h)));
        const auto w0 = static_cast<int64_t>(std::floor(double(j * W) / double(out_w)));
        const auto w1 = static_cast<int64_t>(std::ceil(double((j + 1) * W) / double(out_w)));
        const double share =
            dy.data<double>()[(r * out_h + i) * out_w + j] / double((h1 - h0) * (w1 - w0));
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) dx.data<double>()[(r * H + ih) * W + iw] += share;
      }
  return dx.to(dy_in.dtype());
}

}  // namespace kiln::kernels
