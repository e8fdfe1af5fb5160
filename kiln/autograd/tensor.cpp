#include "kiln/autograd/tensor.h"

#include <atomic>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/autograd/op.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/io.h"
#include "kiln/tensor/ops.h"

namespace kiln {

void run_backward(const Tensor& root, Array root_grad, bool retain_graph);  // engine.cpp

Tensor::Tensor(Array data, bool requires_grad) : impl_(std::make_shared<TensorImpl>()) {
  impl_->data = std::move(data);
  if (requires_grad) requires_grad_(true);
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Array c = impl_->data.to(dtype_v<T>).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

Tensor& Tensor::requires_grad_(bool on) {
  KILN_CHECK(defined(), "requires_grad_: tensor is undefined");
  KILN_CHECK(!on || is_floating(dtype()),
             "requires_grad_: only floating tensors can require grad, got {}", dtype());
  KILN_CHECK(is_leaf() || on,
             "requires_grad_: cannot turn off requires_grad on a non-leaf tensor (use detach())");
  impl_->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  if (!impl_ || !impl_->grad.defined()) return {};
  return Tensor(impl_->grad);
}

void Tensor::set_grad(const Tensor& g) {
  if (!g.defined()) {
    impl_->grad = Array();
    return;
  }
  KILN_CHECK_SHAPE(g.shape() == shape(), "set_grad: gradient shape {} differs from the tensor's {}",
                   g.shape(), shape());
  impl_->grad = g.data();
}

void Tensor::zero_grad() {
  impl_->grad = Array();
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  KILN_CHECK(defined(), "backward: tensor is undefined");
  KILN_CHECK(requires_grad(),
             "backward: this tensor does not require grad and has no grad_fn (did you call "
             "requires_grad_() on the "
             "inputs, or run under NoGradGuard?)");
  Array g;
  if (gradient.defined()) {
    KILN_CHECK_SHAPE(gradient.shape() == shape(),
                     "backward: gradient shape {} differs from the tensor's {}", gradient.shape(),
                     shape());
    g = gradient.data().to(dtype());
  } else {
    KILN_CHECK_SHAPE(numel() == 1,
                     "backward: grad can be implicitly created only for scalar outputs, but this "
                     "tensor has shape {}; "
                     "pass a gradient of the same shape",
                     shape());
    g = kernels::ones(shape(), dtype());
  }
  run_backward(*this, std::move(g), retain_graph);
}

void Tensor::retain_grad() {
  if (is_leaf()) return;
  std::weak_ptr<TensorImpl> weak = impl_;
  impl_->grad_fn->hooks.emplace_back(impl_->output_nr, [weak](const Array& g) {
    if (auto p = weak.lock()) p->grad = p->grad.defined() ? kernels::add(p->grad, g) : g;
    return Array();
  });
}

void Tensor::register_hook(std::function<Tensor(const Tensor&)> hook) {
  KILN_CHECK(requires_grad(),
             "register_hook: cannot register a hook on a tensor that does not require grad");
  auto fn = [hook = std::move(hook)](const Array& g) {
    Tensor r = hook(Tensor(g));
    return r.defined() ? r.data() : Array();
  };
  if (is_leaf()) {
    detail::gradient_edge(*this);  // creates the accumulator
    impl_->grad_accumulator->hooks.emplace_back(0, std::move(fn));
  } else {
    impl_->grad_fn->hooks.emplace_back(impl_->output_nr, std::move(fn));
  }
}

uint64_t Tensor::register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) {
  KILN_CHECK(defined() && is_leaf() && requires_grad(),
             "register_post_accumulate_grad_hook: needs a leaf tensor that requires grad");
  static std::atomic<uint64_t> next_id{1};
  const uint64_t id = next_id++;
  detail::gradient_edge(*this);  // creates the accumulator
  // A weak handle: the accumulator belongs to this tensor, so a strong one would be a cycle.
  std::weak_ptr<TensorImpl> weak = impl_;
  impl_->grad_accumulator->post_accumulate_hooks.emplace_back(id, [weak, hook = std::move(hook)] {
    if (auto p = weak.lock()) hook(Tensor(p));
  });
  return id;
}

void Tensor::remove_post_accumulate_grad_hook(uint64_t id) {
  if (!impl_ || !impl_->grad_accumulator) return;
  std::erase_if(impl_->grad_accumulator->post_accumulate_hooks,
                [id](const auto& h) { return h.first == id; });
}

Tensor Tensor::detach() const {
  return Tensor(impl_->data);
}

Tensor& Tensor::fill_(double v) {
  impl_->data.fill_(v);
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  KILN_CHECK(!(requires_grad() && is_leaf() && grad_enabled()),
             "copy_: a leaf tensor that requires grad is being modified in place; wrap the update "
             "in NoGradGuard");
  impl_->data.copy_(src.data());
  return *this;
}

Tensor Tensor::reshape(Shape s) const {
  return kiln::reshape(*this, std::move(s));
}
Tensor Tensor::view(Shape s) const {
  return kiln::view(*this, std::move(s));
}
Tensor Tensor::transpose(int64_t a, int64_t b) const {
  return kiln::transpose(*this, a, b);
}
Tensor Tensor::permute(std::vector<int64_t> d) const {
  return kiln::permute(*this, std::move(d));
}
Tensor Tensor::slice(int64_t d, int64_t s, int64_t e, int64_t st) const {
  return kiln::slice(*this, d, s, e, st);
}
Tensor Tensor::narrow(int64_t d, int64_t s, int64_t l) const {
  return kiln::narrow(*this, d, s, l);
}
Tensor Tensor::select(int64_t d, int64_t i) const {
  return kiln::select(*this, d, i);
}
Tensor Tensor::expand(Shape s) const {
  return kiln::expand(*this, std::move(s));
}
Tensor Tensor::squeeze(int64_t d) const {
  return kiln::squeeze(*this, d);
}
Tensor Tensor::unsqueeze(int64_t d) const {
  return kiln::unsqueeze(*this, d);
}
Tensor Tensor::flatten(int64_t s, int64_t e) const {
  return kiln::flatten(*this, s, e);
}
Tensor Tensor::contiguous() const {
  return kiln::contiguous(*this);
}
Tensor Tensor::clone() const {
  return kiln::clone(*this);
}
Tensor Tensor::to(DType t) const {
  return kiln::to_dtype(*this, t);
}
Tensor Tensor::sum(std::vector<int64_t> d, bool k) const {
  return kiln::sum(*this, d, k);
}
Tensor Tensor::mean(std::vector<int64_t> d, bool k) const {
  return kiln::mean(*this, d, k);
}
Tensor Tensor::matmul(const Tensor& o) const {
  return kiln::matmul(*this, o);
}
Tensor Tensor::pow(double e) const {
  return kiln::pow(*this, e);
}
Tensor Tensor::exp() const {
  return kiln::exp(*this);
}
Tensor Tensor::log() const {
  return kiln::log(*this);
}
Tensor Tensor::relu() const {
  return kiln::relu(*this);
}
Tensor Tensor::sigmoid() const {
  return kiln::sigmoid(*this);
}
Tensor Tensor::tanh() const {
  return kiln::tanh(*this);
}
Tensor Tensor::argmax(int64_t d, bool k) const {
  return kiln::argmax(*this, d, k);
}

std::string to_string(const Tensor& t) {
  if (!t.defined()) return "tensor(undefined)";
  std::string s = "tensor(" + format_array(t.data());
  s += fmt::format(", shape={}, dtype={}", t.shape(), t.dtype());
  if (t.requires_grad())
    s += t.grad_fn() ? fmt::format(", grad_fn={}", t.grad_fn()->name) : ", requires_grad=true";
  return s + ")";
}

// ---- creation ----
Tensor zeros(const Shape& s, DType t) {
  return Tensor(kernels::zeros(s, t));
}
Tensor ones(const Shape& s, DType t) {
  return Tensor(kernels::ones(s, t));
}
Tensor full(const Shape& s, double v, DType t) {
  return Tensor(kernels::full(s, v, t));
}
Tensor zeros_like(const Tensor& x) {
  return zeros(x.shape(), x.dtype());
}
Tensor ones_like(const Tensor& x) {
  return ones(x.shape(), x.dtype());
}
Tensor arange(double a, double b, double st, DType t) {
  return Tensor(kernels::arange(a, b, st, t));
}
Tensor linspace(double a, double b, int64_t n, DType t) {
  return Tensor(kernels::linspace(a, b, n, t));
}
Tensor eye(int64_t n, int64_t m, DType t) {
  return Tensor(kernels::eye(n, m, t));
}
Tensor rand(const Shape& s, DType t, Generator* g) {
  return Tensor(kernels::rand(s, 0.0, 1.0, t, g));
}
Tensor randn(const Shape& s, DType t, Generator* g) {
  return Tensor(kernels::randn(s, 0.0, 1.0, t, g));
}
Tensor randint(int64_t lo, int64_t hi, const Shape& s, DType t, Generator* g) {
  return Tensor(kernels::randint(lo, hi, s, t, g));
}
Tensor bernoulli(const Shape& s, double p, DType t, Generator* g) {
  return Tensor(kernels::bernoulli(s, p, t, g));
}
Tensor randperm(int64_t n, Generator* g) {
  return Tensor(kernels::randperm(n, g));
}
Tensor tensor(std::initializer_list<float> v, Shape s) {
  return Tensor(kernels::from_vector(std::vector<float>(v), s));
}
Tensor tensor(std::initializer_list<double> v, Shape s) {
  return Tensor(kernels::from_vector(std::vector<double>(v), s));
}
Tensor tensor(std::initializer_list<int> v, Shape s) {
  return Tensor(kernels::from_vector(std::vector<int64_t>(v.begin(), v.end()), s));
}
template <typename T>
Tensor from_vector(const std::vector<T>& v, Shape s) {
  return Tensor(kernels::from_vector(v, std::move(s)));
}
template Tensor from_vector(const std::vector<float>&, Shape);
template Tensor from_vector(const std::vector<double>&, Shape);
template Tensor from_vector(const std::vector<int64_t>&, Shape);
template Tensor from_vector(const std::vector<int32_t>&, Shape);
template Tensor from_vector(const std::vector<uint8_t>&, Shape);
Tensor scalar_tensor(double v, DType t) {
  return Tensor(kernels::full({}, v, t));
}

}  // namespace kiln
