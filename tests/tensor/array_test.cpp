// Array layout, views, dtype promotion, creation and random reproducibility.
#include <gtest/gtest.h>

#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/io.h"
#include "kiln/tensor/ops.h"
#include "kiln/tensor/parallel.h"
#include "tensor/test_util.h"
#include "test_support.h"

namespace kiln {
namespace {

using kernels::arange;

TEST(Array, StorageIs64ByteAligned) {
  for (int n : {1, 3, 17, 1000}) {
    Array a({n}, kFloat32);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a.raw_data()) % 64, 0u);
  }
}

TEST(Array, ViewsShareStorageWithoutCopies) {
  Array a = arange(0, 24, 1, kFloat32).view({2, 3, 4});
  Array t = a.transpose(0, 2);
  EXPECT_TRUE(t.shares_storage(a));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(t.at({3, 2, 1}), a.at({1, 2, 3}));
  Array s = a.slice(2, 1, 4, 2);  // columns 1 and 3
  EXPECT_EQ(s.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(s.at({1, 2, 1}), 23);
  Array sel = a.select(1, -1);
  EXPECT_EQ(sel.shape(), (Shape{2, 4}));
  EXPECT_EQ(sel.at({0, 0}), 8);
  Array e = arange(0, 3, 1, kFloat32).view({3, 1}).expand({2, 3, 4});
  EXPECT_EQ(e.strides(), (Strides{0, 1, 0}));
  EXPECT_EQ(e.at({1, 2, 3}), 2);
  Array p = a.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.contiguous().at({3, 1, 2}), a.at({1, 2, 3}));
  EXPECT_EQ(a.unsqueeze(0).squeeze(0).shape(), a.shape());
  EXPECT_EQ(a.flatten(1).shape(), (Shape{2, 12}));
}

TEST(Array, ViewOfTransposedNeedsReshape) {
  Array a = arange(0, 6, 1, kFloat32).view({2, 3}).transpose(0, 1);
  EXPECT_THROW(a.view({6}), ShapeError);
  Array r = a.reshape({6});
  EXPECT_FALSE(r.shares_storage(a));
  EXPECT_EQ(r.at({1}), 3);  // a is [[0,3],[1,4],[2,5]]
  EXPECT_EQ(arange(0, 6, 1, kFloat32).view({2, -1}).shape(), (Shape{2, 3}));
}

TEST(Array, VersionCounterBumpsOnInPlaceWrites) {
  Array a = kernels::zeros({3});
  Array v = a.slice(0, 1, 2);
  uint64_t v0 = a.version();
  v.fill_(1.0);
  EXPECT_GT(a.version(), v0);
  EXPECT_EQ(a.at({1}), 1.0);
}

TEST(DType, PromotionFollowsPyTorch) {
  EXPECT_EQ(promote_types(kInt64, kFloat32), kFloat32);
  EXPECT_EQ(promote_types(kBool, kUInt8), kUInt8);
  EXPECT_EQ(promote_types(kInt32, kInt64), kInt64);
  EXPECT_EQ(promote_types(kFloat32, kFloat64), kFloat64);
  Array i = arange(0, 4, 1, kInt64);
  EXPECT_EQ(kernels::add(i, kernels::ones({4}, kFloat32)).dtype(), kFloat32);
  EXPECT_EQ(kernels::add(i, 2.0).dtype(), kInt64);    // integral scalar keeps int64
  EXPECT_EQ(kernels::add(i, 2.5).dtype(), kFloat32);  // fractional scalar gives float32
  EXPECT_EQ(kernels::div(i, i).dtype(), kFloat32);    // true division
  EXPECT_EQ(kernels::binary(kernels::BinaryOp::Lt, i, 2.0).dtype(), kBool);
  EXPECT_EQ(kernels::unary(kernels::UnaryOp::Exp, i).dtype(), kFloat32);
}

TEST(Creation, RangesAndIdentity) {
  EXPECT_EQ(format_array(arange(0, 5, 2, kInt64)), "[0, 2, 4]");
  Array l = kernels::linspace(0, 1, 5);
  EXPECT_FLOAT_EQ(static_cast<float>(l.at({4})), 1.0f);
  EXPECT_FLOAT_EQ(static_cast<float>(l.at({1})), 0.25f);
  Array e = kernels::eye(3);
  EXPECT_EQ(e.at({1, 1}), 1);
  EXPECT_EQ(e.at({1, 2}), 0);
  EXPECT_THROW(kernels::from_vector(std::vector<float>{1, 2, 3}, {2, 2}), ShapeError);
}

TEST(Random, ReproducibleForASeedAtAnyThreadCount) {
  kiln::testing::ScopedNumThreads scoped(1);
  auto draw = [&scoped](int threads) {
    scoped.set(threads);
    Generator g(42);
    Array u = kernels::rand({300000}, 0, 1, kFloat32, &g);
    Array n = kernels::randn({1000}, 0, 1, kFloat32, &g);
    return std::pair{u, n};
  };
  auto [u1, n1] = draw(1);
  auto [u2, n2] = draw(2);
  EXPECT_TRUE(testing::all_close(u1, u2, {0, 0}));
  EXPECT_TRUE(testing::all_close(n1, n2, {0, 0}));
  Generator g(43);
  EXPECT_FALSE(testing::all_close(u1, kernels::rand({300000}, 0, 1, kFloat32, &g), {0, 0}));
}

TEST(Random, DistributionsHaveTheRightMoments) {
  Generator g(1);
  Array n = kernels::randn({200000}, 2.0, 3.0, kFloat64, &g);
  const double* p = n.data<double>();
  double m = 0, v = 0;
  for (int64_t i = 0; i < n.numel(); ++i) m += p[i];
  m /= n.numel();
  for (int64_t i = 0; i < n.numel(); ++i) v += (p[i] - m) * (p[i] - m);
  v /= n.numel();
  // Standard error of the mean is 3/√200000 ≈ 0.0067; allow 5 of them.
  EXPECT_NEAR(m, 2.0, 0.034);
  EXPECT_NEAR(std::sqrt(v), 3.0, 0.03);
  Array r = kernels::randint(3, 7, {10000}, kInt64, &g);
  const int64_t* q = r.data<int64_t>();
  int64_t lo = 100, hi = -100;
  for (int64_t i = 0; i < r.numel(); ++i) lo = std::min(lo, q[i]), hi = std::max(hi, q[i]);
  EXPECT_EQ(lo, 3);
  EXPECT_EQ(hi, 6);
  Array perm = kernels::randperm(100, &g);
  std::vector<int64_t> seen(100, 0);
  for (int64_t i = 0; i < 100; ++i) seen[perm.data<int64_t>()[i]]++;
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 100);
}

TEST(Print, FormatsLikePyTorch) {
  Array a = kernels::arange(0, 4, 1, kFloat32).view({2, 2});
  EXPECT_EQ(format_array(a), "[[0.0000, 1.0000],\n [2.0000, 3.0000]]");
  EXPECT_EQ(format_array(kernels::arange(0, 3, 1, kInt64)), "[0, 1, 2]");
  std::string big = format_array(kernels::zeros({2000}));
  EXPECT_NE(big.find("..."), std::string::npos);
}

}  // namespace
}  // namespace kiln
