// Dropout (dropout.h): a counter-based keep mask computed in 32-bit lanes that vectorise.
#include "kiln/tensor/dropout.h"

#include <cmath>

#include "kiln/tensor/kernels/nn_internal.h"
#include "kiln/tensor/random.h"

namespace kiln::kernels {
using namespace nn_detail;

bool dropout_keep(uint64_t seed, uint64_t c, double p) {
  const uint64_t key = Generator::hash(seed, c >> 32);
  const uint32_t h = fmix32(fmix32(static_cast<uint32_t>(c) ^ static_cast<uint32_t>(key)) +
                            static_cast<uint32_t>(key >> 32));
  return static_cast<int32_t>(h >> 8) >= dropout_threshold(p);
}

Array dropout(const Array& x_in, double p, uint64_t seed, uint64_t offset) {
  check_float(x_in, "dropout");
  KILN_CHECK(p >= 0 && p <= 1, "dropout: p must be in [0, 1], got {}", p);
  Array x = x_in.contiguous(), y(x.shape(), x.dtype());
  if (p == 1) {
    y.zero_();
    return y;
  }
  const int32_t thr = dropout_threshold(p);
  KILN_DISPATCH_FLOATING(x.dtype(), "dropout", [&] {
    const scalar_t* xp = x.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    const scalar_t scale = static_cast<scalar_t>(1.0 / (1.0 - p));
    parallel_for(0, x.numel(), kGrainSize / 4, [&](int64_t i0, int64_t i1) {
      apply_dropout_mask(xp + i0, yp + i0, i0, i1 - i0, seed, offset, thr, scale);
    });
  });
  return y;
}

}  // namespace kiln::kernels
