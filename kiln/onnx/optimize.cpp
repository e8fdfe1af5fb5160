// Load-time graph rewrites for import_model (see graph_internal.h): constant folding and Conv +
// BatchNormalization fusion over values fixed by the file's Constant nodes. Third-party exporters
// (Paddle2ONNX, tf2onnx) write weights as Constant nodes and leave batch norms unfused; running
// them as written costs a pass over every activation per batch norm (PaddleOCR's classifier has
// 35). Initializers are never touched: they are trainable parameters and state_dict buffers.
#include <cmath>
#include <unordered_map>

#include "kiln/autograd/grad_mode.h"
#include "kiln/onnx/graph_internal.h"

namespace kiln::onnx::detail {
namespace {

using ConstMap = std::unordered_map<int, Tensor>;

// Runs nodes whose inputs are all constants; their outputs join `consts`. A node that fails here
// is kept (it will fail again at run time, with the caller's inputs in view).
void fold(std::vector<CompiledNode>& nodes, ConstMap& consts) {
  std::vector<CompiledNode> kept;
  NoGradGuard no_grad;
  for (CompiledNode& c : nodes) {
    bool all_const = !c.inputs.empty() && c.ctx.op_type != "Dropout" &&
                     c.ctx.op_type != "Gradient" && c.fn != nullptr;
    for (int id : c.inputs) all_const = all_const && (id < 0 || consts.count(id));
    if (all_const) {
      Inputs in;
      for (int id : c.inputs) in.push_back(id < 0 ? Tensor() : consts.at(id));
      try {
        c.ctx.training = false;
        const std::vector<Tensor> out = c.fn(c.ctx, in);
        bool complete = out.size() >= c.outputs.size();
        for (size_t k = 0; complete && k < c.outputs.size(); ++k)
          complete = c.outputs[k] < 0 || out[k].defined();
        if (complete) {
          for (size_t k = 0; k < c.outputs.size(); ++k)
            if (c.outputs[k] >= 0) consts[c.outputs[k]] = Tensor(out[k].data());
          continue;
        }
      } catch (const Error&) {
      }
    }
    kept.push_back(std::move(c));
  }
  nodes = std::move(kept);
}

// Conv (constant W, b) -> BatchNormalization (constant scale, B, mean, var), with the conv's
// output read by nothing else: one Conv with W' = W·s and b' = (b - mean)·s + B per output
// channel, s = scale / sqrt(var + eps).
void fuse_conv_bn(ImportedGraph& g, ConstMap& consts) {
  std::unordered_map<int, int> readers, producer;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    for (int id : g.nodes[k].inputs)
      if (id >= 0) ++readers[id];
    for (int id : g.nodes[k].outputs)
      if (id >= 0) producer[id] = static_cast<int>(k);
  }
  for (int id : g.output_ids) readers[id] += 2;
  std::vector<bool> removed(g.nodes.size(), false);
  auto constant = [&](const CompiledNode& n, size_t k) {
    return k < n.inputs.size() && n.inputs[k] >= 0 && consts.count(n.inputs[k]) &&
           consts.at(n.inputs[k]).dtype() == kFloat32;
  };
  NoGradGuard no_grad;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    CompiledNode& bn = g.nodes[k];
    if (bn.ctx.op_type != "BatchNormalization" || bn.ctx.i("training_mode", 0) != 0 ||
        bn.inputs.size() != 5 || bn.inputs[0] < 0)
      continue;
    bool ok = true;
    for (size_t j = 1; j < 5; ++j) ok = ok && constant(bn, j);
    const auto p = producer.find(bn.inputs[0]);
    if (!ok || p == producer.end() || readers[bn.inputs[0]] != 1) continue;
    CompiledNode& conv = g.nodes[static_cast<size_t>(p->second)];
    if (conv.ctx.op_type != "Conv" || !constant(conv, 1) ||
        (conv.inputs.size() > 2 && conv.inputs[2] >= 0 && !constant(conv, 2)))
      continue;
    const Tensor w = consts.at(conv.inputs[1]);
    const int64_t C = w.size(0);
    const Tensor scale = consts.at(bn.inputs[1]), shift = consts.at(bn.inputs[2]),
                 mean = consts.at(bn.inputs[3]), var = consts.at(bn.inputs[4]);
    bool shapes = w.dim() >= 3;
    for (const Tensor* t : {&scale, &shift, &mean, &var})
      shapes = shapes && t->dim() == 1 && t->size(0) == C;
    if (!shapes) continue;
    const Tensor s = mul(scale, rsqrt(add(var, bn.ctx.f("epsilon", 1e-5))));  // (C)
    Shape cs(static_cast<size_t>(w.dim()), 1);
    cs[0] = C;
    const Tensor b =
        conv.inputs.size() > 2 && conv.inputs[2] >= 0 ? consts.at(conv.inputs[2]) : zeros({C});
    const Tensor w2 = contiguous(mul(w, reshape(s, cs)));
    const Tensor b2 = add(mul(sub(b, mean), s), shift);
    auto new_const = [&](const Tensor& t, const std::string& what) {
      const int id = static_cast<int>(g.value_names.size());
      g.value_names.push_back(g.value_names[static_cast<size_t>(bn.outputs[0])] + what);
      consts[id] = Tensor(t.data());
      return id;
    };
    conv.inputs.resize(3);
    conv.inputs[1] = new_const(w2, ":fused_weight");
    conv.inputs[2] = new_const(b2, ":fused_bias");
    conv.outputs[0] = bn.outputs[0];
    removed[k] = true;
  }
  std::vector<CompiledNode> kept;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (!removed[k]) kept.push_back(std::move(g.nodes[k]));
  g.nodes = std::move(kept);
}

// ---- fused patterns (exporters write Kiln's fused ops, and PyTorch's, as ONNX primitives) ----

// Who reads and who makes each value, over the current node list.
struct Uses {
  std::unordered_map<int, int> readers, producer;
  explicit Uses(const ImportedGraph& g) {
    for (size_t k = 0; k < g.nodes.size(); ++k) {
      for (int id : g.nodes[k].inputs)
        if (id >= 0) ++readers[id];
      for (int id : g.nodes[k].outputs)
        if (id >= 0) producer[id] = static_cast<int>(k);
    }
    for (int id : g.output_ids) readers[id] += 2;  // graph outputs are never fused away
  }
  int count(int id) const {
    auto it = readers.find(id);
    return it == readers.end() ? 0 : it->second;
  }
  // The node making `id` when it is `op` and read by nothing else.
  CompiledNode* only(ImportedGraph& g, int id, const char* op) const {
    auto it = producer.find(id);
    if (id < 0 || it == producer.end() || count(id) != 1) return nullptr;
    CompiledNode& n = g.nodes[static_cast<size_t>(it->second)];
    return n.ctx.op_type == op ? &n : nullptr;
  }
};

// A one-element float constant's or initializer's value at load (NaN when `id` is neither). The
// fused nodes keep such ids as inputs and read them again per forward: an initializer may change.
double scalar_of(const ConstMap& consts, int id) {
  auto it = consts.find(id);
  if (it == consts.end() || it->second.numel() != 1 || !is_floating(it->second.dtype())) return NAN;
  return it->second.to_vector<double>()[0];
}
bool near(double v, double want) {
  return std::abs(v - want) <= 1e-6 * std::abs(want);
}
double value_of(const Tensor& t) {
  return t.defined() && t.numel() == 1 ? t.to_vector<double>()[0] : NAN;
}

// Linear: x·Wᵀ (+ b) with W an initializer or constant, through Kiln's fused linear.
std::vector<Tensor> fused_linear(const NodeContext& n, const Inputs& in) {
  const Tensor &x = required(n, in, 0), &w = required(n, in, 1);
  const Tensor b = in.size() > 2 ? in[2] : Tensor();
  if (x.dim() >= 2 && w.dim() == 2 && is_floating(x.dtype()) && x.size(-1) == w.size(1) &&
      (!b.defined() || (b.dim() == 1 && b.size(0) == w.size(0))))
    return {linear(x, w, b)};
  Tensor y = matmul(x, transpose(w, 0, 1));
  return {b.defined() ? add(y, b) : y};
}
// GELU (erf form): 0.5·x·(1 + erf(x/√2)). Inputs {x, d, h, o} are x and the pattern's scalars
// (x/d or x·d with attribute "mul", h = 0.5, o = 1); if they no longer hold those values the
// primitives run.
std::vector<Tensor> fused_gelu(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const bool by_mul = n.i("mul", 0) != 0;
  const double d = value_of(in[1]), h = value_of(in[2]), o = value_of(in[3]);
  if (near(d, by_mul ? std::sqrt(0.5) : std::sqrt(2.0)) && near(h, 0.5) && near(o, 1.0))
    return {gelu(x, "none")};
  return {mul(mul(x, h), add(erf(by_mul ? mul(x, d) : div(x, d)), o))};
}
// Attention: softmax(q·kᵀ·c + mask)·v (c = the scale input, or 1/c with attribute "div"), with
// NaN probabilities (fully masked rows) replaced by the guard's value (input 5; none: kept).
// Kiln's fused scaled_dot_product_attention computes exactly this when c = 1/√d and the guard
// value is 0; otherwise the primitives run.
std::vector<Tensor> fused_attention(const NodeContext& n, const Inputs& in) {
  const Tensor &q = required(n, in, 0), &k = required(n, in, 1), &v = required(n, in, 2);
  const Tensor mask = in[3];
  const double c = value_of(in[4]);
  const double scale = n.i("div", 0) != 0 ? 1.0 / c : c;
  const bool guarded = in[5].defined();
  const double d = static_cast<double>(q.size(-1));
  if (q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && near(scale * std::sqrt(d), 1.0) &&
      (!mask.defined() || is_floating(mask.dtype())) &&
      (!mask.defined() || (guarded && value_of(in[5]) == 0.0)))
    return {scaled_dot_product_attention(q, k, v, mask)};
  Tensor s = matmul(q, transpose(k, -1, -2));
  s = n.i("div", 0) != 0 ? div(s, in[4]) : mul(s, in[4]);
  if (mask.defined()) s = add(s, mask);
  Tensor p = softmax(s, -1);
  if (guarded) p = where(ne(p, p), in[5], p);  // NaN where a row was fully masked
  return {matmul(p, v)};
}

void fuse_linear(ImportedGraph& g, const ConstMap& consts, std::vector<bool>& removed) {
  const Uses u(g);
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    CompiledNode& mm = g.nodes[k];
    if (removed[k] || mm.ctx.op_type != "MatMul" || mm.inputs.size() != 2) continue;
    CompiledNode* t = u.only(g, mm.inputs[1], "Transpose");
    if (!t || t->inputs.empty() || t->ctx.ints("perm") != std::vector<int64_t>{1, 0}) continue;
    const int w = t->inputs[0];
    auto shape = g.known_shapes.find(w);
    if (u.producer.count(w) || shape == g.known_shapes.end() || shape->second.size() != 2) continue;
    int bias = -1;
    CompiledNode* anchor = &mm;
    // The Add of a bias (W's row count) right after, when the MatMul's output goes nowhere else.
    for (size_t j = k + 1; j < g.nodes.size() && u.count(mm.outputs[0]) == 1; ++j) {
      CompiledNode& a = g.nodes[j];
      if (a.ctx.op_type != "Add" || a.inputs.size() != 2) continue;
      const int other = a.inputs[0] == mm.outputs[0]   ? a.inputs[1]
                        : a.inputs[1] == mm.outputs[0] ? a.inputs[0]
                                                       : -2;
      if (other == -2) continue;
      auto bs = g.known_shapes.find(other);
      if (!u.producer.count(other) && bs != g.known_shapes.end() &&
          bs->second == Shape{shape->second[0]}) {
        bias = other;
        removed[k] = true;
        anchor = &a;
      }
      break;
    }
    removed[static_cast<size_t>(u.producer.at(mm.inputs[1]))] = true;
    anchor->ctx.op_type = "Linear";
    anchor->fn = fused_linear;
    anchor->inputs =
        bias >= 0 ? std::vector<int>{mm.inputs[0], w, bias} : std::vector<int>{mm.inputs[0], w};
    (void)consts;
  }
}

void fuse_gelu(ImportedGraph& g, const ConstMap& consts, std::vector<bool>& removed) {
  const Uses u(g);
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    CompiledNode& out = g.nodes[k];
    if (removed[k] || out.ctx.op_type != "Mul" || out.inputs.size() != 2) continue;
    for (int side = 0; side < 2; ++side) {
      CompiledNode* half = u.only(g, out.inputs[static_cast<size_t>(side)], "Mul");
      CompiledNode* one = u.only(g, out.inputs[static_cast<size_t>(1 - side)], "Add");
      if (!half || !one || half->inputs.size() != 2 || one->inputs.size() != 2) continue;
      const int hx = near(scalar_of(consts, half->inputs[1]), 0.5)   ? half->inputs[0]
                     : near(scalar_of(consts, half->inputs[0]), 0.5) ? half->inputs[1]
                                                                     : -1;
      const int erf_out = near(scalar_of(consts, one->inputs[1]), 1.0)   ? one->inputs[0]
                          : near(scalar_of(consts, one->inputs[0]), 1.0) ? one->inputs[1]
                                                                         : -1;
      CompiledNode* erf = u.only(g, erf_out, "Erf");
      if (hx < 0 || !erf) continue;
      CompiledNode* scaled = u.only(g, erf->inputs[0], "Div");
      bool by_mul = false;
      bool ok = scaled && scaled->inputs[0] == hx &&
                near(scalar_of(consts, scaled->inputs[1]), std::sqrt(2.0));
      if (!ok) {
        scaled = u.only(g, erf->inputs[0], "Mul");
        by_mul = true;
        ok = scaled && scaled->inputs[0] == hx &&
             near(scalar_of(consts, scaled->inputs[1]), std::sqrt(0.5));
      }
      if (!ok) continue;
      for (CompiledNode* dead : {half, one, erf, scaled})
        removed[static_cast<size_t>(dead - g.nodes.data())] = true;
      const int h_id = half->inputs[0] == hx ? half->inputs[1] : half->inputs[0];
      const int o_id = one->inputs[0] == erf_out ? one->inputs[1] : one->inputs[0];
      out.ctx.op_type = "Gelu";
      out.ctx.attrs["mul"].kind = Attribute::Int;
      out.ctx.attrs["mul"].i = by_mul ? 1 : 0;
      out.fn = fused_gelu;
      out.inputs = {hx, scaled->inputs[1], h_id, o_id};
      break;
    }
  }
}

void fuse_attention(ImportedGraph& g, const ConstMap& consts, std::vector<bool>& removed) {
  const Uses u(g);
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    CompiledNode& mm2 = g.nodes[k];
    if (removed[k] || mm2.ctx.op_type != "MatMul" || mm2.inputs.size() != 2 || mm2.ctx.opset < 13)
      continue;
    // probabilities: Where(IsNaN(p), 0, p) (the guard) or p itself
    std::vector<CompiledNode*> dead;
    int p = mm2.inputs[0];
    CompiledNode* guard = u.only(g, p, "Where");
    CompiledNode* sm = nullptr;
    if (guard && guard->inputs.size() == 3 && scalar_of(consts, guard->inputs[1]) == 0.0) {
      CompiledNode* isnan = u.only(g, guard->inputs[0], "IsNaN");
      auto pr = u.producer.find(guard->inputs[2]);
      if (!isnan || isnan->inputs[0] != guard->inputs[2] || pr == u.producer.end() ||
          u.count(guard->inputs[2]) != 2)
        continue;
      sm = &g.nodes[static_cast<size_t>(pr->second)];
      if (sm->ctx.op_type != "Softmax") continue;
      dead = {guard, isnan};
    } else {
      guard = nullptr;
      sm = u.only(g, p, "Softmax");
    }
    if (!sm || (sm->ctx.i("axis", -1) != -1 && sm->ctx.i("axis", -1) != 3)) continue;
    int mask = -1;
    int scores = sm->inputs[0];
    if (CompiledNode* add = u.only(g, scores, "Add"); add && add->inputs.size() == 2) {
      mask = add->inputs[1];
      scores = add->inputs[0];
      dead.push_back(add);
    }
    if (mask >= 0 && !guard) continue;  // fully masked rows: NaN there, Kiln's op gives 0
    double scale = NAN;
    bool by_div = false;
    CompiledNode* sc = u.only(g, scores, "Mul");
    if (sc && sc->inputs.size() == 2) scale = scalar_of(consts, sc->inputs[1]);
    if (!sc) {
      sc = u.only(g, scores, "Div");
      by_div = true;
      if (sc && sc->inputs.size() == 2) scale = 1.0 / scalar_of(consts, sc->inputs[1]);
    }
    if (!sc || std::isnan(scale)) continue;
    CompiledNode* mm1 = u.only(g, sc->inputs[0], "MatMul");
    if (!mm1 || mm1->inputs.size() != 2) continue;
    CompiledNode* kt = u.only(g, mm1->inputs[1], "Transpose");
    if (!kt || kt->ctx.ints("perm") != std::vector<int64_t>{0, 1, 3, 2}) continue;
    dead.insert(dead.end(), {sm, sc, mm1, kt});
    for (CompiledNode* d : dead) removed[static_cast<size_t>(d - g.nodes.data())] = true;
    std::vector<int> ins{mm1->inputs[0], kt->inputs[0], mm2.inputs[1],
                         mask,           sc->inputs[1], guard ? guard->inputs[1] : -1};
    mm2.ctx.op_type = "Attention";
    mm2.ctx.attrs["div"].kind = Attribute::Int;
    mm2.ctx.attrs["div"].i = by_div ? 1 : 0;
    mm2.fn = fused_attention;
    mm2.inputs = ins;
  }
}

void drop_removed(ImportedGraph& g, std::vector<bool>& removed) {
  std::vector<CompiledNode> kept;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (!removed[k]) kept.push_back(std::move(g.nodes[k]));
  g.nodes = std::move(kept);
  removed.assign(g.nodes.size(), false);
}

}  // namespace

void optimize_graph(ImportedGraph& g) {
  ConstMap consts;
  for (auto& [id, t] : g.constants) consts[id] = t;
  fold(g.nodes, consts);
  fuse_conv_bn(g, consts);
  for (auto& [id, t] : consts) g.known_shapes[id] = t.shape();
  // For matching only: scalar initializers (scales, 0.5, 1, √2 of exported composites).
  ConstMap scalars = consts;
  for (auto& [id, t] : g.initializer_scalars) scalars.emplace(id, t);
  std::vector<bool> removed(g.nodes.size(), false);
  fuse_attention(g, scalars, removed);
  drop_removed(g, removed);
  fuse_linear(g, scalars, removed);
  drop_removed(g, removed);
  fuse_gelu(g, scalars, removed);
  drop_removed(g, removed);
  g.initializer_scalars.clear();
  // Keep only the constants something still reads.
  std::vector<bool> used(g.value_names.size(), false);
  for (const CompiledNode& n : g.nodes)
    for (int id : n.inputs)
      if (id >= 0) used[static_cast<size_t>(id)] = true;
  for (int id : g.output_ids) used[static_cast<size_t>(id)] = true;
  g.constants.clear();
  for (auto& [id, t] : consts)
    if (used[static_cast<size_t>(id)]) g.constants.emplace_back(id, t);
}

}  // namespace kiln::onnx::detail
