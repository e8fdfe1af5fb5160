// ONNX's training-domain optimiser steps (ai.onnx.preview.training: Adagrad, Adam, Momentum) for
// import_model (see import_ops_internal.h). Each takes a learning rate R and step count T
// (scalars), then n tensors X, n gradients G and n (or 2n for Adam) state tensors, and returns the
// updated X's followed by the updated states, computed with Kiln's elementwise ops in X's dtype.
// They are registered as "ai.onnx.preview.training:<op>" (import.cpp keys non-default domains so).
#include <cmath>

#include "kiln/onnx/import_ops_internal.h"

namespace kiln::onnx::detail {
namespace {

using Outs = std::vector<Tensor>;

// R, T and the group count n of an optimiser node with 2 + per·n inputs.
struct Step {
  double r = 0, t = 0;
  size_t n = 0;
};
Step step_of(const NodeContext& n, const Inputs& in, size_t per) {
  KILN_CHECK(in.size() >= 2 + per && (in.size() - 2) % per == 0,
             "{}: expected R, T and {} tensors per optimised input, got {} inputs", n.where(), per,
             in.size());
  Step s;
  s.r = scalar_value(n, required(n, in, 0), "R");
  s.t = scalar_value(n, required(n, in, 1), "T");
  s.n = (in.size() - 2) / per;
  return s;
}

// Adagrad: r = R / (1 + T·decay_factor); g = norm_coefficient·X + G; H' = H + g²;
// X' = X - r·g / (√H' + epsilon).   Outputs X'..., H'...
Outs adagrad_op(const NodeContext& n, const Inputs& in) {
  const Step s = step_of(n, in, 3);
  const double decay = n.f("decay_factor", 0.0), eps = n.f("epsilon", 1e-6),
               lambda = n.f("norm_coefficient", 0.0);
  const double r = s.r / (1.0 + s.t * decay);
  Outs xs, hs;
  for (size_t k = 0; k < s.n; ++k) {
    const Tensor &x = required(n, in, 2 + k), &g = required(n, in, 2 + s.n + k),
                 &h = required(n, in, 2 + 2 * s.n + k);
    const Tensor gr = add(mul(x, lambda), g);
    const Tensor h_new = add(h, square(gr));
    xs.push_back(sub(x, mul(div(gr, add(sqrt(h_new), eps)), r)));
    hs.push_back(h_new);
  }
  xs.insert(xs.end(), hs.begin(), hs.end());
  return xs;
}

// Adam: g = norm_coefficient·X + G; V' = α·V + (1-α)·g; H' = β·H + (1-β)·g²;
// r = T > 0 ? R·√(1-β^T) / (1-α^T) : R; X' = (1 - norm_coefficient_post)·(X - r·V' / (√H' + ε)).
// Outputs X'..., V'..., H'...
Outs adam_op(const NodeContext& n, const Inputs& in) {
  const Step s = step_of(n, in, 4);
  const double alpha = n.f("alpha", 0.9), beta = n.f("beta", 0.999), eps = n.f("epsilon", 1e-6),
               lambda = n.f("norm_coefficient", 0.0), post = n.f("norm_coefficient_post", 0.0);
  const double r =
      s.t > 0 ? s.r * std::sqrt(1.0 - std::pow(beta, s.t)) / (1.0 - std::pow(alpha, s.t)) : s.r;
  Outs xs, vs, hs;
  for (size_t k = 0; k < s.n; ++k) {
    const Tensor &x = required(n, in, 2 + k), &g = required(n, in, 2 + s.n + k),
                 &v = required(n, in, 2 + 2 * s.n + k), &h = required(n, in, 2 + 3 * s.n + k);
    const Tensor gr = add(mul(x, lambda), g);
    const Tensor v_new = add(mul(v, alpha), mul(gr, 1.0 - alpha));
    const Tensor h_new = add(mul(h, beta), mul(square(gr), 1.0 - beta));
    const Tensor x_new = sub(x, mul(div(v_new, add(sqrt(h_new), eps)), r));
    xs.push_back(mul(x_new, 1.0 - post));
    vs.push_back(v_new);
    hs.push_back(h_new);
  }
  xs.insert(xs.end(), vs.begin(), vs.end());
  xs.insert(xs.end(), hs.begin(), hs.end());
  return xs;
}

// Momentum: g = norm_coefficient·X + G; V' = α·V + (T > 0 ? β : 1)·g; X' = X - R·V' (standard)
// or X - R·(g + α·V') (nesterov).   Outputs X'..., V'...
Outs momentum_op(const NodeContext& n, const Inputs& in) {
  const Step s = step_of(n, in, 3);
  KILN_CHECK(n.has("alpha") && n.has("beta") && n.has("norm_coefficient"),
             "{}: attributes alpha, beta and norm_coefficient are required", n.where());
  const double alpha = n.f("alpha", 0), beta = n.f("beta", 0), lambda = n.f("norm_coefficient", 0);
  const std::string mode = n.s("mode", "standard");
  KILN_CHECK(mode == "standard" || mode == "nesterov",
             "{}: mode '{}' is neither 'standard' nor 'nesterov'", n.where(), mode);
  const double b = s.t > 0 ? beta : 1.0;
  Outs xs, vs;
  for (size_t k = 0; k < s.n; ++k) {
    const Tensor &x = required(n, in, 2 + k), &g = required(n, in, 2 + s.n + k),
                 &v = required(n, in, 2 + 2 * s.n + k);
    const Tensor gr = add(mul(x, lambda), g);
    const Tensor v_new = add(mul(v, alpha), mul(gr, b));
    const Tensor d = mode == "standard" ? v_new : add(gr, mul(v_new, alpha));
    xs.push_back(sub(x, mul(d, s.r)));
    vs.push_back(v_new);
  }
  xs.insert(xs.end(), vs.begin(), vs.end());
  return xs;
}

// Gradient: dy/dx for each x named by `xs`, where y is the value attribute `y` names; a
// non-scalar y is seeded with ones (the gradient of sum(y)). import.cpp wires the node to read
// [x..., y] (its own inputs name the xs and zs) and makes each x a fresh leaf that requires grad
// before any node reads it, with grad mode on for that run and the graph's initializers detached,
// so this backward reaches exactly the xs. An x y does not depend on gets zeros.
Outs gradient_op(const NodeContext& n, const Inputs& in) {
  KILN_CHECK(in.size() >= 2, "{}: needs at least one x and y", n.where());
  const Tensor& y = required(n, in, in.size() - 1);
  std::vector<Tensor> xs;
  for (size_t k = 0; k + 1 < in.size(); ++k) {
    xs.push_back(required(n, in, k));
    if (xs.back().requires_grad()) xs.back().zero_grad();
  }
  if (y.requires_grad()) y.backward(ones_like(y).detach(), /*retain_graph=*/true);
  Outs out;
  for (Tensor& x : xs) {
    const Tensor g = x.requires_grad() ? x.grad() : Tensor();
    out.push_back(g.defined() ? g.detach() : zeros_like(x).detach());
    if (x.requires_grad()) x.zero_grad();
  }
  return out;
}

}  // namespace

void register_training_ops(OpTable& t) {
  t["ai.onnx.preview.training:Gradient"] = gradient_op;
  t["ai.onnx.preview.training:Adagrad"] = adagrad_op;
  t["ai.onnx.preview.training:Adam"] = adam_op;
  t["ai.onnx.preview.training:Momentum"] = momentum_op;
}

}  // namespace kiln::onnx::detail
