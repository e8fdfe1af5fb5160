// Fused nn kernels (tensor/softmax.h, normalization.h, loss.h, dropout.h) against their naive float64 reference twins, on several
// shapes, dims and non-contiguous inputs, plus thread-count invariance and dropout's mask.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "kiln/tensor/creation.h"
#include "kiln/tensor/dropout.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/linalg.h"
#include "kiln/tensor/loss.h"
#include "kiln/tensor/normalization.h"
#include "kiln/tensor/ops.h"
#include "kiln/tensor/parallel.h"
#include "kiln/tensor/reduce.h"
#include "kiln/tensor/softmax.h"
#include "test_support.h"

namespace kiln::kernels {
namespace {

// |a − b| <= atol + rtol·|b|, elementwise.
struct Tol {
  double rtol, atol;
};
// float32 kernels vs the float64 twin: a handful of float32 roundings per element (exp, one scale)
// on values of order 1; the float64 row sums keep the error from growing with the row length.
constexpr Tol kF32Rowwise{1e-5, 2e-6};
// float32 reductions over a whole column of rows (dweight / dbias over R rows): float32 inputs
// summed in float64, so the error is the float32 rounding of each product, not R of them.
constexpr Tol kF32Column{1e-5, 1e-5};
// float64 kernels vs float64 twins: only summation order differs.
constexpr Tol kF64{1e-12, 1e-12};

void expect_close(const Array& got, const Array& want, Tol tol, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  Array g = got.to(kFloat64).contiguous(), w = want.to(kFloat64).contiguous();
  const double *gp = g.data<double>(), *wp = w.data<double>();
  int64_t bad = 0, first = -1;
  double worst = 0;
  for (int64_t i = 0; i < g.numel(); ++i) {
    const double err = std::abs(gp[i] - wp[i]);
    worst = std::max(worst, err);
    if (!(err <= tol.atol + tol.rtol * std::abs(wp[i]))) {
      if (first < 0) first = i;
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << g.numel() << " elements differ; first at "
                    << first << " got " << (first >= 0 ? gp[first] : 0) << " want "
                    << (first >= 0 ? wp[first] : 0) << "; max error " << worst;
}

void expect_identical(const Array& a, const Array& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  ASSERT_EQ(a.dtype(), b.dtype()) << what;
  Array x = a.contiguous(), y = b.contiguous();
  EXPECT_EQ(std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()), 0) << what << " differs bitwise";
}

Array randn_seeded(const Shape& s, uint64_t seed, double std = 1.0, DType dt = kFloat32) {
  Generator g(seed);
  return randn(s, 0.0, std, dt, &g);
}

struct DimCase {
  Shape shape;
  int64_t dim;
};
// Rows along the last dim, an inner dim with 1 < I < the column block, I spanning several column
// blocks, dim 0, a 1-D row and a single element.
const DimCase kDimCases[] = {{{7, 33}, -1},  {{3, 130, 5}, 1}, {{2, 6, 300}, 1},
                             {{5, 3, 4}, 0}, {{65}, 0},        {{1}, -1}};

TEST(NnSoftmax, MatchesReferenceAlongAnyDim) {
  for (DType dt : {kFloat32, kFloat64}) {
    const Tol tol = dt == kFloat32 ? kF32Rowwise : kF64;
    uint64_t seed = 1;
    for (const DimCase& c : kDimCases) {
      const std::string what = fmt::format("{} {} dim {}", dt, c.shape, c.dim);
      Array x = randn_seeded(c.shape, seed++, 3.0, dt), dy = randn_seeded(c.shape, seed++, 1.0, dt);
      Array y = softmax(x, c.dim), ly = log_softmax(x, c.dim);
      expect_close(y, softmax_reference(x, c.dim), tol, "softmax " + what);
      expect_close(ly, log_softmax_reference(x, c.dim), tol, "log_softmax " + what);
      expect_close(softmax_backward(dy, y, c.dim), softmax_backward_reference(dy, y, c.dim), tol,
                   "softmax_backward " + what);
      expect_close(log_softmax_backward(dy, ly, c.dim),
                   log_softmax_backward_reference(dy, ly, c.dim), tol,
                   "log_softmax_backward " + what);
    }
  }
}

TEST(NnSoftmax, NonContiguousInputAndLargeLogits) {
  // A transposed view (the softmax dim strided) and a sliced one (rows with a gap between them).
  Array base = randn_seeded({40, 24}, 7, 30.0);
  for (const Array& x : {base.transpose(0, 1), base.slice(1, 3, 20, 2)}) {
    expect_close(softmax(x, -1), softmax_reference(x, -1), kF32Rowwise,
                 fmt::format("softmax of view {}", x.shape()));
    expect_close(log_softmax(x, 0), log_softmax_reference(x, 0), kF32Rowwise,
                 fmt::format("log_softmax of view {}", x.shape()));
  }
  // Rows sum to 1 and partial -inf entries get probability exactly 0.
  Array m = full({2, 5}, 1.0);
  m.data<float>()[1] = -std::numeric_limits<float>::infinity();
  Array y = softmax(m, -1);
  EXPECT_EQ(y.at({0, 1}), 0.0);
  EXPECT_NEAR(sum(y, {1}).at({0}), 1.0, 1e-6);
}

TEST(NnLayerNorm, MatchesReferenceWithAndWithoutAffine) {
  for (DType dt : {kFloat32, kFloat64}) {
    const Tol row = dt == kFloat32 ? kF32Rowwise : kF64, col = dt == kFloat32 ? kF32Column : kF64;
    // R = 200 rows spans several of the backward's fixed row blocks; D = 37 leaves a lane
    // remainder.
    for (auto [R, D] : {std::pair<int64_t, int64_t>{200, 37}, {3, 1024}, {1, 5}}) {
      Array x = add(randn_seeded({R, D}, 11, 2.0, dt), 3.0), dy = randn_seeded({R, D}, 12, 1.0, dt);
      Array w = randn_seeded({D}, 13, 1.0, dt), b = randn_seeded({D}, 14, 1.0, dt);
      for (bool affine : {true, false}) {
        const std::string what = fmt::format("{} ({}, {}) affine {}", dt, R, D, affine);
        Array wa = affine ? w : Array{}, ba = affine ? b : Array{};
        LayerNormForward f = layer_norm(x, D, wa, ba, 1e-5),
                         r = layer_norm_reference(x, D, wa, ba, 1e-5);
        expect_close(f.y, r.y, row, "y " + what);
        expect_close(f.mean, r.mean, kF64, "mean " + what);
        expect_close(f.rstd, r.rstd, {1e-10, 0}, "rstd " + what);
        LayerNormGrads g = layer_norm_backward(dy, x, f.mean, f.rstd, wa, D, true, true, true);
        LayerNormGrads gr = layer_norm_backward_reference(dy, x, wa, D, 1e-5);
        expect_close(g.dx, gr.dx, row, "dx " + what);
        expect_close(g.dweight, gr.dweight, col, "dweight " + what);
        expect_close(g.dbias, gr.dbias, col, "dbias " + what);
      }
    }
  }
}

TEST(NnLayerNorm, NonContiguousInputAndPartialGrads) {
  Array x = randn_seeded({16, 12}, 21).transpose(0, 1);  // (12, 16), rows strided
  Array dy = randn_seeded({12, 16}, 22);
  LayerNormForward f = layer_norm(x, 16, Array{}, Array{}, 1e-5);
  expect_close(f.y, layer_norm_reference(x, 16, Array{}, Array{}, 1e-5).y, kF32Rowwise,
               "y of a transposed view");
  LayerNormGrads g = layer_norm_backward(dy, x, f.mean, f.rstd, Array{}, 16, false, true, false);
  EXPECT_FALSE(g.dx.defined());
  EXPECT_FALSE(g.dbias.defined());
  expect_close(g.dweight, layer_norm_backward_reference(dy, x, Array{}, 16, 1e-5).dweight,
               kF32Column, "dweight only");
}

// The fused residual kernel against its twin (dropout_keep() element by element, then the layer-norm
// twins), at p = 0 (no mask), 0.1 and 0.5, and with counters that cross a 2^32 run boundary
// inside a row (the mask's key changes there).
TEST(NnDropoutAddLayerNorm, MatchesReferenceTwin) {
  const uint64_t kSeed = 99, kNearRun = (uint64_t{1} << 32) - 50;
  for (DType dt : {kFloat32, kFloat64}) {
    const Tol row = dt == kFloat32 ? kF32Rowwise : kF64, col = dt == kFloat32 ? kF32Column : kF64;
    // The kernel's row statistics are of s rounded to float32 (as the three separate passes'
    // are), the twin's of s in float64: one float32 rounding per element, so rowwise tolerance.
    const Tol stat = dt == kFloat32 ? kF32Rowwise : Tol{1e-10, 1e-12};
    for (auto [R, D] : {std::pair<int64_t, int64_t>{200, 37}, {3, 1024}}) {
      Array x = randn_seeded({R, D}, 31, 1.0, dt), h = randn_seeded({R, D}, 32, 2.0, dt);
      Array dy = randn_seeded({R, D}, 33, 1.0, dt);
      Array w = randn_seeded({D}, 34, 1.0, dt), b = randn_seeded({D}, 35, 1.0, dt);
      for (double p : {0.0, 0.1, 0.5})
        for (uint64_t offset : {uint64_t{7}, kNearRun}) {
          const std::string what = fmt::format("{} ({}, {}) p {} offset {}", dt, R, D, p, offset);
          AddLayerNormForward f = dropout_add_layer_norm(x, h, p, kSeed, offset, D, w, b, 1e-5);
          AddLayerNormForward r =
              dropout_add_layer_norm_reference(x, h, p, kSeed, offset, D, w, b, 1e-5);
          expect_close(f.sum, r.sum, row, "sum " + what);
          expect_close(f.y, r.y, row, "y " + what);
          expect_close(f.mean, r.mean, stat, "mean " + what);
          expect_close(f.rstd, r.rstd, stat, "rstd " + what);
          AddLayerNormGrads g = dropout_add_layer_norm_backward(
              dy, f.sum, f.mean, f.rstd, w, D, p, kSeed, offset, true, true, true, true);
          AddLayerNormGrads gr =
              dropout_add_layer_norm_backward_reference(dy, x, h, p, kSeed, offset, w, D, 1e-5);
          expect_close(g.dx, gr.dx, row, "dx " + what);
          expect_close(g.dh, gr.dh, row, "dh " + what);
          expect_close(g.dweight, gr.dweight, col, "dweight " + what);
          expect_close(g.dbias, gr.dbias, col, "dbias " + what);
        }
    }
  }
}

// The fused pass computes exactly what dropout, add and layer_norm compute one after the other
// (the same mask, the same float32 operations in the same order), so training with it follows the
// same trajectory bit for bit.
TEST(NnDropoutAddLayerNorm, EqualsTheThreePassesBitForBit) {
  const int64_t R = 64, D = 96;
  Array x = randn_seeded({R, D}, 41), h = randn_seeded({R, D}, 42), dy = randn_seeded({R, D}, 43);
  Array w = randn_seeded({D}, 44), b = randn_seeded({D}, 45);
  const double p = 0.1;
  const uint64_t seed = 5, offset = 1234;
  AddLayerNormForward f = dropout_add_layer_norm(x, h, p, seed, offset, D, w, b, 1e-5);
  Array s = add(x, dropout(h, p, seed, offset));
  LayerNormForward l = layer_norm(s, D, w, b, 1e-5);
  EXPECT_EQ(std::memcmp(f.sum.data<float>(), s.data<float>(), sizeof(float) * R * D), 0);
  EXPECT_EQ(std::memcmp(f.y.data<float>(), l.y.data<float>(), sizeof(float) * R * D), 0);
  // Not kept (inference): s is built in y's own row and normalised in place; the same y.
  for (const double q : {p, 0.0}) {
    AddLayerNormForward k = dropout_add_layer_norm(x, h, q, seed, offset, D, w, b, 1e-5, false);
    AddLayerNormForward kept = dropout_add_layer_norm(x, h, q, seed, offset, D, w, b, 1e-5);
    EXPECT_FALSE(k.sum.defined() || k.mean.defined() || k.rstd.defined());
    EXPECT_EQ(std::memcmp(k.y.data<float>(), kept.y.data<float>(), sizeof(float) * R * D), 0);
  }
  AddLayerNormGrads g = dropout_add_layer_norm_backward(dy, f.sum, f.mean, f.rstd, w, D, p, seed,
                                                        offset, false, true, false, false);
  EXPECT_FALSE(g.dx.defined());
  EXPECT_FALSE(g.dweight.defined());
  LayerNormGrads lg = layer_norm_backward(dy, s, l.mean, l.rstd, w, D, true, false, false);
  Array dh = dropout(lg.dx, p, seed, offset);
  EXPECT_EQ(std::memcmp(g.dh.data<float>(), dh.data<float>(), sizeof(float) * R * D), 0);
}

TEST(NnDropoutAddLayerNorm, BadInputIsAClearError) {
  Array x = zeros({4, 8}), h = zeros({4, 6});
  auto message = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message([&] {
              dropout_add_layer_norm(x, h, 0.1, 1, 0, 8, {}, {}, 1e-5);
            }).find("dropout_add_layer_norm: residual [4, 8] and sub-layer output [4, 6] differ"),
            std::string::npos);
  EXPECT_NE(message([&] {
              dropout_add_layer_norm(x, x, 1.0, 1, 0, 8, {}, {}, 1e-5);
            }).find("dropout_add_layer_norm: p must be in [0, 1), got 1"),
            std::string::npos);
}

struct CeCase {
  int64_t N, K;
  bool weighted;
  int64_t ignore_index;
  double smoothing;
};

TEST(NnCrossEntropy, MatchesReference) {
  const CeCase cases[] = {{9, 5, false, -100, 0.0}, {9, 5, true, -100, 0.0},
                          {16, 11, true, 3, 0.1},   {16, 11, false, 3, 0.25},
                          {4, 1000, true, 7, 0.05}, {3, 1, false, -100, 0.3}};
  for (DType dt : {kFloat32, kFloat64}) {
    // The float32 loss is a difference of two sums of order K·|x|; allow that cancellation.
    const Tol tol = dt == kFloat32 ? Tol{2e-5, 1e-5} : kF64;
    uint64_t seed = 100;
    for (const CeCase& c : cases) {
      const std::string what = fmt::format("{} N {} K {} weighted {} ignore {} ε {}", dt, c.N, c.K,
                                           c.weighted, c.ignore_index, c.smoothing);
      Array x = randn_seeded({c.N, c.K}, seed++, 2.0, dt);
      Generator gt(seed++);
      Array t = randint(0, c.K, {c.N}, kInt64, &gt);
      for (int64_t i = 0; i < c.N; i += 3)
        if (c.ignore_index >= 0 && c.ignore_index < c.K) t.data<int64_t>()[i] = c.ignore_index;
      Generator gw(seed++);
      Array w = c.weighted ? rand({c.K}, 0.5, 2.0, dt, &gw) : Array{};
      CrossEntropyForward f = softmax_cross_entropy(x, t, w, c.ignore_index, c.smoothing, true);
      CrossEntropyForward r = softmax_cross_entropy_reference(x, t, w, c.ignore_index, c.smoothing);
      expect_close(f.loss, r.loss, tol, "loss " + what);
      expect_close(f.grad, r.grad, tol, "grad " + what);
      EXPECT_NEAR(f.total_weight, r.total_weight, 1e-12) << what;
      CrossEntropyForward no_grad =
          softmax_cross_entropy(x, t, w, c.ignore_index, c.smoothing, false);
      EXPECT_FALSE(no_grad.grad.defined());
      // Same values; not bitwise, as Eigen peels unaligned row heads onto its scalar exp.
      expect_close(no_grad.loss, f.loss, tol, "loss without grad " + what);
    }
  }
}

TEST(NnCrossEntropy, IgnoredRowsAndNonContiguousLogits) {
  Array x = randn_seeded({7, 6}, 31).transpose(0, 1);  // (6, 7), column-major
  Array t = from_vector<int64_t>({0, -1, 6, 2, -1, 5});
  CrossEntropyForward f = softmax_cross_entropy(x, t, Array{}, -1, 0.0, true);
  CrossEntropyForward r = softmax_cross_entropy_reference(x, t, Array{}, -1, 0.0);
  expect_close(f.loss, r.loss, kF32Rowwise, "loss");
  expect_close(f.grad, r.grad, kF32Rowwise, "grad");
  EXPECT_EQ(f.loss.at({1}), 0.0);
  EXPECT_EQ(sum(unary(UnaryOp::Abs, f.grad.select(0, 4))).item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(f.total_weight, 4.0);
}

TEST(NnCrossEntropy, OutOfRangeClassIdIsAClearError) {
  Array x = zeros({3, 4});
  for (int64_t bad : {4, -2}) {
    Array t = from_vector<int64_t>({0, bad, 1});
    try {
      softmax_cross_entropy(x, t, Array{}, -100, 0.0, false);
      FAIL() << "expected an error for class id " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(
                    fmt::format("target[1] = {} is out of range for 4 classes", bad)),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(nll_loss(x, from_vector<int64_t>({0, 1, 9}), Array{}, -100), Error);
}

TEST(NnKernels, ResultsDoNotDependOnThreadCount) {
  kiln::testing::ScopedNumThreads threads(1);
  Array x = randn_seeded({512, 96}, 41, 2.0), dy = randn_seeded({512, 96}, 42);
  Array w = randn_seeded({96}, 43);
  Generator gt(44);
  Array t = randint(0, 96, {512}, kInt64, &gt);
  auto run = [&] {
    LayerNormForward f = layer_norm(x, 96, w, Array{}, 1e-5);
    LayerNormGrads g = layer_norm_backward(dy, x, f.mean, f.rstd, w, 96, true, true, true);
    CrossEntropyForward ce = softmax_cross_entropy(x, t, Array{}, -100, 0.1, true);
    return std::vector<Array>{softmax(x, -1), softmax(x, 0), f.y,
                              g.dx,           g.dweight,     g.dbias,
                              ce.loss,        ce.grad,       dropout(x, 0.3, 5, 17)};
  };
  std::vector<Array> one = run();
  threads.set(2);
  std::vector<Array> two = run();
  for (size_t i = 0; i < one.size(); ++i)
    expect_identical(one[i], two[i], fmt::format("result {}", i));
}

TEST(NnDropout, InvertedMaskIsReproducible) {
  Array x = ones({200, 100});
  Array a = dropout(x, 0.3, 9, 0), b = dropout(x, 0.3, 9, 0), c = dropout(x, 0.3, 9, 20000);
  expect_identical(a, b, "same seed and offset");
  const double kept = mean(binary(BinaryOp::Ne, a, 0.0).to(kFloat64)).item<double>();
  EXPECT_NEAR(kept, 0.7, 0.01);  // 20000 Bernoulli draws: the standard error is 0.003
  // Kept values are scaled by 1/(1 − p), so the mean is preserved.
  EXPECT_NEAR(amax(a).item<double>(), 1.0 / 0.7, 1e-6);
  EXPECT_NEAR(mean(a).item<double>(), 1.0, 0.02);
  EXPECT_GT(sum(binary(BinaryOp::Ne, a, c).to(kFloat64)).item<double>(), 1000.0)
      << "another offset, another mask";
  expect_identical(dropout(x, 0.0, 9, 0), x, "p = 0");
  EXPECT_EQ(amax(dropout(x, 1.0, 9, 0)).item<double>(), 0.0);
  // A strided view is masked by its logical (row-major) index, like its contiguous copy.
  Array v = randn_seeded({30, 20}, 3).transpose(0, 1);
  expect_identical(dropout(v, 0.5, 4, 8), dropout(v.contiguous(), 0.5, 4, 8), "view vs copy");
}

// The vectorised kernel against its scalar definition, element by element, across a run boundary
// of the counter's high word (offset 2³² − 1000), for float32 and float64 and several p.
TEST(NnDropout, KernelMatchesScalarKeepRuleAcrossCounterRuns) {
  const uint64_t offset = (uint64_t{1} << 32) - 1000;
  for (DType dt : {kFloat32, kFloat64})
    for (double p : {0.1, 0.5, 0.9}) {
      SCOPED_TRACE(fmt::format("{} p={}", dt, p));
      Array x = randn_seeded({3000}, 5).to(dt);
      Array y = dropout(x, p, 77, offset).to(kFloat64);
      Array xd = x.to(kFloat64);
      // The kernel scales in the array's dtype: 1/(1 − p) rounded to float for float32.
      const double scale = dt == kFloat32 ? static_cast<float>(1.0 / (1.0 - p)) : 1.0 / (1.0 - p);
      int64_t mismatches = 0;
      for (int64_t i = 0; i < 3000; ++i) {
        const bool keep = dropout_keep(77, offset + static_cast<uint64_t>(i), p);
        const double want = keep ? xd.data<double>()[i] * scale : 0.0;
        // float32 products round once: well inside 1e-6 relative.
        if (std::abs(y.data<double>()[i] - want) > 1e-6 * std::abs(want)) ++mismatches;
      }
      EXPECT_EQ(mismatches, 0);
    }
}

// The keep rule as a random source: the kept fraction for several p, and no dependence between
// neighbours (the four keep/drop patterns of consecutive pairs at p = 0.5 each near 1/4).
TEST(NnDropout, KeepRuleIsUnbiasedAndNeighboursAreIndependent) {
  constexpr int64_t n = 200000;  // binomial standard error of a fraction: <= 0.0011
  for (double p : {0.1, 0.3, 0.5, 0.9}) {
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) kept += dropout_keep(3, static_cast<uint64_t>(i), p);
    EXPECT_NEAR(static_cast<double>(kept) / n, 1.0 - p, 0.005) << "p=" << p;
  }
  int64_t pairs[4] = {0, 0, 0, 0};
  for (int64_t i = 0; i < n; i += 2)
    ++pairs[2 * dropout_keep(11, static_cast<uint64_t>(i), 0.5) +
            dropout_keep(11, static_cast<uint64_t>(i + 1), 0.5)];
  for (int64_t k : pairs) EXPECT_NEAR(static_cast<double>(k) / (n / 2), 0.25, 0.01);
}

TEST(NnBatchNorm, StatsMatchReductions) {
  Array x = randn_seeded({6, 5, 4, 3}, 51, 2.0);
  BatchNormStats st = batch_norm_stats(x);
  expect_close(st.mean, mean(x.to(kFloat64), {0, 2, 3}), kF64, "mean");
  expect_close(st.var, var(x.to(kFloat64), {0, 2, 3}, 0), {1e-10, 1e-12}, "biased var");
}

TEST(NnAttentionRows, FullyMaskedRowIsZeroAndMaskBroadcasts) {
  // scores (2, 3, 4): batch 1's mask hides every key for query 0 and the last key for the others.
  Array s = randn_seeded({2, 3, 4}, 61), s_ref = s.clone();
  const double inf = std::numeric_limits<double>::infinity();
  Array mask_full = zeros({2, 3, 4});
  mask_full.select(0, 1).select(0, 0).fill_(-inf);
  mask_full.select(0, 1).slice(0, 1, 3).select(1, 3).fill_(-inf);
  attention_softmax_(s, 0.5, mask_full);
  EXPECT_EQ(sum(unary(UnaryOp::Abs, s.select(0, 1).select(0, 0))).item<double>(), 0.0);
  EXPECT_EQ(s.at({1, 2, 3}), 0.0);
  expect_close(s.select(0, 0), softmax_reference(mul(s_ref.select(0, 0), 0.5), -1), kF32Rowwise,
               "unmasked batch");
  // A (2, 3, 1) mask broadcast along the keys shifts every score of a row equally: softmax
  // unchanged.
  Array s2 = s_ref.clone();
  Generator g(5);
  attention_softmax_(s2, 0.5, rand({2, 3, 1}, -3, 3, kFloat32, &g));
  expect_close(s2, softmax_reference(mul(s_ref, 0.5), -1), kF32Rowwise, "row-constant mask");
  // Backward of a zero row is zero.
  Array dp = randn_seeded({2, 3, 4}, 62);
  attention_softmax_backward_(dp, s, 0.5);
  EXPECT_EQ(sum(unary(UnaryOp::Abs, dp.select(0, 1).select(0, 0))).item<double>(), 0.0);
}

// The inference attention (scores kept per (batch, head) entry in a scratch block) against its
// reference twin: each entry in float64 with matmul_reference, the scaled + masked scores through
// softmax_reference, then matmul_reference with v. Entries are strided (B, H, T, d) views of
// (B, T, H, d) arrays, Tq != Tk, and the mask broadcasts (B, 1, 1, Tk) with batch 1's last two
// keys hidden, plus one fully masked query row (zeros out); also float64 and no mask.
TEST(NnAttentionNoGrad, MatchesReferencePerEntry) {
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : {kFloat32, kFloat64}) {
    for (bool masked : {true, false}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + (masked ? " masked" : " no mask"));
      const int64_t B = 2, H = 3, Tq = 5, Tk = 7, d = 4, dv = 6;
      const Array q = randn_seeded({B, Tq, H, d}, 71).to(dt).transpose(1, 2);
      const Array k = randn_seeded({B, Tk, H, d}, 72).to(dt).transpose(1, 2);
      const Array v = randn_seeded({B, Tk, H, dv}, 73).to(dt).transpose(1, 2);
      Array mask;
      if (masked) {
        mask = zeros({B, 1, Tq, Tk}, dt);
        mask.select(0, 1).slice(2, Tk - 2, Tk).fill_(-inf);
        mask.select(0, 0).select(0, 0).select(0, 3).fill_(-inf);  // query 3 of batch 0: all hidden
      }
      const double scale = 0.5;
      const Array y = attention_no_grad(q, k, v, mask, scale);
      ASSERT_EQ(y.shape(), (Shape{B, H, Tq, dv}));
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h) {
          const Array qi = q.select(0, b).select(0, h).to(kFloat64);
          const Array ki = k.select(0, b).select(0, h).to(kFloat64).transpose(0, 1).contiguous();
          const Array vi = v.select(0, b).select(0, h).to(kFloat64);
          Array s = mul(matmul_reference(qi, ki), scale);
          if (masked) s = add(s, mask.select(0, b).select(0, 0).to(kFloat64));
          Array p = softmax_reference(s, -1);
          if (masked && b == 0) p.select(0, 3).fill_(0.0);  // fully masked: attends to nothing
          expect_close(y.select(0, b).select(0, h), matmul_reference(p, vi).to(dt),
                       dt == kFloat32 ? kF32Rowwise : kF64, "entry");
        }
      if (masked) {
        EXPECT_EQ(sum(unary(UnaryOp::Abs, y.select(0, 0).select(1, 3))).item<double>(), 0.0);
      }
    }
  }
  // Shapes that do not fit are an error naming the op.
  EXPECT_THROW(
      attention_no_grad(zeros({2, 3, 4}), zeros({2, 5, 3}), zeros({2, 5, 4}), Array{}, 1.0), Error);
}

}  // namespace
}  // namespace kiln::kernels
