#pragma once
// RMSprop (Tieleman & Hinton, 2012; centered form from Graves, 2013), as torch.optim.RMSprop
// (1.13):
//   g ← ∇ + wd·p
//   s ← α·s + (1 − α)·g²
//   centered: ḡ ← α·ḡ + (1 − α)·g;  avg = √(s − ḡ²) + eps   else avg = √s + eps
//   momentum μ > 0: b ← μ·b + g / avg;  p ← p − lr·b        else p ← p − lr·g / avg
// State per parameter: "square_avg", "momentum_buffer" (μ > 0), "grad_avg" (centered), step count.
#include "kiln/optim/optimizer.h"
#include "kiln/optim/options.h"

namespace kiln::optim {

struct RMSpropOptions {
  explicit RMSpropOptions(double lr = 1e-2) : lr_(lr) {}
  KILN_ARG(double, lr);
  KILN_ARG(double, alpha) = 0.99;
  KILN_ARG(double, eps) = 1e-8;
  KILN_ARG(double, weight_decay) = 0.0;
  KILN_ARG(double, momentum) = 0.0;
  KILN_ARG(bool, centered) = false;
  KILN_ARG(bool, maximize) = false;
};

class RMSprop : public Optimizer {
 public:
  RMSprop(NamedParameters params, RMSpropOptions options = RMSpropOptions());
  /// Groups may override lr, alpha, eps, weight_decay, momentum, centered (0/1), maximize (0/1).
  RMSprop(std::vector<ParamGroup> groups, RMSpropOptions options = RMSpropOptions());

 protected:
  void update(const GroupOptions& options, Array& p, const Array& grad, ParamState& st) override;
  void validate(size_t group, const GroupOptions& options) const override;
};

}  // namespace kiln::optim
