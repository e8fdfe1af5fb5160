// Indexing and joining ops. Gathers scatter their gradient back; joins split it; splits join it.
// Legend: n = size of the op's dim, N = number of indices, V = vocabulary rows, C = embedding
// channels, k = topk count, * = any dims.
#include "kiln/tensor/index.h"
#include "kiln/autograd/functions.h"
#include "kiln/autograd/op.h"
#include "kiln/autograd/op_registry.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"

namespace kiln {
namespace {
// Every op name this file records (kiln/autograd/op_registry.h): a test fails when an op is
// recorded undeclared, and the gradcheck table needs a case for each differentiable one.
const OpDeclarations kOps({"cat", "embedding", "gather", "index_select", "pad", "scatter_add",
                           "sort", "split", "stack", "topk"},
                          {"one_hot"});
}  // namespace
namespace {

std::vector<Array> arrays_of(const std::vector<Tensor>& xs, const char* op) {
  std::vector<Array> out;
  for (size_t i = 0; i < xs.size(); ++i) {
    KILN_CHECK(xs[i].defined(), "{}: input {} is an undefined tensor", op, i);
    out.push_back(xs[i].data());
  }
  return out;
}

// A gradient in its input's dtype (cat and stack promote mixed inputs).
Array in_dtype(const Array& g, DType t) {
  return g.dtype() == t || !is_floating(t) ? g : g.to(t);
}

// Sizes along dim of split pieces.
std::vector<int64_t> sizes_of(const std::vector<Array>& pieces, int64_t dim) {
  std::vector<int64_t> s;
  for (const Array& p : pieces) s.push_back(p.size(dim));
  return s;
}

// split with explicit sizes: views of x.   x: (*, n, *)  ->  pieces (*, sizes[i], *), Σ sizes = n.
// dx = cat of the piece gradients (zero-filled by the engine for pieces that got none).
std::vector<Tensor> split_op(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  std::vector<Array> pieces = kernels::split_with_sizes(x.data(), sizes, dim);
  dim = wrap_dim(dim, x.dim(), "split");
  DType dt = x.dtype();
  return make_multi_op("split", {x}, pieces,
                       [dim, dt](const std::vector<Array>& g, const Needs&) -> Grads {
                         return {in_dtype(kernels::cat(g, dim), dt)};
                       },
                       {{"axis", dim}, {"split", sizes}});
}

// Gradient of sort/topk: dy scattered back to the positions the values came from.
Array scatter_back(const Array& dy, const Array& indices, const Shape& x_shape, int64_t dim) {
  if (x_shape.empty()) return dy.reshape({});
  Array dx = kernels::zeros(x_shape, dy.dtype());
  kernels::scatter_add_(dx, dim, indices, dy);
  return dx;
}

}  // namespace

// cat: xs[i] (*, n_i, *) -> (*, Σ n_i, *).   dxs[i] = dy narrowed to input i's span along dim.
Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  std::vector<Array> arrays = arrays_of(xs, "cat");
  Array out = kernels::cat(arrays, dim);
  dim = wrap_dim(dim, out.dim(), "cat");
  std::vector<int64_t> starts, sizes;
  std::vector<DType> dtypes;
  int64_t off = 0;
  for (const Array& a : arrays) {
    // 1-D empty inputs were skipped by the kernel (PyTorch's legacy rule): their span is empty.
    bool skipped = a.dim() == 1 && a.numel() == 0;
    starts.push_back(off);
    sizes.push_back(skipped ? -1 : a.size(dim));
    dtypes.push_back(a.dtype());
    if (!skipped) off += a.size(dim);
  }
  return make_op("cat", xs, out,
                 [dim, starts, sizes, dtypes](const Array& dy, const Needs& needs) -> Grads {
                   Grads g(needs.size());
                   for (size_t i = 0; i < needs.size(); ++i) {
                     if (!needs[i]) continue;
                     g[i] = sizes[i] < 0 ? kernels::zeros({0}, dtypes[i])
                                         : in_dtype(dy.narrow(dim, starts[i], sizes[i]), dtypes[i]);
                   }
                   return g;
                 },
                 {{"axis", dim}});
}

// stack: xs[i] (*) -> (*, len(xs), *) with the new dim at `dim`.   dxs[i] = dy.select(dim, i).
Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  std::vector<Array> arrays = arrays_of(xs, "stack");
  Array out = kernels::stack(arrays, dim);
  dim = wrap_dim(dim, out.dim(), "stack");
  std::vector<DType> dtypes;
  for (const Array& a : arrays) dtypes.push_back(a.dtype());
  return make_op("stack", xs, out,
                 [dim, dtypes](const Array& dy, const Needs& needs) -> Grads {
                   Grads g(needs.size());
                   for (size_t i = 0; i < needs.size(); ++i)
                     if (needs[i])
                       g[i] = in_dtype(dy.select(dim, static_cast<int64_t>(i)), dtypes[i]);
                   return g;
                 },
                 {{"axis", dim}});
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  std::vector<Array> pieces = kernels::split(x.data(), split_size, dim);
  return split_op(x, sizes_of(pieces, wrap_dim(dim, x.dim(), "split")), dim);
}

// chunk: torch.chunk's piece sizes (ceil(n / chunks) each, possibly fewer pieces), recorded as
// "split".
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  std::vector<Array> pieces = kernels::chunk(x.data(), chunks, dim);
  return split_op(x, sizes_of(pieces, wrap_dim(dim, x.dim(), "chunk")), dim);
}

// index_select: x (*, n, *), index (N) -> (*, N, *).   dx = zeros with dy rows added at index
// (repeats sum).
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  Array out = kernels::index_select(x.data(), dim, index.data());
  dim = wrap_dim(dim, x.dim(), "index_select");
  Shape s = x.shape();
  return make_op("index_select", {x, index}, out,
                 [I = save(index, "index_select"), s, dim](const Array& dy) -> Grads {
                   return {kernels::index_add_zeros(s, dim, I.get(), dy), Array{}};
                 },
                 {{"axis", dim}});
}

// gather: out[i][j] = x[i][index[i][j]] (dim = 1); out has index's shape.   dx = scatter_add(0,
// dim, index, dy).
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  Array out = kernels::gather(x.data(), dim, index.data());
  dim = wrap_dim(dim, x.dim(), "gather");
  Shape s = x.shape();
  return make_op("gather", {x, index}, out,
                 [I = save(index, "gather"), s, dim](const Array& dy) -> Grads {
                   return {scatter_back(dy, I.get(), s, dim), Array{}};
                 },
                 {{"axis", dim}});
}

// scatter_add: out = x; out[index[i][j]][j] += src[i][j] (dim = 0).
// dx = dy;  dsrc = gather(dy, dim, index) in src's index-shaped corner, zero elsewhere.
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  Array out = kernels::scatter_add(x.data(), dim, index.data(), src.data());
  dim = wrap_dim(dim, x.dim(), "scatter_add");
  Shape src_shape = src.shape();
  return make_op("scatter_add", {x, index, src}, out,
                 [I = save(index, "scatter_add"), src_shape, dim](const Array& dy,
                                                                  const Needs& needs) -> Grads {
                   Array dsrc;
                   if (needs[2]) {
                     Array g = kernels::gather(dy, dim, I.get());
                     if (g.shape() == src_shape) {
                       dsrc = g;
                     } else {
                       dsrc = kernels::zeros(src_shape, dy.dtype());
                       Array corner = dsrc;
                       for (int64_t d = 0; d < g.dim(); ++d)
                         corner = corner.narrow(d, 0, g.size(d));
                       corner.copy_(g);
                     }
                   }
                   return {needs[0] ? dy : Array{}, Array{}, dsrc};
                 },
                 {{"axis", dim}, {"reduction", std::string("add")}});
}

// embedding: weight (V, C), ids (*) -> (*, C).   dW[v] = Σ_{ids[i] == v} dy[i]; row padding_idx
// gets 0.
Tensor embedding(const Tensor& weight, const Tensor& ids, int64_t padding_idx) {
  KILN_CHECK_SHAPE(weight.dim() == 2, "embedding: weight must be 2-D (V, C), got shape {}",
                   weight.shape());
  const int64_t V = weight.size(0);
  KILN_CHECK_SHAPE(
      padding_idx == -1 || (padding_idx >= 0 && padding_idx < V),
      "embedding: padding_idx {} out of range for {} rows (must be in [0, {}), or -1 for none)",
      padding_idx, V, V);
  Array out = kernels::embedding(weight.data(), ids.data());
  return make_op("embedding", {weight, ids}, out,
                 [I = save(ids, "embedding"), V, padding_idx](const Array& dy) -> Grads {
                   return {kernels::embedding_backward(dy, I.get(), V, padding_idx), Array{}};
                 },
                 {{"axis", int64_t{0}}, {"padding_idx", padding_idx}});
}

// one_hot: ids (*) -> (*, num_classes) int64. Not differentiable.
Tensor one_hot(const Tensor& ids, int64_t num_classes) {
  Array out = kernels::one_hot(ids.data(), num_classes);
  return make_nondiff_op("one_hot", {ids}, out,
                         {{"num_classes", out.size(-1)}, {"axis", int64_t{-1}}});
}

// sort: x (*) -> values, indices (*), stable.   dx = dy scattered back through indices.
TensorPair sort(const Tensor& x, int64_t dim, bool descending) {
  kernels::ValuesIndices r = kernels::sort(x.data(), dim, descending);
  dim = wrap_dim(dim, x.dim(), "sort");
  Shape s = x.shape();
  auto outs = make_multi_op(
      "sort", {x}, {r.values, r.indices},
      [I = save(r.indices, "sort"), s, dim](const std::vector<Array>& g, const Needs&) -> Grads {
        return {scatter_back(g[0], I.get(), s, dim)};
      },
      {{"axis", dim}, {"descending", int64_t{descending}}, {"stable", int64_t{1}}});
  return {outs[0], outs[1]};
}

// topk: x (*, n, *) -> values, indices (*, k, *), best first.   dx = dy scattered back through
// indices.
TensorPair topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  kernels::ValuesIndices r = kernels::topk(x.data(), k, dim, largest);
  dim = wrap_dim(dim, x.dim(), "topk");
  Shape s = x.shape();
  auto outs = make_multi_op(
      "topk", {x}, {r.values, r.indices},
      [I = save(r.indices, "topk"), s, dim](const std::vector<Array>& g, const Needs&) -> Grads {
        return {scatter_back(g[0], I.get(), s, dim)};
      },
      {{"axis", dim}, {"k", k}, {"largest", int64_t{largest}}, {"sorted", int64_t{1}}});
  return {outs[0], outs[1]};
}

// pad: x (*, n) -> (*, n + left + right) for each padded dim (F.pad order: last dim first).
// dx = the part of dy that came from x. Attributes carry the pads in ONNX order.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value) {
  Array out = kernels::pad(x.data(), pads, value);
  Shape s = x.shape();
  return make_op(
      "pad", {x}, out,
      [s, pads](const Array& dy) -> Grads { return {kernels::pad_backward(dy, s, pads)}; },
      {{"mode", std::string("constant")},
       {"pads", kernels::pads_to_onnx(pads, x.dim())},
       {"value", value}});
}

}  // namespace kiln
