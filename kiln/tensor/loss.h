#pragma once
// Fused loss kernels on Arrays (no autograd), each forward with its backward: softmax
// cross-entropy (class weights, label smoothing, an ignored class) and NLL.
// float32 and float64; row sums accumulate in float64; rows are split across threads, and every
// result is the same at any thread count (each row is reduced by one thread in a fixed order;
// column sums combine fixed blocks in order). Every fast kernel has a naive float64 twin
// `*_reference` that the tests compare against.
//
// Legend: N = loss rows (batch times spatial positions), K = classes.
#include <cstdint>

#include "kiln/tensor/array.h"

namespace kiln::kernels {

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

}  // namespace kiln::kernels
