#pragma once
// Pooling kernels (no autograd): max, average and adaptive-average pooling, forward and backward,
// plus naive reference twins for tests.
//
// Legend: B = batch, C = channels, H × W = input, kh × kw = window, Ho × Wo = output.
//   x: (B, C, H, W)  ->  y: (B, C, Ho, Wo),  Ho = (H + 2·pad_h − kh) / stride_h + 1 (floor),
//   likewise Wo (PyTorch's ceil_mode = false).
// The max / avg kernels also accept the 1-D layout x: (B, C, L) -> (B, C, Lo): it is seen as H = 1
// (a view, no copy) and the *_w fields of Pool2dParams apply; the *_h fields must keep their
// defaults.
#include <string_view>

#include "kiln/tensor/array.h"

namespace kiln::kernels {

/// Window, stride and padding of a 2-D (or, through the *_w fields, 1-D) pooling.
struct Pool2dParams {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;  // both sides; max pooling pads with −∞, average pooling with 0
};

/// Checks x against the pooling rules and returns the output shape. Throws ShapeError naming `op`,
/// the input shape and the kernel, e.g.
///   max_pool2d: input [1, 1, 2, 2] is too small for kernel [3, 3]: padded size 2 < kernel 3 on
///   dim 2 (input + 2·padding must be >= kernel)
/// Rules as PyTorch: kernel, stride >= 1; 0 <= padding <= kernel / 2.
Shape pool2d_output_shape(std::string_view op, const Array& x, const Pool2dParams& p);

/// Max pooling result: values (B, C, Ho, Wo) and int64 indices of the same shape, each the flat
/// position ih·W + iw of the maximum inside its (H, W) input plane (PyTorch's return_indices).
struct MaxPoolResult {
  Array values;
  Array indices;
};

/// y[b, c, oh, ow] = max over the window (padding never wins). A NaN in the window wins, as in
/// PyTorch. Parallel over (B, C) planes.
MaxPoolResult max_pool2d_forward(const Array& x, const Pool2dParams& p);
/// dx[b, c, indices[b, c, o]] += dy[b, c, o].   dy, indices: (B, C, Ho, Wo)  ->  dx: x_shape
Array max_pool2d_backward(const Array& dy, const Array& indices, const Shape& x_shape);

/// y = Σ window / (kh·kw): padded zeros count in the divisor (PyTorch's count_include_pad = true).
Array avg_pool2d_forward(const Array& x, const Pool2dParams& p);
/// Each dy element spread evenly over its window.   dy: (B, C, Ho, Wo)  ->  dx: x_shape
Array avg_pool2d_backward(const Array& dy, const Shape& x_shape, const Pool2dParams& p);

/// Checks x (B, C, H, W) and the requested output size; returns (B, C, out_h, out_w).
Shape adaptive_pool2d_output_shape(std::string_view op, const Array& x, int64_t out_h,
                                   int64_t out_w);
/// Output cell (i, j) averages rows [floor(i·H/out_h), ceil((i+1)·H/out_h)) and likewise columns
/// (PyTorch's bin edges; bins may overlap).   x: (B, C, H, W)  ->  (B, C, out_h, out_w)
Array adaptive_avg_pool2d_forward(const Array& x, int64_t out_h, int64_t out_w);
/// dy: (B, C, out_h, out_w)  ->  dx: x_shape
Array adaptive_avg_pool2d_backward(const Array& dy, const Shape& x_shape);

// ---- reference twins: one output element at a time with bounds checks, float64 sums ----
MaxPoolResult max_pool2d_reference(const Array& x, const Pool2dParams& p);
Array max_pool2d_backward_reference(const Array& dy, const Array& indices, const Shape& x_shape);
Array avg_pool2d_reference(const Array& x, const Pool2dParams& p);
Array avg_pool2d_backward_reference(const Array& dy, const Shape& x_shape, const Pool2dParams& p);
Array adaptive_avg_pool2d_reference(const Array& x, int64_t out_h, int64_t out_w);
Array adaptive_avg_pool2d_backward_reference(const Array& dy, const Shape& x_shape);

}  // namespace kiln::kernels
