#pragma once
// Fused normalisation kernels on Arrays (no autograd), each forward with its backward: layer norm
// and batch norm.
// float32 and float64; row sums accumulate in float64; rows are split across threads, and every
// result is the same at any thread count (each row is reduced by one thread in a fixed order;
// column sums combine fixed blocks in order). Every fast kernel has a naive float64 twin
// `*_reference` that the tests compare against.
//
// Legend: R = rows (product of the leading dims), D = normalised / row length, B = batch,
// C = channels, S = spatial size.
#include <cstdint>

#include "kiln/tensor/array.h"

namespace kiln::kernels {

// ------------------------------------------------------------------ layer norm
/// y = (x − μ) · rstd · w + b over the last `D` elements of each row, rstd = 1/√(σ² + eps), σ²
/// biased.
struct LayerNormForward {
  Array y;     // x's shape (contiguous)
  Array mean;  // (R) float64
  Array rstd;  // (R) float64
};
/// x: (*, D) viewed as (R, D)   weight, bias: (D) or undefined (then 1 and 0).
LayerNormForward layer_norm(const Array& x, int64_t D, const Array& weight, const Array& bias,
                            double eps);

struct LayerNormGrads {
  Array dx;       // x's shape, or undefined when not asked for
  Array dweight;  // (D), or undefined
  Array dbias;    // (D), or undefined
};
/// With x̂ = (x − μ)·rstd and g = dy ⊙ w:  dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)) per row,
/// dweight = Σ_rows dy ⊙ x̂, dbias = Σ_rows dy.   dy, x: (R, D)-viewable; mean, rstd from the
/// forward.
LayerNormGrads layer_norm_backward(const Array& dy, const Array& x, const Array& mean,
                                   const Array& rstd, const Array& weight, int64_t D, bool need_dx,
                                   bool need_dweight, bool need_dbias);

LayerNormForward layer_norm_reference(const Array& x, int64_t D, const Array& weight,
                                      const Array& bias, double eps);
LayerNormGrads layer_norm_backward_reference(const Array& dy, const Array& x, const Array& weight,
                                             int64_t D, double eps);

// ------------------------------------------------------------------ residual dropout + layer norm
/// Post-LN BERT's sub-layer output in one pass per row:  s = x + dropout(h),  y = layer_norm(s),
/// with dropout's counter mask over h's row-major index (element i kept when
/// dropout_keep(seed, offset + i, p), kept values scaled by 1/(1 − p); p == 0: no mask). Replaces
/// three passes (dropout, add, layer norm) and their two intermediate arrays; s is kept for the
/// backward. keep = false (inference): s is built in y's row and normalised there, and only y is
/// returned — with p == 0, bit for bit what add then layer_norm give, in one pass and no array for s.
///   x, h: (*, D) viewed as (R, D)   weight, bias: (D) or undefined.
struct AddLayerNormForward {
  Array y;     // x's shape (contiguous)
  Array sum;   // s = x + dropout(h), x's shape: the layer norm's input, saved for backward
  Array mean;  // (R) float64
  Array rstd;  // (R) float64
};
AddLayerNormForward dropout_add_layer_norm(const Array& x, const Array& h, double p, uint64_t seed,
                                           uint64_t offset, int64_t D, const Array& weight,
                                           const Array& bias, double eps, bool keep = true);

struct AddLayerNormGrads {
  Array dx;       // the gradient of s (x's shape), or undefined when not asked for
  Array dh;       // dropout(dx) with the forward's mask, or undefined
  Array dweight;  // (D), or undefined
  Array dbias;    // (D), or undefined
};
/// Gradients of dropout_add_layer_norm: dx = layer_norm_backward's dx at s, dh = dx ⊙ mask/(1 − p)
/// (written in the same pass over each row).   dy, sum: (R, D)-viewable; mean, rstd from the forward.
AddLayerNormGrads dropout_add_layer_norm_backward(const Array& dy, const Array& sum,
                                                  const Array& mean, const Array& rstd,
                                                  const Array& weight, int64_t D, double p,
                                                  uint64_t seed, uint64_t offset, bool need_dx,
                                                  bool need_dh, bool need_dweight, bool need_dbias);

/// Naive twins: s by dropout_keep() element by element in float64, then the layer-norm twins.
AddLayerNormForward dropout_add_layer_norm_reference(const Array& x, const Array& h, double p,
                                                     uint64_t seed, uint64_t offset, int64_t D,
                                                     const Array& weight, const Array& bias,
                                                     double eps);
AddLayerNormGrads dropout_add_layer_norm_backward_reference(const Array& dy, const Array& x,
                                                            const Array& h, double p, uint64_t seed,
                                                            uint64_t offset, const Array& weight,
                                                            int64_t D, double eps);

// ------------------------------------------------------------------ batch norm
/// Per-channel statistics of x (B, C, *) over every dim but 1: mean and biased variance, (C)
/// float64.
struct BatchNormStats {
  Array mean;
  Array var;
};
BatchNormStats batch_norm_stats(const Array& x);
/// y = (x − mean_c) · rstd_c · w_c + b_c with rstd = 1/√(var + eps).   x: (B, C, *)  mean, var: (C)
/// weight, bias: (C) or undefined  ->  x's shape.
Array batch_norm_forward(const Array& x, const Array& mean, const Array& var, const Array& weight,
                         const Array& bias, double eps);
struct BatchNormGrads {
  Array dx, dweight, dbias;  // x's shape, (C), (C); undefined when not asked for
};
/// Gradients of batch_norm_forward. With `batch_stats` (training) mean/var are the batch's own, so
/// dx carries their dependence on x:  dx = w·rstd·(dy − mean(dy) − x̂·mean(dy ⊙ x̂)) per channel;
/// otherwise (running statistics) dx = w·rstd·dy. dweight = Σ dy ⊙ x̂, dbias = Σ dy.
BatchNormGrads batch_norm_backward(const Array& dy, const Array& x, const Array& mean,
                                   const Array& var, const Array& weight, double eps,
                                   bool batch_stats, bool need_dx, bool need_dweight,
                                   bool need_dbias);

}  // namespace kiln::kernels
