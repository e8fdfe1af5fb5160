// Dropout (dropout.h): a counter-based keep mask computed in 32-bit lanes that vectorise.
#include "kiln/tensor/dropout.h"

#include <cmath>

#include "kiln/tensor/kernels/nn_internal.h"
#include "kiln/tensor/random.h"

namespace kiln::kernels {
using namespace nn_detail;

namespace {

inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bU;
  h ^= h >> 13;
  h *= 0xc2b2ae35U;
  h ^= h >> 16;
  return h;
}

// Keep threshold on the hash's top 24 bits.
uint32_t keep_threshold(double p) {
  return static_cast<uint32_t>(std::llround(p * 16777216.0));
}

}  // namespace

bool dropout_keep(uint64_t seed, uint64_t c, double p) {
  const uint64_t key = Generator::hash(seed, c >> 32);
  const uint32_t h = fmix32(fmix32(static_cast<uint32_t>(c) ^ static_cast<uint32_t>(key)) +
                            static_cast<uint32_t>(key >> 32));
  return (h >> 8) >= keep_threshold(p);
}

Array dropout(const Array& x_in, double p, uint64_t seed, uint64_t offset) {
  check_float(x_in, "dropout");
  KILN_CHECK(p >= 0 && p <= 1, "dropout: p must be in [0, 1], got {}", p);
  Array x = x_in.contiguous(), y(x.shape(), x.dtype());
  if (p == 1) {
    y.zero_();
    return y;
  }
  const auto thr = static_cast<int32_t>(keep_threshold(p));  // <= 2^24
  KILN_DISPATCH_FLOATING(x.dtype(), "dropout", [&] {
    const scalar_t* xp = x.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    const scalar_t scale = static_cast<scalar_t>(1.0 / (1.0 - p));
    parallel_for(0, x.numel(), kGrainSize / 4, [&](int64_t i0, int64_t i1) {
      // Runs of counters with the same high word share one key; within a run the loop is 32-bit
      // integer work the compiler vectorises.
      int64_t i = i0;
      while (i < i1) {
        const uint64_t c0 = offset + static_cast<uint64_t>(i);
        const uint64_t room = (uint64_t{1} << 32) - (c0 & 0xffffffffU);  // 1 .. 2^32 left in run
        const int64_t e =
            static_cast<uint64_t>(i1 - i) <= room ? i1 : i + static_cast<int64_t>(room);
        const uint64_t key = Generator::hash(seed, c0 >> 32);
        const uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
        const uint32_t lo0 = static_cast<uint32_t>(c0);
        const scalar_t* __restrict xs = xp + i;
        scalar_t* __restrict ys = yp + i;
        const int64_t n = e - i;
        for (int64_t j = 0; j < n; ++j) {
          const uint32_t h = fmix32(fmix32((lo0 + static_cast<uint32_t>(j)) ^ k0) + k1);
          // x · mask / (1 − p), as PyTorch computes it (a dropped inf or NaN stays NaN); written
          // without a branch (and with a signed compare: AVX2 has no unsigned one; both sides
          // are below 2^24) so the loop vectorises.
          const int32_t keep = static_cast<int32_t>(h >> 8) >= thr;
          ys[j] = xs[j] * (scale * static_cast<scalar_t>(keep));
        }
        i = e;
      }
    });
  });
  return y;
}

}  // namespace kiln::kernels
