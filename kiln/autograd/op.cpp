#include "kiln/autograd/op.h"

#include <atomic>

#include "kiln/autograd/grad_mode.h"
#include "kiln/autograd/op_registry.h"
#include "kiln/tensor/error.h"

namespace kiln {
namespace {
thread_local bool t_grad_enabled = true;
thread_local Tracer* t_tracer = nullptr;
std::atomic<uint64_t> g_sequence{0};
}  // namespace

bool grad_enabled() {
  return t_grad_enabled;
}
void set_grad_enabled(bool enabled) {
  t_grad_enabled = enabled;
}
NoGradGuard::NoGradGuard() : prev_(t_grad_enabled) {
  t_grad_enabled = false;
}
NoGradGuard::~NoGradGuard() {
  t_grad_enabled = prev_;
}

Tracer::Tracer() : prev_(t_tracer) {
  t_tracer = this;
}
Tracer::~Tracer() {
  t_tracer = prev_;
}
Tracer* Tracer::active() {
  return t_tracer;
}

const Array& Saved::get() const {
  KILN_CHECK(a_.version() == version_,
             "{}: a tensor saved for backward was modified by an in-place operation (version {} "
             "now, {} when "
             "saved); clone it before modifying, or modify it after backward()",
             op_, a_.version(), version_);
  return a_;
}

template <typename T>
const T& attr(const Attrs& attrs, const std::string& name) {
  for (const auto& [k, v] : attrs)
    if (k == name) {
      const T* p = std::get_if<T>(&v);
      KILN_CHECK(p != nullptr, "attr: attribute '{}' has another type", name);
      return *p;
    }
  throw Error(fmt::format("attr: no attribute '{}'", name));
}
template const int64_t& attr<int64_t>(const Attrs&, const std::string&);
template const double& attr<double>(const Attrs&, const std::string&);
template const std::string& attr<std::string>(const Attrs&, const std::string&);
template const std::vector<int64_t>& attr<std::vector<int64_t>>(const Attrs&, const std::string&);
template const std::vector<double>& attr<std::vector<double>>(const Attrs&, const std::string&);

namespace detail {

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Needs needs_of(const std::vector<Tensor>& inputs) {
  Needs n(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i)
    n[i] = inputs[i].defined() && inputs[i].requires_grad();
  return n;
}

// The edge a gradient for `t` should flow along: its producing node, or its leaf accumulator.
Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  TensorImpl* impl = t.impl();
  if (impl->grad_fn) return {impl->grad_fn, impl->output_nr};
  if (!impl->grad_accumulator) {
    auto acc = std::make_shared<Node>();
    acc->name = "accumulate_grad";
    acc->is_leaf_accumulator = true;
    acc->leaf = t.impl_ptr();
    acc->output_shapes = {impl->data.shape()};
    acc->output_dtypes = {impl->data.dtype()};
    impl->grad_accumulator = acc;
  }
  return {impl->grad_accumulator, 0};
}

std::vector<Tensor> record_op(std::string_view name, const std::vector<Tensor>& inputs,
                              std::vector<Array> outputs, BackwardFn backward, Attrs attrs,
                              bool differentiable) {
  note_op_name(name, differentiable);
  std::vector<Tensor> outs;
  outs.reserve(outputs.size());
  for (Array& a : outputs) outs.emplace_back(std::move(a));
  if (differentiable && backward) {
    auto node = std::make_shared<Node>();
    node->name = std::string(name);
    node->attrs = attrs;
    node->backward = std::move(backward);
    node->sequence = g_sequence.fetch_add(1, std::memory_order_relaxed);
    node->next.reserve(inputs.size());
    for (const Tensor& t : inputs) node->next.push_back(gradient_edge(t));
    for (uint32_t i = 0; i < outs.size(); ++i) {
      node->output_shapes.push_back(outs[i].shape());
      node->output_dtypes.push_back(outs[i].dtype());
      if (is_floating(outs[i].dtype())) {
        TensorImpl* impl = outs[i].impl();
        impl->requires_grad = true;
        impl->grad_fn = node;
        impl->output_nr = i;
      }
    }
  }
  if (Tracer* tr = t_tracer)
    tr->record(TraceEvent{std::string(name), std::move(attrs), inputs, outs});
  return outs;
}

}  // namespace detail

Tensor make_nondiff_op(std::string_view name, const std::vector<Tensor>& inputs, Array out,
                       Attrs attrs) {
  std::vector<Array> outs;
  outs.push_back(std::move(out));
  return detail::record_op(name, inputs, std::move(outs), nullptr, std::move(attrs), false)[0];
}

}  // namespace kiln
