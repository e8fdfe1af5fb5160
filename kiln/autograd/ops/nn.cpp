// Neural-network ops: the fused softmax family, layer / batch norm, the losses, dropout and
// attention. Each entry: shape check, kernels:: forward from tensor/softmax.h, normalization.h,
// loss.h or dropout.h, backward beside it. Legend: B = batch, K = classes, N = loss rows (B times
// spatial positions), D = normalised size, C = channels, H = heads, Tq / Tk = query / key tokens,
// d = head dim, dv = value dim.
#include <cmath>
#include <limits>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/autograd/op.h"
#include "kiln/autograd/op_registry.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/dropout.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/linalg.h"
#include "kiln/tensor/loss.h"
#include "kiln/tensor/normalization.h"
#include "kiln/tensor/ops.h"
#include "kiln/tensor/reduce.h"
#include "kiln/tensor/softmax.h"

namespace kiln {
namespace {
// Every op name this file records (kiln/autograd/op_registry.h): a test fails when an op is
// recorded undeclared, and the gradcheck table needs a case for each differentiable one.
const OpDeclarations kOps({"batch_norm", "cross_entropy", "dropout", "dropout_add_layer_norm",
                           "layer_norm", "log_softmax", "nll_loss", "scaled_dot_product_attention",
                           "softmax"});
}  // namespace
namespace {

void check_floating(const Tensor& x, const char* op, const char* what) {
  KILN_CHECK_TYPE(is_floating(x.dtype()),
                  "{}: {} dtype {} is not supported (float32 or float64 required), shape {}", op,
                  what, x.dtype(), x.shape());
}
// dim wrapped into [0, ndim) (a 0-d input counts as 1-D).
int64_t softmax_dim(const Tensor& x, int64_t dim, const char* op) {
  const int64_t nd = std::max<int64_t>(x.dim(), 1);
  KILN_CHECK_SHAPE(dim >= -nd && dim < nd,
                   "{}: dim {} is out of range for input {} (dim must be in [{}, {}])", op, dim,
                   x.shape(), -nd, nd - 1);
  return dim < 0 ? dim + nd : dim;
}
// True when `from` broadcasts to exactly `to` (dims aligned from the right are equal or 1).
bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  for (size_t i = 1; i <= from.size(); ++i)
    if (from[from.size() - i] != 1 && from[from.size() - i] != to[to.size() - i]) return false;
  return true;
}
// The layer norms' shape rule: x ends with normalized_shape, and weight / bias (where given) have
// that shape. Returns the number of normalised dims.
int64_t check_normalized_shape(const char* op, const Tensor& x, const Shape& normalized_shape,
                               const Tensor& weight, const Tensor& bias) {
  const int64_t nd = static_cast<int64_t>(normalized_shape.size());
  KILN_CHECK_SHAPE(
      nd >= 1 && nd <= x.dim() && Shape(x.shape().end() - nd, x.shape().end()) == normalized_shape,
      "{}: input {} does not end with normalized_shape {} (input's last {} dims must equal it)", op,
      x.shape(), normalized_shape, nd);
  for (const Tensor* p : {&weight, &bias})
    KILN_CHECK_SHAPE(
        !p->defined() || p->shape() == normalized_shape,
        "{}: {} {} does not match normalized_shape {} (input {}; {} must have that shape)", op,
        p == &weight ? "weight" : "bias", p->shape(), normalized_shape, x.shape(),
        p == &weight ? "weight" : "bias");
  return nd;
}
Saved save_optional(const Tensor& t, const char* op) {
  return t.defined() ? save(t, op) : Saved{};
}
Array get_optional(const Saved& s) {
  return s.defined() ? s.get() : Array{};
}
Shape shape_or_empty(const Tensor& t) {
  return t.defined() ? t.shape() : Shape{};
}

// ---- losses: (B, K, d1...) inputs as (N, K) rows, and the reductions.
struct LossRows {
  Array x;           // (N, K): class dim moved last
  Array target;      // (N) int64
  Shape none_shape;  // the per-element loss shape: target's
  Shape input_shape;
  int64_t K = 0;
};

LossRows loss_rows(const Tensor& input, const Tensor& target, const char* op, const char* what) {
  check_floating(input, op, what);
  KILN_CHECK_SHAPE(input.dim() >= 1, "{}: {} must be (K), (B, K) or (B, K, d1...), got {}", op,
                   what, input.shape());
  KILN_CHECK_TYPE(
      is_integral(target.dtype()),
      "{}: target must hold int64 class ids, got {} {} (probability targets are not supported)", op,
      target.dtype(), target.shape());
  Shape want = input.shape();
  want.erase(want.begin() + (input.dim() == 1 ? 0 : 1));
  if (input.dim() == 2 && target.dim() == 1)
    KILN_CHECK_SHAPE(target.size(0) == input.size(0),
                     "{}: target has {} entries but {} have batch {} (target {} vs {} {}; target "
                     "must be (B) for (B, K))",
                     op, target.size(0), what, input.size(0), target.shape(), what, input.shape());
  KILN_CHECK_SHAPE(
      target.shape() == want,
      "{}: target {} does not match {} {} (target must be {}'s shape without the class dim: {})",
      op, target.shape(), what, input.shape(), what, want);
  LossRows r;
  r.K = input.size(input.dim() == 1 ? 0 : 1);
  r.none_shape = want;
  r.input_shape = input.shape();
  Array x = input.data();
  if (input.dim() == 1) {
    x = x.unsqueeze(0);
  } else if (input.dim() > 2) {
    std::vector<int64_t> perm{0};
    for (int64_t d = 2; d < input.dim(); ++d) perm.push_back(d);
    perm.push_back(1);
    x = x.permute(perm);
  }
  r.x = x.reshape({-1, r.K});
  r.target = target.data().reshape({-1});
  return r;
}

// (N, K) rows back to the input's layout (the inverse of loss_rows).
Array rows_to_input(const Array& g, const Shape& input_shape) {
  const int64_t nd = static_cast<int64_t>(input_shape.size());
  if (nd <= 2) return g.view(input_shape);
  Shape moved{input_shape[0]};
  for (int64_t d = 2; d < nd; ++d) moved.push_back(input_shape[d]);
  moved.push_back(input_shape[1]);
  std::vector<int64_t> perm{0, nd - 1};
  for (int64_t d = 1; d < nd - 1; ++d) perm.push_back(d);
  return g.view(moved).permute(perm).contiguous();
}

void check_reduction(const std::string& reduction, const char* op) {
  KILN_CHECK(reduction == "mean" || reduction == "sum" || reduction == "none",
             "{}: reduction must be \"mean\", \"sum\" or \"none\", got \"{}\"", op, reduction);
}

// Per-row losses (N) -> the op's output. "mean" divides by Σ w_t over rows that are not ignored
// (PyTorch's weighted mean), so it is NaN when every row is ignored, as in PyTorch.
Array reduce_loss(const Array& rows, const std::string& reduction, double total_weight,
                  const Shape& none_shape) {
  if (reduction == "none") return rows.view(none_shape);
  Array s = kernels::sum(rows);
  return reduction == "sum" ? s : kernels::mul(s, 1.0 / total_weight);
}
// The upstream gradient as one scale per row (N) or a single one. With "mean" and nothing counted
// the gradient is zero (PyTorch: ignored rows never receive gradient).
Array row_scale(const Array& dy, const std::string& reduction, double total_weight) {
  if (reduction == "none") return dy.reshape({-1});
  if (reduction == "sum") return dy.reshape({1});
  return kernels::mul(dy.reshape({1}), total_weight == 0 ? 0.0 : 1.0 / total_weight);
}

}  // namespace

// softmax: y = exp(x − max) / Σ exp(x − max) along dim.   dx = y ⊙ (dy − Σ dy ⊙ y)
Tensor softmax(const Tensor& x, int64_t dim) {
  check_floating(x, "softmax", "input");
  const int64_t d = softmax_dim(x, dim, "softmax");
  Array y = kernels::softmax(x.data(), d);
  return make_op("softmax", {x}, y,
                 [Y = save(y, "softmax"), d](const Array& dy) -> Grads {
                   return {kernels::softmax_backward(dy, Y.get(), d)};
                 },
                 {{"axis", d}});
}

// log_softmax: y = x − max − log Σ exp(x − max).   dx = dy − exp(y) · Σ dy
Tensor log_softmax(const Tensor& x, int64_t dim) {
  check_floating(x, "log_softmax", "input");
  const int64_t d = softmax_dim(x, dim, "log_softmax");
  Array y = kernels::log_softmax(x.data(), d);
  return make_op("log_softmax", {x}, y,
                 [Y = save(y, "log_softmax"), d](const Array& dy) -> Grads {
                   return {kernels::log_softmax_backward(dy, Y.get(), d)};
                 },
                 {{"axis", d}});
}

// layer_norm over the last dims:  x: (*, D…)  weight, bias: normalized_shape (D…)  ->  (*, D…)
// Inputs are recorded as (x, weight, bias), undefined where absent.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  check_floating(x, "layer_norm", "input");
  const int64_t nd = check_normalized_shape("layer_norm", x, normalized_shape, weight, bias);
  const int64_t D = shape_numel(normalized_shape);
  kernels::LayerNormForward f =
      kernels::layer_norm(x.data(), D, weight.defined() ? weight.data() : Array{},
                          bias.defined() ? bias.data() : Array{}, eps);
  Shape xs = x.shape();
  return make_op(
      "layer_norm", {x, weight, bias}, f.y,
      [X = save(x, "layer_norm"), W = save_optional(weight, "layer_norm"), mean = f.mean,
       rstd = f.rstd, D, xs, normalized_shape](const Array& dy, const Needs& n) -> Grads {
        kernels::LayerNormGrads g = kernels::layer_norm_backward(
            dy, X.get(), mean, rstd, get_optional(W), D, n[0], n[1], n[2]);
        return {n[0] ? g.dx.view(xs) : Array{}, n[1] ? g.dweight.view(normalized_shape) : Array{},
                n[2] ? g.dbias.view(normalized_shape) : Array{}};
      },
      {{"axis", x.dim() - nd}, {"epsilon", eps}, {"normalized_shape", normalized_shape}});
}

// cross_entropy: fused log_softmax + NLL with class weights, ignore_index and label smoothing
// (PyTorch's definition; see kernels::softmax_cross_entropy).
//   logits: (B, K) | (K) | (B, K, d1...)   target: int64 (B) | () | (B, d1...)   weight: (K)
// The forward pass over the logits also writes d loss_i / d logits_i; backward only scales its rows
// by the upstream gradient (mean: / Σ w_t).
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight,
                     int64_t ignore_index, double label_smoothing, const std::string& reduction) {
  check_reduction(reduction, "cross_entropy");
  KILN_CHECK(label_smoothing >= 0 && label_smoothing <= 1,
             "cross_entropy: label_smoothing must be in [0, 1], got {}", label_smoothing);
  LossRows r = loss_rows(logits, target, "cross_entropy", "logits");
  KILN_CHECK_SHAPE(
      !weight.defined() || (weight.dim() == 1 && weight.size(0) == r.K),
      "cross_entropy: weight {} does not match logits {} (weight must be (K) with K = {} classes)",
      shape_or_empty(weight), logits.shape(), r.K);
  KILN_CHECK(
      !(weight.defined() && weight.requires_grad() && grad_enabled()),
      "cross_entropy: weight {} requires grad, but class weights are not differentiated (pass "
      "weight.detach())",
      weight.shape());
  const bool need_grad = grad_enabled() && logits.requires_grad();
  kernels::CrossEntropyForward f =
      kernels::softmax_cross_entropy(r.x, r.target, weight.defined() ? weight.data() : Array{},
                                     ignore_index, label_smoothing, need_grad);
  Array out = reduce_loss(f.loss, reduction, f.total_weight, r.none_shape);
  return make_op(
      "cross_entropy", {logits, target, weight}, out,
      [G = f.grad, reduction, tw = f.total_weight,
       in_shape = r.input_shape](const Array& dy) -> Grads {
        return {rows_to_input(kernels::scale_rows(G, row_scale(dy, reduction, tw)), in_shape),
                Array{}, Array{}};
      },
      {{"reduction", reduction},
       {"ignore_index", ignore_index},
       {"label_smoothing", label_smoothing}});
}

// nll_loss: loss_i = −w_t · log_probs[i, t] (0 where t == ignore_index).
//   log_probs: (B, K) | (K) | (B, K, d1...)   target: int64 (B) | () | (B, d1...)   weight: (K)
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const Tensor& weight,
                int64_t ignore_index, const std::string& reduction) {
  check_reduction(reduction, "nll_loss");
  LossRows r = loss_rows(log_probs, target, "nll_loss", "log_probs");
  KILN_CHECK_SHAPE(
      !weight.defined() || (weight.dim() == 1 && weight.size(0) == r.K),
      "nll_loss: weight {} does not match log_probs {} (weight must be (K) with K = {} classes)",
      shape_or_empty(weight), log_probs.shape(), r.K);
  KILN_CHECK(!(weight.defined() && weight.requires_grad() && grad_enabled()),
             "nll_loss: weight {} requires grad, but class weights are not differentiated (pass "
             "weight.detach())",
             weight.shape());
  Array w = weight.defined() ? weight.data() : Array{};
  kernels::CrossEntropyForward f = kernels::nll_loss(r.x, r.target, w, ignore_index);
  Array out = reduce_loss(f.loss, reduction, f.total_weight, r.none_shape);
  return make_op("nll_loss", {log_probs, target, weight}, out,
                 [T = r.target, W = save_optional(weight, "nll_loss"), ignore_index, reduction,
                  tw = f.total_weight, K = r.K, in_shape = r.input_shape,
                  dt = log_probs.dtype()](const Array& dy) -> Grads {
                   Array g = kernels::nll_loss_backward(row_scale(dy, reduction, tw), T,
                                                        get_optional(W), ignore_index, K, dt);
                   return {rows_to_input(g, in_shape), Array{}, Array{}};
                 },
                 {{"reduction", reduction}, {"ignore_index", ignore_index}});
}

// dropout: y = x ⊙ m / (1 − p), m_i = [uniform(seed, offset + i) >= p] from the counter-based
// generator (the same mask at any thread count). The mask is not stored: backward regenerates it
// from (seed, offset). Not training, or p == 0: identity.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  check_floating(x, "dropout", "input");
  KILN_CHECK(p >= 0 && p <= 1, "dropout: p must be in [0, 1], got {} (input {})", p, x.shape());
  Attrs attrs{{"p", p}, {"training", int64_t{training}}};
  if (!training || p == 0)
    return make_op(
        "dropout", {x}, x.data(), [](const Array& dy) -> Grads { return {dy}; }, attrs);
  Generator& g = gen ? *gen : default_generator();
  const uint64_t offset = g.advance(static_cast<uint64_t>(x.numel())), seed = g.seed();
  Shape xs = x.shape();
  return make_op(
      "dropout", {x}, kernels::dropout(x.data(), p, seed, offset),
      [p, seed, offset, xs](const Array& dy) -> Grads {
        return {kernels::dropout(dy, p, seed, offset).view(xs)};
      },
      attrs);
}

// dropout_add_layer_norm: y = layer_norm(x + dropout(h, p), D…) — post-LN BERT's residual output.
//   x, h: (*, D…)  weight, bias: normalized_shape (D…)  ->  (*, D…)
// Training with p > 0: kernels::dropout_add_layer_norm writes s = x + h ⊙ m/(1 − p) and y in one
// pass (m drawn as dropout() draws it: same generator advance, same counters); backward gives
// ds from the layer norm and dh = ds ⊙ m/(1 − p) in one pass, dx = ds. Inputs are recorded as
// (x, h, weight, bias). Otherwise: add + layer_norm, the graph ONNX export lowers; at inference
// outside a trace the same kernel without the mask and without keeping s (one pass, same bits).
// Measured (fortunes fine-tuning, nasbert-5m, B 32 × T 64, 2 threads): see the commit.
Tensor dropout_add_layer_norm(const Tensor& x, const Tensor& h, double p, bool training,
                              Generator* gen, const Shape& normalized_shape, const Tensor& weight,
                              const Tensor& bias, double eps) {
  check_floating(x, "dropout_add_layer_norm", "input");
  KILN_CHECK(p >= 0 && p < 1, "dropout_add_layer_norm: p must be in [0, 1), got {} (input {})", p,
             x.shape());
  const bool same = x.shape() == h.shape() && x.dtype() == h.dtype();
  if (!training || p == 0) {
    // Inference (no input needs a gradient) outside a trace — the exporter reads add and
    // layer_norm: one pass over each row, nothing kept, the same bits as the two ops.
    if (!same || detail::any_requires_grad({x, h, weight, bias}) || Tracer::active())
      return layer_norm(add(x, h), normalized_shape, weight, bias, eps);
    const int64_t nd =
        check_normalized_shape("dropout_add_layer_norm", x, normalized_shape, weight, bias);
    const Array y = kernels::dropout_add_layer_norm(x.data(), h.data(), 0.0, 0, 0,
                                                    shape_numel(normalized_shape),
                                                    weight.defined() ? weight.data() : Array{},
                                                    bias.defined() ? bias.data() : Array{}, eps,
                                                    /*keep=*/false)
                        .y;
    return make_op("dropout_add_layer_norm", {x, h, weight, bias}, y.view(x.shape()),
                   [](const Array&, const Needs&) -> Grads { return Grads(4); },
                   {{"p", p},
                    {"training", int64_t{0}},
                    {"axis", x.dim() - nd},
                    {"epsilon", eps},
                    {"normalized_shape", normalized_shape}});
  }
  KILN_CHECK_SHAPE(same,
                   "dropout_add_layer_norm: residual {} {} and sub-layer output {} {} differ "
                   "(they must have the same shape and dtype)",
                   x.shape(), x.dtype(), h.shape(), h.dtype());
  const int64_t nd =
      check_normalized_shape("dropout_add_layer_norm", x, normalized_shape, weight, bias);
  const int64_t D = shape_numel(normalized_shape);
  Generator& g = gen ? *gen : default_generator();
  const uint64_t offset = g.advance(static_cast<uint64_t>(h.numel())), seed = g.seed();
  kernels::AddLayerNormForward f = kernels::dropout_add_layer_norm(
      x.data(), h.data(), p, seed, offset, D, weight.defined() ? weight.data() : Array{},
      bias.defined() ? bias.data() : Array{}, eps);
  Shape xs = x.shape();
  return make_op(
      "dropout_add_layer_norm", {x, h, weight, bias}, f.y,
      [S = f.sum, W = save_optional(weight, "dropout_add_layer_norm"), mean = f.mean, rstd = f.rstd,
       D, xs, normalized_shape, p, seed, offset](const Array& dy, const Needs& n) -> Grads {
        kernels::AddLayerNormGrads r = kernels::dropout_add_layer_norm_backward(
            dy, S, mean, rstd, get_optional(W), D, p, seed, offset, n[0], n[1], n[2], n[3]);
        return {n[0] ? r.dx.view(xs) : Array{}, n[1] ? r.dh.view(xs) : Array{},
                n[2] ? r.dweight.view(normalized_shape) : Array{},
                n[3] ? r.dbias.view(normalized_shape) : Array{}};
      },
      {{"p", p},
       {"training", int64_t{1}},
       {"axis", x.dim() - nd},
       {"epsilon", eps},
       {"normalized_shape", normalized_shape}});
}

// batch_norm over dim 1:  x: (B, C, *)  running_mean, running_var, weight, bias: (C) (any may be
// undefined, except the running statistics in eval mode). Inputs are recorded as
// (x, weight, bias, running_mean, running_var). Training normalises with the batch mean and biased
// variance and updates the running buffers in place (PyTorch's momentum: new = (1 − m)·old +
// m·batch, the unbiased variance n/(n−1)·σ² going into running_var); eval uses the running
// statistics.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  check_floating(x, "batch_norm", "input");
  KILN_CHECK_SHAPE(x.dim() >= 2, "batch_norm: input must be (B, C, *), got {}", x.shape());
  const int64_t C = x.size(1);
  const std::pair<const Tensor*, const char*> params[] = {{&running_mean, "running_mean"},
                                                          {&running_var, "running_var"},
                                                          {&weight, "weight"},
                                                          {&bias, "bias"}};
  for (auto [t, name] : params)
    KILN_CHECK_SHAPE(
        !t->defined() || (t->dim() == 1 && t->size(0) == C),
        "batch_norm: {} {} does not match input {} ({} must be (C) with C = input[1] = {})", name,
        t->shape(), x.shape(), name, C);
  KILN_CHECK(
      training || (running_mean.defined() && running_var.defined()),
      "batch_norm: eval mode needs running_mean and running_var, but {} undefined (input {})",
      running_mean.defined() ? "running_var is" : "running_mean is", x.shape());
  const int64_t n = C == 0 ? 0 : x.numel() / C;
  KILN_CHECK(!training || n > 1,
             "batch_norm: expected more than 1 value per channel when training, got input {}",
             x.shape());
  Array mean, var;
  Saved saved_mean, saved_var;
  if (training) {
    kernels::BatchNormStats st = kernels::batch_norm_stats(x.data());
    mean = st.mean;
    var = st.var;
    // The running buffers are updated in place through their Arrays (they are not differentiated).
    auto update = [momentum](const Tensor& buf, const Array& batch) {
      if (!buf.defined()) return;
      Array b = buf.data();
      b.copy_(kernels::add(kernels::mul(b.to(kFloat64), 1.0 - momentum),
                           kernels::mul(batch, momentum)));
    };
    update(running_mean, mean);
    update(running_var, kernels::mul(var, static_cast<double>(n) / static_cast<double>(n - 1)));
  } else {
    mean = running_mean.data();
    var = running_var.data();
    saved_mean = save(running_mean, "batch_norm");
    saved_var = save(running_var, "batch_norm");
  }
  Array y =
      kernels::batch_norm_forward(x.data(), mean, var, weight.defined() ? weight.data() : Array{},
                                  bias.defined() ? bias.data() : Array{}, eps);
  return make_op("batch_norm", {x, weight, bias, running_mean, running_var}, y,
                 [X = save(x, "batch_norm"), W = save_optional(weight, "batch_norm"),
                  mean = training ? mean : Array{}, var = training ? var : Array{}, saved_mean,
                  saved_var, training, eps](const Array& dy, const Needs& n) -> Grads {
                   kernels::BatchNormGrads g = kernels::batch_norm_backward(
                       dy, X.get(), training ? mean : saved_mean.get(),
                       training ? var : saved_var.get(), get_optional(W), eps, training, n[0], n[1],
                       n[2]);
                   return {g.dx, g.dweight, g.dbias, Array{}, Array{}};
                 },
                 {{"epsilon", eps}, {"momentum", momentum}, {"training", int64_t{training}}});
}

// scaled_dot_product_attention:  q: (B, H, Tq, d)  k: (B, H, Tk, d)  v: (B, H, Tk, dv)  mask:
// additive (or bool, true = attend), broadcastable to (B, H, Tq, Tk)  ->  (B, H, Tq, dv). Any
// leading dims work as long as q, k and v share them.
//   S = q·kᵀ (batched GEMM, transpose as a flag)   P = softmax(S/√d + mask)   P̃ = dropout(P)   O =
//   P̃·v
// Backward with the saved P and P̃ (dP's dropout mask is regenerated from its seed):
//   dv = P̃ᵀ·dO   dP = dropout(dO·vᵀ)   dS = P ⊙ (dP − Σ dP ⊙ P) / √d   dq = dS·k   dk = dSᵀ·q
// A query row whose mask is −inf everywhere attends to nothing: its output row and gradients are
// zero (not NaN). Rows masked with a finite value like −1e9 get the uniform average, as in PyTorch.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& mask, double dropout_p, bool training,
                                    Generator* gen) {
  const char* op = "scaled_dot_product_attention";
  check_floating(q, op, "q");
  KILN_CHECK_SHAPE(
      q.dim() >= 2 && k.dim() == q.dim() && v.dim() == q.dim(),
      "{}: q {}, k {} and v {} must have the same number of dims, at least 2 (B, H, T, d)", op,
      q.shape(), k.shape(), v.shape());
  const Shape qb(q.shape().begin(), q.shape().end() - 2),
      kb(k.shape().begin(), k.shape().end() - 2), vb(v.shape().begin(), v.shape().end() - 2);
  KILN_CHECK_SHAPE(qb == kb && kb == vb,
                   "{}: batch dims differ: q {} vs k {} vs v {} (all but the last two must match)",
                   op, q.shape(), k.shape(), v.shape());
  KILN_CHECK_SHAPE(q.size(-1) == k.size(-1),
                   "{}: head dims differ: q {} vs k {} (q[-1] must equal k[-1])", op, q.shape(),
                   k.shape());
  KILN_CHECK_SHAPE(k.size(-2) == v.size(-2),
                   "{}: key and value lengths differ: k {} vs v {} (k[-2] must equal v[-2])", op,
                   k.shape(), v.shape());
  KILN_CHECK_TYPE(k.dtype() == q.dtype() && v.dtype() == q.dtype(),
                  "{}: dtypes differ: q {}, k {}, v {}", op, q.dtype(), k.dtype(), v.dtype());
  KILN_CHECK(dropout_p >= 0 && dropout_p <= 1, "{}: dropout_p must be in [0, 1], got {}", op,
             dropout_p);
  Shape ss = qb;
  ss.push_back(q.size(-2));
  ss.push_back(k.size(-2));
  Array m;
  if (mask.defined()) {
    KILN_CHECK_SHAPE(broadcasts_to(mask.shape(), ss),
                     "{}: mask {} does not broadcast to the scores {} of q {} and k {} (mask must "
                     "be broadcastable "
                     "to (B, H, Tq, Tk))",
                     op, mask.shape(), ss, q.shape(), k.shape());
    m = mask.dtype() == kBool
            ? kernels::where(mask.data(), kernels::scalar(0.0, q.dtype()),
                             kernels::scalar(-std::numeric_limits<double>::infinity(), q.dtype()))
            : mask.data();
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  const bool drop = training && dropout_p > 0;
  Attrs attrs = {{"scale", scale}, {"dropout_p", dropout_p}, {"training", int64_t{training}}};
  if (!drop && !detail::any_requires_grad({q, k, v, mask})) {
    // Inference (or no input needs a gradient): nothing is saved, and each (batch, head) entry's
    // scores stay in a scratch block instead of a (*, Tq, Tk) array. Same values as below.
    Array out = kernels::attention_no_grad(q.data(), k.data(), v.data(), m, scale);
    return make_op(
        "scaled_dot_product_attention", {q, k, v, mask}, out,
        [](const Array&, const Needs&) -> Grads { return Grads(4); }, std::move(attrs));
  }
  Array p = kernels::matmul(q.data(), k.data(), false, true);  // (*, Tq, Tk)
  kernels::attention_softmax_(p, scale, m);
  uint64_t seed = 0, offset = 0;
  if (drop) {
    Generator& g = gen ? *gen : default_generator();
    offset = g.advance(static_cast<uint64_t>(p.numel()));
    seed = g.seed();
  }
  auto dropped = [=](const Array& a) {
    return drop ? kernels::dropout(a, dropout_p, seed, offset) : a;
  };
  Array pd = dropped(p);                      // P̃, kept for dv (one mask pass fewer in backward)
  Array out = kernels::matmul(pd, v.data());  // (*, Tq, dv)
  Shape ms = mask.defined() ? mask.shape() : Shape{};
  return make_op(
      "scaled_dot_product_attention", {q, k, v, mask}, out,
      [Q = save(q, op), K = save(k, op), V = save(v, op), P = p, PD = pd, dropped, scale, ms](
          const Array& dout, const Needs& n) -> Grads {
        Grads g(4);
        if (n[2]) g[2] = kernels::matmul(PD, dout, true, false);  // (*, Tk, dv)
        if (!(n[0] || n[1] || n[3])) return g;
        Array ds =
            dropped(kernels::matmul(dout, V.get(), false, true)).contiguous();  // dP: (*, Tq, Tk)
        kernels::attention_softmax_backward_(ds, P, scale);                     // dS / √d
        if (n[0]) g[0] = kernels::matmul(ds, K.get());                          // (*, Tq, d)
        if (n[1]) g[1] = kernels::matmul(ds, Q.get(), true, false);             // (*, Tk, d)
        if (n[3]) g[3] = kernels::sum_to(kernels::mul(ds, 1.0 / scale), ms);
        return g;
      },
      std::move(attrs));
}

}  // namespace kiln
