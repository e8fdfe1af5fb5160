// Optimiser plumbing: groups by name, option validation, state_dict errors, in-place updates,
// thread-count independence, and gradient clipping.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/optim/optim.h"
#include "kiln/tensor/parallel.h"
#include "test_support.h"

namespace {

using kiln::Tensor;
using namespace kiln::optim;

Tensor param(std::vector<float> v) {
  return kiln::from_vector(v).requires_grad_();
}

TEST(ParamGroups, IsBiasOrNormPicksBiasesAndNormLayers) {
  for (const char* n : {"fc.bias", "bias", "encoder.layers.0.norm1.weight",
                        "encoder.layers.0.self_attn.in_proj_bias", "lstm.bias_ih_l0", "bn1.weight",
                        "ln_f.weight", "model.LayerNorm.weight"})
    EXPECT_TRUE(is_bias_or_norm(n)) << n;
  for (const char* n :
       {"fc.weight", "encoder.layers.0.linear1.weight", "embedding.weight", "lstm.weight_ih_l0"})
    EXPECT_FALSE(is_bias_or_norm(n)) << n;
}

TEST(ParamGroups, SplitGroupsByNameKeepsOrderAndOverrides) {
  NamedParameters ps = {{"fc1.weight", param({1})},
                        {"fc1.bias", param({2})},
                        {"norm.weight", param({3})},
                        {"fc2.weight", param({4})}};
  auto groups = split_groups(ps, is_bias_or_norm, {{"weight_decay", 0.0}});
  ASSERT_EQ(groups.size(), 2u);
  ASSERT_EQ(groups[0].params.size(), 2u);
  EXPECT_EQ(groups[0].params[0].first, "fc1.weight");
  EXPECT_EQ(groups[0].params[1].first, "fc2.weight");
  EXPECT_EQ(groups[1].params[0].first, "fc1.bias");
  EXPECT_EQ(groups[1].params[1].first, "norm.weight");

  AdamW opt(groups, AdamWOptions(1e-3).weight_decay(0.1));
  EXPECT_EQ(opt.option(0, "weight_decay"), 0.1);
  EXPECT_EQ(opt.option(1, "weight_decay"), 0.0);
  EXPECT_EQ(opt.option(1, "lr"), 1e-3);  // defaults fill what a group does not override
}

TEST(Optimizer, RejectsUnknownOptionsDuplicateNamesAndBadValues) {
  Tensor a = param({1}), b = param({2});
  try {
    Adam opt(std::vector<ParamGroup>{{{{"a", a}}, {{"momentum", 0.9}}}});
    FAIL() << "expected an error";
  } catch (const kiln::Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown option 'momentum'"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("beta1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(SGD(NamedParameters{{"a", a}, {"a", b}}, SGDOptions(0.1)), kiln::Error);
  EXPECT_THROW(SGD(NamedParameters{{"a", a}, {"b", a}}, SGDOptions(0.1)), kiln::Error);
  EXPECT_THROW(SGD(NamedParameters{{"a", a}}, SGDOptions(-1)), kiln::Error);
  EXPECT_THROW(SGD(NamedParameters{{"a", a}}, SGDOptions(0.1).nesterov(true)), kiln::Error);
  EXPECT_THROW(Adam(NamedParameters{{"a", a}}, AdamOptions().betas(1.0, 0.9)), kiln::Error);
  EXPECT_THROW(SGD(NamedParameters{}, SGDOptions(0.1)), kiln::Error);
}

TEST(Optimizer, SkipsParametersWithoutGradientAndUpdatesInPlace) {
  Tensor a = param({1, 2}), b = param({3});
  const float* a_ptr = a.data_ptr<float>();
  const uint64_t version = a.data().version();
  SGD opt(NamedParameters{{"a", a}, {"b", b}}, SGDOptions(0.5));
  a.set_grad(kiln::from_vector(std::vector<float>{2, 4}));
  opt.step();
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{0, 0}));
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{3}));
  EXPECT_EQ(a.data_ptr<float>(), a_ptr);   // same storage: modules keep their handles
  EXPECT_GT(a.data().version(), version);  // saved activations of the old values are detected
  EXPECT_NE(opt.state("a"), nullptr);
  EXPECT_EQ(opt.state("b"), nullptr);
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
}

TEST(Optimizer, UpdatesAreIdenticalAtOneAndManyThreads) {
  // 100k elements: above kGrainSize, so the update loop is split across threads.
  const int64_t n = 100000;
  kiln::testing::ScopedNumThreads scoped(1);
  auto run = [&](int threads) {
    scoped.set(threads);
    kiln::Generator gen(7);
    Tensor w = kiln::randn({n}, kiln::kFloat32, &gen).requires_grad_();
    Adam opt(NamedParameters{{"w", w}}, AdamOptions(1e-2).amsgrad(true).weight_decay(0.1));
    kiln::Generator ggen(11);
    for (int s = 0; s < 3; ++s) {
      w.set_grad(kiln::randn({n}, kiln::kFloat32, &ggen));
      opt.step();
    }
    return w.to_vector<float>();
  };
  std::vector<float> one = run(1), many = run(4);
  EXPECT_EQ(one, many);
}

// The fused pass (one parallel loop over every parameter's elements) against its reference twin,
// the per-parameter loop (fused(false)): the same values and state bit for bit, over parameters that
// straddle chunk boundaries in every way — empty, one element, odd sizes, one larger than a chunk,
// a float64 one, a strided one (updated through a contiguous copy) and one without a gradient —
// in two groups with different options, at 1 and 2 threads, Adam and AdamW.
TEST(Optimizer, FusedAdamMatchesPerParameterAdamBitForBit) {
  kiln::testing::ScopedNumThreads scoped(1);
  auto run = [&](bool adamw, bool fused, int threads) {
    scoped.set(threads);
    kiln::Generator gen(3);
    std::vector<Tensor> ps = {
        kiln::randn({0}, kiln::kFloat32, &gen),    kiln::randn({1}, kiln::kFloat32, &gen),
        kiln::randn({7, 3}, kiln::kFloat32, &gen), kiln::randn({70001}, kiln::kFloat32, &gen),
        kiln::randn({513}, kiln::kFloat64, &gen),  kiln::randn({9, 5}, kiln::kFloat32, &gen).t(),
        kiln::randn({4}, kiln::kFloat32, &gen)};
    for (Tensor& p : ps) p = p.detach().requires_grad_();
    EXPECT_FALSE(ps[5].data().is_contiguous());
    const std::vector<float> big_before = ps[3].to_vector<float>();
    std::vector<ParamGroup> groups = {
        {{{"e", ps[0]}, {"one", ps[1]}, {"w", ps[2]}, {"big", ps[3]}}, {}},
        {{{"f64", ps[4]}, {"strided", ps[5]}, {"nograd", ps[6]}},
         {{"lr", 3e-2}, {"amsgrad", 1.0}, {"weight_decay", 0.0}}}};
    AdamOptions o = AdamOptions(1e-2).weight_decay(0.05).fused(fused);
    std::unique_ptr<Optimizer> opt;
    if (adamw)
      opt = std::make_unique<AdamW>(groups, o);
    else
      opt = std::make_unique<Adam>(groups, o);
    kiln::Generator ggen(5);
    for (int step = 0; step < 3; ++step) {
      for (size_t i = 0; i + 1 < ps.size(); ++i)
        ps[i].set_grad(kiln::randn(ps[i].shape(), ps[i].dtype(), &ggen));
      opt->step();
    }
    EXPECT_NE(ps[3].to_vector<float>(), big_before);  // the steps did move the parameters
    std::vector<std::vector<double>> out;
    for (const Tensor& p : ps) out.push_back(p.to(kiln::kFloat64).to_vector<double>());
    for (const auto& [key, value] : opt->state_dict())
      out.push_back(value.to(kiln::kFloat64).contiguous().to_vector<double>());
    return out;
  };
  for (bool adamw : {false, true})
    for (int threads : {1, 2}) {
      SCOPED_TRACE(::testing::Message()
                   << (adamw ? "AdamW" : "Adam") << ", " << threads << " thread(s)");
      const auto reference = run(adamw, false, threads), fused = run(adamw, true, threads);
      ASSERT_EQ(fused.size(), reference.size());
      for (size_t i = 0; i < fused.size(); ++i) EXPECT_EQ(fused[i], reference[i]) << "entry " << i;
    }
}

TEST(Optimizer, StateDictRoundTripAndKeys) {
  Tensor w = param({1, 2, 3}), b = param({0.5});
  Adam opt(NamedParameters{{"fc.weight", w}, {"fc.bias", b}}, AdamOptions(0.1).amsgrad(true));
  w.set_grad(kiln::from_vector(std::vector<float>{1, -1, 2}));
  b.set_grad(kiln::from_vector(std::vector<float>{3}));
  opt.step();
  StateDict sd = opt.state_dict();
  std::vector<std::string> keys;
  for (const auto& [k, t] : sd) keys.push_back(k);
  for (const char* k :
       {"state.fc.weight.step", "state.fc.weight.exp_avg", "state.fc.weight.exp_avg_sq",
        "state.fc.weight.max_exp_avg_sq", "state.fc.bias.exp_avg", "param_groups.0.lr",
        "param_groups.0.beta2", "param_groups.0.amsgrad"})
    EXPECT_NE(std::find(keys.begin(), keys.end(), k), keys.end()) << k;

  Adam other(NamedParameters{{"fc.weight", param({1, 2, 3})}, {"fc.bias", param({0.5})}},
             AdamOptions(0.5));
  other.load_state_dict(sd);
  EXPECT_EQ(other.lr(), 0.1);
  ASSERT_NE(other.state("fc.weight"), nullptr);
  EXPECT_EQ(other.state("fc.weight")->step, 1);
  EXPECT_EQ(Tensor(other.state("fc.weight")->buffers.at("exp_avg")).to_vector<float>(),
            Tensor(opt.state("fc.weight")->buffers.at("exp_avg")).to_vector<float>());
}

TEST(Optimizer, LoadStateDictReportsEveryProblemAndChangesNothing) {
  Tensor w = param({1, 2, 3});
  SGD opt(NamedParameters{{"fc.weight", w}}, SGDOptions(0.1).momentum(0.9));
  w.set_grad(kiln::from_vector(std::vector<float>{1, 1, 1}));
  opt.step();
  StateDict sd = opt.state_dict();
  sd.emplace_back("state.encoder.weight.momentum_buffer", kiln::zeros({3}));
  sd.emplace_back("state.fc.weight.exp_avg", kiln::zeros({4}));
  sd.emplace_back("param_groups.3.lr", kiln::scalar_tensor(0.1, kiln::kFloat64));
  sd.emplace_back("optimizer_name", kiln::zeros({1}));

  Tensor w2 = param({1, 2, 3});
  SGD fresh(NamedParameters{{"fc.weight", w2}}, SGDOptions(0.3).momentum(0.9));
  try {
    fresh.load_state_dict(sd);
    FAIL() << "expected an error";
  } catch (const kiln::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("4 problem(s)"), std::string::npos) << m;
    EXPECT_NE(m.find("parameter 'encoder.weight'"), std::string::npos) << m;
    EXPECT_NE(m.find("has shape [4] but parameter 'fc.weight' has shape [3]"), std::string::npos)
        << m;
    EXPECT_NE(m.find("group 3"), std::string::npos) << m;
    EXPECT_NE(m.find("unknown key 'optimizer_name'"), std::string::npos) << m;
  }
  EXPECT_EQ(fresh.lr(), 0.3);
  EXPECT_EQ(fresh.state("fc.weight"), nullptr);
}

TEST(Optimizer, SetLrPerGroupAndAll) {
  SGD opt(std::vector<ParamGroup>{{{{"a", param({1})}}, {}}, {{{"b", param({1})}}, {{"lr", 0.5}}}},
          SGDOptions(0.1));
  EXPECT_EQ(opt.lr(0), 0.1);
  EXPECT_EQ(opt.lr(1), 0.5);
  opt.set_lr(1, 0.25);
  EXPECT_EQ(opt.lr(1), 0.25);
  opt.set_lr(0.01);
  EXPECT_EQ(opt.lr(0), 0.01);
  EXPECT_EQ(opt.lr(1), 0.01);
  EXPECT_THROW(opt.lr(2), kiln::Error);
}

TEST(ClipGradNorm, ScalesToMaxNormAndReturnsTotal) {
  Tensor a = param({0, 0}), b = param({0}), c = param({0});
  a.set_grad(kiln::from_vector(std::vector<float>{3, 4}));
  b.set_grad(kiln::from_vector(std::vector<float>{12}));
  // c has no gradient: skipped.
  const double total = clip_grad_norm_(std::vector<Tensor>{a, b, c}, 6.5);
  EXPECT_DOUBLE_EQ(total, 13.0);
  const double coef = 6.5 / (13.0 + 1e-6);
  EXPECT_NEAR(a.grad().to_vector<float>()[0], 3 * coef, 1e-6);
  EXPECT_NEAR(a.grad().to_vector<float>()[1], 4 * coef, 1e-6);
  EXPECT_NEAR(b.grad().to_vector<float>()[0], 12 * coef, 1e-6);
  EXPECT_FALSE(c.grad().defined());
  // Below the bound nothing changes.
  EXPECT_NEAR(clip_grad_norm_(std::vector<Tensor>{a, b}, 100.0), 6.5, 1e-5);
  EXPECT_NEAR(b.grad().to_vector<float>()[0], 12 * coef, 1e-6);
}

// The 2-norm of large float32 gradients (summed in fixed blocks in parallel, read in place) against
// a float64 reference sum, and the same bits at 1 and 2 threads; a strided gradient takes the
// copying path and agrees.
TEST(ClipGradNorm, LargeGradientsMatchAFloat64SumAtAnyThreadCount) {
  kiln::testing::ScopedNumThreads scoped(1);
  kiln::Generator gen(17);
  Tensor a = kiln::zeros({70001}).requires_grad_(), b = kiln::zeros({300, 7}).requires_grad_();
  const Tensor ga = kiln::randn({70001}, kiln::kFloat32, &gen);
  const Tensor gb = kiln::randn({7, 300}, kiln::kFloat32, &gen).t();  // strided
  double want = 0;
  for (const Tensor& g : {ga, gb})
    for (float v : g.contiguous().to_vector<float>()) want += static_cast<double>(v) * v;
  want = std::sqrt(want);
  std::vector<double> got;
  for (int threads : {1, 2}) {
    scoped.set(threads);
    a.set_grad(ga);
    b.set_grad(gb);
    got.push_back(clip_grad_norm_(std::vector<Tensor>{a, b}, 1e9));
  }
  EXPECT_NEAR(got[0], want, 1e-12 * want);
  EXPECT_EQ(got[0], got[1]);
}

TEST(ClipGradNorm, OtherNormsAndNonFinite) {
  Tensor a = param({0, 0, 0});
  a.set_grad(kiln::from_vector(std::vector<float>{1, -5, 2}));
  EXPECT_DOUBLE_EQ(
      clip_grad_norm_(NamedParameters{{"a", a}}, 100.0, std::numeric_limits<double>::infinity()),
      5.0);
  EXPECT_DOUBLE_EQ(clip_grad_norm_(NamedParameters{{"a", a}}, 100.0, 1.0), 8.0);
  a.set_grad(kiln::from_vector(std::vector<float>{1, std::numeric_limits<float>::infinity(), 2}));
  EXPECT_THROW(clip_grad_norm_(NamedParameters{{"a", a}}, 1.0, 2.0, /*error_if_nonfinite=*/true),
               kiln::Error);
}

TEST(ClipGradValue, ClampsEveryElement) {
  Tensor a = param({0, 0, 0});
  a.set_grad(kiln::from_vector(std::vector<float>{0.5, -5, 2}));
  clip_grad_value_(std::vector<Tensor>{a}, 1.0);
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{0.5, -1, 1}));
}

}  // namespace
