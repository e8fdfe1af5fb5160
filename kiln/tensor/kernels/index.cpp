// Indexing and joining kernels. Legend: a dim-wise op sees a contiguous array as (outer, n, inner):
// outer = product of the dims before `dim`, n = size of `dim`, inner = product of the dims after
// it. N = number of indices, V = vocabulary rows, C = embedding channels, O = rows of a sort, R =
// row length.
#include "kiln/tensor/index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <utility>

#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/kernels/loops.h"
#include "kiln/tensor/parallel.h"

namespace kiln::kernels {
namespace {

// ---- helpers ----

int64_t prod(const Shape& s, int64_t begin, int64_t end) {
  int64_t p = 1;
  for (int64_t d = begin; d < end; ++d) p *= s[d];
  return p;
}

// Calls f.template operator()<W>() with W an unsigned word as wide as one element. Moving elements
// needs only their width (copies are memcpy of sizeof(W), valid for any dtype), so one
// instantiation serves float32 and int32, another float64 and int64.
template <typename F>
void dispatch_width(size_t itemsize, F&& f) {
  switch (itemsize) {
    case 1:
      f.template operator()<uint8_t>();
      break;
    case 4:
      f.template operator()<uint32_t>();
      break;
    case 8:
      f.template operator()<uint64_t>();
      break;
    default:
      throw Error(fmt::format("index kernels: unsupported element size {}", itemsize));
  }
}

// An index array as contiguous int64 (int32 widened); other dtypes are rejected naming the op.
Array as_index(const Array& index, const char* op, const char* what = "index") {
  KILN_CHECK_TYPE(index.dtype() == kInt64 || index.dtype() == kInt32,
                  "{}: {} dtype {} is not an index type (int64 or int32 required)", op, what,
                  index.dtype());
  return index.to(kInt64).contiguous();
}

// Position of the first entry outside [0, n), or -1 when all are in range.
int64_t first_out_of_range(const Array& idx, int64_t n) {
  const int64_t* p = idx.data<int64_t>();
  const int64_t count = idx.numel();
  for (int64_t i = 0; i < count; ++i)
    if (static_cast<uint64_t>(p[i]) >= static_cast<uint64_t>(n)) return i;
  return -1;
}

// Throws "op: index 7 out of range for dim 1 of size 5 (indices must be in [0, 5))".
void check_dim_indices(const Array& idx, int64_t n, int64_t dim, const char* op) {
  int64_t bad = first_out_of_range(idx, n);
  KILN_CHECK_SHAPE(bad < 0,
                   "{}: index {} out of range for dim {} of size {} (indices must be in [0, {}))",
                   op, bad < 0 ? 0 : idx.data<int64_t>()[bad], dim, n, n);
}

// A view of `a` with `shape` (not larger than a's in any dim) and a's strides, stride 0 at
// `zero_dim`.
Array corner_view(const Array& a, const Shape& shape, int64_t zero_dim) {
  Strides st = a.strides();
  if (zero_dim >= 0) st[zero_dim] = 0;
  return Array(a.storage(), shape, st, a.offset(), a.dtype());
}

// Largest-first / smallest-first order with NaN above every number (PyTorch's convention).
template <typename T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return std::isnan(v);
  else
    return false;
}
template <typename T>
bool sorts_before(T a, T b, bool descending) {
  if (is_nan(a)) return descending && !is_nan(b);
  if (is_nan(b)) return !descending;
  return descending ? b < a : a < b;
}

// Rows of x along `dim` laid out contiguously as (O, R): `dim` moved last.
struct Rows {
  Array data;                 // (O, R)
  std::vector<int64_t> perm;  // x.permute(perm) has `dim` last
  int64_t O = 1, R = 1;
};
Rows rows_along(const Array& x, int64_t dim) {
  Rows r;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d != dim) r.perm.push_back(d);
  r.perm.push_back(dim);
  r.data = x.permute(r.perm).contiguous();
  r.R = x.size(dim);
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d != dim) r.O *= x.size(d);
  return r;
}
// Undoes rows_along on a (O, k) result: back to x's dim order with `dim` of size k.
Array unrows(const Array& rows, const Array& x, const std::vector<int64_t>& perm, int64_t dim,
             int64_t k) {
  Shape ps;
  for (int64_t d : perm) ps.push_back(d == dim ? k : x.size(d));
  std::vector<int64_t> inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inv[perm[i]] = static_cast<int64_t>(i);
  return rows.view(ps).permute(inv).contiguous();
}

// out rows (outer, N, inner) = x rows (outer, n, inner) picked by idx (N); one row copy per task
// item.
void select_rows(const Array& xc, Array& out, const int64_t* idx, int64_t outer, int64_t n,
                 int64_t N, int64_t inner) {
  dispatch_width(xc.itemsize(), [&]<typename W>() {
    const char* x = static_cast<const char*>(xc.raw_data());
    char* y = static_cast<char*>(out.raw_data());
    const int64_t row = inner * static_cast<int64_t>(sizeof(W));
    parallel_for(0, outer * N, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(inner, 1)),
                 [&](int64_t r0, int64_t r1) {
                   for (int64_t r = r0; r < r1; ++r) {
                     const char* src = x + ((r / N) * n + idx[r % N]) * row;
                     // A fixed-size copy inlines to one move; rows go through memcpy.
                     if (inner == 1)
                       std::memcpy(y + r * row, src, sizeof(W));
                     else
                       std::memcpy(y + r * row, src, static_cast<size_t>(row));
                   }
                 });
  });
}

template <typename T>
inline void add_row(T* __restrict d, const T* __restrict s, int64_t inner) {
  for (int64_t k = 0; k < inner; ++k) d[k] += s[k];
}

// out (outer, n, inner) = zeros, then out[o, idx[j]] += src[o, j] for j in order, skipping idx ==
// skip. Destination rows are split across tasks: each zeroes its rows and adds only the rows
// landing in them, so no two tasks write the same element and every element sums its terms in j
// order whatever the thread count.
template <typename T>
void index_add_rows(T* out, const T* src, const int64_t* idx, int64_t outer, int64_t n, int64_t N,
                    int64_t inner, int64_t skip) {
  const int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(inner, 1));
  if (outer == 1) {
    // The embedding case. A stable counting sort of source rows by destination block (`grain` rows
    // each) lets every task walk only its own rows' sources: O(N) in total at any thread count.
    const int64_t B = (n + grain - 1) / grain;
    std::vector<int64_t> start(static_cast<size_t>(B + 1), 0), order(static_cast<size_t>(N));
    for (int64_t j = 0; j < N; ++j)
      if (idx[j] != skip) ++start[idx[j] / grain + 1];
    std::partial_sum(start.begin(), start.end(), start.begin());
    std::vector<int64_t> next(start.begin(), start.end() - 1);
    for (int64_t j = 0; j < N; ++j)
      if (idx[j] != skip) order[next[idx[j] / grain]++] = j;
    parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      std::fill(out + b0 * grain * inner, out + std::min(b1 * grain, n) * inner, T(0));
      for (int64_t t = start[b0]; t < start[b1]; ++t)
        add_row(out + idx[order[t]] * inner, src + order[t] * inner, inner);
    });
    return;
  }
  // Several outer slices: tasks own row ranges of (outer · n) and scan the N indices per slice.
  parallel_for(0, outer * n, grain, [&](int64_t r0, int64_t r1) {
    std::fill(out + r0 * inner, out + r1 * inner, T(0));
    for (int64_t o = r0 / n; o * n < r1; ++o) {
      const int64_t lo = std::max<int64_t>(r0 - o * n, 0), hi = std::min<int64_t>(r1 - o * n, n);
      for (int64_t j = 0; j < N; ++j)
        if (idx[j] >= lo && idx[j] < hi && idx[j] != skip)
          add_row(out + (o * n + idx[j]) * inner, src + (o * N + j) * inner, inner);
    }
  });
}

}  // namespace

// ---------------------------------------------------------------- joining and splitting

Array cat(const std::vector<Array>& xs, int64_t dim) {
  KILN_CHECK_SHAPE(!xs.empty(), "cat: expected a non-empty list of arrays");
  // PyTorch skips 1-D empty inputs of shape [0] whatever the other shapes are.
  std::vector<size_t> parts;
  for (size_t i = 0; i < xs.size(); ++i)
    if (!(xs[i].dim() == 1 && xs[i].numel() == 0)) parts.push_back(i);
  if (parts.empty()) parts.push_back(0);
  const Array& ref = xs[parts[0]];
  KILN_CHECK_SHAPE(ref.dim() > 0, "cat: zero-dimensional array (input {}) cannot be concatenated",
                   parts[0]);
  dim = wrap_dim(dim, ref.dim(), "cat");
  Shape os = ref.shape();
  os[dim] = 0;
  DType dt = ref.dtype();
  for (size_t i : parts) {
    const Array& x = xs[i];
    KILN_CHECK_SHAPE(x.dim() == ref.dim(),
                     "cat: input {} has {} dims but input {} has {} (all inputs must have the same "
                     "number of dims)",
                     i, x.dim(), parts[0], ref.dim());
    for (int64_t d = 0; d < x.dim(); ++d)
      KILN_CHECK_SHAPE(
          d == dim || x.size(d) == ref.size(d),
          "cat: input {} {} vs input {} {} differ at dim {} (sizes must match except in dim {})",
          parts[0], ref.shape(), i, x.shape(), d, dim);
    os[dim] += x.size(dim);
    dt = promote_types(dt, x.dtype());
  }
  Array out(os, dt);
  if (out.numel() == 0) return out;
  bool fast = true;
  for (size_t i : parts) fast = fast && xs[i].is_contiguous() && xs[i].dtype() == dt;
  if (!fast) {
    int64_t off = 0;
    for (size_t i : parts) {
      out.narrow(dim, off, xs[i].size(dim)).copy_(xs[i]);
      off += xs[i].size(dim);
    }
    return out;
  }
  // Every input and the output are contiguous (outer, n_i · inner) matrices: each output row is the
  // input rows side by side, so a row is a sequence of memcpy calls.
  const int64_t outer = prod(os, 0, dim);
  const size_t row_bytes = out.nbytes() / static_cast<size_t>(outer);
  char* y = static_cast<char*>(out.raw_data());
  parallel_for(0, outer, std::max<int64_t>(1, kGrainSize * 4 / static_cast<int64_t>(row_bytes)),
               [&](int64_t o0, int64_t o1) {
                 for (int64_t o = o0; o < o1; ++o) {
                   char* dst = y + o * row_bytes;
                   for (size_t i : parts) {
                     const size_t b = xs[i].nbytes() / static_cast<size_t>(outer);
                     if (b) std::memcpy(dst, static_cast<const char*>(xs[i].raw_data()) + o * b, b);
                     dst += b;
                   }
                 }
               });
  return out;
}

Array stack(const std::vector<Array>& xs, int64_t dim) {
  KILN_CHECK_SHAPE(!xs.empty(), "stack: expected a non-empty list of arrays");
  dim = wrap_dim(dim, xs[0].dim() + 1, "stack");
  std::vector<Array> u;
  for (size_t i = 0; i < xs.size(); ++i) {
    KILN_CHECK_SHAPE(xs[i].shape() == xs[0].shape(),
                     "stack: input {} has shape {} but input 0 has shape {} (all inputs must have "
                     "the same shape)",
                     i, xs[i].shape(), xs[0].shape());
    u.push_back(xs[i].unsqueeze(dim));
  }
  return cat(u, dim);
}

std::vector<Array> split_with_sizes(const Array& x, const std::vector<int64_t>& sizes,
                                    int64_t dim) {
  KILN_CHECK_SHAPE(x.dim() > 0, "split: expected an array with at least 1 dim, got a 0-dim one");
  dim = wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    KILN_CHECK_SHAPE(s >= 0, "split: sizes {} contain a negative size (sizes must be >= 0)", sizes);
    total += s;
  }
  KILN_CHECK_SHAPE(total == x.size(dim),
                   "split: sizes {} sum to {} but dim {} of {} has size {} (they must be equal)",
                   sizes, total, dim, x.shape(), x.size(dim));
  std::vector<Array> out;
  int64_t off = 0;
  for (int64_t s : sizes) {
    out.push_back(x.narrow(dim, off, s));
    off += s;
  }
  return out;
}

std::vector<Array> split(const Array& x, int64_t split_size, int64_t dim) {
  KILN_CHECK_SHAPE(x.dim() > 0, "split: expected an array with at least 1 dim, got a 0-dim one");
  dim = wrap_dim(dim, x.dim(), "split");
  const int64_t n = x.size(dim);
  KILN_CHECK_SHAPE(split_size > 0 || (split_size == 0 && n == 0),
                   "split: split_size {} is invalid for dim {} of size {} (split_size must be > 0, "
                   "or 0 when the "
                   "dim is empty)",
                   split_size, dim, n);
  std::vector<int64_t> sizes;
  if (split_size == 0 || n == 0) {
    sizes.push_back(0);
  } else {
    for (int64_t off = 0; off < n; off += split_size)
      sizes.push_back(std::min(split_size, n - off));
  }
  return split_with_sizes(x, sizes, dim);
}

std::vector<int64_t> chunk_sizes(int64_t n, int64_t chunks) {
  KILN_CHECK_SHAPE(chunks > 0, "chunk: chunks must be > 0, got {}", chunks);
  const int64_t size = (n + chunks - 1) / chunks;
  if (n == 0) return std::vector<int64_t>(static_cast<size_t>(chunks), 0);
  std::vector<int64_t> sizes;
  for (int64_t off = 0; off < n; off += size) sizes.push_back(std::min(size, n - off));
  return sizes;
}

std::vector<Array> chunk(const Array& x, int64_t chunks, int64_t dim) {
  KILN_CHECK_SHAPE(x.dim() > 0, "chunk: expected an array with at least 1 dim, got a 0-dim one");
  dim = wrap_dim(dim, x.dim(), "chunk");
  return split_with_sizes(x, chunk_sizes(x.size(dim), chunks), dim);
}

// ---------------------------------------------------------------- gathering and scattering

Array index_select(const Array& x, int64_t dim, const Array& index) {
  KILN_CHECK_SHAPE(x.dim() > 0,
                   "index_select: expected an input with at least 1 dim, got a 0-dim one");
  dim = wrap_dim(dim, x.dim(), "index_select");
  KILN_CHECK_SHAPE(index.dim() <= 1, "index_select: index must be 1-D, got shape {}",
                   index.shape());
  Array idx = as_index(index, "index_select");
  const int64_t n = x.size(dim), N = idx.numel();
  check_dim_indices(idx, n, dim, "index_select");
  Shape os = x.shape();
  os[dim] = N;
  Array out(os, x.dtype());
  if (out.numel() == 0) return out;
  Array xc = x.contiguous();
  select_rows(xc, out, idx.data<int64_t>(), prod(os, 0, dim), n, N, prod(os, dim + 1, x.dim()));
  return out;
}

Array index_add_zeros(const Shape& shape, int64_t dim, const Array& index, const Array& src) {
  dim = wrap_dim(dim, static_cast<int64_t>(shape.size()), "index_add");
  Array idx = as_index(index, "index_add");
  const int64_t n = shape[dim], N = idx.numel();
  Shape ss = shape;
  ss[dim] = N;
  KILN_CHECK_SHAPE(src.shape() == ss,
                   "index_add: source {} does not match {} (expected {} for {} indices)",
                   src.shape(), shape, ss, N);
  check_dim_indices(idx, n, dim, "index_add");
  Array out(shape, src.dtype());
  if (out.numel() == 0) return out;
  Array sc = src.contiguous();
  KILN_DISPATCH_NUMERIC(src.dtype(), "index_add", [&] {
    index_add_rows(out.data<scalar_t>(), sc.data<scalar_t>(), idx.data<int64_t>(),
                   prod(shape, 0, dim), n, N, prod(shape, dim + 1, out.dim()), -1);
  });
  return out;
}

Array gather(const Array& x, int64_t dim, const Array& index) {
  if (x.dim() == 0 && index.dim() == 0)
    return gather(x.reshape({1}), 0, index.reshape({1})).reshape({});
  dim = wrap_dim(dim, x.dim(), "gather");
  KILN_CHECK_SHAPE(
      index.dim() == x.dim(),
      "gather: index {} has {} dims but input {} has {} (they must have the same number of dims)",
      index.shape(), index.dim(), x.shape(), x.dim());
  for (int64_t d = 0; d < x.dim(); ++d)
    KILN_CHECK_SHAPE(d == dim || index.size(d) <= x.size(d),
                     "gather: index {} is larger than input {} at dim {} (index.size(d) <= "
                     "input.size(d) for d != {})",
                     index.shape(), x.shape(), d, dim);
  Array idx = as_index(index, "gather");
  check_dim_indices(idx, x.size(dim), dim, "gather");
  Array out(index.shape(), x.dtype());
  if (out.numel() == 0) return out;
  // x seen with index's shape and stride 0 along dim: the plan walks out, idx and this view
  // together, and each element adds idx · stride(dim) to reach its source.
  Array xv = corner_view(x, index.shape(), dim);
  const int64_t dstride = x.stride(dim) * static_cast<int64_t>(x.itemsize());
  auto plan = detail::make_plan<3>(index.shape(), {&out, &idx, &xv});
  dispatch_width(x.itemsize(), [&]<typename W>() {
    detail::run_plan(plan,
                     [dstride](std::array<char*, 3> p, std::array<int64_t, 3> s, int64_t cnt) {
                       for (int64_t i = 0; i < cnt; ++i) {
                         const int64_t v = *reinterpret_cast<const int64_t*>(p[1] + i * s[1]);
                         std::memcpy(p[0] + i * s[0], p[2] + i * s[2] + v * dstride, sizeof(W));
                       }
                     });
  });
  return out;
}

void scatter_add_(Array& out, int64_t dim, const Array& index, const Array& src) {
  dim = wrap_dim(dim, out.dim(), "scatter_add");
  KILN_CHECK_SHAPE(index.dim() == out.dim() && src.dim() == out.dim(),
                   "scatter_add: input {}, index {} and src {} must have the same number of dims",
                   out.shape(), index.shape(), src.shape());
  KILN_CHECK_TYPE(src.dtype() == out.dtype(),
                  "scatter_add: src dtype {} differs from input dtype {} (must be equal)",
                  src.dtype(), out.dtype());
  for (int64_t d = 0; d < out.dim(); ++d) {
    KILN_CHECK_SHAPE(
        index.size(d) <= src.size(d),
        "scatter_add: index {} is larger than src {} at dim {} (index.size(d) <= src.size(d))",
        index.shape(), src.shape(), d);
    KILN_CHECK_SHAPE(d == dim || index.size(d) <= out.size(d),
                     "scatter_add: index {} is larger than input {} at dim {} (index.size(d) <= "
                     "input.size(d) for "
                     "d != {})",
                     index.shape(), out.shape(), d, dim);
    KILN_CHECK(out.size(d) <= 1 || out.stride(d) != 0,
               "scatter_add: the output {} overlaps itself (stride 0 at dim {}); clone it first",
               out.shape(), d);
  }
  Array idx = as_index(index, "scatter_add");
  check_dim_indices(idx, out.size(dim), dim, "scatter_add");
  out.bump_version();
  if (idx.numel() == 0) return;
  // Lines: every position of index with dim collapsed to 1. Each line writes only its own line of
  // out, so lines run in parallel and each adds its m terms in order (thread-count independent).
  Shape lines = index.shape();
  const int64_t m = lines[dim];
  lines[dim] = 1;
  Array ov = corner_view(out, lines, -1), iv = corner_view(idx, lines, -1),
        sv = corner_view(src, lines, -1);
  const int64_t isz = static_cast<int64_t>(out.itemsize());
  const int64_t os = out.stride(dim) * isz, is = idx.stride(dim) * 8, ss = src.stride(dim) * isz;
  auto plan = detail::make_plan<3>(lines, {&ov, &iv, &sv});
  KILN_DISPATCH_NUMERIC(out.dtype(), "scatter_add", [&] {
    detail::run_plan(
        plan,
        [=](std::array<char*, 3> p, std::array<int64_t, 3> s, int64_t cnt) {
          for (int64_t j = 0; j < m; ++j)
            for (int64_t i = 0; i < cnt; ++i) {
              const int64_t v = *reinterpret_cast<const int64_t*>(p[1] + i * s[1] + j * is);
              *reinterpret_cast<scalar_t*>(p[0] + i * s[0] + v * os) +=
                  *reinterpret_cast<const scalar_t*>(p[2] + i * s[2] + j * ss);
            }
        },
        std::max<int64_t>(1, kGrainSize / m));
  });
}

Array scatter_add(const Array& x, int64_t dim, const Array& index, const Array& src) {
  Array out = x.clone();
  scatter_add_(out, dim, index, src);
  return out;
}

// ---------------------------------------------------------------- embeddings and one-hot

Array embedding(const Array& weight, const Array& ids) {
  KILN_CHECK_SHAPE(weight.dim() == 2, "embedding: weight must be 2-D (V, C), got shape {}",
                   weight.shape());
  Array idx = as_index(ids, "embedding", "ids");
  const int64_t V = weight.size(0), C = weight.size(1), N = idx.numel();
  int64_t bad = first_out_of_range(idx, V);
  KILN_CHECK_SHAPE(bad < 0, "embedding: id {} out of range for {} rows (ids must be in [0, {}))",
                   bad < 0 ? 0 : idx.data<int64_t>()[bad], V, V);
  Shape os = ids.shape();
  os.push_back(C);
  Array out(os, weight.dtype());
  if (out.numel() == 0) return out;
  select_rows(weight.contiguous(), out, idx.data<int64_t>(), 1, V, N, C);
  return out;
}

Array embedding_backward(const Array& dy, const Array& ids, int64_t num_rows, int64_t padding_idx) {
  Array idx = as_index(ids, "embedding_backward", "ids");
  const int64_t N = idx.numel();
  KILN_CHECK_SHAPE(dy.dim() == ids.dim() + 1 &&
                       std::equal(ids.shape().begin(), ids.shape().end(), dy.shape().begin()),
                   "embedding_backward: dy {} does not match ids {} (dy must be (*ids, C))",
                   dy.shape(), ids.shape());
  const int64_t C = dy.size(-1);
  int64_t bad = first_out_of_range(idx, num_rows);
  KILN_CHECK_SHAPE(bad < 0,
                   "embedding_backward: id {} out of range for {} rows (ids must be in [0, {}))",
                   bad < 0 ? 0 : idx.data<int64_t>()[bad], num_rows, num_rows);
  Array out({num_rows, C}, dy.dtype());
  if (out.numel() == 0) return out;
  Array dyc = dy.contiguous();
  KILN_DISPATCH_FLOATING(dy.dtype(), "embedding_backward", [&] {
    index_add_rows(out.data<scalar_t>(), dyc.data<scalar_t>(), idx.data<int64_t>(), 1, num_rows, N,
                   C, padding_idx);
  });
  return out;
}

Array one_hot(const Array& ids, int64_t num_classes) {
  Array idx = as_index(ids, "one_hot", "ids");
  const int64_t N = idx.numel();
  const int64_t* ip = idx.data<int64_t>();
  if (num_classes == -1) {
    KILN_CHECK_SHAPE(N > 0,
                     "one_hot: cannot infer num_classes from empty ids {} (pass num_classes)",
                     ids.shape());
    num_classes = *std::max_element(ip, ip + N) + 1;
  }
  KILN_CHECK_SHAPE(num_classes >= 0, "one_hot: num_classes must be >= 0 or -1 (infer), got {}",
                   num_classes);
  int64_t bad = first_out_of_range(idx, num_classes);
  KILN_CHECK_SHAPE(bad < 0, "one_hot: id {} out of range for {} classes (ids must be in [0, {}))",
                   bad < 0 ? 0 : ip[bad], num_classes, num_classes);
  Shape os = ids.shape();
  os.push_back(num_classes);
  Array out(os, kInt64);
  int64_t* y = out.data<int64_t>();
  parallel_for(0, N, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(num_classes, 1)),
               [&](int64_t i0, int64_t i1) {
                 std::fill(y + i0 * num_classes, y + i1 * num_classes, int64_t{0});
                 for (int64_t i = i0; i < i1; ++i) y[i * num_classes + ip[i]] = 1;
               });
  return out;
}

// ---------------------------------------------------------------- sorting

namespace {
// The first k entries of every row along `dim` in order (descending: largest first), ties broken
// by the lower original index — a total order, so the result is the stable sort's and the k chosen
// are unique. k == size(dim) is a full sort.
ValuesIndices first_k_sorted(const Array& x, int64_t k, int64_t dim, bool descending) {
  Rows rows = rows_along(x, dim);
  const int64_t O = rows.O, R = rows.R;
  Array vals({O, k}, x.dtype()), inds({O, k}, kInt64);
  KILN_DISPATCH_ALL(x.dtype(), "sort", [&] {
    const scalar_t* xp = rows.data.data<scalar_t>();
    scalar_t* vp = vals.data<scalar_t>();
    int64_t* ip = inds.data<int64_t>();
    const auto before = [descending](const auto& a, const auto& b) {
      if (sorts_before(a.first, b.first, descending)) return true;
      if (sorts_before(b.first, a.first, descending)) return false;
      return a.second < b.second;
    };
    parallel_for(0, O, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(R, 1)),
                 [&](int64_t o0, int64_t o1) {
                   std::vector<std::pair<scalar_t, int64_t>> buf(static_cast<size_t>(R));
                   for (int64_t o = o0; o < o1; ++o) {
                     const scalar_t* row = xp + o * R;
                     for (int64_t r = 0; r < R; ++r) buf[r] = {row[r], r};
                     if (k == R)
                       std::sort(buf.begin(), buf.end(), before);
                     else
                       std::partial_sort(buf.begin(), buf.begin() + k, buf.end(), before);
                     for (int64_t r = 0; r < k; ++r) {
                       vp[o * k + r] = buf[r].first;
                       ip[o * k + r] = buf[r].second;
                     }
                   }
                 });
  });
  return {unrows(vals, x, rows.perm, dim, k), unrows(inds, x, rows.perm, dim, k)};
}
}  // namespace

ValuesIndices sort(const Array& x, int64_t dim, bool descending) {
  if (x.dim() == 0) return {x.clone(), zeros({}, kInt64)};
  dim = wrap_dim(dim, x.dim(), "sort");
  return first_k_sorted(x, x.size(dim), dim, descending);
}

ValuesIndices topk(const Array& x, int64_t k, int64_t dim, bool largest) {
  if (x.dim() == 0) {
    KILN_CHECK_SHAPE(k == 1, "topk: k {} out of range for a 0-dim input (k must be 1)", k);
    ValuesIndices r = topk(x.reshape({1}), k, 0, largest);
    return {r.values.reshape({}), r.indices.reshape({})};
  }
  dim = wrap_dim(dim, x.dim(), "topk");
  const int64_t n = x.size(dim);
  KILN_CHECK_SHAPE(k >= 0 && k <= n,
                   "topk: k {} out of range for dim {} of size {} in {} (k must be in [0, {}])", k,
                   dim, n, x.shape(), n);
  return first_k_sorted(x, k, dim, largest);
}

// ---------------------------------------------------------------- padding

namespace {
// Shapes and overlap of pad: for each dim, where x's kept part starts in x and in the output, and
// its length.
struct PadPlan {
  Shape out_shape;
  std::vector<int64_t> src_start, dst_start, length;
};
PadPlan plan_pad(const Shape& xs, const std::vector<int64_t>& pads) {
  const int64_t nd = static_cast<int64_t>(xs.size());
  KILN_CHECK_SHAPE(pads.size() % 2 == 0,
                   "pad: pads {} has {} entries (it must hold a (left, right) pair per dim)", pads,
                   pads.size());
  const int64_t np = static_cast<int64_t>(pads.size()) / 2;
  KILN_CHECK_SHAPE(np <= nd,
                   "pad: pads {} cover {} dims but the input {} has {} (at most 2 entries per dim)",
                   pads, np, xs, nd);
  PadPlan p{xs, std::vector<int64_t>(nd, 0), std::vector<int64_t>(nd, 0), xs};
  for (int64_t k = 0; k < np; ++k) {
    const int64_t d = nd - 1 - k, l = pads[2 * k], r = pads[2 * k + 1];
    p.out_shape[d] = xs[d] + l + r;
    KILN_CHECK_SHAPE(p.out_shape[d] >= 0,
                     "pad: dim {} of size {} with pads ({}, {}) would have size {} (input {}; "
                     "sizes must stay >= 0)",
                     d, xs[d], l, r, p.out_shape[d], xs);
    p.src_start[d] = std::max<int64_t>(0, -l);
    p.dst_start[d] = std::max<int64_t>(0, l);
    p.length[d] = std::max<int64_t>(0, xs[d] - std::max<int64_t>(0, -l) - std::max<int64_t>(0, -r));
  }
  return p;
}
Array region(const Array& a, const std::vector<int64_t>& start,
             const std::vector<int64_t>& length) {
  Array v = a;
  for (int64_t d = 0; d < a.dim(); ++d) v = v.narrow(d, start[d], length[d]);
  return v;
}
}  // namespace

Array pad(const Array& x, const std::vector<int64_t>& pads, double value) {
  PadPlan p = plan_pad(x.shape(), pads);
  Array out = full(p.out_shape, value, x.dtype());
  if (shape_numel(p.length) > 0)
    region(out, p.dst_start, p.length).copy_(region(x, p.src_start, p.length));
  return out;
}

Array pad_backward(const Array& dy, const Shape& x_shape, const std::vector<int64_t>& pads) {
  PadPlan p = plan_pad(x_shape, pads);
  KILN_CHECK_SHAPE(dy.shape() == p.out_shape,
                   "pad_backward: dy {} does not match the padded shape {}", dy.shape(),
                   p.out_shape);
  if (p.length == x_shape) return region(dy, p.dst_start, p.length).contiguous();
  Array dx = zeros(x_shape, dy.dtype());
  if (shape_numel(p.length) > 0)
    region(dx, p.src_start, p.length).copy_(region(dy, p.dst_start, p.length));
  return dx;
}

std::vector<int64_t> pads_to_onnx(const std::vector<int64_t>& pads, int64_t ndim) {
  std::vector<int64_t> onnx(static_cast<size_t>(2 * ndim), 0);
  for (int64_t k = 0; 2 * k + 1 < static_cast<int64_t>(pads.size()) && k < ndim; ++k) {
    onnx[ndim - 1 - k] = pads[2 * k];
    onnx[2 * ndim - 1 - k] = pads[2 * k + 1];
  }
  return onnx;
}

// ---------------------------------------------------------------- naive reference twins

namespace {
// Calls f(index) for every multi-index of `shape` in row-major order.
template <typename F>
void for_each_index(const Shape& shape, F&& f) {
  if (shape_numel(shape) == 0) return;
  std::vector<int64_t> i(shape.size(), 0);
  while (true) {
    f(i);
    int64_t d = static_cast<int64_t>(shape.size()) - 1;
    for (; d >= 0; --d) {
      if (++i[d] < shape[d]) break;
      i[d] = 0;
    }
    if (d < 0) return;
  }
}
char* elem(const Array& a, const std::vector<int64_t>& i) {
  int64_t off = 0;
  for (size_t d = 0; d < i.size(); ++d) off += i[d] * a.strides()[d];
  return static_cast<char*>(a.raw_data()) + off * static_cast<int64_t>(a.itemsize());
}
void copy_elem(const Array& dst, const std::vector<int64_t>& di, const Array& src,
               const std::vector<int64_t>& si) {
  std::memcpy(elem(dst, di), elem(src, si), dst.itemsize());
}
int64_t index_at(const Array& idx, const std::vector<int64_t>& i) {
  return *reinterpret_cast<int64_t*>(elem(idx, i));
}
}  // namespace

Array cat_reference(const std::vector<Array>& xs, int64_t dim) {
  std::vector<Array> parts;
  for (const Array& x : xs)
    if (!(x.dim() == 1 && x.numel() == 0)) parts.push_back(x);
  if (parts.empty()) parts.push_back(xs[0]);
  dim = wrap_dim(dim, parts[0].dim(), "cat");
  DType dt = parts[0].dtype();
  Shape os = parts[0].shape();
  os[dim] = 0;
  for (const Array& x : parts) {
    dt = promote_types(dt, x.dtype());
    os[dim] += x.size(dim);
  }
  for (Array& x : parts) x = x.to(dt);
  Array out(os, dt);
  for_each_index(os, [&](const std::vector<int64_t>& i) {
    std::vector<int64_t> si = i;
    size_t k = 0;
    while (si[dim] >= parts[k].size(dim)) si[dim] -= parts[k++].size(dim);
    copy_elem(out, i, parts[k], si);
  });
  return out;
}

Array index_select_reference(const Array& x, int64_t dim, const Array& index) {
  dim = wrap_dim(dim, x.dim(), "index_select");
  Array idx = index.to(kInt64).reshape({-1});
  Shape os = x.shape();
  os[dim] = idx.numel();
  Array out(os, x.dtype());
  for_each_index(os, [&](const std::vector<int64_t>& i) {
    std::vector<int64_t> si = i;
    si[dim] = index_at(idx, {i[dim]});
    copy_elem(out, i, x, si);
  });
  return out;
}

Array gather_reference(const Array& x, int64_t dim, const Array& index) {
  dim = wrap_dim(dim, x.dim(), "gather");
  Array idx = index.to(kInt64);
  Array out(index.shape(), x.dtype());
  for_each_index(index.shape(), [&](const std::vector<int64_t>& i) {
    std::vector<int64_t> si = i;
    si[dim] = index_at(idx, i);
    copy_elem(out, i, x, si);
  });
  return out;
}

Array scatter_add_reference(const Array& x, int64_t dim, const Array& index, const Array& src) {
  dim = wrap_dim(dim, x.dim(), "scatter_add");
  Array idx = index.to(kInt64);
  Array out = x.clone();
  KILN_DISPATCH_NUMERIC(x.dtype(), "scatter_add_reference", [&] {
    for_each_index(index.shape(), [&](const std::vector<int64_t>& i) {
      std::vector<int64_t> di = i;
      di[dim] = index_at(idx, i);
      *reinterpret_cast<scalar_t*>(elem(out, di)) +=
          *reinterpret_cast<const scalar_t*>(elem(src, i));
    });
  });
  return out;
}

Array embedding_backward_reference(const Array& dy, const Array& ids, int64_t num_rows,
                                   int64_t padding_idx) {
  Array idx = ids.to(kInt64).reshape({-1});
  const int64_t C = dy.size(-1);
  Array g = dy.reshape({idx.numel(), C});
  Array out = zeros({num_rows, C}, dy.dtype());
  KILN_DISPATCH_FLOATING(dy.dtype(), "embedding_backward_reference", [&] {
    for (int64_t i = 0; i < idx.numel(); ++i) {
      const int64_t v = index_at(idx, {i});
      if (v == padding_idx) continue;
      for (int64_t c = 0; c < C; ++c)
        *reinterpret_cast<scalar_t*>(elem(out, {v, c})) +=
            *reinterpret_cast<const scalar_t*>(elem(g, {i, c}));
    }
  });
  return out;
}

namespace {
// Runs row_fn(values_in, indices_out_order) for every 1-D line of x along dim and writes k results.
template <typename RowFn>
ValuesIndices per_line_reference(const Array& x, int64_t dim, int64_t k, RowFn row_fn) {
  Shape os = x.shape();
  os[dim] = k;
  ValuesIndices r{Array(os, x.dtype()), Array(os, kInt64)};
  Shape lines = x.shape();
  lines[dim] = 1;
  KILN_DISPATCH_ALL(x.dtype(), "reference", [&] {
    for_each_index(lines, [&](const std::vector<int64_t>& li) {
      std::vector<scalar_t> row;
      std::vector<int64_t> i = li;
      for (i[dim] = 0; i[dim] < x.size(dim); ++i[dim])
        row.push_back(*reinterpret_cast<scalar_t*>(elem(x, i)));
      std::vector<int64_t> order = row_fn(row);
      for (i[dim] = 0; i[dim] < k; ++i[dim]) {
        *reinterpret_cast<scalar_t*>(elem(r.values, i)) = row[order[i[dim]]];
        *reinterpret_cast<int64_t*>(elem(r.indices, i)) = order[i[dim]];
      }
    });
  });
  return r;
}
}  // namespace

ValuesIndices sort_reference(const Array& x, int64_t dim, bool descending) {
  if (x.dim() == 0) return {x.clone(), zeros({}, kInt64)};
  dim = wrap_dim(dim, x.dim(), "sort");
  return per_line_reference(x, dim, x.size(dim), [&](const auto& row) {
    std::vector<int64_t> order;
    for (int64_t j = 0; j < static_cast<int64_t>(row.size()); ++j) {
      // Insert after every element that does not sort strictly after row[j]: stable.
      auto pos = order.end();
      while (pos != order.begin() && sorts_before(row[j], row[*(pos - 1)], descending)) --pos;
      order.insert(pos, j);
    }
    return order;
  });
}

ValuesIndices topk_reference(const Array& x, int64_t k, int64_t dim, bool largest) {
  dim = wrap_dim(dim, x.dim(), "topk");
  return per_line_reference(x, dim, k, [&](const auto& row) {
    std::vector<int64_t> order;
    std::vector<bool> taken(row.size(), false);
    for (int64_t t = 0; t < k; ++t) {
      int64_t best = -1;
      for (int64_t j = 0; j < static_cast<int64_t>(row.size()); ++j)
        if (!taken[j] && (best < 0 || sorts_before(row[j], row[best], largest))) best = j;
      taken[best] = true;
      order.push_back(best);
    }
    return order;
  });
}

Array pad_reference(const Array& x, const std::vector<int64_t>& pads, double value) {
  const int64_t nd = x.dim();
  std::vector<int64_t> left(nd, 0);
  Shape os = x.shape();
  for (size_t k = 0; k < pads.size() / 2; ++k) {
    const int64_t d = nd - 1 - static_cast<int64_t>(k);
    left[d] = pads[2 * k];
    os[d] += pads[2 * k] + pads[2 * k + 1];
  }
  Array out = full(os, value, x.dtype());
  for_each_index(os, [&](const std::vector<int64_t>& i) {
    std::vector<int64_t> si = i;
    for (int64_t d = 0; d < nd; ++d) {
      si[d] -= left[d];
      if (si[d] < 0 || si[d] >= x.size(d)) return;
    }
    copy_elem(out, i, x, si);
  });
  return out;
}

}  // namespace kiln::kernels
