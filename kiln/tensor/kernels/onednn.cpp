// oneDNN calls (see onednn.h for the threading rule).
#include "kiln/tensor/kernels/onednn.h"

#include <dnnl.h>
#include <omp.h>

#include "kiln/tensor/error.h"

namespace kiln::kernels::onednn {

SerialScope::SerialScope() : saved_(omp_get_max_threads()) {
  if (saved_ != 1) omp_set_num_threads(1);
}

SerialScope::~SerialScope() {
  if (saved_ != 1) omp_set_num_threads(saved_);
}

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  SerialScope serial;
  const dnnl_status_t status =
      dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  KILN_CHECK(status == dnnl_success,
             "gemm: oneDNN's dnnl_sgemm failed with status {} (M={}, N={}, K={}, lda={}, ldb={}, "
             "ldc={})",
             static_cast<int>(status), M, N, K, lda, ldb, ldc);
}

bool has_avx512() {
  const unsigned isa = static_cast<unsigned>(dnnl_get_effective_cpu_isa());
  const unsigned core = static_cast<unsigned>(dnnl_cpu_isa_avx512_core);
  return (isa & core) == core;
}

std::string isa_name() {
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41:
      return "sse41";
    case dnnl_cpu_isa_avx:
      return "avx";
    case dnnl_cpu_isa_avx2:
      return "avx2";
    case dnnl_cpu_isa_avx2_vnni:
      return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic:
      return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops:
      return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core:
      return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "unknown";
  }
}

}  // namespace kiln::kernels::onednn
