#pragma once
// Adagrad (Duchi et al., 2011), as torch.optim.Adagrad (1.13), dense gradients. With t the step
// count:
//   g ← ∇ + wd·p;   clr = lr / (1 + (t − 1)·lr_decay)
//   s ← s + g²;     p ← p − clr·g / (√s + eps)
// State per parameter: "sum" (starts at initial_accumulator_value) and the step count.
#include "kiln/optim/optimizer.h"
#include "kiln/optim/options.h"

namespace kiln::optim {

struct AdagradOptions {
  explicit AdagradOptions(double lr = 1e-2) : lr_(lr) {}
  KILN_ARG(double, lr);
  KILN_ARG(double, lr_decay) = 0.0;
  KILN_ARG(double, weight_decay) = 0.0;
  KILN_ARG(double, initial_accumulator_value) = 0.0;
  KILN_ARG(double, eps) = 1e-10;
  KILN_ARG(bool, maximize) = false;
};

class Adagrad : public Optimizer {
 public:
  Adagrad(NamedParameters params, AdagradOptions options = AdagradOptions());
  /// Groups may override lr, lr_decay, weight_decay, initial_accumulator_value, eps, maximize
  /// (0/1).
  Adagrad(std::vector<ParamGroup> groups, AdagradOptions options = AdagradOptions());

 protected:
  void update(const GroupOptions& options, Array& p, const Array& grad, ParamState& st) override;
  void validate(size_t group, const GroupOptions& options) const override;
};

}  // namespace kiln::optim
