// Float64 central-difference checks of the losses and the composite modules (LSTM, GRU,
// multi-head attention, Transformer encoder layer). The PyTorch goldens in module_golden_test.cpp
// are float32 and compare against tolerances of ~1e-5, which a slightly wrong backward (a missing
// term of order 1e-4, a gate's derivative off in one branch) can pass; these checks, in float64 on
// small shapes, cannot. Inputs are kept off kinks (|x − y| away from 0, beta and delta; BCE
// probabilities inside (0, 1)).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/autograd/gradcheck.h"
#include "kiln/nn/nn.h"

namespace {

using kiln::Tensor;
namespace nn = kiln::nn;
namespace F = kiln::nn::functional;
using In = std::vector<Tensor>;

// A seeded float64 leaf uniform in [lo, hi).
Tensor leaf(const kiln::Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  kiln::Generator g(seed);
  Tensor u = kiln::rand(shape, kiln::kFloat64, &g);
  return (u * (hi - lo) + lo).detach().requires_grad_();
}

// A float64 leaf from values.
Tensor values(std::initializer_list<double> v, kiln::Shape shape, bool grad = true) {
  Tensor t = kiln::tensor(v, std::move(shape));
  return grad ? t.requires_grad_() : t;
}

// Runs `loss(inputs, reduction)` through gradcheck for each reduction.
void check_loss(const std::string& what,
                const std::function<Tensor(const In&, const std::string&)>& loss,
                const In& inputs) {
  for (const std::string reduction : {"none", "mean", "sum"}) {
    SCOPED_TRACE(what + " / " + reduction);
    kiln::GradcheckResult r =
        kiln::gradcheck([&](const In& v) { return loss(v, reduction); }, inputs);
    EXPECT_TRUE(r.ok) << r.message;
    EXPECT_GT(r.checked, 0);
  }
}

// Differences d = x − y with |d| in [0.1, 0.4] or [0.7, 1.5]: off 0 and off beta / delta = 0.5.
In regression_pair() {
  Tensor y = leaf({3, 4}, 11);
  Tensor d =
      kiln::tensor({0.1, -0.3, 0.9, -1.2, 0.25, -0.7, 1.5, -0.15, 0.4, -0.35, 0.8, -1.1}, {3, 4})
          .to(kiln::kFloat64);
  return {(y.detach() + d).detach().requires_grad_(), y};
}

TEST(LossGradcheck, BinaryCrossEntropyWithWeight) {
  check_loss(
      "binary_cross_entropy",
      [](const In& v, const std::string& r) {
        return F::binary_cross_entropy(v[0], v[1], v[2], r);
      },
      {leaf({3, 4}, 1, 0.1, 0.9), leaf({3, 4}, 2, 0.0, 1.0).detach(), leaf({4}, 3, 0.5, 2.0)});
}

TEST(LossGradcheck, BinaryCrossEntropyWithLogitsWeightAndPosWeight) {
  // Logits, soft targets, weight and pos_weight are all differentiated.
  check_loss("binary_cross_entropy_with_logits",
             [](const In& v, const std::string& r) {
               return F::binary_cross_entropy_with_logits(v[0], v[1], v[2], v[3], r);
             },
             {leaf({3, 4}, 4, -3.0, 3.0), leaf({3, 4}, 5, 0.0, 1.0), leaf({4}, 6, 0.5, 2.0),
              leaf({4}, 7, 0.5, 3.0)});
  check_loss("binary_cross_entropy_with_logits (plain)",
             [](const In& v, const std::string& r) {
               return F::binary_cross_entropy_with_logits(v[0], v[1], {}, {}, r);
             },
             {leaf({2, 5}, 8, -4.0, 4.0), leaf({2, 5}, 9, 0.0, 1.0)});
}

TEST(LossGradcheck, MseL1SmoothL1Huber) {
  check_loss(
      "mse_loss", [](const In& v, const std::string& r) { return F::mse_loss(v[0], v[1], r); },
      regression_pair());
  check_loss(
      "l1_loss", [](const In& v, const std::string& r) { return F::l1_loss(v[0], v[1], r); },
      regression_pair());
  check_loss(
      "smooth_l1_loss beta 0.5",
      [](const In& v, const std::string& r) { return F::smooth_l1_loss(v[0], v[1], 0.5, r); },
      regression_pair());
  check_loss(
      "huber_loss delta 0.5",
      [](const In& v, const std::string& r) { return F::huber_loss(v[0], v[1], 0.5, r); },
      regression_pair());
}

TEST(LossGradcheck, CosineEmbeddingBothBranchesAndMargin) {
  // Rows 0–1: y = 1. Row 2: y = −1 with cos ≈ 0.95 > margin (the hinge is active). Row 3: y = −1
  // with cos ≈ −0.9 < margin (the hinge is flat: gradient 0, also checked).
  Tensor x1 = values({0.5, -1.0, 0.8, 0.3,  //
                      1.2, 0.4, -0.6, 0.9,  //
                      0.7, 0.2, -0.4, 1.0,  //
                      -0.3, 0.8, 0.5, -1.1},
                     {4, 4});
  Tensor x2 = values({0.9, 0.3, -0.2, 0.6,  //
                      -0.5, 1.1, 0.4, 0.2,  //
                      0.8, 0.1, -0.3, 0.9,  //
                      0.4, -0.7, -0.6, 0.9},
                     {4, 4});
  Tensor y = values({1.0, 1.0, -1.0, -1.0}, {4}, false);
  check_loss("cosine_embedding_loss margin 0.2",
             [&](const In& v, const std::string& r) {
               return F::cosine_embedding_loss(v[0], v[1], y, 0.2, r);
             },
             {x1, x2});
}

TEST(LossGradcheck, CrossEntropyWithProbabilityTargets) {
  // Both the logits and the target probabilities are differentiated; with class weights and
  // label smoothing, over (B, K) and over (B, K, d) (the spatial form).
  check_loss("cross_entropy prob targets, weight, smoothing 0.2",
             [](const In& v, const std::string& r) {
               return F::cross_entropy(v[0], v[1], v[2], -100, 0.2, r);
             },
             {leaf({3, 4}, 21, -2.0, 2.0), leaf({3, 4}, 22, 0.05, 0.45),
              leaf({4}, 23, 0.5, 2.0).detach()});
  check_loss("cross_entropy prob targets, spatial",
             [](const In& v, const std::string& r) {
               return F::cross_entropy(v[0], v[1], {}, -100, 0.0, r);
             },
             {leaf({2, 3, 2}, 24, -2.0, 2.0), leaf({2, 3, 2}, 25, 0.05, 0.6)});
}

// ---------------------------------------------------------------- modules
// Converts every parameter and buffer of `m` to float64 in place (the module's own handles share
// the TensorImpl, so its forward sees the change), drawing the parameters afresh from a seeded
// U(−0.6, 0.6): the check then does not depend on the default initialisation (a zero-initialised
// weight would hide every gradient upstream of it).
void to_float64(nn::Module& m) {
  kiln::Generator g(99);
  for (auto& [n, p] : m.named_parameters())
    p.impl()->data = (kiln::rand(p.shape(), kiln::kFloat64, &g) * 1.2 - 0.6).data();
  for (auto& [n, b] : m.named_buffers())
    if (kiln::is_floating(b.dtype())) b.impl()->data = b.data().to(kiln::kFloat64);
}

// L = Σ_k sum(out_k · probe_k) with seeded float64 probes. Backward gives dL/dθ for every
// parameter and dL/dx for every input with requires_grad; each element is compared with
// (L(θ + ε) − L(θ − ε)) / 2ε, |analytical − numerical| <= 1e-6 + 1e-4·|numerical| (float64 with
// ε = 1e-6: truncation error O(ε²), rounding O(1e-16 / ε) = 1e-10).
void expect_module_gradients(nn::Module& m, const In& inputs,
                             const std::function<In(const In&)>& forward) {
  to_float64(m);
  m.train();
  std::vector<Tensor> probes;
  {
    kiln::NoGradGuard ng;
    kiln::Generator g(77);
    for (const Tensor& y : forward(inputs))
      probes.push_back(kiln::randn(y.shape(), kiln::kFloat64, &g));
  }
  auto loss = [&](const In& xs) {
    In outs = forward(xs);
    Tensor l = kiln::sum(kiln::mul(outs[0], probes[0]));
    for (size_t k = 1; k < outs.size(); ++k) l = l + kiln::sum(kiln::mul(outs[k], probes[k]));
    return l;
  };
  m.zero_grad();
  In xs;
  for (const Tensor& x : inputs) {
    Tensor c = x.detach().clone();
    xs.push_back(x.requires_grad() ? c.requires_grad_() : c);
  }
  loss(xs).backward();

  const double eps = 1e-6;
  int64_t checked = 0;
  auto compare = [&](const std::string& what, kiln::Array values, const Tensor& grad) {
    ASSERT_TRUE(grad.defined()) << what << " got no gradient";
    const std::vector<double> ana = grad.to(kiln::kFloat64).to_vector<double>();
    double* v = values.data<double>();
    kiln::NoGradGuard ng;
    for (int64_t k = 0; k < values.numel(); ++k) {
      const double saved = v[k];
      v[k] = saved + eps;
      const double up = loss(inputs).item<double>();
      v[k] = saved - eps;
      const double down = loss(inputs).item<double>();
      v[k] = saved;
      const double num = (up - down) / (2 * eps);
      ++checked;
      ASSERT_LE(std::abs(ana[k] - num), 1e-6 + 1e-4 * std::abs(num))
          << what << " element " << k << ": analytical " << ana[k] << " vs numerical " << num;
    }
  };
  for (const auto& [n, p] : m.named_parameters()) {
    ASSERT_EQ(p.dtype(), kiln::kFloat64) << n;
    compare("parameter " + n, p.data(), p.grad());
  }
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].requires_grad())
      compare("input " + std::to_string(i), inputs[i].data(), xs[i].grad());
  EXPECT_GT(checked, 0);
}

TEST(ModuleGradcheck, LstmBidirectionalTwoLayersWithInitialState) {
  kiln::manual_seed(1);
  nn::LSTM m(nn::LSTMOptions(3, 2).num_layers(2).bidirectional(true).batch_first(true));
  // x: (B=2, T=3, I=3)  h0, c0: (L·D=4, B=2, H=2)
  expect_module_gradients(m, {leaf({2, 3, 3}, 31), leaf({4, 2, 2}, 32), leaf({4, 2, 2}, 33)},
                          [&](const In& v) {
                            nn::RNNOutput r = m.forward_with_state(v[0], v[1], v[2]);
                            return In{r.output, r.h_n, r.c_n};
                          });
}

TEST(ModuleGradcheck, GruBidirectionalTwoLayers) {
  kiln::manual_seed(2);
  nn::GRU m(nn::GRUOptions(3, 2).num_layers(2).bidirectional(true));
  // x: (T=3, B=2, I=3)  h0: (4, 2, 2)
  expect_module_gradients(m, {leaf({3, 2, 3}, 41), leaf({4, 2, 2}, 42)}, [&](const In& v) {
    nn::RNNOutput r = m.forward_with_state(v[0], v[1]);
    return In{r.output, r.h_n};
  });
}

TEST(ModuleGradcheck, MultiheadAttentionCrossWithMasks) {
  kiln::manual_seed(3);
  nn::MultiheadAttention m(nn::MultiheadAttentionOptions(4, 2).batch_first(true));
  // query (B=2, L=3, E=4), key / value (2, S=4, 4); key 3 of batch 1 padded; additive (L, S) mask.
  Tensor padding = kiln::tensor({0, 0, 0, 0, 0, 0, 0, 1}, {2, 4}).to(kiln::kBool);
  Tensor additive = leaf({3, 4}, 54, -1.0, 0.0).detach();
  expect_module_gradients(
      m, {leaf({2, 3, 4}, 51), leaf({2, 4, 4}, 52), leaf({2, 4, 4}, 53)},
      [&](const In& v) { return In{m.forward(v[0], v[1], v[2], padding, additive)}; });
}

TEST(ModuleGradcheck, TransformerEncoderLayerPostAndPreNorm) {
  kiln::manual_seed(4);
  nn::TransformerEncoderLayer post(
      nn::TransformerEncoderLayerOptions(4, 2).dim_feedforward(6).dropout(0.0).batch_first(true));
  Tensor padding = kiln::tensor({0, 0, 0, 0, 0, 1}, {2, 3}).to(kiln::kBool);
  expect_module_gradients(post, {leaf({2, 3, 4}, 61)},
                          [&](const In& v) { return In{post.forward(v[0], {}, padding)}; });
  nn::TransformerEncoderLayer pre(nn::TransformerEncoderLayerOptions(4, 2)
                                      .dim_feedforward(6)
                                      .dropout(0.0)
                                      .activation("gelu")
                                      .norm_first(true));
  Tensor causal =
      kiln::tensor({0.0, -1e9, -1e9, 0.0, 0.0, -1e9, 0.0, 0.0, 0.0}, {3, 3}).to(kiln::kFloat64);
  expect_module_gradients(pre, {leaf({3, 2, 4}, 62)},
                          [&](const In& v) { return In{pre.forward(v[0], causal, {})}; });
}

}  // namespace
