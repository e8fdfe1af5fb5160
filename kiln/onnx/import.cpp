// ONNX import (see import.h): parse, check, order and compile a graph once; run it per forward.
// Everything read from the file is untrusted: the fuzz test in tests/onnx feeds mutated models,
// and every problem must become a kiln::Error naming it, never a crash.
#include "kiln/onnx/import.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <unordered_map>

#include "kiln/autograd/grad_mode.h"
#include "kiln/onnx/graph_internal.h"
#include "kiln/onnx/import_ops_internal.h"
#include "kiln/onnx/import_proto_internal.h"
#include "kiln/onnx/proto_internal.h"

namespace kiln::onnx {

namespace pb = detail::pb;
using detail::Attribute;
using detail::NodeContext;

// ---------------------------------------------------------------------------------------------
// The compiled graph
// ---------------------------------------------------------------------------------------------

namespace {

using detail::kind_name;

void check_input(const ValueInfo& info, const Value& v, std::string_view source) {
  if (info.optional && std::holds_alternative<EmptyOptional>(v)) return;
  if (info.kind == ValueInfo::Kind::Sequence) {
    const auto* seq = std::get_if<std::vector<Tensor>>(&v);
    KILN_CHECK_TYPE(seq != nullptr, "{}: input '{}' must be a sequence, got {}", source, info.name,
                    kind_name(v));
    for (const Tensor& t : *seq)
      KILN_CHECK_TYPE(t.defined() && t.dtype() == info.dtype,
                      "{}: input '{}' must be a sequence of {}, got an element of {}", source,
                      info.name, info.dtype, t.defined() ? fmt::format("{}", t.dtype()) : "none");
    return;
  }
  if (info.kind == ValueInfo::Kind::String) {
    const auto* s = std::get_if<StringTensor>(&v);
    KILN_CHECK_TYPE(s != nullptr, "{}: input '{}' must be a string tensor, got {}", source,
                    info.name, kind_name(v));
    KILN_CHECK_SHAPE(!info.has_shape || s->shape.size() == info.dims.size(),
                     "{}: input '{}' must have rank {}, got shape [{}]", source, info.name,
                     info.dims.size(), fmt::join(s->shape, ", "));
    KILN_CHECK_SHAPE(detail::string_count_matches(*s),
                     "{}: input '{}' holds {} strings but its shape [{}] needs another count",
                     source, info.name, s->data.size(), fmt::join(s->shape, ", "));
    return;
  }
  const auto* tp = std::get_if<Tensor>(&v);
  KILN_CHECK_TYPE(tp != nullptr, "{}: input '{}' must be a tensor, got {}", source, info.name,
                  kind_name(v));
  const Tensor& t = *tp;
  KILN_CHECK(t.defined(), "{}: input '{}' is undefined", source, info.name);
  KILN_CHECK_TYPE(t.dtype() == info.dtype, "{}: input '{}' must be {}, got {}", source, info.name,
                  info.dtype, t.dtype());
  if (!info.has_shape) return;
  KILN_CHECK_SHAPE(t.dim() == static_cast<int64_t>(info.dims.size()),
                   "{}: input '{}' must have rank {} (declared [{}]), got shape [{}]", source,
                   info.name, info.dims.size(), fmt::join(info.dims, ", "),
                   fmt::join(t.shape(), ", "));
  for (size_t d = 0; d < info.dims.size(); ++d)
    KILN_CHECK_SHAPE(info.dims[d] < 0 || info.dims[d] == t.size(static_cast<int64_t>(d)),
                     "{}: input '{}' dim {} must be {} (declared [{}]), got shape [{}]", source,
                     info.name, d, info.dims[d], fmt::join(info.dims, ", "),
                     fmt::join(t.shape(), ", "));
}

// Runs one node: a value op sees its inputs as they are, a tensor op gets tensors (a sequence or
// string tensor reaching it is an error naming the input).
std::vector<Value> run_node(const CompiledNode& node, const NodeContext& ctx,
                            const std::vector<Value>& in,
                            const std::vector<std::string>& value_names) {
  if (node.value_fn != nullptr) return node.value_fn(ctx, in);
  detail::Inputs tensors;
  tensors.reserve(in.size());
  for (size_t k = 0; k < in.size(); ++k) {
    const auto* t = std::get_if<Tensor>(&in[k]);
    KILN_CHECK_TYPE(t != nullptr, "{}: input {} ('{}') is {}, but {} takes tensors only",
                    ctx.where(), k, value_names[static_cast<size_t>(node.inputs[k])],
                    kind_name(in[k]), ctx.op_type);
    tensors.push_back(*t);
  }
  std::vector<Tensor> out = node.fn(ctx, tensors);
  return std::vector<Value>(std::make_move_iterator(out.begin()),
                            std::make_move_iterator(out.end()));
}

bool is_defined(const Value& v) {
  const auto* t = std::get_if<Tensor>(&v);
  return t == nullptr || t->defined();
}

// "<model>: Conv node 'conv1' (opset 11): <what the op said>" (the node named once).
std::string with_node(const NodeContext& ctx, const std::exception& e) {
  const std::string where = ctx.where(), msg = e.what();
  return msg.rfind(where, 0) == 0 ? msg : fmt::format("{}: {}", where, msg);
}

}  // namespace

std::vector<Value> ImportedGraph::run(const nn::Module& module, std::vector<Value> given) const {
  // A graph with Gradient nodes computes its own gradients: grad mode is on for the run, each x
  // they differentiate by is a fresh leaf, and initializers enter detached, so their backward
  // reaches those leaves only.
  const bool differentiates = !grad_sources.empty();
  const bool grad_was_enabled = grad_enabled();
  struct RestoreGradMode {
    bool prev;
    ~RestoreGradMode() { set_grad_enabled(prev); }
  } restore{grad_was_enabled};
  if (differentiates) set_grad_enabled(true);
  auto make_leaf = [](Value& v) {
    auto* t = std::get_if<Tensor>(&v);
    if (t == nullptr || !t->defined() || !is_floating(t->dtype())) return;
    Tensor leaf = t->detach();
    leaf.requires_grad_();
    *t = std::move(leaf);
  };
  std::vector<Value> values(value_names.size());
  for (size_t k = 0; k < input_ids.size(); ++k) {
    check_input(inputs[k], given[k], name);
    values[static_cast<size_t>(input_ids[k])] = std::move(given[k]);
  }
  for (const auto& [id, t] : constants) values[static_cast<size_t>(id)] = t;
  if (!initializers.empty()) {
    std::unordered_map<std::string, Tensor> state;
    for (auto& [n, t] : module.named_parameters()) state.emplace(n, t);
    for (auto& [n, t] : module.named_buffers()) state.emplace(n, t);
    for (const auto& [id, key] : initializers) {
      auto it = state.find(key);
      KILN_CHECK(it != state.end(), "{}: initializer '{}' is no longer registered in the module",
                 name, key);
      values[static_cast<size_t>(id)] = differentiates ? it->second.detach() : it->second;
    }
  }
  for (int id : grad_sources) make_leaf(values[static_cast<size_t>(id)]);
  const bool training = module.is_training();
  std::vector<Value> in;
  for (const CompiledNode& node : nodes) {
    in.clear();
    for (int id : node.inputs) in.push_back(id < 0 ? Value() : values[static_cast<size_t>(id)]);
    std::vector<Value> out;
    NodeContext& ctx = const_cast<NodeContext&>(node.ctx);
    ctx.training = training;
    try {
      out = run_node(node, ctx, in, value_names);
    } catch (const ShapeError& e) {
      throw ShapeError(with_node(ctx, e));
    } catch (const TypeError& e) {
      throw TypeError(with_node(ctx, e));
    } catch (const Error& e) {
      throw Error(with_node(ctx, e));
    }
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      if (node.outputs[k] < 0) continue;
      KILN_CHECK(k < out.size() && is_defined(out[k]),
                 "{}: output {} ('{}') is not produced by Kiln's implementation", ctx.where(), k,
                 value_names[static_cast<size_t>(node.outputs[k])]);
      values[static_cast<size_t>(node.outputs[k])] = std::move(out[k]);
      if (differentiates && std::find(grad_sources.begin(), grad_sources.end(), node.outputs[k]) !=
                                grad_sources.end())
        make_leaf(values[static_cast<size_t>(node.outputs[k])]);
    }
    for (int id : node.release) values[static_cast<size_t>(id)] = Value();
  }
  std::vector<Value> result;
  for (int id : output_ids) result.push_back(values[static_cast<size_t>(id)]);
  return result;
}

namespace {

// Builds the module tree for dotted ONNX names: "layer1.0.conv1.weight" is parameter "weight" of
// child "layer1" -> "0" -> "conv1". Names that cannot be a path (empty parts, or a name that is
// also a prefix of another) are registered on the root with '.' replaced by '_'.
struct Registrar {
  nn::Module& root;
  std::map<std::string, nn::ModulePtr> scopes;
  std::set<std::string> prefixes;  // every proper prefix path of any initializer name

  std::string add(const std::string& onnx_name, const Tensor& value, bool param, bool trainable) {
    std::vector<std::string> parts;
    size_t start = 0;
    for (;;) {
      const size_t dot = onnx_name.find('.', start);
      parts.push_back(onnx_name.substr(start, dot == std::string::npos ? dot : dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    bool path_ok = prefixes.count(onnx_name) == 0;
    for (const auto& p : parts) path_ok = path_ok && !p.empty();
    nn::Module* owner = &root;
    std::string local = onnx_name, key = onnx_name;
    if (!path_ok || parts.size() == 1) {
      std::replace(local.begin(), local.end(), '.', '_');
      key = local;
      KILN_CHECK(parts.size() == 1 || prefixes.count(local) == 0,
                 "import_model: initializer name '{}' collides with another after renaming",
                 onnx_name);
    } else {
      std::string path;
      for (size_t k = 0; k + 1 < parts.size(); ++k) {
        const std::string parent = path;
        path = path.empty() ? parts[k] : path + "." + parts[k];
        auto it = scopes.find(path);
        if (it == scopes.end()) {
          auto scope = std::make_shared<nn::Module>("Scope");
          nn::Module& parent_module = parent.empty() ? root : *scopes.at(parent);
          parent_module.register_module(parts[k], scope);
          it = scopes.emplace(path, scope).first;
        }
        owner = it->second.get();
      }
      local = parts.back();
    }
    if (param)
      owner->register_parameter(local, value, trainable);
    else
      owner->register_buffer(local, value);
    return key;
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

namespace {

std::shared_ptr<OnnxModule> compile(const pb::ModelProto& model, const std::string& source,
                                    const std::string& dir, const ImportOptions& options) {
  const std::string who = fmt::format("import_model: {}", source);
  const pb::GraphProto& g = model.graph();
  int64_t opset = 0;
  for (const auto& o : model.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
  if (model.opset_import_size() == 0) opset = 1;  // IR 3 files without opset_import: opset 1

  // 1. Every operator must be one Kiln implements; report all the missing ones at once.
  const detail::OpTable& table = detail::op_table();
  // Ops of other domains are keyed "<domain>:<op>" (ai.onnx.preview.training:Adam).
  std::map<std::string, int64_t> missing;
  bool any_default = false;
  for (const auto& n : g.node()) {
    const std::string key = detail::op_key(n.domain(), n.op_type());
    any_default = any_default || key == n.op_type();
    if (!table.count(key)) missing.emplace(key, opset);
  }
  if (!missing.empty()) {
    std::vector<std::string> list;
    for (const auto& [op, v] : missing) list.push_back(fmt::format("{} (opset {})", op, v));
    KILN_CHECK(false, "{} uses operators Kiln does not implement: {}", who, fmt::join(list, ", "));
  }
  KILN_CHECK(opset >= 1 || !any_default,
             "{}: the model imports no version of the default ONNX domain", who);

  auto graph = std::make_shared<ImportedGraph>();
  graph->name = source;
  std::unordered_map<std::string, int> ids;
  auto new_value = [&](const std::string& name, std::string_view what) {
    KILN_CHECK(!name.empty(), "{}: {} has an empty name", who, what);
    KILN_CHECK(ids.count(name) == 0, "{}: value '{}' is defined twice (as {} and before)", who,
               name, what);
    const int id = static_cast<int>(graph->value_names.size());
    ids.emplace(name, id);
    graph->value_names.push_back(name);
    return id;
  };

  // 2. Initializers (IR < 4 files also list them as graph inputs; those are not inputs).
  std::set<std::string> init_names;
  for (const auto& t : g.initializer()) init_names.insert(t.name());
  KILN_CHECK(g.sparse_initializer_size() == 0, "{}: sparse initializers are not supported", who);
  for (const auto& v : g.input()) {
    if (init_names.count(v.name())) continue;
    graph->inputs.push_back(detail::value_info(v));
    // An optional input holds its element type's value or nothing.
    const pb::TypeProto& type =
        v.type().has_optional_type() ? v.type().optional_type().elem_type() : v.type();
    const bool seq = type.has_sequence_type() && type.sequence_type().elem_type().has_tensor_type();
    KILN_CHECK(type.has_tensor_type() || seq,
               "{}: input '{}' is a map or a sequence of non-tensors, which Kiln does not "
               "support (only tensors, sequences of tensors and optionals of either)",
               who, v.name());
    const int32_t elem = seq ? type.sequence_type().elem_type().tensor_type().elem_type()
                             : type.tensor_type().elem_type();
    DType d;
    KILN_CHECK(detail::held_dtype_of_elem(elem, d) || (!seq && elem == pb::TensorProto::STRING),
               "{}: input '{}' has element type {}, which Kiln does not support", who, v.name(),
               detail::element_type_name(elem));
    graph->input_ids.push_back(new_value(v.name(), "graph input"));
  }
  // Declared element types by value name: a CastLike whose target is a float16 value must round
  // to half precision although Kiln holds that value as float32.
  std::map<std::string, int32_t> declared;
  for (const auto& t : g.initializer()) declared[t.name()] = t.data_type();
  for (const auto* list : {&g.input(), &g.value_info(), &g.output()})
    for (const auto& v : *list)
      if (v.type().has_tensor_type()) declared[v.name()] = v.type().tensor_type().elem_type();
  std::vector<std::pair<int, Array>> init_values;
  for (const auto& t : g.initializer()) {
    Array a = detail::array_from_proto(t, dir, who, /*widen_half=*/true);
    init_values.emplace_back(new_value(t.name(), "initializer"), std::move(a));
  }

  // 3. Nodes: decode attributes, wire inputs, order topologically (Kahn).
  const int n_nodes = g.node_size();
  std::vector<CompiledNode> nodes(static_cast<size_t>(n_nodes));
  std::unordered_map<std::string, int> producer;
  for (int k = 0; k < n_nodes; ++k) {
    const auto& n = g.node(k);
    CompiledNode& c = nodes[static_cast<size_t>(k)];
    c.ctx.op_type = n.op_type();
    c.ctx.name = n.name().empty() ? fmt::format("#{}", k) : n.name();
    c.ctx.opset = opset;
    c.ctx.n_outputs = n.output_size();
    const detail::OpEntry& entry = table.at(detail::op_key(n.domain(), n.op_type()));
    c.fn = entry.fn;
    c.value_fn = entry.value_fn;
    for (const auto& a : n.attribute())
      c.ctx.attrs[a.name()] = detail::decode_attribute(a, dir, c.ctx.where());
    if (n.op_type() == "CastLike" && n.input_size() > 1 && declared.count(n.input(1)) &&
        declared.at(n.input(1)) == pb::TensorProto::FLOAT16) {
      detail::Attribute to;
      to.kind = detail::Attribute::Int;
      to.i = pb::TensorProto::FLOAT16;
      c.ctx.attrs["to"] = to;  // cast_like_op then casts as Cast(to = FLOAT16) does
    }
    for (const auto& o : n.output()) {
      if (o.empty()) continue;
      KILN_CHECK(!producer.count(o) && !ids.count(o),
                 "{}: value '{}' is produced twice (again by {})", who, o, c.ctx.where());
      producer.emplace(o, k);
    }
  }
  // The values each node reads: its inputs, except that a Gradient node reads [xs..., y] (its own
  // inputs name the xs and zs; y is an attribute, and must be computed before it runs).
  std::vector<std::vector<std::string>> reads(static_cast<size_t>(n_nodes));
  for (int k = 0; k < n_nodes; ++k) {
    const auto& n = g.node(k);
    const NodeContext& ctx = nodes[static_cast<size_t>(k)].ctx;
    auto& r = reads[static_cast<size_t>(k)];
    if (detail::op_key(n.domain(), n.op_type()) != "ai.onnx.preview.training:Gradient") {
      r.assign(n.input().begin(), n.input().end());
      continue;
    }
    const auto xs = ctx.attrs.find("xs");
    KILN_CHECK(xs != ctx.attrs.end() && xs->second.kind == Attribute::Strings &&
                   !xs->second.strings.empty() && !ctx.s("y", "").empty(),
               "{}: {}: attributes 'xs' (names) and 'y' (a name) are required", who, ctx.where());
    KILN_CHECK(n.output_size() == static_cast<int>(xs->second.strings.size()),
               "{}: {}: has {} outputs for {} xs (one gradient per x)", who, ctx.where(),
               n.output_size(), xs->second.strings.size());
    r = xs->second.strings;
    r.push_back(ctx.s("y", ""));
  }
  std::vector<int> pending(static_cast<size_t>(n_nodes), 0);
  std::vector<std::vector<int>> consumers(static_cast<size_t>(n_nodes));
  for (int k = 0; k < n_nodes; ++k) {
    for (const auto& i : reads[static_cast<size_t>(k)]) {
      if (i.empty() || ids.count(i)) continue;
      auto it = producer.find(i);
      KILN_CHECK(it != producer.end(),
                 "{}: {} reads '{}', which is neither a graph input, an initializer nor the output "
                 "of any node",
                 who, nodes[static_cast<size_t>(k)].ctx.where(), i);
      ++pending[static_cast<size_t>(k)];
      consumers[static_cast<size_t>(it->second)].push_back(k);
    }
  }
  std::vector<int> order, ready;
  for (int k = n_nodes - 1; k >= 0; --k)
    if (pending[static_cast<size_t>(k)] == 0) ready.push_back(k);
  while (!ready.empty()) {
    std::sort(ready.begin(), ready.end(), std::greater<>());  // keep file order among ready
    const int k = ready.back();
    ready.pop_back();
    order.push_back(k);
    for (int c : consumers[static_cast<size_t>(k)])
      if (--pending[static_cast<size_t>(c)] == 0) ready.push_back(c);
  }
  if (static_cast<int>(order.size()) != n_nodes) {
    std::vector<std::string> stuck;
    for (int k = 0; k < n_nodes && stuck.size() < 5; ++k)
      if (pending[static_cast<size_t>(k)] > 0)
        stuck.push_back(nodes[static_cast<size_t>(k)].ctx.where());
    KILN_CHECK(false, "{}: the graph has a cycle through {} node(s), e.g. {}", who,
               n_nodes - static_cast<int>(order.size()), fmt::join(stuck, ", "));
  }
  for (int k : order) {
    const auto& n = g.node(k);
    CompiledNode& c = nodes[static_cast<size_t>(k)];
    for (const auto& i : reads[static_cast<size_t>(k)])
      c.inputs.push_back(i.empty() ? -1 : ids.at(i));
    if (c.ctx.op_type == "Gradient")
      for (size_t x = 0; x + 1 < c.inputs.size(); ++x) graph->grad_sources.push_back(c.inputs[x]);
    for (const auto& o : n.output())
      c.outputs.push_back(o.empty() ? -1 : new_value(o, c.ctx.where()));
  }

  // 4. Graph outputs.
  for (const auto& v : g.output()) {
    auto it = ids.find(v.name());
    KILN_CHECK(it != ids.end(), "{}: graph output '{}' is not produced by any node", who, v.name());
    graph->outputs.push_back(detail::value_info(v));
    graph->output_ids.push_back(it->second);
  }
  KILN_CHECK(!graph->output_ids.empty(), "{}: the graph has no outputs", who);

  // 5. Constant nodes run now (they have no inputs); their values stay constants.
  std::vector<CompiledNode> run_nodes;
  for (int k : order) {
    CompiledNode& c = nodes[static_cast<size_t>(k)];
    if (c.ctx.op_type == "Constant" && c.inputs.empty() && c.value_fn == nullptr) {
      std::vector<Tensor> out;
      try {
        out = c.fn(c.ctx, {});
      } catch (const Error& e) {
        throw Error(fmt::format("{}: {}: {}", who, c.ctx.where(), e.what()));
      }
      if (!c.outputs.empty() && c.outputs[0] >= 0)
        graph->constants.emplace_back(c.outputs[0], out[0]);
      continue;
    }
    run_nodes.push_back(std::move(c));
  }

  // 6. Constant folding, Conv + BatchNormalization, Linear, GELU and attention fusion.
  for (const auto& [id, a] : init_values) {
    graph->known_shapes[id] = a.shape();
    if (a.numel() == 1 && is_floating(a.dtype())) graph->initializer_scalars[id] = Tensor(a);
  }
  graph->nodes = std::move(run_nodes);
  if (options.optimize) detail::optimize_graph(*graph);
  run_nodes = std::move(graph->nodes);

  // 7. Last uses: a value is dropped after the last node that reads it (outputs are kept).
  std::vector<int> last(graph->value_names.size(), -1);
  for (size_t k = 0; k < run_nodes.size(); ++k) {
    for (int id : run_nodes[k].inputs)
      if (id >= 0) last[static_cast<size_t>(id)] = static_cast<int>(k);
    for (int id : run_nodes[k].outputs)  // unused outputs are dropped where they are made
      if (id >= 0 && last[static_cast<size_t>(id)] < static_cast<int>(k))
        last[static_cast<size_t>(id)] = static_cast<int>(k);
  }
  for (int id : graph->output_ids) last[static_cast<size_t>(id)] = -1;
  for (size_t id = 0; id < last.size(); ++id)
    if (last[id] >= 0)
      run_nodes[static_cast<size_t>(last[id])].release.push_back(static_cast<int>(id));
  graph->nodes = std::move(run_nodes);

  // 8. Initializers become parameters (weights) or buffers, under their ONNX names.
  std::set<std::string> trainable_names;
  for (const auto& n : g.node())
    for (int k = 0; k < n.input_size(); ++k)
      if (init_names.count(n.input(k))) {
        const auto& name = n.input(k);
        const auto it = std::find_if(init_values.begin(), init_values.end(), [&](const auto& p) {
          return graph->value_names[static_cast<size_t>(p.first)] == name;
        });
        if (it != init_values.end() &&
            detail::is_weight_slot(n.op_type(), static_cast<size_t>(k), it->second))
          trainable_names.insert(name);
      }
  for (const auto& [name, on] : options.trainable) {
    KILN_CHECK(init_names.count(name),
               "{}: ImportOptions::trainable names '{}', which is not an "
               "initializer of the model",
               who, name);
    if (on)
      trainable_names.insert(name);
    else
      trainable_names.erase(name);
  }
  auto module = std::make_shared<OnnxModule>(source, graph);
  Registrar reg{*module, {}, {}};
  for (const auto& name : init_names)
    for (size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1))
      reg.prefixes.insert(name.substr(0, dot));
  for (auto& [id, a] : init_values) {
    const std::string& name = graph->value_names[static_cast<size_t>(id)];
    const bool trainable = options.train_weights && trainable_names.count(name) != 0;
    const bool param = is_floating(a.dtype()) && (trainable || options.trainable.count(name));
    graph->initializers.emplace_back(id, reg.add(name, Tensor(a), param, trainable));
  }
  module->eval();
  return module;
}

}  // namespace

std::shared_ptr<OnnxModule> import_model_bytes(std::span<const std::byte> bytes,
                                               std::string_view name,
                                               const ImportOptions& options) {
  const pb::ModelProto model = detail::parse_model(bytes, name);
  return compile(model, std::string(name), ".", options);
}

std::shared_ptr<OnnxModule> import_model(const std::string& path, const ImportOptions& options) {
  const auto bytes = detail::read_file(path, kMaxModelFileBytes);
  const pb::ModelProto model = detail::parse_model(bytes, path);
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return compile(model, path, dir.empty() ? "." : dir, options);
}

std::vector<std::string> importable_ops() {
  std::vector<std::string> out;
  for (const auto& [name, fn] : detail::op_table()) out.push_back(name);
  return out;
}

Tensor load_tensor_proto(const std::string& path) {
  const auto bytes = detail::read_file(path, kMaxModelFileBytes);
  pb::TensorProto t;
  KILN_CHECK_AS(IOError, t.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())),
                "{}: not a valid onnx.TensorProto (protobuf parse failed)", path);
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return Tensor(detail::array_from_proto(t, dir.empty() ? "." : dir, path, /*widen_half=*/true));
}

namespace {
Value value_of(const pb::TensorProto& t, const std::string& dir, const std::string& path) {
  if (t.data_type() == pb::TensorProto::STRING) return detail::strings_from_proto(t, path);
  return Tensor(detail::array_from_proto(t, dir, path, /*widen_half=*/true));
}
Value value_of(const pb::SequenceProto& s, const std::string& dir, const std::string& path) {
  KILN_CHECK_AS(IOError, s.elem_type() == pb::SequenceProto::TENSOR || s.tensor_values_size() == 0,
                "{}: only sequences of tensors are supported (elem_type {})", path, s.elem_type());
  std::vector<Tensor> seq;
  for (const auto& t : s.tensor_values())
    seq.emplace_back(detail::array_from_proto(t, dir, path, /*widen_half=*/true));
  return seq;
}
}  // namespace

Value load_value_proto(const std::string& path, const ValueInfo& info) {
  const auto bytes = detail::read_file(path, kMaxModelFileBytes);
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  const int size = static_cast<int>(bytes.size());
  if (info.optional) {
    pb::OptionalProto o;
    KILN_CHECK_AS(IOError, o.ParseFromArray(bytes.data(), size),
                  "{}: not a valid onnx.OptionalProto (protobuf parse failed)", path);
    if (o.elem_type() == pb::OptionalProto::UNDEFINED) return EmptyOptional{};
    if (o.elem_type() == pb::OptionalProto::TENSOR) return value_of(o.tensor_value(), dir, path);
    KILN_CHECK_AS(IOError, o.elem_type() == pb::OptionalProto::SEQUENCE,
                  "{}: only optionals of tensors or sequences are supported (elem_type {})", path,
                  o.elem_type());
    return value_of(o.sequence_value(), dir, path);
  }
  if (info.kind == ValueInfo::Kind::Sequence) {
    pb::SequenceProto s;
    KILN_CHECK_AS(IOError, s.ParseFromArray(bytes.data(), size),
                  "{}: not a valid onnx.SequenceProto (protobuf parse failed)", path);
    return value_of(s, dir, path);
  }
  pb::TensorProto t;
  KILN_CHECK_AS(IOError, t.ParseFromArray(bytes.data(), size),
                "{}: not a valid onnx.TensorProto (protobuf parse failed)", path);
  return value_of(t, dir, path);
}

// ---------------------------------------------------------------------------------------------
// OnnxModule
// ---------------------------------------------------------------------------------------------

OnnxModule::OnnxModule(std::string path, std::shared_ptr<ImportedGraph> graph)
    : Module("OnnxModule"), source_(std::move(path)), graph_(std::move(graph)) {}
OnnxModule::~OnnxModule() = default;

const std::vector<ValueInfo>& OnnxModule::inputs() const {
  return graph_->inputs;
}
const std::vector<ValueInfo>& OnnxModule::outputs() const {
  return graph_->outputs;
}
int64_t OnnxModule::node_count() const {
  return static_cast<int64_t>(graph_->nodes.size());
}
std::vector<std::string> OnnxModule::node_ops() const {
  std::vector<std::string> out;
  for (const auto& n : graph_->nodes) out.push_back(n.ctx.op_type);
  return out;
}

std::vector<std::string> OnnxModule::input_names() const {
  std::vector<std::string> out;
  for (const auto& v : graph_->inputs) out.push_back(v.name);
  return out;
}
std::vector<std::string> OnnxModule::output_names() const {
  std::vector<std::string> out;
  for (const auto& v : graph_->outputs) out.push_back(v.name);
  return out;
}

std::vector<Value> OnnxModule::run_values(std::vector<Value> inputs) {
  KILN_CHECK(inputs.size() == graph_->inputs.size(), "{}: the model takes {} input(s) [{}], got {}",
             source_, graph_->inputs.size(), fmt::join(input_names(), ", "), inputs.size());
  return graph_->run(*this, std::move(inputs));
}

namespace {
std::vector<Tensor> tensors_only(std::vector<Value> values, const std::vector<ValueInfo>& outs,
                                 const std::string& source) {
  std::vector<Tensor> result;
  for (size_t k = 0; k < values.size(); ++k) {
    auto* t = std::get_if<Tensor>(&values[k]);
    KILN_CHECK_TYPE(t != nullptr, "{}: output '{}' is {}; use run_values() for such models", source,
                    outs[k].name, kind_name(values[k]));
    result.push_back(std::move(*t));
  }
  return result;
}
}  // namespace

std::vector<Tensor> OnnxModule::run(const std::vector<Tensor>& inputs) {
  return tensors_only(run_values(std::vector<Value>(inputs.begin(), inputs.end())), graph_->outputs,
                      source_);
}

std::map<std::string, Tensor> OnnxModule::run(const std::map<std::string, Tensor>& inputs) {
  std::vector<Tensor> positional;
  for (const auto& v : graph_->inputs) {
    auto it = inputs.find(v.name);
    KILN_CHECK(it != inputs.end(), "{}: input '{}' is missing (the model takes [{}])", source_,
               v.name, fmt::join(input_names(), ", "));
    positional.push_back(it->second);
  }
  for (const auto& [n, t] : inputs)
    KILN_CHECK(std::any_of(graph_->inputs.begin(), graph_->inputs.end(),
                           [&](const ValueInfo& v) { return v.name == n; }),
               "{}: the model has no input '{}' (it takes [{}])", source_, n,
               fmt::join(input_names(), ", "));
  std::vector<Tensor> outs = run(positional);
  std::map<std::string, Tensor> named;
  for (size_t k = 0; k < outs.size(); ++k) named[graph_->outputs[k].name] = outs[k];
  return named;
}

Tensor OnnxModule::forward(const Tensor& x) {
  return run(std::vector<Tensor>{x})[0];
}
Tensor OnnxModule::forward(const std::vector<Tensor>& inputs) {
  return run(inputs)[0];
}
Tensor OnnxModule::forward(const std::map<std::string, Tensor>& inputs) {
  return run(inputs).at(graph_->outputs[0].name);
}

std::string OnnxModule::extra_repr() const {
  auto list = [](const std::vector<ValueInfo>& vs) {
    std::vector<std::string> out;
    for (const auto& v : vs) {
      std::vector<std::string> dims;
      for (size_t d = 0; d < v.dims.size(); ++d)
        dims.push_back(v.dims[d] >= 0 ? std::to_string(v.dims[d])
                                      : (v.syms[d].empty() ? "?" : v.syms[d]));
      out.push_back(fmt::format("{}[{}]", v.name, fmt::join(dims, ",")));
    }
    return fmt::format("{}", fmt::join(out, ", "));
  };
  return fmt::format("{}: {} nodes, inputs=[{}], outputs=[{}]", source_, graph_->nodes.size(),
                     list(graph_->inputs), list(graph_->outputs));
}

}  // namespace kiln::onnx
