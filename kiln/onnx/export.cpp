// ONNX export: two traces of one forward pass -> an ONNX GraphProto, through one op table.
#include "kiln/onnx/export.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <numbers>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/autograd/op.h"
#include "kiln/io/atomic_file.h"
#include "kiln/nn/rnn.h"
#include "kiln/onnx/proto.h"
#include "kiln/tensor/error.h"

namespace kiln::onnx {
namespace {

using detail::pb::AttributeProto;
using detail::pb::GraphProto;
using detail::pb::ModelProto;
using detail::pb::NodeProto;
using detail::pb::TensorProto;
using detail::pb::ValueInfoProto;

int32_t onnx_type(DType t) {
  switch (t) {
    case DType::Bool:
      return TensorProto::BOOL;
    case DType::UInt8:
      return TensorProto::UINT8;
    case DType::Int32:
      return TensorProto::INT32;
    case DType::Int64:
      return TensorProto::INT64;
    case DType::Float32:
      return TensorProto::FLOAT;
    case DType::Float64:
      return TensorProto::DOUBLE;
  }
  throw Error("export_model: unknown dtype");
}

// float32 -> IEEE binary16 bits, round to nearest even (overflow -> inf, NaN kept).
uint16_t to_half(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t exp = (x >> 23) & 0xFFu;
  uint32_t mant = x & 0x7FFFFFu;
  if (exp == 0xFF) return static_cast<uint16_t>(sign | 0x7C00u | (mant ? 0x200u : 0u));
  const int32_t e = static_cast<int32_t>(exp) - 127 + 15;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7C00u);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    const uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: correct
  return static_cast<uint16_t>(sign | h);
}

std::string dims_str(const Shape& s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

// ---------------------------------------------------------------- attributes
AttributeProto attr_int(const std::string& name, int64_t v) {
  AttributeProto a;
  a.set_name(name);
  a.set_type(AttributeProto::INT);
  a.set_i(v);
  return a;
}
AttributeProto attr_float(const std::string& name, double v) {
  AttributeProto a;
  a.set_name(name);
  a.set_type(AttributeProto::FLOAT);
  a.set_f(static_cast<float>(v));
  return a;
}
AttributeProto attr_ints(const std::string& name, const std::vector<int64_t>& v) {
  AttributeProto a;
  a.set_name(name);
  a.set_type(AttributeProto::INTS);
  for (int64_t x : v) a.add_ints(x);
  return a;
}
AttributeProto attr_string(const std::string& name, const std::string& v) {
  AttributeProto a;
  a.set_name(name);
  a.set_type(AttributeProto::STRING);
  a.set_s(v);
  return a;
}

// A traced tensor's shape in both traces: dims that differ follow a dynamic axis.
struct DimPair {
  int64_t a, b;
  bool dynamic() const { return a != b; }
  bool operator==(const DimPair&) const = default;
};

class Exporter;

// An LSTM/GRU module call inside a trace: the events [start, start + count) that its unrolled
// forward recorded. It is written as native ONNX LSTM/GRU nodes, which keep the sequence axis
// dynamic (the unrolled events repeat once per time step).
struct RnnRegion {
  size_t start = 0, count = 0;
  nn::RNNBase* rnn = nullptr;
  std::string path;  // module path from the exported root ("" for the root itself)
  bool lstm = false;
  Tensor x;       // the module's input as traced
  Tensor output;  // the module's output as traced
};

// One step of the lowered program: a single trace event or a whole RNN region.
struct Item {
  bool region = false;
  size_t index = 0;  // event index, or index into the regions
};

/// One trace event being lowered: its inputs/outputs in both traces plus node-building helpers.
class Lowering {
 public:
  Lowering(Exporter& ex, size_t index, const TraceEvent& e, const TraceEvent& e2)
      : ex_(ex), index_(index), e_(e), e2_(e2) {}

  const TraceEvent& event() const { return e_; }
  size_t num_inputs() const { return e_.inputs.size(); }
  bool has_input(size_t i) const { return i < e_.inputs.size() && e_.inputs[i].defined(); }
  const Tensor& input(size_t i) const { return e_.inputs.at(i); }
  DType in_dtype(size_t i) const { return e_.inputs.at(i).dtype(); }
  int64_t in_rank(size_t i) const { return e_.inputs.at(i).dim(); }
  std::vector<DimPair> in_dims(size_t i) const { return dims(e_.inputs.at(i), e2_.inputs.at(i)); }
  /// The ONNX value name of input i ("" for an undefined optional input).
  std::string in(size_t i);
  /// The ONNX value name for output i.
  std::string out(size_t i = 0);

  // Attributes as recorded. `fixed_*` throws when the value differs between the traces.
  int64_t attr_int(const std::string& name) const { return fixed<int64_t>(name); }
  double attr_float(const std::string& name) const { return fixed<double>(name); }
  std::string attr_string(const std::string& name) const { return fixed<std::string>(name); }
  std::vector<int64_t> attr_ints(const std::string& name) const {
    return fixed<std::vector<int64_t>>(name);
  }
  bool has_attr(const std::string& name) const {
    for (const auto& [k, v] : e_.attrs)
      if (k == name) return true;
    return false;
  }
  /// An int-vector attribute in both traces (for sizes that may follow a dynamic axis).
  std::pair<std::vector<int64_t>, std::vector<int64_t>> attr_ints_both(
      const std::string& name) const {
    return {attr<std::vector<int64_t>>(e_.attrs, name),
            attr<std::vector<int64_t>>(e2_.attrs, name)};
  }
  std::pair<int64_t, int64_t> attr_int_both(const std::string& name) const {
    return {attr<int64_t>(e_.attrs, name), attr<int64_t>(e2_.attrs, name)};
  }

  /// Appends a node; returns its (first) output name, fresh unless `outputs` is given.
  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   std::vector<AttributeProto> attrs = {}, std::vector<std::string> outputs = {});
  /// Scalar / 1-D constants (initializers).
  std::string scalar(double v, DType dtype);
  std::string ints(const std::vector<int64_t>& v);
  /// A 1-D int64 shape value: static dims as constants, dynamic ones read from the shape of
  /// `x` (a value of this event) or of a graph input with the same size in both traces.
  std::string shape_value(const std::vector<DimPair>& dims);

  [[noreturn]] void fail(const std::string& why) const;
  int64_t opset() const;

 private:
  template <typename T>
  T fixed(const std::string& name) const {
    const T& a = attr<T>(e_.attrs, name);
    if (!(a == attr<T>(e2_.attrs, name)))
      fail(
          fmt::format("attribute '{}' changes with a dynamic axis, which this op's export does "
                      "not support",
                      name));
    return a;
  }
  static std::vector<DimPair> dims(const Tensor& a, const Tensor& b) {
    std::vector<DimPair> d;
    for (int64_t i = 0; i < a.dim(); ++i) d.push_back({a.size(i), b.size(i)});
    return d;
  }

  Exporter& ex_;
  size_t index_;
  const TraceEvent& e_;
  const TraceEvent& e2_;
};

using Lower = std::function<void(Lowering&)>;

// ---------------------------------------------------------------- the exporter
class Exporter {
 public:
  Exporter(nn::Module& module, const ExportOptions& o) : module_(module), o_(o) {
    for (const auto& [name, t] : module.named_parameters()) state_.emplace(t.impl(), name);
    for (const auto& [name, t] : module.named_buffers()) state_.emplace(t.impl(), name);
  }

  ModelProto build(const std::vector<Tensor>& inputs1, const std::vector<Tensor>& inputs2,
                   const std::vector<TraceEvent>& ev1, const std::vector<TraceEvent>& ev2,
                   const Tensor& out1, const Tensor& out2, const std::vector<std::string>& in_names,
                   const std::string& out_name, const std::vector<Item>& items1,
                   const std::vector<Item>& items2, const std::vector<RnnRegion>& regions1,
                   const std::vector<RnnRegion>& regions2);
  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   std::vector<AttributeProto> attrs = {}, std::vector<std::string> outputs = {});
  void lower_rnn(const RnnRegion& r, const RnnRegion& r2);

  std::string value_of(const Tensor& t, const Tensor& t2, size_t event_index);
  std::string fresh(std::string_view hint) { return fmt::format("{}_{}", hint, counter_++); }
  GraphProto& graph() { return *graph_; }
  std::string output_name(const Tensor& t) {
    auto it = names_.find(t.impl());
    if (it != names_.end()) return it->second;
    std::string n = fresh(current_op_);
    names_.emplace(t.impl(), n);
    return n;
  }
  std::string constant(const std::string& name, const Tensor& values);
  std::string constant_ints(const std::vector<int64_t>& v);
  std::string constant_scalar(double v, DType dtype);
  /// Where a dim of size (a, b) across the traces can be read: (value name, axis).
  std::optional<std::pair<std::string, int64_t>> find_dim(
      DimPair d, const std::vector<std::pair<Tensor, Tensor>>& near);
  std::string shape_value(const std::vector<DimPair>& dims,
                          const std::vector<std::pair<Tensor, Tensor>>& near,
                          const std::string& what);
  std::string module_near(size_t event_index) const;
  int64_t opset() const { return o_.opset; }
  const std::vector<TraceEvent>* events_ = nullptr;
  std::string current_op_;

 private:
  nn::Module& module_;
  const ExportOptions& o_;
  std::unordered_map<const TensorImpl*, std::string> state_;  // parameter / buffer names
  std::unordered_map<const TensorImpl*, std::string> names_;  // value names assigned so far
  std::vector<std::pair<Tensor, Tensor>> graph_inputs_;       // (trace 1, trace 2)
  std::vector<std::string> graph_input_names_;
  std::unordered_map<std::string, std::string> const_cache_;
  std::set<std::string> used_names_;
  GraphProto* graph_ = nullptr;
  int64_t counter_ = 0;
  int64_t const_counter_ = 0;
  // "const_<n>" not yet used by a parameter, buffer or value (an imported model's buffers may
  // already carry such names from an earlier export).
  std::string fresh_const_name() {
    std::string n;
    do n = fmt::format("const_{}", const_counter_++);
    while (used_names_.count(n));
    return n;
  }
};

std::string Exporter::module_near(size_t event_index) const {
  // The module an op belongs to is named by the nearest parameter an op used (at or before it).
  for (size_t i = event_index + 1; i-- > 0;) {
    for (const Tensor& t : (*events_)[i].inputs) {
      if (!t.defined()) continue;
      auto it = state_.find(t.impl());
      if (it == state_.end()) continue;
      const std::string& n = it->second;
      const size_t dot = n.rfind('.');
      std::string path = dot == std::string::npos ? std::string("<root>") : n.substr(0, dot);
      return i == event_index ? fmt::format("in module '{}'", path)
                              : fmt::format("after module '{}'", path);
    }
  }
  return fmt::format("in {}", module_.name());
}

void Lowering::fail(const std::string& why) const {
  std::vector<std::string> shapes;
  for (const Tensor& t : e_.inputs)
    shapes.push_back(t.defined() ? dims_str(t.shape()) : "undefined");
  throw Error(fmt::format("export_model: op '{}' (trace event {}, {}; inputs {}): {}", e_.name,
                          index_, ex_.module_near(index_), fmt::join(shapes, ", "), why));
}

std::string Lowering::in(size_t i) {
  if (!has_input(i)) return "";
  return ex_.value_of(e_.inputs[i], e2_.inputs[i], index_);
}
int64_t Lowering::opset() const {
  return ex_.opset();
}
std::string Lowering::out(size_t i) {
  return ex_.output_name(e_.outputs.at(i));
}

std::string Lowering::node(const std::string& op, const std::vector<std::string>& inputs,
                           std::vector<AttributeProto> attrs, std::vector<std::string> outputs) {
  return ex_.node(op, inputs, std::move(attrs), std::move(outputs));
}
std::string Exporter::node(const std::string& op, const std::vector<std::string>& inputs,
                           std::vector<AttributeProto> attrs, std::vector<std::string> outputs) {
  NodeProto* n = graph_->add_node();
  n->set_op_type(op);
  n->set_name(fresh(op));
  for (const auto& s : inputs) n->add_input(s);
  if (outputs.empty()) outputs.push_back(fresh(op));
  for (const auto& s : outputs) n->add_output(s);
  for (auto& a : attrs) *n->add_attribute() = std::move(a);
  return outputs[0];
}

// Rows of a (G·H, *) gate-stacked weight with its G blocks of H rows taken in `order`.
Tensor reorder_gates(const Tensor& w, const std::vector<int64_t>& order, int64_t H) {
  std::vector<Tensor> blocks;
  for (int64_t g : order) blocks.push_back(w.narrow(0, g * H, H));
  return cat(blocks, 0);
}

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
std::string Lowering::scalar(double v, DType dtype) {
  return ex_.constant_scalar(v, dtype);
}
std::string Lowering::ints(const std::vector<int64_t>& v) {
  return ex_.constant_ints(v);
}
std::string Lowering::shape_value(const std::vector<DimPair>& d) {
  std::vector<std::pair<Tensor, Tensor>> near;
  for (size_t i = 0; i < e_.inputs.size(); ++i)
    if (e_.inputs[i].defined()) near.emplace_back(e_.inputs[i], e2_.inputs[i]);
  try {
    return ex_.shape_value(d, near, e_.name);
  } catch (const Error& err) {
    fail(err.what());
  }
}

std::string Exporter::constant(const std::string& name, const Tensor& values) {
  TensorProto* t = graph_->add_initializer();
  t->set_name(name);
  Array a = values.data().contiguous();
  for (int64_t d : a.shape()) t->add_dims(d);
  if (o_.fp16_weights && a.dtype() == kFloat32 && state_.count(values.impl())) {
    t->set_data_type(TensorProto::FLOAT16);
    std::string raw(static_cast<size_t>(a.numel()) * 2, '\0');
    const float* p = a.data<float>();
    for (int64_t i = 0; i < a.numel(); ++i) {
      const uint16_t h = to_half(p[i]);
      std::memcpy(raw.data() + 2 * i, &h, 2);
    }
    t->set_raw_data(std::move(raw));
    NodeProto* n = graph_->add_node();
    n->set_op_type("Cast");
    n->set_name(name + "/to_float");
    n->add_input(name);
    n->add_output(name + "/float");
    *n->add_attribute() = attr_int("to", TensorProto::FLOAT);
    return name + "/float";
  }
  t->set_data_type(onnx_type(a.dtype()));
  t->set_raw_data(std::string(static_cast<const char*>(a.raw_data()), a.nbytes()));
  return name;
}

std::string Exporter::constant_ints(const std::vector<int64_t>& v) {
  std::string key = fmt::format("i64[{}]", fmt::join(v, ","));
  auto it = const_cache_.find(key);
  if (it != const_cache_.end()) return it->second;
  std::string name = fresh_const_name();
  constant(name, from_vector(v, {static_cast<int64_t>(v.size())}));
  const_cache_.emplace(key, name);
  return name;
}

std::string Exporter::constant_scalar(double v, DType dtype) {
  std::string key = fmt::format("{}:{}", static_cast<int>(dtype), v);
  auto it = const_cache_.find(key);
  if (it != const_cache_.end()) return it->second;
  std::string name = fresh_const_name();
  constant(name, scalar_tensor(v, dtype));
  const_cache_.emplace(key, name);
  return name;
}

std::optional<std::pair<std::string, int64_t>> Exporter::find_dim(
    DimPair d, const std::vector<std::pair<Tensor, Tensor>>& near) {
  auto search = [&](const Tensor& a, const Tensor& b) -> std::optional<int64_t> {
    for (int64_t j = 0; j < a.dim(); ++j)
      if (a.size(j) == d.a && b.size(j) == d.b) return j;
    return std::nullopt;
  };
  for (size_t i = 0; i < graph_inputs_.size(); ++i)
    if (auto j = search(graph_inputs_[i].first, graph_inputs_[i].second))
      return std::make_pair(graph_input_names_[i], *j);
  for (const auto& [a, b] : near) {
    auto it = names_.find(a.impl());
    if (it == names_.end()) continue;
    if (auto j = search(a, b)) return std::make_pair(it->second, *j);
  }
  return std::nullopt;
}

std::string Exporter::shape_value(const std::vector<DimPair>& dims,
                                  const std::vector<std::pair<Tensor, Tensor>>& near,
                                  const std::string& what) {
  std::vector<std::string> pieces;
  std::vector<int64_t> run;  // consecutive static dims
  auto flush = [&] {
    if (!run.empty()) pieces.push_back(constant_ints(run));
    run.clear();
  };
  for (const DimPair& d : dims) {
    if (!d.dynamic()) {
      run.push_back(d.a);
      continue;
    }
    flush();
    auto where = find_dim(d, near);
    KILN_CHECK(where,
               "{}: a size ({} in the first trace, {} in the second) follows a dynamic axis "
               "but is no input's dim (products of dynamic sizes are not supported)",
               what, d.a, d.b);
    NodeProto* sh = graph_->add_node();
    sh->set_op_type("Shape");
    sh->set_name(fresh("Shape"));
    sh->add_input(where->first);
    std::string s = fresh("shape");
    sh->add_output(s);
    NodeProto* g = graph_->add_node();
    g->set_op_type("Gather");
    g->set_name(fresh("Gather"));
    g->add_input(s);
    g->add_input(constant_ints({where->second}));
    std::string dim = fresh("dim");
    g->add_output(dim);
    *g->add_attribute() = attr_int("axis", 0);
    pieces.push_back(dim);
  }
  flush();
  if (pieces.size() == 1) return pieces[0];
  NodeProto* c = graph_->add_node();
  c->set_op_type("Concat");
  c->set_name(fresh("Concat"));
  for (const auto& p : pieces) c->add_input(p);
  std::string out = fresh("shape");
  c->add_output(out);
  *c->add_attribute() = attr_int("axis", 0);
  return out;
}

std::string Exporter::value_of(const Tensor& t, const Tensor& t2, size_t event_index) {
  auto it = names_.find(t.impl());
  if (it != names_.end()) return it->second;
  auto st = state_.find(t.impl());
  std::string name;
  if (st != state_.end()) {
    name = constant(st->second, t);
  } else {
    // A tensor made inside forward (zeros for an RNN state, a mask, a table): a constant.
    const TraceEvent& ev = (*events_)[event_index];
    bool dynamic = t.shape() != t2.shape();
    if (!dynamic) {
      const Tensor a = t.to(kFloat64), b = t2.to(kFloat64);
      std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
      bool same = true;
      for (size_t i = 0; i < va.size(); ++i)
        same = same && (va[i] == vb[i] || (std::isnan(va[i]) && std::isnan(vb[i])));
      KILN_CHECK(same,
                 "export_model: a tensor {} used by op '{}' (trace event {}, {}) holds values that "
                 "depend on the input but was not computed by traced ops (computed on raw arrays?)",
                 dims_str(t.shape()), ev.name, event_index, module_near(event_index));
      name = constant(
          t.name().empty() || used_names_.count(t.name()) ? fresh_const_name() : t.name(), t);
    } else {
      // A shape that follows a dynamic axis: only a constant fill can be rebuilt at run time.
      std::vector<double> va = t.to(kFloat64).to_vector<double>();
      const bool uniform =
          va.empty() || std::all_of(va.begin(), va.end(), [&](double v) { return v == va[0]; });
      KILN_CHECK(uniform,
                 "export_model: a tensor of shape {} made inside forward for op '{}' (trace event "
                 "{}, {}) has a size that follows a dynamic axis and values that are not one "
                 "constant; only constant fills (zeros, ones, full) can be exported with dynamic "
                 "sizes",
                 dims_str(t.shape()), ev.name, event_index, module_near(event_index));
      std::vector<DimPair> d;
      for (int64_t i = 0; i < t.dim(); ++i) d.push_back({t.size(i), t2.size(i)});
      std::string shape = shape_value(d, {}, ev.name);
      NodeProto* n = graph_->add_node();
      n->set_op_type("ConstantOfShape");
      n->set_name(fresh("ConstantOfShape"));
      n->add_input(shape);
      name = fresh("fill");
      n->add_output(name);
      AttributeProto a;
      a.set_name("value");
      a.set_type(AttributeProto::TENSOR);
      TensorProto* v = a.mutable_t();
      v->set_data_type(onnx_type(t.dtype()));
      v->add_dims(1);
      Array one = scalar_tensor(va.empty() ? 0.0 : va[0], t.dtype()).data().reshape({1});
      v->set_raw_data(std::string(static_cast<const char*>(one.raw_data()), one.nbytes()));
      *n->add_attribute() = std::move(a);
    }
  }
  names_.emplace(t.impl(), name);
  used_names_.insert(name);
  return name;
}

// ---------------------------------------------------------------- lowerings
Lower unary(std::string op) {
  return [op](Lowering& l) { l.node(op, {l.in(0)}, {}, {l.out()}); };
}
Lower binary(std::string op) {
  return [op](Lowering& l) { l.node(op, {l.in(0), l.in(1)}, {}, {l.out()}); };
}
// x (op) scalar attribute `value`; `scalar_first` for s - x, s / x.
Lower with_scalar(std::string op, std::string attr, bool scalar_first = false) {
  return [op, attr, scalar_first](Lowering& l) {
    std::string x = l.in(0), s = l.scalar(l.attr_float(attr), l.in_dtype(0));
    l.node(op, scalar_first ? std::vector{s, x} : std::vector{x, s}, {}, {l.out()});
  };
}
// Comparisons: binary, or against the scalar attribute `value` when there is one input.
Lower compare(std::string op, bool negate = false) {
  return [op, negate](Lowering& l) {
    std::string b = l.num_inputs() > 1 ? l.in(1) : l.scalar(l.attr_float("value"), l.in_dtype(0));
    if (!negate) {
      l.node(op, {l.in(0), b}, {}, {l.out()});
    } else {
      l.node("Not", {l.node(op, {l.in(0), b})}, {}, {l.out()});
    }
  };
}
// Reductions with an `axes` attribute (opset 13..17: ReduceSum takes axes as an input).
std::vector<AttributeProto> reduce_attrs(Lowering& l, bool keep) {
  std::vector<AttributeProto> a{attr_int("keepdims", keep)};
  auto axes = l.attr_ints("axes");
  if (!axes.empty()) a.push_back(attr_ints("axes", axes));
  return a;
}
Lower reduce(std::string op) {
  return [op](Lowering& l) {
    const bool keep = l.attr_int("keepdims") != 0;
    if (op == "ReduceSum") {
      auto axes = l.attr_ints("axes");
      std::vector<std::string> ins{l.in(0)};
      if (!axes.empty()) ins.push_back(l.ints(axes));
      l.node(op, ins, {attr_int("keepdims", keep)}, {l.out()});
      return;
    }
    l.node(op, {l.in(0)}, reduce_attrs(l, keep), {l.out()});
  };
}

void lower_var(Lowering& l) {
  const bool keep = l.attr_int("keepdims") != 0;
  const int64_t correction = l.attr_int("correction");
  auto axes = l.attr_ints("axes");
  auto d = l.in_dims(0);
  int64_t n = 1;
  for (size_t i = 0; i < d.size(); ++i) {
    const bool reduced =
        axes.empty() || std::any_of(axes.begin(), axes.end(), [&](int64_t a) {
          return (a < 0 ? a + static_cast<int64_t>(d.size()) : a) == static_cast<int64_t>(i);
        });
    if (!reduced) continue;
    if (d[i].dynamic()) l.fail("variance over a dynamic axis is not supported");
    n *= d[i].a;
  }
  std::vector<AttributeProto> keep1{attr_int("keepdims", 1)};
  if (!axes.empty()) keep1.push_back(attr_ints("axes", axes));
  const DType t = l.in_dtype(0);
  std::string x = l.in(0);
  std::string m = l.node("ReduceMean", {x}, keep1);
  std::string dx = l.node("Sub", {x, m});
  std::string sq = l.node("Mul", {dx, dx});
  std::string mean_sq = l.node("ReduceMean", {sq}, reduce_attrs(l, keep));
  const double scale =
      static_cast<double>(n) / static_cast<double>(std::max<int64_t>(n - correction, 0));
  l.node("Mul", {mean_sq, l.scalar(scale, t)}, {}, {l.out()});
}

void lower_norm(Lowering& l) {
  const double p = l.attr_float("p");
  const bool keep = l.attr_int("keepdims") != 0;
  if (p == 2.0) {
    l.node("ReduceL2", {l.in(0)}, reduce_attrs(l, keep), {l.out()});
  } else if (p == 1.0) {
    l.node("ReduceL1", {l.in(0)}, reduce_attrs(l, keep), {l.out()});
  } else {
    l.fail(fmt::format("norm with p = {} has no ONNX mapping (p = 1 and 2 do)", p));
  }
}

// max / min along an axis: (values, indices).
Lower reduce_with_index(std::string reduce_op, std::string arg_op) {
  return [reduce_op, arg_op](Lowering& l) {
    const int64_t axis = l.attr_int("axis"), keep = l.attr_int("keepdims");
    l.node(reduce_op, {l.in(0)}, {attr_ints("axes", {axis}), attr_int("keepdims", keep)},
           {l.out(0)});
    l.node(arg_op, {l.in(0)}, {attr_int("axis", axis), attr_int("keepdims", keep)}, {l.out(1)});
  };
}
Lower arg(std::string op) {
  return [op](Lowering& l) {
    l.node(op, {l.in(0)},
           {attr_int("axis", l.attr_int("axis")), attr_int("keepdims", l.attr_int("keepdims"))},
           {l.out()});
  };
}

void lower_reshape(Lowering& l) {
  auto [s1, s2] = l.attr_ints_both("shape");
  auto x = l.in_dims(0);
  std::vector<int64_t> spec;
  std::vector<DimPair> full;
  int64_t unknown = 0;
  for (size_t i = 0; i < s1.size(); ++i) {
    DimPair d{s1[i], s2[i]};
    full.push_back(d);
    if (!d.dynamic()) {
      spec.push_back(d.a);
    } else if (i < x.size() && x[i] == d) {
      spec.push_back(0);  // copy the input's dim
    } else {
      spec.push_back(-1);
      ++unknown;
    }
  }
  const bool has_zero = std::any_of(full.begin(), full.end(), [](DimPair d) { return d.a == 0; });
  std::string shape = unknown <= 1 && !has_zero ? l.ints(spec) : l.shape_value(full);
  l.node("Reshape", {l.in(0), shape}, {}, {l.out()});
}

void lower_expand(Lowering& l) {
  auto [s1, s2] = l.attr_ints_both("shape");
  auto x = l.in_dims(0);
  std::vector<DimPair> target;
  const size_t off = s1.size() - x.size();
  bool dynamic = false;
  for (size_t i = 0; i < s1.size(); ++i) {
    DimPair d{s1[i], s2[i]};
    // Expand broadcasts both ways: 1 keeps the input's own (possibly dynamic) size.
    if (i >= off && x[i - off] == d) d = {1, 1};
    dynamic = dynamic || d.dynamic();
    target.push_back(d);
  }
  std::vector<int64_t> st;
  for (auto d : target) st.push_back(d.a);
  l.node("Expand", {l.in(0), dynamic ? l.shape_value(target) : l.ints(st)}, {}, {l.out()});
}

void lower_slice(Lowering& l) {
  auto [st1, st2] = l.attr_ints_both("starts");
  auto [en1, en2] = l.attr_ints_both("ends");
  auto axes = l.attr_ints("axes");
  auto steps = l.attr_ints("steps");
  auto x = l.in_dims(0);
  // Bounds are static, relative to the end of a dynamic axis, or (a slice of a table up to a
  // dynamic length, e.g. positions[:T]) read from a dynamic dim at run time.
  std::vector<std::string> bounds;
  for (const auto& [b1, b2, is_end] : {std::tuple{st1, st2, false}, std::tuple{en1, en2, true}}) {
    std::vector<int64_t> fixed;
    bool run_time = false;
    for (size_t i = 0; i < axes.size(); ++i) {
      const DimPair n = x[static_cast<size_t>(axes[i])];
      const int64_t a = b1[i], b = b2[i];
      if (a == b && !n.dynamic()) {
        fixed.push_back(a);
      } else if (is_end && a == n.a && b == n.b) {
        fixed.push_back(std::numeric_limits<int64_t>::max());
      } else if (a - n.a == b - n.b) {
        fixed.push_back(a - n.a);
      } else if (a == b && a < n.a && a < n.b) {
        fixed.push_back(a);
      } else if (axes.size() == 1) {
        run_time = true;
      } else {
        l.fail("a slice bound follows a dynamic axis in a way ONNX Slice cannot express");
      }
    }
    bounds.push_back(run_time ? l.shape_value({DimPair{b1[0], b2[0]}}) : l.ints(fixed));
  }
  l.node("Slice", {l.in(0), bounds[0], bounds[1], l.ints(axes), l.ints(steps)}, {}, {l.out()});
}

void lower_select(Lowering& l) {
  const int64_t axis = l.attr_int("axis");
  auto [i1, i2] = l.attr_int_both("index");
  const DimPair n = l.in_dims(0)[static_cast<size_t>(axis)];
  int64_t index = i1;
  if (n.dynamic() && i1 != i2) {
    if (i1 - n.a != i2 - n.b) l.fail("the selected index follows a dynamic axis");
    index = i1 - n.a;
  }
  // Gather with a 0-d index drops the axis, as select does.
  std::string idx = l.scalar(static_cast<double>(index), kInt64);
  l.node("Gather", {l.in(0), idx}, {attr_int("axis", axis)}, {l.out()});
}

void lower_linear(Lowering& l) {
  const bool bias = l.has_input(2);
  if (l.in_rank(0) == 2) {
    std::vector<std::string> ins{l.in(0), l.in(1)};
    if (bias) ins.push_back(l.in(2));
    l.node("Gemm", ins, {attr_int("transB", 1)}, {l.out()});
    return;
  }
  std::string wt = l.node("Transpose", {l.in(1)}, {attr_ints("perm", {1, 0})});
  if (!bias) {
    l.node("MatMul", {l.in(0), wt}, {}, {l.out()});
    return;
  }
  std::string y = l.node("MatMul", {l.in(0), wt});
  l.node("Add", {y, l.in(2)}, {}, {l.out()});
}

void lower_gelu(Lowering& l) {
  const DType t = l.in_dtype(0);
  std::string x = l.in(0);
  std::string inner;
  if (l.attr_string("approximate") == "tanh") {
    // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
    std::string x3 = l.node("Mul", {l.node("Mul", {x, x}), x});
    std::string u = l.node("Add", {x, l.node("Mul", {x3, l.scalar(0.044715, t)})});
    inner = l.node("Tanh", {l.node("Mul", {u, l.scalar(std::sqrt(2.0 / std::numbers::pi), t)})});
  } else {
    // 0.5·x·(1 + erf(x/√2)) — the Gelu op needs opset 20.
    inner = l.node("Erf", {l.node("Div", {x, l.scalar(std::numbers::sqrt2, t)})});
  }
  std::string half_x = l.node("Mul", {x, l.scalar(0.5, t)});
  l.node("Mul", {half_x, l.node("Add", {inner, l.scalar(1.0, t)})}, {}, {l.out()});
}

void lower_clamp(Lowering& l) {
  const DType t = l.in_dtype(0);
  l.node("Clip", {l.in(0), l.scalar(l.attr_float("min"), t), l.scalar(l.attr_float("max"), t)}, {},
         {l.out()});
}

void lower_masked_fill(Lowering& l) {
  std::string mask = l.in(1);
  if (l.in_dtype(1) != kBool) mask = l.node("Cast", {mask}, {attr_int("to", TensorProto::BOOL)});
  l.node("Where", {mask, l.scalar(l.attr_float("value"), l.in_dtype(0)), l.in(0)}, {}, {l.out()});
}

void lower_stack(Lowering& l) {
  const int64_t axis = l.attr_int("axis");
  std::vector<std::string> ins;
  for (size_t i = 0; i < l.num_inputs(); ++i)
    ins.push_back(l.node("Unsqueeze", {l.in(i), l.ints({axis})}));
  l.node("Concat", ins, {attr_int("axis", axis)}, {l.out()});
}

void lower_split(Lowering& l) {
  std::vector<std::string> outs;
  for (size_t i = 0; i < l.event().outputs.size(); ++i) outs.push_back(l.out(i));
  l.node("Split", {l.in(0), l.ints(l.attr_ints("split"))}, {attr_int("axis", l.attr_int("axis"))},
         outs);
}

void lower_topk(Lowering& l) {
  l.node("TopK", {l.in(0), l.ints({l.attr_int("k")})},
         {attr_int("axis", l.attr_int("axis")), attr_int("largest", l.attr_int("largest")),
          attr_int("sorted", 1)},
         {l.out(0), l.out(1)});
}

void lower_pad(Lowering& l) {
  if (l.attr_string("mode") != "constant") l.fail("only constant padding is exported");
  l.node("Pad",
         {l.in(0), l.ints(l.attr_ints("pads")), l.scalar(l.attr_float("value"), l.in_dtype(0))},
         {attr_string("mode", "constant")}, {l.out()});
}

void lower_layer_norm(Lowering& l) {
  const int64_t axis = l.attr_int("axis");
  const double eps = l.attr_float("epsilon");
  const auto shape = l.attr_ints("normalized_shape");
  const DType t = l.in_dtype(0);
  std::string w = l.has_input(1) ? l.in(1) : l.node("Expand", {l.scalar(1.0, t), l.ints(shape)});
  if (l.opset() >= 17) {
    std::vector<std::string> ins{l.in(0), w};
    if (l.has_input(2)) ins.push_back(l.in(2));
    l.node("LayerNormalization", ins, {attr_int("axis", axis), attr_float("epsilon", eps)},
           {l.out()});
    return;
  }
  std::vector<int64_t> axes;
  for (int64_t a = axis; a < l.in_rank(0); ++a) axes.push_back(a);
  std::vector<AttributeProto> keep{attr_ints("axes", axes), attr_int("keepdims", 1)};
  std::string x = l.in(0);
  std::string d = l.node("Sub", {x, l.node("ReduceMean", {x}, keep)});
  std::string var = l.node("ReduceMean", {l.node("Mul", {d, d})}, keep);
  std::string rstd =
      l.node("Reciprocal", {l.node("Sqrt", {l.node("Add", {var, l.scalar(eps, t)})})});
  std::string y = l.node("Mul", {l.node("Mul", {d, rstd}), w});
  if (l.has_input(2)) {
    l.node("Add", {y, l.in(2)}, {}, {l.out()});
  } else {
    l.node("Identity", {y}, {}, {l.out()});
  }
}

void lower_dropout(Lowering& l) {
  if (l.attr_int("training") != 0 && l.attr_float("p") > 0)
    l.fail(
        "dropout in training mode (export traces in eval mode; is a submodule forced to train?)");
  l.node("Identity", {l.in(0)}, {}, {l.out()});
}

void lower_batch_norm(Lowering& l) {
  if (l.attr_int("training") != 0)
    l.fail("batch_norm in training mode (export needs running statistics, eval mode)");
  if (!l.has_input(3) || !l.has_input(4))
    l.fail("batch_norm without running statistics (track_running_stats=false) has no eval form");
  const DType t = l.in_dtype(0);
  const int64_t C = l.input(3).numel();
  std::string w = l.has_input(1) ? l.in(1) : l.node("Expand", {l.scalar(1.0, t), l.ints({C})});
  std::string b = l.has_input(2) ? l.in(2) : l.node("Expand", {l.scalar(0.0, t), l.ints({C})});
  l.node("BatchNormalization", {l.in(0), w, b, l.in(3), l.in(4)},
         {attr_float("epsilon", l.attr_float("epsilon"))}, {l.out()});
}

void lower_attention(Lowering& l) {
  if (l.attr_int("training") != 0 && l.attr_float("dropout_p") > 0)
    l.fail("attention dropout in training mode");
  const DType t = l.in_dtype(0);
  const int64_t r = l.in_rank(1);
  std::vector<int64_t> perm;
  for (int64_t i = 0; i < r; ++i) perm.push_back(i);
  std::swap(perm[static_cast<size_t>(r - 1)], perm[static_cast<size_t>(r - 2)]);
  std::string kt = l.node("Transpose", {l.in(1)}, {attr_ints("perm", perm)});
  std::string s =
      l.node("Mul", {l.node("MatMul", {l.in(0), kt}), l.scalar(l.attr_float("scale"), t)});
  if (l.has_input(3)) {
    std::string m = l.in(3);
    if (l.in_dtype(3) == kBool) {
      m = l.node("Where",
                 {m, l.scalar(0.0, t), l.scalar(-std::numeric_limits<double>::infinity(), t)});
    } else if (l.in_dtype(3) != t) {
      m = l.node("Cast", {m}, {attr_int("to", onnx_type(t))});
    }
    s = l.node("Add", {s, m});
  }
  std::string p = l.node("Softmax", {s}, {attr_int("axis", -1)});
  if (l.has_input(3)) {
    // A fully masked row attends to nothing (zeros), as Kiln's kernel does, not NaN.
    p = l.node("Where", {l.node("IsNaN", {p}), l.scalar(0.0, t), p});
  }
  l.node("MatMul", {p, l.in(2)}, {}, {l.out()});
}

void lower_conv(Lowering& l) {
  std::vector<std::string> ins{l.in(0), l.in(1)};
  if (l.has_input(2)) ins.push_back(l.in(2));
  l.node("Conv", ins,
         {attr_ints("kernel_shape", l.attr_ints("kernel_shape")),
          attr_ints("strides", l.attr_ints("strides")), attr_ints("pads", l.attr_ints("pads")),
          attr_ints("dilations", l.attr_ints("dilations")), attr_int("group", l.attr_int("group"))},
         {l.out()});
}

Lower pool(std::string op) {
  return [op](Lowering& l) {
    std::vector<AttributeProto> a{attr_ints("kernel_shape", l.attr_ints("kernel_shape")),
                                  attr_ints("strides", l.attr_ints("strides")),
                                  attr_ints("pads", l.attr_ints("pads"))};
    if (l.has_attr("count_include_pad"))
      a.push_back(attr_int("count_include_pad", l.attr_int("count_include_pad")));
    l.node(op, {l.in(0)}, std::move(a), {l.out()});
  };
}

void lower_adaptive_avg_pool(Lowering& l) {
  const auto o = l.attr_ints("output_size");
  if (o == std::vector<int64_t>{1, 1}) {
    l.node("GlobalAveragePool", {l.in(0)}, {}, {l.out()});
    return;
  }
  auto d = l.in_dims(0);
  const DimPair h = d[2], w = d[3];
  if (h.dynamic() || w.dynamic() || h.a % o[0] != 0 || w.a % o[1] != 0)
    l.fail(
        fmt::format("adaptive_avg_pool2d to {} needs static spatial sizes divisible by it "
                    "(or output 1x1)",
                    dims_str(o)));
  const std::vector<int64_t> k{h.a / o[0], w.a / o[1]};
  l.node("AveragePool", {l.in(0)}, {attr_ints("kernel_shape", k), attr_ints("strides", k)},
         {l.out()});
}

void lower_cast(Lowering& l) {
  l.node("Cast", {l.in(0)}, {attr_int("to", onnx_type(static_cast<DType>(l.attr_int("to"))))},
         {l.out()});
}

void lower_embedding(Lowering& l) {
  // embedding(weight, ids): rows of weight -> Gather(weight, ids, axis 0).
  l.node("Gather", {l.in(0), l.in(1)}, {attr_int("axis", 0)}, {l.out()});
}

// Composites of a few ONNX ops.
void lower_log1p(Lowering& l) {
  l.node("Log", {l.node("Add", {l.in(0), l.scalar(1.0, l.in_dtype(0))})}, {}, {l.out()});
}
void lower_rsqrt(Lowering& l) {
  l.node("Reciprocal", {l.node("Sqrt", {l.in(0)})}, {}, {l.out()});
}
void lower_square(Lowering& l) {
  l.node("Mul", {l.in(0), l.in(0)}, {}, {l.out()});
}
void lower_silu(Lowering& l) {
  l.node("Mul", {l.in(0), l.node("Sigmoid", {l.in(0)})}, {}, {l.out()});
}
void lower_where(Lowering& l) {
  l.node("Where", {l.in(0), l.in(1), l.in(2)}, {}, {l.out()});
}
void lower_transpose(Lowering& l) {
  l.node("Transpose", {l.in(0)}, {attr_ints("perm", l.attr_ints("perm"))}, {l.out()});
}
// One ONNX op taking every input, with the Kiln attribute `from` (a float) as ONNX `to`.
Lower with_float_attr(std::string op, std::string from, std::string to) {
  return [op, from, to](Lowering& l) {
    l.node(op, {l.in(0)}, {attr_float(to, l.attr_float(from))}, {l.out()});
  };
}
// One ONNX op taking every input, with Kiln's `axis` attribute.
Lower with_axis(std::string op) {
  return [op](Lowering& l) {
    std::vector<std::string> ins;
    for (size_t i = 0; i < l.num_inputs(); ++i) ins.push_back(l.in(i));
    l.node(op, ins, {attr_int("axis", l.attr_int("axis"))}, {l.out()});
  };
}

// The one op table: Kiln op name -> ONNX lowering (one line per op). An op missing here makes
// export fail naming it; adding an op to Kiln = one line here if it is exportable.
const std::unordered_map<std::string, Lower>& op_table() {
  // clang-format off
  static const std::unordered_map<std::string, Lower> kOpTable = {
      {"add",         binary("Add")},
      {"sub",         binary("Sub")},
      {"mul",         binary("Mul")},
      {"div",         binary("Div")},
      {"pow",         binary("Pow")},
      {"maximum",     binary("Max")},
      {"minimum",     binary("Min")},
      {"add_scalar",  with_scalar("Add", "value")},
      {"mul_scalar",  with_scalar("Mul", "value")},
      {"pow_scalar",  with_scalar("Pow", "exponent")},
      {"rsub_scalar", with_scalar("Sub", "value", /*scalar_first=*/true)},
      {"rdiv_scalar", with_scalar("Div", "value", /*scalar_first=*/true)},
      {"neg",         unary("Neg")},
      {"abs",         unary("Abs")},
      {"exp",         unary("Exp")},
      {"log",         unary("Log")},
      {"log1p",       lower_log1p},                  // Log(x + 1)
      {"sqrt",        unary("Sqrt")},
      {"rsqrt",       lower_rsqrt},                  // Reciprocal(Sqrt(x))
      {"square",      lower_square},                 // x * x
      {"reciprocal",  unary("Reciprocal")},
      {"sin",         unary("Sin")},
      {"cos",         unary("Cos")},
      {"erf",         unary("Erf")},
      {"tanh",        unary("Tanh")},
      {"sigmoid",     unary("Sigmoid")},
      {"relu",        unary("Relu")},
      {"leaky_relu",  with_float_attr("LeakyRelu", "alpha", "alpha")},
      {"gelu",        lower_gelu},                   // Erf form (Gelu needs opset 20)
      {"silu",        lower_silu},                   // x * Sigmoid(x)
      {"clamp",       lower_clamp},                  // Clip
      {"where",       lower_where},
      {"masked_fill", lower_masked_fill},            // Where(mask, value, x)
      {"eq",          compare("Equal")},
      {"ne",          compare("Equal", /*negate=*/true)},
      {"lt",          compare("Less")},
      {"le",          compare("LessOrEqual")},
      {"gt",          compare("Greater")},
      {"ge",          compare("GreaterOrEqual")},
      {"logical_not", unary("Not")},
      {"logical_and", binary("And")},
      {"sum",         reduce("ReduceSum")},
      {"mean",        reduce("ReduceMean")},
      {"amax",        reduce("ReduceMax")},
      {"amin",        reduce("ReduceMin")},
      {"var",         lower_var},                    // mean of squared deviations, rescaled
      {"logsumexp",   reduce("ReduceLogSumExp")},
      {"norm",        lower_norm},                   // ReduceL1 / ReduceL2
      {"max",         reduce_with_index("ReduceMax", "ArgMax")},
      {"min",         reduce_with_index("ReduceMin", "ArgMin")},
      {"argmax",      arg("ArgMax")},
      {"argmin",      arg("ArgMin")},
      {"reshape",     lower_reshape},                // also view, flatten, squeeze, unsqueeze
      {"transpose",   lower_transpose},              // also permute
      {"slice",       lower_slice},                  // also narrow
      {"select",      lower_select},                 // Gather with a 0-d index
      {"expand",      lower_expand},
      {"identity",    unary("Identity")},            // contiguous, clone
      {"cast",        lower_cast},
      {"matmul",      binary("MatMul")},
      {"linear",      lower_linear},                 // Gemm (2-D) or MatMul + Add
      {"cat",         with_axis("Concat")},
      {"stack",       lower_stack},                  // Unsqueeze each + Concat
      {"split",       lower_split},                  // also chunk
      {"index_select", with_axis("Gather")},
      {"gather",      with_axis("GatherElements")},
      {"embedding",   lower_embedding},              // Gather(weight, ids)
      {"topk",        lower_topk},
      {"pad",         lower_pad},
      {"softmax",     with_axis("Softmax")},
      {"log_softmax", with_axis("LogSoftmax")},
      {"layer_norm",  lower_layer_norm},             // LayerNormalization (opset 17)
      {"dropout",     lower_dropout},                // Identity in eval mode
      {"batch_norm",  lower_batch_norm},             // BatchNormalization with running stats
      {"scaled_dot_product_attention", lower_attention},  // MatMul, Softmax, MatMul
      {"conv1d",      lower_conv},
      {"conv2d",      lower_conv},
      {"max_pool1d",  pool("MaxPool")},
      {"max_pool2d",  pool("MaxPool")},
      {"avg_pool2d",  pool("AveragePool")},
      {"adaptive_avg_pool2d", lower_adaptive_avg_pool},  // GlobalAveragePool or AveragePool
  };
  // clang-format on
  return kOpTable;
}

ValueInfoProto value_info(const std::string& name, const Tensor& t1, const Tensor& t2,
                          const std::map<int64_t, std::string>& declared,
                          const std::vector<std::pair<DimPair, std::string>>& symbols) {
  ValueInfoProto v;
  v.set_name(name);
  auto* tt = v.mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx_type(t1.dtype()));
  auto* shape = tt->mutable_shape();
  for (int64_t i = 0; i < t1.dim(); ++i) {
    auto* d = shape->add_dim();
    const DimPair p{t1.size(i), t2.size(i)};
    auto it = declared.find(i);
    if (it != declared.end()) {
      d->set_dim_param(it->second);
      continue;
    }
    if (!p.dynamic()) {
      d->set_dim_value(p.a);
      continue;
    }
    std::string sym = fmt::format("{}_dim{}", name, i);
    for (const auto& [q, s] : symbols)
      if (q == p) sym = s;
    d->set_dim_param(sym);
  }
  return v;
}

ModelProto Exporter::build(const std::vector<Tensor>& inputs1, const std::vector<Tensor>& inputs2,
                           const std::vector<TraceEvent>& ev1, const std::vector<TraceEvent>& ev2,
                           const Tensor& out1, const Tensor& out2,
                           const std::vector<std::string>& in_names, const std::string& out_name,
                           const std::vector<Item>& items1, const std::vector<Item>& items2,
                           const std::vector<RnnRegion>& regions1,
                           const std::vector<RnnRegion>& regions2) {
  ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name(o_.producer_name);
  model.set_producer_version(o_.producer_version);
  if (!o_.doc_string.empty()) model.set_doc_string(o_.doc_string);
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(o_.opset);
  graph_ = model.mutable_graph();
  graph_->set_name(module_.name());
  events_ = &ev1;

  // Symbolic names of the dynamic axes, keyed by their sizes in the two traces.
  std::vector<std::pair<DimPair, std::string>> symbols;
  for (size_t i = 0; i < inputs1.size(); ++i) {
    auto it = o_.dynamic_axes.find(in_names[i]);
    if (it != o_.dynamic_axes.end())
      for (const auto& [axis, sym] : it->second)
        symbols.emplace_back(DimPair{inputs1[i].size(axis), inputs2[i].size(axis)}, sym);
    *graph_->add_input() = value_info(
        in_names[i], inputs1[i], inputs2[i],
        it == o_.dynamic_axes.end() ? std::map<int64_t, std::string>{} : it->second, symbols);
    KILN_CHECK(!names_.count(inputs1[i].impl()),
               "export_model: example input {} is the same tensor as an earlier input", i);
    names_.emplace(inputs1[i].impl(), in_names[i]);
    used_names_.insert(in_names[i]);
    graph_inputs_.emplace_back(inputs1[i], inputs2[i]);
    graph_input_names_.push_back(in_names[i]);
  }
  for (const auto& [impl, name] : state_) used_names_.insert(name);
  // The output keeps the user's name when an op produces it.
  bool output_from_op = false;
  for (const auto& e : ev1)
    for (const auto& t : e.outputs) output_from_op = output_from_op || t.impl() == out1.impl();
  if (output_from_op && !names_.count(out1.impl())) names_.emplace(out1.impl(), out_name);

  const auto& table = op_table();
  for (size_t k = 0; k < items1.size(); ++k) {
    if (items1[k].region) {
      current_op_ = "rnn";
      lower_rnn(regions1[items1[k].index], regions2[items2[k].index]);
      continue;
    }
    const size_t i = items1[k].index;
    const TraceEvent& e = ev1[i];
    auto it = table.find(e.name);
    current_op_ = e.name;
    Lowering l(*this, i, e, ev2[items2[k].index]);
    if (it == table.end())
      l.fail("has no ONNX mapping (add a line to kOpTable in kiln/onnx/export.cpp)");
    it->second(l);
  }
  if (!output_from_op || names_.at(out1.impl()) != out_name) {
    NodeProto* n = graph_->add_node();
    n->set_op_type("Identity");
    n->set_name(fresh("Identity"));
    n->add_input(value_of(out1, out2, ev1.empty() ? 0 : ev1.size() - 1));
    n->add_output(out_name);
  }
  auto oit = o_.dynamic_axes.find(out_name);
  *graph_->add_output() = value_info(
      out_name, out1, out2,
      oit == o_.dynamic_axes.end() ? std::map<int64_t, std::string>{} : oit->second, symbols);

  // Drop nodes and initializers the output does not depend on (an RNN's unused final state, ...).
  std::unordered_set<std::string> needed{out_name};
  std::vector<bool> keep(static_cast<size_t>(graph_->node_size()), false);
  for (int i = graph_->node_size(); i-- > 0;) {
    const NodeProto& n = graph_->node(i);
    bool used = false;
    for (const auto& o : n.output()) used = used || needed.count(o);
    if (!used) continue;
    keep[static_cast<size_t>(i)] = true;
    for (const auto& in : n.input()) needed.insert(in);
  }
  GraphProto pruned;
  for (int i = 0; i < graph_->node_size(); ++i)
    if (keep[static_cast<size_t>(i)]) *pruned.add_node() = graph_->node(i);
  for (const auto& init : graph_->initializer())
    if (needed.count(init.name())) *pruned.add_initializer() = init;
  graph_->mutable_node()->Swap(pruned.mutable_node());
  graph_->mutable_initializer()->Swap(pruned.mutable_initializer());
  return model;
}

// The example inputs with every dynamic axis grown: symbol k (in order of appearance) gets
// size + k + 1, so two symbols never share both sizes. Rows are repeated cyclically.
std::vector<Tensor> grown_inputs(const std::vector<Tensor>& inputs,
                                 const std::vector<std::string>& names, const ExportOptions& o) {
  std::map<std::string, std::pair<int64_t, int64_t>> sizes;  // symbol -> (example, grown)
  std::vector<Tensor> out;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor x = inputs[i];
    auto it = o.dynamic_axes.find(names[i]);
    if (it != o.dynamic_axes.end()) {
      for (const auto& [axis, sym] : it->second) {
        KILN_CHECK(axis >= 0 && axis < x.dim(),
                   "export_model: dynamic axis {} ('{}') of input '{}' is out of range for its "
                   "shape {}",
                   axis, sym, names[i], dims_str(x.shape()));
        const int64_t n = x.size(axis);
        KILN_CHECK(n > 0, "export_model: dynamic axis '{}' of input '{}' has size 0", sym,
                   names[i]);
        auto [s, inserted] =
            sizes.emplace(sym, std::make_pair(n, n + static_cast<int64_t>(sizes.size()) + 1));
        KILN_CHECK(s->second.first == n,
                   "export_model: dynamic axis '{}' has size {} in input '{}' but {} elsewhere",
                   sym, n, names[i], s->second.first);
        std::vector<int64_t> idx;
        for (int64_t j = 0; j < s->second.second; ++j) idx.push_back(j % n);
        x = index_select(x, axis, from_vector(idx, {static_cast<int64_t>(idx.size())}));
      }
    }
    out.push_back(x);
  }
  return out;
}

struct TraceResult {
  std::vector<TraceEvent> events;
  Tensor output;
};

TraceResult trace(nn::Module& m, const std::vector<Tensor>& inputs) {
  Tracer tracer;
  Tensor out = inputs.size() == 1 ? m.forward(inputs[0]) : m.forward(inputs);
  KILN_CHECK(out.defined(), "export_model: {}'s forward returned an undefined tensor", m.name());
  return {tracer.events(), out};
}

// Finds the LSTM/GRU module calls in a trace (see RnnRegion). A call is written natively when its
// initial state is the default zeros, its input is batched (3-D), and nothing but its output is
// used outside it; otherwise its unrolled events are exported op by op (static sequence length).
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

std::vector<Item> items_of(const TraceResult& t, const std::vector<RnnRegion>& regions) {
  std::vector<Item> items;
  size_t next = 0;
  for (size_t i = 0; i < t.events.size();) {
    if (next < regions.size() && regions[next].start == i) {
      items.push_back({true, next});
      i += regions[next++].count;
    } else {
      items.push_back({false, i++});
    }
  }
  return items;
}

std::string item_name(const TraceResult& t, const std::vector<RnnRegion>& r,
                      const std::vector<Item>& items, size_t k) {
  if (k >= items.size()) return "<end>";
  return items[k].region ? r[items[k].index].rnn->name() : t.events[items[k].index].name;
}

void check_same_graph(const TraceResult& a, const TraceResult& b, const std::vector<RnnRegion>& ra,
                      const std::vector<RnnRegion>& rb, const std::vector<Item>& ia,
                      const std::vector<Item>& ib, const nn::Module& m) {
  const size_t n = std::min(ia.size(), ib.size());
  for (size_t k = 0; k <= n; ++k) {
    const bool end_a = k == ia.size(), end_b = k == ib.size();
    if (end_a && end_b) return;
    bool differ = end_a || end_b || ia[k].region != ib[k].region;
    if (!differ && ia[k].region) {
      differ = ra[ia[k].index].rnn != rb[ib[k].index].rnn;
    } else if (!differ) {
      const TraceEvent& x = a.events[ia[k].index];
      const TraceEvent& y = b.events[ib[k].index];
      differ = x.name != y.name || x.inputs.size() != y.inputs.size() ||
               x.outputs.size() != y.outputs.size();
      for (size_t j = 0; !differ && j < x.inputs.size(); ++j)
        differ = x.inputs[j].defined() != y.inputs[j].defined() ||
                 (x.inputs[j].defined() && x.inputs[j].dim() != y.inputs[j].dim());
    }
    KILN_CHECK(!differ,
               "export_model: {}'s traced graph changes with the dynamic axes ({} ops at the "
               "example sizes, {} with the dynamic axes grown; first difference at op {}: '{}' vs "
               "'{}'). Its control flow depends on a dynamic size (e.g. a loop over time steps "
               "depends on `sequence`): export with that axis static",
               m.name(), a.events.size(), b.events.size(), k, item_name(a, ra, ia, k),
               item_name(b, rb, ib, k));
  }
}

void write_file(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, bytes, "export_model");
}

}  // namespace

std::vector<std::string> initializer_names(const std::string& path) {
  const ModelProto model = detail::parse_model(detail::read_file(path, kMaxModelFileBytes), path);
  std::vector<std::string> names;
  for (const auto& init : model.graph().initializer()) names.push_back(init.name());
  return names;
}

std::vector<std::string> exportable_ops() {
  std::vector<std::string> ops;
  for (const auto& [name, fn] : op_table()) ops.push_back(name);
  std::sort(ops.begin(), ops.end());
  return ops;
}

ExportInfo export_model(nn::Module& module, const std::vector<Tensor>& example_inputs,
                        const std::string& path, const ExportOptions& options) {
  KILN_CHECK(!example_inputs.empty(), "export_model: no example inputs for {}", module.name());
  KILN_CHECK(options.opset >= 13 && options.opset <= 17,
             "export_model: opset {} is not supported (13..17: onnx 1.12's checker knows up to 17)",
             options.opset);
  for (size_t i = 0; i < example_inputs.size(); ++i)
    KILN_CHECK(example_inputs[i].defined(), "export_model: example input {} is undefined", i);
  std::vector<std::string> in_names = options.input_names;
  if (in_names.empty()) {
    if (example_inputs.size() == 1) {
      in_names.push_back("input");
    } else {
      for (size_t i = 0; i < example_inputs.size(); ++i)
        in_names.push_back(fmt::format("input_{}", i));
    }
  }
  KILN_CHECK(in_names.size() == example_inputs.size(),
             "export_model: {} input names for {} example inputs", in_names.size(),
             example_inputs.size());
  KILN_CHECK(options.output_names.size() <= 1,
             "export_model: {} output names given, but Module::forward returns one tensor",
             options.output_names.size());
  const std::string out_name = options.output_names.empty() ? "output" : options.output_names[0];
  for (const auto& [name, axes] : options.dynamic_axes)
    KILN_CHECK(
        name == out_name || std::find(in_names.begin(), in_names.end(), name) != in_names.end(),
        "export_model: dynamic_axes names '{}', which is neither an input ({}) nor the "
        "output ('{}')",
        name, fmt::join(in_names, ", "), out_name);

  const bool was_training = module.is_training();
  module.eval();
  ModelProto model;
  try {
    NoGradGuard no_grad;
    std::vector<Tensor> grown = grown_inputs(example_inputs, in_names, options);
    TraceResult t1 = trace(module, example_inputs);
    TraceResult t2;
    try {
      t2 = trace(module, grown);
    } catch (const Error& e) {
      throw Error(fmt::format(
          "export_model: tracing {} a second time with every dynamic axis grown by a few steps "
          "(to find which sizes follow them) failed: {}",
          module.name(), e.what()));
    }
    const std::vector<RnnRegion> r1 = find_rnn_regions(module, t1, example_inputs);
    const std::vector<RnnRegion> r2 = find_rnn_regions(module, t2, grown);
    const std::vector<Item> i1 = items_of(t1, r1), i2 = items_of(t2, r2);
    check_same_graph(t1, t2, r1, r2, i1, i2, module);
    Exporter ex(module, options);
    model = ex.build(example_inputs, grown, t1.events, t2.events, t1.output, t2.output, in_names,
                     out_name, i1, i2, r1, r2);
  } catch (...) {
    module.train(was_training);
    throw;
  }
  module.train(was_training);

  CheckResult check = detail::check_model_proto(model);
  KILN_CHECK(check.ok, "export_model: the exported model of {} fails the ONNX checker: {}",
             module.name(), check.message);

  ExportInfo info;
  info.nodes = model.graph().node_size();
  info.initializers = model.graph().initializer_size();
  int64_t total = 0;
  for (const auto& init : model.graph().initializer())
    total += static_cast<int64_t>(init.raw_data().size());
  if (total > options.external_data_threshold) {
    namespace fs = std::filesystem;
    const std::string data_name = fs::path(path).filename().string() + ".data";
    info.external_data_file = (fs::path(path).parent_path() / data_name).string();
    AtomicFile f(info.external_data_file, "export_model");
    int64_t offset = 0;
    for (auto& init : *model.mutable_graph()->mutable_initializer()) {
      const int64_t n = static_cast<int64_t>(init.raw_data().size());
      if (n < options.external_data_min_bytes) continue;
      // Keep offsets 4 KiB-aligned so consumers can mmap each tensor.
      const int64_t aligned = (offset + 4095) / 4096 * 4096;
      if (aligned > offset) {
        std::string pad(static_cast<size_t>(aligned - offset), '\0');
        f.write(pad);
      }
      offset = aligned;
      f.write(init.raw_data());
      init.clear_raw_data();
      init.set_data_location(TensorProto::EXTERNAL);
      auto add = [&](const std::string& k, const std::string& v) {
        auto* e = init.add_external_data();
        e->set_key(k);
        e->set_value(v);
      };
      add("location", data_name);
      add("offset", std::to_string(offset));
      add("length", std::to_string(n));
      offset += n;
    }
    f.commit();
  }
  std::string bytes;
  KILN_CHECK(model.SerializeToString(&bytes), "export_model: serialising the model failed");
  write_file(path, bytes);
  return info;
}

}  // namespace kiln::onnx
