#include "kiln/nn/linear.h"

#include <cmath>

#include "kiln/nn/init.h"
#include "kiln/tensor/error.h"

namespace kiln::nn {

Linear::Linear(LinearOptions options) : Module("Linear"), options_(options) {
  KILN_CHECK(options.in_features() > 0 && options.out_features() > 0,
             "Linear: in_features and out_features must be positive, got {} and {}",
             options.in_features(), options.out_features());
  weight = register_parameter("weight", zeros({options.out_features(), options.in_features()}));
  if (options.bias()) bias = register_parameter("bias", zeros({options.out_features()}));
  reset_parameters();
}

void Linear::reset_parameters(Generator* gen) {
  init::kaiming_uniform_(weight, std::sqrt(5.0), init::FanMode::FanIn, "leaky_relu", gen);
  if (bias.defined()) {
    double bound = 1.0 / std::sqrt(static_cast<double>(options_.in_features()));
    init::uniform_(bias, -bound, bound, gen);
  }
}

Tensor Linear::forward(const Tensor& x) {
  KILN_CHECK_SHAPE(x.dim() >= 1 && x.size(-1) == options_.in_features(),
                   "{}: input shape {} does not end in in_features={} (x: (*, in) -> (*, out))",
                   where(), x.shape(), options_.in_features());
  return linear(x, weight, bias);
}

std::string Linear::extra_repr() const {
  return fmt::format("in_features={}, out_features={}, bias={}", options_.in_features(),
                     options_.out_features(), options_.bias());
}

Tensor Flatten::forward(const Tensor& x) {
  if (x.dim() == 0) return x.reshape({1});
  return flatten(x, options_.start_dim(), options_.end_dim());
}

std::string Flatten::extra_repr() const {
  return fmt::format("start_dim={}, end_dim={}", options_.start_dim(), options_.end_dim());
}

}  // namespace kiln::nn
