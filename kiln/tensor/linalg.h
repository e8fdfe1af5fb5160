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
Array linear_forward(const Array& x, const Array& w, const Array& b);

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
