// Convolution and pooling ops (autograd/ops/conv.cpp): gradcheck cases (float64, small, central
// differences), the ONNX attributes each op records, shape errors per op, and the ops' float32
// values and gradients through autograd against PyTorch goldens (tests/golden/make_conv_golden.py).
// Legend: B batch, C channels, H × W or L spatial, K output channels.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "autograd/gradcheck_registry.h"
#include "kiln/io/npy.h"
#include "kiln/tensor/error.h"

namespace kiln::testing {
namespace {

using Inputs = std::vector<Tensor>;

// Max pooling is differentiable away from ties: leaf() draws distinct uniform values, and with
// eps = 1e-6 no perturbation reorders two of them unless they lie within 1e-6 (vanishingly rare).
const RegisterGradcheck reg({
    {"conv2d", "3x3 pad 1, bias",
     [] {
       return Inputs{leaf({1, 2, 4, 4}, 1), leaf({3, 2, 3, 3}, 2), leaf({3}, 3)};
     },
     [](const Inputs& in) {
       return conv2d(in[0], in[1], in[2], {1, 1}, {1, 1});
     }},
    {"conv2d", "stride 2, dilation 2, groups 2, no bias",
     [] {
       return Inputs{leaf({2, 4, 5, 5}, 4), leaf({4, 2, 2, 2}, 5)};
     },
     [](const Inputs& in) {
       return conv2d(in[0], in[1], {}, {2, 2}, {1, 1}, {2, 2}, 2);
     }},
    {"conv2d", "depthwise, stride (2, 1), bias",
     [] {
       return Inputs{leaf({1, 3, 5, 4}, 6), leaf({3, 1, 3, 3}, 7), leaf({3}, 8)};
     },
     [](const Inputs& in) {
       return conv2d(in[0], in[1], in[2], {2, 1}, {1, 1}, {1, 1}, 3);
     }},
    {"conv2d", "pointwise 1x1",
     [] {
       return Inputs{leaf({2, 3, 3, 2}, 9), leaf({2, 3, 1, 1}, 10)};
     },
     [](const Inputs& in) { return conv2d(in[0], in[1]); }},
    {"conv1d", "grouped, stride 2, pad 1, bias",
     [] {
       return Inputs{leaf({2, 4, 7}, 11), leaf({4, 2, 3}, 12), leaf({4}, 13)};
     },
     [](const Inputs& in) { return conv1d(in[0], in[1], in[2], 2, 1, 1, 2); }},
    {"conv1d", "depthwise multiplier 2, dilation 2",
     [] {
       return Inputs{leaf({1, 3, 8}, 14), leaf({6, 1, 3}, 15)};
     },
     [](const Inputs& in) { return conv1d(in[0], in[1], {}, 1, 2, 2, 3); }},
    // Channels-last inputs (views of (B, L, C) / (B, H, W, C) data) take the channels-last
    // depthwise kernels, whose outputs and input gradients stay channels-last.
    {"conv1d", "depthwise channels-last (transposed (B, L, C) input), k 5 pad 2, bias",
     [] {
       return Inputs{leaf({2, 7, 3}, 21), leaf({3, 1, 5}, 22), leaf({3}, 23)};
     },
     [](const Inputs& in) { return conv1d(transpose(in[0], 1, 2), in[1], in[2], 1, 2, 1, 3); }},
    {"conv2d", "depthwise channels-last (permuted (B, H, W, C) input), stride 2, dilation (1, 2)",
     [] {
       return Inputs{leaf({2, 5, 6, 3}, 24), leaf({3, 1, 3, 2}, 25)};
     },
     [](const Inputs& in) {
       return conv2d(permute(in[0], {0, 3, 1, 2}), in[1], {}, {2, 2}, {1, 1}, {1, 2}, 3);
     }},
    {"max_pool2d", "3x3 stride 2 pad 1",
     [] {
       return Inputs{leaf({1, 2, 5, 5}, 16)};
     },
     [](const Inputs& in) {
       return max_pool2d(in[0], {3, 3}, {2, 2}, {1, 1});
     }},
    {"max_pool2d", "2x3, stride = kernel",
     [] {
       return Inputs{leaf({1, 1, 4, 6}, 17)};
     },
     [](const Inputs& in) {
       return max_pool2d(in[0], {2, 3});
     }},
    {"max_pool1d", "k3 stride 2 pad 1",
     [] {
       return Inputs{leaf({2, 2, 7}, 18)};
     },
     [](const Inputs& in) { return max_pool1d(in[0], 3, 2, 1); }},
    {"avg_pool2d", "3x3 stride 2 pad 1",
     [] {
       return Inputs{leaf({1, 2, 5, 5}, 19)};
     },
     [](const Inputs& in) {
       return avg_pool2d(in[0], {3, 3}, {2, 2}, {1, 1});
     }},
    {"adaptive_avg_pool2d", "5x7 -> 3x4",
     [] {
       return Inputs{leaf({1, 2, 5, 7}, 20)};
     },
     [](const Inputs& in) {
       return adaptive_avg_pool2d(in[0], {3, 4});
     }},
});

using I64s = std::vector<int64_t>;

TEST(ConvOps, RecordTheAttributesOnnxExportNeeds) {
  Tensor x = zeros({1, 4, 9, 9}).requires_grad_(), w = zeros({6, 2, 3, 2}).requires_grad_();
  Tensor y = conv2d(x, w, {}, {2, 1}, {1, 0}, {1, 2}, 2);
  ASSERT_EQ(y.grad_fn()->name, "conv2d");
  const Attrs& a = y.grad_fn()->attrs;
  EXPECT_EQ(attr<I64s>(a, "kernel_shape"), (I64s{3, 2}));
  EXPECT_EQ(attr<I64s>(a, "strides"), (I64s{2, 1}));
  EXPECT_EQ(attr<I64s>(a, "pads"), (I64s{1, 0, 1, 0}));
  EXPECT_EQ(attr<I64s>(a, "dilations"), (I64s{1, 2}));
  EXPECT_EQ(attr<int64_t>(a, "group"), 2);

  Tensor y1 = conv1d(zeros({1, 4, 9}).requires_grad_(), zeros({4, 1, 5}), {}, 1, 2, 1, 4);
  ASSERT_EQ(y1.grad_fn()->name, "conv1d");
  EXPECT_EQ(attr<I64s>(y1.grad_fn()->attrs, "kernel_shape"), (I64s{5}));
  EXPECT_EQ(attr<I64s>(y1.grad_fn()->attrs, "pads"), (I64s{2, 2}));
  EXPECT_EQ(attr<int64_t>(y1.grad_fn()->attrs, "group"), 4);

  Tensor m = max_pool2d(x, {3, 3}, {}, {1, 1});
  ASSERT_EQ(m.grad_fn()->name, "max_pool2d");
  EXPECT_EQ(attr<I64s>(m.grad_fn()->attrs, "strides"), (I64s{3, 3}));  // defaults to the kernel
  EXPECT_EQ(attr<I64s>(m.grad_fn()->attrs, "pads"), (I64s{1, 1, 1, 1}));
  Tensor m1 = max_pool1d(zeros({1, 2, 9}).requires_grad_(), 3);
  EXPECT_EQ(attr<I64s>(m1.grad_fn()->attrs, "strides"), (I64s{3}));
  Tensor av = avg_pool2d(x, {2, 2}, {1, 1});
  EXPECT_EQ(attr<int64_t>(av.grad_fn()->attrs, "count_include_pad"), 1);
  Tensor ad = adaptive_avg_pool2d(x, {1});
  EXPECT_EQ(attr<I64s>(ad.grad_fn()->attrs, "output_size"), (I64s{1, 1}));
  EXPECT_EQ(ad.shape(), (Shape{1, 4, 1, 1}));
}

// The message of the ShapeError fn throws ("" when it throws none).
template <typename F>
std::string shape_error_of(F fn) {
  try {
    fn();
  } catch (const ShapeError& e) {
    return e.what();
  }
  return "";
}
#define EXPECT_MESSAGE_HAS(msg, part) \
  EXPECT_NE((msg).find(part), std::string::npos) << "message: " << (msg)

TEST(ConvOps, ShapeErrorsNameTheOpBothShapesAndTheRule) {
  EXPECT_EQ(shape_error_of([] {
              conv2d(zeros({8, 3, 32, 32}), zeros({16, 4, 3, 3}));
            }),
            "conv2d: input channels differ: input [8, 3, 32, 32] has 3 channels but weight "
            "[16, 4, 3, 3] expects 4 (input.size(1) must equal weight.size(1) * groups)");
  std::string m = shape_error_of([] {
    conv1d(zeros({2, 6, 10}), zeros({4, 4, 3}), {}, 1, 0, 1, 2);
  });
  EXPECT_MESSAGE_HAS(m, "conv1d: input channels differ: input [2, 6, 10]");
  EXPECT_MESSAGE_HAS(m, "weight [4, 4, 3]");
  m = shape_error_of([] { conv2d(zeros({1, 3, 2, 2}), zeros({4, 3, 3, 3})); });
  EXPECT_MESSAGE_HAS(m, "conv2d: input [1, 3, 2, 2] is too small for weight [4, 3, 3, 3]");
  m = shape_error_of([] { conv2d(zeros({1, 3, 5, 5}), zeros({4, 3, 3, 3}), zeros({3})); });
  EXPECT_MESSAGE_HAS(m, "conv2d: bias [3] does not match weight [4, 3, 3, 3]");
  m = shape_error_of([] { conv2d(zeros({1, 3, 5}), zeros({4, 3, 3})); });
  EXPECT_MESSAGE_HAS(m, "conv2d: input [1, 3, 5] and weight [4, 3, 3] must both be 4-D");

  m = shape_error_of([] { max_pool2d(zeros({1, 2, 2, 2}), {3, 3}); });
  EXPECT_MESSAGE_HAS(m, "max_pool2d: input [1, 2, 2, 2] is too small for kernel [3, 3]");
  m = shape_error_of([] { max_pool1d(zeros({1, 2, 6}), 2, 2, 2); });
  EXPECT_MESSAGE_HAS(m,
                     "max_pool1d: padding 2 is more than half the kernel [2] for input [1, 2, 6]");
  m = shape_error_of([] { avg_pool2d(zeros({2, 6, 6}), {2, 2}); });
  EXPECT_MESSAGE_HAS(m, "avg_pool2d: input [2, 6, 6] must be 4-D (B, C, H, W) (kernel [2, 2])");
  m = shape_error_of([] { adaptive_avg_pool2d(zeros({1, 2, 6, 6}), {0, 3}); });
  EXPECT_MESSAGE_HAS(m,
                     "adaptive_avg_pool2d: output_size [0, 3] is invalid for input [1, 2, 6, 6]");
}

// ---- float32 values and gradients through autograd against PyTorch ----

// |got − want| <= atol + rtol·|want|, elementwise.
struct Tol {
  double rtol, atol;
};
// The ops add no arithmetic to their kernels, so the kernel goldens' bound
// (tests/tensor/conv_test.cpp): ≤ 27 float32 products per output element, rounded in a different
// order by PyTorch.
constexpr Tol kGoldenF32{1e-4, 1e-5};

::testing::AssertionResult close(const Tensor& got_t, const Array& want_in, Tol tol) {
  if (!got_t.defined()) return ::testing::AssertionFailure() << "result undefined";
  Array got = got_t.data().to(kFloat64).contiguous(), want = want_in.to(kFloat64).contiguous();
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure()
           << fmt::format("shapes differ: {} vs {}", got.shape(), want.shape());
  const double *g = got.data<double>(), *w = want.data<double>();
  for (int64_t i = 0; i < got.numel(); ++i)
    if (!(std::abs(g[i] - w[i]) <= tol.atol + tol.rtol * std::abs(w[i])))
      return ::testing::AssertionFailure()
             << "element " << i << ": " << g[i] << " vs PyTorch " << w[i];
  return ::testing::AssertionSuccess();
}

Array golden(const std::string& name) {
  return load_npy(std::string(KILN_SOURCE_DIR) + "/tests/golden/conv/" + name + ".npy").data();
}

TEST(ConvOps, MatchPyTorchThroughAutograd) {
  {  // conv2d, strided + grouped + dilated, with bias
    const std::string n = "conv2d_strided_grouped";
    Tensor x(golden(n + "_x"), true), w(golden(n + "_w"), true), b(golden(n + "_b"), true);
    Tensor y = conv2d(x, w, b, {2, 1}, {1, 0}, {1, 2}, 2);
    EXPECT_TRUE(close(y, golden(n + "_y"), kGoldenF32));
    y.backward(Tensor(golden(n + "_dy")));
    EXPECT_TRUE(close(x.grad(), golden(n + "_dx"), kGoldenF32));
    EXPECT_TRUE(close(w.grad(), golden(n + "_dw"), kGoldenF32));
    EXPECT_TRUE(close(b.grad(), golden(n + "_db"), kGoldenF32));
  }
  {  // conv1d depthwise (NAS-BERT's separable convolution), with bias
    const std::string n = "conv1d_depthwise";
    Tensor x(golden(n + "_x"), true), w(golden(n + "_w"), true), b(golden(n + "_b"), true);
    Tensor y = conv1d(x, w, b, 1, 2, 1, 8);
    EXPECT_TRUE(close(y, golden(n + "_y"), kGoldenF32));
    y.backward(Tensor(golden(n + "_dy")));
    EXPECT_TRUE(close(x.grad(), golden(n + "_dx"), kGoldenF32));
    EXPECT_TRUE(close(w.grad(), golden(n + "_dw"), kGoldenF32));
    EXPECT_TRUE(close(b.grad(), golden(n + "_db"), kGoldenF32));
  }
  {
    Tensor x(golden("max_pool2d_x"), true);
    Tensor y = max_pool2d(x, {3, 2}, {2, 2}, {1, 1});
    EXPECT_TRUE(close(y, golden("max_pool2d_y"), kGoldenF32));
    y.backward(Tensor(golden("max_pool2d_dy")));
    EXPECT_TRUE(close(x.grad(), golden("max_pool2d_dx"), kGoldenF32));
  }
  {
    Tensor x(golden("avg_pool2d_x"), true);
    Tensor y = avg_pool2d(x, {3, 3}, {2, 1}, {1, 1});
    EXPECT_TRUE(close(y, golden("avg_pool2d_y"), kGoldenF32));
    y.backward(Tensor(golden("avg_pool2d_dy")));
    EXPECT_TRUE(close(x.grad(), golden("avg_pool2d_dx"), kGoldenF32));
  }
}

}  // namespace
}  // namespace kiln::testing
