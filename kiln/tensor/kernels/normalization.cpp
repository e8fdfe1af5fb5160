// Fused normalisation kernels (normalization.h). Legend: R rows, D row length, B batch,
// C channels, S spatial size. Inner loops run on Eigen arrays or on float64 lanes (nn_internal.h).
// The naive float64 twins (*_reference) follow each family.
#include "kiln/tensor/normalization.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/tensor/creation.h"
#include "kiln/tensor/dropout.h"
#include "kiln/tensor/kernels/nn_internal.h"

namespace kiln::kernels {
using namespace nn_detail;

namespace {

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

// ==================================================================== layer norm
namespace {

// One layer-norm row: y = (x − μ)·rstd·w + b; returns (μ, rstd).
template <typename T>
std::pair<double, double> layer_norm_row(const T* xr, T* yr, const T* wp, const T* bp, int64_t D,
                                         double eps) {
  const auto [mu, var] = row_mean_var(xr, D);
  const double rs = 1.0 / std::sqrt(var + eps);
  MMap<T> y(yr, D);
  auto xhat = (CMap<T>(xr, D) - static_cast<T>(mu)) * static_cast<T>(rs);
  if (wp && bp)
    y = xhat * CMap<T>(wp, D) + CMap<T>(bp, D);
  else if (wp)
    y = xhat * CMap<T>(wp, D);
  else if (bp)
    y = xhat + CMap<T>(bp, D);
  else
    y = xhat;
  return {mu, rs};
}

// The mask of dropout_add_layer_norm's h: dropout's counters (seed, offset), drop probability p.
struct RowDropout {
  double p;
  uint64_t seed, offset;
};

}  // namespace

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
      for (int64_t r = r0; r < r1; ++r)
        std::tie(mp[r], rp[r]) = layer_norm_row(xp + r * D, yp + r * D, wp, bp, D, eps);
    });
  });
  return out;
}

AddLayerNormForward dropout_add_layer_norm(const Array& x_in, const Array& h_in, double p,
                                           uint64_t seed, uint64_t offset, int64_t D,
                                           const Array& weight, const Array& bias, double eps,
                                           bool keep) {
  check_float(x_in, "dropout_add_layer_norm");
  KILN_CHECK_SHAPE(x_in.shape() == h_in.shape(),
                   "dropout_add_layer_norm: residual {} and sub-layer output {} differ (they "
                   "must have the same shape)",
                   x_in.shape(), h_in.shape());
  KILN_CHECK_SHAPE(D >= 1 && x_in.numel() % D == 0,
                   "dropout_add_layer_norm: input {} does not split into rows of {}", x_in.shape(),
                   D);
  KILN_CHECK(p >= 0 && p < 1, "dropout_add_layer_norm: p must be in [0, 1), got {}", p);
  const DType dt = x_in.dtype();
  Array x = x_in.contiguous(), h = contiguous_as(h_in, dt);
  const int64_t R = x.numel() / D;
  AddLayerNormForward out;
  out.y = Array(x.shape(), dt);
  if (keep) {
    out.sum = Array(x.shape(), dt);
    out.mean = Array({R}, kFloat64);
    out.rstd = Array({R}, kFloat64);
  }
  Array w = weight.defined() ? contiguous_as(weight, dt) : Array{};
  Array b = bias.defined() ? contiguous_as(bias, dt) : Array{};
  const int32_t thr = dropout_threshold(p);
  KILN_DISPATCH_FLOATING(dt, "dropout_add_layer_norm", [&] {
    using T = scalar_t;
    const T* xp = x.data<T>();
    const T* hp = h.data<T>();
    T* yp = out.y.data<T>();
    T* sp = keep ? out.sum.data<T>() : yp;  // not kept: s is built in y's row, normalised in place
    const T* wp = w.defined() ? w.data<T>() : nullptr;
    const T* bp = b.defined() ? b.data<T>() : nullptr;
    double* mp = keep ? out.mean.data<double>() : nullptr;
    double* rp = keep ? out.rstd.data<double>() : nullptr;
    const T scale = static_cast<T>(1.0 / (1.0 - p));
    parallel_for(0, R, row_grain(D), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        // s = x + h·mask/(1 − p), while the row is in cache; then the layer norm of s.
        T* sr = sp + r * D;
        if (p > 0) {
          apply_dropout_mask(hp + r * D, sr, r * D, D, seed, offset, thr, scale);
          MMap<T>(sr, D) += CMap<T>(xp + r * D, D);
        } else {
          MMap<T>(sr, D) = CMap<T>(xp + r * D, D) + CMap<T>(hp + r * D, D);
        }
        const auto [mu, rs] = layer_norm_row<T>(sr, yp + r * D, wp, bp, D, eps);
        if (keep) {
          mp[r] = mu;
          rp[r] = rs;
        }
      }
    });
  });
  return out;
}

namespace {

// layer_norm_backward's body. With `drop`, also dh = dropout(dx) with drop's mask, row by row while
// dx is in cache (dropout_add_layer_norm_backward); dx is then always computed.
LayerNormGrads layer_norm_backward_impl(const Array& dy_in, const Array& x_in, const Array& mean,
                                        const Array& rstd, const Array& weight, int64_t D,
                                        bool need_dx, bool need_dw, bool need_db,
                                        const RowDropout* drop, Array* dh) {
  check_float(x_in, "layer_norm_backward");
  need_dx = need_dx || drop;
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
  if (drop) *dh = Array(x.shape(), dt);
  const int32_t thr = drop ? dropout_threshold(drop->p) : 0;
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
    T* dhp = drop ? dh->data<T>() : nullptr;
    const T scale = drop ? static_cast<T>(1.0 / (1.0 - drop->p)) : T(1);
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
          if (dhp && drop->p > 0)
            apply_dropout_mask(dxp + r * D, dhp + r * D, r * D, D, drop->seed, drop->offset, thr,
                               scale);
          else if (dhp)
            MMap<T>(dhp + r * D, D) = dx;
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

}  // namespace

LayerNormGrads layer_norm_backward(const Array& dy, const Array& x, const Array& mean,
                                   const Array& rstd, const Array& weight, int64_t D, bool need_dx,
                                   bool need_dw, bool need_db) {
  return layer_norm_backward_impl(dy, x, mean, rstd, weight, D, need_dx, need_dw, need_db, nullptr,
                                  nullptr);
}

AddLayerNormGrads dropout_add_layer_norm_backward(const Array& dy, const Array& sum,
                                                  const Array& mean, const Array& rstd,
                                                  const Array& weight, int64_t D, double p,
                                                  uint64_t seed, uint64_t offset, bool need_dx,
                                                  bool need_dh, bool need_dw, bool need_db) {
  const RowDropout drop{p, seed, offset};
  AddLayerNormGrads g;
  LayerNormGrads l = layer_norm_backward_impl(dy, sum, mean, rstd, weight, D, need_dx, need_dw,
                                              need_db, need_dh ? &drop : nullptr, &g.dh);
  if (need_dx) g.dx = l.dx;
  g.dweight = l.dweight;
  g.dbias = l.dbias;
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

// The residual sum by dropout's scalar definition (dropout_keep), in float64.
namespace {
Array residual_sum_reference(const Array& x_in, const Array& h_in, double p, uint64_t seed,
                             uint64_t offset) {
  Array x = x_in.to(kFloat64).contiguous(), h = h_in.to(kFloat64).contiguous();
  Array s(x.shape(), kFloat64);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const bool keep = dropout_keep(seed, offset + static_cast<uint64_t>(i), p);
    s.data<double>()[i] = x.data<double>()[i] + (keep ? h.data<double>()[i] / (1.0 - p) : 0.0);
  }
  return s;
}
}  // namespace

AddLayerNormForward dropout_add_layer_norm_reference(const Array& x, const Array& h, double p,
                                                     uint64_t seed, uint64_t offset, int64_t D,
                                                     const Array& weight, const Array& bias,
                                                     double eps) {
  Array s = residual_sum_reference(x, h, p, seed, offset);
  LayerNormForward f = layer_norm_reference(s, D, weight, bias, eps);
  return {f.y.to(x.dtype()), s.to(x.dtype()), f.mean, f.rstd};
}

AddLayerNormGrads dropout_add_layer_norm_backward_reference(const Array& dy, const Array& x,
                                                            const Array& h, double p, uint64_t seed,
                                                            uint64_t offset, const Array& weight,
                                                            int64_t D, double eps) {
  Array s = residual_sum_reference(x, h, p, seed, offset);
  LayerNormGrads l = layer_norm_backward_reference(dy, s, weight, D, eps);
  Array ds = l.dx.to(kFloat64).contiguous(), dh(ds.shape(), kFloat64);
  for (int64_t i = 0; i < ds.numel(); ++i)
    dh.data<double>()[i] = dropout_keep(seed, offset + static_cast<uint64_t>(i), p)
                               ? ds.data<double>()[i] / (1.0 - p)
                               : 0.0;
  return {l.dx, dh.to(x.dtype()), l.dweight, l.dbias};
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

}  // namespace kiln::kernels
