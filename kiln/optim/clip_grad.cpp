#include "kiln/optim/clip_grad.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kiln/tensor/error.h"
#include "kiln/tensor/ops.h"
#include "kiln/tensor/parallel.h"

namespace kiln::optim {
namespace {

std::vector<Tensor> tensors_of(const NamedParameters& params) {
  std::vector<Tensor> out;
  for (const auto& [n, p] : params) out.push_back(p);
  return out;
}

// Σ x² over n values, in float64: fixed blocks of kBlock values (so the sum does not depend on the
// thread count), each summed in 8 interleaved float64 lanes (so the loop vectorises without
// reassociating), blocks in parallel, then the block sums in order. Reads float32 gradients in
// place instead of copying them to float64 first.
template <typename T>
double sum_squares(const T* x, int64_t n) {
  constexpr int64_t kBlock = 1 << 14;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> part(static_cast<size_t>(blocks));
  parallel_for(0, blocks, std::max<int64_t>(1, kGrainSize / kBlock), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const T* xb = x + b * kBlock;
      const int64_t m = std::min(kBlock, n - b * kBlock);
      double lanes[8] = {};
      int64_t i = 0;
      for (; i + 8 <= m; i += 8)
        for (int l = 0; l < 8; ++l) {
          const double v = static_cast<double>(xb[i + l]);
          lanes[l] += v * v;
        }
      double t = 0;
      for (; i < m; ++i) t += static_cast<double>(xb[i]) * static_cast<double>(xb[i]);
      for (int l = 0; l < 8; ++l) t += lanes[l];
      part[static_cast<size_t>(b)] = t;
    }
  });
  double total = 0;
  for (double v : part) total += v;
  return total;
}

// Σ|g|^p (or max |g| when p is infinite) of one gradient, accumulated in float64.
double partial_norm(const Array& g, double p) {
  if (p == 2.0 && g.is_contiguous()) {
    if (g.dtype() == kFloat32) return sum_squares(g.data<float>(), g.numel());
    if (g.dtype() == kFloat64) return sum_squares(g.data<double>(), g.numel());
  }
  Array c = g.to(kFloat64).contiguous();
  const double* x = c.data<double>();
  double acc = 0;
  const bool inf = std::isinf(p);
  for (int64_t i = 0; i < c.numel(); ++i) {
    const double a = std::abs(x[i]);
    if (inf) {
      acc = std::isnan(a) ? a : std::max(acc, a);
      if (std::isnan(acc)) break;
    } else if (p == 2.0) {
      acc += a * a;
    } else if (p == 1.0) {
      acc += a;
    } else {
      acc += std::pow(a, p);
    }
  }
  return acc;
}

}  // namespace

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  KILN_CHECK(norm_type > 0, "clip_grad_norm_: norm_type must be positive (or infinity), got {}",
             norm_type);
  const bool inf = std::isinf(norm_type);
  double acc = 0;
  bool any = false;
  for (const auto& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    any = true;
    const double part = partial_norm(g.data(), norm_type);
    acc = inf ? (std::isnan(part) || std::isnan(acc) ? std::numeric_limits<double>::quiet_NaN()
                                                     : std::max(acc, part))
              : acc + part;
  }
  if (!any) return 0.0;
  const double total =
      inf ? acc : (norm_type == 2.0 ? std::sqrt(acc) : std::pow(acc, 1.0 / norm_type));
  if (!std::isfinite(total)) {
    KILN_CHECK(!error_if_nonfinite,
               "clip_grad_norm_: the total norm of order {} of the gradients is non-finite ({}), "
               "so it cannot be "
               "clipped (pass error_if_nonfinite=false to clip anyway)",
               norm_type, total);
  }
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0 || std::isnan(coef)) {
    for (const auto& p : params) {
      Tensor g = p.grad();
      if (!g.defined()) continue;
      Tensor(p.impl_ptr()).set_grad(Tensor(kernels::mul(g.data(), coef)));
    }
  }
  return total;
}

double clip_grad_norm_(const NamedParameters& params, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  return clip_grad_norm_(tensors_of(params), max_norm, norm_type, error_if_nonfinite);
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  KILN_CHECK(clip_value >= 0, "clip_grad_value_: clip_value must be >= 0, got {}", clip_value);
  for (const auto& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor(p.impl_ptr()).set_grad(Tensor(kernels::clamp(g.data(), -clip_value, clip_value)));
  }
}

void clip_grad_value_(const NamedParameters& params, double clip_value) {
  clip_grad_value_(tensors_of(params), clip_value);
}

}  // namespace kiln::optim
