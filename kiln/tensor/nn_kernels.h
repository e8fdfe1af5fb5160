#pragma once
// Fused neural-network kernels on Arrays (no autograd): softmax / log_softmax, layer norm, softmax
// cross-entropy, NLL, dropout, batch norm and the attention row pass, each forward with its
// backward. float32 and float64; row sums accumulate in float64; rows are split across threads, and
// every result is the same at any thread count (each row is reduced by one thread in a fixed order;
// column sums combine fixed blocks in order).
//
// Legend: R = rows (product of the leading dims), D = normalised / row length, K = classes,
// N = loss rows (batch times spatial positions), B = batch, C = channels, S = spatial size.
//
// Every fast kernel has a naive float64 twin `*_reference` that the tests compare against.
#include <cstdint>

#include "kiln/tensor/array.h"

namespace kiln::kernels {

// ------------------------------------------------------------------ softmax, log_softmax
/// y = exp(x − max) / Σ exp(x − max) along `dim` (max subtracted first: softmax is shift-invariant
/// and this keeps exp() <= 1). x: any shape, any strides, float  ->  y: x's shape, contiguous.
Array softmax(const Array& x, int64_t dim);
/// y = x − max − log Σ exp(x − max) along `dim`.
Array log_softmax(const Array& x, int64_t dim);
/// dx = y ⊙ (dy − Σ_dim dy ⊙ y), y the softmax output.   dy, y: same shape  ->  dx: that shape.
Array softmax_backward(const Array& dy, const Array& y, int64_t dim);
/// dx = dy − exp(y) · Σ_dim dy, y the log_softmax output.
Array log_softmax_backward(const Array& dy, const Array& y, int64_t dim);

Array softmax_reference(const Array& x, int64_t dim);
Array log_softmax_reference(const Array& x, int64_t dim);
Array softmax_backward_reference(const Array& dy, const Array& y, int64_t dim);
Array log_softmax_backward_reference(const Array& dy, const Array& y, int64_t dim);

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

// ------------------------------------------------------------------ softmax cross-entropy, NLL
/// Per-row softmax cross-entropy with class weights w (1 when undefined), label smoothing ε and an
/// ignored class id, as PyTorch defines it (p = softmax(x), t = target):
///   loss_i = (1 − ε) · w_t · (−log p_t) + (ε / K) · Σ_c w_c · (−log p_c),   0 when t ==
///   ignore_index.
/// With `compute_grad`, the same pass over the logits also writes d loss_i / d x_i:
///   grad_ic = p_c · ((1 − ε)·w_t + (ε/K)·Σ_k w_k) − (ε/K)·w_c − (1 − ε)·w_t·[c == t].
struct CrossEntropyForward {
  Array loss;                 // (N) per-row loss, 0 on ignored rows; logits' dtype
  Array grad;                 // (N, K) unit-upstream gradient, or undefined
  double total_weight = 0.0;  // Σ w_t over rows that are not ignored (the "mean" denominator)
};
/// logits: (N, K) float   target: (N) int64 class ids in [0, K) or ignore_index   weight: (K) or
/// undefined. Throws naming the row when a class id is out of range.
CrossEntropyForward softmax_cross_entropy(const Array& logits, const Array& target,
                                          const Array& weight, int64_t ignore_index,
                                          double label_smoothing, bool compute_grad);
CrossEntropyForward softmax_cross_entropy_reference(const Array& logits, const Array& target,
                                                    const Array& weight, int64_t ignore_index,
                                                    double label_smoothing);
/// dx_i = grad_i · row_scale_i: grad (N, K) from the forward, row_scale (N) or a single element
/// broadcast to all rows  ->  (N, K) contiguous.
Array scale_rows(const Array& grad, const Array& row_scale);

/// loss_i = −w_t · log_probs[i, t] (0 when t == ignore_index).   log_probs: (N, K)  target: (N).
CrossEntropyForward nll_loss(const Array& log_probs, const Array& target, const Array& weight,
                             int64_t ignore_index);
/// d loss / d log_probs for per-row upstream g (N) (or one element): −w_t · g_i at [i, t], else 0.
Array nll_loss_backward(const Array& g, const Array& target, const Array& weight,
                        int64_t ignore_index, int64_t K, DType dtype);

// ------------------------------------------------------------------ dropout
/// Inverted dropout with a counter-based mask: element i (row-major index) is kept when
/// dropout_keep(seed, offset + i, p), and kept elements are scaled by 1/(1 − p); p == 1 gives
/// zeros. The mask is never stored: the backward calls this again on dy with the same seed and
/// offset. x: any shape  ->  x's shape, contiguous.
Array dropout(const Array& x, double p, uint64_t seed, uint64_t offset);

/// Dropout's keep decision for counter c, the scalar definition the vectorised kernel reproduces:
/// with (k0, k1) the two halves of Generator::hash(seed, c >> 32), the 32-bit hash
/// h = fmix32(fmix32(lo32(c) ^ k0) + k1) (MurmurHash3's finaliser, a bijection, in 32-bit lanes
/// that vectorise, unlike a 64-bit hash per element) keeps the element when
/// (h >> 8) >= round(p · 2²⁴). Over any 2³² consecutive counters h takes every value once.
bool dropout_keep(uint64_t seed, uint64_t c, double p);

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

// ------------------------------------------------------------------ attention rows
/// In place on scores (*, Tq, Tk) contiguous: s ← softmax(scale · s + mask) along the last dim,
/// mask additive and broadcastable to scores (or undefined). A row whose entries are all −inf
/// (fully masked) becomes all zeros instead of NaN: it attends to nothing, and gets zero output and
/// zero gradient.
void attention_softmax_(Array& scores, double scale, const Array& mask);
/// In place on dp (*, Tq, Tk): dp ← scale · p ⊙ (dp − Σ_k dp ⊙ p), the softmax backward of the
/// attention probabilities p, times the score scale.
void attention_softmax_backward_(Array& dp, const Array& p, double scale);

}  // namespace kiln::kernels
