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

/// torch.matmul semantics: 1-D·1-D → scalar, 2-D·2-D → (M, N), 1-D operands get a dim prepended /
/// appended and removed after, and leading (batch) dims broadcast. With trans_a / trans_b the last
/// two dims of a / b are swapped first (no copy).
///   a: (*, M, K)  b: (*, K, N)  →  (*, M, N)
Array matmul(const Array& a, const Array& b, bool trans_a = false, bool trans_b = false);

/// out = a(M, K) · b(K, N) with plain triple loops in float64 accumulation: the reference twin.
Array matmul_reference(const Array& a, const Array& b);

}  // namespace kiln::kernels
