#pragma once
// Linear, Identity and Flatten.
#include "kiln/nn/module.h"
#include "kiln/nn/options.h"

namespace kiln::nn {

struct LinearOptions {
  LinearOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  KILN_ARG(int64_t, in_features);
  KILN_ARG(int64_t, out_features);
  KILN_ARG(bool, bias) = true;
};

/// y = x·Wᵀ + b.   x: (*, in)  W: (out, in)  b: (out)  y: (*, out)
/// Parameters "weight" and (unless bias(false)) "bias". Default init as PyTorch: W ~
/// kaiming_uniform(a=√5), i.e. U(−1/√in, 1/√in), and b ~ U(−1/√in, 1/√in).
class Linear : public Module {
 public:
  using Module::forward;
  explicit Linear(LinearOptions options);
  Tensor forward(const Tensor& x) override;
  void reset_parameters(Generator* gen = nullptr) override;
  std::string extra_repr() const override;
  const LinearOptions& options() const { return options_; }

  Tensor weight;  // (out, in)
  Tensor bias;    // (out) or undefined

 private:
  LinearOptions options_;
};

/// y = x.
class Identity : public Module {
 public:
  using Module::forward;
  Identity() : Module("Identity") {}
  Tensor forward(const Tensor& x) override { return x; }
};

struct FlattenOptions {
  KILN_ARG(int64_t, start_dim) = 1;
  KILN_ARG(int64_t, end_dim) = -1;
};

/// Merges dims start_dim..end_dim (default: all but the batch dim).   x: (B, d1, d2, ...)  y: (B,
/// d1·d2·...)
class Flatten : public Module {
 public:
  using Module::forward;
  explicit Flatten(FlattenOptions options = {}) : Module("Flatten"), options_(options) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  FlattenOptions options_;
};

}  // namespace kiln::nn
