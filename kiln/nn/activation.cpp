#include "kiln/nn/activation.h"

#include "kiln/nn/linear.h"
#include "kiln/tensor/error.h"

namespace kiln::nn {

std::string LeakyReLU::extra_repr() const {
  return fmt::format("negative_slope={}", options_.negative_slope());
}

GELU::GELU(GELUOptions options) : Module("GELU"), options_(std::move(options)) {
  KILN_CHECK(options_.approximate() == "none" || options_.approximate() == "tanh",
             "GELU: approximate must be \"none\" or \"tanh\", got \"{}\"", options_.approximate());
}
std::string GELU::extra_repr() const {
  return options_.approximate() == "none" ? ""
                                          : fmt::format("approximate='{}'", options_.approximate());
}

std::string Softmax::extra_repr() const {
  return fmt::format("dim={}", options_.dim());
}
std::string LogSoftmax::extra_repr() const {
  return fmt::format("dim={}", options_.dim());
}

namespace {

using ActivationFn = Tensor (*)(const Tensor&, const ActivationOptions&);

// The one table: name -> function. Modules and the Keras layers both read it.
const std::vector<std::pair<std::string, ActivationFn>>& activation_table() {
  static const std::vector<std::pair<std::string, ActivationFn>> table = {
      {"identity", [](const Tensor& x, const ActivationOptions&) { return x; }},
      {"linear", [](const Tensor& x, const ActivationOptions&) { return x; }},
      {"relu", [](const Tensor& x, const ActivationOptions&) { return relu(x); }},
      {"relu6", [](const Tensor& x, const ActivationOptions&) { return clamp(x, 0.0, 6.0); }},
      {"leaky_relu", [](const Tensor& x,
                        const ActivationOptions& o) { return leaky_relu(x, o.negative_slope()); }},
      {"sigmoid", [](const Tensor& x, const ActivationOptions&) { return sigmoid(x); }},
      {"tanh", [](const Tensor& x, const ActivationOptions&) { return tanh(x); }},
      {"softmax", [](const Tensor& x, const ActivationOptions& o) { return softmax(x, o.dim()); }},
      {"log_softmax",
       [](const Tensor& x, const ActivationOptions& o) { return log_softmax(x, o.dim()); }},
      {"gelu", [](const Tensor& x, const ActivationOptions&) { return gelu(x); }},
      {"gelu_tanh", [](const Tensor& x, const ActivationOptions&) { return gelu(x, "tanh"); }},
      {"silu", [](const Tensor& x, const ActivationOptions&) { return silu(x); }},
      {"swish", [](const Tensor& x, const ActivationOptions&) { return silu(x); }},
      // softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^(−|x|)), stable for large |x|.
      {"softplus",
       [](const Tensor& x, const ActivationOptions&) { return relu(x) + log1p(exp(neg(abs(x)))); }},
      {"exponential", [](const Tensor& x, const ActivationOptions&) { return exp(x); }},
  };
  return table;
}

ActivationFn find_activation(const std::string& name, const std::string& where) {
  for (const auto& [n, fn] : activation_table())
    if (n == name) return fn;
  std::vector<std::string> names;
  for (const auto& entry : activation_table()) names.push_back(entry.first);
  throw Error(fmt::format("{}: unknown activation \"{}\" (known: \"\", {})", where, name,
                          fmt::join(names, ", ")));
}

}  // namespace

Tensor activation(const std::string& name, const Tensor& x, const ActivationOptions& options) {
  if (name.empty()) return x;
  return find_activation(name, "activation")(x, options);
}

void check_activation(const std::string& name, const std::string& where) {
  if (!name.empty()) find_activation(name, where);
}

Activation::Activation(std::string name, ActivationOptions options)
    : Module("Activation"), name_(std::move(name)), options_(options) {
  check_activation(name_, "Activation");
}

ModulePtr make_activation(const std::string& name, const ActivationOptions& options) {
  check_activation(name, "make_activation");
  if (name == "relu") return std::make_shared<ReLU>();
  if (name == "gelu") return std::make_shared<GELU>();
  if (name == "gelu_tanh") return std::make_shared<GELU>(GELUOptions().approximate("tanh"));
  if (name == "tanh") return std::make_shared<Tanh>();
  if (name == "sigmoid") return std::make_shared<Sigmoid>();
  if (name == "silu" || name == "swish") return std::make_shared<SiLU>();
  if (name == "leaky_relu")
    return std::make_shared<LeakyReLU>(LeakyReLUOptions().negative_slope(options.negative_slope()));
  if (name == "softmax") return std::make_shared<Softmax>(SoftmaxOptions(options.dim()));
  if (name == "log_softmax") return std::make_shared<LogSoftmax>(SoftmaxOptions(options.dim()));
  if (name.empty() || name == "identity" || name == "linear") return std::make_shared<Identity>();
  return std::make_shared<Activation>(name, options);
}

}  // namespace kiln::nn
