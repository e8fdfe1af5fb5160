// oneDNN calls (see onednn.h for the threading rule).
#include "kiln/tensor/kernels/onednn.h"

#include <dnnl.h>
#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <dnnl.hpp>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>

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

// ---------------------------------------------------------------- packed linear

struct LinearPrimitive {
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul prim;
  dnnl::reorder pack;  // w (K, N) in "ba" order (w's (N, K) rows) -> pd's weights layout
  dnnl::memory::desc src, wplain, bias, dst;
  size_t scratch_bytes = 0;
};

namespace {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Streams and scratch buffers are per thread: tiles run the same primitive concurrently.
dnnl::stream& thread_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

void* thread_scratch(size_t bytes) {
  struct Buf {
    void* p = nullptr;
    size_t n = 0;
    ~Buf() { std::free(p); }
  };
  thread_local Buf buf;
  if (buf.n < bytes) {
    std::free(buf.p);
    buf.n = (bytes + 63) / 64 * 64;
    buf.p = std::aligned_alloc(64, buf.n);
    KILN_CHECK(buf.p != nullptr, "linear: cannot allocate {} bytes of oneDNN scratch", buf.n);
  }
  return buf.p;
}

using PrimKey = std::tuple<int64_t, int64_t, int64_t, bool>;

std::shared_ptr<const LinearPrimitive> make_linear(int64_t M, int64_t N, int64_t K, bool bias) {
  using dnnl::memory;
  const auto f32 = memory::data_type::f32;
  auto p = std::make_shared<LinearPrimitive>();
  p->src = memory::desc({M, K}, f32, memory::dims{K, 1});
  p->wplain = memory::desc({K, N}, f32, memory::format_tag::ba);
  p->bias = bias ? memory::desc({1, N}, f32, memory::format_tag::ab) : memory::desc();
  p->dst = memory::desc({M, N}, f32, memory::format_tag::ab);
  const memory::desc wany({K, N}, f32, memory::format_tag::any);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  try {
    p->pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(p->src, wany, p->bias, p->dst), attr,
                                         cpu_engine());
  } catch (const dnnl::error&) {
    return nullptr;
  }
  // Only the brgemm kernels (AVX-512) read blocked weights; others would take w as it is and gain
  // nothing over dnnl_sgemm. (oneDNN 2.6's brgemm also wants y's rows dense: hence no ldy.)
  if (std::strncmp(p->pd.impl_info_str(), "brg", 3) != 0) return nullptr;
  p->prim = dnnl::matmul(p->pd);
  p->pack = dnnl::reorder(
      dnnl::reorder::primitive_desc(cpu_engine(), p->wplain, cpu_engine(), p->pd.weights_desc()));
  p->scratch_bytes = p->pd.scratchpad_desc().get_size();
  return p;
}

}  // namespace

PackedLinear PackedLinear::find(int64_t M, int64_t N, int64_t K, bool bias) {
  static std::mutex mu;
  static std::map<PrimKey, std::shared_ptr<const LinearPrimitive>> cache;
  const PrimKey key{M, N, K, bias};
  PackedLinear out;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) {
      out.p_ = it->second;
      return out;
    }
  }
  // Creating a primitive JIT-compiles its kernels (0.2-4 ms), so each shape is made once. Inference
  // meets few shapes; past 512 the map is cleared (primitives in use live on in their holders).
  std::shared_ptr<const LinearPrimitive> p;
  {
    SerialScope serial;
    p = make_linear(M, N, K, bias);
  }
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() >= 512) cache.clear();
  cache.emplace(key, p);
  out.p_ = std::move(p);
  return out;
}

size_t PackedLinear::packed_bytes() const {
  return p_->pd.weights_desc().get_size();
}

void PackedLinear::pack(const float* w, void* out) const {
  SerialScope serial;
  dnnl::memory from(p_->wplain, cpu_engine(), const_cast<float*>(w));
  dnnl::memory to(p_->pd.weights_desc(), cpu_engine(), out);
  p_->pack.execute(thread_stream(), from, to);
}

bool PackedLinear::same_layout(const PackedLinear& other) const {
  return p_ && other.p_ && p_->pd.weights_desc() == other.p_->pd.weights_desc();
}

void PackedLinear::run(const float* x, const void* packed_w, const float* b, float* y) const {
  SerialScope serial;
  const dnnl::engine& e = cpu_engine();
  dnnl::memory src(p_->src, e, const_cast<float*>(x));
  dnnl::memory wts(p_->pd.weights_desc(), e, const_cast<void*>(packed_w));
  dnnl::memory dst(p_->dst, e, y);
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wts}, {DNNL_ARG_DST, dst}};
  if (p_->scratch_bytes > 0)
    args.emplace(DNNL_ARG_SCRATCHPAD,
                 dnnl::memory(p_->pd.scratchpad_desc(), e, thread_scratch(p_->scratch_bytes)));
  if (b) args.emplace(DNNL_ARG_BIAS, dnnl::memory(p_->bias, e, const_cast<float*>(b)));
  p_->prim.execute(thread_stream(), args);
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
