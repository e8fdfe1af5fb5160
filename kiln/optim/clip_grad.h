#pragma once
// Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_. Parameters without a
// gradient are skipped. The clipped gradient replaces the stored one (a new array: a stored
// gradient may be a broadcast view, which must not be written through).
#include <vector>

#include "kiln/optim/optimizer.h"

namespace kiln::optim {

/// Scales all gradients by min(1, max_norm / (total + 1e-6)), total = ‖(‖g_1‖_p, ‖g_2‖_p, ...)‖_p —
/// the p-norm of all gradients together (p = norm_type; infinity for the max-norm). Returns total
/// (computed in float64). With error_if_nonfinite, a NaN / ±∞ total throws instead of clipping.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);
double clip_grad_norm_(const NamedParameters& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);
/// Clamps every gradient element into [−clip_value, clip_value].
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);
void clip_grad_value_(const NamedParameters& params, double clip_value);

}  // namespace kiln::optim
