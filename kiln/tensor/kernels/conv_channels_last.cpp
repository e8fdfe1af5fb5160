// Channels-last depthwise convolution (see conv_geom.h). Legend as in conv.h; a channels-last
// array is addressed as (B, H, W, C): element (n, h, w, c) sits at ((n·H + h)·W + w)·C + c. Here
// K == C (one output channel per input channel), so every inner loop is one FMA row along C.
#include <algorithm>
#include <vector>

#include "kiln/tensor/dtype.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/kernels/conv_geom.h"
#include "kiln/tensor/parallel.h"

namespace kiln::kernels::conv_detail {
namespace {

// w (K, 1, kh, kw) -> wt (kh·kw, K): one contiguous row of per-channel weights per tap.
template <typename T>
std::vector<T> taps_by_channel(const T* w, const Geom& g) {
  const int64_t taps = g.kh * g.kw;
  std::vector<T> wt(static_cast<size_t>(taps * g.K));
  for (int64_t k = 0; k < g.K; ++k)
    for (int64_t t = 0; t < taps; ++t) wt[t * g.K + k] = w[k * taps + t];
  return wt;
}

// acc[c] += a[c] · b[c]: the compiler vectorises it (the pointers never alias).
template <typename T>
inline void fma_row(T* __restrict acc, const T* __restrict a, const T* __restrict b, int64_t n) {
  for (int64_t c = 0; c < n; ++c) acc[c] += a[c] * b[c];
}

// y[n, oh, ow, :] = b + Σ_{i, j} wt[i, j, :] ⊙ x[n, oh·sh − ph + i·dh, ow·sw − pw + j·dw, :],
// taps in the padding skipped. Parallel over output positions.
template <typename T>
void forward(const T* x, const T* wt, const T* bias, const Geom& g, T* y) {
  const int64_t C = g.C, taps = g.kh * g.kw;
  parallel_for(0, g.B * g.Ho * g.Wo,
               std::max<int64_t>(1, kGrainSize / std::max<int64_t>(taps * C, 1)),
               [&](int64_t p0, int64_t p1) {
                 for (int64_t p = p0; p < p1; ++p) {
                   const int64_t n = p / (g.Ho * g.Wo), oh = (p / g.Wo) % g.Ho, ow = p % g.Wo;
                   T* yo = y + p * C;
                   if (bias)
                     std::copy(bias, bias + C, yo);
                   else
                     std::fill(yo, yo + C, T(0));
                   for (int64_t i = 0; i < g.kh; ++i) {
                     const int64_t ih = oh * g.sh - g.ph + i * g.dh;
                     if (ih < 0 || ih >= g.H) continue;
                     for (int64_t j = 0; j < g.kw; ++j) {
                       const int64_t iw = ow * g.sw - g.pw + j * g.dw;
                       if (iw < 0 || iw >= g.W) continue;
                       fma_row(yo, wt + (i * g.kw + j) * C, x + ((n * g.H + ih) * g.W + iw) * C, C);
                     }
                   }
                 }
               });
}

// dx[n, ih, iw, :] = Σ over the taps (i, j) and outputs (oh, ow) that read (ih, iw):
// wt[i, j, :] ⊙ dy[n, oh, ow, :]. Gathered per input position (no two tasks write one element).
template <typename T>
void backward_input(const T* dy, const T* wt, const Geom& g, T* dx) {
  const int64_t C = g.C, taps = g.kh * g.kw;
  const bool unit_stride = g.sh == 1 && g.sw == 1;
  parallel_for(
      0, g.B * g.H * g.W, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(taps * C, 1)),
      [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          const int64_t n = p / (g.H * g.W), ih = (p / g.W) % g.H, iw = p % g.W;
          T* d = dx + p * C;
          std::fill(d, d + C, T(0));
          if (unit_stride) {
            // Stride 1 (NAS-BERT's separable convolutions): oh = ih + ph − i·dh, no division (the
            // two integer divisions per tap below cost about as much as the tap's FMA row at
            // C = 256).
            for (int64_t i = 0; i < g.kh; ++i) {
              const int64_t oh = ih + g.ph - i * g.dh;
              if (oh < 0 || oh >= g.Ho) continue;
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t ow = iw + g.pw - j * g.dw;
                if (ow < 0 || ow >= g.Wo) continue;
                fma_row(d, wt + (i * g.kw + j) * C, dy + ((n * g.Ho + oh) * g.Wo + ow) * C, C);
              }
            }
            continue;
          }
          for (int64_t i = 0; i < g.kh; ++i) {
            // ih = oh·sh − ph + i·dh  ⇔  oh = (ih + ph − i·dh) / sh, when that divides.
            const int64_t nh = ih + g.ph - i * g.dh;
            if (nh < 0 || nh % g.sh != 0 || nh / g.sh >= g.Ho) continue;
            const int64_t oh = nh / g.sh;
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t nw = iw + g.pw - j * g.dw;
              if (nw < 0 || nw % g.sw != 0 || nw / g.sw >= g.Wo) continue;
              const int64_t ow = nw / g.sw;
              fma_row(d, wt + (i * g.kw + j) * C, dy + ((n * g.Ho + oh) * g.Wo + ow) * C, C);
            }
          }
        }
      });
}

// dw[k, i, j] = Σ_{n, oh, ow} dy[n, oh, ow, k] · x[n, ih, iw, k]. One partial (taps, C) per output
// row (n, oh), summed in T over that row; the rows' partials are then added in float64 in row
// order, so the result does not depend on the thread count.
template <typename T>
void backward_weight(const T* dy, const T* x, const Geom& g, T* dw) {
  const int64_t C = g.C, taps = g.kh * g.kw, rows = g.B * g.Ho, stride = taps * C;
  std::vector<T> partial(static_cast<size_t>(rows * stride));
  parallel_for(0, rows, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(g.Wo * stride, 1)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   const int64_t n = r / g.Ho, oh = r % g.Ho;
                   T* acc = partial.data() + r * stride;
                   std::fill(acc, acc + stride, T(0));
                   for (int64_t i = 0; i < g.kh; ++i) {
                     const int64_t ih = oh * g.sh - g.ph + i * g.dh;
                     if (ih < 0 || ih >= g.H) continue;
                     for (int64_t ow = 0; ow < g.Wo; ++ow) {
                       const T* d = dy + ((n * g.Ho + oh) * g.Wo + ow) * C;
                       for (int64_t j = 0; j < g.kw; ++j) {
                         const int64_t iw = ow * g.sw - g.pw + j * g.dw;
                         if (iw < 0 || iw >= g.W) continue;
                         fma_row(acc + (i * g.kw + j) * C, d, x + ((n * g.H + ih) * g.W + iw) * C,
                                 C);
                       }
                     }
                   }
                 }
               });
  std::vector<double> sum(static_cast<size_t>(stride), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const T* part = partial.data() + r * stride;
    for (int64_t e = 0; e < stride; ++e) sum[e] += static_cast<double>(part[e]);
  }
  for (int64_t k = 0; k < C; ++k)
    for (int64_t t = 0; t < taps; ++t) dw[k * taps + t] = static_cast<T>(sum[t * C + k]);
}

// A channels-last (B, H, W, C) buffer seen as (B, C, H, W).
Array channels_last_array(int64_t B, int64_t C, int64_t H, int64_t W, DType dtype) {
  return Array({B, H, W, C}, dtype).permute({0, 3, 1, 2});
}

}  // namespace

bool is_channels_last(const Array& a4) {
  return a4.dim() == 4 && a4.permute({0, 2, 3, 1}).is_contiguous();
}

Array depthwise_channels_last_forward(const Array& x, const Array& w, const Array& b,
                                      const Geom& g) {
  Array y = channels_last_array(g.B, g.K, g.Ho, g.Wo, x.dtype());
  KILN_DISPATCH_FLOATING(x.dtype(), "conv2d", [&] {
    const std::vector<scalar_t> wt = taps_by_channel(w.data<scalar_t>(), g);
    forward<scalar_t>(x.data<scalar_t>(), wt.data(), b.defined() ? b.data<scalar_t>() : nullptr, g,
                      y.data<scalar_t>());
  });
  return y;
}

Array depthwise_channels_last_backward_input(const Array& dy, const Array& w, const Geom& g) {
  Array dx = channels_last_array(g.B, g.C, g.H, g.W, dy.dtype());
  KILN_DISPATCH_FLOATING(dy.dtype(), "conv2d_backward_input", [&] {
    const std::vector<scalar_t> wt = taps_by_channel(w.data<scalar_t>(), g);
    backward_input<scalar_t>(dy.data<scalar_t>(), wt.data(), g, dx.data<scalar_t>());
  });
  return dx;
}

Array depthwise_channels_last_backward_weight(const Array& dy, const Array& x, const Geom& g) {
  Array dw({g.K, 1, g.kh, g.kw}, dy.dtype());
  KILN_DISPATCH_FLOATING(dy.dtype(), "conv2d_backward_weight", [&] {
    backward_weight<scalar_t>(dy.data<scalar_t>(), x.data<scalar_t>(), g, dw.data<scalar_t>());
  });
  return dw;
}

}  // namespace kiln::kernels::conv_detail
