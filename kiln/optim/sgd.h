#pragma once
// Stochastic gradient descent with momentum (Polyak) or Nesterov momentum (Sutskever et al., 2013),
// as torch.optim.SGD (PyTorch 1.13):
//   g ← ∇ + wd·p                       (weight_decay ≠ 0)
//   b ← g (first step) or μ·b + (1 − τ)·g   (momentum μ ≠ 0, dampening τ)
//   g ← g + μ·b (nesterov) or b
//   p ← p − lr·g
// State per parameter: "momentum_buffer" (when μ ≠ 0).
#include "kiln/optim/optimizer.h"
#include "kiln/optim/options.h"

namespace kiln::optim {

struct SGDOptions {
  explicit SGDOptions(double lr) : lr_(lr) {}
  KILN_ARG(double, lr);
  KILN_ARG(double, momentum) = 0.0;
  KILN_ARG(double, dampening) = 0.0;
  KILN_ARG(double, weight_decay) = 0.0;
  /// Needs momentum > 0 and dampening = 0.
  KILN_ARG(bool, nesterov) = false;
  /// Ascend instead of descend.
  KILN_ARG(bool, maximize) = false;
};

class SGD : public Optimizer {
 public:
  SGD(NamedParameters params, SGDOptions options);
  /// Groups may override lr, momentum, dampening, weight_decay, nesterov (0/1), maximize (0/1).
  SGD(std::vector<ParamGroup> groups, SGDOptions options);

 protected:
  void update(const GroupOptions& options, Array& p, const Array& grad, ParamState& st) override;
  void validate(size_t group, const GroupOptions& options) const override;
};

}  // namespace kiln::optim
