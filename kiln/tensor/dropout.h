#pragma once
// Dropout on Arrays (no autograd): a counter-based mask that is never stored, so the backward is
// the same call on the gradient. float32 and float64; elements are split across threads, and the
// result is the same at any thread count (each element's decision depends on its counter only).
// dropout_keep() is the scalar definition the tests check the vectorised kernel against.
//
// Legend: c = an element's counter (offset + its row-major index), p = the drop probability.
#include <cstdint>

#include "kiln/tensor/array.h"

namespace kiln::kernels {

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

}  // namespace kiln::kernels
