// LR schedulers against torch.optim.lr_scheduler (goldens from tests/golden/make_optim_golden.py):
// the learning rate of each group (and the cycled momentum / beta1) after construction and every
// step().
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/io/npy.h"
#include "kiln/optim/optim.h"

namespace {

using kiln::Tensor;
using namespace kiln::optim;

const std::string kDir = std::string(KILN_SOURCE_DIR) + "/tests/golden/optim/";

// Schedules are scalar float64 recurrences that Kiln evaluates in PyTorch's order with the same
// libm (cos, pow), so they agree to the last bit in practice; 1e-14 relative allows one rounding of
// slack.
constexpr double kRtol = 1e-14;

struct Golden {
  std::vector<double> values;
  int64_t rows, cols;
  double at(int64_t r, int64_t c) const { return values[r * cols + c]; }
};

Golden load(const std::string& name) {
  const Tensor a = kiln::load_npy(kDir + "sched_" + name + ".npy");
  return {a.to_vector<double>(), a.size(0), a.size(1)};
}

// An optimiser over `groups` groups of one dummy parameter each; group g has lr = lr·(g + 1) (the
// script's make_opt).
template <typename Opt, typename Options>
std::unique_ptr<Opt> make(Options options, double lr, int groups = 1) {
  std::vector<ParamGroup> gs;
  for (int g = 0; g < groups; ++g)
    gs.push_back(
        {{{"p" + std::to_string(g), kiln::zeros({2}).requires_grad_()}}, {{"lr", lr * (g + 1)}}});
  return std::make_unique<Opt>(gs, options);
}

// Reads each group's lr (then the momentum-like option, when `momentum_key` is set) into a row.
std::vector<double> row(const Optimizer& opt, const std::string& momentum_key) {
  std::vector<double> r;
  for (size_t g = 0; g < opt.num_groups(); ++g) r.push_back(opt.lr(g));
  if (!momentum_key.empty())
    for (size_t g = 0; g < opt.num_groups(); ++g) r.push_back(opt.option(g, momentum_key));
  return r;
}

void expect_row(const Golden& golden, int64_t r, const std::vector<double>& got,
                const std::string& what) {
  ASSERT_EQ(static_cast<int64_t>(got.size()), golden.cols) << what;
  for (int64_t c = 0; c < golden.cols; ++c) {
    const double want = golden.at(r, c);
    ASSERT_LE(std::abs(got[c] - want), kRtol * std::abs(want))
        << what << " step " << r << " column " << c << ": kiln " << got[c] << " vs torch " << want;
  }
}

// Steps `sched` through the golden's rows.
template <typename Sched>
void check(const std::string& name, const Optimizer& opt, Sched& sched,
           const std::string& momentum_key = "") {
  Golden g = load(name);
  expect_row(g, 0, row(opt, momentum_key), name);
  for (int64_t r = 1; r < g.rows; ++r) {
    sched.step();
    expect_row(g, r, row(opt, momentum_key), name);
  }
}

TEST(StepLR, MatchesPyTorch) {
  auto opt = make<SGD>(SGDOptions(0.1), 0.1);
  StepLR s(*opt, 7, 0.5);
  check("steplr", *opt, s);
}

TEST(MultiStepLR, MatchesPyTorchWithRepeatedMilestone) {
  auto opt = make<SGD>(SGDOptions(0.1), 0.1);
  MultiStepLR s(*opt, {5, 12, 12, 30}, 0.3);
  check("multisteplr", *opt, s);
}

TEST(ExponentialLR, MatchesPyTorch) {
  auto opt = make<SGD>(SGDOptions(0.1), 0.1);
  ExponentialLR s(*opt, 0.95);
  check("exponentiallr", *opt, s);
}

TEST(CosineAnnealingLR, MatchesPyTorchPastTMaxWithTwoGroups) {
  auto opt = make<SGD>(SGDOptions(0.1), 0.1, 2);
  CosineAnnealingLR s(*opt, 20, 0.001);
  check("cosine_two_groups", *opt, s);
}

TEST(OneCycleLR, CosineCyclesSgdMomentum) {
  auto opt = make<SGD>(SGDOptions(0.1).momentum(0.9), 0.1);
  OneCycleLR s(*opt, OneCycleLROptions(0.5, 100));
  check("onecycle_cos_sgd", *opt, s, "momentum");
}

TEST(OneCycleLR, LinearThreePhaseCyclesAdamBeta1PerGroup) {
  auto opt = make<Adam>(AdamOptions(1e-3), 1e-3, 2);
  OneCycleLR s(*opt, OneCycleLROptions({0.01, 0.02}, 80)
                         .anneal_strategy("linear")
                         .three_phase(true)
                         .pct_start(0.25)
                         .div_factor(10.0)
                         .final_div_factor(100.0)
                         .base_momentum(0.8)
                         .max_momentum(0.9));
  check("onecycle_linear_three_phase_adam", *opt, s, "beta1");
}

TEST(OneCycleLR, SteppingPastTotalStepsThrows) {
  auto opt = make<SGD>(SGDOptions(0.1).momentum(0.9), 0.1);
  OneCycleLR s(*opt, OneCycleLROptions(0.5, 3));
  for (int i = 0; i < 3; ++i) s.step();
  EXPECT_THROW(s.step(), kiln::Error);
}

TEST(OneCycleLR, CycleMomentumNeedsMomentum) {
  auto opt = make<Adagrad>(AdagradOptions(0.1), 0.1);
  EXPECT_THROW(OneCycleLR(*opt, OneCycleLROptions(0.5, 10)), kiln::Error);
  EXPECT_NO_THROW(OneCycleLR(*opt, OneCycleLROptions(0.5, 10).cycle_momentum(false)));
}

TEST(WarmupDecay, LinearMatchesHuggingFaceScheduleInTorchLambdaLR) {
  auto opt = make<SGD>(SGDOptions(0.1), 0.1);
  WarmupDecay s(*opt, WarmupDecayOptions(10, 50));
  check("warmup_linear", *opt, s);
}

TEST(WarmupDecay, CosineWithFloorMatchesTorchLambdaLR) {
  auto opt = make<SGD>(SGDOptions(0.1), 0.1);
  WarmupDecay s(*opt, WarmupDecayOptions(8, 40).decay("cosine").min_lr_ratio(0.1));
  check("warmup_cosine_floor", *opt, s);
}

TEST(LambdaLR, PerGroupLambdas) {
  auto opt = make<SGD>(SGDOptions(0.1), 0.1, 2);
  LambdaLR s(*opt, {[](int64_t e) { return 1.0 / (1 + e); }, [](int64_t e) { return 0.5 * e; }});
  EXPECT_DOUBLE_EQ(opt->lr(0), 0.1);
  EXPECT_DOUBLE_EQ(opt->lr(1), 0.0);
  s.step();
  s.step();
  EXPECT_DOUBLE_EQ(opt->lr(0), 0.1 / 3);
  EXPECT_DOUBLE_EQ(opt->lr(1), 0.2);
}

// ReduceLROnPlateau with a scripted metric sequence (the golden's plateau_metrics.npy).
void check_plateau(const std::string& name, Optimizer& opt, ReduceLROnPlateau& s, double sign) {
  Golden g = load(name);
  std::vector<double> metrics = kiln::load_npy(kDir + "plateau_metrics.npy").to_vector<double>();
  ASSERT_EQ(static_cast<int64_t>(metrics.size()) + 1, g.rows);
  expect_row(g, 0, row(opt, ""), name);
  for (int64_t r = 1; r < g.rows; ++r) {
    s.step(sign * metrics[r - 1]);
    expect_row(g, r, row(opt, ""), name);
  }
}

TEST(ReduceLROnPlateau, MinRelWithCooldownAndFloorMatchesPyTorch) {
  auto opt = make<SGD>(SGDOptions(0.1), 0.1, 2);
  ReduceLROnPlateau s(*opt, ReduceLROnPlateauOptions()
                                .mode("min")
                                .factor(0.5)
                                .patience(2)
                                .threshold(0.01)
                                .cooldown(1)
                                .min_lr({0.01}));
  check_plateau("plateau_min_rel", *opt, s, 1.0);
}

TEST(ReduceLROnPlateau, MaxAbsMatchesPyTorch) {
  auto opt = make<SGD>(SGDOptions(0.1), 0.1);
  ReduceLROnPlateau s(*opt, ReduceLROnPlateauOptions()
                                .mode("max")
                                .factor(0.3)
                                .patience(1)
                                .threshold(0.02)
                                .threshold_mode("abs")
                                .min_lr({0.005}));
  check_plateau("plateau_max_abs", *opt, s, -1.0);
}

TEST(LRScheduler, StateDictResumesTheSequence) {
  auto a = make<SGD>(SGDOptions(0.1), 0.1);
  CosineAnnealingLR sa(*a, 20, 0.001);
  for (int i = 0; i < 7; ++i) sa.step();
  SchedulerState st = sa.state_dict();
  StateDict opt_state = a->state_dict();

  auto b = make<SGD>(SGDOptions(0.1), 0.1);
  CosineAnnealingLR sb(*b, 20, 0.001);
  b->load_state_dict(opt_state);
  sb.load_state_dict(st);
  for (int i = 0; i < 30; ++i) {
    sa.step();
    sb.step();
    ASSERT_EQ(a->lr(), b->lr()) << i;
  }
}

TEST(LRScheduler, RecordsInitialLrInTheGroups) {
  auto opt = make<SGD>(SGDOptions(0.1), 0.1, 2);
  StepLR s(*opt, 2, 0.5);
  EXPECT_EQ(opt->option(0, "initial_lr"), 0.1);
  EXPECT_EQ(opt->option(1, "initial_lr"), 0.2);
  EXPECT_EQ(s.base_lrs(), (std::vector<double>{0.1, 0.2}));
}

}  // namespace
