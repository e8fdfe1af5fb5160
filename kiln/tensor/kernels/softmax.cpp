// Fused softmax kernels (softmax.h). Legend: K the softmax dim's size, O / I the dims before /
// after it. Inner loops run on Eigen arrays (vectorised exp) or on float64 lanes (nn_internal.h).
// The naive float64 twins (*_reference) follow each family.
#include "kiln/tensor/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kiln/tensor/kernels/nn_internal.h"
#include "kiln/tensor/linalg.h"

namespace kiln::kernels {
using namespace nn_detail;

namespace {

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

// ==================================================================== attention rows
namespace {
// One attention row in place: s ← softmax(scale · s + mask row) over Tk entries, the mask row read
// at stride ms (null: no mask); a fully masked row becomes zeros. mrow: Tk scratch when masked.
template <typename T>
void attention_row(T* sp, const T* mp, int64_t ms, int64_t Tk, double scale, Vec<T>& mrow) {
  MMap<T> s(sp, Tk);
  s *= static_cast<T>(scale);
  if (mp && ms == 1) {
    s += CMap<T>(mp, Tk);
  } else if (mp) {
    for (int64_t j = 0; j < Tk; ++j) mrow[j] = mp[j * ms];
    s += mrow;
  }
  const T m = max_of(s.data(), Tk);
  if (m == -std::numeric_limits<T>::infinity()) {
    s.setZero();  // fully masked: attends to nothing
    return;
  }
  s = (s - m).exp();
  s *= static_cast<T>(1.0 / sum_f64(s.data(), Tk));
}

// Offset of entry i (row-major over `dims`, the leading dims of `a`) in `a`, by a's strides (0 where
// a broadcasts).
int64_t entry_offset(int64_t i, const Shape& dims, const Array& a) {
  int64_t off = 0;
  for (int64_t d = static_cast<int64_t>(dims.size()) - 1; d >= 0; --d) {
    off += (i % dims[static_cast<size_t>(d)]) * a.stride(d);
    i /= dims[static_cast<size_t>(d)];
  }
  return off;
}

// A view of `base`'s storage starting `offset` elements in, how GEMM operands point into a buffer.
Array at(const Array& base, int64_t offset) {
  return Array(base.storage(), {1}, {1}, base.offset() + offset, base.dtype());
}
}  // namespace

void attention_softmax_(Array& scores, double scale, const Array& mask_in) {
  check_float(scores, "scaled_dot_product_attention");
  KILN_CHECK(scores.is_contiguous() && scores.dim() >= 2,
             "scaled_dot_product_attention: scores must be contiguous (*, Tq, Tk), got {}",
             scores.shape());
  const int64_t Tk = scores.size(-1), rows = scores.numel() / std::max<int64_t>(Tk, 1);
  const Shape row_dims(scores.shape().begin(), scores.shape().end() - 1);  // rows are entries
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
      for (int64_t r = r0; r < r1; ++r)
        attention_row(sp + r * Tk, mp ? mp + entry_offset(r, row_dims, mask) : nullptr, ms, Tk,
                      scale, mrow);
    });
  });
}

Array attention_no_grad(const Array& q_in, const Array& k_in, const Array& v_in,
                        const Array& mask_in, double scale) {
  check_float(q_in, "scaled_dot_product_attention");
  KILN_CHECK(q_in.dim() >= 2 && k_in.dim() == q_in.dim() && v_in.dim() == q_in.dim() &&
                 k_in.dtype() == q_in.dtype() && v_in.dtype() == q_in.dtype(),
             "scaled_dot_product_attention: q {}, k {}, v {} must have one rank (>= 2) and dtype",
             q_in.shape(), k_in.shape(), v_in.shape());
  // GEMM operands need unit stride along their rows; permuted heads (B, H, T, d) views of a
  // (B, T, H, d) projection already have it, so they are read in place.
  auto rows_unit = [](const Array& a) { return a.stride(-1) == 1 ? a : a.contiguous(); };
  const Array q = rows_unit(q_in), k = rows_unit(k_in), v = rows_unit(v_in);
  const int64_t Tq = q.size(-2), d = q.size(-1), Tk = k.size(-2), dv = v.size(-1);
  const Shape batch(q.shape().begin(), q.shape().end() - 2);
  KILN_CHECK(Shape(k.shape().begin(), k.shape().end() - 2) == batch &&
                 Shape(v.shape().begin(), v.shape().end() - 2) == batch && k.size(-1) == d &&
                 v.size(-2) == Tk,
             "scaled_dot_product_attention: q {}, k {}, v {} do not fit (*, Tq, d), (*, Tk, d), "
             "(*, Tk, dv)",
             q.shape(), k.shape(), v.shape());
  const int64_t n = shape_numel(batch);
  Shape out_shape = batch, score_shape = batch;
  out_shape.insert(out_shape.end(), {Tq, dv});
  score_shape.insert(score_shape.end(), {Tq, Tk});
  // With two or more batch dims (B, H, ...), the output is stored (..., Tq, H, dv) and returned as
  // its (..., H, Tq, dv) view: merging the heads afterwards (transpose(1, 2).reshape) is then free.
  const bool heads_inner = batch.size() >= 2;
  const int64_t H = heads_inner ? batch.back() : 1;
  Array out;
  if (heads_inner) {
    Shape stored(batch.begin(), batch.end() - 1);
    stored.insert(stored.end(), {Tq, H, dv});
    const int64_t r = static_cast<int64_t>(stored.size());
    out = Array(stored, q.dtype()).transpose(r - 3, r - 2);
  } else {
    out = Array(out_shape, q.dtype());
  }
  if (out.numel() == 0) return out;
  if (Tk == 0) {
    out.zero_();  // softmax over no keys: nothing to attend to
    return out;
  }
  const Array mask =
      mask_in.defined()
          ? (mask_in.dtype() == q.dtype() ? mask_in : mask_in.to(q.dtype())).expand(score_shape)
          : Array{};
  KILN_DISPATCH_FLOATING(q.dtype(), "scaled_dot_product_attention", [&] {
    using T = scalar_t;
    // One task per (batch, head) entry: its scores (Tq, Tk) live in a scratch block the task's
    // two GEMMs and its softmax share while it is in cache; nothing of size (*, Tq, Tk) exists.
    parallel_entries(n, [&](int64_t i0, int64_t i1) {
      Array scores({Tq, Tk}, q.dtype());
      Vec<T> mrow(mask.defined() ? Tk : 0);
      for (int64_t i = i0; i < i1; ++i) {
        gemm(false, true, Tq, Tk, d, 1.0, at(q, entry_offset(i, batch, q)), q.stride(-2),
             at(k, entry_offset(i, batch, k)), k.stride(-2), 0.0, scores, Tk);
        T* sp = scores.data<T>();
        const T* mp = mask.defined() ? mask.data<T>() + entry_offset(i, batch, mask) : nullptr;
        for (int64_t r = 0; r < Tq; ++r)
          attention_row(sp + r * Tk, mp ? mp + r * mask.stride(-2) : nullptr,
                        mask.defined() ? mask.stride(-1) : 0, Tk, scale, mrow);
        // Entry i = (lead, h) starts at lead·Tq·H·dv + h·dv, rows H·dv apart (heads_inner), or
        // at i·Tq·dv with rows dv apart.
        Array oi = at(out, heads_inner ? (i / H) * Tq * H * dv + (i % H) * dv : i * Tq * dv);
        gemm(false, false, Tq, dv, Tk, 1.0, scores, Tk, at(v, entry_offset(i, batch, v)),
             v.stride(-2), 0.0, oi, H * dv);
      }
    });
  });
  return out;
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
