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

/// Options of the named activations below. The defaults are PyTorch's; the Keras layers pass
/// Keras' explicitly (leaky_relu's negative_slope 0.2).
struct ActivationOptions {
  /// leaky_relu: the slope for x < 0.
  KILN_ARG(double, negative_slope) = 0.01;
  /// softmax / log_softmax: the dim normalised over.
  KILN_ARG(int64_t, dim) = -1;
};

/// Kiln's one table of activations by name, any shape in, same shape out: "" / "identity" /
/// "linear" (none), "relu", "relu6" (min(max(x, 0), 6)), "leaky_relu", "sigmoid", "tanh",
/// "softmax", "log_softmax", "gelu" (erf), "gelu_tanh", "silu" / "swish", "softplus"
/// (log(1 + e^x)), "exponential" (e^x). Throws listing the names when `name` is unknown.
Tensor activation(const std::string& name, const Tensor& x, const ActivationOptions& options = {});
/// Throws when `name` is not in the table; `where` names the caller in the message.
void check_activation(const std::string& name, const std::string& where);
/// The activation as a module: ReLU, LeakyReLU, GELU, Tanh, Sigmoid, SiLU, Softmax, LogSoftmax or
/// Identity where one exists, else an Activation module calling activation(name, x).
ModulePtr make_activation(const std::string& name, const ActivationOptions& options = {});

/// activation(name, x, options) as a module (for the names without a class of their own).
class Activation : public Module {
 public:
  using Module::forward;
  explicit Activation(std::string name, ActivationOptions options = {});
  Tensor forward(const Tensor& x) override { return activation(name_, x, options_); }
  std::string extra_repr() const override { return name_; }

 private:
  std::string name_;
  ActivationOptions options_;
};

}  // namespace kiln::nn
