#pragma once
// Activation modules: elementwise (any shape in, same shape out) and Softmax / LogSoftmax over a
// dim.
#include <string>

#include "kiln/nn/module.h"
#include "kiln/nn/options.h"

namespace kiln::nn {

/// max(x, 0).
class ReLU : public Module {
 public:
  using Module::forward;
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& x) override { return relu(x); }
};

struct LeakyReLUOptions {
  KILN_ARG(double, negative_slope) = 0.01;
};
/// x if x > 0 else negative_slope·x.
class LeakyReLU : public Module {
 public:
  using Module::forward;
  explicit LeakyReLU(LeakyReLUOptions options = {}) : Module("LeakyReLU"), options_(options) {}
  Tensor forward(const Tensor& x) override { return leaky_relu(x, options_.negative_slope()); }
  std::string extra_repr() const override;

 private:
  LeakyReLUOptions options_;
};

struct GELUOptions {
  /// "none" (exact, erf) or "tanh" (the approximation).
  KILN_ARG(std::string, approximate) = "none";
};
/// x·Φ(x) (Hendrycks & Gimpel, 2016).
class GELU : public Module {
 public:
  using Module::forward;
  explicit GELU(GELUOptions options = {});
  Tensor forward(const Tensor& x) override { return gelu(x, options_.approximate()); }
  std::string extra_repr() const override;

 private:
  GELUOptions options_;
};

class Tanh : public Module {
 public:
  using Module::forward;
  Tanh() : Module("Tanh") {}
  Tensor forward(const Tensor& x) override { return tanh(x); }
};

/// 1 / (1 + e^(−x)).
class Sigmoid : public Module {
 public:
  using Module::forward;
  Sigmoid() : Module("Sigmoid") {}
  Tensor forward(const Tensor& x) override { return sigmoid(x); }
};

/// x·σ(x) (a.k.a. swish).
class SiLU : public Module {
 public:
  using Module::forward;
  SiLU() : Module("SiLU") {}
  Tensor forward(const Tensor& x) override { return silu(x); }
};

struct SoftmaxOptions {
  explicit SoftmaxOptions(int64_t dim = -1) : dim_(dim) {}
  KILN_ARG(int64_t, dim);
};
/// exp(x) / Σ_dim exp(x), along `dim`.
class Softmax : public Module {
 public:
  using Module::forward;
  explicit Softmax(SoftmaxOptions options = SoftmaxOptions())
      : Module("Softmax"), options_(options) {}
  Tensor forward(const Tensor& x) override { return softmax(x, options_.dim()); }
  std::string extra_repr() const override;

 private:
  SoftmaxOptions options_;
};

/// x − logsumexp_dim(x), along `dim`.
class LogSoftmax : public Module {
 public:
  using Module::forward;
  explicit LogSoftmax(SoftmaxOptions options = SoftmaxOptions())
      : Module("LogSoftmax"), options_(options) {}
  Tensor forward(const Tensor& x) override { return log_softmax(x, options_.dim()); }
  std::string extra_repr() const override;

 private:
  SoftmaxOptions options_;
};

/// The activation module named by `name` ("relu", "gelu", "tanh", "sigmoid", "silu", "leaky_relu",
/// "identity"/"linear"); throws listing the names otherwise.
ModulePtr make_activation(const std::string& name);

}  // namespace kiln::nn
