// Convolution kernels (tensor/conv.h): the im2col + GEMM and depthwise paths against the direct
// float64 reference twins over stride / padding / dilation / groups / odd sizes / batch 1 / 1-D,
// every backward product, thread-count invariance, and float32 results against PyTorch goldens
// (tests/golden/make_conv_golden.py). Legend: B batch, C / K in / out channels, H × W, L spatial.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kiln/tensor/conv.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"
#include "tensor/test_util.h"
#include "test_support.h"

namespace kiln::kernels {
namespace {

using kiln::testing::all_close;
using kiln::testing::golden;
using kiln::testing::Tol;

// float32 forward and dx against the float64 twin: each element sums R = Cg·kh·kw (forward) or
// Kg·kh·kw (dx) ≤ 216 float32 products of O(1) values, so the error is a few float32 ulps of
// Σ|terms|.
constexpr Tol kConvF32{1e-4, 1e-5};
// float32 dw: each element sums B·Ho·Wo ≤ 800 products (GEMM per image, accumulated over images).
constexpr Tol kConvWeightF32{1e-4, 1e-4};
// float32 db: float64 sums of float32 values; only the final rounding differs.
constexpr Tol kBiasF32{1e-6, 1e-6};
// float64 against the float64 twin: only the summation order differs.
constexpr Tol kConvF64{1e-11, 1e-11};
// float32 against PyTorch's float32 (oneDNN / its own im2col): both round, in different orders.
constexpr Tol kGoldenF32{1e-4, 1e-5};

Array randn_seeded(const Shape& s, uint64_t seed, DType dt) {
  Generator g(seed);
  return randn(s, 0.0, 1.0, dt, &g);
}

Conv2dParams params2d(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                      int64_t groups) {
  return Conv2dParams{sh, sw, ph, pw, dh, dw, groups};
}
// 1-D: only the *_w fields.
Conv2dParams params1d(int64_t stride, int64_t pad, int64_t dilation, int64_t groups) {
  return Conv2dParams{1, stride, 0, pad, 1, dilation, groups};
}

struct ConvCase {
  const char* label;
  Shape x, w;  // x: (B, C, H, W) or (B, C, L);  w: (K, C/groups, kh, kw) or (K, C/groups, k)
  Conv2dParams p;
  bool bias;
};

const ConvCase kCases[] = {
    {"3x3 pad 1", {2, 3, 8, 7}, {4, 3, 3, 3}, params2d(1, 1, 1, 1, 1, 1, 1), true},
    {"stride 2", {2, 4, 9, 10}, {5, 4, 3, 3}, params2d(2, 2, 1, 1, 1, 1, 1), false},
    {"mixed stride/pad/dilation", {1, 3, 11, 9}, {2, 3, 3, 2}, params2d(2, 3, 2, 1, 2, 1, 1), true},
    {"groups 2", {2, 6, 7, 7}, {4, 3, 3, 3}, params2d(1, 1, 1, 1, 1, 1, 2), true},
    {"grouped 1x1", {2, 6, 5, 5}, {9, 2, 1, 1}, params2d(1, 1, 0, 0, 1, 1, 3), false},
    {"depthwise", {2, 5, 9, 8}, {5, 1, 3, 3}, params2d(1, 1, 1, 1, 1, 1, 5), true},
    {"depthwise stride 2 dilation 2",
     {1, 4, 11, 10},
     {4, 1, 3, 3},
     params2d(2, 2, 2, 2, 2, 2, 4),
     false},
    {"depthwise multiplier 2", {2, 3, 6, 7}, {6, 1, 2, 3}, params2d(1, 2, 0, 1, 1, 1, 3), true},
    {"pointwise", {2, 8, 6, 5}, {7, 8, 1, 1}, params2d(1, 1, 0, 0, 1, 1, 1), true},
    {"pointwise batch 1 (reads x in place)",
     {1, 8, 6, 5},
     {7, 8, 1, 1},
     params2d(1, 1, 0, 0, 1, 1, 1),
     true},
    // 576 output pixels and Kg·R = 16·144 multiply-adds per column (not a thin GEMM, so chunks of
    // >= 1024 columns): two images per GEMM chunk, the last chunk holding one.
    {"partial last chunk", {3, 16, 24, 24}, {16, 16, 3, 3}, params2d(1, 1, 1, 1, 1, 1, 1), true},
    {"1x1 stride 2", {1, 4, 7, 7}, {3, 4, 1, 1}, params2d(2, 2, 0, 0, 1, 1, 1), false},
    {"kernel covers input", {3, 2, 5, 4}, {3, 2, 5, 4}, params2d(1, 1, 0, 0, 1, 1, 1), true},
    {"odd sizes batch 1", {1, 7, 13, 5}, {11, 7, 4, 2}, params2d(3, 1, 1, 1, 1, 1, 1), false},
    {"padding beyond kernel", {1, 2, 3, 3}, {2, 2, 2, 2}, params2d(1, 1, 3, 3, 1, 1, 1), true},
    {"stride beyond kernel", {2, 3, 10, 10}, {4, 3, 2, 2}, params2d(4, 4, 0, 0, 1, 1, 1), false},
    // One input channel, one group (LeNet's first layer): the GEMM path, not the depthwise one. A
    // thin GEMM (Kg·R = 6·25), so chunks of ~2M multiply-adds: 18 images of 784 output pixels per
    // chunk and a partial last chunk of 2.
    {"single channel 5x5 pad 2",
     {20, 1, 28, 28},
     {6, 1, 5, 5},
     params2d(1, 1, 2, 2, 1, 1, 1),
     true},
    {"single channel one output", {2, 1, 7, 6}, {1, 1, 3, 2}, params2d(2, 1, 0, 1, 1, 1, 1), false},
    // Large enough that im2col, col2im and the depthwise loops split across threads.
    {"parallel rows", {2, 16, 20, 20}, {24, 16, 3, 3}, params2d(1, 1, 1, 1, 1, 1, 1), true},
    {"parallel depthwise", {4, 32, 24, 24}, {32, 1, 3, 3}, params2d(1, 1, 1, 1, 1, 1, 32), true},
    // 1-D layouts (B, C, L).
    {"conv1d grouped stride 2", {2, 6, 17}, {4, 3, 3}, params1d(2, 1, 1, 2), true},
    {"conv1d depthwise (separable)", {2, 8, 20}, {8, 1, 5}, params1d(1, 2, 1, 8), true},
    {"conv1d pointwise", {3, 5, 9}, {6, 5, 1}, params1d(1, 0, 1, 1), false},
    {"conv1d dilated", {1, 3, 15}, {5, 3, 4}, params1d(1, 3, 2, 1), true},
};

TEST(Conv, ForwardAndBackwardMatchReference) {
  uint64_t seed = 1;
  for (const ConvCase& c : kCases) {
    for (DType dt : {kFloat32, kFloat64}) {
      SCOPED_TRACE(fmt::format("{} ({})", c.label, dtype_name(dt)));
      const Array x = randn_seeded(c.x, seed++, dt), w = randn_seeded(c.w, seed++, dt);
      const Array b = c.bias ? randn_seeded({c.w[0]}, seed++, dt) : Array();
      const Array y = conv2d_forward(x, w, b, c.p);
      ASSERT_EQ(y.shape(), conv2d_output_shape("conv2d", x, w, &b, c.p));
      const Array dy = randn_seeded(y.shape(), seed++, dt);
      const bool f32 = dt == kFloat32;
      EXPECT_TRUE(all_close(y, conv2d_forward_reference(x, w, b, c.p), f32 ? kConvF32 : kConvF64))
          << "forward";
      EXPECT_TRUE(all_close(conv2d_backward_input(dy, w, x.shape(), c.p),
                            conv2d_backward_input_reference(dy, w, x.shape(), c.p),
                            f32 ? kConvF32 : kConvF64))
          << "backward input";
      EXPECT_TRUE(all_close(conv2d_backward_weight(dy, x, w.shape(), c.p),
                            conv2d_backward_weight_reference(dy, x, w.shape(), c.p),
                            f32 ? kConvWeightF32 : kConvF64))
          << "backward weight";
      EXPECT_TRUE(all_close(conv2d_backward_bias(dy), conv2d_backward_bias_reference(dy),
                            f32 ? kBiasF32 : kConvF64))
          << "backward bias";
    }
  }
}

// Non-contiguous inputs (a permuted view) give the same values as their contiguous copies.
TEST(Conv, AcceptsNonContiguousInputs) {
  const Array x = randn_seeded({2, 7, 6, 3}, 11, kFloat32).permute({0, 3, 2, 1});  // (2, 3, 6, 7)
  const Array w = randn_seeded({4, 3, 3, 3}, 12, kFloat32).transpose(2, 3);
  const Conv2dParams p = params2d(1, 2, 1, 0, 1, 1, 1);
  ASSERT_FALSE(x.is_contiguous());
  EXPECT_TRUE(all_close(conv2d_forward(x, w, Array(), p),
                        conv2d_forward(x.contiguous(), w.contiguous(), Array(), p), Tol{0, 0}));
  const Shape ys = conv2d_output_shape("conv2d", x, w, nullptr, p);
  const Array dy = randn_seeded({ys[0], ys[1], ys[3], ys[2]}, 13, kFloat32).transpose(2, 3);
  ASSERT_EQ(dy.shape(), ys);
  EXPECT_TRUE(all_close(conv2d_backward_input(dy, w, x.shape(), p),
                        conv2d_backward_input(dy.contiguous(), w.contiguous(), x.shape(), p),
                        Tol{0, 0}));
  EXPECT_TRUE(all_close(conv2d_backward_weight(dy, x, w.shape(), p),
                        conv2d_backward_weight(dy.contiguous(), x.contiguous(), w.shape(), p),
                        Tol{0, 0}));
}

// The same values laid out channels-last: a (B, C, H, W) / (B, C, L) view of a contiguous
// (B, H, W, C) / (B, L, C) block, as the transpose of a (B, T, C) sequence is.
Array channels_last(const Array& a) {
  if (a.dim() == 3) return a.transpose(1, 2).contiguous().transpose(1, 2);
  return a.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
}
bool is_channels_last_view(const Array& a) {
  return !a.is_contiguous() && a.stride(1) == 1;
}

// Depthwise convolutions (one output channel per input channel) on channels-last inputs run on
// the (B, H, W, C) data directly and return channels-last results: against the reference twins,
// for every stride / padding / dilation, 1-D and 2-D, at 1 and 2 threads (bitwise the same), and
// with only one of dy and x channels-last in the weight gradient.
TEST(Conv, ChannelsLastDepthwiseMatchesReference) {
  const ConvCase cases[] = {
      {"depthwise", {2, 5, 9, 8}, {5, 1, 3, 3}, params2d(1, 1, 1, 1, 1, 1, 5), true},
      {"stride 2 dilation 2", {1, 4, 11, 10}, {4, 1, 3, 3}, params2d(2, 2, 2, 2, 2, 2, 4), false},
      {"stride 3 x 2, no padding",
       {3, 6, 10, 9},
       {6, 1, 2, 3},
       params2d(3, 2, 0, 0, 1, 1, 6),
       true},
      {"parallel", {4, 32, 24, 24}, {32, 1, 3, 3}, params2d(1, 1, 1, 1, 1, 1, 32), true},
      // NAS-BERT's separable convolution: (B, C, T), k = 7, padding 3.
      {"conv1d k7 pad 3", {3, 24, 33}, {24, 1, 7}, params1d(1, 3, 1, 24), true},
      {"conv1d stride 2 dilation 3", {2, 8, 20}, {8, 1, 3}, params1d(2, 2, 3, 8), false},
      // Stride 1 takes the backward's division-free path; with dilation and uneven padding.
      {"conv1d stride 1 dilation 2", {2, 16, 25}, {16, 1, 3}, params1d(1, 1, 2, 16), true},
      {"conv1d batch 1, long", {1, 48, 700}, {48, 1, 5}, params1d(1, 2, 1, 48), true},
  };
  const int saved = get_num_threads();
  uint64_t seed = 100;
  for (const ConvCase& c : cases) {
    for (DType dt : {kFloat32, kFloat64}) {
      SCOPED_TRACE(fmt::format("{} ({})", c.label, dtype_name(dt)));
      const bool f32 = dt == kFloat32;
      const Array x = channels_last(randn_seeded(c.x, seed++, dt));
      const Array w = randn_seeded(c.w, seed++, dt);
      const Array b = c.bias ? randn_seeded({c.w[0]}, seed++, dt) : Array();
      const Shape ys = conv2d_output_shape("conv2d", x, w, &b, c.p);
      const Array dy = channels_last(randn_seeded(ys, seed++, dt));
      std::vector<Array> runs[2];
      for (int t : {1, 2}) {
        set_num_threads(t);
        runs[t - 1] = {conv2d_forward(x, w, b, c.p), conv2d_backward_input(dy, w, x.shape(), c.p),
                       conv2d_backward_weight(dy, x, w.shape(), c.p), conv2d_backward_bias(dy)};
      }
      set_num_threads(saved);
      const std::vector<Array>& r = runs[1];
      EXPECT_TRUE(is_channels_last_view(r[0])) << "forward output keeps the layout";
      EXPECT_TRUE(is_channels_last_view(r[1])) << "input gradient keeps the layout";
      EXPECT_TRUE(
          all_close(r[0], conv2d_forward_reference(x, w, b, c.p), f32 ? kConvF32 : kConvF64))
          << "forward";
      EXPECT_TRUE(all_close(r[1], conv2d_backward_input_reference(dy, w, x.shape(), c.p),
                            f32 ? kConvF32 : kConvF64))
          << "backward input";
      EXPECT_TRUE(all_close(r[2], conv2d_backward_weight_reference(dy, x, w.shape(), c.p),
                            f32 ? kConvWeightF32 : kConvF64))
          << "backward weight";
      EXPECT_TRUE(all_close(r[3], conv2d_backward_bias_reference(dy), f32 ? kBiasF32 : kConvF64))
          << "backward bias";
      for (size_t i = 0; i < r.size(); ++i)
        EXPECT_TRUE(all_close(runs[0][i], r[i], Tol{0, 0})) << "1 vs 2 threads, output " << i;
      // Only one operand channels-last: the weight gradient converts the other.
      EXPECT_TRUE(
          all_close(conv2d_backward_weight(dy.contiguous(), x, w.shape(), c.p), r[2], Tol{0, 0}));
      EXPECT_TRUE(
          all_close(conv2d_backward_weight(dy, x.contiguous(), w.shape(), c.p), r[2], Tol{0, 0}));
    }
  }
}

// The depthwise path and the bias gradient write disjoint outputs per task and reduce in a fixed
// order, so they are bitwise the same at any thread count. The GEMM path is as deterministic as
// OpenBLAS, whose sgemm blocks differently at 1 and 2 threads: there the float32 bounds apply.
TEST(Conv, ThreadCountDoesNotChangeResults) {
  kiln::testing::ScopedNumThreads threads(1);
  for (const ConvCase& c : kCases) {
    if (c.label != std::string("parallel rows") && c.label != std::string("parallel depthwise"))
      continue;
    SCOPED_TRACE(c.label);
    const bool exact = c.w[1] == 1;  // depthwise
    const Array x = randn_seeded(c.x, 21, kFloat32), w = randn_seeded(c.w, 22, kFloat32);
    const Array b = randn_seeded({c.w[0]}, 23, kFloat32);
    std::vector<Array> runs[2];
    for (int t : {1, 2}) {
      threads.set(t);
      const Array y = conv2d_forward(x, w, b, c.p);
      const Array dy = randn_seeded(y.shape(), 24, kFloat32);
      runs[t - 1] = {y, conv2d_backward_input(dy, w, x.shape(), c.p),
                     conv2d_backward_weight(dy, x, w.shape(), c.p), conv2d_backward_bias(dy)};
    }
    const Tol tols[] = {kConvF32, kConvF32, kConvWeightF32, Tol{0, 0}};
    for (size_t i = 0; i < runs[0].size(); ++i)
      EXPECT_TRUE(all_close(runs[0][i], runs[1][i], exact ? Tol{0, 0} : tols[i])) << "output " << i;
  }
}

TEST(Conv, EmptyBatchGivesEmptyOutputAndZeroWeightGrad) {
  const Array x = zeros({0, 3, 5, 5}), w = randn_seeded({4, 3, 3, 3}, 31, kFloat32);
  const Conv2dParams p = params2d(1, 1, 1, 1, 1, 1, 1);
  const Array y = conv2d_forward(x, w, Array(), p);
  EXPECT_EQ(y.shape(), (Shape{0, 4, 5, 5}));
  const Array dw = conv2d_backward_weight(y, x, w.shape(), p);
  EXPECT_TRUE(all_close(dw, zeros({4, 3, 3, 3}), Tol{0, 0}));
}

TEST(Conv, ShapeErrorsNameTheOpBothShapesAndTheRule) {
  const Array x = zeros({8, 3, 32, 32}), w = zeros({16, 4, 3, 3});
  try {
    conv2d_output_shape("conv2d", x, w, nullptr, Conv2dParams{});
    FAIL() << "no error";
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(),
                 "conv2d: input channels differ: input [8, 3, 32, 32] has 3 channels but weight "
                 "[16, 4, 3, 3] expects 4 (input.size(1) must equal weight.size(1) * groups)");
  }
  // Too small after padding, output channels not divisible by groups, bias of the wrong size.
  EXPECT_THROW(conv2d_forward(zeros({1, 3, 2, 2}), zeros({4, 3, 3, 3}), Array(), Conv2dParams{}),
               ShapeError);
  Conv2dParams g2;
  g2.groups = 2;
  EXPECT_THROW(conv2d_forward(zeros({1, 4, 5, 5}), zeros({5, 2, 3, 3}), Array(), g2), ShapeError);
  EXPECT_THROW(conv2d_forward(zeros({1, 3, 5, 5}), zeros({4, 3, 3, 3}), zeros({5}), Conv2dParams{}),
               ShapeError);
  EXPECT_THROW(
      conv2d_forward(zeros({1, 3, 5, 5}), zeros({4, 3, 3, 3}, kFloat64), Array(), Conv2dParams{}),
      TypeError);
}

// ---- float32 against PyTorch (tests/golden/make_conv_golden.py) ----

struct Golden {
  Array x, w, b, y, dy, dx, dw, db;
  Conv2dParams p;
};

Golden load_conv_golden(const std::string& name, bool bias) {
  auto f = [&](const char* key) { return golden("conv/" + name + "_" + key + ".npy"); };
  Golden g{f("x"),  f("w"),  bias ? f("b") : Array(),  f("y"), f("dy"),
           f("dx"), f("dw"), bias ? f("db") : Array(), {}};
  const Array params = f("params");
  const int64_t* q = params.data<int64_t>();
  g.p = Conv2dParams{q[0], q[1], q[2], q[3], q[4], q[5], q[6]};
  return g;
}

TEST(Conv, MatchesPyTorchGoldens) {
  const std::pair<const char*, bool> cases[] = {
      {"conv2d_basic", true},      {"conv2d_strided_grouped", true},
      {"conv2d_depthwise", true},  {"conv2d_depthwise_mult", false},
      {"conv2d_pointwise", false}, {"conv1d_grouped", true},
      {"conv1d_dilated", false},   {"conv1d_depthwise", true},
  };
  for (const auto& [name, bias] : cases) {
    SCOPED_TRACE(name);
    const Golden g = load_conv_golden(name, bias);
    ASSERT_EQ(g.x.dtype(), kFloat32);
    EXPECT_TRUE(all_close(conv2d_forward(g.x, g.w, g.b, g.p), g.y, kGoldenF32)) << "forward";
    EXPECT_TRUE(all_close(conv2d_backward_input(g.dy, g.w, g.x.shape(), g.p), g.dx, kGoldenF32))
        << "backward input";
    EXPECT_TRUE(all_close(conv2d_backward_weight(g.dy, g.x, g.w.shape(), g.p), g.dw, kGoldenF32))
        << "backward weight";
    if (bias) {
      EXPECT_TRUE(all_close(conv2d_backward_bias(g.dy), g.db, kGoldenF32)) << "bias";
    }
  }
}

}  // namespace
}  // namespace kiln::kernels
