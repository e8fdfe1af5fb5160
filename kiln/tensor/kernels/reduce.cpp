// Reductions. Legend: O = product of kept dims (outputs), R = product of reduced dims.
#include "kiln/tensor/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kiln/tensor/error.h"
#include "kiln/tensor/ops.h"
#include "kiln/tensor/parallel.h"

namespace kiln::kernels {

Dims normalize_dims(const Dims& dims, int64_t ndim, const char* op) {
  Dims out;
  if (dims.empty()) {
    for (int64_t d = 0; d < ndim; ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) out.push_back(wrap_dim(d, ndim, op));
  std::sort(out.begin(), out.end());
  KILN_CHECK_SHAPE(std::adjacent_find(out.begin(), out.end()) == out.end(),
                   "{}: dim repeated in {}", op, dims);
  return out;
}

Shape reduced_shape(const Shape& shape, const Dims& dims, bool keepdim) {
  Shape out;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    bool red = std::binary_search(dims.begin(), dims.end(), d);
    if (!red)
      out.push_back(shape[d]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

namespace {

// Lays x out as a contiguous (O, R) matrix: kept dims first, reduced dims last.
Array as_rows(const Array& x, const Dims& dims, int64_t& O, int64_t& R) {
  std::vector<int64_t> perm;
  R = 1;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!std::binary_search(dims.begin(), dims.end(), d)) perm.push_back(d);
  for (int64_t d : dims) {
    perm.push_back(d);
    R *= x.shape()[d];
  }
  O = R == 0 ? shape_numel(reduced_shape(x.shape(), dims, false)) : x.numel() / R;
  return x.permute(perm).contiguous();
}

// out[o] = fold over row o of (O, R) with an accumulator of type Acc.
template <typename T, typename Acc, typename Init, typename Step, typename Fin, typename Out>
void row_reduce(const T* x, int64_t O, int64_t R, Out* out, Init init, Step step, Fin fin) {
  parallel_for(0, O, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(R, 1)),
               [&](int64_t o0, int64_t o1) {
                 for (int64_t o = o0; o < o1; ++o) {
                   const T* row = x + o * R;
                   Acc acc = init();
                   for (int64_t r = 0; r < R; ++r) step(acc, row[r]);
                   out[o] = fin(acc);
                 }
               });
}

// Sum of each row, float rows accumulated in double with 8 independent lanes (vectorises).
template <typename T>
void sum_rows(const T* x, int64_t O, int64_t R, T* out) {
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  parallel_for(0, O, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(R, 1)),
               [&](int64_t o0, int64_t o1) {
                 for (int64_t o = o0; o < o1; ++o) {
                   const T* row = x + o * R;
                   Acc lanes[8] = {};
                   int64_t r = 0;
                   for (; r + 8 <= R; r += 8)
                     for (int k = 0; k < 8; ++k) lanes[k] += static_cast<Acc>(row[r + k]);
                   Acc acc = 0;
                   for (; r < R; ++r) acc += static_cast<Acc>(row[r]);
                   for (int k = 0; k < 8; ++k) acc += lanes[k];
                   out[o] = static_cast<T>(acc);
                 }
               });
}

// Sum over leading dims: x is (R, O) contiguous, out[o] = Σ_r x[r, o]. Columns split across
// threads.
template <typename T>
void sum_leading(const T* x, int64_t R, int64_t O, T* out) {
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  parallel_for(0, O, std::max<int64_t>(64, kGrainSize / std::max<int64_t>(R, 1)),
               [&](int64_t o0, int64_t o1) {
                 std::vector<Acc> acc(o1 - o0, Acc(0));
                 for (int64_t r = 0; r < R; ++r) {
                   const T* row = x + r * O;
                   for (int64_t o = o0; o < o1; ++o) acc[o - o0] += static_cast<Acc>(row[o]);
                 }
                 for (int64_t o = o0; o < o1; ++o) out[o] = static_cast<T>(acc[o - o0]);
               });
}

// True when dims are exactly the leading k dims of a contiguous x.
bool reduces_leading(const Array& x, const Dims& dims) {
  if (!x.is_contiguous() || dims.empty() || static_cast<int64_t>(dims.size()) == x.dim())
    return false;
  for (size_t i = 0; i < dims.size(); ++i)
    if (dims[i] != static_cast<int64_t>(i)) return false;
  return true;
}

}  // namespace

Array sum(const Array& x_in, const Dims& dims_in, bool keepdim) {
  Dims dims = normalize_dims(dims_in, x_in.dim(), "sum");
  // Integral and bool sums accumulate in int64, as PyTorch does.
  Array x = is_floating(x_in.dtype()) ? x_in : x_in.to(kInt64);
  Array out(reduced_shape(x.shape(), dims, keepdim), x.dtype());
  if (out.numel() == 0) return out;
  if (x.numel() == 0) {
    out.zero_();
    return out;
  }
  KILN_DISPATCH_NUMERIC(x.dtype(), "sum", [&] {
    if (reduces_leading(x, dims)) {
      int64_t R = 1;
      for (int64_t d : dims) R *= x.shape()[d];
      sum_leading(x.data<scalar_t>(), R, x.numel() / R, out.data<scalar_t>());
      return;
    }
    int64_t O, R;
    Array rows = as_rows(x, dims, O, R);
    if (O == 1) {
      // Full reduction: fixed blocks summed in parallel, combined in order (thread-count
      // independent).
      constexpr int64_t kBlock = 1 << 15;
      int64_t nb = (R + kBlock - 1) / kBlock;
      std::vector<scalar_t> partial(nb);
      const scalar_t* p = rows.data<scalar_t>();
      parallel_for(0, nb, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b)
          sum_rows(p + b * kBlock, 1, std::min(kBlock, R - b * kBlock), &partial[b]);
      });
      using Acc = std::conditional_t<std::is_floating_point_v<scalar_t>, double, int64_t>;
      Acc acc = 0;
      for (auto v : partial) acc += static_cast<Acc>(v);
      *out.data<scalar_t>() = static_cast<scalar_t>(acc);
      return;
    }
    sum_rows(rows.data<scalar_t>(), O, R, out.data<scalar_t>());
  });
  return out;
}

Array mean(const Array& x, const Dims& dims_in, bool keepdim) {
  KILN_CHECK_TYPE(is_floating(x.dtype()),
                  "mean: input dtype {} is not floating (cast to float first)", x.dtype());
  Dims dims = normalize_dims(dims_in, x.dim(), "mean");
  int64_t R = 1;
  for (int64_t d : dims) R *= x.shape()[d];
  Array s = sum(x, dims, keepdim);
  return mul(s, R == 0 ? std::numeric_limits<double>::quiet_NaN() : 1.0 / static_cast<double>(R));
}

Array var(const Array& x, const Dims& dims_in, int64_t correction, bool keepdim) {
  KILN_CHECK_TYPE(is_floating(x.dtype()), "var: input dtype {} is not floating", x.dtype());
  Dims dims = normalize_dims(dims_in, x.dim(), "var");
  int64_t O, R;
  Array rows = as_rows(x, dims, O, R);
  Array out(reduced_shape(x.shape(), dims, keepdim), x.dtype());
  KILN_DISPATCH_FLOATING(x.dtype(), "var", [&] {
    const scalar_t* p = rows.data<scalar_t>();
    scalar_t* o = out.data<scalar_t>();
    parallel_for(0, O, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(R, 1)),
                 [&](int64_t o0, int64_t o1) {
                   for (int64_t i = o0; i < o1; ++i) {
                     // Two-pass: mean, then squared deviations (stable enough in double).
                     double m = 0;
                     for (int64_t r = 0; r < R; ++r) m += p[i * R + r];
                     m /= static_cast<double>(R);
                     double ss = 0;
                     for (int64_t r = 0; r < R; ++r) {
                       double d = p[i * R + r] - m;
                       ss += d * d;
                     }
                     o[i] = static_cast<scalar_t>(
                         ss / static_cast<double>(std::max<int64_t>(R - correction, 0)));
                   }
                 });
  });
  return out;
}

Array std(const Array& x, const Dims& dims, int64_t correction, bool keepdim) {
  return unary(UnaryOp::Sqrt, var(x, dims, correction, keepdim));
}

Array amax(const Array& x, const Dims& dims_in, bool keepdim) {
  Dims dims = normalize_dims(dims_in, x.dim(), "amax");
  int64_t O, R;
  Array rows = as_rows(x, dims, O, R);
  KILN_CHECK_SHAPE(R > 0, "amax: cannot reduce over an empty dim (shape {})", x.shape());
  Array out(reduced_shape(x.shape(), dims, keepdim), x.dtype());
  KILN_DISPATCH_NUMERIC(x.dtype(), "amax", [&] {
    row_reduce<scalar_t, scalar_t>(
        rows.data<scalar_t>(), O, R, out.data<scalar_t>(),
        [] { return std::numeric_limits<scalar_t>::lowest(); },
        [](scalar_t& a, scalar_t v) { a = (v > a || v != v) ? v : a; },
        [](scalar_t a) { return a; });
  });
  return out;
}

Array amin(const Array& x, const Dims& dims_in, bool keepdim) {
  Dims dims = normalize_dims(dims_in, x.dim(), "amin");
  int64_t O, R;
  Array rows = as_rows(x, dims, O, R);
  KILN_CHECK_SHAPE(R > 0, "amin: cannot reduce over an empty dim (shape {})", x.shape());
  Array out(reduced_shape(x.shape(), dims, keepdim), x.dtype());
  KILN_DISPATCH_NUMERIC(x.dtype(), "amin", [&] {
    row_reduce<scalar_t, scalar_t>(
        rows.data<scalar_t>(), O, R, out.data<scalar_t>(),
        [] { return std::numeric_limits<scalar_t>::max(); },
        [](scalar_t& a, scalar_t v) { a = (v < a || v != v) ? v : a; },
        [](scalar_t a) { return a; });
  });
  return out;
}

Array logsumexp(const Array& x, const Dims& dims_in, bool keepdim) {
  KILN_CHECK_TYPE(is_floating(x.dtype()), "logsumexp: input dtype {} is not floating", x.dtype());
  Dims dims = normalize_dims(dims_in, x.dim(), "logsumexp");
  Array m = amax(x, dims, true);
  // Rows whose max is ±inf would give inf - inf = nan; use 0 as the shift there.
  Array inf_mask = binary(BinaryOp::Eq, unary(UnaryOp::Abs, m),
                          scalar(std::numeric_limits<double>::infinity(), m.dtype()));
  Array finite_m = where(inf_mask, scalar(0.0, m.dtype()), m);
  Array s = sum(unary(UnaryOp::Exp, sub(x, finite_m)), dims, true);
  Array out = add(unary(UnaryOp::Log, s), finite_m);
  return keepdim ? out : out.reshape(reduced_shape(x.shape(), dims, false));
}

Array norm(const Array& x, double p, const Dims& dims, bool keepdim) {
  KILN_CHECK_TYPE(is_floating(x.dtype()), "norm: input dtype {} is not floating", x.dtype());
  if (p == 2.0) return unary(UnaryOp::Sqrt, sum(unary(UnaryOp::Square, x), dims, keepdim));
  if (p == 1.0) return sum(unary(UnaryOp::Abs, x), dims, keepdim);
  if (std::isinf(p)) return amax(unary(UnaryOp::Abs, x), dims, keepdim);
  Array s = sum(binary(BinaryOp::Pow, unary(UnaryOp::Abs, x), p), dims, keepdim);
  return binary(BinaryOp::Pow, s, 1.0 / p);
}

namespace {
ValuesIndices arg_reduce(const Array& x, int64_t dim, bool keepdim, bool is_max, const char* op) {
  dim = wrap_dim(dim, x.dim(), op);
  Dims dims = x.dim() == 0 ? Dims{} : Dims{dim};
  int64_t O, R;
  Array rows = as_rows(x, dims, O, R);
  KILN_CHECK_SHAPE(R > 0, "{}: cannot reduce over an empty dim (shape {})", op, x.shape());
  Shape os = reduced_shape(x.shape(), dims, keepdim);
  ValuesIndices r{Array(os, x.dtype()), Array(os, kInt64)};
  KILN_DISPATCH_NUMERIC(x.dtype(), op, [&] {
    const scalar_t* p = rows.data<scalar_t>();
    scalar_t* v = r.values.data<scalar_t>();
    int64_t* ix = r.indices.data<int64_t>();
    parallel_for(0, O, std::max<int64_t>(1, kGrainSize / R), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        const scalar_t* row = p + o * R;
        int64_t best = 0;
        for (int64_t k = 1; k < R; ++k) {
          if (row[best] != row[best]) break;  // NaN wins, as in PyTorch
          bool better = is_max ? (row[k] > row[best] || row[k] != row[k])
                               : (row[k] < row[best] || row[k] != row[k]);
          if (better) best = k;
        }
        v[o] = row[best];
        ix[o] = best;
      }
    });
  });
  return r;
}
}  // namespace

ValuesIndices max(const Array& x, int64_t dim, bool keepdim) {
  return arg_reduce(x, dim, keepdim, true, "max");
}
ValuesIndices min(const Array& x, int64_t dim, bool keepdim) {
  return arg_reduce(x, dim, keepdim, false, "min");
}
Array argmax(const Array& x, int64_t dim, bool keepdim) {
  return max(x, dim, keepdim).indices;
}
Array argmin(const Array& x, int64_t dim, bool keepdim) {
  return min(x, dim, keepdim).indices;
}

Array sum_to(const Array& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  int64_t lead = grad.dim() - static_cast<int64_t>(shape.size());
  KILN_CHECK_SHAPE(lead >= 0, "sum_to: gradient {} has fewer dims than target {}", grad.shape(),
                   shape);
  Dims dims;
  for (int64_t d = 0; d < grad.dim(); ++d) {
    if (d < lead)
      dims.push_back(d);
    else if (shape[d - lead] == 1 && grad.shape()[d] != 1)
      dims.push_back(d);
  }
  Array s = dims.empty() ? grad : sum(grad, dims, true);
  return s.reshape(shape);
}

}  // namespace kiln::kernels
