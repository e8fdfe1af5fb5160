// ONNX export: two traces of one forward pass -> an ONNX GraphProto, through one op table.
// This file is the driver; the lowering rules and op table are in export_ops.cpp, the LSTM/GRU
// regions in export_rnn.cpp, and what they share in export_internal.h.
#include "kiln/onnx/export.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <unordered_set>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/io/atomic_file.h"
#include "kiln/onnx/export_internal.h"
#include "kiln/tensor/error.h"

namespace kiln::onnx::export_detail {

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

namespace {

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

}  // namespace

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

namespace {

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

}  // namespace

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
      l.fail("has no ONNX mapping (add a line to kOpTable in kiln/onnx/export_ops.cpp)");
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

namespace {

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

TraceResult trace(nn::Module& m, const std::vector<Tensor>& inputs) {
  Tracer tracer;
  Tensor out = inputs.size() == 1 ? m.forward(inputs[0]) : m.forward(inputs);
  KILN_CHECK(out.defined(), "export_model: {}'s forward returned an undefined tensor", m.name());
  return {tracer.events(), out};
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
}  // namespace kiln::onnx::export_detail

namespace kiln::onnx {

std::vector<std::string> initializer_names(const std::string& path) {
  using export_detail::ModelProto;
  const ModelProto model = detail::parse_model(detail::read_file(path, kMaxModelFileBytes), path);
  std::vector<std::string> names;
  for (const auto& init : model.graph().initializer()) names.push_back(init.name());
  return names;
}

std::vector<std::string> exportable_ops() {
  using export_detail::op_table;
  std::vector<std::string> ops;
  for (const auto& [name, fn] : op_table()) ops.push_back(name);
  std::sort(ops.begin(), ops.end());
  return ops;
}

ExportInfo export_model(nn::Module& module, const std::vector<Tensor>& example_inputs,
                        const std::string& path, const ExportOptions& options) {
  using namespace export_detail;
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
