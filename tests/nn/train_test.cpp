// End-to-end: small nn models trained a few hundred steps reach a loss bound (seeded,
// deterministic). test_nn links kiln_nn only, so the update is a plain SGD-with-momentum loop on
// the raw values here; the optimisers themselves are checked against PyTorch in tests/optim.
#include <gtest/gtest.h>

#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/nn/nn.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/ops.h"

namespace {

using kiln::Tensor;
namespace nn = kiln::nn;

// v ← μ·v + g;  p ← p − lr·v, in place on each parameter's values.
class MomentumSgd {
 public:
  MomentumSgd(nn::NamedTensors params, double lr, double momentum)
      : params_(std::move(params)), lr_(lr), momentum_(momentum) {
    for (const auto& [n, p] : params_)
      velocity_.push_back(kiln::kernels::zeros(p.shape(), p.dtype()));
  }
  void step() {
    kiln::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      Tensor g = params_[i].second.grad();
      if (!g.defined()) continue;
      kiln::kernels::binary_(kiln::kernels::BinaryOp::Mul, velocity_[i], momentum_);
      kiln::kernels::axpy_(velocity_[i], 1.0, g.data());
      kiln::Array p = params_[i].second.data();
      kiln::kernels::axpy_(p, -lr_, velocity_[i]);
    }
  }

 private:
  nn::NamedTensors params_;
  std::vector<kiln::Array> velocity_;
  double lr_, momentum_;
};

TEST(Training, MlpLearnsXor) {
  kiln::Generator gen(2024);
  auto model = nn::sequential({std::make_shared<nn::Linear>(nn::LinearOptions(2, 8)),
                               std::make_shared<nn::Tanh>(),
                               std::make_shared<nn::Linear>(nn::LinearOptions(8, 1))});
  model->reset_parameters(&gen);
  Tensor x = kiln::tensor({0.f, 0.f, 0.f, 1.f, 1.f, 0.f, 1.f, 1.f}, {4, 2});
  Tensor y = kiln::tensor({0.f, 1.f, 1.f, 0.f}, {4, 1});
  MomentumSgd opt(model->named_parameters(), 0.5, 0.9);
  nn::BCEWithLogitsLoss loss_fn;
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    model->zero_grad();
    Tensor loss = loss_fn(model->forward(x), y);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item<float>();
  }
  EXPECT_GT(first, 0.5);
  EXPECT_LT(last, 0.05);
  std::vector<float> p = kiln::sigmoid(model->forward(x)).to_vector<float>();
  EXPECT_LT(p[0], 0.1f);
  EXPECT_GT(p[1], 0.9f);
  EXPECT_GT(p[2], 0.9f);
  EXPECT_LT(p[3], 0.1f);
}

TEST(Training, GruLearnsToRecallTheFirstInput) {
  kiln::Generator gen(11);
  auto gru = std::make_shared<nn::GRU>(nn::GRUOptions(1, 8).batch_first(true));
  auto head = std::make_shared<nn::Linear>(nn::LinearOptions(8, 1));
  gru->reset_parameters(&gen);
  head->reset_parameters(&gen);
  nn::NamedTensors params = gru->named_parameters();
  for (auto& [n, p] : head->named_parameters()) params.emplace_back("head." + n, p);
  MomentumSgd opt(params, 0.5, 0.9);
  kiln::Generator data(5);
  double first = 0, last = 0;
  const int steps = 400;
  for (int step = 0; step < steps; ++step) {
    Tensor seq = kiln::rand({16, 5, 1}, kiln::kFloat32, &data);  // (B, T, 1)
    Tensor target = seq.select(1, 0);                            // (B, 1): the first element
    gru->zero_grad();
    head->zero_grad();
    nn::RNNOutput r = gru->forward_with_state(seq);
    Tensor loss = nn::functional::mse_loss(head->forward(r.h_n.select(0, 0)), target);
    loss.backward();
    opt.step();
    if (step == 0) first = loss.item<float>();
    if (step >= steps - 20) last += loss.item<float>() / 20;  // mean of the last 20 batches
  }
  // Predicting the mean (0.5) scores 1/12 ≈ 0.083; recalling the first input does far better.
  EXPECT_GT(first, 0.05);
  EXPECT_LT(last, 0.01);
}

}  // namespace
