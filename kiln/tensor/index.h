#pragma once
// Indexing and joining on Arrays (no autograd): cat/stack/split/chunk,
// index_select/gather/scatter_add, embedding lookup and its backward, one_hot, sort/topk and
// constant padding. PyTorch semantics throughout; every index is bounds-checked before any element
// moves, and errors name the op, the offending value and the valid range. Big loops run on
// parallel_for and give identical results at any thread count: every output element is produced by
// one task, accumulations run in index order.
//
// Legend: N = number of ids or indices, V = vocabulary rows, C = embedding channels, n = size of
// `dim`,
// * = any dims. Index arrays are int64 (int32 is accepted and widened).
#include <cstdint>
#include <vector>

#include "kiln/tensor/array.h"
#include "kiln/tensor/reduce.h"

namespace kiln::kernels {

// ---------------------------------------------------------------- joining and splitting
/// torch.cat: joins along `dim`; all shapes must match except at `dim`. 1-D empty arrays of shape
/// [0] are skipped (PyTorch's legacy rule). The result dtype is the promotion of all inputs.
///   xs[i]: (*, n_i, *)  ->  (*, Σ n_i, *)
Array cat(const std::vector<Array>& xs, int64_t dim = 0);
/// torch.stack: all shapes equal; a new dim of size xs.size() is inserted at `dim` (in [-D-1, D]).
///   xs[i]: (*)  ->  (*, len(xs), *) with the new dim at `dim`
Array stack(const std::vector<Array>& xs, int64_t dim = 0);
/// torch.split: views of `split_size` along dim, the last one smaller if n is not divisible.
/// split_size 0 is only allowed when n == 0 (one empty piece); a split_size beyond n gives one
/// piece.
std::vector<Array> split(const Array& x, int64_t split_size, int64_t dim = 0);
/// torch.split_with_sizes: views with the given sizes along dim (they must sum to n).
std::vector<Array> split_with_sizes(const Array& x, const std::vector<int64_t>& sizes,
                                    int64_t dim = 0);
/// torch.chunk: pieces of ceil(n / chunks); may return fewer than `chunks` pieces (n = 6, chunks =
/// 4 gives sizes [2, 2, 2]); n == 0 gives `chunks` empty pieces.
std::vector<Array> chunk(const Array& x, int64_t chunks, int64_t dim = 0);
/// The piece sizes chunk(x, chunks, dim) would produce for a dim of size n.
std::vector<int64_t> chunk_sizes(int64_t n, int64_t chunks);

// ---------------------------------------------------------------- gathering and scattering
/// torch.index_select: out[..., j, ...] = x[..., index[j], ...] along dim. index: (N) or 0-d.
///   x: (*, n, *)  index: (N)  ->  (*, N, *)
Array index_select(const Array& x, int64_t dim, const Array& index);
/// The backward of index_select: zeros of `shape` with src rows added at index along dim, in index
/// order (repeated indices accumulate).   src: (*, N, *)  index: (N)  ->  shape = (*, n, *)
Array index_add_zeros(const Shape& shape, int64_t dim, const Array& index, const Array& src);
/// torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] for dim = 1. index has x's rank and
/// index.size(d) <= x.size(d) for d != dim; out has index's shape.
Array gather(const Array& x, int64_t dim, const Array& index);
/// torch.scatter_add: out = x; out[index[i][j]][j] += src[i][j] for dim = 0. All three have the
/// same rank; index.size(d) <= src.size(d) for all d and <= x.size(d) for d != dim. Only the
/// index-shaped corner of src is read.
Array scatter_add(const Array& x, int64_t dim, const Array& index, const Array& src);
/// scatter_add in place into `out` (bumps its version). Same rules as scatter_add.
void scatter_add_(Array& out, int64_t dim, const Array& index, const Array& src);

// ---------------------------------------------------------------- embeddings and one-hot
/// Rows of weight picked by ids.   weight: (V, C)  ids: (*)  ->  (*, C)
Array embedding(const Array& weight, const Array& ids);
/// Gradient of embedding: dW[v] = Σ_{ids[i] == v} dy[i], rows for padding_idx (if >= 0) stay zero.
/// Vocabulary rows are split across threads (each task zeroes and fills its own rows, adding in id
/// order), so the result is the same at any thread count.   dy: (*, C)  ids: (*)  ->  (V, C)
Array embedding_backward(const Array& dy, const Array& ids, int64_t num_rows,
                         int64_t padding_idx = -1);
/// torch.nn.functional.one_hot: (*) int ids -> (*, num_classes) int64. num_classes = -1 infers max
/// + 1.
Array one_hot(const Array& ids, int64_t num_classes = -1);

// ---------------------------------------------------------------- sorting
/// Stable sort along dim: values and int64 indices into x. NaN sorts as larger than every number
/// (last ascending, first descending), as PyTorch.   x: (*)  ->  values, indices: (*)
ValuesIndices sort(const Array& x, int64_t dim = -1, bool descending = false);
/// The k largest (or smallest) along dim, sorted best first; equal values keep the lower index
/// first. NaN counts as the largest value.   x: (*, n, *)  ->  values, indices: (*, k, *)
ValuesIndices topk(const Array& x, int64_t k, int64_t dim = -1, bool largest = true);

// ---------------------------------------------------------------- padding
/// Constant padding in torch.nn.functional.pad order: pads = {last_left, last_right, prev_left,
/// prev_right, ...} (at most 2 per dim). Negative pads crop.   x: (*, n)  ->  (*, n + left + right)
Array pad(const Array& x, const std::vector<int64_t>& pads, double value = 0.0);
/// The gradient of pad: the part of dy that came from x (zeros where negative pads cropped x away).
Array pad_backward(const Array& dy, const Shape& x_shape, const std::vector<int64_t>& pads);
/// F.pad's pads converted to ONNX Pad order for an array of `ndim` dims:
/// {x1_begin, x2_begin, ..., x1_end, x2_end, ...} over every dim, zeros for unpadded dims.
std::vector<int64_t> pads_to_onnx(const std::vector<int64_t>& pads, int64_t ndim);

// ---------------------------------------------------------------- naive reference twins
// Element-by-element loops over full multi-indices, written for clarity: tests compare the kernels
// above against these.
Array cat_reference(const std::vector<Array>& xs, int64_t dim);
Array index_select_reference(const Array& x, int64_t dim, const Array& index);
Array gather_reference(const Array& x, int64_t dim, const Array& index);
Array scatter_add_reference(const Array& x, int64_t dim, const Array& index, const Array& src);
Array embedding_backward_reference(const Array& dy, const Array& ids, int64_t num_rows,
                                   int64_t padding_idx);
/// Insertion sort (stable) per row.
ValuesIndices sort_reference(const Array& x, int64_t dim, bool descending);
/// Repeated selection of the best remaining element (lowest index on ties).
ValuesIndices topk_reference(const Array& x, int64_t k, int64_t dim, bool largest);
Array pad_reference(const Array& x, const std::vector<int64_t>& pads, double value);

}  // namespace kiln::kernels
