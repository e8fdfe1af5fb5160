// GEMM and matmul. Legend: M, N, K the product dims; B the (broadcast) batch.
#include "kiln/tensor/linalg.h"

#include <cblas.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <list>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#include "kiln/tensor/backend.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/kernels/onednn.h"
#include "kiln/tensor/ops.h"
#include "kiln/tensor/parallel.h"

namespace kiln::kernels {

namespace {

// Below this many multiply-adds a GEMM runs on the calling thread: splitting costs more than it
// saves.
constexpr int64_t kSplitMacs = int64_t{1} << 18;

template <typename T>
void blas_gemm(CBLAS_TRANSPOSE TA, CBLAS_TRANSPOSE TB, int64_t M, int64_t N, int64_t K, T alpha,
               const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (beta == T(0)) {
    // OpenBLAS clears C for beta = 0 with a scalar loop (~110 µs for a 512×784 output, 8% of that
    // product); memset and beta = 1 (which skips that pass) give the same C.
    if (ldc == N) {
      std::memset(C, 0, sizeof(T) * static_cast<size_t>(M * N));
    } else {
      for (int64_t i = 0; i < M; ++i)
        std::memset(C + i * ldc, 0, sizeof(T) * static_cast<size_t>(N));
    }
    beta = T(1);
  }
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    cblas_dgemm(CblasRowMajor, TA, TB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// One panel's product on the calling thread: oneDNN's sgemm when that backend is chosen (float32
// only), OpenBLAS otherwise.
template <typename T>
void serial_gemm(GemmBackend backend, CBLAS_TRANSPOSE TA, CBLAS_TRANSPOSE TB, int64_t M, int64_t N,
                 int64_t K, T alpha, const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                 int64_t ldc) {
  if constexpr (std::is_same_v<T, float>) {
    if (backend == GemmBackend::OneDnn) {
      onednn::sgemm(TA == CblasTrans, TB == CblasTrans, M, N, K, alpha, A, lda, B, ldb, beta, C,
                    ldc);
      return;
    }
  }
  blas_gemm<T>(TA, TB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// OpenBLAS and oneDNN run single-threaded (parallel.cpp, onednn.h); Kiln splits C into one panel
// per thread, along the longer of M and N, and each panel is an independent BLAS call on a oneTBB
// worker. K is never split, but results are not bitwise equal across thread counts: elements at a
// panel's edge go through BLAS's edge micro-kernel
// (Gemm.SplitPanelsMatchReferenceAtOneAndTwoThreads).
template <typename T>
void split_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  const GemmBackend backend = gemm_backend();
  const int threads = available_threads();
  if (threads == 1 || M * N * K < kSplitMacs || std::max(M, N) < 32) {
    serial_gemm<T>(backend, TA, TB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Panels are multiples of 16 rows/columns (the BLAS micro-kernel's width).
  const bool split_m = M >= N;
  const int64_t extent = split_m ? M : N;
  const int64_t parts = std::min<int64_t>(threads, (extent + 15) / 16);
  const int64_t step = ((extent + parts - 1) / parts + 15) / 16 * 16;
  parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t b = p * step, e = std::min(extent, b + step);
      if (b >= e) continue;
      if (split_m) {
        const T* a = ta ? A + b : A + b * lda;
        serial_gemm<T>(backend, TA, TB, e - b, N, K, alpha, a, lda, B, ldb, beta, C + b * ldc, ldc);
      } else {
        const T* bp = tb ? B + b * ldb : B + b;
        serial_gemm<T>(backend, TA, TB, M, e - b, K, alpha, A, lda, bp, ldb, beta, C + b, ldc);
      }
    }
  });
}

}  // namespace

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const Array& A,
          int64_t lda, const Array& B, int64_t ldb, double beta, Array& C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  C.bump_version();
  if (K == 0) {
    if (beta == 0)
      C.zero_();
    else
      binary_(BinaryOp::Mul, C, beta);
    return;
  }
  KILN_CHECK_TYPE(A.dtype() == B.dtype() && A.dtype() == C.dtype(), "gemm: dtypes differ: {} {} {}",
                  A.dtype(), B.dtype(), C.dtype());
  if (A.dtype() == kFloat32) {
    split_gemm<float>(ta, tb, M, N, K, static_cast<float>(alpha),
                      static_cast<const float*>(A.raw_data()), lda,
                      static_cast<const float*>(B.raw_data()), ldb, static_cast<float>(beta),
                      static_cast<float*>(C.raw_data()), ldc);
  } else if (A.dtype() == kFloat64) {
    split_gemm<double>(ta, tb, M, N, K, alpha, static_cast<const double*>(A.raw_data()), lda,
                       static_cast<const double*>(B.raw_data()), ldb, beta,
                       static_cast<double*>(C.raw_data()), ldc);
  } else {
    KILN_CHECK_TYPE(false, "gemm: dtype {} is not supported (float32 or float64)", A.dtype());
  }
}

namespace {

// linear_forward's tiles: blocks of rows, each one GEMM call, which packs w (N·K elements) anew and
// then adds the bias over the block. A block is the taller of (a) ~96K elements of y (384 KB in
// float32), so the bias add finds it in L2, and (b) 4·K rows, so packing w is small against the
// block's rows·N·K multiply-adds; then at least 64 rows, and evened out for the threads below.
// (b) wins for wide layers: W5's fc1 (M 4096, N 1024, K 256) took 6.9–7.3 ms with 96-row
// blocks, 5.9–6.3 ms with 1,024; for narrow ones (N 192, K 192) (a) does, 410–432 us against
// 441–454 us with 1,024-row blocks (2 threads, Zen 5).
constexpr int64_t kTileElems = 96 * 1024;

// Rows per block when M rows are cut into blocks of at most max_rows, as many blocks as a multiple
// of `per` (the threads), evened out: a multiple of 16, at least 16, at most M.
int64_t even_rows(int64_t M, int64_t max_rows, int64_t per) {
  const int64_t blocks = per * ((M + per * max_rows - 1) / (per * max_rows));
  return std::min(M, std::max<int64_t>(16, ((M + blocks - 1) / blocks + 15) / 16 * 16));
}

// ---------------------------------------------------------------- packed weights

// Below this many rows (a thread) a product keeps dnnl_sgemm: a 1-row product reads w once either
// way, and the matmul primitive's set-up costs more than sgemm's packing (1 × 1024 × 256: 22 against
// 12 us).
constexpr int64_t kPackedMinRows = 16;
// Row blocks of tiles with packed w (any height from 128 to 2,048 measured alike for W5's layers).
constexpr int64_t kPackedBlockRows = 512;
// The packed copies kept across calls: least recently used dropped past this many bytes.
constexpr size_t kPackedCacheBytes = size_t{512} << 20;

std::shared_ptr<void> aligned_buffer(size_t bytes) {
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  KILN_CHECK(p != nullptr, "linear: cannot allocate {} bytes for packed weights", bytes);
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

// A weight packed for `layout`, valid while the weight's storage lives and its version is unchanged
// (every in-place write bumps the version, storage.h).
struct PackedWeight {
  std::weak_ptr<Storage> owner;
  const void* data;
  uint64_t version;
  onednn::PackedLinear layout;
  std::shared_ptr<void> buf;
  size_t bytes;
};

class PackedWeightCache {
 public:
  // w packed for `layout`: from the cache when this version of w was packed before, else packed
  // now and kept.
  std::shared_ptr<void> get(const Array& w, const onednn::PackedLinear& layout) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (std::shared_ptr<void> hit = find_and_prune(w, layout, true)) return hit;
    }
    const size_t n = layout.packed_bytes();
    std::shared_ptr<void> buf = aligned_buffer(n);
    layout.pack(w.data<float>(), buf.get());
    std::lock_guard<std::mutex> lock(mu_);
    find_and_prune(w, layout, false);  // another thread may have packed it meanwhile
    entries_.push_front(PackedWeight{w.storage(), w.raw_data(), w.version(), layout, buf, n});
    bytes_ += n;
    while (bytes_ > kPackedCacheBytes && entries_.size() > 1) drop(std::prev(entries_.end()));
    return buf;
  }

  PackedWeightStats stats() {  // of the weights still alive
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end();)
      it = it->owner.expired() ? drop(it) : std::next(it);
    return {static_cast<int64_t>(entries_.size()), bytes_};
  }

 private:
  // Under mu_: drops entries whose storage was freed and, for w, those packed from
  // another version (and, unless `reuse`, the current one too); returns the current one's buffer
  // when `reuse` and it is kept (moved to the front: most recently used).
  std::shared_ptr<void> find_and_prune(const Array& w, const onednn::PackedLinear& layout,
                                       bool reuse) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      const bool dead = it->owner.expired();
      const bool same = !dead && it->data == w.raw_data() && it->layout.same_layout(layout);
      if (same && reuse && it->version == w.version()) {
        entries_.splice(entries_.begin(), entries_, it);
        return entries_.front().buf;
      }
      it = dead || same ? drop(it) : std::next(it);
    }
    return nullptr;
  }

  std::list<PackedWeight>::iterator drop(std::list<PackedWeight>::iterator it) {
    bytes_ -= it->bytes;
    return entries_.erase(it);
  }

  std::mutex mu_;
  std::list<PackedWeight> entries_;
  size_t bytes_ = 0;
};

PackedWeightCache& packed_weights() {
  static PackedWeightCache cache;
  return cache;
}

// y = x · wᵀ + b in row blocks of `rows` (the last may be shorter) through oneDNN's matmul
// primitive on w packed once (kept by packed_weights()), one block per task when `split` (else all
// on the calling thread). False (nothing written) when oneDNN has no such kernel for these shapes
// on this CPU.
bool packed_tiles(const float* x, const Array& w_arr, const float* b, int64_t M, int64_t N,
                  int64_t K, float* y, int64_t rows, bool split) {
  const int64_t blocks = (M + rows - 1) / rows, last_rows = M - (blocks - 1) * rows;
  const onednn::PackedLinear full = onednn::PackedLinear::find(rows, N, K, b != nullptr);
  const onednn::PackedLinear last =
      last_rows == rows ? full : onednn::PackedLinear::find(last_rows, N, K, b != nullptr);
  if (!full.usable() || !last.usable()) return false;
  const std::shared_ptr<void> wfull = packed_weights().get(w_arr, full);
  const std::shared_ptr<void> wlast =
      last.same_layout(full) ? wfull : packed_weights().get(w_arr, last);
  parallel_for(0, blocks, split ? 1 : blocks, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const bool is_last = t == blocks - 1;
      (is_last ? last : full)
          .run(x + t * rows * K, (is_last ? wlast : wfull).get(), b, y + t * rows * N);
    }
  });
  return true;
}

template <typename T>
void linear_tiles(const T* x, const Array& w_arr, const T* b, int64_t M, int64_t N, int64_t K, T* y,
                  bool reuse_weights) {
  const T* w = w_arr.data<T>();
  const GemmBackend backend = gemm_backend();
  const int threads = available_threads();
  // Worth spreading over the threads at all (otherwise one tile on the calling thread).
  const bool split = threads > 1 && M * N * K >= kSplitMacs;
  if constexpr (std::is_same_v<T, float>) {
    // One packed w serves every block, so nothing favours tall blocks: blocks of at most
    // kPackedBlockRows rows, as many as a multiple of the threads. oneDNN's kernel writes only
    // dense rows of y, so no column panels: under 16 rows a thread, the plain tiles below.
    if (reuse_weights && backend == GemmBackend::OneDnn && M >= kPackedMinRows &&
        (!split || M >= kPackedMinRows * threads)) {
      const int64_t prows = even_rows(M, kPackedBlockRows, split ? threads : 1);
      if (packed_tiles(x, w_arr, b, M, N, K, y, prows, split)) return;
    }
  }
  int64_t rows = std::max({int64_t{64}, kTileElems / std::max<int64_t>(N, 1), 4 * K}) / 16 * 16;
  rows = std::min(rows, M);
  int64_t row_blocks = (M + rows - 1) / rows;
  // Blocks of equal height, as many as a multiple of the threads: 128 rows at N = 1024 would
  // otherwise be blocks of 96 and 32, and the thread with 32 rows waits (fc1 of a 1 × 128 BERT
  // pass: 3/4 of the product on one thread). Never taller than the rows above.
  if (split && row_blocks >= threads) {
    rows = even_rows(M, rows, threads);
    row_blocks = (M + rows - 1) / rows;
  }
  // Too few row blocks for the threads (short inputs, e.g. inference on one sequence): split the
  // columns when w is deep and each thread's share of it wide (K >= 512, >= 128 columns a thread),
  // since splitting the rows has every thread pack all of w; otherwise split the rows, and the
  // columns too, into panels of 16, if rows alone do not give every thread a piece. Measured at
  // M = 64, 128 and 192 over 11 (N, K) shapes (oneDNN, 2 threads, AVX-512): columns win or tie for
  // every shape the rule sends them (N 256, K 1024: 330 -> 145 us at 64 rows, 262 -> 236 at 128)
  // and lose at K <= 256 or 64-column panels (N 128, K 1024: 134 -> 205 us at 128 rows).
  int64_t col_panels = 1;
  if (split && row_blocks < threads && K >= 512 && N >= 128 * threads) {
    col_panels = threads;
  } else if (split && row_blocks < threads && N >= 32) {
    rows = (M + threads - 1) / threads;
    rows = std::max<int64_t>(16, (rows + 15) / 16 * 16);
    row_blocks = (M + rows - 1) / rows;
    col_panels = std::min<int64_t>((threads + row_blocks - 1) / row_blocks, N / 16);
  }
  const int64_t cols = ((N + col_panels - 1) / col_panels + 15) / 16 * 16;
  const int64_t tiles = row_blocks * col_panels;
  const int64_t grain = split ? 1 : tiles;
  parallel_for(0, tiles, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r0 = (t / col_panels) * rows, r1 = std::min(M, r0 + rows);
      const int64_t c0 = (t % col_panels) * cols, c1 = std::min(N, c0 + cols);
      if (r0 >= r1 || c0 >= c1) continue;
      serial_gemm<T>(backend, CblasNoTrans, CblasTrans, r1 - r0, c1 - c0, K, T(1), x + r0 * K, K,
                     w + c0 * K, K, T(0), y + r0 * N + c0, N);
      if (b)
        for (int64_t r = r0; r < r1; ++r) {
          T* o = y + r * N;
          for (int64_t c = c0; c < c1; ++c) o[c] += b[c];
        }
    }
  });
}

}  // namespace

Array linear_forward(const Array& x, const Array& w, const Array& b, bool reuse_weights) {
  KILN_CHECK_SHAPE(x.dim() == 2 && w.dim() == 2 && x.size(1) == w.size(1),
                   "linear_forward: needs x (M, K) and w (N, K), got {} and {}", x.shape(),
                   w.shape());
  KILN_CHECK_TYPE(
      is_floating(x.dtype()) && x.dtype() == w.dtype() && (!b.defined() || b.dtype() == x.dtype()),
      "linear_forward: dtypes differ or are not float: x {}, w {}, b {}", x.dtype(), w.dtype(),
      b.defined() ? dtype_name(b.dtype()) : "none");
  KILN_CHECK(x.is_contiguous() && w.is_contiguous() && (!b.defined() || b.is_contiguous()),
             "linear_forward: x, w and b must be contiguous");
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  Array y({M, N}, x.dtype());
  if (M == 0 || N == 0) return y;
  if (K == 0) {  // no products: y = b (or 0)
    if (b.defined())
      y.copy_(b.unsqueeze(0));
    else
      y.zero_();
    return y;
  }
  KILN_DISPATCH_FLOATING(x.dtype(), "linear_forward", [&] {
    linear_tiles<scalar_t>(x.data<scalar_t>(), w, b.defined() ? b.data<scalar_t>() : nullptr, M, N,
                           K, y.data<scalar_t>(), reuse_weights);
  });
  return y;
}

PackedWeightStats packed_weight_stats() {
  return packed_weights().stats();
}

Array linear_forward_reference(const Array& x, const Array& w, const Array& b) {
  Array z = matmul_reference(x.to(kFloat64), w.to(kFloat64).transpose(0, 1).contiguous());
  if (b.defined()) z = add(z, b.to(kFloat64));
  return z.to(x.dtype());
}

namespace {

// A matrix operand as BLAS sees it: base array (contiguous in its last two dims, possibly
// transposed) plus the flag and leading dimension.
struct MatView {
  Array arr;   // (*, r, c) with either row-major or column-major last two dims
  bool trans;  // true if the stored layout is the transpose of the logical one
  int64_t ld;
};

// Logical (*, r, c) matrix -> a layout BLAS can read without copying when possible.
MatView as_blas(const Array& x) {
  int64_t d = x.dim();
  int64_t r = x.shape()[d - 2], c = x.shape()[d - 1];
  int64_t sr = x.strides()[d - 2], sc = x.strides()[d - 1];
  if ((sc == 1 || c == 1) && sr >= std::max<int64_t>(c, 1))
    return {x, false, std::max<int64_t>(sr, 1)};
  if ((sr == 1 || r == 1) && sc >= std::max<int64_t>(r, 1))
    return {x, true, std::max<int64_t>(sc, 1)};
  Array cx = x.contiguous();
  return {cx, false, std::max<int64_t>(c, 1)};
}

}  // namespace

Array matmul(const Array& a_in, const Array& b_in, bool trans_a, bool trans_b) {
  KILN_CHECK_SHAPE(a_in.dim() >= 1 && b_in.dim() >= 1,
                   "matmul: both operands need at least 1 dim, got lhs {} and rhs {}", a_in.shape(),
                   b_in.shape());
  KILN_CHECK_TYPE(a_in.dtype() == b_in.dtype(),
                  "matmul: dtypes differ: lhs {} vs rhs {} (cast one first)", a_in.dtype(),
                  b_in.dtype());
  KILN_CHECK_TYPE(is_floating(a_in.dtype()),
                  "matmul: dtype {} is not supported (float32 or float64)", a_in.dtype());
  Array a = a_in, b = b_in;
  bool squeeze_a = false, squeeze_b = false;
  if (a.dim() == 1) {
    a = a.unsqueeze(0);
    squeeze_a = true;
  }
  if (b.dim() == 1) {
    b = b.unsqueeze(1);
    squeeze_b = true;
  }
  if (trans_a) a = a.transpose(-1, -2);
  if (trans_b) b = b.transpose(-1, -2);
  int64_t M = a.shape()[a.dim() - 2], K = a.shape()[a.dim() - 1];
  int64_t K2 = b.shape()[b.dim() - 2], N = b.shape()[b.dim() - 1];
  KILN_CHECK_SHAPE(K == K2,
                   "matmul: inner dimensions differ: lhs {} vs rhs {} (lhs[-1] must equal rhs[-2])",
                   a_in.shape(), b_in.shape());
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "matmul");
  int64_t nb = shape_numel(batch);
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Array out(out_shape, a.dtype());

  // A 2-D weight shared by every batch entry with a row-major activation: fold the batch into M.
  if (bb.empty() && !ba.empty() && a.is_contiguous()) {
    MatView B = as_blas(b);
    Array a2 = a.reshape({nb * M, K});
    Array o2 = out.view({nb * M, N});
    gemm(false, B.trans, nb * M, N, K, 1.0, a2, K, B.arr, B.ld, 0.0, o2, N);
  } else {
    Shape ea = batch, eb = batch;
    ea.push_back(M);
    ea.push_back(K);
    eb.push_back(K);
    eb.push_back(N);
    Array ax = a.expand(ea), bx = b.expand(eb);
    // Batch entries are independent products: one task per entry (attention's many small GEMMs
    // gain more from this than from splitting each one). The same split as attention_no_grad, so
    // inference and the recorded path give the same bits.
    parallel_entries(nb, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        // Index the i-th batch entry of each operand.
        Array ai = ax, bi = bx, oi = out;
        int64_t rem = i;
        for (int64_t d = static_cast<int64_t>(batch.size()) - 1; d >= 0; --d) {
          int64_t idx = rem % batch[d];
          rem /= batch[d];
          ai = ai.select(d, idx);
          bi = bi.select(d, idx);
          oi = oi.select(d, idx);
        }
        MatView A = as_blas(ai), B = as_blas(bi);
        gemm(A.trans, B.trans, M, N, K, 1.0, A.arr, A.ld, B.arr, B.ld, 0.0, oi, N);
      }
    });
  }
  if (squeeze_a) out = out.squeeze(-2);
  if (squeeze_b) out = out.squeeze(-1);
  return out;
}

Array matmul_reference(const Array& a_in, const Array& b_in) {
  KILN_CHECK_SHAPE(a_in.dim() == 2 && b_in.dim() == 2 && a_in.size(1) == b_in.size(0),
                   "matmul_reference: needs (M, K) x (K, N), got {} and {}", a_in.shape(),
                   b_in.shape());
  Array a = a_in.to(kFloat64).contiguous(), b = b_in.to(kFloat64).contiguous();
  int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  Array out({M, N}, kFloat64);
  const double* ap = a.data<double>();
  const double* bp = b.data<double>();
  double* op = out.data<double>();
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += ap[i * K + k] * bp[k * N + j];
      op[i * N + j] = acc;
    }
  return out.to(a_in.dtype());
}

}  // namespace kiln::kernels
