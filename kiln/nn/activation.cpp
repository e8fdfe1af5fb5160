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

ModulePtr make_activation(const std::string& name) {
  if (name == "relu") return std::make_shared<ReLU>();
  if (name == "gelu") return std::make_shared<GELU>();
  if (name == "gelu_tanh") return std::make_shared<GELU>(GELUOptions().approximate("tanh"));
  if (name == "tanh") return std::make_shared<Tanh>();
  if (name == "sigmoid") return std::make_shared<Sigmoid>();
  if (name == "silu" || name == "swish") return std::make_shared<SiLU>();
  if (name == "leaky_relu") return std::make_shared<LeakyReLU>();
  if (name == "identity" || name == "linear") return std::make_shared<Identity>();
  throw Error(
      fmt::format("make_activation: unknown activation '{}' (relu, gelu, gelu_tanh, tanh, sigmoid, "
                  "silu, leaky_relu, identity)",
                  name));
}

}  // namespace kiln::nn
