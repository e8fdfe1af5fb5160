#include "kiln/tensor/backend.h"

#include <atomic>
#include <cstdlib>

#include "kiln/tensor/error.h"
#include "kiln/tensor/kernels/onednn.h"

namespace kiln {
namespace {

// -1 until first resolved; then a GemmBackend value.
std::atomic<int> g_backend{-1};

GemmBackend initial_backend() {
  if (const char* env = std::getenv("KILN_GEMM"); env && *env) return parse_gemm_backend(env);
  return kernels::onednn::has_avx512() ? GemmBackend::OneDnn : GemmBackend::OpenBlas;
}

}  // namespace

GemmBackend gemm_backend() {
  int b = g_backend.load(std::memory_order_relaxed);
  if (b < 0) {
    // Two threads may both resolve it; they reach the same value.
    b = static_cast<int>(initial_backend());
    g_backend.store(b, std::memory_order_relaxed);
  }
  return static_cast<GemmBackend>(b);
}

void set_gemm_backend(GemmBackend backend) {
  g_backend.store(static_cast<int>(backend), std::memory_order_relaxed);
}

const char* gemm_backend_name(GemmBackend backend) {
  return backend == GemmBackend::OneDnn ? "onednn" : "openblas";
}

GemmBackend parse_gemm_backend(std::string_view name, std::string_view source) {
  if (name == "openblas") return GemmBackend::OpenBlas;
  if (name == "onednn") return GemmBackend::OneDnn;
  KILN_CHECK(false, "{}: unknown GEMM backend '{}' (use openblas or onednn)", source, name);
  return GemmBackend::OpenBlas;
}

std::string onednn_cpu_isa() {
  return kernels::onednn::isa_name();
}

}  // namespace kiln
