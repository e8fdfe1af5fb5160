#pragma once
// Internal to kiln_tensor's convolution kernels (conv.cpp, conv_channels_last.cpp): the geometry
// of one call in the 4-D view, with the legend of conv.h. Only tensor/ sources include this.
#include <algorithm>
#include <cstdint>

#include "kiln/tensor/array.h"
#include "kiln/tensor/conv.h"

namespace kiln::kernels::conv_detail {

// The geometry of one call, always in the 4-D view (1-D convolutions have H = kh = Ho = 1).
struct Geom {
  int64_t B, C, H, W;
  int64_t K, Cg, kh, kw;
  int64_t G, Kg, Ho, Wo;
  int64_t sh, sw, ph, pw, dh, dw;
  int64_t P() const { return Ho * Wo; }
  int64_t R() const { return Cg * kh * kw; }
  bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
  // One input channel per group, several groups. A single-group, single-channel convolution
  // (LeNet's first layer: C = 1) takes the GEMM path instead: one (K, R) · (R, nb·P) product per
  // chunk beats K direct passes over each image (W4 lenet_step).
  bool depthwise() const { return Cg == 1 && G > 1; }
};

inline Shape to4d(const Shape& s) {
  if (s.size() != 3) return s;
  return {s[0], s[1], 1, s[2]};
}
inline Array to4d(const Array& a) {
  return a.dim() == 3 ? a.unsqueeze(2) : a;
}

inline Geom make_geom(const Shape& x, const Shape& w, const Conv2dParams& p) {
  Shape x4 = to4d(x), w4 = to4d(w);
  Geom g{};
  g.B = x4[0], g.C = x4[1], g.H = x4[2], g.W = x4[3];
  g.K = w4[0], g.Cg = w4[1], g.kh = w4[2], g.kw = w4[3];
  g.G = p.groups, g.Kg = g.K / p.groups;
  g.sh = p.stride_h, g.sw = p.stride_w, g.ph = p.pad_h, g.pw = p.pad_w;
  g.dh = p.dilation_h, g.dw = p.dilation_w;
  g.Ho = (g.H + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  g.Wo = (g.W + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  return g;
}

// Output positions o in [lo, hi) whose input position o·s + off lies inside [0, n).
struct Range {
  int64_t lo, hi;
};
inline Range valid_range(int64_t off, int64_t s, int64_t n, int64_t n_out) {
  int64_t lo = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t hi = n - 1 - off < 0 ? 0 : (n - 1 - off) / s + 1;
  lo = std::min(lo, n_out);
  hi = std::clamp(hi, lo, n_out);
  return {lo, hi};
}

// ---- channels-last depthwise path (conv_channels_last.cpp) ----
//
// A (B, C, H, W) array is channels-last when its elements lie as a contiguous (B, H, W, C) block:
// the transpose of a (B, T, C) sequence (NAS-BERT's separable convolution) is one. For such inputs
// a depthwise convolution with one output channel per input channel runs on the (B, H, W, C) data
// directly, vectorised along C, and returns its result channels-last too, so neither side copies
// the sequence to (B, C, T) and back.

/// True when a (4-D) array's elements form a contiguous (B, H, W, C) block.
bool is_channels_last(const Array& a4);

/// True when the channels-last depthwise kernels handle this geometry (depthwise with K == C).
inline bool channels_last_depthwise(const Geom& g) {
  return g.depthwise() && g.Kg == 1;
}

/// y (B, K, Ho, Wo) as a channels-last view; x channels-last (B, C, H, W), w (K, 1, kh, kw)
/// contiguous, b (K) contiguous or undefined.
Array depthwise_channels_last_forward(const Array& x, const Array& w, const Array& b,
                                      const Geom& g);
/// dx (B, C, H, W) as a channels-last view; dy channels-last, w contiguous.
Array depthwise_channels_last_backward_input(const Array& dy, const Array& w, const Geom& g);
/// dw (K, 1, kh, kw) contiguous; dy and x channels-last.
Array depthwise_channels_last_backward_weight(const Array& dy, const Array& x, const Geom& g);

}  // namespace kiln::kernels::conv_detail
