#pragma once
// kiln::Tensor — the one tensor type users hold (LibTorch-like): values (an Array) plus autograd
// state. Copying a Tensor copies a handle; both refer to the same values and gradient.
//
//   kiln::Tensor w = kiln::randn({784, 10}).requires_grad_();
//   kiln::Tensor loss = kiln::mean(kiln::matmul(x, w));
//   loss.backward();            // w.grad() now holds d loss / d w, shape (784, 10)
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kiln/autograd/node.h"
#include "kiln/tensor/array.h"

namespace kiln {

struct TensorImpl {
  Array data;
  Array grad;  // accumulated gradient (leaves, or retain_grad)
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;           // the op that produced this tensor (null for leaves)
  uint32_t output_nr = 0;                  // which output of grad_fn
  std::shared_ptr<Node> grad_accumulator;  // for leaves that require grad (created lazily)
  std::string name;                        // optional, e.g. a parameter's hierarchical name
};

class Tensor {
 public:
  /// An undefined tensor.
  Tensor() = default;
  /// Wraps values; a leaf. `requires_grad` needs a floating dtype.
  explicit Tensor(Array data, bool requires_grad = false);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl_->data.shape(); }
  int64_t dim() const { return impl_->data.dim(); }
  int64_t size(int64_t d) const { return impl_->data.size(d); }
  int64_t numel() const { return impl_->data.numel(); }
  DType dtype() const { return impl_->data.dtype(); }
  bool is_contiguous() const { return impl_->data.is_contiguous(); }
  /// The raw values (no autograd). Writing through it is an in-place edit autograd does not see.
  const Array& data() const { return impl_->data; }
  template <typename T>
  T* data_ptr() const {
    return impl_->data.data<T>();
  }
  template <typename T>
  T item() const {
    return impl_->data.item<T>();
  }
  /// The values as a flat std::vector<T> (converted).
  template <typename T>
  std::vector<T> to_vector() const;

  // ---- autograd ----
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  /// Marks a leaf as needing gradients (returns *this for chaining).
  Tensor& requires_grad_(bool on = true);
  bool is_leaf() const { return !impl_->grad_fn; }
  const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }
  uint32_t output_nr() const { return impl_->output_nr; }
  /// Accumulated gradient (undefined until a backward reaches this tensor).
  Tensor grad() const;
  /// Replaces the stored gradient (an undefined Tensor clears it).
  void set_grad(const Tensor& g);
  /// Clears the gradient (PyTorch's set_to_none default).
  void zero_grad();
  /// Computes gradients of this tensor w.r.t. every leaf that requires grad. A non-scalar tensor
  /// needs `gradient` (same shape). Without retain_graph the graph is freed afterwards.
  void backward(const Tensor& gradient = {}, bool retain_graph = false) const;
  /// Keeps this non-leaf tensor's gradient in grad() after backward.
  void retain_grad();
  /// Calls `hook(grad)` when this tensor's gradient is computed; a defined return replaces it.
  void register_hook(std::function<Tensor(const Tensor&)> hook);
  /// Leaves only: calls `hook(*this)` each time a backward has finished adding into grad() (as
  /// PyTorch's register_post_accumulate_grad_hook). Returns an id for removal.
  uint64_t register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook);
  /// Removes a hook registered above (unknown ids are ignored).
  void remove_post_accumulate_grad_hook(uint64_t id);
  /// Same values, cut from the graph.
  Tensor detach() const;
  /// The name given by set_name (parameters carry their hierarchical name).
  const std::string& name() const { return impl_->name; }
  void set_name(std::string n) { impl_->name = std::move(n); }

  // ---- in-place (no graph; bump the version counter so saved copies detect it) ----
  Tensor& fill_(double v);
  Tensor& zero_() { return fill_(0.0); }
  /// Copies values from src (broadcast, converted).
  Tensor& copy_(const Tensor& src);

  // ---- differentiable methods (the same as the free functions in functions.h) ----
  Tensor reshape(Shape shape) const;
  Tensor view(Shape shape) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor permute(std::vector<int64_t> dims) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor expand(Shape shape) const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor t() const { return transpose(-1, -2); }
  Tensor sum(std::vector<int64_t> dims = {}, bool keepdim = false) const;
  Tensor mean(std::vector<int64_t> dims = {}, bool keepdim = false) const;
  Tensor matmul(const Tensor& other) const;
  Tensor pow(double exponent) const;
  Tensor exp() const;
  Tensor log() const;
  Tensor relu() const;
  Tensor sigmoid() const;
  Tensor tanh() const;
  Tensor argmax(int64_t dim, bool keepdim = false) const;

  /// Identity of the underlying state (for graph walkers).
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<TensorImpl> impl_;
};

/// "tensor([[1.0000, 2.0000], ...], shape=[2, 2], dtype=float32, requires_grad=true)".
std::string to_string(const Tensor& t);

}  // namespace kiln
