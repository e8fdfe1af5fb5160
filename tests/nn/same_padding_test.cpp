// "same" padding at any stride (nn/padding.h, TensorFlow's rule) in Conv1d, Conv2d, MaxPool1d,
// MaxPool2d and AvgPool2d, against PyTorch with the padding applied by F.pad (goldens from
// tests/golden/make_same_padding_golden.py): output shape ⌈in / stride⌉, values and input
// gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "kiln/autograd/functions.h"
#include "kiln/io/npy.h"
#include "kiln/nn/nn.h"
#include "kiln/nn/padding.h"

namespace kiln {
namespace {

const std::string kSameDir = std::string(KILN_SOURCE_DIR) + "/tests/golden/same_padding/";

Tensor golden(const std::string& name) {
  return load_npy(kSameDir + name + ".npy");
}

// Single conv / pool layers: at most 36 float32 products per output, summed in another order than
// ATen's: a few ulps of O(1) values. 1e-5 keeps headroom and still catches a padding off by one
// pixel (errors O(0.1)).
constexpr double kRtol = 1e-5, kAtol = 1e-5;

void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  std::vector<float> g = got.to_vector<float>(), w = want.to_vector<float>();
  for (size_t i = 0; i < g.size(); ++i)
    ASSERT_LE(std::abs(g[i] - w[i]), kAtol + kRtol * std::abs(w[i])) << what << " at " << i;
}

// Runs `module` on the case's x, compares y, then backpropagates sum(y · dy) and compares dx.
void check_case(nn::Module& module, const std::string& name) {
  Tensor x = golden(name + "_x").requires_grad_();
  Tensor y = module.forward(x);
  expect_close(y, golden(name + "_y"), name + " y");
  sum(mul(y, golden(name + "_dy"))).backward();
  expect_close(x.grad(), golden(name + "_dx"), name + " dx");
}

std::vector<int64_t> params(const std::string& name) {
  return golden(name + "_params").to_vector<int64_t>();
}

TEST(SamePadding, TensorFlowRuleSplitsTheOddPixelToTheEnd) {
  EXPECT_EQ(nn::same_padding(9, 3, 1), (std::pair<int64_t, int64_t>{1, 1}));
  EXPECT_EQ(nn::same_padding(9, 4, 1), (std::pair<int64_t, int64_t>{1, 2}));  // PyTorch's "same"
  EXPECT_EQ(nn::same_padding(9, 3, 2), (std::pair<int64_t, int64_t>{1, 1}));  // out 5
  EXPECT_EQ(nn::same_padding(8, 3, 2), (std::pair<int64_t, int64_t>{0, 1}));  // out 4
  EXPECT_EQ(nn::same_padding(8, 2, 2), (std::pair<int64_t, int64_t>{0, 0}));
  EXPECT_EQ(nn::same_padding(10, 3, 2, 2), (std::pair<int64_t, int64_t>{1, 2}));
  EXPECT_EQ(nn::same_pads({1, 1, 9, 8}, {3, 3}, {2, 2}, {1, 1}),
            (std::vector<int64_t>{0, 1, 1, 1}));  // {left, right, top, bottom}
}

TEST(SamePadding, Conv2dMatchesPyTorchAtStride1And2) {
  for (const std::string name :
       {"conv2d_s1_even_kernel", "conv2d_s2", "conv2d_s2_dilated", "conv2d_s2_no_pad_needed"}) {
    SCOPED_TRACE(name);
    const Tensor w = golden(name + "_w");
    const std::vector<int64_t> p = params(name);  // kh, kw, sh, sw, dh, dw
    nn::Conv2d conv(nn::Conv2dOptions(w.size(1), w.size(0), {p[0], p[1]})
                        .stride({p[2], p[3]})
                        .dilation({p[4], p[5]})
                        .padding("same"));
    conv.load_state_dict(nn::StateDict({{"weight", w}, {"bias", golden(name + "_b")}}));
    check_case(conv, name);
  }
}

TEST(SamePadding, Conv1dMatchesPyTorchAtStride2) {
  const std::string name = "conv1d_s2";
  const Tensor w = golden(name + "_w");
  const std::vector<int64_t> p = params(name);  // k, s, d
  nn::Conv1d conv(
      nn::Conv1dOptions(w.size(1), w.size(0), p[0]).stride(p[1]).dilation(p[2]).padding("same"));
  conv.load_state_dict(nn::StateDict({{"weight", w}, {"bias", golden(name + "_b")}}));
  check_case(conv, name);
}

TEST(SamePadding, PoolingMatchesTensorFlowsRule) {
  for (const std::string name : {"max_pool2d_k3_s2", "max_pool2d_k2_s1"}) {
    SCOPED_TRACE(name);
    const std::vector<int64_t> p = params(name);
    nn::MaxPool2d pool(nn::Pool2dOptions({p[0], p[1]}).stride({p[2], p[3]}).padding("same"));
    check_case(pool, name);
  }
  {
    const std::string name = "max_pool1d_k3_s2";
    const std::vector<int64_t> p = params(name);  // k, s, d
    nn::MaxPool1d pool(nn::MaxPool1dOptions(p[0]).stride(p[1]).padding_mode("same"));
    check_case(pool, name);
  }
  for (const std::string name : {"avg_pool2d_k3_s2", "avg_pool2d_k2_s2_odd"}) {
    SCOPED_TRACE(name);
    const std::vector<int64_t> p = params(name);
    nn::AvgPool2d pool(nn::Pool2dOptions({p[0], p[1]})
                           .stride({p[2], p[3]})
                           .padding("same")
                           .count_include_pad(false));
    check_case(pool, name);
  }
}

}  // namespace
}  // namespace kiln
