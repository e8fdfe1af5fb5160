// Pooling kernels (tensor/pool.h) against their reference twins — max (values and indices), average
// (count_include_pad) and adaptive average, forward and backward, 2-D and 1-D — plus NaN
// propagation, thread-count invariance and float32 results against PyTorch goldens
// (tests/golden/make_conv_golden.py). Legend: B batch, C channels, H × W or L spatial.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"
#include "kiln/tensor/pool.h"
#include "tensor/test_util.h"
#include "test_support.h"

namespace kiln::kernels {
namespace {

using kiln::testing::all_close;
using kiln::testing::golden;
using kiln::testing::Tol;

// Max pooling selects elements and does no arithmetic: values, indices and the scattered gradient
// (at most one dy per input element unless windows overlap, then a few float adds) must agree
// exactly or to the last few ulps.
constexpr Tol kExact{0, 0};
constexpr Tol kScatterF32{1e-6, 1e-7};
// Average pools: window sums in float64 then one division (forward); backward adds ≤ kh·kw float32
// shares per input element.
constexpr Tol kAvgF32{1e-6, 1e-6};
// float64 against the float64 twins: summation order only.
constexpr Tol kPoolF64{1e-12, 1e-12};
// float32 against PyTorch's float32 (which sums windows in float32).
constexpr Tol kGoldenF32{1e-5, 1e-6};

Array randn_seeded(const Shape& s, uint64_t seed, DType dt) {
  Generator g(seed);
  return randn(s, 0.0, 1.0, dt, &g);
}

struct PoolCase {
  const char* label;
  Shape x;  // (B, C, H, W) or (B, C, L)
  Pool2dParams p;
};

Pool2dParams p2d(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
  return Pool2dParams{kh, kw, sh, sw, ph, pw};
}
Pool2dParams p1d(int64_t k, int64_t s, int64_t pad) {
  return Pool2dParams{1, k, 1, s, 0, pad};
}

const PoolCase kCases[] = {
    {"2x2 stride 2", {2, 3, 8, 9}, p2d(2, 2, 2, 2, 0, 0)},
    // LeNet's first pool: 196 outputs per plane, so the fast path's 64-window chunks span rows and
    // planes, and planes split across threads.
    {"2x2 stride 2, LeNet's 28x28 planes", {8, 6, 28, 28}, p2d(2, 2, 2, 2, 0, 0)},
    {"3x2 stride (2, 1) pad 1", {2, 3, 9, 8}, p2d(3, 2, 2, 1, 1, 1)},
    {"3x3 stride 3 pad 1 (uncovered rows)", {1, 2, 7, 7}, p2d(3, 3, 3, 3, 1, 1)},
    {"whole plane", {1, 1, 5, 6}, p2d(5, 6, 1, 1, 0, 0)},
    {"overlapping 2x3 stride (1, 2) pad 1", {3, 4, 6, 6}, p2d(2, 3, 1, 2, 1, 1)},
    {"parallel planes", {4, 64, 12, 12}, p2d(3, 3, 2, 2, 1, 1)},
    {"1-D k3 s2 p1", {2, 3, 11}, p1d(3, 2, 1)},
    {"1-D k2 s2", {1, 2, 8}, p1d(2, 2, 0)},
};

TEST(MaxPool, ForwardAndBackwardMatchReference) {
  uint64_t seed = 100;
  for (const PoolCase& c : kCases) {
    for (DType dt : {kFloat32, kFloat64}) {
      SCOPED_TRACE(fmt::format("{} ({})", c.label, dtype_name(dt)));
      const Array x = randn_seeded(c.x, seed++, dt);
      const MaxPoolResult got = max_pool2d_forward(x, c.p), want = max_pool2d_reference(x, c.p);
      EXPECT_TRUE(all_close(got.values, want.values, kExact)) << "values";
      EXPECT_TRUE(all_close(got.indices, want.indices, kExact)) << "indices";
      const Array dy = randn_seeded(got.values.shape(), seed++, dt);
      EXPECT_TRUE(all_close(max_pool2d_backward(dy, got.indices, x.shape()),
                            max_pool2d_backward_reference(dy, want.indices, x.shape()),
                            dt == kFloat32 ? kScatterF32 : kPoolF64))
          << "backward";
    }
  }
}

TEST(MaxPool, PaddingNeverWinsAndNaNPropagates) {
  Array x = full({1, 1, 3, 3}, -5.0);
  const MaxPoolResult r = max_pool2d_forward(x, p2d(3, 3, 1, 1, 1, 1));
  EXPECT_TRUE(all_close(r.values, full({1, 1, 3, 3}, -5.0), kExact));
  x.data<float>()[4] = std::numeric_limits<float>::quiet_NaN();  // the centre, in every window
  const MaxPoolResult n = max_pool2d_forward(x, p2d(3, 3, 1, 1, 1, 1));
  for (int64_t i = 0; i < 9; ++i) {
    EXPECT_TRUE(std::isnan(n.values.data<float>()[i])) << i;
    EXPECT_EQ(n.indices.data<int64_t>()[i], 4) << i;
  }
}

// The 2 × 2 stride-2 fast path against the twin on ties, NaNs and -inf: a tie keeps the first tap
// (row-major), a NaN replaces anything and the last NaN wins, an all -inf window picks its first
// tap. Odd H and W leave the last row and column uncovered.
TEST(MaxPool, TwoByTwoFastPathMatchesReferenceOnTiesAndNaN) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : {kFloat32, kFloat64}) {
    SCOPED_TRACE(dtype_name(dt));
    Array x = randn_seeded({2, 3, 7, 9}, 150, kFloat64);
    double* v = x.data<double>();
    // Plane 0: window (0, 0) ties at 2.0 on taps 1 and 3; window (0, 1) holds two NaNs; window
    // (1, 0) is all -inf; window (1, 1) has a NaN on its first tap only.
    v[1] = 2.0, v[9 + 1] = 2.0, v[0] = -1.0, v[9] = -1.0;
    v[2] = nan, v[9 + 3] = nan;
    v[18] = v[19] = v[27] = v[28] = -inf;
    v[20] = nan;
    const Array xt = x.to(dt);
    const MaxPoolResult got = max_pool2d_forward(xt, p2d(2, 2, 2, 2, 0, 0));
    const MaxPoolResult want = max_pool2d_reference(xt, p2d(2, 2, 2, 2, 0, 0));
    EXPECT_TRUE(all_close(got.indices, want.indices, kExact)) << "indices";
    EXPECT_EQ(got.indices.data<int64_t>()[0], 1);
    EXPECT_EQ(got.indices.data<int64_t>()[1], 12);
    EXPECT_EQ(got.indices.data<int64_t>()[4], 18);
    EXPECT_EQ(got.indices.data<int64_t>()[5], 20);
    const Array gv = got.values.to(kFloat64), wv = want.values.to(kFloat64);
    for (int64_t i = 0; i < gv.numel(); ++i) {
      const double a = gv.data<double>()[i], b = wv.data<double>()[i];
      EXPECT_TRUE(a == b || (std::isnan(a) && std::isnan(b))) << i << ": " << a << " vs " << b;
    }
  }
}

TEST(AvgPool, ForwardAndBackwardMatchReference) {
  uint64_t seed = 200;
  for (const PoolCase& c : kCases) {
    for (DType dt : {kFloat32, kFloat64}) {
      SCOPED_TRACE(fmt::format("{} ({})", c.label, dtype_name(dt)));
      const Tol tol = dt == kFloat32 ? kAvgF32 : kPoolF64;
      const Array x = randn_seeded(c.x, seed++, dt);
      const Array y = avg_pool2d_forward(x, c.p);
      EXPECT_TRUE(all_close(y, avg_pool2d_reference(x, c.p), tol)) << "forward";
      const Array dy = randn_seeded(y.shape(), seed++, dt);
      EXPECT_TRUE(all_close(avg_pool2d_backward(dy, x.shape(), c.p),
                            avg_pool2d_backward_reference(dy, x.shape(), c.p), tol))
          << "backward";
    }
  }
}

TEST(AdaptiveAvgPool, ForwardAndBackwardMatchReference) {
  struct Case {
    Shape x;
    int64_t out_h, out_w;
  };
  // Uneven bins, more outputs than inputs (overlapping bins), global pooling, identity, parallel.
  const Case cases[] = {{{2, 3, 10, 7}, 4, 3}, {{1, 2, 5, 6}, 7, 4}, {{2, 3, 8, 8}, 1, 1},
                        {{1, 2, 6, 9}, 6, 9},  {{2, 2, 7, 5}, 3, 2}, {{4, 64, 14, 14}, 5, 5}};
  uint64_t seed = 300;
  for (const Case& c : cases) {
    for (DType dt : {kFloat32, kFloat64}) {
      SCOPED_TRACE(fmt::format("{} -> ({}, {}) ({})", c.x, c.out_h, c.out_w, dtype_name(dt)));
      const Tol tol = dt == kFloat32 ? kAvgF32 : kPoolF64;
      const Array x = randn_seeded(c.x, seed++, dt);
      const Array y = adaptive_avg_pool2d_forward(x, c.out_h, c.out_w);
      EXPECT_TRUE(all_close(y, adaptive_avg_pool2d_reference(x, c.out_h, c.out_w), tol));
      const Array dy = randn_seeded(y.shape(), seed++, dt);
      EXPECT_TRUE(all_close(adaptive_avg_pool2d_backward(dy, x.shape()),
                            adaptive_avg_pool2d_backward_reference(dy, x.shape()), tol))
          << "backward";
    }
  }
}

TEST(Pool, SameResultAtOneAndTwoThreads) {
  kiln::testing::ScopedNumThreads threads(1);
  const Array x = randn_seeded({4, 64, 12, 12}, 400, kFloat32);
  const Pool2dParams p = p2d(3, 3, 2, 2, 1, 1);
  Array out[2][5];
  for (int t : {1, 2}) {
    threads.set(t);
    out[t - 1][0] = max_pool2d_forward(x, p).values;
    out[t - 1][1] = avg_pool2d_backward(avg_pool2d_forward(x, p), x.shape(), p);
    out[t - 1][2] = adaptive_avg_pool2d_forward(x, 5, 3);
    const MaxPoolResult fast = max_pool2d_forward(x, p2d(2, 2, 2, 2, 0, 0));  // 2 × 2 fast path
    out[t - 1][3] = fast.values;
    out[t - 1][4] = fast.indices;
  }
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(all_close(out[0][i], out[1][i], kExact)) << i;
}

TEST(Pool, ShapeErrorsNameTheOpTheInputAndTheKernel) {
  try {
    pool2d_output_shape("max_pool2d", zeros({1, 1, 2, 2}), p2d(3, 3, 1, 1, 0, 0));
    FAIL() << "no error";
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(),
                 "max_pool2d: input [1, 1, 2, 2] is too small for kernel [3, 3]: padded size 2 < "
                 "kernel 3 on dim 2 (input + 2·padding must be >= kernel)");
  }
  EXPECT_THROW(max_pool2d_forward(zeros({1, 1, 6, 6}), p2d(2, 2, 2, 2, 2, 0)), ShapeError);
  EXPECT_THROW(avg_pool2d_forward(zeros({1, 1, 6, 6}), p2d(2, 0, 2, 2, 0, 0)), ShapeError);
  EXPECT_THROW(adaptive_avg_pool2d_forward(zeros({1, 6, 6}), 2, 2), ShapeError);
  EXPECT_THROW(adaptive_avg_pool2d_forward(zeros({1, 1, 6, 6}), 0, 2), ShapeError);
}

// ---- float32 against PyTorch (tests/golden/make_conv_golden.py) ----

Array g(const std::string& name, const char* key) {
  return golden("conv/" + name + "_" + key + ".npy");
}

Pool2dParams params_of(const std::string& name) {
  const Array a = g(name, "params");
  const int64_t* q = a.data<int64_t>();
  return Pool2dParams{q[0], q[1], q[2], q[3], q[4], q[5]};
}

TEST(MaxPool, MatchesPyTorchGoldens) {
  for (const std::string name : {"max_pool2d", "max_pool1d"}) {
    SCOPED_TRACE(name);
    const Array x = g(name, "x");
    const MaxPoolResult r = max_pool2d_forward(x, params_of(name));
    EXPECT_TRUE(all_close(r.values, g(name, "y"), kExact));
    EXPECT_TRUE(all_close(r.indices, g(name, "indices"), kExact));
    EXPECT_TRUE(all_close(max_pool2d_backward(g(name, "dy"), r.indices, x.shape()), g(name, "dx"),
                          kGoldenF32));
  }
}

TEST(AvgPool, MatchesPyTorchGoldens) {
  const Array x = g("avg_pool2d", "x");
  const Pool2dParams p = params_of("avg_pool2d");
  EXPECT_TRUE(all_close(avg_pool2d_forward(x, p), g("avg_pool2d", "y"), kGoldenF32));
  EXPECT_TRUE(all_close(avg_pool2d_backward(g("avg_pool2d", "dy"), x.shape(), p),
                        g("avg_pool2d", "dx"), kGoldenF32));
}

TEST(AdaptiveAvgPool, MatchesPyTorchGoldens) {
  for (const std::string name : {"adaptive_avg_pool2d", "adaptive_avg_pool2d_up"}) {
    SCOPED_TRACE(name);
    const Array x = g(name, "x"), params = g(name, "params");
    const int64_t oh = params.data<int64_t>()[0], ow = params.data<int64_t>()[1];
    EXPECT_TRUE(all_close(adaptive_avg_pool2d_forward(x, oh, ow), g(name, "y"), kGoldenF32));
    EXPECT_TRUE(all_close(adaptive_avg_pool2d_backward(g(name, "dy"), x.shape()), g(name, "dx"),
                          kGoldenF32));
  }
}

}  // namespace
}  // namespace kiln::kernels
