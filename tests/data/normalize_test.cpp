// Normalizer: ML.NET's min-max and mean-variance maps, checked against values worked by hand.
#include "kiln/data/normalize.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>

#include "kiln/tensor/error.h"

namespace kiln::data {
namespace {

namespace fs = std::filesystem;

// The maps are evaluated in double and rounded once to float: 1 float ulp near 1 is ~1.2e-7.
constexpr float kTol = 1e-6f;

// x = {1, 3, 5, NaN, 9}: the finite values have min 1, max 9, mean 4.5, population variance
// ((-3.5)^2 + (-1.5)^2 + 0.5^2 + 4.5^2) / 4 = 35 / 4 = 8.75, and E[x^2] = 8.75 + 4.5^2 = 29.
const std::vector<float> kX{1, 3, 5, NAN, 9};

std::vector<float> apply(const AffineNormalization& m) {
  std::vector<float> y;
  for (float v : kX) y.push_back(m.apply(v));
  return y;
}

void expect_near(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << i;
    } else {
      EXPECT_NEAR(got[i], want[i], kTol) << i;
    }
  }
}

TEST(Normalize, MinMaxByHand) {
  const AffineNormalization m = fit_min_max(kX, /*fix_zero=*/false);
  EXPECT_EQ(m.offset, 1.0);
  EXPECT_EQ(m.scale, 1.0 / 8.0);
  expect_near(apply(m), {0.0, 0.25, 0.5, NAN, 1.0});
  // ML.NET's default: zero stays zero, scale by 1 / max(|min|, |max|) = 1/9.
  const AffineNormalization z = fit_min_max(kX);
  EXPECT_EQ(z.offset, 0.0);
  expect_near(apply(z), {1 / 9.0, 3 / 9.0, 5 / 9.0, NAN, 1.0});
}

TEST(Normalize, MeanVarianceByHand) {
  const AffineNormalization m = fit_mean_variance(kX, /*fix_zero=*/false);
  const double std = std::sqrt(8.75);
  EXPECT_DOUBLE_EQ(m.offset, 4.5);
  EXPECT_DOUBLE_EQ(m.scale, 1.0 / std);
  expect_near(apply(m), {-3.5 / std, -1.5 / std, 0.5 / std, NAN, 4.5 / std});
  const AffineNormalization z = fit_mean_variance(kX);  // 1 / RMS = 1 / sqrt(29)
  EXPECT_EQ(z.offset, 0.0);
  const double rms = std::sqrt(29.0);
  expect_near(apply(z), {1 / rms, 3 / rms, 5 / rms, NAN, 9 / rms});
}

TEST(Normalize, ConstantColumnMapsToZeroAndEmptyIsAnError) {
  const std::vector<float> c{2, 2, INFINITY, 2};
  for (const AffineNormalization& m : {fit_min_max(c), fit_mean_variance(c, false)}) {
    EXPECT_EQ(m.scale, 0.0);
    EXPECT_EQ(m.apply(2.f), 0.f);
  }
  const std::vector<float> none{NAN, INFINITY};
  EXPECT_THROW(fit_min_max(none), Error);
  EXPECT_THROW(fit_mean_variance({}), Error);
}

TEST(Normalizer, TableTransformInverseAndErrors) {
  Table t;
  t.add_column(Column("age", std::vector<float>{10, 20, 30}));
  t.add_column(Column("fare", std::vector<float>{-1, 0, 1}));
  t.add_column(Column("name", std::vector<std::string>{"a", "b", "c"}));
  const Normalizer n = Normalizer::min_max(t, {"age", "fare"}, /*fix_zero=*/false);
  EXPECT_EQ(n.column_names(), (std::vector<std::string>{"age", "fare"}));
  const Table y = n.transform(t);
  EXPECT_EQ(y["age"].floats(), (std::vector<float>{0, 0.5f, 1}));
  EXPECT_EQ(y["fare"].floats(), (std::vector<float>{0, 0.5f, 1}));
  std::vector<float> back = y["age"].floats();
  n.inverse_transform("age", back);
  EXPECT_EQ(back, t["age"].floats());
  EXPECT_THROW(Normalizer::min_max(t, {"name"}), TypeError);
  std::string message;
  try {
    n.params("height");
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_EQ(message, "Normalizer: no map for column \"height\" (fitted columns: age, fare)");
  Table missing;
  missing.add_column(Column("age", std::vector<float>{1}));
  EXPECT_THROW(n.transform_in_place(missing), Error);
  EXPECT_EQ(missing["age"].floats()[0], 1.f);  // untouched: columns are checked before any edit
}

TEST(Normalizer, SaveLoadRoundTripIsExact) {
  Table t;
  t.add_column(Column("x\ty", std::vector<float>{0.1f, 0.7f, 123.456f, -5.f}));
  t.add_column(Column("z", std::vector<float>{1e-7f, 3e-7f, 2e-7f, 0.f}));
  Normalizer n = Normalizer::mean_variance(t, {"x\ty", "z"}, false);
  n.set("w", fit_min_max(t["z"].floats()));
  const fs::path p = fs::temp_directory_path() / fmt::format("kiln_norm_{}.txt", ::getpid());
  n.save(p);
  const Normalizer back = Normalizer::load(p);
  ASSERT_EQ(back.column_names(), n.column_names());
  for (const std::string& c : n.column_names()) {
    EXPECT_EQ(back.params(c).offset, n.params(c).offset) << c;
    EXPECT_EQ(back.params(c).scale, n.params(c).scale) << c;
    EXPECT_EQ(back.params(c).kind, n.params(c).kind) << c;
    EXPECT_EQ(back.params(c).fix_zero, n.params(c).fix_zero) << c;
  }
  std::ofstream(p) << "kiln-normalizer 1\n1\nx\tmin_max\t1\tabc\t2\n";
  EXPECT_THROW(Normalizer::load(p), IOError);
  fs::remove(p);
}

}  // namespace
}  // namespace kiln::data
