// Fused neural-network kernels. Legend: R rows, D row length, K classes (or the softmax dim's
// size), O / I the dims before / after the softmax dim, N loss rows, B batch, C channels, S spatial
// size. Inner loops run on Eigen arrays (vectorised exp) or on 16 independent float64 lanes
// (vectorised sums without reassociating anything, so results do not depend on the compiler's
// choices). The naive float64 twins (*_reference) follow each family.
#include "kiln/tensor/nn_kernels.h"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"
#include "kiln/tensor/random.h"

namespace kiln::kernels {
namespace {

template <typename T>
using Vec = Eigen::Array<T, Eigen::Dynamic, 1>;
template <typename T>
using CMap = Eigen::Map<const Vec<T>>;
template <typename T>
using MMap = Eigen::Map<Vec<T>>;

constexpr double kInf = std::numeric_limits<double>::infinity();

// Σ f(j) for j in [0, n) in float64, over 16 independent lanes (the compiler vectorises the lanes
// into two accumulators, which hides the add latency).
constexpr int kLanes = 16;
template <typename F>
double lane_sum(int64_t n, F f) {
  double lanes[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int k = 0; k < kLanes; ++k) lanes[k] += f(j + k);
  double acc = 0;
  for (; j < n; ++j) acc += f(j);
  for (double l : lanes) acc += l;
  return acc;
}
template <typename T>
double sum_f64(const T* p, int64_t n) {
  return lane_sum(n, [p](int64_t j) { return static_cast<double>(p[j]); });
}
template <typename T>
double dot_f64(const T* a, const T* b, int64_t n) {
  return lane_sum(
      n, [a, b](int64_t j) { return static_cast<double>(a[j]) * static_cast<double>(b[j]); });
}
template <typename T>
T max_of(const T* p, int64_t n) {
  return CMap<T>(p, n).maxCoeff();
}

// Mean and biased variance of a row, in float64. float32: one pass of Σx and Σx² (x² of a float32
// is exact in float64, and float64's 29 spare bits absorb the cancellation in Σx²/n − μ² for any
// |μ|/σ a float32 row can resolve). float64: two passes (mean, then squared deviations).
template <typename T>
std::pair<double, double> row_mean_var(const T* x, int64_t n) {
  const double inv = 1.0 / static_cast<double>(n);
  if constexpr (std::is_same_v<T, float>) {
    double a[kLanes] = {}, b[kLanes] = {};
    int64_t j = 0;
    for (; j + kLanes <= n; j += kLanes)
      for (int k = 0; k < kLanes; ++k) {
        const double v = x[j + k];
        a[k] += v;
        b[k] += v * v;
      }
    double s1 = 0, s2 = 0;
    for (; j < n; ++j) {
      const double v = x[j];
      s1 += v;
      s2 += v * v;
    }
    for (int k = 0; k < kLanes; ++k) {
      s1 += a[k];
      s2 += b[k];
    }
    const double mu = s1 * inv;
    return {mu, std::max(s2 * inv - mu * mu, 0.0)};
  } else {
    const double mu = sum_f64(x, n) * inv;
    return {mu, lane_sum(n, [&](int64_t j) { return (x[j] - mu) * (x[j] - mu); }) * inv};
  }
}

// Rows of `width` elements per task so that each task holds about `work` elements.
int64_t row_grain(int64_t width, int64_t work = kGrainSize / 4) {
  return std::max<int64_t>(1, work / std::max<int64_t>(width, 1));
}

// x as a contiguous array of dtype `dt` (a copy only when needed).
Array contiguous_as(const Array& x, DType dt) {
  return x.dtype() == dt ? x.contiguous() : x.to(dt).contiguous();
}

void check_float(const Array& x, const char* op) {
  KILN_CHECK_TYPE(is_floating(x.dtype()),
                  "{}: dtype {} is not supported (float32 or float64 required)", op, x.dtype());
}

// ---------------------------------------------------------------- softmax family
// The softmax dim splits x (contiguous) into (O, K, I). Rows (I == 1) run along contiguous memory;
// otherwise blocks of up to kColBlock inner columns are processed together, vectorised across
// columns.
struct DimLayout {
  int64_t O = 1, K = 1, I = 1;
};
DimLayout layout_of(const Shape& s, int64_t dim) {
  DimLayout l;
  for (int64_t d = 0; d < static_cast<int64_t>(s.size()); ++d) {
    if (d < dim)
      l.O *= s[d];
    else if (d == dim)
      l.K = s[d];
    else
      l.I *= s[d];
  }
  return l;
}
constexpr int64_t kColBlock = 128;

// Calls f(o, i0, i1) for every outer index and block of inner columns, split across threads.
template <typename F>
void for_each_slice(const DimLayout& l, F f) {
  const int64_t nb = (l.I + kColBlock - 1) / kColBlock;
  parallel_for(0, l.O * nb, row_grain(l.K * std::min(l.I, kColBlock)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o = t / nb, i0 = (t % nb) * kColBlock;
      f(o, i0, std::min(l.I, i0 + kColBlock));
    }
  });
}

enum class SoftmaxKind { Softmax, LogSoftmax };

// One softmax row of K contiguous elements (the max is subtracted before exp: softmax is
// shift-invariant and this keeps exp() <= 1).
template <typename T>
void softmax_row(const T* x, T* y, int64_t K, SoftmaxKind kind) {
  const T m = max_of(x, K);
  MMap<T> ym(y, K);
  ym = (CMap<T>(x, K) - m).exp();
  const double s = sum_f64(y, K);
  if (kind == SoftmaxKind::Softmax) {
    ym *= static_cast<T>(1.0 / s);
  } else {
    // (x − max) first: exact for the large entries, so outputs near 0 keep their precision.
    ym = (CMap<T>(x, K) - m) - static_cast<T>(std::log(s));
  }
}

// The same over a block of w columns with stride I (x, y point at column i0 of row 0).
template <typename T>
void softmax_cols(const T* x, T* y, int64_t K, int64_t I, int64_t w, SoftmaxKind kind) {
  T m[kColBlock];
  double s[kColBlock] = {};
  std::copy(x, x + w, m);
  for (int64_t k = 1; k < K; ++k)
    for (int64_t j = 0; j < w; ++j) m[j] = std::max(m[j], x[k * I + j]);
  for (int64_t k = 0; k < K; ++k) {
    MMap<T>(y + k * I, w) = (CMap<T>(x + k * I, w) - CMap<T>(m, w)).exp();
    for (int64_t j = 0; j < w; ++j) s[j] += static_cast<double>(y[k * I + j]);
  }
  T f[kColBlock];
  for (int64_t j = 0; j < w; ++j)
    f[j] = static_cast<T>(kind == SoftmaxKind::Softmax ? 1.0 / s[j] : std::log(s[j]));
  for (int64_t k = 0; k < K; ++k) {
    MMap<T> yk(y + k * I, w);
    if (kind == SoftmaxKind::Softmax)
      yk *= CMap<T>(f, w);
    else
      yk = (CMap<T>(x + k * I, w) - CMap<T>(m, w)) - CMap<T>(f, w);
  }
}

Array softmax_impl(const Array& x_in, int64_t dim_in, SoftmaxKind kind, const char* op) {
  check_float(x_in, op);
  const int64_t dim = wrap_dim(dim_in, std::max<int64_t>(x_in.dim(), 1), op);
  Array x = x_in.contiguous();
  Array y(x.shape(), x.dtype());
  if (x.numel() == 0) return y;
  const DimLayout l = layout_of(x.shape(), x.dim() == 0 ? -1 : dim);
  KILN_DISPATCH_FLOATING(x.dtype(), op, [&] {
    const scalar_t* xp = x.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    for_each_slice(l, [&](int64_t o, int64_t i0, int64_t i1) {
      const int64_t base = o * l.K * l.I + i0;
      if (l.I == 1)
        softmax_row(xp + base, yp + base, l.K, kind);
      else
        softmax_cols(xp + base, yp + base, l.K, l.I, i1 - i0, kind);
    });
  });
  return y;
}

// Backward rows. Softmax: dx = y ⊙ (dy − Σ dy ⊙ y). LogSoftmax: dx = dy − exp(y) · Σ dy.
template <typename T>
void softmax_backward_row(const T* dy, const T* y, T* dx, int64_t K, SoftmaxKind kind) {
  MMap<T> dxm(dx, K);
  if (kind == SoftmaxKind::Softmax) {
    dxm = CMap<T>(y, K) * (CMap<T>(dy, K) - static_cast<T>(dot_f64(dy, y, K)));
  } else {
    dxm = CMap<T>(dy, K) - CMap<T>(y, K).exp() * static_cast<T>(sum_f64(dy, K));
  }
}
template <typename T>
void softmax_backward_cols(const T* dy, const T* y, T* dx, int64_t K, int64_t I, int64_t w,
                           SoftmaxKind kind) {
  double s[kColBlock] = {};
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < w; ++j) {
      const double d = static_cast<double>(dy[k * I + j]);
      s[j] += kind == SoftmaxKind::Softmax ? d * static_cast<double>(y[k * I + j]) : d;
    }
  T f[kColBlock];
  for (int64_t j = 0; j < w; ++j) f[j] = static_cast<T>(s[j]);
  for (int64_t k = 0; k < K; ++k) {
    CMap<T> dyk(dy + k * I, w), yk(y + k * I, w), fm(f, w);
    if (kind == SoftmaxKind::Softmax)
      MMap<T>(dx + k * I, w) = yk * (dyk - fm);
    else
      MMap<T>(dx + k * I, w) = dyk - yk.exp() * fm;
  }
}

Array softmax_backward_impl(const Array& dy_in, const Array& y_in, int64_t dim_in, SoftmaxKind kind,
                            const char* op) {
  check_float(y_in, op);
  KILN_CHECK_SHAPE(dy_in.shape() == y_in.shape(),
                   "{}: gradient {} does not match output {} (shapes must be equal)", op,
                   dy_in.shape(), y_in.shape());
  const int64_t dim = wrap_dim(dim_in, std::max<int64_t>(y_in.dim(), 1), op);
  Array y = y_in.contiguous(), dy = contiguous_as(dy_in, y.dtype());
  Array dx(y.shape(), y.dtype());
  if (y.numel() == 0) return dx;
  const DimLayout l = layout_of(y.shape(), y.dim() == 0 ? -1 : dim);
  KILN_DISPATCH_FLOATING(y.dtype(), op, [&] {
    const scalar_t* dyp = dy.data<scalar_t>();
    const scalar_t* yp = y.data<scalar_t>();
    scalar_t* dxp = dx.data<scalar_t>();
    for_each_slice(l, [&](int64_t o, int64_t i0, int64_t i1) {
      const int64_t b = o * l.K * l.I + i0;
      if (l.I == 1)
        softmax_backward_row(dyp + b, yp + b, dxp + b, l.K, kind);
      else
        softmax_backward_cols(dyp + b, yp + b, dxp + b, l.K, l.I, i1 - i0, kind);
    });
  });
  return dx;
}

// Reference: plain float64 loops over (O, K, I).
Array softmax_reference_impl(const Array& x_in, int64_t dim_in, SoftmaxKind kind) {
  const int64_t dim = wrap_dim(dim_in, std::max<int64_t>(x_in.dim(), 1), "softmax_reference");
  Array x = x_in.to(kFloat64).contiguous(), y(x.shape(), kFloat64);
  const DimLayout l = layout_of(x.shape(), x.dim() == 0 ? -1 : dim);
  const double* xp = x.data<double>();
  double* yp = y.data<double>();
  for (int64_t o = 0; o < l.O; ++o)
    for (int64_t i = 0; i < l.I; ++i) {
      auto at = [&](int64_t k) { return (o * l.K + k) * l.I + i; };
      double m = -kInf, s = 0;
      for (int64_t k = 0; k < l.K; ++k) m = std::max(m, xp[at(k)]);
      for (int64_t k = 0; k < l.K; ++k) s += std::exp(xp[at(k)] - m);
      for (int64_t k = 0; k < l.K; ++k)
        yp[at(k)] = kind == SoftmaxKind::Softmax ? std::exp(xp[at(k)] - m) / s
                                                 : xp[at(k)] - m - std::log(s);
    }
  return y.to(x_in.dtype());
}
Array softmax_backward_reference_impl(const Array& dy_in, const Array& y_in, int64_t dim_in,
                                      SoftmaxKind kind) {
  const int64_t dim =
      wrap_dim(dim_in, std::max<int64_t>(y_in.dim(), 1), "softmax_backward_reference");
  Array y = y_in.to(kFloat64).contiguous(), dy = dy_in.to(kFloat64).contiguous(),
        dx(y.shape(), kFloat64);
  const DimLayout l = layout_of(y.shape(), y.dim() == 0 ? -1 : dim);
  const double *yp = y.data<double>(), *dyp = dy.data<double>();
  double* dxp = dx.data<double>();
  for (int64_t o = 0; o < l.O; ++o)
    for (int64_t i = 0; i < l.I; ++i) {
      auto at = [&](int64_t k) { return (o * l.K + k) * l.I + i; };
      // Full Jacobian-vector product: dx_j = Σ_k dy_k · ∂y_k/∂x_j.
      for (int64_t j = 0; j < l.K; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < l.K; ++k) {
          const double jac = kind == SoftmaxKind::Softmax ? yp[at(k)] * ((k == j) - yp[at(j)])
                                                          : (k == j) - std::exp(yp[at(j)]);
          acc += dyp[at(k)] * jac;
        }
        dxp[at(j)] = acc;
      }
    }
  return dx.to(y_in.dtype());
}

// Class weights as float64 (1 each when undefined), checked against K.
std::vector<double> class_weights(const Array& weight, int64_t K, const char* op) {
  std::vector<double> w(static_cast<size_t>(K), 1.0);
  if (!weight.defined()) return w;
  KILN_CHECK_SHAPE(weight.dim() == 1 && weight.size(0) == K,
                   "{}: weight {} does not match {} classes (weight must be (K))", op,
                   weight.shape(), K);
  Array wd = weight.to(kFloat64).contiguous();
  std::copy(wd.data<double>(), wd.data<double>() + K, w.begin());
  return w;
}

// Targets as int64, each checked to be a class id or ignore_index (clear error, never UB). Returns
// Σ w_t over rows that are not ignored.
double check_targets(const Array& tgt, int64_t K, int64_t ignore_index,
                     const std::vector<double>& w, const char* op) {
  const int64_t* t = tgt.data<int64_t>();
  double total = 0;
  for (int64_t i = 0; i < tgt.numel(); ++i) {
    if (t[i] == ignore_index) continue;
    KILN_CHECK(
        t[i] >= 0 && t[i] < K,
        "{}: target[{}] = {} is out of range for {} classes (class ids must be in [0, {}) or equal "
        "ignore_index {})",
        op, i, t[i], K, K, ignore_index);
    total += w[static_cast<size_t>(t[i])];
  }
  return total;
}

void check_loss_inputs(const Array& x, const Array& target, const char* op) {
  check_float(x, op);
  KILN_CHECK_SHAPE(x.dim() == 2, "{}: input must be (N, K), got {}", op, x.shape());
  KILN_CHECK_TYPE(is_integral(target.dtype()), "{}: target must hold integer class ids, got {}", op,
                  target.dtype());
  KILN_CHECK_SHAPE(target.dim() == 1 && target.size(0) == x.size(0),
                   "{}: target {} does not match input {} (target must be (N) for input (N, K))",
                   op, target.shape(), x.shape());
}

// ---------------------------------------------------------------- batch norm helpers
// x (B, C, *) as a contiguous (B, C, S) buffer.
struct PlaneLayout {
  int64_t B, C, S;
};
PlaneLayout planes_of(const Array& x, const char* op) {
  KILN_CHECK_SHAPE(x.dim() >= 2, "{}: input must be (B, C, *), got {}", op, x.shape());
  return {x.size(0), x.size(1), x.numel() / std::max<int64_t>(x.size(0) * x.size(1), 1)};
}
std::vector<double> per_channel(const Array& a, int64_t C, double fill) {
  std::vector<double> v(static_cast<size_t>(C), fill);
  if (!a.defined()) return v;
  Array d = a.to(kFloat64).contiguous();
  std::copy(d.data<double>(), d.data<double>() + C, v.begin());
  return v;
}

// One layer-norm backward row, first pass: returns (Σ g, Σ g·x̂) with g = dy·w, x̂ = (x − μ)·rstd,
// and adds dy·x̂ and dy into the column partials bw, bb when they are given. float64 lanes
// throughout.
template <bool kWeight, bool kCols, typename T>
std::pair<double, double> layer_norm_row_sums(const T* x, const T* dy, const T* w, double m,
                                              double s, int64_t D, double* bw, double* bb) {
  double a[kLanes] = {}, b[kLanes] = {};
  auto step = [&](int64_t j, double& sa, double& sb) {
    const double d = static_cast<double>(dy[j]);
    const double xh = (static_cast<double>(x[j]) - m) * s;
    double g = d;
    if constexpr (kWeight) g *= static_cast<double>(w[j]);
    sa += g;
    sb += g * xh;
    if constexpr (kCols) {
      bw[j] += d * xh;
      bb[j] += d;
    }
  };
  int64_t j = 0;
  for (; j + kLanes <= D; j += kLanes)
    for (int k = 0; k < kLanes; ++k) step(j + k, a[k], b[k]);
  double sa = 0, sb = 0;
  for (; j < D; ++j) step(j, sa, sb);
  for (int k = 0; k < kLanes; ++k) {
    sa += a[k];
    sb += b[k];
  }
  return {sa, sb};
}

}  // namespace

// ==================================================================== softmax, log_softmax
Array softmax(const Array& x, int64_t dim) {
  return softmax_impl(x, dim, SoftmaxKind::Softmax, "softmax");
}
Array log_softmax(const Array& x, int64_t dim) {
  return softmax_impl(x, dim, SoftmaxKind::LogSoftmax, "log_softmax");
}
Array softmax_backward(const Array& dy, const Array& y, int64_t dim) {
  return softmax_backward_impl(dy, y, dim, SoftmaxKind::Softmax, "softmax_backward");
}
Array log_softmax_backward(const Array& dy, const Array& y, int64_t dim) {
  return softmax_backward_impl(dy, y, dim, SoftmaxKind::LogSoftmax, "log_softmax_backward");
}
Array softmax_reference(const Array& x, int64_t dim) {
  return softmax_reference_impl(x, dim, SoftmaxKind::Softmax);
}
Array log_softmax_reference(const Array& x, int64_t dim) {
  return softmax_reference_impl(x, dim, SoftmaxKind::LogSoftmax);
}
Array softmax_backward_reference(const Array& dy, const Array& y, int64_t dim) {
  return softmax_backward_reference_impl(dy, y, dim, SoftmaxKind::Softmax);
}
Array log_softmax_backward_reference(const Array& dy, const Array& y, int64_t dim) {
  return softmax_backward_reference_impl(dy, y, dim, SoftmaxKind::LogSoftmax);
}

// ==================================================================== layer norm
LayerNormForward layer_norm(const Array& x_in, int64_t D, const Array& weight, const Array& bias,
                            double eps) {
  check_float(x_in, "layer_norm");
  KILN_CHECK_SHAPE(D >= 1 && x_in.numel() % D == 0,
                   "layer_norm: input {} does not split into rows of {}", x_in.shape(), D);
  const DType dt = x_in.dtype();
  Array x = x_in.contiguous();
  const int64_t R = x.numel() / D;
  LayerNormForward out{Array(x.shape(), dt), Array({R}, kFloat64), Array({R}, kFloat64)};
  Array w = weight.defined() ? contiguous_as(weight, dt) : Array{};
  Array b = bias.defined() ? contiguous_as(bias, dt) : Array{};
  KILN_DISPATCH_FLOATING(dt, "layer_norm", [&] {
    using T = scalar_t;
    const T* xp = x.data<T>();
    T* yp = out.y.data<T>();
    const T* wp = w.defined() ? w.data<T>() : nullptr;
    const T* bp = b.defined() ? b.data<T>() : nullptr;
    double* mp = out.mean.data<double>();
    double* rp = out.rstd.data<double>();
    parallel_for(0, R, row_grain(D), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = xp + r * D;
        const auto [mu, var] = row_mean_var(xr, D);
        const double rs = 1.0 / std::sqrt(var + eps);
        mp[r] = mu;
        rp[r] = rs;
        // One pass: y = (x − μ)·rstd·w + b.
        MMap<T> y(yp + r * D, D);
        auto xhat = (CMap<T>(xr, D) - static_cast<T>(mu)) * static_cast<T>(rs);
        if (wp && bp)
          y = xhat * CMap<T>(wp, D) + CMap<T>(bp, D);
        else if (wp)
          y = xhat * CMap<T>(wp, D);
        else if (bp)
          y = xhat + CMap<T>(bp, D);
        else
          y = xhat;
      }
    });
  });
  return out;
}

LayerNormGrads layer_norm_backward(const Array& dy_in, const Array& x_in, const Array& mean,
                                   const Array& rstd, const Array& weight, int64_t D, bool need_dx,
                                   bool need_dw, bool need_db) {
  check_float(x_in, "layer_norm_backward");
  KILN_CHECK_SHAPE(dy_in.numel() == x_in.numel(),
                   "layer_norm_backward: gradient {} does not match input {}", dy_in.shape(),
                   x_in.shape());
  const DType dt = x_in.dtype();
  Array x = x_in.contiguous(), dy = contiguous_as(dy_in, dt);
  const int64_t R = x.numel() / D;
  Array w = weight.defined() ? contiguous_as(weight, dt) : Array{};
  Array mu = contiguous_as(mean, kFloat64), rs = contiguous_as(rstd, kFloat64);
  LayerNormGrads g;
  if (need_dx) g.dx = Array(x.shape(), dt);
  // dweight / dbias: each of a fixed number of row blocks sums into its own float64 partial; the
  // partials are then added in block order, so the result does not depend on the thread count.
  const bool cols = need_dw || need_db;
  const int64_t nblocks = std::min<int64_t>(R, 64);  // also the units of parallel work
  const int64_t block_rows = (R + nblocks - 1) / std::max<int64_t>(nblocks, 1);
  std::vector<double> pw(cols ? static_cast<size_t>(nblocks * D) : 0, 0.0), pb(pw.size(), 0.0);
  KILN_DISPATCH_FLOATING(dt, "layer_norm_backward", [&] {
    using T = scalar_t;
    const T* xp = x.data<T>();
    const T* dyp = dy.data<T>();
    const T* wp = w.defined() ? w.data<T>() : nullptr;
    const double* mp = mu.data<double>();
    const double* rp = rs.data<double>();
    T* dxp = need_dx ? g.dx.data<T>() : nullptr;
    parallel_for(0, nblocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t blk = b0; blk < b1; ++blk) {
        double* bw = cols ? pw.data() + blk * D : nullptr;
        double* bb = cols ? pb.data() + blk * D : nullptr;
        for (int64_t r = blk * block_rows; r < std::min(R, (blk + 1) * block_rows); ++r) {
          const T *xr = xp + r * D, *dyr = dyp + r * D;
          const double m = mp[r], s = rp[r];
          // Pass 1 (float64): Σ g and Σ g·x̂ with g = dy·w, and this block's dweight / dbias sums.
          auto sums = wp ? (cols ? layer_norm_row_sums<true, true>(xr, dyr, wp, m, s, D, bw, bb)
                                 : layer_norm_row_sums<true, false>(xr, dyr, wp, m, s, D, bw, bb))
                         : (cols ? layer_norm_row_sums<false, true>(xr, dyr, wp, m, s, D, bw, bb)
                                 : layer_norm_row_sums<false, false>(xr, dyr, wp, m, s, D, bw, bb));
          const auto [sg, sgx] = sums;
          if (!need_dx) continue;
          // Pass 2: dx = rstd·(g − mean(g) − x̂·mean(g·x̂)).
          const double mg = sg / static_cast<double>(D), mgx = sgx / static_cast<double>(D);
          CMap<T> dym(dyr, D), xm(xr, D);
          auto xhat_mgx = (xm - static_cast<T>(m)) * static_cast<T>(s * mgx);
          MMap<T> dx(dxp + r * D, D);
          if (wp)
            dx = (dym * CMap<T>(wp, D) - static_cast<T>(mg) - xhat_mgx) * static_cast<T>(s);
          else
            dx = (dym - static_cast<T>(mg) - xhat_mgx) * static_cast<T>(s);
        }
      }
    });
  });
  if (cols) {
    Array dw({D}, dt), db({D}, dt);
    KILN_DISPATCH_FLOATING(dt, "layer_norm_backward", [&] {
      scalar_t* dwp = dw.data<scalar_t>();
      scalar_t* dbp = db.data<scalar_t>();
      parallel_for(0, D, 256, [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j) {
          double aw = 0, ab = 0;
          for (int64_t blk = 0; blk < nblocks; ++blk) {
            aw += pw[blk * D + j];
            ab += pb[blk * D + j];
          }
          dwp[j] = static_cast<scalar_t>(aw);
          dbp[j] = static_cast<scalar_t>(ab);
        }
      });
    });
    if (need_dw) g.dweight = dw;
    if (need_db) g.dbias = db;
  }
  return g;
}

LayerNormForward layer_norm_reference(const Array& x_in, int64_t D, const Array& weight,
                                      const Array& bias, double eps) {
  Array x = x_in.to(kFloat64).contiguous();
  const int64_t R = x.numel() / D;
  std::vector<double> w = per_channel(weight, D, 1.0), b = per_channel(bias, D, 0.0);
  LayerNormForward out{Array(x.shape(), kFloat64), Array({R}, kFloat64), Array({R}, kFloat64)};
  const double* xp = x.data<double>();
  double* yp = out.y.data<double>();
  for (int64_t r = 0; r < R; ++r) {
    double mu = 0, var = 0;
    for (int64_t j = 0; j < D; ++j) mu += xp[r * D + j] / static_cast<double>(D);
    for (int64_t j = 0; j < D; ++j)
      var += (xp[r * D + j] - mu) * (xp[r * D + j] - mu) / static_cast<double>(D);
    const double rs = 1.0 / std::sqrt(var + eps);
    for (int64_t j = 0; j < D; ++j) yp[r * D + j] = (xp[r * D + j] - mu) * rs * w[j] + b[j];
    out.mean.data<double>()[r] = mu;
    out.rstd.data<double>()[r] = rs;
  }
  out.y = out.y.to(x_in.dtype());
  return out;
}

// The textbook chain rule through μ and σ² (a different derivation from the fused kernel's).
LayerNormGrads layer_norm_backward_reference(const Array& dy_in, const Array& x_in,
                                             const Array& weight, int64_t D, double eps) {
  Array x = x_in.to(kFloat64).contiguous(), dy = dy_in.to(kFloat64).contiguous();
  const int64_t R = x.numel() / D;
  std::vector<double> w = per_channel(weight, D, 1.0);
  LayerNormGrads g{Array(x.shape(), kFloat64), zeros({D}, kFloat64), zeros({D}, kFloat64)};
  const double *xp = x.data<double>(), *dyp = dy.data<double>();
  double *dxp = g.dx.data<double>(), *dwp = g.dweight.data<double>(), *dbp = g.dbias.data<double>();
  const double n = static_cast<double>(D);
  for (int64_t r = 0; r < R; ++r) {
    const double* xr = xp + r * D;
    const double* dyr = dyp + r * D;
    double mu = 0, var = 0;
    for (int64_t j = 0; j < D; ++j) mu += xr[j] / n;
    for (int64_t j = 0; j < D; ++j) var += (xr[j] - mu) * (xr[j] - mu) / n;
    const double rs = 1.0 / std::sqrt(var + eps);
    double dvar = 0, dmu = 0, sum_dev = 0;
    for (int64_t j = 0; j < D; ++j) {
      dvar += dyr[j] * w[j] * (xr[j] - mu) * -0.5 * rs * rs * rs;
      dmu += -dyr[j] * w[j] * rs;
      sum_dev += -2.0 * (xr[j] - mu);
    }
    dmu += dvar * sum_dev / n;
    for (int64_t j = 0; j < D; ++j) {
      dxp[r * D + j] = dyr[j] * w[j] * rs + dvar * 2.0 * (xr[j] - mu) / n + dmu / n;
      dwp[j] += dyr[j] * (xr[j] - mu) * rs;
      dbp[j] += dyr[j];
    }
  }
  const DType dt = x_in.dtype();
  return {g.dx.to(dt), g.dweight.to(dt), g.dbias.to(dt)};
}

// ==================================================================== softmax cross-entropy, NLL
CrossEntropyForward softmax_cross_entropy(const Array& logits, const Array& target_in,
                                          const Array& weight, int64_t ignore_index, double eps,
                                          bool compute_grad) {
  check_loss_inputs(logits, target_in, "cross_entropy");
  const DType dt = logits.dtype();
  const int64_t N = logits.size(0), K = logits.size(1);
  Array x = logits.contiguous(), tgt = contiguous_as(target_in, kInt64);
  const std::vector<double> w = class_weights(weight, K, "cross_entropy");
  double wsum = 0;
  for (double v : w) wsum += v;
  CrossEntropyForward out;
  out.total_weight = check_targets(tgt, K, ignore_index, w, "cross_entropy");
  out.loss = Array({N}, dt);
  if (compute_grad) out.grad = Array({N, K}, dt);
  if (N == 0) return out;
  KILN_CHECK_SHAPE(K >= 1, "cross_entropy: logits {} have no classes", logits.shape());
  const double a = 1.0 - eps, b = eps / static_cast<double>(K);
  KILN_DISPATCH_FLOATING(dt, "cross_entropy", [&] {
    using T = scalar_t;
    const T* xp = x.data<T>();
    const int64_t* tp = tgt.data<int64_t>();
    T* lp = out.loss.data<T>();
    T* gp = compute_grad ? out.grad.data<T>() : nullptr;
    Vec<T> wv = Eigen::Map<const Eigen::ArrayXd>(w.data(), K).cast<T>();
    const bool weighted = weight.defined();
    parallel_for(0, N, row_grain(K), [&](int64_t i0, int64_t i1) {
      Vec<T> scratch(compute_grad ? 0 : K);
      for (int64_t i = i0; i < i1; ++i) {
        const T* xr = xp + i * K;
        T* e = compute_grad ? gp + i * K : scratch.data();
        const int64_t t = tp[i];
        if (t == ignore_index) {
          lp[i] = T(0);
          if (compute_grad) std::fill(e, e + K, T(0));
          continue;
        }
        // One pass over the row computes exp(x − max) into the gradient buffer; everything else
        // reuses it.
        const T m = max_of(xr, K);
        MMap<T> em(e, K);
        em = (CMap<T>(xr, K) - m).exp();
        const double s = sum_f64(e, K);
        const double lse = static_cast<double>(m) + std::log(s);
        const double wt = w[static_cast<size_t>(t)];
        double loss = a * wt * (lse - static_cast<double>(xr[t]));
        if (eps > 0) {
          const double wx = weighted ? dot_f64(wv.data(), xr, K) : sum_f64(xr, K);
          loss += b * (wsum * lse - wx);
        }
        lp[i] = static_cast<T>(loss);
        if (!compute_grad) continue;
        // grad_c = p_c·(a·w_t + b·Σw) − b·w_c − a·w_t·[c == t],  p_c = e_c / s.
        const T scale = static_cast<T>((a * wt + b * wsum) / s);
        if (weighted && eps > 0)
          em = em * scale - static_cast<T>(b) * wv;
        else
          em = em * scale - static_cast<T>(b);
        e[t] -= static_cast<T>(a * wt);
      }
    });
  });
  return out;
}

CrossEntropyForward softmax_cross_entropy_reference(const Array& logits, const Array& target_in,
                                                    const Array& weight, int64_t ignore_index,
                                                    double eps) {
  check_loss_inputs(logits, target_in, "cross_entropy");
  const int64_t N = logits.size(0), K = logits.size(1);
  Array x = logits.to(kFloat64).contiguous(), tgt = contiguous_as(target_in, kInt64);
  const std::vector<double> w = class_weights(weight, K, "cross_entropy");
  CrossEntropyForward out{Array({N}, kFloat64), zeros({N, K}, kFloat64),
                          check_targets(tgt, K, ignore_index, w, "cross_entropy")};
  const double* xp = x.data<double>();
  const int64_t* tp = tgt.data<int64_t>();
  for (int64_t i = 0; i < N; ++i) {
    out.loss.data<double>()[i] = 0;
    if (tp[i] == ignore_index) continue;
    std::vector<double> logp(K), p(K);
    double m = -kInf, s = 0;
    for (int64_t c = 0; c < K; ++c) m = std::max(m, xp[i * K + c]);
    for (int64_t c = 0; c < K; ++c) s += std::exp(xp[i * K + c] - m);
    for (int64_t c = 0; c < K; ++c) {
      logp[c] = xp[i * K + c] - m - std::log(s);
      p[c] = std::exp(logp[c]);
    }
    // PyTorch: (1 − ε)·nll + ε/K · (−Σ_c w_c log p_c); gradient of each term written out
    // separately.
    const int64_t t = tp[i];
    double smooth = 0;
    for (int64_t c = 0; c < K; ++c) smooth -= w[c] * logp[c];
    out.loss.data<double>()[i] = (1 - eps) * -w[t] * logp[t] + eps / K * smooth;
    for (int64_t c = 0; c < K; ++c) {
      double gs = 0;
      for (int64_t k = 0; k < K; ++k) gs += w[k] * (p[c] - (c == k));
      out.grad.data<double>()[i * K + c] = (1 - eps) * w[t] * (p[c] - (c == t)) + eps / K * gs;
    }
  }
  out.loss = out.loss.to(logits.dtype());
  out.grad = out.grad.to(logits.dtype());
  return out;
}

Array scale_rows(const Array& grad_in, const Array& row_scale) {
  KILN_CHECK_SHAPE(
      grad_in.dim() == 2 && (row_scale.numel() == 1 || row_scale.numel() == grad_in.size(0)),
      "scale_rows: scale {} does not fit rows of {} (one value, or one per row)", row_scale.shape(),
      grad_in.shape());
  Array g = grad_in.contiguous(), sc = contiguous_as(row_scale, kFloat64),
        out(g.shape(), g.dtype());
  const int64_t N = g.size(0), K = g.size(1);
  const bool one = sc.numel() == 1;
  KILN_DISPATCH_FLOATING(g.dtype(), "scale_rows", [&] {
    const scalar_t* gp = g.data<scalar_t>();
    scalar_t* op = out.data<scalar_t>();
    const double* sp = sc.data<double>();
    parallel_for(0, N, row_grain(K, kGrainSize), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        MMap<scalar_t>(op + i * K, K) =
            CMap<scalar_t>(gp + i * K, K) * static_cast<scalar_t>(sp[one ? 0 : i]);
    });
  });
  return out;
}

CrossEntropyForward nll_loss(const Array& log_probs, const Array& target_in, const Array& weight,
                             int64_t ignore_index) {
  check_loss_inputs(log_probs, target_in, "nll_loss");
  const int64_t N = log_probs.size(0), K = log_probs.size(1);
  Array x = log_probs.contiguous(), tgt = contiguous_as(target_in, kInt64);
  const std::vector<double> w = class_weights(weight, K, "nll_loss");
  CrossEntropyForward out;
  out.total_weight = check_targets(tgt, K, ignore_index, w, "nll_loss");
  out.loss = Array({N}, x.dtype());
  KILN_DISPATCH_FLOATING(x.dtype(), "nll_loss", [&] {
    const scalar_t* xp = x.data<scalar_t>();
    const int64_t* tp = tgt.data<int64_t>();
    scalar_t* lp = out.loss.data<scalar_t>();
    for (int64_t i = 0; i < N; ++i)
      lp[i] = tp[i] == ignore_index
                  ? scalar_t(0)
                  : static_cast<scalar_t>(-w[tp[i]] * static_cast<double>(xp[i * K + tp[i]]));
  });
  return out;
}

Array nll_loss_backward(const Array& g_in, const Array& target_in, const Array& weight,
                        int64_t ignore_index, int64_t K, DType dtype) {
  Array tgt = contiguous_as(target_in, kInt64), g = contiguous_as(g_in, kFloat64);
  const int64_t N = tgt.numel();
  KILN_CHECK_SHAPE(g.numel() == 1 || g.numel() == N,
                   "nll_loss_backward: gradient {} does not fit target {}", g.shape(), tgt.shape());
  const std::vector<double> w = class_weights(weight, K, "nll_loss");
  check_targets(tgt, K, ignore_index, w, "nll_loss");
  Array dx = zeros({N, K}, dtype);
  KILN_DISPATCH_FLOATING(dtype, "nll_loss_backward", [&] {
    scalar_t* dp = dx.data<scalar_t>();
    const int64_t* tp = tgt.data<int64_t>();
    const double* gp = g.data<double>();
    for (int64_t i = 0; i < N; ++i)
      if (tp[i] != ignore_index)
        dp[i * K + tp[i]] = static_cast<scalar_t>(-w[tp[i]] * gp[g.numel() == 1 ? 0 : i]);
  });
  return dx;
}

// ==================================================================== dropout
namespace {

inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bU;
  h ^= h >> 13;
  h *= 0xc2b2ae35U;
  h ^= h >> 16;
  return h;
}

// Keep threshold on the hash's top 24 bits.
uint32_t keep_threshold(double p) {
  return static_cast<uint32_t>(std::llround(p * 16777216.0));
}

}  // namespace

bool dropout_keep(uint64_t seed, uint64_t c, double p) {
  const uint64_t key = Generator::hash(seed, c >> 32);
  const uint32_t h = fmix32(fmix32(static_cast<uint32_t>(c) ^ static_cast<uint32_t>(key)) +
                            static_cast<uint32_t>(key >> 32));
  return (h >> 8) >= keep_threshold(p);
}

Array dropout(const Array& x_in, double p, uint64_t seed, uint64_t offset) {
  check_float(x_in, "dropout");
  KILN_CHECK(p >= 0 && p <= 1, "dropout: p must be in [0, 1], got {}", p);
  Array x = x_in.contiguous(), y(x.shape(), x.dtype());
  if (p == 1) {
    y.zero_();
    return y;
  }
  const auto thr = static_cast<int32_t>(keep_threshold(p));  // <= 2^24
  KILN_DISPATCH_FLOATING(x.dtype(), "dropout", [&] {
    const scalar_t* xp = x.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    const scalar_t scale = static_cast<scalar_t>(1.0 / (1.0 - p));
    parallel_for(0, x.numel(), kGrainSize / 4, [&](int64_t i0, int64_t i1) {
      // Runs of counters with the same high word share one key; within a run the loop is 32-bit
      // integer work the compiler vectorises.
      int64_t i = i0;
      while (i < i1) {
        const uint64_t c0 = offset + static_cast<uint64_t>(i);
        const uint64_t room = (uint64_t{1} << 32) - (c0 & 0xffffffffU);  // 1 .. 2^32 left in run
        const int64_t e =
            static_cast<uint64_t>(i1 - i) <= room ? i1 : i + static_cast<int64_t>(room);
        const uint64_t key = Generator::hash(seed, c0 >> 32);
        const uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
        const uint32_t lo0 = static_cast<uint32_t>(c0);
        const scalar_t* __restrict xs = xp + i;
        scalar_t* __restrict ys = yp + i;
        const int64_t n = e - i;
        for (int64_t j = 0; j < n; ++j) {
          const uint32_t h = fmix32(fmix32((lo0 + static_cast<uint32_t>(j)) ^ k0) + k1);
          // x · mask / (1 − p), as PyTorch computes it (a dropped inf or NaN stays NaN); written
          // without a branch (and with a signed compare: AVX2 has no unsigned one; both sides
          // are below 2^24) so the loop vectorises.
          const int32_t keep = static_cast<int32_t>(h >> 8) >= thr;
          ys[j] = xs[j] * (scale * static_cast<scalar_t>(keep));
        }
        i = e;
      }
    });
  });
  return y;
}

// ==================================================================== batch norm
BatchNormStats batch_norm_stats(const Array& x_in) {
  check_float(x_in, "batch_norm");
  const PlaneLayout L = planes_of(x_in, "batch_norm");
  Array x = x_in.contiguous();
  BatchNormStats st{Array({L.C}, kFloat64), Array({L.C}, kFloat64)};
  const double n = static_cast<double>(L.B * L.S);
  KILN_DISPATCH_FLOATING(x.dtype(), "batch_norm", [&] {
    const scalar_t* xp = x.data<scalar_t>();
    parallel_for(0, L.C, row_grain(L.B * L.S), [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        double s = 0;
        for (int64_t b = 0; b < L.B; ++b) s += sum_f64(xp + (b * L.C + c) * L.S, L.S);
        const double mu = s / n;
        double v = 0;
        for (int64_t b = 0; b < L.B; ++b) {
          const scalar_t* pl = xp + (b * L.C + c) * L.S;
          v += lane_sum(L.S, [&](int64_t j) {
            return (static_cast<double>(pl[j]) - mu) * (static_cast<double>(pl[j]) - mu);
          });
        }
        st.mean.data<double>()[c] = mu;
        st.var.data<double>()[c] = v / n;
      }
    });
  });
  return st;
}

Array batch_norm_forward(const Array& x_in, const Array& mean, const Array& var,
                         const Array& weight, const Array& bias, double eps) {
  check_float(x_in, "batch_norm");
  const PlaneLayout L = planes_of(x_in, "batch_norm");
  Array x = x_in.contiguous(), y(x.shape(), x.dtype());
  const std::vector<double> mu = per_channel(mean, L.C, 0.0), v = per_channel(var, L.C, 1.0),
                            w = per_channel(weight, L.C, 1.0), b = per_channel(bias, L.C, 0.0);
  KILN_DISPATCH_FLOATING(x.dtype(), "batch_norm", [&] {
    using T = scalar_t;
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    parallel_for(0, L.B * L.C, row_grain(L.S, kGrainSize), [&](int64_t p0, int64_t p1) {
      for (int64_t pl = p0; pl < p1; ++pl) {
        const int64_t c = pl % L.C;
        const double a = w[c] / std::sqrt(v[c] + eps);
        MMap<T>(yp + pl * L.S, L.S) =
            (CMap<T>(xp + pl * L.S, L.S) - static_cast<T>(mu[c])) * static_cast<T>(a) +
            static_cast<T>(b[c]);
      }
    });
  });
  return y;
}

BatchNormGrads batch_norm_backward(const Array& dy_in, const Array& x_in, const Array& mean,
                                   const Array& var, const Array& weight, double eps,
                                   bool batch_stats, bool need_dx, bool need_dw, bool need_db) {
  const PlaneLayout L = planes_of(x_in, "batch_norm_backward");
  const DType dt = x_in.dtype();
  Array x = x_in.contiguous(), dy = contiguous_as(dy_in, dt);
  const std::vector<double> mu = per_channel(mean, L.C, 0.0), v = per_channel(var, L.C, 1.0),
                            w = per_channel(weight, L.C, 1.0);
  std::vector<double> sdy(static_cast<size_t>(L.C)), sdyx(static_cast<size_t>(L.C)),
      rs(static_cast<size_t>(L.C));
  for (int64_t c = 0; c < L.C; ++c) rs[c] = 1.0 / std::sqrt(v[c] + eps);
  const double n = static_cast<double>(L.B * L.S);
  BatchNormGrads g;
  KILN_DISPATCH_FLOATING(dt, "batch_norm_backward", [&] {
    using T = scalar_t;
    const T* xp = x.data<T>();
    const T* dyp = dy.data<T>();
    // Per channel: Σ dy and Σ dy ⊙ x̂.
    parallel_for(0, L.C, row_grain(L.B * L.S), [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        double a = 0, bx = 0;
        for (int64_t b = 0; b < L.B; ++b) {
          const T* dp = dyp + (b * L.C + c) * L.S;
          const T* xq = xp + (b * L.C + c) * L.S;
          a += sum_f64(dp, L.S);
          bx += lane_sum(L.S, [&](int64_t j) {
            return static_cast<double>(dp[j]) * (static_cast<double>(xq[j]) - mu[c]);
          });
        }
        sdy[c] = a;
        sdyx[c] = bx * rs[c];
      }
    });
    if (!need_dx) return;
    g.dx = Array(x.shape(), dt);
    T* dxp = g.dx.data<T>();
    parallel_for(0, L.B * L.C, row_grain(L.S, kGrainSize), [&](int64_t p0, int64_t p1) {
      for (int64_t pl = p0; pl < p1; ++pl) {
        const int64_t c = pl % L.C;
        const double k = w[c] * rs[c];
        MMap<T> dx(dxp + pl * L.S, L.S);
        CMap<T> d(dyp + pl * L.S, L.S);
        if (!batch_stats) {
          dx = d * static_cast<T>(k);
          continue;
        }
        // dx = k·(dy − Σdy/n − x̂·Σ(dy⊙x̂)/n),  x̂ = (x − μ)·rstd.
        const double c1 = sdy[c] / n, c2 = sdyx[c] / n * rs[c];
        dx = (d - static_cast<T>(c1) -
              (CMap<T>(xp + pl * L.S, L.S) - static_cast<T>(mu[c])) * static_cast<T>(c2)) *
             static_cast<T>(k);
      }
    });
  });
  auto to_array = [&](const std::vector<double>& s) { return from_vector(s, {L.C}).to(dt); };
  if (need_dw) g.dweight = to_array(sdyx);
  if (need_db) g.dbias = to_array(sdy);
  return g;
}

// ==================================================================== attention rows
void attention_softmax_(Array& scores, double scale, const Array& mask_in) {
  check_float(scores, "scaled_dot_product_attention");
  KILN_CHECK(scores.is_contiguous() && scores.dim() >= 2,
             "scaled_dot_product_attention: scores must be contiguous (*, Tq, Tk), got {}",
             scores.shape());
  const int64_t Tk = scores.size(-1), rows = scores.numel() / std::max<int64_t>(Tk, 1),
                nd = scores.dim();
  scores.bump_version();
  if (scores.numel() == 0) return;
  // The mask seen through scores' shape (broadcast dims get stride 0): row r's mask starts at the
  // dot of r's multi-index with these strides.
  Array mask = mask_in.defined()
                   ? (mask_in.dtype() == scores.dtype() ? mask_in : mask_in.to(scores.dtype()))
                         .expand(scores.shape())
                   : Array{};
  KILN_DISPATCH_FLOATING(scores.dtype(), "scaled_dot_product_attention", [&] {
    using T = scalar_t;
    T* sp = scores.data<T>();
    const T* mp = mask.defined() ? mask.data<T>() : nullptr;
    const int64_t ms = mask.defined() ? mask.stride(-1) : 0;
    parallel_for(0, rows, row_grain(Tk), [&](int64_t r0, int64_t r1) {
      Vec<T> mrow(mp ? Tk : 0);
      for (int64_t r = r0; r < r1; ++r) {
        MMap<T> s(sp + r * Tk, Tk);
        s *= static_cast<T>(scale);
        if (mp) {
          int64_t off = 0, rem = r;
          for (int64_t d = nd - 2; d >= 0; --d) {
            off += (rem % scores.size(d)) * mask.stride(d);
            rem /= scores.size(d);
          }
          for (int64_t j = 0; j < Tk; ++j) mrow[j] = mp[off + j * ms];
          s += mrow;
        }
        const T m = max_of(s.data(), Tk);
        if (m == -std::numeric_limits<T>::infinity()) {
          s.setZero();  // fully masked: attends to nothing
          continue;
        }
        s = (s - m).exp();
        s *= static_cast<T>(1.0 / sum_f64(s.data(), Tk));
      }
    });
  });
}

void attention_softmax_backward_(Array& dp, const Array& p_in, double scale) {
  KILN_CHECK(
      dp.is_contiguous() && dp.shape() == p_in.shape(),
      "scaled_dot_product_attention: gradient {} must be contiguous and match probabilities {}",
      dp.shape(), p_in.shape());
  Array p = p_in.contiguous();
  const int64_t Tk = p.size(-1), rows = p.numel() / std::max<int64_t>(Tk, 1);
  dp.bump_version();
  if (p.numel() == 0) return;
  KILN_DISPATCH_FLOATING(p.dtype(), "scaled_dot_product_attention", [&] {
    using T = scalar_t;
    T* dpp = dp.data<T>();
    const T* pp = p.data<T>();
    parallel_for(0, rows, row_grain(Tk), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        MMap<T> d(dpp + r * Tk, Tk);
        const T dot = static_cast<T>(dot_f64(dpp + r * Tk, pp + r * Tk, Tk));
        d = CMap<T>(pp + r * Tk, Tk) * (d - dot) * static_cast<T>(scale);
      }
    });
  });
}

}  // namespace kiln::kernels
