#pragma once
// Internal to kiln_tensor: the calls Kiln makes into oneDNN (Debian's libdnnl 2.6), kept behind
// plain declarations so no header outside kiln/tensor/kernels/*.cpp sees <dnnl.h>.
//
// Threads: Debian builds oneDNN on OpenMP (DNNL_CPU_RUNTIME=OMP; its threadpool interop API exists
// only in THREADPOOL builds), so a oneDNN call would start a libgomp team whose workers spin after
// each call (GOMP_SPINCOUNT: milliseconds on 2 cores) against oneTBB's workers. Kiln instead splits
// work into one piece per oneTBB worker itself and runs each oneDNN call on its calling thread:
// SerialScope sets that thread's OpenMP thread count to 1 for the call (oneDNN then never enters
// an OpenMP parallel region, so libgomp starts no threads) and restores it afterwards (LibTorch in
// the same process keeps its own setting on that thread).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace kiln::kernels::onednn {

/// Holds this thread's OpenMP thread count at 1 while alive.
class SerialScope {
 public:
  SerialScope();
  ~SerialScope();
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;

 private:
  int saved_;
};

/// C = alpha · op(A) · op(B) + beta · C, row-major, on the calling thread (dnnl_sgemm). With
/// beta = 0, C is not read. Throws Error if oneDNN reports a failure.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

struct LinearPrimitive;

/// oneDNN's matmul primitive for one tile of a linear layer, y = x · wᵀ + b, reading w in the
/// blocked layout its kernel uses ("packed"): packing w once and reusing it saves what dnnl_sgemm
/// spends repacking w on every call (15-40% of a 64-row product, Zen 5). One primitive per
/// (M, N, K, bias), created once per process and shared.
///   x: (M, K)  w: (N, K)  b: (N) or none  ->  y: (M, N), all row-major and dense
class PackedLinear {
 public:
  PackedLinear() = default;
  /// The primitive for this shape, or an empty PackedLinear (usable() false) where oneDNN has no
  /// blocked-weights kernel for it on this CPU (its brgemm matmul needs AVX-512).
  static PackedLinear find(int64_t M, int64_t N, int64_t K, bool bias);
  bool usable() const { return p_ != nullptr; }
  /// Bytes of w in the packed layout.
  size_t packed_bytes() const;
  /// Writes w (N, K) into `out` (packed_bytes(), 64-byte aligned) in the packed layout.
  void pack(const float* w, void* out) const;
  /// True when `other` reads the same packed layout, so one packing of w serves both.
  bool same_layout(const PackedLinear& other) const;
  /// y = x · wᵀ + b on the calling thread; `packed_w` from pack() of this or a same_layout one.
  void run(const float* x, const void* packed_w, const float* b, float* y) const;

 private:
  std::shared_ptr<const LinearPrimitive> p_;
};

/// True when oneDNN's dispatcher runs AVX-512 (avx512_core or later) code on this CPU.
bool has_avx512();

/// The dispatcher's ISA name ("avx512_core_bf16", "avx2", ...).
std::string isa_name();

}  // namespace kiln::kernels::onednn
