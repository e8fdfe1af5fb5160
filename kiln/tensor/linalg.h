#pragma once
// Matrix products through OpenBLAS (cblas_sgemm / cblas_dgemm) or oneDNN (dnnl_sgemm), as
// kiln/tensor/backend.h chooses. Transposes are passed to BLAS as
// flags, never materialised; a transposed view (strides swapped) is recognised and passed the same
// way.
#include "kiln/tensor/array.h"

namespace kiln::kernels {

/// C = alpha · op(A) · op(B) + beta · C for row-major float32/float64 buffers (BLAS semantics).
/// op(A) is (M, K), op(B) is (K, N), C is (M, N). Large products are split into one panel of C per
/// thread (the library itself runs single-threaded); safe to call from inside a parallel_for body.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const Array& A,
          int64_t lda, const Array& B, int64_t ldb, double beta, Array& C, int64_t ldc);

/// y = x · wᵀ + b, the forward of a linear layer with the bias added as the GEMM's epilogue.
///   x: (M, K)  w: (N, K)  b: (N) or undefined  ->  y: (M, N)
/// C is computed in tiles (blocks of rows of equal height, or column panels when M is too short to
/// give every thread a block); each tile's product is followed at once by its bias add, on the same
/// thread, instead of a bias copy into C before a beta = 1 GEMM (that broadcast copy was 5.2% of
/// NAS-BERT-5M's training step). x and w must be contiguous float32 / float64 of one dtype.
///
/// reuse_weights: w is expected to be multiplied again unchanged (inference). float32 products
/// on the oneDNN backend then pack w once into the blocked layout of oneDNN's matmul kernel and
/// keep that copy, keyed by w's storage and version (any in-place write to w, which bumps its
/// version, makes the next call pack it again); later calls skip the packing dnnl_sgemm redoes in
/// every tile. The tiles are then row blocks of at most 512 rows (full width: the kernel writes
/// only dense rows). The plain tiles serve where oneDNN has no such kernel (AVX2-only CPUs), for
/// fewer than 16 rows, and for fewer than 16 rows a thread when the product is split over the
/// threads (M·N·K >= 2^18). Results equal the plain path's to float rounding.
Array linear_forward(const Array& x, const Array& w, const Array& b, bool reuse_weights = false);

/// The packed weight copies linear_forward keeps (reuse_weights) for weights still alive, and their
/// bytes (at most 512 MiB, least recently used dropped first; a written weight's old copy is
/// dropped when it is packed again, a freed weight's on the next packing or on this call).
struct PackedWeightStats {
  int64_t copies = 0;
  size_t bytes = 0;
};
PackedWeightStats packed_weight_stats();

/// The reference twin: float64 triple loops, then the bias, in x's dtype.
Array linear_forward_reference(const Array& x, const Array& w, const Array& b);

/// torch.matmul semantics: 1-D·1-D → scalar, 2-D·2-D → (M, N), 1-D operands get a dim prepended /
/// appended and removed after, and leading (batch) dims broadcast. With trans_a / trans_b the last
/// two dims of a / b are swapped first (no copy).
///   a: (*, M, K)  b: (*, K, N)  →  (*, M, N)
Array matmul(const Array& a, const Array& b, bool trans_a = false, bool trans_b = false);

/// out = a(M, K) · b(K, N) with plain triple loops in float64 accumulation: the reference twin.
Array matmul_reference(const Array& a, const Array& b);

}  // namespace kiln::kernels
