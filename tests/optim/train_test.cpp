// End-to-end: a two-layer network built from raw parameter tensors (test_optim does not link
// kiln_nn) fits a sine with AdamW, no decay on biases, cosine annealing and gradient clipping.
#include <gtest/gtest.h>

#include "kiln/autograd/functions.h"
#include "kiln/optim/optim.h"

namespace {

using kiln::Tensor;
namespace optim = kiln::optim;

TEST(Training, TwoLayerNetFitsASineWithAdamW) {
  kiln::Generator gen(7);
  auto uniform = [&](kiln::Shape s, double bound) {
    return kiln::mul(kiln::rand(s, kiln::kFloat32, &gen) - 0.5, 2 * bound)
        .detach()
        .requires_grad_();
  };
  optim::NamedParameters params = {{"fc1.weight", uniform({32, 1}, 1.0)},
                                   {"fc1.bias", uniform({32}, 1.0)},
                                   {"fc2.weight", uniform({1, 32}, 0.18)},
                                   {"fc2.bias", uniform({1}, 0.18)}};
  auto forward = [&](const Tensor& x) {
    Tensor h = kiln::tanh(kiln::linear(x, params[0].second, params[1].second));
    return kiln::linear(h, params[2].second, params[3].second);
  };
  Tensor x = kiln::linspace(-3.0, 3.0, 64).reshape({64, 1});
  Tensor y = kiln::sin(x);
  optim::AdamW opt(optim::split_groups(params, optim::is_bias_or_norm, {{"weight_decay", 0.0}}),
                   optim::AdamWOptions(2e-2).weight_decay(1e-4));
  ASSERT_EQ(opt.num_groups(), 2u);
  optim::CosineAnnealingLR sched(opt, 500, 1e-4);
  double first = 0, last = 0;
  for (int step = 0; step < 500; ++step) {
    opt.zero_grad();
    Tensor loss = kiln::mean(kiln::square(forward(x) - y));
    loss.backward();
    optim::clip_grad_norm_(params, 1.0);
    opt.step();
    sched.step();
    (step == 0 ? first : last) = loss.item<float>();
  }
  EXPECT_GT(first, 0.1);
  EXPECT_LT(last, 2e-3);
}

}  // namespace
