// Convolution and pooling ops. Legend: B = batch, C_in / C_out = input / output channels,
// H × W (2-D) or L (1-D) = spatial size, kh × kw (or k) = kernel, G = groups.
//
// Attributes follow ONNX (Conv, MaxPool, AveragePool): kernel_shape, strides, pads in ONNX order
// (all begins, then all ends: {top, left, bottom, right} in 2-D, {left, right} in 1-D), dilations,
// group; so the exporter maps each node without recomputing anything.
#include <algorithm>
#include <string_view>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/op.h"
#include "kiln/autograd/op_registry.h"
#include "kiln/tensor/conv.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"
#include "kiln/tensor/pool.h"

namespace kiln {
namespace {
// Every op name this file records (kiln/autograd/op_registry.h): a test fails when an op is
// recorded undeclared, and the gradcheck table needs a case for each differentiable one.
const OpDeclarations kOps({"adaptive_avg_pool2d", "avg_pool2d", "conv1d", "conv2d", "max_pool1d",
                           "max_pool2d"});
}  // namespace
namespace {

// A per-dim option given once (both dims) or per dim, e.g. stride {2} == {2, 2}.
struct Pair {
  int64_t h, w;
};
Pair pair_of(std::string_view op, std::string_view name, const std::vector<int64_t>& v,
             const Shape& x) {
  KILN_CHECK_SHAPE(v.size() == 1 || v.size() == 2,
                   "{}: {} {} must have 1 or 2 entries (one per spatial dim) for input {}", op,
                   name, v, x);
  return v.size() == 1 ? Pair{v[0], v[0]} : Pair{v[0], v[1]};
}

Attrs conv_attrs(std::vector<int64_t> kernel, std::vector<int64_t> strides,
                 std::vector<int64_t> pads, std::vector<int64_t> dilations, int64_t groups) {
  return {{"kernel_shape", std::move(kernel)},
          {"strides", std::move(strides)},
          {"pads", std::move(pads)},
          {"dilations", std::move(dilations)},
          {"group", groups}};
}

// conv2d and conv1d share a backward: the kernels take the 3-D (1-D conv) layout directly.
// dx = convᵀ(dy, w)   dw = Σ_b dy ⋆ x (correlation)   db = Σ_{b, spatial} dy
struct ConvBackward {
  Saved x, w;
  kernels::Conv2dParams p;
  Grads operator()(const Array& dy, const Needs& n) const {
    Grads g(n.size());
    auto input_grad = [&] {
      if (n[0]) g[0] = kernels::conv2d_backward_input(dy, w.get(), x.get().shape(), p);
    };
    auto weight_grads = [&] {
      if (n[1]) g[1] = kernels::conv2d_backward_weight(dy, x.get(), w.get().shape(), p);
      if (n.size() > 2 && n[2]) g[2] = kernels::conv2d_backward_bias(dy);
    };
    // As in linear's backward: small dx and dw products run side by side, one thread each.
    // Each is dy's numel times the taps per output element, (C / groups)·kh·kw.
    const Array& wa = w.get();
    const int64_t macs = dy.numel() * (wa.numel() / std::max<int64_t>(wa.shape()[0], 1));
    if (n[0] && n[1] && macs < kSideBySideMacs) {
      parallel_invoke(input_grad, weight_grads);
    } else {
      input_grad();
      weight_grads();
    }
    return g;
  }
};

// Checks every shape rule (throwing before any kernel runs), then computes the forward.
Array conv_forward(const char* op, const Tensor& x, const Tensor& w, const Tensor& b,
                   const kernels::Conv2dParams& p) {
  Array bias = b.defined() ? b.data() : Array();
  kernels::conv2d_output_shape(op, x.data(), w.data(), &bias, p);
  return kernels::conv2d_forward(x.data(), w.data(), bias, p);
}

std::vector<Tensor> conv_inputs(const Tensor& x, const Tensor& w, const Tensor& b) {
  if (b.defined()) return {x, w, b};
  return {x, w};
}

}  // namespace

// conv2d: x (B, C_in, H, W) ⋆ w (C_out, C_in/G, kh, kw) + b (C_out)  ->  (B, C_out, H_out, W_out)
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, std::vector<int64_t> stride,
              std::vector<int64_t> padding, std::vector<int64_t> dilation, int64_t groups) {
  KILN_CHECK_SHAPE(x.dim() == 4 && w.dim() == 4,
                   "conv2d: input {} and weight {} must both be 4-D: (B, C_in, H, W) and (C_out, "
                   "C_in/groups, kh, kw)",
                   x.shape(), w.shape());
  const Pair s = pair_of("conv2d", "stride", stride, x.shape());
  const Pair pad = pair_of("conv2d", "padding", padding, x.shape());
  const Pair d = pair_of("conv2d", "dilation", dilation, x.shape());
  const kernels::Conv2dParams p{s.h, s.w, pad.h, pad.w, d.h, d.w, groups};
  Array y = conv_forward("conv2d", x, w, b, p);
  return make_op("conv2d", conv_inputs(x, w, b), y,
                 ConvBackward{save(x, "conv2d"), save(w, "conv2d"), p},
                 conv_attrs({w.size(2), w.size(3)}, {s.h, s.w}, {pad.h, pad.w, pad.h, pad.w},
                            {d.h, d.w}, groups));
}

// conv1d: x (B, C_in, L) ⋆ w (C_out, C_in/G, k) + b (C_out)  ->  (B, C_out, L_out); run as conv2d
// with H = 1 on views of the same storage.
Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t padding,
              int64_t dilation, int64_t groups) {
  KILN_CHECK_SHAPE(x.dim() == 3 && w.dim() == 3,
                   "conv1d: input {} and weight {} must both be 3-D: (B, C_in, L) and (C_out, "
                   "C_in/groups, k)",
                   x.shape(), w.shape());
  const kernels::Conv2dParams p{1, stride, 0, padding, 1, dilation, groups};
  Array y = conv_forward("conv1d", x, w, b, p);
  return make_op("conv1d", conv_inputs(x, w, b), y,
                 ConvBackward{save(x, "conv1d"), save(w, "conv1d"), p},
                 conv_attrs({w.size(2)}, {stride}, {padding, padding}, {dilation}, groups));
}

namespace {

// max_pool1d / max_pool2d: dx scatters dy to the saved argmax positions.
struct MaxPoolBackward {
  Array indices;  // int64, same shape as the output
  Shape x_shape;
  Grads operator()(const Array& dy) const {
    return {kernels::max_pool2d_backward(dy, indices, x_shape)};
  }
};

}  // namespace

// max_pool2d: (B, C, H, W) -> (B, C, H_out, W_out), −∞ padding; stride defaults to the kernel.
Tensor max_pool2d(const Tensor& x, std::vector<int64_t> kernel, std::vector<int64_t> stride,
                  std::vector<int64_t> padding) {
  KILN_CHECK_SHAPE(x.dim() == 4, "max_pool2d: input {} must be 4-D (B, C, H, W) (kernel {})",
                   x.shape(), kernel);
  const Pair k = pair_of("max_pool2d", "kernel", kernel, x.shape());
  const Pair s = stride.empty() ? k : pair_of("max_pool2d", "stride", stride, x.shape());
  const Pair pad = pair_of("max_pool2d", "padding", padding, x.shape());
  const kernels::Pool2dParams p{k.h, k.w, s.h, s.w, pad.h, pad.w};
  kernels::pool2d_output_shape("max_pool2d", x.data(), p);
  kernels::MaxPoolResult r = kernels::max_pool2d_forward(x.data(), p);
  return make_op("max_pool2d", {x}, r.values, MaxPoolBackward{r.indices, x.shape()},
                 {{"kernel_shape", std::vector<int64_t>{k.h, k.w}},
                  {"strides", std::vector<int64_t>{s.h, s.w}},
                  {"pads", std::vector<int64_t>{pad.h, pad.w, pad.h, pad.w}}});
}

// max_pool1d: (B, C, L) -> (B, C, L_out); stride -1 means the kernel.
Tensor max_pool1d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  KILN_CHECK_SHAPE(x.dim() == 3, "max_pool1d: input {} must be 3-D (B, C, L) (kernel [{}])",
                   x.shape(), kernel);
  if (stride == -1) stride = kernel;
  const kernels::Pool2dParams p{1, kernel, 1, stride, 0, padding};
  kernels::pool2d_output_shape("max_pool1d", x.data(), p);
  kernels::MaxPoolResult r = kernels::max_pool2d_forward(x.data(), p);
  return make_op("max_pool1d", {x}, r.values, MaxPoolBackward{r.indices, x.shape()},
                 {{"kernel_shape", std::vector<int64_t>{kernel}},
                  {"strides", std::vector<int64_t>{stride}},
                  {"pads", std::vector<int64_t>{padding, padding}}});
}

// avg_pool2d: (B, C, H, W) -> (B, C, H_out, W_out); padded zeros count in the divisor
// (count_include_pad). dx spreads each dy evenly over its window.
Tensor avg_pool2d(const Tensor& x, std::vector<int64_t> kernel, std::vector<int64_t> stride,
                  std::vector<int64_t> padding) {
  KILN_CHECK_SHAPE(x.dim() == 4, "avg_pool2d: input {} must be 4-D (B, C, H, W) (kernel {})",
                   x.shape(), kernel);
  const Pair k = pair_of("avg_pool2d", "kernel", kernel, x.shape());
  const Pair s = stride.empty() ? k : pair_of("avg_pool2d", "stride", stride, x.shape());
  const Pair pad = pair_of("avg_pool2d", "padding", padding, x.shape());
  const kernels::Pool2dParams p{k.h, k.w, s.h, s.w, pad.h, pad.w};
  kernels::pool2d_output_shape("avg_pool2d", x.data(), p);
  return make_op("avg_pool2d", {x}, kernels::avg_pool2d_forward(x.data(), p),
                 [xs = x.shape(), p](const Array& dy) -> Grads {
                   return {kernels::avg_pool2d_backward(dy, xs, p)};
                 },
                 {{"kernel_shape", std::vector<int64_t>{k.h, k.w}},
                  {"strides", std::vector<int64_t>{s.h, s.w}},
                  {"pads", std::vector<int64_t>{pad.h, pad.w, pad.h, pad.w}},
                  {"count_include_pad", int64_t{1}}});
}

// adaptive_avg_pool2d: (B, C, H, W) -> (B, C, out_h, out_w) over PyTorch's bins
// [floor(i·H/out_h), ceil((i+1)·H/out_h)); output_size {n} means {n, n}.
Tensor adaptive_avg_pool2d(const Tensor& x, std::vector<int64_t> output_size) {
  const Pair o = pair_of("adaptive_avg_pool2d", "output_size", output_size, x.shape());
  kernels::adaptive_pool2d_output_shape("adaptive_avg_pool2d", x.data(), o.h, o.w);
  return make_op("adaptive_avg_pool2d", {x},
                 kernels::adaptive_avg_pool2d_forward(x.data(), o.h, o.w),
                 [xs = x.shape()](const Array& dy) -> Grads {
                   return {kernels::adaptive_avg_pool2d_backward(dy, xs)};
                 },
                 {{"output_size", std::vector<int64_t>{o.h, o.w}}});
}

}  // namespace kiln
