#pragma once
// Fused softmax kernels on Arrays (no autograd), each forward with its backward: softmax and
// log_softmax along any dim, and the attention row pass (scaled, masked softmax in place).
// float32 and float64; row sums accumulate in float64; rows are split across threads, and every
// result is the same at any thread count (each row is reduced by one thread in a fixed order;
// column sums combine fixed blocks in order). Every fast kernel has a naive float64 twin
// `*_reference` that the tests compare against.
//
// Legend: O / I = the dims before / after the softmax dim, K = its size; Tq, Tk = query and key
// lengths.
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
// ------------------------------------------------------------------ attention rows
/// In place on scores (*, Tq, Tk) contiguous: s ← softmax(scale · s + mask) along the last dim,
/// mask additive and broadcastable to scores (or undefined). A row whose entries are all −inf
/// (fully masked) becomes all zeros instead of NaN: it attends to nothing, and gets zero output and
/// zero gradient.
void attention_softmax_(Array& scores, double scale, const Array& mask);
/// softmax(scale · q·kᵀ + mask)·v without gradients, one (batch, head) entry at a time: each
/// entry's (Tq, Tk) scores live in a per-task scratch block between its two GEMMs and its softmax,
/// so no (*, Tq, Tk) array is ever made (the inference path of scaled_dot_product_attention).
///   q: (*, Tq, d)  k: (*, Tk, d)  v: (*, Tk, dv)  mask: additive, broadcastable to (*, Tq, Tk), or
///   undefined  ->  (*, Tq, dv). Rows of q, k, v may be strided (unit stride along the last dim is
///   used in place). Fully masked rows give zeros, as attention_softmax_. With two or more batch
///   dims (B, H, Tq, dv) the result is a view of (B, Tq, H, dv) storage, so that merging the heads
///   (transpose(1, 2).reshape) copies nothing.
Array attention_no_grad(const Array& q, const Array& k, const Array& v, const Array& mask,
                        double scale);
/// In place on dp (*, Tq, Tk): dp ← scale · p ⊙ (dp − Σ_k dp ⊙ p), the softmax backward of the
/// attention probabilities p, times the score scale.
void attention_softmax_backward_(Array& dp, const Array& p, double scale);

}  // namespace kiln::kernels
