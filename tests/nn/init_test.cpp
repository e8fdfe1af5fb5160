// nn::init and each layer's default initialisation: PyTorch's formulas, tested as distributions
// (Kiln's counter-based generator differs from PyTorch's, so values cannot match bit for bit).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/nn/nn.h"

namespace {

using kiln::Tensor;
namespace nn = kiln::nn;
namespace init = kiln::nn::init;

struct Stats {
  double mean, std, min, max;
};

Stats stats(const Tensor& t) {
  std::vector<double> v = t.to_vector<double>();
  double m = 0;
  for (double x : v) m += x;
  m /= static_cast<double>(v.size());
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  s = std::sqrt(s / static_cast<double>(v.size() - 1));
  return {m, s, *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end())};
}

// Sampling tolerances for n draws: the sample mean has standard error σ/√n and the sample std about
// σ/√(2n); 5 standard errors makes a false failure (seeded, so never flaky) practically impossible
// while a wrong formula (a factor √2 or √3 off) is far outside.
void expect_uniform(const Tensor& t, double bound, const char* what) {
  Stats s = stats(t);
  const double n = static_cast<double>(t.numel()), sigma = bound / std::sqrt(3.0);
  EXPECT_GE(s.min, -bound) << what;
  EXPECT_LE(s.max, bound) << what;
  // With >= 9000 draws, both ends come within 2% of the bound (P(miss) = 0.99^n).
  EXPECT_LT(s.min, -bound * 0.98) << what << ": the draws should reach close to the bound";
  EXPECT_GT(s.max, bound * 0.98) << what << ": the draws should reach close to the bound";
  EXPECT_NEAR(s.mean, 0.0, 5 * sigma / std::sqrt(n)) << what;
  EXPECT_NEAR(s.std, sigma, 5 * sigma / std::sqrt(2 * n)) << what;
}

void expect_normal(const Tensor& t, double mean, double sigma, const char* what) {
  Stats s = stats(t);
  const double n = static_cast<double>(t.numel());
  EXPECT_NEAR(s.mean, mean, 5 * sigma / std::sqrt(n)) << what;
  EXPECT_NEAR(s.std, sigma, 5 * sigma / std::sqrt(2 * n)) << what;
}

TEST(Init, FanAndGain) {
  Tensor w = kiln::zeros({16, 4, 3, 5});
  auto [fan_in, fan_out] = init::calculate_fan_in_and_fan_out(w);
  EXPECT_EQ(fan_in, 4 * 15);
  EXPECT_EQ(fan_out, 16 * 15);
  EXPECT_THROW(init::calculate_fan_in_and_fan_out(kiln::zeros({3})), kiln::ShapeError);
  EXPECT_DOUBLE_EQ(init::calculate_gain("relu"), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(init::calculate_gain("tanh"), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(init::calculate_gain("leaky_relu"), std::sqrt(2.0 / (1 + 0.01 * 0.01)));
  EXPECT_DOUBLE_EQ(init::calculate_gain("leaky_relu", std::sqrt(5.0)), std::sqrt(1.0 / 3.0));
  EXPECT_DOUBLE_EQ(init::calculate_gain("selu"), 0.75);
  EXPECT_THROW(init::calculate_gain("softmax"), kiln::Error);
}

TEST(Init, DistributionsMatchTheirFormulas) {
  kiln::Generator gen(42);
  Tensor w = kiln::zeros({400, 250});  // fan_in 250, fan_out 400
  init::xavier_uniform_(w, 1.0, &gen);
  expect_uniform(w, std::sqrt(6.0 / 650), "xavier_uniform");
  init::xavier_normal_(w, 2.0, &gen);
  expect_normal(w, 0, 2.0 * std::sqrt(2.0 / 650), "xavier_normal");
  init::kaiming_uniform_(w, 0.0, init::FanMode::FanIn, "relu", &gen);
  expect_uniform(w, std::sqrt(2.0) * std::sqrt(3.0 / 250), "kaiming_uniform relu fan_in");
  init::kaiming_normal_(w, 0.0, init::FanMode::FanOut, "relu", &gen);
  expect_normal(w, 0, std::sqrt(2.0) / std::sqrt(400.0), "kaiming_normal relu fan_out");
  init::uniform_(w, -0.3, 0.3, &gen);
  expect_uniform(w, 0.3, "uniform");
  init::normal_(w, 1.5, 0.2, &gen);
  expect_normal(w, 1.5, 0.2, "normal");
  init::constant_(w, 0.25);
  EXPECT_EQ(stats(w).min, 0.25);
  EXPECT_EQ(stats(w).max, 0.25);
  init::zeros_(w);
  EXPECT_EQ(stats(w).max, 0.0);
  init::ones_(w);
  EXPECT_EQ(stats(w).min, 1.0);
}

TEST(Init, TruncNormalStaysInBoundsWithTheTruncatedMoments) {
  kiln::Generator gen(3);
  Tensor w = kiln::zeros({200000});
  init::trunc_normal_(w, 0.0, 1.0, -1.0, 2.0, &gen);
  Stats s = stats(w);
  EXPECT_GE(s.min, -1.0);
  EXPECT_LE(s.max, 2.0);
  // Moments of N(0, 1) truncated to [a, b] = [−1, 2]: mean = (φ(a) − φ(b)) / Z, var = 1 + (aφ(a) −
  // bφ(b)) / Z − mean², Z = Φ(b) − Φ(a).
  auto phi = [](double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI); };
  auto Phi = [](double x) { return 0.5 * (1 + std::erf(x / std::sqrt(2.0))); };
  const double Z = Phi(2) - Phi(-1), mean = (phi(-1) - phi(2)) / Z;
  const double var = 1 + (-1 * phi(-1) - 2 * phi(2)) / Z - mean * mean;
  EXPECT_NEAR(s.mean, mean, 5 * std::sqrt(var / 200000));
  EXPECT_NEAR(s.std, std::sqrt(var), 5 * std::sqrt(var / 400000));
}

TEST(Init, SameSeedSameValues) {
  kiln::Generator g1(9), g2(9), g3(10);
  Tensor a = kiln::zeros({64, 32}), b = kiln::zeros({64, 32}), c = kiln::zeros({64, 32});
  init::kaiming_uniform_(a, std::sqrt(5.0), init::FanMode::FanIn, "leaky_relu", &g1);
  init::kaiming_uniform_(b, std::sqrt(5.0), init::FanMode::FanIn, "leaky_relu", &g2);
  init::kaiming_uniform_(c, std::sqrt(5.0), init::FanMode::FanIn, "leaky_relu", &g3);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  // The initialiser really drew: U(−1/√32, 1/√32) values, and another seed gives others.
  expect_uniform(a, 1.0 / std::sqrt(32.0), "kaiming_uniform_ seed 9");
  EXPECT_NE(a.to_vector<float>(), c.to_vector<float>());
}

TEST(DefaultInit, LinearAndConvUseKaimingUniformSqrt5AndFanInBias) {
  kiln::manual_seed(5);
  nn::Linear lin(nn::LinearOptions(300, 400));
  expect_uniform(lin.weight, 1.0 / std::sqrt(300.0), "Linear.weight");
  EXPECT_LE(stats(lin.bias).max, 1.0 / std::sqrt(300.0));
  EXPECT_GE(stats(lin.bias).min, -1.0 / std::sqrt(300.0));
  nn::Conv2d conv(nn::Conv2dOptions(32, 64, 3).groups(2));  // fan_in = 16·9
  expect_uniform(conv.weight, 1.0 / std::sqrt(144.0), "Conv2d.weight");
  EXPECT_LE(stats(conv.bias).max, 1.0 / 12.0);
}

TEST(DefaultInit, RecurrentEmbeddingNormAndAttention) {
  kiln::Generator gen(17);
  nn::LSTM lstm(nn::LSTMOptions(30, 64).num_layers(2));
  lstm.reset_parameters(&gen);
  for (const auto& [n, p] : lstm.named_parameters()) {
    EXPECT_LE(stats(p).max, 0.125) << n;
    EXPECT_GE(stats(p).min, -0.125) << n;
  }
  expect_uniform(lstm.named_parameters()[1].second, 0.125, "LSTM.weight_hh_l0");

  nn::Embedding emb(nn::EmbeddingOptions(500, 64).padding_idx(-1));
  EXPECT_EQ(emb.padding_idx(), 499);
  expect_normal(kiln::narrow(emb.weight, 0, 0, 499), 0.0, 1.0, "Embedding.weight");
  EXPECT_EQ(stats(emb.weight.select(0, 499)).max, 0.0);
  EXPECT_EQ(stats(emb.weight.select(0, 499)).min, 0.0);

  nn::LayerNorm ln(nn::LayerNormOptions(8));
  EXPECT_EQ(stats(ln.weight).min, 1.0);
  EXPECT_EQ(stats(ln.bias).max, 0.0);

  nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(128, 4));
  expect_uniform(mha.in_proj_weight, std::sqrt(6.0 / (128 + 384)), "MHA.in_proj_weight");
  EXPECT_EQ(stats(mha.in_proj_bias).max, 0.0);
  EXPECT_EQ(stats(mha.out_proj->bias).max, 0.0);
  expect_uniform(mha.out_proj->weight, 1.0 / std::sqrt(128.0), "MHA.out_proj.weight");
}

TEST(DefaultInit, ResetParametersWithAGeneratorIsReproducible) {
  auto make = [] {
    return nn::sequential({std::make_shared<nn::Linear>(nn::LinearOptions(4, 8)),
                           std::make_shared<nn::Conv1d>(nn::Conv1dOptions(2, 3, 3)),
                           std::make_shared<nn::GRU>(nn::GRUOptions(3, 5))});
  };
  auto a = make(), b = make();
  kiln::Generator ga(123), gb(123);
  a->reset_parameters(&ga);
  b->reset_parameters(&gb);
  for (size_t i = 0; i < a->parameters().size(); ++i)
    EXPECT_EQ(a->parameters()[i].to_vector<float>(), b->parameters()[i].to_vector<float>());
}

}  // namespace
