#pragma once
// Every differentiable op, as free functions on kiln::Tensor (the LibTorch-style API). Each is one
// entry in autograd/ops/<family>.cpp: shape check, kernels:: kernel, backward beside it. Legend for
// shapes: B = batch, C = channels, L = length, H/W = height/width, N = any leading dims, * = any
// dims.
#include <initializer_list>
#include <optional>
#include <vector>

#include "kiln/autograd/tensor.h"
#include "kiln/tensor/random.h"

namespace kiln {

using Dims = std::vector<int64_t>;

// ---------------------------------------------------------------- creation (leaves; no graph)
Tensor zeros(const Shape& shape, DType dtype = kFloat32);
Tensor ones(const Shape& shape, DType dtype = kFloat32);
Tensor full(const Shape& shape, double value, DType dtype = kFloat32);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor arange(double start, double end, double step = 1.0, DType dtype = kInt64);
Tensor linspace(double start, double end, int64_t steps, DType dtype = kFloat32);
Tensor eye(int64_t n, int64_t m = -1, DType dtype = kFloat32);
Tensor rand(const Shape& shape, DType dtype = kFloat32, Generator* gen = nullptr);
Tensor randn(const Shape& shape, DType dtype = kFloat32, Generator* gen = nullptr);
Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype = kInt64,
               Generator* gen = nullptr);
Tensor bernoulli(const Shape& shape, double p, DType dtype = kFloat32, Generator* gen = nullptr);
Tensor randperm(int64_t n, Generator* gen = nullptr);
/// A tensor from values: tensor({1.f, 2.f, 3.f}), tensor({1, 2, 3, 4}, {2, 2}) (int literals →
/// int64).
Tensor tensor(std::initializer_list<float> values, Shape shape = {});
Tensor tensor(std::initializer_list<double> values, Shape shape = {});
Tensor tensor(std::initializer_list<int> values, Shape shape = {});
template <typename T>
Tensor from_vector(const std::vector<T>& values, Shape shape = {});
/// A 0-d tensor.
Tensor scalar_tensor(double v, DType dtype = kFloat32);

// ---------------------------------------------------------------- elementwise
// (ops/elementwise.cpp)
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor pow(const Tensor& a, double exponent);
Tensor sub(const Tensor& a, double s);
Tensor div(const Tensor& a, double s);
/// s - a, s / a (scalar on the left).
Tensor rsub(const Tensor& a, double s);
Tensor rdiv(const Tensor& a, double s);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor square(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor erf(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
/// GELU; approximate = "none" (erf form, exact) or "tanh".
Tensor gelu(const Tensor& x, const std::string& approximate = "none");
Tensor silu(const Tensor& x);
Tensor clamp(const Tensor& x, double lo, double hi);
/// cond ? a : b (cond bool, all broadcast).
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
// Comparisons and logic: bool results, not differentiable.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double s);
Tensor gt(const Tensor& a, double s);
Tensor lt(const Tensor& a, double s);
Tensor logical_not(const Tensor& a);
Tensor logical_and(const Tensor& a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(double s, const Tensor& a);

// ---------------------------------------------------------------- reductions (ops/reduce.cpp)
Tensor sum(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
/// Variance; correction 1 = unbiased (torch default).
Tensor var(const Tensor& x, const Dims& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor std(const Tensor& x, const Dims& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const Dims& dims, bool keepdim = false);
Tensor norm(const Tensor& x, double p = 2.0, const Dims& dims = {}, bool keepdim = false);
Tensor amax(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
/// Values and int64 indices along dim (gradient flows to the selected elements).
struct TensorPair {
  Tensor values;
  Tensor indices;
};
TensorPair max(const Tensor& x, int64_t dim, bool keepdim = false);
TensorPair min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);

// ---------------------------------------------------------------- shape and views (ops/shape.cpp)
Tensor reshape(const Tensor& x, Shape shape);
Tensor view(const Tensor& x, Shape shape);
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
Tensor permute(const Tensor& x, std::vector<int64_t> dims);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& x, int64_t dim, int64_t index);
Tensor expand(const Tensor& x, Shape shape);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor contiguous(const Tensor& x);
Tensor clone(const Tensor& x);
/// dtype conversion; differentiable between float dtypes.
Tensor to_dtype(const Tensor& x, DType dtype);

// ---------------------------------------------------------------- linear algebra (ops/linalg.cpp)
/// torch.matmul: (*, M, K) x (*, K, N) -> (*, M, N), batch dims broadcast; 1-D operands as in
/// torch.
Tensor matmul(const Tensor& a, const Tensor& b);
/// Fused y = x·Wᵀ + b.   x: (*, in)  W: (out, in)  b: (out) or undefined  ->  y: (*, out)
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

// ---------------------------------------------------------------- indexing, joining
// (ops/index.cpp)
Tensor cat(const std::vector<Tensor>& xs, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim = 0);
/// Pieces of `split_size` along dim (the last may be smaller).
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);
/// x.index_select(dim, index): index is int64 1-D.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
/// out[i][j] = x[i][index[i][j]] (dim=1), as torch.gather.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
/// out = x; out[index[i][j]][j] += src[i][j] (dim=0), as torch.scatter_add.
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
/// Rows of weight (V, C) picked by int64 ids (*) -> (*, C). padding_idx rows get no gradient.
Tensor embedding(const Tensor& weight, const Tensor& ids, int64_t padding_idx = -1);
/// (*) int64 -> (*, num_classes) int64; not differentiable.
Tensor one_hot(const Tensor& ids, int64_t num_classes);
/// Sorted values and indices along dim (stable).
TensorPair sort(const Tensor& x, int64_t dim = -1, bool descending = false);
/// The k largest (or smallest) along dim, sorted.
TensorPair topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true);
/// Constant padding of the last dims: pads = {last_left, last_right, prev_left, prev_right, ...}.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value = 0.0);

// ---------------------------------------------------------------- neural-network ops (ops/nn.cpp)
/// Fused, max-subtracted softmax along dim.
Tensor softmax(const Tensor& x, int64_t dim = -1);
Tensor log_softmax(const Tensor& x, int64_t dim = -1);
/// Fused layer norm over the last normalized_shape.size() dims.   x: (*, D)  weight, bias: (D)
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);
/// Fused softmax + cross-entropy. logits: (B, K) or (B, K, d1...); target: int64 (B) / (B, d1...)
/// class ids. weight: (K) class weights or undefined; reduction "mean" | "sum" | "none".
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight = {},
                     int64_t ignore_index = -100, double label_smoothing = 0.0,
                     const std::string& reduction = "mean");
/// Negative log-likelihood over log-probabilities (B, K) with int64 targets (B).
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const Tensor& weight = {},
                int64_t ignore_index = -100, const std::string& reduction = "mean");
/// Inverted dropout: zeroes with probability p and scales by 1/(1-p) when training.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);
/// Post-LN residual output: layer_norm(x + dropout(h, p, training), normalized_shape, weight, bias,
/// eps). Training with p > 0: one fused pass forward and one backward (op
/// "dropout_add_layer_norm", the same mask as dropout() would draw from gen); otherwise it records
/// add + layer_norm, which is what ONNX export traces — except at inference (no input needs a
/// gradient, no trace): then one pass per row, nothing kept, the same values as add + layer_norm.
///   x, h: (*, D)  weight, bias: (D)
Tensor dropout_add_layer_norm(const Tensor& x, const Tensor& h, double p, bool training,
                              Generator* gen, const Shape& normalized_shape,
                              const Tensor& weight = {}, const Tensor& bias = {},
                              double eps = 1e-5);
/// Batch norm over dim 1 of (B, C, *). In training, uses batch statistics and updates running_mean
/// / running_var in place (momentum as in PyTorch); in eval, uses the running statistics.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum = 0.1,
                  double eps = 1e-5);
/// softmax(q·kᵀ/√d + mask)·v.   q: (B, H, Tq, d)  k, v: (B, H, Tk, d)  mask: additive,
/// broadcastable to (B, H, Tq, Tk), or undefined. Fused forward/backward.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& mask = {}, double dropout_p = 0.0,
                                    bool training = false, Generator* gen = nullptr);

// ---------------------------------------------------------------- convolution, pooling
// (ops/conv.cpp)
/// x: (B, C_in, L)  w: (C_out, C_in/groups, k)  b: (C_out)  ->  (B, C_out, L_out)
Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& b = {}, int64_t stride = 1,
              int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);
/// x: (B, C_in, H, W)  w: (C_out, C_in/groups, kh, kw)  b: (C_out)  ->  (B, C_out, H_out, W_out)
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b = {},
              std::vector<int64_t> stride = {1, 1}, std::vector<int64_t> padding = {0, 0},
              std::vector<int64_t> dilation = {1, 1}, int64_t groups = 1);
Tensor max_pool1d(const Tensor& x, int64_t kernel, int64_t stride = -1, int64_t padding = 0);
Tensor max_pool2d(const Tensor& x, std::vector<int64_t> kernel, std::vector<int64_t> stride = {},
                  std::vector<int64_t> padding = {0, 0});
Tensor avg_pool2d(const Tensor& x, std::vector<int64_t> kernel, std::vector<int64_t> stride = {},
                  std::vector<int64_t> padding = {0, 0});
/// (B, C, H, W) -> (B, C, out_h, out_w), PyTorch's adaptive bin edges.
Tensor adaptive_avg_pool2d(const Tensor& x, std::vector<int64_t> output_size);

}  // namespace kiln
