#pragma once
// Convolution kernels (no autograd): forward and the three backward products of a 2-D convolution
// with stride, padding, dilation and groups, plus naive float64 reference twins for tests.
//
// Legend: B = batch, C = input channels, K = output channels, G = groups, Cg = C / G, Kg = K / G,
// H, W = input height / width, kh, kw = kernel height / width, Ho, Wo = output height / width.
//   x: (B, C, H, W)   w: (K, Cg, kh, kw)   b: (K)   y: (B, K, Ho, Wo)
//   Ho = (H + 2·pad_h − dilation_h·(kh − 1) − 1) / stride_h + 1   (floor), likewise Wo.
//
// Every kernel also accepts the 1-D layout x: (B, C, L), w: (K, Cg, k), y: (B, K, Lo): it is seen
// as H = 1 (a view, no copy) and the *_w fields of Conv2dParams apply; the *_h fields must keep
// their defaults. Results come back in the caller's layout.
#include <string_view>

#include "kiln/tensor/array.h"

namespace kiln::kernels {

/// Hyper-parameters of a 2-D (or, through the *_w fields, 1-D) convolution.
struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;  // zero padding on both sides
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};

/// Checks x, w (and the bias shape when `bias` is non-null) against the convolution rules and
/// returns the output shape. Throws ShapeError / TypeError naming `op` and both shapes, e.g.
///   conv2d: input channels differ: input [8, 3, 32, 32] has 3 channels but weight [16, 4, 3, 3]
///   expects 4 (input.size(1) must equal weight.size(1) * groups)
/// x and w must both be 4-D, or both 3-D (1-D convolution).
Shape conv2d_output_shape(std::string_view op, const Array& x, const Array& w, const Array* bias,
                          const Conv2dParams& p);

/// y = conv(x, w) + b.   x: (B, C, H, W)  w: (K, Cg, kh, kw)  b: (K) or undefined  ->  (B, K, Ho,
/// Wo) Several groups with Cg == 1 (depthwise, any channel multiplier) run a direct kernel parallel
/// over (B, K); otherwise (a single-channel input with one group included) im2col over chunks of
/// images (parallel over its rows) and one GEMM per (chunk, group). A depthwise convolution with
/// K == C whose x is channels-last (a view of contiguous (B, H, W, C) data, such as the transpose
/// of a (B, T, C) sequence) runs on that layout directly and returns y channels-last; the backward
/// kernels do the same for a channels-last dy (dx channels-last) or x (dw).
Array conv2d_forward(const Array& x, const Array& w, const Array& b, const Conv2dParams& p);

/// dx = convᵀ(dy, w): the gradient of conv2d_forward with respect to x.
///   dy: (B, K, Ho, Wo)  w: (K, Cg, kh, kw)  ->  dx: x_shape = (B, C, H, W)
Array conv2d_backward_input(const Array& dy, const Array& w, const Shape& x_shape,
                            const Conv2dParams& p);

/// dw[k, c, i, j] = Σ_{b, oh, ow} dy[b, k, oh, ow] · x[b, g·Cg + c, oh·sh − ph + i·dh, ow·sw − pw +
/// j·dw].
///   dy: (B, K, Ho, Wo)  x: (B, C, H, W)  ->  dw: w_shape = (K, Cg, kh, kw)
Array conv2d_backward_weight(const Array& dy, const Array& x, const Shape& w_shape,
                             const Conv2dParams& p);

/// db[k] = Σ_{b, oh, ow} dy[b, k, oh, ow].   dy: (B, K, Ho, Wo) or (B, K, Lo)  ->  (K)
Array conv2d_backward_bias(const Array& dy);

// ---- reference twins: direct loops accumulating in float64; results in the input dtype ----

/// The 7-loop convolution: for b, k, oh, ow: Σ over c, i, j.
Array conv2d_forward_reference(const Array& x, const Array& w, const Array& b,
                               const Conv2dParams& p);
Array conv2d_backward_input_reference(const Array& dy, const Array& w, const Shape& x_shape,
                                      const Conv2dParams& p);
Array conv2d_backward_weight_reference(const Array& dy, const Array& x, const Shape& w_shape,
                                       const Conv2dParams& p);
Array conv2d_backward_bias_reference(const Array& dy);

}  // namespace kiln::kernels
