#pragma once
// Shared helpers for tensor tests: named tolerances and array comparison.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "kiln/io/npy.h"
#include "kiln/tensor/array.h"

namespace kiln::testing {

/// |a − b| <= atol + rtol·|b|, elementwise.
struct Tol {
  double rtol, atol;
};

inline ::testing::AssertionResult all_close(const Array& a, const Array& b, Tol tol) {
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure()
           << "shapes differ: " << fmt::format("{} vs {}", a.shape(), b.shape());
  Array x = a.to(kFloat64).contiguous(), y = b.to(kFloat64).contiguous();
  const double* p = x.data<double>();
  const double* q = y.data<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    bool both_nan = std::isnan(p[i]) && std::isnan(q[i]);
    if (!both_nan && !(std::abs(p[i] - q[i]) <= tol.atol + tol.rtol * std::abs(q[i])))
      return ::testing::AssertionFailure() << "element " << i << ": " << p[i] << " vs " << q[i]
                                           << " (rtol " << tol.rtol << ", atol " << tol.atol << ")";
  }
  return ::testing::AssertionSuccess();
}

inline Array golden(const std::string& rel) {
  return load_npy(std::string(KILN_SOURCE_DIR) + "/tests/golden/" + rel).data();
}

}  // namespace kiln::testing
