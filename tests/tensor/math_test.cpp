// Elementwise, reduction and GEMM kernels against PyTorch goldens and naive reference twins.
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "kiln/tensor/backend.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/io.h"
#include "kiln/tensor/linalg.h"
#include "kiln/tensor/ops.h"
#include "kiln/tensor/parallel.h"
#include "kiln/tensor/reduce.h"
#include "tensor/test_util.h"
#include "test_support.h"

namespace kiln {
namespace {

using kernels::BinaryOp;
using kernels::UnaryOp;
using testing::all_close;
using testing::golden;
using testing::Tol;

// float32 elementwise: a few ulps; Eigen's vectorised exp/tanh/erf are within ~2 ulp of libm.
constexpr Tol kElementwiseF32{2e-6, 1e-6};
// Reductions over up to 336 float32 values accumulated in float64 and rounded once.
constexpr Tol kReduceF32{1e-5, 1e-6};
// GEMM: K ≤ 7 products in float32 in a different order than PyTorch's.
constexpr Tol kGemmF32{1e-5, 1e-5};

TEST(Elementwise, UnaryMatchesPyTorch) {
  Array x = golden("core/x.npy"), xp = golden("core/xp.npy");
  struct Case {
    UnaryOp op;
    const char* file;
    bool positive;
  };
  for (Case c : {Case{UnaryOp::Exp, "exp", false},
                 {UnaryOp::Tanh, "tanh", false},
                 {UnaryOp::Sigmoid, "sigmoid", false},
                 {UnaryOp::GeluErf, "gelu", false},
                 {UnaryOp::GeluTanh, "gelu_tanh", false},
                 {UnaryOp::Silu, "silu", false},
                 {UnaryOp::Erf, "erf", false},
                 {UnaryOp::Sin, "sin", false},
                 {UnaryOp::Log, "log", true},
                 {UnaryOp::Sqrt, "sqrt", true},
                 {UnaryOp::Rsqrt, "rsqrt", true}}) {
    SCOPED_TRACE(c.file);
    Array y = kernels::unary(c.op, c.positive ? xp : x);
    EXPECT_TRUE(all_close(y, golden(std::string("core/") + c.file + ".npy"), kElementwiseF32));
    // The strided (non-contiguous) path gives the same values as the vectorised one.
    Array src = c.positive ? xp : x;
    Array strided = kernels::unary(c.op, src.slice(0, 0, src.numel(), 2));
    EXPECT_TRUE(all_close(strided, y.slice(0, 0, y.numel(), 2), kElementwiseF32));
  }
}

TEST(Elementwise, ActivationGradientsMatchPyTorch) {
  Array x = golden("core/x.npy");
  Array ones = kernels::ones(x.shape());
  EXPECT_TRUE(all_close(kernels::binary(BinaryOp::GeluErfGrad, ones, x),
                        golden("core/gelu_grad.npy"), kElementwiseF32));
  // PyTorch evaluates this in float32, where tanh saturates to exactly −1 for x < −4.5 and the
  // gradient becomes 0; Kiln evaluates the formula in float64, giving the true value there (about
  // −1e−6).
  constexpr Tol kGeluTanhGrad{1e-5, 2e-6};
  EXPECT_TRUE(all_close(kernels::binary(BinaryOp::GeluTanhGrad, ones, x),
                        golden("core/gelu_tanh_grad.npy"), kGeluTanhGrad));
  EXPECT_TRUE(all_close(kernels::binary(BinaryOp::SiluGrad, ones, x), golden("core/silu_grad.npy"),
                        kElementwiseF32));
  EXPECT_TRUE(all_close(kernels::binary(BinaryOp::TanhGrad, ones, kernels::unary(UnaryOp::Tanh, x)),
                        golden("core/tanh_grad.npy"), kElementwiseF32));
  EXPECT_TRUE(
      all_close(kernels::binary(BinaryOp::SigmoidGrad, ones, kernels::unary(UnaryOp::Sigmoid, x)),
                golden("core/sigmoid_grad.npy"), kElementwiseF32));
}

TEST(Elementwise, BroadcastBinaryMatchesPyTorch) {
  Array a = golden("core/bin_a.npy"), b = golden("core/bin_b.npy");
  EXPECT_TRUE(all_close(kernels::add(a, b), golden("core/bin_add.npy"), kElementwiseF32));
  EXPECT_TRUE(all_close(kernels::mul(a, b), golden("core/bin_mul.npy"), kElementwiseF32));
  Array bd = kernels::add(kernels::unary(UnaryOp::Abs, b), 0.5);
  EXPECT_TRUE(all_close(kernels::div(a, bd), golden("core/bin_div.npy"), kElementwiseF32));
  EXPECT_TRUE(all_close(kernels::binary(BinaryOp::Pow, kernels::unary(UnaryOp::Abs, a), b),
                        golden("core/bin_pow.npy"), {1e-5, 1e-6}));
}

// Broadcast rows (a bias (1, C) or a mask (R, 1), on either side) take a loop with the op fixed
// outside it; the results equal the element-by-element definition exactly.
TEST(Elementwise, BroadcastRowsMatchElementwiseDefinition) {
  Generator g(6);
  for (DType dt : {kFloat32, kFloat64})
    for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div})
      for (auto [sa, sb] : {std::pair<Shape, Shape>{{37, 70}, {37, 1}},
                            {{37, 70}, {1, 70}},
                            {{37, 1}, {37, 70}},
                            {{1, 70}, {37, 70}}}) {
        SCOPED_TRACE(fmt::format("{} {} {} {}", dtype_name(dt), op_name(op), sa, sb));
        Array a = kernels::add(kernels::randn(sa, 0, 1, dt, &g), 3.0);  // no zero divisors
        Array b = kernels::add(kernels::randn(sb, 0, 1, dt, &g), 3.0);
        Array z = kernels::binary(op, a, b);
        ASSERT_EQ(z.shape(), (Shape{37, 70}));
        for (int64_t i = 0; i < 37; ++i)
          for (int64_t j = 0; j < 70; ++j) {
            const double x = a.at({sa[0] == 1 ? 0 : i, sa[1] == 1 ? 0 : j});
            const double y = b.at({sb[0] == 1 ? 0 : i, sb[1] == 1 ? 0 : j});
            double want = op == BinaryOp::Add   ? x + y
                          : op == BinaryOp::Sub ? x - y
                          : op == BinaryOp::Mul ? x * y
                                                : x / y;
            if (dt == kFloat32) want = static_cast<float>(want);  // one rounding, as in float
            ASSERT_EQ(z.at({i, j}), want) << i << ", " << j;
          }
      }
}

TEST(Elementwise, LargeParallelResultsEqualSerial) {
  Generator g(5);
  Array a = kernels::randn({1 << 20}, 0, 1, kFloat32, &g),
        b = kernels::randn({1 << 20}, 0, 1, kFloat32, &g);
  kiln::testing::ScopedNumThreads threads(1);
  Array s1 = kernels::add(a, b), g1 = kernels::unary(UnaryOp::GeluErf, a), r1 = kernels::sum(a);
  threads.set(2);
  Array s2 = kernels::add(a, b), g2 = kernels::unary(UnaryOp::GeluErf, a), r2 = kernels::sum(a);
  EXPECT_TRUE(all_close(s1, s2, {0, 0}));
  EXPECT_TRUE(all_close(g1, g2, {0, 0}));
  EXPECT_TRUE(all_close(r1, r2, {0, 0})) << "full reductions must not depend on the thread count";
}

TEST(Elementwise, WhereMaskedFillClamp) {
  Array x = kernels::from_vector(std::vector<float>{-2, -0.5, 0.5, 2});
  Array m = kernels::binary(BinaryOp::Lt, x, 0.0);
  EXPECT_EQ(format_array(kernels::masked_fill(x, m, 9), 1), "[9.0, 9.0, 0.5, 2.0]");
  EXPECT_EQ(format_array(kernels::clamp(x, -1, 1), 1), "[-1.0, -0.5, 0.5, 1.0]");
  EXPECT_EQ(format_array(kernels::where(m, kernels::scalar(1.0), x), 1), "[1.0, 1.0, 0.5, 2.0]");
  EXPECT_THROW(kernels::masked_fill(x, kernels::ones({3}, kBool), 0), ShapeError);
}

TEST(Reduce, MatchesPyTorch) {
  Array r = golden("core/red_x.npy");
  EXPECT_TRUE(all_close(kernels::sum(r, {0, 2}), golden("core/red_sum_02.npy"), kReduceF32));
  EXPECT_TRUE(all_close(kernels::mean(r, {1}), golden("core/red_mean_1.npy"), kReduceF32));
  EXPECT_TRUE(all_close(kernels::var(r, {2}), golden("core/red_var_2.npy"), kReduceF32));
  EXPECT_TRUE(all_close(kernels::std(r), golden("core/red_std_all.npy"), kReduceF32));
  EXPECT_TRUE(
      all_close(kernels::logsumexp(r, {1}), golden("core/red_logsumexp_1.npy"), kReduceF32));
  EXPECT_TRUE(all_close(kernels::norm(r, 2.0, {2}), golden("core/red_norm_2.npy"), kReduceF32));
  EXPECT_TRUE(all_close(kernels::amax(r, {0}), golden("core/red_amax_0.npy"), {0, 0}));
  EXPECT_TRUE(all_close(kernels::argmax(r, 1), golden("core/red_argmax_1.npy"), {0, 0}));
}

TEST(Reduce, KeepdimAndLeadingDimPathAgreeWithNaive) {
  Generator g(9);
  Array x = kernels::randn({5, 6, 7}, 0, 1, kFloat64, &g);
  for (kernels::Dims dims : {kernels::Dims{0}, {1}, {2}, {0, 1}, {1, 2}, {0, 2}, {}}) {
    Array s = kernels::sum(x, dims, true);
    // Naive: loop over every element and add into its keepdim slot.
    Array ref = kernels::zeros(s.shape(), kFloat64);
    for (int64_t i = 0; i < 5; ++i)
      for (int64_t j = 0; j < 6; ++j)
        for (int64_t k = 0; k < 7; ++k) {
          std::vector<int64_t> o{i, j, k};
          for (int64_t d : (dims.empty() ? kernels::Dims{0, 1, 2} : dims)) o[d] = 0;
          ref.data<double>()[(o[0] * ref.shape()[1] + o[1]) * ref.shape()[2] + o[2]] +=
              x.at({i, j, k});
        }
    EXPECT_TRUE(all_close(s, ref, {1e-12, 1e-12}));
  }
  EXPECT_EQ(kernels::sum(x, {1}).shape(), (Shape{5, 7}));
  EXPECT_EQ(kernels::sum_to(kernels::ones({4, 2, 3}), {2, 1}).at({1, 0}), 12);
}

// Every GEMM test runs on both backends (kernels::gemm's OpenBLAS and oneDNN paths).
constexpr GemmBackend kGemmBackends[] = {GemmBackend::OpenBlas, GemmBackend::OneDnn};

// Restores the process's backend when a test ends.
struct BackendGuard {
  GemmBackend saved = gemm_backend();
  ~BackendGuard() { set_gemm_backend(saved); }
};

TEST(Gemm, AllTransposeCombinationsAndOddSizesMatchReference) {
  BackendGuard guard;
  Generator g(11);
  for (GemmBackend backend : kGemmBackends)
    for (auto [M, N, K] :
         {std::tuple{1, 1, 1}, {3, 5, 7}, {17, 1, 33}, {64, 65, 63}, {128, 3, 200}}) {
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          SCOPED_TRACE(fmt::format("{} M={} N={} K={} ta={} tb={}", gemm_backend_name(backend), M,
                                   N, K, ta, tb));
          set_gemm_backend(backend);
          Array a = kernels::randn(ta ? Shape{K, M} : Shape{M, K}, 0, 1, kFloat32, &g);
          Array b = kernels::randn(tb ? Shape{N, K} : Shape{K, N}, 0, 1, kFloat32, &g);
          Array out = kernels::matmul(a, b, ta, tb);
          Array ref =
              kernels::matmul_reference(ta ? a.transpose(0, 1) : a, tb ? b.transpose(0, 1) : b);
          // K up to 200 float32 products: error grows like √K·ε·|a||b|.
          EXPECT_TRUE(all_close(out, ref, {1e-4, 1e-4}));
        }
    }
}

// Products large enough that kernels::gemm splits C into one panel per thread, along M (first
// two) or N (last two), with sizes that are not multiples of the 16-wide panels, every transpose
// combination, and operands that are views into wider buffers (leading dimension > width).
TEST(Gemm, SplitPanelsMatchReferenceAtOneAndTwoThreads) {
  BackendGuard guard;
  Generator g(12);
  const int saved = get_num_threads();
  for (GemmBackend backend : kGemmBackends)
    for (auto [M, N, K] : {std::tuple{301, 97, 40}, {1000, 33, 17}, {45, 310, 33}, {37, 2000, 9}}) {
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          SCOPED_TRACE(fmt::format("{} M={} N={} K={} ta={} tb={}", gemm_backend_name(backend), M,
                                   N, K, ta, tb));
          set_gemm_backend(backend);
          // Wider buffers, sliced: lda / ldb exceed the logical widths by 5.
          Array a_buf = kernels::randn(ta ? Shape{K, M + 5} : Shape{M, K + 5}, 0, 1, kFloat32, &g);
          Array b_buf = kernels::randn(tb ? Shape{N, K + 5} : Shape{K, N + 5}, 0, 1, kFloat32, &g);
          Array a = ta ? a_buf.slice(1, 0, M) : a_buf.slice(1, 0, K);
          Array b = tb ? b_buf.slice(1, 0, K) : b_buf.slice(1, 0, N);
          set_num_threads(2);
          Array two = kernels::matmul(a, b, ta, tb);
          set_num_threads(1);
          Array one = kernels::matmul(a, b, ta, tb);
          set_num_threads(saved);
          Array ref =
              kernels::matmul_reference(ta ? a.transpose(0, 1) : a, tb ? b.transpose(0, 1) : b);
          // Split (2 threads) and whole (1 thread) products both match the float64 reference.
          // They are not bitwise equal: elements at a panel's edge go through the library's edge
          // micro-kernel.
          EXPECT_TRUE(all_close(two, ref, {1e-4, 1e-4}));
          EXPECT_TRUE(all_close(one, ref, {1e-4, 1e-4}));
        }
    }
}

// Batched products whose batch entries are strided views (every other matrix of a wider stack,
// transposed views, a broadcast operand), against the reference twin entry by entry, at 1 and 2
// threads on both backends.
TEST(Gemm, StridedBatchesMatchReferenceOnBothBackends) {
  BackendGuard guard;
  Generator g(14);
  const int saved = get_num_threads();
  const int64_t Bn = 3, M = 37, N = 29, K = 41;
  // (2B, K + 3, M): entry i of a is buffer[2i, :K, :M]ᵀ — batch stride 2·(K+3)·M, transposed.
  Array a_buf = kernels::randn({2 * Bn, K + 3, M}, 0, 1, kFloat32, &g);
  Array a = a_buf.slice(0, 0, 2 * Bn, 2).slice(1, 0, K).transpose(1, 2);  // (B, M, K)
  // (B, K, N + 4) sliced to N columns: row stride N + 4.
  Array b_buf = kernels::randn({Bn, K, N + 4}, 0, 1, kFloat32, &g);
  Array b = b_buf.slice(2, 0, N);                             // (B, K, N)
  Array shared = kernels::randn({K, N}, 0, 1, kFloat32, &g);  // broadcast over the batch
  for (GemmBackend backend : kGemmBackends)
    for (int threads : {1, 2}) {
      SCOPED_TRACE(fmt::format("{} threads={}", gemm_backend_name(backend), threads));
      set_gemm_backend(backend);
      set_num_threads(threads);
      Array out = kernels::matmul(a, b);
      Array out_shared = kernels::matmul(a, shared);
      set_num_threads(saved);
      ASSERT_EQ(out.shape(), (Shape{Bn, M, N}));
      for (int64_t i = 0; i < Bn; ++i) {
        EXPECT_TRUE(all_close(out.select(0, i),
                              kernels::matmul_reference(a.select(0, i), b.select(0, i)),
                              {1e-4, 1e-4}));
        EXPECT_TRUE(all_close(out_shared.select(0, i),
                              kernels::matmul_reference(a.select(0, i), shared), {1e-4, 1e-4}));
      }
    }
}

// kernels::gemm's BLAS contract on both backends: alpha scales the product, beta = 1 accumulates
// into C (linear's bias rows), and beta = 0 never reads C (a NaN there must not leak through).
TEST(Gemm, AlphaBetaFollowBlasOnBothBackends) {
  BackendGuard guard;
  Generator g(15);
  const int64_t M = 70, N = 90, K = 50;  // 315,000 MACs: split into panels at 2 threads
  Array a = kernels::randn({M, K}, 0, 1, kFloat32, &g);
  Array b = kernels::randn({N, K}, 0, 1, kFloat32, &g);
  Array c0 = kernels::randn({M, N}, 0, 1, kFloat32, &g);
  Array ab = kernels::matmul_reference(a, b.transpose(0, 1));
  Array want = kernels::add(kernels::mul(ab, 0.5), c0);  // 0.5·A·Bᵀ + C
  for (GemmBackend backend : kGemmBackends) {
    SCOPED_TRACE(gemm_backend_name(backend));
    set_gemm_backend(backend);
    Array c = c0.clone();
    kernels::gemm(false, true, M, N, K, 0.5, a, K, b, K, 1.0, c, N);
    EXPECT_TRUE(all_close(c, want, {1e-4, 1e-4}));
    Array nan = kernels::full({M, N}, std::nan(""));
    kernels::gemm(false, true, M, N, K, 1.0, a, K, b, K, 0.0, nan, N);
    EXPECT_TRUE(all_close(nan, ab, {1e-4, 1e-4}));
  }
}

// linear_forward (GEMM + bias epilogue per tile) against its reference twin: odd sizes, row blocks
// with a partial last block, column panels (few rows), with and without bias, at 1 and 2 threads
// on both backends, float32 and float64.
TEST(LinearForward, TilesWithBiasEpilogueMatchReference) {
  BackendGuard guard;
  Generator g(17);
  const int saved = get_num_threads();
  // (700, 300, 16): three row blocks of 320 (~96K elements), the last partial, at 1 thread; at 2
  // threads four blocks of 176 (the last 172), evened out for the threads. (2100, 300, 256): blocks
  // of 4·K = 1024 rows (1024, 1024, 52) at 1 thread, four of 528 (the last 516) at 2. (128, 1024):
  // two blocks of 64 at 2 threads, not 96 and 32. At 2 threads (40, 300) splits into two row
  // blocks, (8, 300) into two column panels, and (40, 256, 512) (deep w) into two column panels.
  for (auto [M, N, K] : {std::tuple{1, 1, 1},
                         {5, 7, 3},
                         {1000, 37, 29},
                         {40, 300, 64},
                         {8, 300, 200},
                         {700, 300, 16},
                         {2100, 300, 256},
                         {128, 1024, 200},
                         {40, 256, 512}})
    for (bool bias : {false, true})
      for (DType dt : {kFloat32, kFloat64}) {
        Array x = kernels::randn({M, K}, 0, 1, dt, &g);
        Array w = kernels::randn({N, K}, 0, 1, dt, &g);
        Array b = bias ? kernels::randn({N}, 0, 1, dt, &g) : Array();
        const Array ref = kernels::linear_forward_reference(x, w, b);
        // K up to 200 products as in the GEMM tests; float64 only differs in order.
        const Tol tol = dt == kFloat32 ? Tol{1e-4, 1e-4} : Tol{1e-10, 1e-10};
        for (GemmBackend backend : kGemmBackends)
          for (int threads : {1, 2}) {
            SCOPED_TRACE(fmt::format("{} threads={} M={} N={} K={} bias={} {}",
                                     gemm_backend_name(backend), threads, M, N, K, bias,
                                     dtype_name(dt)));
            set_gemm_backend(backend);
            set_num_threads(threads);
            Array y = kernels::linear_forward(x, w, b);
            set_num_threads(saved);
            EXPECT_TRUE(all_close(y, ref, tol));
          }
      }
}

// linear_forward with reuse_weights (inference): on AVX-512 CPUs float32 products on the oneDNN
// backend run oneDNN's matmul kernel on a packed copy of w that is kept between calls. Against the
// reference twin: row blocks (with a short last one), column panels (few rows), odd sizes, with and
// without bias, at 1 and 2 threads; a second call reuses the packing; an in-place write to w, and a
// new w allocated after the old one was freed, are multiplied as they are now (nothing stale).
// Fewer than 16 rows (a thread), and CPUs without AVX-512, take the plain tiles (checked the same
// way, and that they keep nothing).
TEST(LinearForward, PackedWeightsMatchReferenceAndFollowWrites) {
  BackendGuard guard;
  Generator g(18);
  const int saved = get_num_threads();
  set_gemm_backend(GemmBackend::OneDnn);
  const bool avx512 = onednn_cpu_isa().rfind("avx512_core", 0) == 0;
  const Tol tol{1e-4, 1e-4};
  for (auto [M, N, K] : {std::tuple{1, 64, 64},
                         {16, 33, 5},
                         {17, 300, 70},
                         {128, 1024, 256},
                         {40, 256, 512},
                         {1100, 96, 40}})
    for (bool bias : {false, true})
      for (int threads : {1, 2}) {
        SCOPED_TRACE(fmt::format("threads={} M={} N={} K={} bias={}", threads, M, N, K, bias));
        set_num_threads(threads);
        Array x = kernels::randn({M, K}, 0, 1, kFloat32, &g);
        Array w = kernels::randn({N, K}, 0, 1, kFloat32, &g);
        Array b = bias ? kernels::randn({N}, 0, 1, kFloat32, &g) : Array();
        const int64_t before = kernels::packed_weight_stats().copies;
        EXPECT_TRUE(all_close(kernels::linear_forward(x, w, b, true),
                              kernels::linear_forward_reference(x, w, b), tol));
        const int64_t packed = kernels::packed_weight_stats().copies - before;
        // linear_forward's rule: 16 rows, and 16 a thread when split over the threads.
        const bool split = threads > 1 && int64_t{M} * N * K >= (int64_t{1} << 18);
        if (avx512 && M >= 16 && (!split || M >= 16 * threads))
          EXPECT_GE(packed, 1) << "no packed copy kept";
        else
          EXPECT_EQ(packed, 0);
        // Again: the kept copy serves (none added), same result.
        EXPECT_TRUE(all_close(kernels::linear_forward(x, w, b, true),
                              kernels::linear_forward_reference(x, w, b), tol));
        EXPECT_EQ(kernels::packed_weight_stats().copies - before, packed);
        // An in-place write (bumps w's version): the new values are multiplied, and the old
        // copy is replaced, not kept beside the new one.
        w.copy_(kernels::randn({N, K}, 0, 1, kFloat32, &g));
        EXPECT_TRUE(all_close(kernels::linear_forward(x, w, b, true),
                              kernels::linear_forward_reference(x, w, b), tol));
        EXPECT_EQ(kernels::packed_weight_stats().copies - before, packed);
        // w freed; a new weight of the same size (often at the same address) gets its own packing.
        w = Array();
        Array w2 = kernels::randn({N, K}, 0, 1, kFloat32, &g);
        EXPECT_TRUE(all_close(kernels::linear_forward(x, w2, b, true),
                              kernels::linear_forward_reference(x, w2, b), tol));
        EXPECT_EQ(kernels::packed_weight_stats().copies - before, packed);
      }
  set_num_threads(saved);
}

int process_threads() {
  int n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task"))
    ++n;
  return n;
}

// oneDNN threads through Kiln's pool: at 2 threads its GEMMs (sgemm, and the matmul primitive of
// linear_forward's packed weights) run as panels on oneTBB's workers, so
// the process gains no OpenMP threads, and the caller's OpenMP setting (LibTorch's, say) survives.
TEST(Gemm, OneDnnStartsNoThreadsAndKeepsTheCallersOpenMpSetting) {
  BackendGuard guard;
  Generator g(16);
  const int saved = get_num_threads();
  set_num_threads(2);
  Array a = kernels::randn({256, 256}, 0, 1, kFloat32, &g);
  set_gemm_backend(GemmBackend::OpenBlas);
  Array warm = kernels::matmul(a, a);  // oneTBB's workers exist from here on
  const int before = process_threads();
  const int omp_saved = omp_get_max_threads();
  omp_set_num_threads(3);
  set_gemm_backend(GemmBackend::OneDnn);
  for (int i = 0; i < 5; ++i) {
    Array c = kernels::matmul(a, a);
    parallel_invoke([&] { kernels::matmul(a, a); }, [&] { kernels::matmul(a, a); });
    // The matmul primitive on packed weights (linear_forward's inference path) too.
    Array y = kernels::linear_forward(a, a, Array(), /*reuse_weights=*/true);
  }
  EXPECT_EQ(process_threads(), before);
  EXPECT_EQ(omp_get_max_threads(), 3);
  omp_set_num_threads(omp_saved);
  set_num_threads(saved);
}

TEST(Gemm, BackendNamesParseAndUnknownNamesThrow) {
  EXPECT_EQ(parse_gemm_backend("openblas"), GemmBackend::OpenBlas);
  EXPECT_EQ(parse_gemm_backend("onednn"), GemmBackend::OneDnn);
  EXPECT_STREQ(gemm_backend_name(GemmBackend::OneDnn), "onednn");
  try {
    parse_gemm_backend("mkl");
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "KILN_GEMM: unknown GEMM backend 'mkl' (use openblas or onednn)");
  }
  // Without KILN_GEMM the default follows what oneDNN runs on this CPU.
  if (std::getenv("KILN_GEMM") == nullptr) {
    const bool avx512 = onednn_cpu_isa().rfind("avx512_core", 0) == 0;
    BackendGuard guard;
    EXPECT_EQ(gemm_backend(), avx512 ? GemmBackend::OneDnn : GemmBackend::OpenBlas)
        << onednn_cpu_isa();
  }
}

// parallel_invoke runs both branches, gives each half the threads (so GEMMs and loops inside run
// serially at two threads), restores the count afterwards and passes exceptions on. A GEMM large
// enough to split still matches the float64 reference inside a branch.
TEST(Parallel, InvokeRunsBothBranchesWithHalfTheThreads) {
  Generator g(13);
  kiln::testing::ScopedNumThreads scoped(1);
  const Array a = kernels::randn({96, 80}, 0, 1, kFloat32, &g);  // 96·64·80 MACs: above the split
  const Array b = kernels::randn({80, 64}, 0, 1, kFloat32, &g);
  const Array ref = kernels::matmul_reference(a, b);
  for (int threads : {1, 2, 4}) {
    SCOPED_TRACE(fmt::format("{} threads", threads));
    scoped.set(threads);
    int seen_a = 0, seen_b = 0;
    Array ca, cb;
    parallel_invoke(
        [&] {
          seen_a = available_threads();
          ca = kernels::matmul(a, b);
        },
        [&] {
          seen_b = available_threads();
          cb = kernels::matmul(a, b);
        });
    const int want = threads == 1 ? 1 : threads / 2;
    EXPECT_EQ(seen_a, want);
    EXPECT_EQ(seen_b, want);
    EXPECT_EQ(available_threads(), threads);
    EXPECT_TRUE(all_close(ca, ref, {1e-4, 1e-4}));
    EXPECT_TRUE(all_close(cb, ref, {1e-4, 1e-4}));
    EXPECT_THROW(parallel_invoke([] {}, [] { throw std::runtime_error("branch b"); }),
                 std::runtime_error);
    EXPECT_EQ(available_threads(), threads);
  }
}

TEST(Gemm, BatchedBroadcastMatchesPyTorch) {
  Array a = golden("core/mm_a.npy"), b = golden("core/mm_b.npy");
  Array out = kernels::matmul(a, b);
  EXPECT_EQ(out.shape(), (Shape{2, 3, 5, 4}));
  EXPECT_TRUE(all_close(out, golden("core/mm_out.npy"), kGemmF32));
  // Transposed views are passed to BLAS as flags and give the same result as copies.
  Array bt = b.transpose(-1, -2).contiguous();
  EXPECT_TRUE(all_close(kernels::matmul(a, bt, false, true), out, kGemmF32));
  EXPECT_TRUE(all_close(kernels::matmul(a, bt.transpose(-1, -2)), out, kGemmF32));
}

TEST(Gemm, Float64AndVectorCases) {
  Array m = kernels::arange(0, 6, 1, kFloat64).view({2, 3});
  Array v = kernels::ones({3}, kFloat64);
  EXPECT_EQ(format_array(kernels::matmul(m, v), 1), "[3.0, 12.0]");
  EXPECT_EQ(kernels::matmul(v, v).dim(), 0);
  EXPECT_THROW(kernels::matmul(m, m), ShapeError);
  EXPECT_THROW(kernels::matmul(m, kernels::ones({3}, kFloat32)), TypeError);
}

}  // namespace
}  // namespace kiln
