// ONNX export of LSTM/GRU module calls: find_rnn_regions() locates each call's unrolled events in
// a trace, and Exporter::lower_rnn() writes the call as native ONNX LSTM / GRU nodes (one per
// layer), which keep the sequence axis dynamic.
#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/onnx/export_internal.h"

namespace kiln::onnx::export_detail {
namespace {

// Rows of a (G·H, *) gate-stacked weight with its G blocks of H rows taken in `order`.
Tensor reorder_gates(const Tensor& w, const std::vector<int64_t>& order, int64_t H) {
  std::vector<Tensor> blocks;
  for (int64_t g : order) blocks.push_back(w.narrow(0, g * H, H));
  return cat(blocks, 0);
}

}  // namespace

void Exporter::lower_rnn(const RnnRegion& r, const RnnRegion& r2) {
  const nn::RNNOptions& o = r.rnn->options();
  const int64_t H = o.hidden_size(), D = o.bidirectional() ? 2 : 1;
  // Kiln keeps PyTorch's gate order; ONNX's differs: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h.
  const std::vector<int64_t> order =
      r.lstm ? std::vector<int64_t>{0, 3, 1, 2} : std::vector<int64_t>{1, 0, 2};
  std::map<std::string, Tensor> p;
  for (const auto& [name, t] : r.rnn->named_parameters(false)) p.emplace(name, t);
  const std::string prefix = r.path.empty() ? "" : r.path + ".";
  std::string x = value_of(r.x, r2.x, r.start);  // (B, T, I) or (T, B, I)
  if (o.batch_first()) x = node("Transpose", {x}, {attr_ints("perm", {1, 0, 2})});
  for (int64_t layer = 0; layer < o.num_layers(); ++layer) {
    std::vector<Tensor> W, R, B;
    for (int64_t dir = 0; dir < D; ++dir) {
      const std::string sfx = fmt::format("_l{}{}", layer, dir ? "_reverse" : "");
      W.push_back(reorder_gates(p.at("weight_ih" + sfx), order, H));
      R.push_back(reorder_gates(p.at("weight_hh" + sfx), order, H));
      if (o.bias())
        B.push_back(cat({reorder_gates(p.at("bias_ih" + sfx), order, H),
                         reorder_gates(p.at("bias_hh" + sfx), order, H)},
                        0));
    }
    // Initializers named after the parameters they are built from: "rnn.weight_ih_l0:onnx".
    std::vector<std::string> ins{
        x, constant(fmt::format("{}weight_ih_l{}:onnx", prefix, layer), stack(W, 0)),
        constant(fmt::format("{}weight_hh_l{}:onnx", prefix, layer), stack(R, 0))};
    if (o.bias())
      ins.push_back(constant(fmt::format("{}bias_l{}:onnx", prefix, layer), stack(B, 0)));
    std::vector<AttributeProto> attrs{
        attr_int("hidden_size", H), attr_string("direction", D == 2 ? "bidirectional" : "forward")};
    if (!r.lstm) attrs.push_back(attr_int("linear_before_reset", 1));      // PyTorch's GRU form
    std::string y = node(r.lstm ? "LSTM" : "GRU", ins, std::move(attrs));  // (T, D, B, H)
    if (D == 1) {
      x = node("Squeeze", {y, constant_ints({1})});
    } else {
      x = node("Reshape", {node("Transpose", {y}, {attr_ints("perm", {0, 2, 1, 3})}),
                           constant_ints({0, 0, -1})});  // (T, B, 2H)
    }
  }
  if (o.batch_first()) x = node("Transpose", {x}, {attr_ints("perm", {1, 0, 2})});
  node("Identity", {x}, {}, {output_name(r.output)});
}

std::vector<RnnRegion> find_rnn_regions(nn::Module& root, const TraceResult& t,
                                        const std::vector<Tensor>& graph_inputs) {
  std::unordered_map<const TensorImpl*, size_t> producer;
  for (size_t i = 0; i < t.events.size(); ++i)
    for (const Tensor& o : t.events[i].outputs)
      if (o.defined()) producer.emplace(o.impl(), i);
  auto is_zero_leaf = [&](const Tensor& s) {
    if (!s.defined() || producer.count(s.impl())) return false;
    for (const Tensor& g : graph_inputs)
      if (g.impl() == s.impl()) return false;
    for (double v : s.to(kFloat64).to_vector<double>())
      if (v != 0.0) return false;
    return true;
  };
  std::vector<RnnRegion> regions;
  for (const auto& [path, m] : root.named_modules()) {
    auto* rnn = dynamic_cast<nn::RNNBase*>(m.get());
    if (!rnn) continue;
    const bool lstm = dynamic_cast<nn::LSTM*>(rnn) != nullptr;
    const bool bf = rnn->options().batch_first();
    const TensorImpl* w0 = nullptr;
    for (const auto& [name, p] : rnn->named_parameters(false))
      if (name == "weight_ih_l0") w0 = p.impl();
    const size_t selects = lstm ? 2 : 1, before = selects + (bf ? 1 : 0);
    for (size_t i = before; i < t.events.size(); ++i) {
      const TraceEvent& e = t.events[i];
      if (e.name != "linear" || e.inputs.size() < 2 || e.inputs[1].impl() != w0) continue;
      const size_t start = i - before;
      bool ok = !bf || t.events[start].name == "transpose";
      for (size_t s = i - selects; ok && s < i; ++s)
        ok = t.events[s].name == "select" && is_zero_leaf(t.events[s].inputs[0]);
      if (!ok) continue;
      RnnRegion r{start, 0, rnn, path, lstm, bf ? t.events[start].inputs[0] : e.inputs[0], {}};
      if (r.x.dim() != 3) continue;
      // Replay the module alone on the same input: its events are the region's.
      std::vector<TraceEvent> sub;
      Tensor y;
      {
        Tracer replay;
        y = rnn->forward(r.x);
        sub = replay.events();
      }
      if (start + sub.size() > t.events.size()) continue;
      for (size_t k = 0; ok && k < sub.size(); ++k) ok = sub[k].name == t.events[start + k].name;
      // The traced output: the event output at the position where the replay produced y.
      for (size_t k = 0; ok && k < sub.size() && !r.output.defined(); ++k)
        for (size_t j = 0; j < sub[k].outputs.size(); ++j)
          if (sub[k].outputs[j].impl() == y.impl()) r.output = t.events[start + k].outputs.at(j);
      if (!ok || !r.output.defined()) continue;
      r.count = sub.size();
      std::unordered_set<const TensorImpl*> inside;
      for (size_t k = start; k < start + r.count; ++k)
        for (const Tensor& o : t.events[k].outputs)
          if (o.defined() && o.impl() != r.output.impl()) inside.insert(o.impl());
      bool escapes = inside.count(t.output.impl()) != 0;
      for (size_t k = start + r.count; k < t.events.size() && !escapes; ++k)
        for (const Tensor& in : t.events[k].inputs)
          escapes = escapes || (in.defined() && inside.count(in.impl()));
      if (!escapes) regions.push_back(std::move(r));
    }
  }
  std::sort(regions.begin(), regions.end(),
            [](const RnnRegion& a, const RnnRegion& b) { return a.start < b.start; });
  return regions;
}

}  // namespace kiln::onnx::export_detail
