#include "kiln/nn/init.h"

#include <cmath>

#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"

namespace kiln::nn::init {
namespace {

// Writes `values` into t's storage: an in-place edit outside the graph (bumps the version).
Tensor& assign(Tensor& t, const char* op, const Array& values) {
  KILN_CHECK(t.defined(), "init::{}: tensor is undefined", op);
  Array dst = t.data();
  dst.copy_(values);
  return t;
}

void check_floating(const Tensor& t, const char* op) {
  KILN_CHECK(t.defined(), "init::{}: tensor is undefined", op);
  KILN_CHECK_TYPE(is_floating(t.dtype()), "init::{}: tensor must be floating point, got {}", op,
                  t.dtype());
}

}  // namespace

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  KILN_CHECK_SHAPE(
      t.dim() >= 2,
      "init: fan in and fan out need a tensor with at least 2 dims (out, in, ...), got shape {}",
      t.shape());
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

double calculate_gain(const std::string& nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "conv1d" || nonlinearity == "conv2d" ||
      nonlinearity == "conv3d" || nonlinearity == "conv_transpose1d" ||
      nonlinearity == "conv_transpose2d" || nonlinearity == "sigmoid")
    return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") {
    double slope = param < 0 ? 0.01 : param;
    return std::sqrt(2.0 / (1.0 + slope * slope));
  }
  if (nonlinearity == "selu") return 3.0 / 4.0;
  throw Error("init::calculate_gain: unsupported nonlinearity '" + nonlinearity +
              "' (linear, conv1d, conv2d, sigmoid, tanh, relu, leaky_relu, selu)");
}

Tensor& uniform_(Tensor& t, double a, double b, Generator* gen) {
  check_floating(t, "uniform_");
  KILN_CHECK(a <= b, "init::uniform_: lower bound {} exceeds upper bound {}", a, b);
  return assign(t, "uniform_", kernels::rand(t.shape(), a, b, t.dtype(), gen));
}

Tensor& normal_(Tensor& t, double mean, double std, Generator* gen) {
  check_floating(t, "normal_");
  KILN_CHECK(std >= 0, "init::normal_: std must be >= 0, got {}", std);
  return assign(t, "normal_", kernels::randn(t.shape(), mean, std, t.dtype(), gen));
}

Tensor& trunc_normal_(Tensor& t, double mean, double std, double a, double b, Generator* gen) {
  check_floating(t, "trunc_normal_");
  KILN_CHECK(a < b && std > 0, "init::trunc_normal_: need a < b and std > 0, got a={} b={} std={}",
             a, b, std);
  KILN_CHECK(b > mean - 10 * std && a < mean + 10 * std,
             "init::trunc_normal_: [{}, {}] lies more than 10 std from the mean {} (std {}): "
             "almost every draw "
             "would be rejected",
             a, b, mean, std);
  // Draw in float64, redraw the out-of-range entries until none is left: exactly the truncated law.
  Array v = kernels::randn(t.shape(), mean, std, kFloat64, gen);
  double* p = v.data<double>();
  std::vector<int64_t> redo;
  for (int64_t i = 0; i < v.numel(); ++i)
    if (p[i] < a || p[i] > b) redo.push_back(i);
  while (!redo.empty()) {
    Array fresh = kernels::randn({static_cast<int64_t>(redo.size())}, mean, std, kFloat64, gen);
    const double* f = fresh.data<double>();
    std::vector<int64_t> still;
    for (size_t j = 0; j < redo.size(); ++j) {
      if (f[j] < a || f[j] > b) {
        still.push_back(redo[j]);
      } else {
        p[redo[j]] = f[j];
      }
    }
    redo.swap(still);
  }
  return assign(t, "trunc_normal_", v);
}

Tensor& constant_(Tensor& t, double value) {
  KILN_CHECK(t.defined(), "init::constant_: tensor is undefined");
  Array dst = t.data();
  dst.fill_(value);
  return t;
}
Tensor& zeros_(Tensor& t) {
  return constant_(t, 0.0);
}
Tensor& ones_(Tensor& t) {
  return constant_(t, 1.0);
}

Tensor& xavier_uniform_(Tensor& t, double gain, Generator* gen) {
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  double a = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  return uniform_(t, -a, a, gen);
}

Tensor& xavier_normal_(Tensor& t, double gain, Generator* gen) {
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  double std = gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  return normal_(t, 0.0, std, gen);
}

namespace {
double kaiming_std(const Tensor& t, double a, FanMode mode, const std::string& nonlinearity,
                   const char* op) {
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  int64_t fan = mode == FanMode::FanIn ? fan_in : fan_out;
  KILN_CHECK_SHAPE(fan > 0, "init::{}: fan is 0 for a tensor of shape {}", op, t.shape());
  return calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan));
}
}  // namespace

Tensor& kaiming_uniform_(Tensor& t, double a, FanMode mode, const std::string& nonlinearity,
                         Generator* gen) {
  double bound = std::sqrt(3.0) * kaiming_std(t, a, mode, nonlinearity, "kaiming_uniform_");
  return uniform_(t, -bound, bound, gen);
}

Tensor& kaiming_normal_(Tensor& t, double a, FanMode mode, const std::string& nonlinearity,
                        Generator* gen) {
  return normal_(t, 0.0, kaiming_std(t, a, mode, nonlinearity, "kaiming_normal_"), gen);
}

}  // namespace kiln::nn::init
