// The backward engine: a dependency-counted walk of the graph from the root, newest node first.
#include <queue>

#include <unordered_map>
#include "kiln/tensor/creation.h"

#include "kiln/autograd/grad_mode.h"
#include "kiln/autograd/op.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/ops.h"

namespace kiln {
namespace {

// Leaf accumulators first (as PyTorch's AccumulateGrad, whose sequence number is the maximum), then
// newest first. A leaf's accumulator becomes ready once all its gradient has arrived; running it at
// once frees the engine's buffer early and lets post-accumulate hooks (distributed training's
// gradient all-reduce) start while the rest of backward runs, instead of after it. Each
// accumulator runs once with its whole gradient, so the order changes no value.
struct NewestFirst {
  bool operator()(const Node* a, const Node* b) const {
    if (a->is_leaf_accumulator != b->is_leaf_accumulator) return b->is_leaf_accumulator;
    return a->sequence < b->sequence;
  }
};

// Adds g into slot (the slot takes g itself when empty: no copy).
void accumulate(Array& slot, Array g) {
  if (!slot.defined()) {
    slot = std::move(g);
  } else if (slot.storage().use_count() == 1 && slot.is_contiguous() && slot.shape() == g.shape() &&
             slot.dtype() == g.dtype()) {
    // The engine's own buffer (no other array shares its storage, so g cannot alias it): add in
    // place rather than allocate a third buffer.
    kernels::binary_(kernels::BinaryOp::Add, slot, g);
  } else {
    slot = kernels::add(slot, g);
  }
}

void accumulate_into_leaf(Node& acc, Array g) {
  auto impl = acc.leaf.lock();
  if (!impl) return;
  if (g.dtype() != impl->data.dtype()) g = g.to(impl->data.dtype());
  if (!impl->grad.defined()) {
    // Keep the engine's buffer when nobody else shares its storage; otherwise copy, so later
    // in-place edits of .grad (clipping, optimisers) cannot reach another tensor's gradient.
    impl->grad = g.storage().use_count() == 1 && g.is_contiguous() ? std::move(g) : g.clone();
  } else {
    impl->grad = kernels::add(impl->grad, g);
  }
}

}  // namespace

void run_backward(const Tensor& root, Array root_grad, bool retain_graph) {
  NoGradGuard no_grad;  // backward computations are not themselves recorded
  Edge start = root.grad_fn() ? Edge{root.grad_fn(), root.output_nr()}
                              : Edge{root.impl()->grad_accumulator, 0};
  if (!start.node) {
    // A leaf that requires grad but has no accumulator yet.
    if (!root.impl()->grad_accumulator) {
      auto impl = root.impl_ptr();
      impl->grad = impl->grad.defined() ? kernels::add(impl->grad, root_grad) : root_grad.clone();
      return;
    }
  }
  // Count, for every node reachable from the root, how many edges point at it.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack{start.node.get()};
  deps[start.node.get()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next) {
      if (!e.node) continue;
      auto [it, inserted] = deps.try_emplace(e.node.get(), 0);
      ++it->second;
      if (inserted) stack.push_back(e.node.get());
    }
  }
  std::unordered_map<Node*, std::vector<Array>> buffers;
  auto& root_buf = buffers[start.node.get()];
  root_buf.resize(start.node->output_shapes.size());
  root_buf[start.output_nr] = std::move(root_grad);

  std::priority_queue<Node*, std::vector<Node*>, NewestFirst> ready;
  ready.push(start.node.get());
  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    std::vector<Array> grads = std::move(buffers[n]);
    buffers.erase(n);
    grads.resize(n->output_shapes.size());
    for (auto& [nr, hook] : n->hooks)
      if (grads[nr].defined()) {
        Array r = hook(grads[nr]);
        if (r.defined()) grads[nr] = std::move(r);
      }
    if (n->is_leaf_accumulator) {
      if (grads[0].defined()) {
        accumulate_into_leaf(*n, std::move(grads[0]));
        for (auto& [id, hook] : n->post_accumulate_hooks) hook();
      }
      continue;
    }
    KILN_CHECK(!n->released,
               "backward: trying to backward through the graph a second time (op '{}'); pass "
               "retain_graph=true to "
               "the first backward() if you need to",
               n->name);
    bool any = false;
    for (size_t i = 0; i < grads.size(); ++i) {
      if (grads[i].defined()) {
        any = true;
      } else {
        grads[i] = kernels::zeros(
            n->output_shapes[i], is_floating(n->output_dtypes[i]) ? n->output_dtypes[i] : kFloat32);
      }
    }
    Grads in_grads;
    if (any) in_grads = n->backward(grads);
    if (!retain_graph) {
      n->backward = nullptr;
      n->released = true;
    }
    for (size_t i = 0; i < n->next.size(); ++i) {
      const Edge& e = n->next[i];
      if (!e.node) continue;
      if (i < in_grads.size() && in_grads[i].defined()) {
        const Shape& want = e.node->output_shapes[e.output_nr];
        KILN_CHECK_SHAPE(in_grads[i].shape() == want,
                         "backward of '{}': gradient for input {} has shape {} but the input has "
                         "shape {} (internal "
                         "error in the op's backward)",
                         n->name, i, in_grads[i].shape(), want);
        auto& buf = buffers[e.node.get()];
        buf.resize(e.node->output_shapes.size());
        accumulate(buf[e.output_nr], std::move(in_grads[i]));
      }
      if (--deps[e.node.get()] == 0) ready.push(e.node.get());
    }
  }
}

}  // namespace kiln
