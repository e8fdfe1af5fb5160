#pragma once
// Which library computes float32 matrix products: OpenBLAS or oneDNN, chosen at run time.
//
// On first use the choice is KILN_GEMM (`openblas` or `onednn`) when that is set; otherwise oneDNN
// where its CPU dispatcher runs AVX-512 code on this CPU, and OpenBLAS elsewhere. Measured on a
// 2-core AMD Zen 5 (AVX-512), one thread, n = 256: oneDNN 2.6 `dnnl_sgemm` 206 GFLOP/s, OpenBLAS
// 0.3.21 with `OPENBLAS_CORETYPE=Haswell` (its AVX2 kernel) 100; with oneDNN held to AVX2
// (DNNL_MAX_CPU_ISA=AVX2) the two measure the same (100 vs 96), so on AVX2-only CPUs OpenBLAS
// stays. float64 products always go to OpenBLAS (oneDNN has no dgemm). Both backends run one call
// per panel on Kiln's own oneTBB workers (kernels::gemm): neither starts threads of its own.
//
//   kiln::set_gemm_backend(kiln::GemmBackend::OpenBlas);   // or KILN_GEMM=openblas
#include <string>
#include <string_view>

namespace kiln {

enum class GemmBackend { OpenBlas, OneDnn };

/// The backend float32 products use now (resolved from KILN_GEMM / the CPU on first call; an
/// unknown KILN_GEMM value throws Error naming the accepted ones).
GemmBackend gemm_backend();
/// Forces a backend for every later product (thread-safe; affects the whole process).
void set_gemm_backend(GemmBackend backend);
/// "openblas" or "onednn".
const char* gemm_backend_name(GemmBackend backend);
/// Parses a KILN_GEMM value ("openblas" or "onednn"); throws Error naming `source` and the accepted
/// values otherwise.
GemmBackend parse_gemm_backend(std::string_view name, std::string_view source = "KILN_GEMM");
/// The instruction set oneDNN's dispatcher uses on this CPU, e.g. "avx512_core_bf16" or "avx2".
std::string onednn_cpu_isa();

}  // namespace kiln
