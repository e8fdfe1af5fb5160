// Convolution kernels. Legend as in conv.h: B batch, C / K input / output channels, G groups,
// Cg = C / G, Kg = K / G, H × W input, kh × kw kernel, Ho × Wo output, P = Ho · Wo output pixels,
// R = Cg · kh · kw the GEMM depth of one group.
//
// General path (im2col + GEMM) over chunks of nb images (columns [n·P, (n+1)·P) belong to image n):
//   cols (G·R, nb·P) = im2col(x[chunk])
//   forward:          y_g (Kg, nb·P) = w_g (Kg, R) · cols_g (R, nb·P)        one GEMM per group
//   backward input:   dcols_g (R, nb·P) = w_gᵀ · dy_g,  dx = col2im(dcols)
//   backward weight:  dw_g (Kg, R) += dy_g · cols_gᵀ
// where y_g / dy_g are the chunk's outputs laid out (K, nb·P) (scattered / gathered from (nb, K,
// P); with nb = 1 the GEMM reads and writes the batch tensors directly). Chunks keep each GEMM
// large enough to amortise the thread hand-off, and the column buffer cache-sized
// (images_per_chunk). im2col / col2im / gather / scatter run under parallel_for; the GEMMs run
// between them, never inside a parallel body, so OpenBLAS threads are never nested in TBB ones. A
// pointwise convolution (1 × 1, stride 1, no padding) with one-image chunks skips im2col: x[n]
// already is (C, H·W).
//
// Depthwise path (Cg == 1 and G > 1, any channel multiplier Kg): direct loops parallel over (n, k),
// no GEMM.
#include "kiln/tensor/conv.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kiln/tensor/error.h"
#include "kiln/tensor/kernels/conv_geom.h"
#include "kiln/tensor/linalg.h"
#include "kiln/tensor/parallel.h"
#include "kiln/tensor/reduce.h"

namespace kiln::kernels {

using namespace conv_detail;

namespace {

// A view of `base`'s storage starting `offset` elements in: how GEMM operands point into a buffer.
Array at(const Array& base, int64_t offset) {
  return Array(base.storage(), {base.numel() - offset}, {1}, base.offset() + offset, base.dtype());
}

// One im2col row (c, i, j) of one image: out[oh·Wo + ow] = x[c, oh·sh − ph + i·dh, ow·sw − pw +
// j·dw], zero where that falls in the padding.   x: (C, H, W) of the image;  out: P values
template <typename T>
void im2col_row(const T* x, const Geom& g, int64_t r, T* out) {
  const int64_t c = r / (g.kh * g.kw), i = (r / g.kw) % g.kh, j = r % g.kw;
  const T* xc = x + c * g.H * g.W;
  const int64_t off_w = j * g.dw - g.pw;
  const Range ow = valid_range(off_w, g.sw, g.W, g.Wo);
  for (int64_t oh = 0; oh < g.Ho; ++oh) {
    T* o = out + oh * g.Wo;
    const int64_t ih = oh * g.sh - g.ph + i * g.dh;
    if (ih < 0 || ih >= g.H) {
      std::fill(o, o + g.Wo, T(0));
      continue;
    }
    std::fill(o, o + ow.lo, T(0));
    std::fill(o + ow.hi, o + g.Wo, T(0));
    const T* xr = xc + ih * g.W + off_w;
    if (g.sw == 1) {
      std::copy(xr + ow.lo, xr + ow.hi, o + ow.lo);
    } else {
      for (int64_t q = ow.lo; q < ow.hi; ++q) o[q] = xr[q * g.sw];
    }
  }
}

// cols (C·kh·kw, nb·P) ← x (nb, C, H, W): image n fills columns [n·P, (n+1)·P) of every row.
template <typename T>
void im2col(const T* x, int64_t nb, const Geom& g, T* cols) {
  const int64_t P = g.P(), rows = g.C * g.kh * g.kw, ld = nb * P;
  parallel_for(0, nb * rows, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(P, 1)),
               [&](int64_t t0, int64_t t1) {
                 for (int64_t t = t0; t < t1; ++t) {
                   const int64_t n = t / rows, r = t % rows;
                   im2col_row(x + n * g.C * g.H * g.W, g, r, cols + r * ld + n * P);
                 }
               });
}

// dx (nb, C, H, W) ← col2im(dcols (C·kh·kw, nb·P)): each tap's gradient is added back to the input
// element it read. Parallel over (image, channel): channel c of image n only receives rows (c, ·,
// ·) in columns [n·P, (n+1)·P).
template <typename T>
void col2im(const T* dcols, int64_t nb, const Geom& g, T* dx) {
  const int64_t P = g.P(), HW = g.H * g.W, ld = nb * P;
  parallel_for(0, nb * g.C,
               std::max<int64_t>(1, kGrainSize / std::max<int64_t>(P * g.kh * g.kw, 1)),
               [&](int64_t t0, int64_t t1) {
                 for (int64_t t = t0; t < t1; ++t) {
                   const int64_t n = t / g.C, c = t % g.C;
                   T* dxc = dx + t * HW;
                   std::fill(dxc, dxc + HW, T(0));
                   for (int64_t i = 0; i < g.kh; ++i)
                     for (int64_t j = 0; j < g.kw; ++j) {
                       const T* in = dcols + ((c * g.kh + i) * g.kw + j) * ld + n * P;
                       const int64_t off_w = j * g.dw - g.pw;
                       const Range ow = valid_range(off_w, g.sw, g.W, g.Wo);
                       for (int64_t oh = 0; oh < g.Ho; ++oh) {
                         const int64_t ih = oh * g.sh - g.ph + i * g.dh;
                         if (ih < 0 || ih >= g.H) continue;
                         T* xr = dxc + ih * g.W + off_w;
                         const T* ir = in + oh * g.Wo;
                         if (g.sw == 1) {
                           for (int64_t q = ow.lo; q < ow.hi; ++q) xr[q] += ir[q];
                         } else {
                           for (int64_t q = ow.lo; q < ow.hi; ++q) xr[q * g.sw] += ir[q];
                         }
                       }
                     }
                 }
               });
}

// Between the batch layout (nb, K, P) and the GEMM layout (K, nb·P). To GEMM: dst[k, n·P + p] =
// src[n, k, p]; from GEMM: dst[n, k, p] = src[k, n·P + p] + bias[k] (bias may be null).
template <typename T>
void batch_to_gemm(const T* src, int64_t nb, int64_t K, int64_t P, T* dst) {
  parallel_for(0, nb * K, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(P, 1)),
               [&](int64_t t0, int64_t t1) {
                 for (int64_t t = t0; t < t1; ++t) {
                   const int64_t n = t / K, k = t % K;
                   std::copy(src + t * P, src + (t + 1) * P, dst + k * nb * P + n * P);
                 }
               });
}
template <typename T>
void gemm_to_batch(const T* src, const T* bias, int64_t nb, int64_t K, int64_t P, T* dst) {
  parallel_for(0, nb * K, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(P, 1)),
               [&](int64_t t0, int64_t t1) {
                 for (int64_t t = t0; t < t1; ++t) {
                   const int64_t n = t / K, k = t % K;
                   const T* s = src + k * nb * P + n * P;
                   T* d = dst + t * P;
                   const T bk = bias ? bias[k] : T(0);
                   for (int64_t p = 0; p < P; ++p) d[p] = s[p] + bk;
                 }
               });
}

// y[k, :] = bias[k] for one image's (K, P) output.
template <typename T>
void fill_bias(const T* bias, int64_t K, int64_t P, T* y) {
  parallel_for(0, K, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(P, 1)),
               [&](int64_t k0, int64_t k1) {
                 for (int64_t k = k0; k < k1; ++k) std::fill(y + k * P, y + (k + 1) * P, bias[k]);
               });
}

// ---- general path: im2col + GEMM over chunks of images ----

// Images per chunk: enough GEMM columns (nb·P) that small images still make one large GEMM (each
// chunk costs a GEMM call and up to three parallel_for hand-offs: im2col / col2im, gather, scatter),
// yet no more: larger chunks cost a gather / scatter copy and a column buffer beyond L2, which
// measured ~20% slower per image on W2 (P = 1024, one image per chunk) at 1 thread. So at least
// kChunkColumns columns, and for thin GEMMs (few multiply-adds per column, Kg·R) as many as make
// kChunkWork multiply-adds: LeNet's first convolution (Kg·R = 6·25) then takes 18 images of 28 × 28
// per chunk instead of 2, and its W4 training step measured 5.6 → 4.2 ms (medians of 5 interleaved
// runs, 2 threads, Zen 5); the second (Kg·R = 16·150) and W2 (64·576) keep kChunkColumns. A 7 × 7
// map gets 21 images, a 128-long 1-D sequence 8; never more than kChunkBytes of columns.
constexpr int64_t kChunkColumns = 1024;
constexpr int64_t kChunkWork = 2 << 20;
constexpr int64_t kChunkBytes = 16 << 20;

int64_t images_per_chunk(const Geom& g, size_t itemsize) {
  const int64_t P = std::max<int64_t>(g.P(), 1);
  const int64_t col_bytes = g.C * g.kh * g.kw * P * static_cast<int64_t>(itemsize);
  const int64_t columns = std::max(kChunkColumns, kChunkWork / std::max<int64_t>(g.Kg * g.R(), 1));
  const int64_t by_columns = (columns + P - 1) / P;
  const int64_t by_bytes = std::max<int64_t>(1, kChunkBytes / std::max<int64_t>(col_bytes, 1));
  return std::clamp<int64_t>(std::min(by_columns, by_bytes), 1, std::max<int64_t>(g.B, 1));
}

// y[n] = w · im2col(x[n]) + b for each chunk of images; one GEMM per (chunk, group), written
// straight into y when the chunk is one image, else into a (K, nb·P) buffer scattered back with the
// bias.
template <typename T>
void forward_gemm(const Array& x, const Array& w, const Array& b, const Geom& g, Array& y) {
  const int64_t P = g.P(), R = g.R(), XN = g.C * g.H * g.W, YN = g.K * P;
  const int64_t chunk = images_per_chunk(g, x.itemsize());
  const bool direct_x = g.pointwise() && chunk == 1;  // x[n] already is its (C, P) column matrix
  Array cols = direct_x ? Array() : Array({g.G * R, chunk * P}, x.dtype());
  Array ybuf = chunk == 1 ? Array() : Array({g.K, chunk * P}, x.dtype());
  const T* bias = b.defined() ? b.data<T>() : nullptr;
  for (int64_t n0 = 0; n0 < g.B; n0 += chunk) {
    const int64_t nb = std::min(chunk, g.B - n0), ld = nb * P;
    Array xb = at(x, n0 * XN), yb = at(y, n0 * YN);
    if (!direct_x) im2col(xb.data<T>(), nb, g, cols.data<T>());
    const Array& src = direct_x ? xb : cols;
    Array& dst = chunk == 1 ? yb : ybuf;
    const bool bias_first = chunk == 1 && bias;  // then the GEMM accumulates onto the bias
    if (bias_first) fill_bias(bias, g.K, P, yb.data<T>());
    for (int64_t gi = 0; gi < g.G; ++gi) {
      Array yg = at(dst, gi * g.Kg * ld);
      gemm(false, false, g.Kg, ld, R, 1.0, at(w, gi * g.Kg * R), R, at(src, gi * R * ld), ld,
           bias_first ? 1.0 : 0.0, yg, ld);
    }
    if (chunk > 1) gemm_to_batch<T>(ybuf.data<T>(), bias, nb, g.K, P, yb.data<T>());
  }
}

// dx[n] = col2im(wᵀ · dy[n]) per chunk: dy gathered to (K, nb·P) when the chunk has several images.
template <typename T>
void backward_input_gemm(const Array& dy, const Array& w, const Geom& g, Array& dx) {
  const int64_t P = g.P(), R = g.R(), XN = g.C * g.H * g.W, YN = g.K * P;
  const int64_t chunk = images_per_chunk(g, dy.itemsize());
  const bool direct_x = g.pointwise() && chunk == 1;  // the GEMM writes dx[n] (C, P) itself
  Array dcols = direct_x ? Array() : Array({g.G * R, chunk * P}, dy.dtype());
  Array dybuf = chunk == 1 ? Array() : Array({g.K, chunk * P}, dy.dtype());
  for (int64_t n0 = 0; n0 < g.B; n0 += chunk) {
    const int64_t nb = std::min(chunk, g.B - n0), ld = nb * P;
    Array dyb = at(dy, n0 * YN), dxb = at(dx, n0 * XN);
    if (chunk > 1) batch_to_gemm(dyb.data<T>(), nb, g.K, P, dybuf.data<T>());
    const Array& src = chunk == 1 ? dyb : dybuf;
    Array& dst = direct_x ? dxb : dcols;
    for (int64_t gi = 0; gi < g.G; ++gi) {
      Array dg = at(dst, gi * R * ld);
      gemm(true, false, R, ld, g.Kg, 1.0, at(w, gi * g.Kg * R), R, at(src, gi * g.Kg * ld), ld, 0.0,
           dg, ld);
    }
    if (!direct_x) col2im(dcols.data<T>(), nb, g, dxb.data<T>());
  }
}

// dw += dy[n] · im2col(x[n])ᵀ per chunk (the GEMM sums over the chunk's nb·P columns).
template <typename T>
void backward_weight_gemm(const Array& dy, const Array& x, const Geom& g, Array& dw) {
  const int64_t P = g.P(), R = g.R(), XN = g.C * g.H * g.W, YN = g.K * P;
  const int64_t chunk = images_per_chunk(g, x.itemsize());
  const bool direct_x = g.pointwise() && chunk == 1;
  Array cols = direct_x ? Array() : Array({g.G * R, chunk * P}, x.dtype());
  Array dybuf = chunk == 1 ? Array() : Array({g.K, chunk * P}, dy.dtype());
  if (g.B == 0) dw.zero_();
  for (int64_t n0 = 0; n0 < g.B; n0 += chunk) {
    const int64_t nb = std::min(chunk, g.B - n0), ld = nb * P;
    Array xb = at(x, n0 * XN), dyb = at(dy, n0 * YN);
    if (!direct_x) im2col(xb.data<T>(), nb, g, cols.data<T>());
    if (chunk > 1) batch_to_gemm(dyb.data<T>(), nb, g.K, P, dybuf.data<T>());
    const Array& src = direct_x ? xb : cols;
    const Array& dsrc = chunk == 1 ? dyb : dybuf;
    for (int64_t gi = 0; gi < g.G; ++gi) {
      Array dwg = at(dw, gi * g.Kg * R);
      gemm(false, true, g.Kg, R, ld, 1.0, at(dsrc, gi * g.Kg * ld), ld, at(src, gi * R * ld), ld,
           n0 == 0 ? 0.0 : 1.0, dwg, R);
    }
  }
}

// ---- depthwise path (Cg == 1): output channel k reads input channel k / Kg ----

template <typename T>
void forward_depthwise(const T* x, const T* w, const T* bias, const Geom& g, T* y) {
  const int64_t P = g.P(), HW = g.H * g.W, taps = g.kh * g.kw;
  parallel_for(0, g.B * g.K, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(P * taps, 1)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   const int64_t n = r / g.K, k = r % g.K;
                   const T* xc = x + (n * g.C + k / g.Kg) * HW;
                   const T* wk = w + k * taps;
                   T* yo = y + r * P;
                   std::fill(yo, yo + P, bias ? bias[k] : T(0));
                   for (int64_t oh = 0; oh < g.Ho; ++oh) {
                     T* yr = yo + oh * g.Wo;
                     for (int64_t i = 0; i < g.kh; ++i) {
                       const int64_t ih = oh * g.sh - g.ph + i * g.dh;
                       if (ih < 0 || ih >= g.H) continue;
                       for (int64_t j = 0; j < g.kw; ++j) {
                         const T wv = wk[i * g.kw + j];
                         const int64_t off_w = j * g.dw - g.pw;
                         const Range ow = valid_range(off_w, g.sw, g.W, g.Wo);
                         const T* xr = xc + ih * g.W + off_w;
                         if (g.sw == 1) {
                           for (int64_t q = ow.lo; q < ow.hi; ++q) yr[q] += wv * xr[q];
                         } else {
                           for (int64_t q = ow.lo; q < ow.hi; ++q) yr[q] += wv * xr[q * g.sw];
                         }
                       }
                     }
                   }
                 }
               });
}

// dx[n, c] = Σ over the Kg output channels k of c: convᵀ(dy[n, k], w[k]). Parallel over (n, c).
template <typename T>
void backward_input_depthwise(const T* dy, const T* w, const Geom& g, T* dx) {
  const int64_t P = g.P(), HW = g.H * g.W, taps = g.kh * g.kw;
  parallel_for(0, g.B * g.C,
               std::max<int64_t>(1, kGrainSize / std::max<int64_t>(g.Kg * P * taps, 1)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   const int64_t n = r / g.C, c = r % g.C;
                   T* dxc = dx + r * HW;
                   std::fill(dxc, dxc + HW, T(0));
                   for (int64_t k = c * g.Kg; k < (c + 1) * g.Kg; ++k) {
                     const T* dyo = dy + (n * g.K + k) * P;
                     const T* wk = w + k * taps;
                     for (int64_t oh = 0; oh < g.Ho; ++oh) {
                       const T* dyr = dyo + oh * g.Wo;
                       for (int64_t i = 0; i < g.kh; ++i) {
                         const int64_t ih = oh * g.sh - g.ph + i * g.dh;
                         if (ih < 0 || ih >= g.H) continue;
                         for (int64_t j = 0; j < g.kw; ++j) {
                           const T wv = wk[i * g.kw + j];
                           const int64_t off_w = j * g.dw - g.pw;
                           const Range ow = valid_range(off_w, g.sw, g.W, g.Wo);
                           T* xr = dxc + ih * g.W + off_w;
                           if (g.sw == 1) {
                             for (int64_t q = ow.lo; q < ow.hi; ++q) xr[q] += wv * dyr[q];
                           } else {
                             for (int64_t q = ow.lo; q < ow.hi; ++q) xr[q * g.sw] += wv * dyr[q];
                           }
                         }
                       }
                     }
                   }
                 }
               });
}

// Σ a[q]·b[q] with 8 independent partial sums, so the loop vectorises without -ffast-math.
template <typename T>
T dot(const T* a, const T* b, int64_t n) {
  T lanes[8] = {};
  int64_t q = 0;
  for (; q + 8 <= n; q += 8)
    for (int l = 0; l < 8; ++l) lanes[l] += a[q + l] * b[q + l];
  T s = 0;
  for (; q < n; ++q) s += a[q] * b[q];
  for (int l = 0; l < 8; ++l) s += lanes[l];
  return s;
}
// Σ a[q]·b[q·stride].
template <typename T>
T strided_dot(const T* a, const T* b, int64_t stride, int64_t n) {
  T s = 0;
  for (int64_t q = 0; q < n; ++q) s += a[q] * b[q * stride];
  return s;
}

// dw[k, tap] = Σ_n partial[n, k, tap]: partials per (n, k) in parallel (float64), then summed over
// n in a fixed order, so the result does not depend on the thread count.
template <typename T>
void backward_weight_depthwise(const T* dy, const T* x, const Geom& g, T* dw) {
  const int64_t P = g.P(), HW = g.H * g.W, taps = g.kh * g.kw;
  std::vector<double> partial(static_cast<size_t>(g.B * g.K * taps), 0.0);
  parallel_for(0, g.B * g.K, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(P * taps, 1)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   const int64_t n = r / g.K, k = r % g.K;
                   const T* xc = x + (n * g.C + k / g.Kg) * HW;
                   const T* dyo = dy + r * P;
                   double* acc = partial.data() + r * taps;
                   for (int64_t i = 0; i < g.kh; ++i)
                     for (int64_t j = 0; j < g.kw; ++j) {
                       const int64_t off_w = j * g.dw - g.pw;
                       const Range ow = valid_range(off_w, g.sw, g.W, g.Wo);
                       double sum = 0;
                       for (int64_t oh = 0; oh < g.Ho; ++oh) {
                         const int64_t ih = oh * g.sh - g.ph + i * g.dh;
                         if (ih < 0 || ih >= g.H) continue;
                         const T* xr = xc + ih * g.W + off_w;
                         const T* dyr = dyo + oh * g.Wo;
                         // One output row (≤ Wo terms) summed in T, then widened.
                         sum += g.sw == 1 ? dot(dyr + ow.lo, xr + ow.lo, ow.hi - ow.lo)
                                          : strided_dot(dyr + ow.lo, xr + ow.lo * g.sw, g.sw,
                                                        ow.hi - ow.lo);
                       }
                       acc[i * g.kw + j] = sum;
                     }
                 }
               });
  for (int64_t k = 0; k < g.K; ++k)
    for (int64_t t = 0; t < taps; ++t) {
      double s = 0;
      for (int64_t n = 0; n < g.B; ++n) s += partial[(n * g.K + k) * taps + t];
      dw[k * taps + t] = static_cast<T>(s);
    }
}

void check_layout(std::string_view op, const Shape& s, const Conv2dParams& p) {
  if (s.size() == 3)
    KILN_CHECK(p.stride_h == 1 && p.pad_h == 0 && p.dilation_h == 1,
               "{}: a 1-D convolution takes only the *_w parameters (stride_h {}, pad_h {}, "
               "dilation_h {} must be 1, 0, 1)",
               op, p.stride_h, p.pad_h, p.dilation_h);
}

}  // namespace

Shape conv2d_output_shape(std::string_view op, const Array& x, const Array& w, const Array* bias,
                          const Conv2dParams& p) {
  const Shape& xs = x.shape();
  const Shape& ws = w.shape();
  KILN_CHECK_SHAPE(xs.size() == 4 || xs.size() == 3,
                   "{}: input {} must be 4-D (B, C_in, H, W) or 3-D (B, C_in, L) (weight {})", op,
                   xs, ws);
  KILN_CHECK_SHAPE(ws.size() == xs.size(),
                   "{}: weight {} must have as many dims as input {} (weight is (C_out, "
                   "C_in/groups, kernel...))",
                   op, ws, xs);
  KILN_CHECK_TYPE(is_floating(x.dtype()) && x.dtype() == w.dtype(),
                  "{}: dtypes differ: input {} is {} but weight {} is {} (both float32 or both "
                  "float64)",
                  op, xs, x.dtype(), ws, w.dtype());
  check_layout(op, xs, p);
  KILN_CHECK_SHAPE(p.groups >= 1, "{}: groups must be >= 1, got {} (input {}, weight {})", op,
                   p.groups, xs, ws);
  KILN_CHECK_SHAPE(xs[1] == ws[1] * p.groups,
                   "{}: input channels differ: input {} has {} channels but weight {} expects {} "
                   "(input.size(1) must equal weight.size(1) * groups)",
                   op, xs, xs[1], ws, ws[1] * p.groups);
  KILN_CHECK_SHAPE(ws[0] % p.groups == 0,
                   "{}: weight {} has {} output channels, not divisible by groups {} "
                   "(weight.size(0) must be a multiple of groups)",
                   op, ws, ws[0], p.groups);
  const bool one_d = xs.size() == 3;
  const int64_t stride[2] = {p.stride_h, p.stride_w}, pad[2] = {p.pad_h, p.pad_w},
                dil[2] = {p.dilation_h, p.dilation_w};
  Shape out = {xs[0], ws[0]};
  for (int d = one_d ? 1 : 0; d < 2; ++d) {
    const size_t dim = one_d ? 2 : static_cast<size_t>(2 + d);
    KILN_CHECK_SHAPE(stride[d] >= 1 && dil[d] >= 1 && pad[d] >= 0,
                     "{}: invalid stride {}, padding {} or dilation {} for input {} and weight {} "
                     "(stride and dilation must be >= 1, padding >= 0)",
                     op, stride[d], pad[d], dil[d], xs, ws);
    const int64_t span = dil[d] * (ws[dim] - 1) + 1, padded = xs[dim] + 2 * pad[d];
    KILN_CHECK_SHAPE(ws[dim] >= 1 && padded >= span,
                     "{}: input {} is too small for weight {}: padded size {} < dilated kernel "
                     "size {} on dim {} (input + 2·padding must be >= dilation·(kernel − 1) + 1)",
                     op, xs, ws, padded, span, dim);
    out.push_back((padded - span) / stride[d] + 1);
  }
  if (bias && bias->defined()) {
    KILN_CHECK_SHAPE(bias->dim() == 1 && bias->size(0) == ws[0],
                     "{}: bias {} does not match weight {} (bias must be (C_out) = ({}))", op,
                     bias->shape(), ws, ws[0]);
    KILN_CHECK_TYPE(bias->dtype() == x.dtype(), "{}: bias dtype {} differs from input dtype {}", op,
                    bias->dtype(), x.dtype());
  }
  return out;
}

Array conv2d_forward(const Array& x_in, const Array& w_in, const Array& b_in,
                     const Conv2dParams& p) {
  Shape ys = conv2d_output_shape("conv2d", x_in, w_in, &b_in, p);
  Array x = to4d(x_in), w = to4d(w_in).contiguous();
  Array b = b_in.defined() ? b_in.contiguous() : Array();
  const Geom g = make_geom(x.shape(), w.shape(), p);
  if (channels_last_depthwise(g) && is_channels_last(x))
    return depthwise_channels_last_forward(x, w, b, g).view(ys);
  x = x.contiguous();
  Array y({g.B, g.K, g.Ho, g.Wo}, x.dtype());
  KILN_DISPATCH_FLOATING(x.dtype(), "conv2d", [&] {
    if (g.depthwise())
      forward_depthwise<scalar_t>(x.data<scalar_t>(), w.data<scalar_t>(),
                                  b.defined() ? b.data<scalar_t>() : nullptr, g,
                                  y.data<scalar_t>());
    else
      forward_gemm<scalar_t>(x, w, b, g, y);
  });
  return y.view(ys);
}

Array conv2d_backward_input(const Array& dy_in, const Array& w_in, const Shape& x_shape,
                            const Conv2dParams& p) {
  check_layout("conv2d_backward_input", x_shape, p);
  Array dy = to4d(dy_in), w = to4d(w_in).contiguous();
  const Geom g = make_geom(x_shape, w.shape(), p);
  KILN_CHECK_SHAPE(dy.shape() == Shape({g.B, g.K, g.Ho, g.Wo}),
                   "conv2d_backward_input: grad {} does not match the output of input {} and "
                   "weight {}",
                   dy_in.shape(), x_shape, w_in.shape());
  if (channels_last_depthwise(g) && is_channels_last(dy))
    return depthwise_channels_last_backward_input(dy, w, g).view(x_shape);
  dy = dy.contiguous();
  Array dx(to4d(x_shape), dy.dtype());
  KILN_DISPATCH_FLOATING(dy.dtype(), "conv2d_backward_input", [&] {
    if (g.depthwise())
      backward_input_depthwise<scalar_t>(dy.data<scalar_t>(), w.data<scalar_t>(), g,
                                         dx.data<scalar_t>());
    else
      backward_input_gemm<scalar_t>(dy, w, g, dx);
  });
  return dx.view(x_shape);
}

Array conv2d_backward_weight(const Array& dy_in, const Array& x_in, const Shape& w_shape,
                             const Conv2dParams& p) {
  check_layout("conv2d_backward_weight", x_in.shape(), p);
  Array dy = to4d(dy_in), x = to4d(x_in);
  const Geom g = make_geom(x.shape(), w_shape, p);
  KILN_CHECK_SHAPE(dy.shape() == Shape({g.B, g.K, g.Ho, g.Wo}),
                   "conv2d_backward_weight: grad {} does not match the output of input {} and "
                   "weight {}",
                   dy_in.shape(), x_in.shape(), w_shape);
  if (channels_last_depthwise(g) && (is_channels_last(x) || is_channels_last(dy))) {
    // The other operand is brought to channels-last when it is not already.
    auto cl = [](const Array& a) {
      return is_channels_last(a) ? a : a.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
    };
    return depthwise_channels_last_backward_weight(cl(dy), cl(x), g).view(w_shape);
  }
  dy = dy.contiguous();
  x = x.contiguous();
  Array dw(to4d(w_shape), dy.dtype());
  KILN_DISPATCH_FLOATING(dy.dtype(), "conv2d_backward_weight", [&] {
    if (g.depthwise())
      backward_weight_depthwise<scalar_t>(dy.data<scalar_t>(), x.data<scalar_t>(), g,
                                          dw.data<scalar_t>());
    else
      backward_weight_gemm<scalar_t>(dy, x, g, dw);
  });
  return dw.view(w_shape);
}

// Per output channel, float64 sums of each image's plane, combined over images in order.
Array conv2d_backward_bias(const Array& dy_in) {
  Array dy = to4d(dy_in);
  // A channels-last gradient is a contiguous (B·H·W, K) matrix: sum its rows, without a copy.
  if (is_channels_last(dy) && !dy.is_contiguous())
    return sum(dy.permute({0, 2, 3, 1}).reshape({-1, dy.size(1)}), {0});
  dy = dy.contiguous();
  const int64_t B = dy.size(0), K = dy.size(1), P = dy.size(2) * dy.size(3);
  Array db({K}, dy.dtype());
  KILN_DISPATCH_FLOATING(dy.dtype(), "conv2d_backward_bias", [&] {
    const scalar_t* d = dy.data<scalar_t>();
    scalar_t* out = db.data<scalar_t>();
    parallel_for(0, K, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(B * P, 1)),
                 [&](int64_t k0, int64_t k1) {
                   for (int64_t k = k0; k < k1; ++k) {
                     double s = 0;
                     for (int64_t n = 0; n < B; ++n) {
                       const scalar_t* row = d + (n * K + k) * P;
                       double lanes[8] = {};
                       int64_t q = 0;
                       for (; q + 8 <= P; q += 8)
                         for (int l = 0; l < 8; ++l) lanes[l] += row[q + l];
                       for (; q < P; ++q) s += row[q];
                       for (int l = 0; l < 8; ++l) s += lanes[l];
                     }
                     out[k] = static_cast<scalar_t>(s);
                   }
                 });
  });
  return db;
}

// ---- reference twins ----

namespace {

// Calls f(n, k, oh, ow, ci, c, i, j, ih, iw) for every in-range tap of every output element, where
// ci is the input channel (g·Cg + c) and c the weight's channel index.
template <typename F>
void for_each_tap(const Geom& g, F&& f) {
  for (int64_t n = 0; n < g.B; ++n)
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t oh = 0; oh < g.Ho; ++oh)
        for (int64_t ow = 0; ow < g.Wo; ++ow)
          for (int64_t c = 0; c < g.Cg; ++c)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t ih = oh * g.sh - g.ph + i * g.dh, iw = ow * g.sw - g.pw + j * g.dw;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                f(n, k, oh, ow, (k / g.Kg) * g.Cg + c, c, i, j, ih, iw);
              }
}

Array to_f64(const Array& a) {
  return to4d(a).to(kFloat64).contiguous();
}

}  // namespace

Array conv2d_forward_reference(const Array& x_in, const Array& w_in, const Array& b_in,
                               const Conv2dParams& p) {
  Shape ys = conv2d_output_shape("conv2d_reference", x_in, w_in, &b_in, p);
  Array x = to_f64(x_in), w = to_f64(w_in);
  const Geom g = make_geom(x.shape(), w.shape(), p);
  Array y({g.B, g.K, g.Ho, g.Wo}, kFloat64);
  y.zero_();
  const double *xp = x.data<double>(), *wp = w.data<double>();
  double* yp = y.data<double>();
  for_each_tap(g, [&](int64_t n, int64_t k, int64_t oh, int64_t ow, int64_t ci, int64_t c,
                      int64_t i, int64_t j, int64_t ih, int64_t iw) {
    yp[((n * g.K + k) * g.Ho + oh) * g.Wo + ow] +=
        xp[((n * g.C + ci) * g.H + ih) * g.W + iw] * wp[((k * g.Cg + c) * g.kh + i) * g.kw + j];
  });
  if (b_in.defined()) {
    Array b = b_in.to(kFloat64).contiguous();
    for (int64_t n = 0; n < g.B; ++n)
      for (int64_t k = 0; k < g.K; ++k)
        for (int64_t q = 0; q < g.P(); ++q) yp[(n * g.K + k) * g.P() + q] += b.data<double>()[k];
  }
  return y.view(ys).to(x_in.dtype());
}

Array conv2d_backward_input_reference(const Array& dy_in, const Array& w_in, const Shape& x_shape,
                                      const Conv2dParams& p) {
  Array dy = to_f64(dy_in), w = to_f64(w_in);
  const Geom g = make_geom(x_shape, w.shape(), p);
  Array dx(to4d(x_shape), kFloat64);
  dx.zero_();
  const double *dyp = dy.data<double>(), *wp = w.data<double>();
  double* dxp = dx.data<double>();
  for_each_tap(g, [&](int64_t n, int64_t k, int64_t oh, int64_t ow, int64_t ci, int64_t c,
                      int64_t i, int64_t j, int64_t ih, int64_t iw) {
    dxp[((n * g.C + ci) * g.H + ih) * g.W + iw] +=
        dyp[((n * g.K + k) * g.Ho + oh) * g.Wo + ow] * wp[((k * g.Cg + c) * g.kh + i) * g.kw + j];
  });
  return dx.view(x_shape).to(dy_in.dtype());
}

Array conv2d_backward_weight_reference(const Array& dy_in, const Array& x_in, const Shape& w_shape,
                                       const Conv2dParams& p) {
  Array dy = to_f64(dy_in), x = to_f64(x_in);
  const Geom g = make_geom(x.shape(), w_shape, p);
  Array dw(to4d(w_shape), kFloat64);
  dw.zero_();
  const double *dyp = dy.data<double>(), *xp = x.data<double>();
  double* dwp = dw.data<double>();
  for_each_tap(g, [&](int64_t n, int64_t k, int64_t oh, int64_t ow, int64_t ci, int64_t c,
                      int64_t i, int64_t j, int64_t ih, int64_t iw) {
    dwp[((k * g.Cg + c) * g.kh + i) * g.kw + j] +=
        dyp[((n * g.K + k) * g.Ho + oh) * g.Wo + ow] * xp[((n * g.C + ci) * g.H + ih) * g.W + iw];
  });
  return dw.view(w_shape).to(dy_in.dtype());
}

Array conv2d_backward_bias_reference(const Array& dy_in) {
  Array dy = to_f64(dy_in);
  const int64_t B = dy.size(0), K = dy.size(1), P = dy.size(2) * dy.size(3);
  Array db({K}, kFloat64);
  db.zero_();
  for (int64_t n = 0; n < B; ++n)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t q = 0; q < P; ++q)
        db.data<double>()[k] += dy.data<double>()[(n * K + k) * P + q];
  return db.to(dy_in.dtype());
}

}  // namespace kiln::kernels
