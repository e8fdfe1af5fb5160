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
#include "kiln/onnx/graph.h"
#include "kiln/onnx/import_ops.h"
#include "kiln/onnx/proto.h"

namespace kiln::onnx {

namespace pb = detail::pb;
using detail::Attribute;
using detail::NodeContext;

namespace {

// Dimensions and element counts an initializer may declare before we allocate anything: ONNX
// files cannot hold more than 2 GiB inline, so anything larger must come from external data,
// which is bounded by the size of that file.
int64_t checked_numel(const google::protobuf::RepeatedField<int64_t>& dims,
                      std::string_view where) {
  int64_t n = 1;
  for (int64_t d : dims) {
    KILN_CHECK_AS(IOError, d >= 0, "{}: negative dimension {} in [{}]", where, d,
                  fmt::join(dims, ", "));
    KILN_CHECK_AS(IOError, !__builtin_mul_overflow(n, d, &n),
                  "{}: element count of [{}] overflows int64", where, fmt::join(dims, ", "));
  }
  return n;
}

// ONNX element type -> Kiln dtype; false when Kiln has no such dtype.
bool dtype_of_elem(int32_t elem, DType& out) {
  switch (elem) {
    case pb::TensorProto::FLOAT: out = kFloat32; return true;
    case pb::TensorProto::DOUBLE: out = kFloat64; return true;
    case pb::TensorProto::INT32: out = kInt32; return true;
    case pb::TensorProto::INT64: out = kInt64; return true;
    case pb::TensorProto::BOOL: out = kBool; return true;
    case pb::TensorProto::UINT8: out = kUInt8; return true;
    default: return false;
  }
}

// Typed repeated field -> `numel` elements of T.
template <typename T, typename Field>
void copy_field(const Field& field, int64_t numel, void* dst, std::string_view where) {
  KILN_CHECK_AS(IOError, field.size() == numel, "{}: holds {} values but its dims need {}", where,
                field.size(), numel);
  T* out = static_cast<T*>(dst);
  for (int64_t i = 0; i < numel; ++i) out[i] = static_cast<T>(field.Get(static_cast<int>(i)));
}

}  // namespace

namespace detail {

// A TensorProto as an Array (raw_data, typed fields or external data next to `dir`).
// IEEE half -> float (normals, subnormals, infinities, NaN).
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const int exp = (h >> 10) & 0x1F;
  const uint32_t mant = h & 0x3FF;
  float f;
  if (exp == 0) {
    f = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    f = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    f = std::ldexp(static_cast<float>(mant | 0x400), exp - 25);
  }
  return sign ? -f : f;
}

// A float16 tensor (Kiln's exporter writes them with fp16_weights) widened to float32: Kiln has
// no half dtype, and the Cast that follows such an initializer then converts float32 to float32.
Array half_array(const pb::TensorProto& t, std::string_view what) {
  const int64_t numel = checked_numel(t.dims(), what);
  Array a(Shape(t.dims().begin(), t.dims().end()), kFloat32);
  float* out = a.data<float>();
  if (t.has_raw_data()) {
    KILN_CHECK_AS(IOError, static_cast<int64_t>(t.raw_data().size()) == 2 * numel,
                  "{}: float16 data holds {} bytes, dims need {}", what, t.raw_data().size(),
                  2 * numel);
    for (int64_t k = 0; k < numel; ++k) {
      uint16_t h;
      std::memcpy(&h, t.raw_data().data() + 2 * k, 2);
      out[k] = half_to_float(h);
    }
  } else {
    KILN_CHECK_AS(IOError, t.int32_data_size() == numel, "{}: holds {} values, dims need {}",
                  what, t.int32_data_size(), numel);
    for (int64_t k = 0; k < numel; ++k)
      out[k] = half_to_float(static_cast<uint16_t>(t.int32_data(static_cast<int>(k))));
  }
  return a;
}

Array array_from_proto(const pb::TensorProto& t, const std::string& dir, std::string_view where,
                       bool widen_half = false) {
  const std::string what = fmt::format("{}: tensor '{}'", where, t.name());
  if (widen_half && t.data_type() == pb::TensorProto::FLOAT16 &&
      t.data_location() != pb::TensorProto::EXTERNAL)
    return half_array(t, what);
  DType dtype;
  KILN_CHECK_AS(IOError, dtype_of_elem(t.data_type(), dtype),
                "{} has element type {}, which Kiln does not support (float32, float64, int32, "
                "int64, uint8, bool)",
                what, element_type_name(t.data_type()));
  KILN_CHECK_AS(IOError, t.dims_size() <= 16, "{} has {} dims (at most 16)", what, t.dims_size());
  const int64_t numel = checked_numel(t.dims(), what);
  const size_t item = dtype_size(dtype);
  int64_t nbytes = 0;
  KILN_CHECK_AS(IOError, !__builtin_mul_overflow(numel, static_cast<int64_t>(item), &nbytes),
                "{}: byte size overflows", what);
  const auto available = [&](int64_t have) {
    KILN_CHECK_AS(IOError, have == nbytes, "{} of {} {} needs {} bytes of data but holds {}", what,
                  dtype, fmt::join(t.dims(), "x"), nbytes, have);
  };
  std::string external;
  if (t.data_location() == pb::TensorProto::EXTERNAL) {
    std::string location;
    int64_t offset = 0, length = -1;
    for (const auto& kv : t.external_data()) {
      try {
        if (kv.key() == "location") location = kv.value();
        if (kv.key() == "offset") offset = std::stoll(kv.value());
        if (kv.key() == "length") length = std::stoll(kv.value());
      } catch (const std::exception&) {
        KILN_CHECK_AS(IOError, false, "{}: external data {} '{}' is not a number", what, kv.key(),
                      kv.value());
      }
    }
    KILN_CHECK_AS(IOError, !location.empty() && location.find("..") == std::string::npos &&
                               location[0] != '/',
                  "{}: external data location '{}' must be a file beside the model", what,
                  location);
    KILN_CHECK_AS(IOError, offset >= 0 && (length < 0 || length == nbytes),
                  "{}: external data offset {} / length {} do not fit {} bytes", what, offset,
                  length, nbytes);
    const std::string file = (std::filesystem::path(dir) / location).string();
    std::ifstream in(file, std::ios::binary);
    KILN_CHECK_AS(IOError, in.good(), "{}: cannot open external data file {}", what, file);
    in.seekg(0, std::ios::end);
    const int64_t size = in.tellg();
    KILN_CHECK_AS(IOError, offset <= size && nbytes <= size - offset,
                  "{}: external data file {} has {} bytes, needs {} at offset {}", what, file,
                  size, nbytes, offset);
    external.resize(static_cast<size_t>(nbytes));
    in.seekg(offset);
    in.read(external.data(), nbytes);
    KILN_CHECK_AS(IOError, in.gcount() == nbytes, "{}: short read from {}", what, file);
  }
  Shape shape(t.dims().begin(), t.dims().end());
  Array a(shape, dtype);
  const std::string* raw = t.data_location() == pb::TensorProto::EXTERNAL ? &external
                           : t.has_raw_data()                             ? &t.raw_data()
                                                                          : nullptr;
  if (raw) {
    available(static_cast<int64_t>(raw->size()));
    if (nbytes > 0) std::memcpy(a.raw_data(), raw->data(), static_cast<size_t>(nbytes));
    if (dtype == kBool) {  // any nonzero byte is true; Kiln's bool must be 0 or 1
      auto* b = static_cast<uint8_t*>(a.raw_data());
      for (int64_t k = 0; k < numel; ++k) b[k] = b[k] != 0;
    }
    return a;
  }
  void* dst = a.raw_data();
  switch (dtype) {
    case DType::Float32: copy_field<float>(t.float_data(), numel, dst, what); break;
    case DType::Float64: copy_field<double>(t.double_data(), numel, dst, what); break;
    case DType::Int64: copy_field<int64_t>(t.int64_data(), numel, dst, what); break;
    case DType::Int32: copy_field<int32_t>(t.int32_data(), numel, dst, what); break;
    case DType::UInt8: copy_field<uint8_t>(t.int32_data(), numel, dst, what); break;
    case DType::Bool: {
      KILN_CHECK_AS(IOError, t.int32_data_size() == numel, "{}: holds {} values, dims need {}",
                    what, t.int32_data_size(), numel);
      auto* b = static_cast<bool*>(dst);
      for (int64_t k = 0; k < numel; ++k) b[k] = t.int32_data(static_cast<int>(k)) != 0;
      break;
    }
  }
  return a;
}

namespace {

Attribute decode_attribute(const pb::AttributeProto& a, const std::string& dir,
                           std::string_view where) {
  Attribute out;
  switch (a.type()) {
    case pb::AttributeProto::INT: out.kind = Attribute::Int; out.i = a.i(); break;
    case pb::AttributeProto::FLOAT: out.kind = Attribute::Float; out.f = a.f(); break;
    case pb::AttributeProto::STRING: out.kind = Attribute::String; out.s = a.s(); break;
    case pb::AttributeProto::INTS:
      out.kind = Attribute::Ints;
      out.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case pb::AttributeProto::FLOATS:
      out.kind = Attribute::Floats;
      out.floats.assign(a.floats().begin(), a.floats().end());
      break;
    case pb::AttributeProto::STRINGS:
      out.kind = Attribute::Strings;
      out.strings.assign(a.strings().begin(), a.strings().end());
      break;
    case pb::AttributeProto::TENSOR:
      out.kind = Attribute::TensorValue;
      out.t = Tensor(array_from_proto(a.t(), dir, fmt::format("{} attribute '{}'", where,
                                                                a.name())));
      break;
    case pb::AttributeProto::GRAPH:
    case pb::AttributeProto::GRAPHS: out.kind = Attribute::Graph; break;
    default: {
      // Old files leave `type` unset (0); infer it from the one field that is set.
      if (a.has_i()) out.kind = Attribute::Int, out.i = a.i();
      else if (a.has_f()) out.kind = Attribute::Float, out.f = a.f();
      else if (a.has_s()) out.kind = Attribute::String, out.s = a.s();
      else if (a.ints_size()) out.kind = Attribute::Ints, out.ints.assign(a.ints().begin(), a.ints().end());
      else if (a.floats_size()) out.kind = Attribute::Floats, out.floats.assign(a.floats().begin(), a.floats().end());
      else if (a.has_t()) out.kind = Attribute::TensorValue, out.t = Tensor(array_from_proto(a.t(), dir, where));
      break;
    }
  }
  return out;
}

// Which inputs of an op are weights (float initializers there are trainable by default).
bool is_weight_slot(const std::string& op, size_t k, const Array& value) {
  static const std::map<std::string, std::vector<size_t>> kSlots = {
      {"Gemm", {0, 1, 2}},          {"MatMul", {0, 1}},
      {"Conv", {1, 2}},             {"ConvTranspose", {1, 2}},
      {"BatchNormalization", {1, 2}}, {"LayerNormalization", {1, 2}},
      {"InstanceNormalization", {1, 2}}, {"PRelu", {1}},
      {"Gather", {0}},              {"LSTM", {1, 2, 3}},
      {"GRU", {1, 2, 3}},           {"RNN", {1, 2, 3}}};
  if (!is_floating(value.dtype())) return false;
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") return value.numel() > 1;
  auto it = kSlots.find(op);
  return it != kSlots.end() && std::find(it->second.begin(), it->second.end(), k) != it->second.end();
}

ValueInfo value_info(const pb::ValueInfoProto& v) {
  ValueInfo out;
  out.name = v.name();
  if (v.type().has_tensor_type()) {
    const auto& tt = v.type().tensor_type();
    DType d;
    if (dtype_of_elem(tt.elem_type(), d)) out.dtype = d;
    if (tt.has_shape()) {
      out.has_shape = true;
      for (const auto& dim : tt.shape().dim()) {
        out.dims.push_back(dim.has_dim_value() ? dim.dim_value() : -1);
        out.syms.push_back(dim.has_dim_param() ? dim.dim_param() : "");
      }
    }
  }
  return out;
}

}  // namespace
}  // namespace detail

// ---------------------------------------------------------------------------------------------
// The compiled graph
// ---------------------------------------------------------------------------------------------

namespace {

void check_input(const ValueInfo& info, const Tensor& t, std::string_view source) {
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

// "<model>: Conv node 'conv1' (opset 11): <what the op said>" (the node named once).
std::string with_node(const NodeContext& ctx, const std::exception& e) {
  const std::string where = ctx.where(), msg = e.what();
  return msg.rfind(where, 0) == 0 ? msg : fmt::format("{}: {}", where, msg);
}

}  // namespace

std::vector<Tensor> ImportedGraph::run(const nn::Module& module, std::vector<Tensor> given) const {
  std::vector<Tensor> values(value_names.size());
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
      values[static_cast<size_t>(id)] = it->second;
    }
  }
  const bool training = module.is_training();
  detail::Inputs in;
  for (const CompiledNode& node : nodes) {
    in.clear();
    for (int id : node.inputs) in.push_back(id < 0 ? Tensor() : values[static_cast<size_t>(id)]);
    std::vector<Tensor> out;
    NodeContext& ctx = const_cast<NodeContext&>(node.ctx);
    ctx.training = training;
    try {
      out = node.fn(ctx, in);
    } catch (const ShapeError& e) {
      throw ShapeError(with_node(ctx, e));
    } catch (const TypeError& e) {
      throw TypeError(with_node(ctx, e));
    } catch (const Error& e) {
      throw Error(with_node(ctx, e));
    }
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      if (node.outputs[k] < 0) continue;
      KILN_CHECK(k < out.size() && out[k].defined(),
                 "{}: output {} ('{}') is not produced by Kiln's implementation", ctx.where(), k,
                 value_names[static_cast<size_t>(node.outputs[k])]);
      values[static_cast<size_t>(node.outputs[k])] = std::move(out[k]);
    }
    for (int id : node.release) values[static_cast<size_t>(id)] = Tensor();
  }
  std::vector<Tensor> result;
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

  std::string add(const std::string& onnx_name, const Tensor& value, bool param,
                  bool trainable) {
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
  std::map<std::string, int64_t> missing;
  for (const auto& n : g.node()) {
    const bool default_domain = n.domain().empty() || n.domain() == "ai.onnx";
    if (!default_domain || !table.count(n.op_type()))
      missing.emplace(default_domain ? n.op_type() : n.domain() + ":" + n.op_type(), opset);
  }
  if (!missing.empty()) {
    std::vector<std::string> list;
    for (const auto& [op, v] : missing) list.push_back(fmt::format("{} (opset {})", op, v));
    KILN_CHECK(false, "{} uses operators Kiln does not implement: {}", who,
               fmt::join(list, ", "));
  }
  KILN_CHECK(opset >= 1, "{}: the model imports no version of the default ONNX domain", who);

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
    KILN_CHECK(v.type().has_tensor_type(),
               "{}: input '{}' is a sequence, map or optional, which Kiln does not support (only "
               "tensors)",
               who, v.name());
    DType d;
    KILN_CHECK(dtype_of_elem(v.type().tensor_type().elem_type(), d),
               "{}: input '{}' has element type {}, which Kiln does not support", who, v.name(),
               detail::element_type_name(v.type().tensor_type().elem_type()));
    graph->input_ids.push_back(new_value(v.name(), "graph input"));
  }
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
    c.fn = table.at(n.op_type());
    for (const auto& a : n.attribute())
      c.ctx.attrs[a.name()] = detail::decode_attribute(a, dir, c.ctx.where());
    for (const auto& o : n.output()) {
      if (o.empty()) continue;
      KILN_CHECK(!producer.count(o) && !ids.count(o),
                 "{}: value '{}' is produced twice (again by {})", who, o, c.ctx.where());
      producer.emplace(o, k);
    }
  }
  std::vector<int> pending(static_cast<size_t>(n_nodes), 0);
  std::vector<std::vector<int>> consumers(static_cast<size_t>(n_nodes));
  for (int k = 0; k < n_nodes; ++k) {
    for (const auto& i : g.node(k).input()) {
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
      if (pending[static_cast<size_t>(k)] > 0) stuck.push_back(nodes[static_cast<size_t>(k)].ctx.where());
    KILN_CHECK(false, "{}: the graph has a cycle through {} node(s), e.g. {}", who,
               n_nodes - static_cast<int>(order.size()), fmt::join(stuck, ", "));
  }
  for (int k : order) {
    const auto& n = g.node(k);
    CompiledNode& c = nodes[static_cast<size_t>(k)];
    for (const auto& i : n.input()) c.inputs.push_back(i.empty() ? -1 : ids.at(i));
    for (const auto& o : n.output())
      c.outputs.push_back(o.empty() ? -1 : new_value(o, c.ctx.where()));
  }

  // 4. Graph outputs.
  for (const auto& v : g.output()) {
    auto it = ids.find(v.name());
    KILN_CHECK(it != ids.end(), "{}: graph output '{}' is not produced by any node", who,
               v.name());
    graph->outputs.push_back(detail::value_info(v));
    graph->output_ids.push_back(it->second);
  }
  KILN_CHECK(!graph->output_ids.empty(), "{}: the graph has no outputs", who);

  // 5. Constant nodes run now (they have no inputs); their values stay constants.
  std::vector<CompiledNode> run_nodes;
  for (int k : order) {
    CompiledNode& c = nodes[static_cast<size_t>(k)];
    if (c.ctx.op_type == "Constant" && c.inputs.empty()) {
      std::vector<Tensor> out;
      try {
        out = c.fn(c.ctx, {});
      } catch (const Error& e) {
        throw Error(fmt::format("{}: {}: {}", who, c.ctx.where(), e.what()));
      }
      if (!c.outputs.empty() && c.outputs[0] >= 0) graph->constants.emplace_back(c.outputs[0], out[0]);
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
    if (last[id] >= 0) run_nodes[static_cast<size_t>(last[id])].release.push_back(static_cast<int>(id));
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
        if (it != init_values.end() && detail::is_weight_slot(n.op_type(), static_cast<size_t>(k), it->second))
          trainable_names.insert(name);
      }
  for (const auto& [name, on] : options.trainable) {
    KILN_CHECK(init_names.count(name), "{}: ImportOptions::trainable names '{}', which is not an "
               "initializer of the model", who, name);
    if (on) trainable_names.insert(name);
    else trainable_names.erase(name);
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
  return Tensor(detail::array_from_proto(t, dir.empty() ? "." : dir, path));
}

// ---------------------------------------------------------------------------------------------
// OnnxModule
// ---------------------------------------------------------------------------------------------

OnnxModule::OnnxModule(std::string path, std::shared_ptr<ImportedGraph> graph)
    : Module("OnnxModule"), source_(std::move(path)), graph_(std::move(graph)) {}
OnnxModule::~OnnxModule() = default;

const std::vector<ValueInfo>& OnnxModule::inputs() const { return graph_->inputs; }
const std::vector<ValueInfo>& OnnxModule::outputs() const { return graph_->outputs; }
int64_t OnnxModule::node_count() const { return static_cast<int64_t>(graph_->nodes.size()); }
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

std::vector<Tensor> OnnxModule::run(const std::vector<Tensor>& inputs) {
  KILN_CHECK(inputs.size() == graph_->inputs.size(),
             "{}: the model takes {} input(s) [{}], got {}", source_, graph_->inputs.size(),
             fmt::join(input_names(), ", "), inputs.size());
  return graph_->run(*this, inputs);
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
  std::vector<Tensor> outs = graph_->run(*this, positional);
  std::map<std::string, Tensor> named;
  for (size_t k = 0; k < outs.size(); ++k) named[graph_->outputs[k].name] = outs[k];
  return named;
}

Tensor OnnxModule::forward(const Tensor& x) { return run(std::vector<Tensor>{x})[0]; }
Tensor OnnxModule::forward(const std::vector<Tensor>& inputs) { return run(inputs)[0]; }
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

// ---------------------------------------------------------------------------------------------
// NodeContext and shared helpers
// ---------------------------------------------------------------------------------------------

namespace detail {

std::string NodeContext::where() const {
  return fmt::format("{} node '{}' (opset {})", op_type, name, opset);
}
int64_t NodeContext::i(const std::string& a, int64_t def) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return def;
  KILN_CHECK(it->second.kind == Attribute::Int, "{}: attribute '{}' must be an int", where(), a);
  return it->second.i;
}
double NodeContext::f(const std::string& a, double def) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return def;
  if (it->second.kind == Attribute::Int) return static_cast<double>(it->second.i);
  KILN_CHECK(it->second.kind == Attribute::Float, "{}: attribute '{}' must be a float", where(),
             a);
  return it->second.f;
}
std::string NodeContext::s(const std::string& a, const std::string& def) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return def;
  KILN_CHECK(it->second.kind == Attribute::String, "{}: attribute '{}' must be a string",
             where(), a);
  return it->second.s;
}
std::vector<int64_t> NodeContext::ints(const std::string& a, std::vector<int64_t> def) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return def;
  if (it->second.kind == Attribute::Int) return {it->second.i};
  KILN_CHECK(it->second.kind == Attribute::Ints || it->second.kind == Attribute::Other,
             "{}: attribute '{}' must be a list of ints", where(), a);
  return it->second.ints;
}
std::vector<double> NodeContext::floats(const std::string& a, std::vector<double> def) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return def;
  KILN_CHECK(it->second.kind == Attribute::Floats || it->second.kind == Attribute::Other,
             "{}: attribute '{}' must be a list of floats", where(), a);
  return it->second.floats;
}
Tensor NodeContext::tensor(const std::string& a) const {
  auto it = attrs.find(a);
  KILN_CHECK(it != attrs.end() && it->second.kind == Attribute::TensorValue,
             "{}: tensor attribute '{}' is missing", where(), a);
  return it->second.t;
}

const Tensor& required(const NodeContext& node, const Inputs& in, size_t k) {
  KILN_CHECK(k < in.size() && in[k].defined(), "{}: input {} is required but absent",
             node.where(), k);
  return in[k];
}

std::vector<int64_t> int_values(const NodeContext& node, const Tensor& t, const char* what) {
  KILN_CHECK(t.defined(), "{}: {} is absent", node.where(), what);
  KILN_CHECK_TYPE(is_integral(t.dtype()), "{}: {} must be an integer tensor, got {}",
                  node.where(), what, t.dtype());
  KILN_CHECK_SHAPE(t.dim() <= 1, "{}: {} must be 1-D, got shape [{}]", node.where(), what,
                   fmt::join(t.shape(), ", "));
  return t.to_vector<int64_t>();
}

double scalar_value(const NodeContext& node, const Tensor& t, const char* what) {
  KILN_CHECK(t.defined() && t.numel() == 1, "{}: {} must hold one value, got shape [{}]",
             node.where(), what, t.defined() ? fmt::format("{}", fmt::join(t.shape(), ", ")) : "");
  return t.to_vector<double>()[0];
}

int64_t axis(const NodeContext& node, int64_t a, int64_t r) {
  KILN_CHECK_SHAPE(a >= -r && a < std::max<int64_t>(r, 1), "{}: axis {} is out of range for rank {}",
                   node.where(), a, r);
  return a < 0 ? a + r : a;
}

// A leaf, not a traced op: exporting an imported model again sees such values (shapes, masks,
// indices) as constants of the traced pass, as it does for tensors a Kiln module makes in forward.
Tensor nondiff(const NodeContext&, const Inputs&, Array out) { return Tensor(std::move(out)); }

const OpTable& op_table() {
  static const OpTable table = [] {
    OpTable t;
    register_math_ops(t);
    register_tensor_ops(t);
    register_nn_ops(t);
    register_loss_ops(t);
    register_rnn_ops(t);
    return t;
  }();
  return table;
}

}  // namespace detail
}  // namespace kiln::onnx
