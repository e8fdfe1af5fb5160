// ONNX shape, indexing, joining, casting and constant ops for import_model (see
// import_ops_internal.h). Views and gathers are Kiln autograd ops (Reshape, Transpose, Slice,
// Gather, Concat, Pad, Tile, Expand, ... pass gradients); shape arithmetic (Shape, Size, Range,
// NonZero, OneHot, Scatter*) produces constants.
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kiln/onnx/import_ops_internal.h"
#include "kiln/tensor/ops.h"
#include "kiln/tensor/shape.h"

namespace kiln::onnx::detail {
namespace {

using Outs = std::vector<Tensor>;

Outs identity_op(const NodeContext& n, const Inputs& in) {
  return {required(n, in, 0)};
}

Outs reshape_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  std::vector<int64_t> target =
      n.opset < 5 ? n.ints("shape") : int_values(n, required(n, in, 1), "shape");
  const bool allowzero = n.i("allowzero", 0) != 0;
  int64_t infer = -1, known = 1;
  for (size_t d = 0; d < target.size(); ++d) {
    if (target[d] == 0 && !allowzero) {
      KILN_CHECK_SHAPE(static_cast<int64_t>(d) < x.dim(),
                       "{}: shape [{}] copies dim {} of a rank-{} input", n.where(),
                       fmt::join(target, ", "), d, x.dim());
      target[d] = x.size(static_cast<int64_t>(d));
    }
    if (target[d] == -1) {
      KILN_CHECK_SHAPE(infer < 0, "{}: shape [{}] has more than one -1", n.where(),
                       fmt::join(target, ", "));
      infer = static_cast<int64_t>(d);
    } else {
      KILN_CHECK_SHAPE(target[d] >= 0, "{}: shape [{}] has a negative size", n.where(),
                       fmt::join(target, ", "));
      KILN_CHECK_SHAPE(!__builtin_mul_overflow(known, target[d], &known), "{}: shape overflows",
                       n.where());
    }
  }
  if (infer >= 0) {
    KILN_CHECK_SHAPE(known > 0 && x.numel() % known == 0,
                     "{}: cannot reshape [{}] ({} elements) to [{}]", n.where(),
                     fmt::join(x.shape(), ", "), x.numel(), fmt::join(target, ", "));
    target[static_cast<size_t>(infer)] = x.numel() / known;
  }
  KILN_CHECK_SHAPE(shape_numel(target) == x.numel(),
                   "{}: cannot reshape [{}] ({} elements) to [{}]", n.where(),
                   fmt::join(x.shape(), ", "), x.numel(), fmt::join(target, ", "));
  return {reshape(x, target)};
}

Outs flatten_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  int64_t a = n.i("axis", 1);
  KILN_CHECK_SHAPE(a >= -x.dim() && a <= x.dim(), "{}: axis {} out of range for rank {}", n.where(),
                   a, x.dim());
  if (a < 0) a += x.dim();
  int64_t outer = 1;
  for (int64_t d = 0; d < a; ++d) outer *= x.size(d);
  const int64_t inner = outer == 0 ? 0 : x.numel() / outer;
  return {reshape(x, {outer, inner})};
}

Outs transpose_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  std::vector<int64_t> perm = n.ints("perm");
  if (perm.empty())
    for (int64_t d = x.dim() - 1; d >= 0; --d) perm.push_back(d);
  KILN_CHECK_SHAPE(static_cast<int64_t>(perm.size()) == x.dim(), "{}: perm [{}] for rank {}",
                   n.where(), fmt::join(perm, ", "), x.dim());
  return {permute(x, perm)};
}

std::vector<int64_t> axes_of(const NodeContext& n, const Inputs& in, size_t k, int64_t since) {
  if (n.opset >= since)
    return in.size() > k && in[k].defined() ? int_values(n, in[k], "axes") : std::vector<int64_t>{};
  return n.ints("axes");
}

Outs squeeze_op(const NodeContext& n, const Inputs& in) {
  Tensor x = required(n, in, 0);
  std::vector<int64_t> axes = axes_of(n, in, 1, 13);
  if (axes.empty())
    for (int64_t d = 0; d < x.dim(); ++d)
      if (x.size(d) == 1) axes.push_back(d);
  for (auto& a : axes) a = axis(n, a, x.dim());
  std::sort(axes.rbegin(), axes.rend());
  for (int64_t a : axes) {
    KILN_CHECK_SHAPE(x.size(a) == 1, "{}: cannot squeeze axis {} of size {}", n.where(), a,
                     x.size(a));
    x = squeeze(x, a);
  }
  return {x};
}

Outs unsqueeze_op(const NodeContext& n, const Inputs& in) {
  Tensor x = required(n, in, 0);
  std::vector<int64_t> axes = axes_of(n, in, 1, 13);
  const int64_t r = x.dim() + static_cast<int64_t>(axes.size());
  for (auto& a : axes) a = axis(n, a, r);
  std::sort(axes.begin(), axes.end());
  for (int64_t a : axes) x = unsqueeze(x, a);
  return {x};
}

Outs concat_op(const NodeContext& n, const Inputs& in) {
  std::vector<Tensor> xs;
  for (size_t k = 0; k < in.size(); ++k) xs.push_back(required(n, in, k));
  return {cat(xs, axis(n, n.i("axis", 0), xs[0].dim()))};
}

Outs split_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const int64_t a = axis(n, n.i("axis", 0), x.dim());
  std::vector<int64_t> sizes =
      n.opset >= 13 ? (in.size() > 1 && in[1].defined() ? int_values(n, in[1], "split")
                                                        : std::vector<int64_t>{})
                    : n.ints("split");
  const int64_t len = x.size(a);
  if (sizes.empty()) {
    const int64_t parts = n.has("num_outputs") ? n.i("num_outputs", 1) : n.n_outputs;
    KILN_CHECK_SHAPE(parts > 0, "{}: cannot split into {} parts", n.where(), parts);
    const int64_t each = (len + parts - 1) / parts;
    for (int64_t k = 0, left = len; k < parts; ++k, left -= each)
      sizes.push_back(std::max<int64_t>(0, std::min(each, left)));
  }
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  KILN_CHECK_SHAPE(total == len, "{}: split sizes [{}] do not add up to {}", n.where(),
                   fmt::join(sizes, ", "), len);
  Outs out;
  int64_t start = 0;
  for (int64_t s : sizes) {
    out.push_back(narrow(x, a, start, s));
    start += s;
  }
  return out;
}

// Slice: per axis, clamp start/end as the spec says, then a strided view (positive steps) or an
// index_select (negative steps).
Outs slice_op(const NodeContext& n, const Inputs& in) {
  Tensor x = required(n, in, 0);
  std::vector<int64_t> starts, ends, axes, steps;
  if (n.opset < 10) {
    starts = n.ints("starts");
    ends = n.ints("ends");
    axes = n.ints("axes");
  } else {
    starts = int_values(n, required(n, in, 1), "starts");
    ends = int_values(n, required(n, in, 2), "ends");
    if (in.size() > 3 && in[3].defined()) axes = int_values(n, in[3], "axes");
    if (in.size() > 4 && in[4].defined()) steps = int_values(n, in[4], "steps");
  }
  KILN_CHECK_SHAPE(starts.size() == ends.size(), "{}: {} starts but {} ends", n.where(),
                   starts.size(), ends.size());
  if (axes.empty())
    for (size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<int64_t>(k));
  if (steps.empty()) steps.assign(starts.size(), 1);
  KILN_CHECK_SHAPE(axes.size() == starts.size() && steps.size() == starts.size(),
                   "{}: starts, ends, axes and steps must have the same length", n.where());
  for (size_t k = 0; k < axes.size(); ++k) {
    const int64_t a = axis(n, axes[k], x.dim()), len = x.size(a), step = steps[k];
    KILN_CHECK_SHAPE(step != 0, "{}: step must not be 0", n.where());
    auto clampi = [](int64_t v, int64_t lo, int64_t hi) { return std::min(std::max(v, lo), hi); };
    int64_t s = starts[k] < 0 ? starts[k] + len : starts[k];
    int64_t e = ends[k] < 0 ? ends[k] + len : ends[k];
    if (starts[k] < -(int64_t{1} << 62)) s = step > 0 ? 0 : -1;
    if (ends[k] < -(int64_t{1} << 62)) e = -1;
    if (step > 0) {
      s = clampi(s, 0, len);
      e = clampi(e, 0, len);
      x = e <= s ? narrow(x, a, s, 0) : slice(x, a, s, e, step);
    } else {
      s = clampi(s, -1, len - 1);
      e = clampi(e, -1, len - 1);
      std::vector<int64_t> idx;
      for (int64_t i = s; i > e; i += step) idx.push_back(i);
      x = index_select(x, a, index_tensor(idx));
    }
  }
  return {x};
}

// Indices as int64 with negative ones wrapped; the input itself (traced) when none is negative,
// so a re-export keeps the gather's indices as a graph value.
Tensor wrap_indices(const NodeContext& n, const Tensor& idx, int64_t len) {
  KILN_CHECK_TYPE(is_integral(idx.dtype()), "{}: indices must be integers, got {}", n.where(),
                  idx.dtype());
  Array i = idx.data().to(kInt64).contiguous();
  const int64_t* p = i.data<int64_t>();
  bool negative = false;
  for (int64_t k = 0; k < i.numel(); ++k) {
    KILN_CHECK_SHAPE(p[k] >= -len && p[k] < len,
                     "{}: index {} is out of range for a dim of size {}", n.where(), p[k], len);
    negative = negative || p[k] < 0;
  }
  if (!negative) return to_dtype(idx, kInt64);
  Array w = i.clone();
  int64_t* q = w.data<int64_t>();
  for (int64_t k = 0; k < w.numel(); ++k)
    if (q[k] < 0) q[k] += len;
  return Tensor(w);
}

Outs gather_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const int64_t a = axis(n, n.i("axis", 0), x.dim());
  const Tensor idx = wrap_indices(n, required(n, in, 1), x.size(a));
  Shape out;
  for (int64_t d = 0; d < a; ++d) out.push_back(x.size(d));
  for (int64_t d : idx.shape()) out.push_back(d);
  for (int64_t d = a + 1; d < x.dim(); ++d) out.push_back(x.size(d));
  return {reshape(index_select(x, a, reshape(idx, {idx.numel()})), out)};
}

Outs gather_elements_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const int64_t a = axis(n, n.i("axis", 0), x.dim());
  return {gather(x, a, wrap_indices(n, required(n, in, 1), x.size(a)))};
}

// GatherND: index tuples of length k pick slices of x (after `batch_dims` shared leading dims);
// done as one index_select on x viewed as (B·Πd_b..d_{b+k-1}, rest).
Outs gather_nd_op(const NodeContext& n, const Inputs& in) {
  const Tensor &x = required(n, in, 0), &idx = required(n, in, 1);
  const int64_t b = n.i("batch_dims", 0);
  KILN_CHECK_SHAPE(idx.dim() >= 1 && b >= 0 && b < idx.dim() && b <= x.dim(),
                   "{}: bad indices rank {} / batch_dims {}", n.where(), idx.dim(), b);
  const int64_t k = idx.size(-1);
  KILN_CHECK_SHAPE(b + k <= x.dim(), "{}: index tuples of length {} exceed rank {}", n.where(), k,
                   x.dim());
  int64_t batch = 1, block = 1;
  for (int64_t d = 0; d < b; ++d) batch *= x.size(d);
  for (int64_t d = b; d < b + k; ++d) block *= x.size(d);
  Shape rows{batch * block};
  for (int64_t d = b + k; d < x.dim(); ++d) rows.push_back(x.size(d));
  const std::vector<int64_t> iv = idx.to_vector<int64_t>();
  const int64_t tuples = k == 0 ? idx.numel() : static_cast<int64_t>(iv.size()) / k;
  const int64_t per_batch = batch == 0 ? 0 : tuples / batch;
  std::vector<int64_t> lin(static_cast<size_t>(tuples));
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t off = 0;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t len = x.size(b + j);
      int64_t v = iv[static_cast<size_t>(t * k + j)];
      if (v < 0) v += len;
      KILN_CHECK_SHAPE(v >= 0 && v < len, "{}: index {} out of range for size {}", n.where(), v,
                       len);
      off = off * len + v;
    }
    lin[static_cast<size_t>(t)] = (per_batch == 0 ? 0 : t / per_batch) * block + off;
  }
  Shape out(idx.shape().begin(), idx.shape().end() - 1);
  for (int64_t d = b + k; d < x.dim(); ++d) out.push_back(x.size(d));
  return {reshape(index_select(reshape(x, rows), 0, index_tensor(lin)), out)};
}

// ScatterElements / ScatterND (no gradient): copy, then write or combine updates.
double combine(const std::string& r, double old, double u) {
  if (r == "add") return old + u;
  if (r == "mul") return old * u;
  if (r == "max") return std::max(old, u);
  if (r == "min") return std::min(old, u);
  return u;
}
Outs scatter_elements_op(const NodeContext& n, const Inputs& in) {
  const Tensor &x = required(n, in, 0), &idx = required(n, in, 1), &upd = required(n, in, 2);
  const int64_t a = axis(n, n.i("axis", 0), x.dim());
  const std::string red = n.s("reduction", "none");
  KILN_CHECK_SHAPE(idx.shape() == upd.shape() && idx.dim() == x.dim(),
                   "{}: indices [{}] and updates [{}] must match, rank {}", n.where(),
                   fmt::join(idx.shape(), ", "), fmt::join(upd.shape(), ", "), x.dim());
  Array out = x.data().to(kFloat64).contiguous().clone();
  const std::vector<int64_t> iv = idx.to_vector<int64_t>();
  const std::vector<double> uv = upd.to_vector<double>();
  const Strides st = contiguous_strides(x.shape());
  std::vector<int64_t> pos(static_cast<size_t>(idx.dim()), 0);
  for (size_t e = 0; e < iv.size(); ++e) {
    int64_t off = 0;
    for (int64_t d = 0; d < idx.dim(); ++d) {
      int64_t v = d == a ? iv[e] : pos[static_cast<size_t>(d)];
      if (d == a && v < 0) v += x.size(a);
      KILN_CHECK_SHAPE(v >= 0 && v < x.size(d), "{}: index {} out of range for size {}", n.where(),
                       v, x.size(d));
      off += v * st[static_cast<size_t>(d)];
    }
    double& o = out.data<double>()[off];
    o = combine(red, o, uv[e]);
    for (int64_t d = idx.dim() - 1; d >= 0; --d) {
      if (++pos[static_cast<size_t>(d)] < idx.size(d)) break;
      pos[static_cast<size_t>(d)] = 0;
    }
  }
  return {nondiff(n, in, out.to(x.dtype()))};
}
Outs scatter_nd_op(const NodeContext& n, const Inputs& in) {
  const Tensor &x = required(n, in, 0), &idx = required(n, in, 1), &upd = required(n, in, 2);
  const std::string red = n.s("reduction", "none");
  KILN_CHECK_SHAPE(idx.dim() >= 1, "{}: indices must have rank >= 1", n.where());
  const int64_t k = idx.size(-1);
  KILN_CHECK_SHAPE(k <= x.dim(), "{}: index tuples of {} exceed rank {}", n.where(), k, x.dim());
  int64_t slice_len = 1;
  for (int64_t d = k; d < x.dim(); ++d) slice_len *= x.size(d);
  Array out = x.data().to(kFloat64).contiguous().clone();
  const std::vector<int64_t> iv = idx.to_vector<int64_t>();
  const std::vector<double> uv = upd.to_vector<double>();
  const int64_t tuples = k == 0 ? 1 : static_cast<int64_t>(iv.size()) / k;
  KILN_CHECK_SHAPE(static_cast<int64_t>(uv.size()) == tuples * slice_len,
                   "{}: updates hold {} values, need {}", n.where(), uv.size(), tuples * slice_len);
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t off = 0;
    for (int64_t j = 0; j < k; ++j) {
      int64_t v = iv[static_cast<size_t>(t * k + j)];
      if (v < 0) v += x.size(j);
      KILN_CHECK_SHAPE(v >= 0 && v < x.size(j), "{}: index {} out of range for size {}", n.where(),
                       v, x.size(j));
      off = off * x.size(j) + v;
    }
    for (int64_t e = 0; e < slice_len; ++e) {
      double& o = out.data<double>()[off * slice_len + e];
      o = combine(red, o, uv[static_cast<size_t>(t * slice_len + e)]);
    }
  }
  return {nondiff(n, in, out.to(x.dtype()))};
}

Outs expand_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const std::vector<int64_t> target = int_values(n, required(n, in, 1), "shape");
  const Shape s = broadcast_shapes(x.shape(), target, "Expand");
  check_numel(n, s);
  return {expand(x, s)};
}

// Tile: (d0, d1, ...) -> (1, d0, 1, d1, ...) expanded to (r0, d0, r1, d1, ...), then merged.
Outs tile_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const std::vector<int64_t> reps = int_values(n, required(n, in, 1), "repeats");
  KILN_CHECK_SHAPE(static_cast<int64_t>(reps.size()) == x.dim(), "{}: {} repeats for rank {}",
                   n.where(), reps.size(), x.dim());
  Shape inter, expanded, out;
  for (int64_t d = 0; d < x.dim(); ++d) {
    KILN_CHECK_SHAPE(reps[static_cast<size_t>(d)] >= 0, "{}: negative repeat", n.where());
    inter.insert(inter.end(), {1, x.size(d)});
    expanded.insert(expanded.end(), {reps[static_cast<size_t>(d)], x.size(d)});
    out.push_back(reps[static_cast<size_t>(d)] * x.size(d));
  }
  check_numel(n, out);
  return {reshape(contiguous(expand(reshape(x, inter), expanded)), out)};
}

// Pad: constant (Kiln's pad), reflect and edge (index_select with mirrored / clamped indices, so
// the gradient flows), negative pads crop first.
Outs pad_op(const NodeContext& n, const Inputs& in) {
  Tensor x = required(n, in, 0);
  const std::string mode = n.s("mode", "constant");
  std::vector<int64_t> pads;
  double value = 0.0;
  std::vector<int64_t> axes;
  if (n.opset < 11) {
    pads = n.ints(n.has("paddings") ? "paddings" : "pads");
    value = n.f("value", 0.0);
  } else {
    pads = int_values(n, required(n, in, 1), "pads");
    if (in.size() > 2 && in[2].defined() && in[2].numel() > 0)
      value = scalar_value(n, in[2], "constant_value");
    if (in.size() > 3 && in[3].defined()) axes = int_values(n, in[3], "axes");
  }
  if (axes.empty())
    for (int64_t d = 0; d < x.dim(); ++d) axes.push_back(d);
  KILN_CHECK_SHAPE(pads.size() == 2 * axes.size(), "{}: {} pads for {} axes", n.where(),
                   pads.size(), axes.size());
  const size_t na = axes.size();
  std::vector<int64_t> before(static_cast<size_t>(x.dim()), 0),
      after(static_cast<size_t>(x.dim()), 0);
  for (size_t k = 0; k < na; ++k) {
    const int64_t a = axis(n, axes[k], x.dim());
    before[static_cast<size_t>(a)] = pads[k];
    after[static_cast<size_t>(a)] = pads[k + na];
  }
  for (int64_t d = 0; d < x.dim(); ++d) {  // crop negative pads
    const int64_t b = std::min<int64_t>(0, before[static_cast<size_t>(d)]),
                  e = std::min<int64_t>(0, after[static_cast<size_t>(d)]);
    if (b < 0 || e < 0) {
      KILN_CHECK_SHAPE(x.size(d) + b + e >= 0, "{}: pads crop more than dim {} holds", n.where(),
                       d);
      x = narrow(x, d, -b, x.size(d) + b + e);
    }
  }
  Shape target;
  for (int64_t d = 0; d < x.dim(); ++d)
    target.push_back(x.size(d) + std::max<int64_t>(0, before[static_cast<size_t>(d)]) +
                     std::max<int64_t>(0, after[static_cast<size_t>(d)]));
  check_numel(n, target);
  if (mode == "constant") {
    std::vector<int64_t> kp;
    for (int64_t d = x.dim() - 1; d >= 0; --d) {
      kp.push_back(std::max<int64_t>(0, before[static_cast<size_t>(d)]));
      kp.push_back(std::max<int64_t>(0, after[static_cast<size_t>(d)]));
    }
    return {pad(x, kp, value)};
  }
  KILN_CHECK(mode == "reflect" || mode == "edge" || mode == "wrap",
             "{}: mode '{}' is not supported", n.where(), mode);
  for (int64_t d = 0; d < x.dim(); ++d) {
    const int64_t b = std::max<int64_t>(0, before[static_cast<size_t>(d)]),
                  e = std::max<int64_t>(0, after[static_cast<size_t>(d)]);
    if (b == 0 && e == 0) continue;
    const int64_t len = x.size(d);
    KILN_CHECK_SHAPE(len > (mode == "reflect" ? 1 : 0) || len > 0, "{}: cannot {}-pad an empty dim",
                     n.where(), mode);
    std::vector<int64_t> idx;
    for (int64_t i = -b; i < len + e; ++i) {
      int64_t j = i;
      if (mode == "edge")
        j = std::clamp<int64_t>(i, 0, len - 1);
      else if (mode == "wrap")
        j = ((i % len) + len) % len;
      else if (len == 1)
        j = 0;
      else {
        const int64_t period = 2 * (len - 1);
        j = ((i % period) + period) % period;
        if (j >= len) j = period - j;
      }
      idx.push_back(j);
    }
    x = index_select(x, d, index_tensor(idx));
  }
  return {x};
}

// Unique(X) -> (Y, indices, inverse_indices, counts). Without `axis` over the flattened
// elements, with it over the slices along `axis`; sorted = 1 orders them ascending
// (lexicographically for slices), 0 by first occurrence. indices: the first occurrence of each;
// inverse_indices: for every element (slice) of X, its position in Y. Y is an index_select of X
// (gradient to X); the index outputs are constants.
template <typename T>
std::vector<int64_t> unique_order(const Array& rows, int64_t L, int64_t R, bool sorted,
                                  std::vector<int64_t>& group_of) {
  const Array c = rows.to(dtype_v<T>).contiguous();
  const T* v = c.data<T>();
  auto less = [&](int64_t i, int64_t j) {
    return std::lexicographical_compare(v + i * R, v + (i + 1) * R, v + j * R, v + (j + 1) * R);
  };
  auto same = [&](int64_t i, int64_t j) {
    return std::equal(v + i * R, v + (i + 1) * R, v + j * R);
  };
  std::vector<int64_t> order(static_cast<size_t>(L));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), less);  // equal rows keep their first index first
  std::vector<int64_t> firsts;  // first occurrence of each distinct row, in sorted order
  group_of.assign(static_cast<size_t>(L), 0);
  for (size_t k = 0; k < order.size(); ++k) {
    if (k == 0 || !same(order[k - 1], order[k])) firsts.push_back(order[k]);
    group_of[static_cast<size_t>(order[k])] = static_cast<int64_t>(firsts.size()) - 1;
  }
  if (!sorted) {  // renumber the groups by first occurrence
    std::vector<int64_t> by_first(firsts.size());
    std::iota(by_first.begin(), by_first.end(), 0);
    std::sort(by_first.begin(), by_first.end(), [&](int64_t a, int64_t b) {
      return firsts[static_cast<size_t>(a)] < firsts[static_cast<size_t>(b)];
    });
    std::vector<int64_t> rank(firsts.size()), reordered(firsts.size());
    for (size_t k = 0; k < by_first.size(); ++k) {
      rank[static_cast<size_t>(by_first[k])] = static_cast<int64_t>(k);
      reordered[k] = firsts[static_cast<size_t>(by_first[k])];
    }
    for (int64_t& g : group_of) g = rank[static_cast<size_t>(g)];
    firsts = reordered;
  }
  return firsts;
}
Outs unique_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const bool sorted = n.i("sorted", 1) != 0;
  const bool by_axis = n.has("axis");
  const int64_t a = by_axis ? axis(n, n.i("axis", 0), x.dim()) : 0;
  const Tensor src = by_axis ? x : reshape(x, {x.numel()});
  const int64_t L = src.size(a), R = L == 0 ? 0 : src.numel() / L;
  std::vector<int64_t> front = {a};  // the axis first, the others in order (NumPy's moveaxis)
  for (int64_t d = 0; d < src.dim(); ++d)
    if (d != a) front.push_back(d);
  const Array rows = src.data().permute(front).contiguous().reshape({L, R});
  std::vector<int64_t> group_of;
  const std::vector<int64_t> firsts = is_floating(x.dtype())
                                          ? unique_order<double>(rows, L, R, sorted, group_of)
                                          : unique_order<int64_t>(rows, L, R, sorted, group_of);
  std::vector<int64_t> counts(firsts.size(), 0);
  for (int64_t g : group_of) ++counts[static_cast<size_t>(g)];
  const Tensor idx = index_tensor(firsts);
  return {index_select(src, a, idx), idx, index_tensor(group_of), index_tensor(counts)};
}

}  // namespace

void register_tensor_ops(OpTable& t) {
  t["Unique"] = unique_op;
  t["Identity"] = identity_op;
  t["Reshape"] = reshape_op;
  t["Flatten"] = flatten_op;
  t["Transpose"] = transpose_op;
  t["Squeeze"] = squeeze_op;
  t["Unsqueeze"] = unsqueeze_op;
  t["Concat"] = concat_op;
  t["Split"] = split_op;
  t["Slice"] = slice_op;
  t["Gather"] = gather_op;
  t["GatherElements"] = gather_elements_op;
  t["GatherND"] = gather_nd_op;
  t["ScatterElements"] = scatter_elements_op;
  t["Scatter"] = scatter_elements_op;
  t["ScatterND"] = scatter_nd_op;
  t["Expand"] = expand_op;
  t["Tile"] = tile_op;
  t["Pad"] = pad_op;
}

}  // namespace kiln::onnx::detail
