// Reading and summarising ONNX files (see reader.h). Everything here must survive hostile input:
// the fuzz test in tests/onnx feeds truncated and bit-flipped models, under ASan and UBSan.
#include "kiln/onnx/reader.h"

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "kiln/onnx/proto_internal.h"
#include "kiln/tensor/error.h"

namespace kiln::onnx {

static_assert(std::endian::native == std::endian::little,
              "TensorData and raw_data are little-endian; a big-endian host needs byte swaps");

namespace detail {

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

std::vector<std::byte> read_file(const std::string& path, int64_t max_bytes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  KILN_CHECK_AS(IOError, !ec && fs::exists(st), "{}: no such file", path);
  KILN_CHECK_AS(IOError, !fs::is_directory(st), "{}: is a directory, not a file", path);
  KILN_CHECK_AS(IOError, fs::is_regular_file(st), "{}: not a regular file", path);
  const auto size = fs::file_size(path, ec);
  KILN_CHECK_AS(IOError, !ec, "{}: cannot read the file size: {}", path, ec.message());
  KILN_CHECK_AS(IOError, size <= static_cast<uintmax_t>(max_bytes),
                "{}: file is {} bytes, more than the {} bytes a protobuf message can hold (larger "
                "ONNX models keep their weights in external data files)",
                path, size, max_bytes);
  std::ifstream in(path, std::ios::binary);
  KILN_CHECK_AS(IOError, in.good(), "{}: cannot open for reading", path);
  std::vector<std::byte> bytes(size);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  KILN_CHECK_AS(IOError, in.gcount() == static_cast<std::streamsize>(size),
                "{}: read {} of {} bytes", path, in.gcount(), size);
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Parse-failure diagnosis: protobuf only says "failed", so walk the wire format ourselves to name
// the first malformed field (with its path through the ONNX messages) and its byte offset.
// ---------------------------------------------------------------------------------------------

namespace {

enum class Msg : uint8_t { kOther, kModel, kGraph, kNode, kAttribute, kTensor, kSparse, kFunction };

// Length-delimited fields of ONNX messages that hold sub-messages (from onnx.proto).
struct SubField {
  Msg parent;
  uint32_t field;
  Msg child;
  const char* name;
};
constexpr SubField kSubFields[] = {
    {Msg::kModel, 7, Msg::kGraph, "graph"},
    {Msg::kModel, 8, Msg::kOther, "opset_import"},
    {Msg::kModel, 14, Msg::kOther, "metadata_props"},
    {Msg::kModel, 25, Msg::kFunction, "functions"},
    {Msg::kGraph, 1, Msg::kNode, "node"},
    {Msg::kGraph, 5, Msg::kTensor, "initializer"},
    {Msg::kGraph, 11, Msg::kOther, "input"},
    {Msg::kGraph, 12, Msg::kOther, "output"},
    {Msg::kGraph, 13, Msg::kOther, "value_info"},
    {Msg::kGraph, 15, Msg::kSparse, "sparse_initializer"},
    {Msg::kNode, 5, Msg::kAttribute, "attribute"},
    {Msg::kAttribute, 5, Msg::kTensor, "t"},
    {Msg::kAttribute, 6, Msg::kGraph, "g"},
    {Msg::kAttribute, 10, Msg::kTensor, "tensors"},
    {Msg::kAttribute, 11, Msg::kGraph, "graphs"},
    {Msg::kAttribute, 22, Msg::kSparse, "sparse_tensor"},
    {Msg::kTensor, 13, Msg::kOther, "external_data"},
    {Msg::kSparse, 1, Msg::kTensor, "values"},
    {Msg::kSparse, 2, Msg::kTensor, "indices"},
    {Msg::kFunction, 7, Msg::kNode, "node"},
};
constexpr int kMaxWireDepth = 100;  // protobuf's default recursion limit

struct WireFailure {
  size_t offset;
  std::string path;
  std::string what;
};

class WireWalker {
 public:
  explicit WireWalker(std::span<const std::byte> b) : b_(b) {}

  std::optional<WireFailure> walk(size_t pos, size_t end, Msg msg, const std::string& path,
                                  int depth) {
    if (depth > kMaxWireDepth) {
      return WireFailure{pos, path, fmt::format("nesting deeper than {} levels", kMaxWireDepth)};
    }
    std::map<uint32_t, int> seen;  // field -> occurrences so far, for "node[3]"
    while (pos < end) {
      const size_t tag_at = pos;
      uint64_t tag = 0;
      if (!varint(pos, end, tag)) return WireFailure{tag_at, path, "truncated or overlong tag"};
      const auto field = static_cast<uint32_t>(tag >> 3);
      const auto wire = static_cast<unsigned>(tag & 7);
      if (field == 0) return WireFailure{tag_at, path, "field number 0"};
      const SubField* sub = find(msg, field);
      const std::string label = sub ? sub->name : fmt::format("field {}", field);
      uint64_t skip = 0;
      switch (wire) {
        case 0:
          if (!varint(pos, end, skip)) {
            return WireFailure{tag_at, path, fmt::format("{}: truncated varint", label)};
          }
          continue;
        case 1:
          skip = 8;
          break;
        case 5:
          skip = 4;
          break;
        case 2:
          if (!varint(pos, end, skip)) {
            return WireFailure{tag_at, path, fmt::format("{}: truncated length", label)};
          }
          break;
        default:
          return WireFailure{tag_at, path,
                             fmt::format("{}: wire type {} is not used by ONNX", label, wire)};
      }
      if (skip > end - pos) {
        return WireFailure{tag_at, path,
                           fmt::format("{} needs {} bytes but only {} remain (truncated?)", label,
                                       skip, end - pos)};
      }
      if (wire == 2) {
        if (sub) {
          const std::string child_path =
              fmt::format("{}{}{}[{}]", path, path.empty() ? "" : ".", sub->name, seen[field]++);
          if (auto f = walk(pos, pos + skip, sub->child, child_path, depth + 1)) return f;
        }
      }
      pos += skip;
    }
    return std::nullopt;
  }

 private:
  bool varint(size_t& pos, size_t end, uint64_t& v) const {
    v = 0;
    for (int shift = 0; shift < 64 && pos < end; shift += 7) {
      const auto byte = static_cast<uint8_t>(b_[pos++]);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return true;
    }
    return false;
  }
  static const SubField* find(Msg msg, uint32_t field) {
    for (const SubField& s : kSubFields) {
      if (s.parent == msg && s.field == field) return &s;
    }
    return nullptr;
  }

  std::span<const std::byte> b_;
};

std::string describe_parse_failure(std::span<const std::byte> bytes) {
  WireWalker walker(bytes);
  auto f = walker.walk(0, bytes.size(), Msg::kModel, "", 0);
  if (!f) return "protobuf parse failed";
  return fmt::format("protobuf parse failed at byte {}{}{}: {}", f->offset,
                     f->path.empty() ? "" : " in ", f->path, f->what);
}

}  // namespace

pb::ModelProto parse_model(std::span<const std::byte> bytes, std::string_view name) {
  KILN_CHECK_AS(IOError, !bytes.empty(), "{}: empty file (0 bytes), not an ONNX model", name);
  KILN_CHECK_AS(IOError, static_cast<int64_t>(bytes.size()) <= kMaxModelFileBytes,
                "{}: {} bytes, more than a protobuf message can hold", name, bytes.size());
  pb::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    throw IOError(
        fmt::format("{}: not a valid ONNX model ({})", name, describe_parse_failure(bytes)));
  }
  // Protobuf accepts many byte strings as a message made only of unknown fields; a model must at
  // least say which IR it follows and carry a graph.
  KILN_CHECK_AS(IOError, model.has_ir_version() && model.ir_version() > 0,
                "{}: not a valid ONNX model (no ir_version: is this an ONNX file?)", name);
  KILN_CHECK_AS(IOError, model.has_graph(), "{}: not a valid ONNX model (it has no graph)", name);
  return model;
}

// ---------------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------------

std::string element_type_name(int32_t elem_type) {
  // Indexed by onnx.TensorProto.DataType; 17..23 are the float8/int4/float4 types of later ONNX.
  static constexpr const char* kNames[] = {
      "undefined",      "float32",    "uint8",          "int8",       "uint16",   "int16",
      "int32",          "int64",      "string",         "bool",       "float16",  "float64",
      "uint32",         "uint64",     "complex64",      "complex128", "bfloat16", "float8e4m3fn",
      "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "uint4",      "int4",     "float4e2m1"};
  if (elem_type >= 0 && elem_type < static_cast<int32_t>(std::size(kNames))) {
    return kNames[elem_type];
  }
  return fmt::format("unknown({})", elem_type);
}

namespace {

std::string type_string(const pb::TypeProto& t) {
  switch (t.value_case()) {
    case pb::TypeProto::kTensorType:
      return element_type_name(t.tensor_type().elem_type());
    case pb::TypeProto::kSparseTensorType:
      return "sparse_tensor(" + element_type_name(t.sparse_tensor_type().elem_type()) + ")";
    case pb::TypeProto::kSequenceType:
      return "seq(" + type_string(t.sequence_type().elem_type()) + ")";
    case pb::TypeProto::kOptionalType:
      return "optional(" + type_string(t.optional_type().elem_type()) + ")";
    case pb::TypeProto::kMapType:
      return "map(" + element_type_name(t.map_type().key_type()) + ", " +
             type_string(t.map_type().value_type()) + ")";
    case pb::TypeProto::kOpaqueType:
      return "opaque(" + t.opaque_type().domain() + ":" + t.opaque_type().name() + ")";
    default:
      return "unknown";
  }
}

std::optional<std::vector<Dim>> shape_of(const pb::TypeProto& t) {
  const pb::TensorShapeProto* shape = nullptr;
  if (t.has_tensor_type() && t.tensor_type().has_shape()) shape = &t.tensor_type().shape();
  if (t.has_sparse_tensor_type() && t.sparse_tensor_type().has_shape()) {
    shape = &t.sparse_tensor_type().shape();
  }
  if (!shape) return std::nullopt;
  std::vector<Dim> dims;
  dims.reserve(shape->dim_size());
  for (const auto& d : shape->dim()) {
    Dim dim;
    if (d.has_dim_value()) dim.value = d.dim_value();
    if (d.has_dim_param()) dim.param = d.dim_param();
    dims.push_back(std::move(dim));
  }
  return dims;
}

ValueSummary value_summary(const pb::ValueInfoProto& v) {
  return ValueSummary{v.name(), v.has_type() ? type_string(v.type()) : "unknown",
                      v.has_type() ? shape_of(v.type()) : std::nullopt};
}

// Counts nodes by op over a graph and the subgraphs in its attributes (If/Loop/Scan bodies). The
// depth is bounded by protobuf's recursion limit on the parsed message.
void count_ops(const pb::GraphProto& g, std::map<std::string, int64_t>& ops) {
  for (const auto& node : g.node()) {
    const bool default_domain = node.domain().empty() || node.domain() == "ai.onnx";
    ++ops[default_domain ? node.op_type() : node.domain() + ":" + node.op_type()];
    for (const auto& attr : node.attribute()) {
      if (attr.has_g()) count_ops(attr.g(), ops);
      for (const auto& sub : attr.graphs()) count_ops(sub, ops);
    }
  }
}

// Overflow-checked arithmetic on counts read from the file. `what` (and `tensor`, when given) name
// the quantity; the message is only formatted on failure.
int64_t checked_mul(int64_t a, int64_t b, std::string_view name, std::string_view what,
                    std::string_view tensor = {}) {
  int64_t r = 0;
  KILN_CHECK_AS(IOError, !__builtin_mul_overflow(a, b, &r), "{}: {}{} overflows int64", name, what,
                tensor.empty() ? std::string() : fmt::format(" of tensor '{}'", tensor));
  return r;
}
int64_t checked_add(int64_t a, int64_t b, std::string_view name, std::string_view what) {
  int64_t r = 0;
  KILN_CHECK_AS(IOError, !__builtin_add_overflow(a, b, &r), "{}: {} overflows int64", name, what);
  return r;
}

// Element count of a tensor with these dims; throws for negative dims or int64 overflow.
template <typename Dims>
int64_t element_count(const Dims& dims, std::string_view name, std::string_view tensor) {
  int64_t n = 1;
  for (int64_t d : dims) {
    KILN_CHECK_AS(IOError, d >= 0, "{}: tensor '{}' has a negative dimension {} in [{}]", name,
                  tensor, d, fmt::join(dims, ", "));
    n = checked_mul(n, d, name, "the element count", tensor);
  }
  return n;
}

}  // namespace

ModelSummary summarise(const pb::ModelProto& model, std::string_view name, int64_t file_bytes) {
  ModelSummary s;
  s.path = std::string(name);
  s.file_bytes = file_bytes;
  s.ir_version = model.ir_version();
  for (const auto& o : model.opset_import()) s.opset_import.push_back({o.domain(), o.version()});
  s.producer_name = model.producer_name();
  s.producer_version = model.producer_version();
  s.domain = model.domain();
  s.model_version = model.model_version();
  s.doc_string = model.doc_string();
  for (const auto& p : model.metadata_props()) s.metadata_props.emplace_back(p.key(), p.value());
  s.function_count = model.functions_size();

  const pb::GraphProto& g = model.graph();
  s.graph_name = g.name();
  std::vector<std::string_view> init_names;
  for (const auto& t : g.initializer()) init_names.push_back(t.name());
  for (const auto& t : g.sparse_initializer()) init_names.push_back(t.values().name());
  std::sort(init_names.begin(), init_names.end());
  for (const auto& v : g.input()) {
    if (!std::binary_search(init_names.begin(), init_names.end(), v.name())) {
      s.inputs.push_back(value_summary(v));
    }
  }
  for (const auto& v : g.output()) s.outputs.push_back(value_summary(v));

  std::map<std::string, int64_t> ops;
  count_ops(g, ops);
  s.ops.assign(ops.begin(), ops.end());
  std::stable_sort(s.ops.begin(), s.ops.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [op, n] : s.ops) s.node_count += n;

  auto add_tensor = [&](const pb::TensorProto& t, int64_t numel) {
    s.parameters = checked_add(s.parameters, numel, name, "the parameter count");
    int64_t bytes = 0;
    if (t.data_type() == pb::TensorProto::STRING) {
      for (const auto& str : t.string_data()) {
        bytes = checked_add(bytes, static_cast<int64_t>(str.size()), name, "string bytes");
      }
    } else {
      const auto size = static_cast<int64_t>(element_size(element_type_name(t.data_type())));
      bytes = checked_mul(numel, size, name, "the byte size", t.name());
    }
    s.parameter_bytes = checked_add(s.parameter_bytes, bytes, name, "the parameter byte count");
    if (t.data_location() == pb::TensorProto::EXTERNAL) {
      std::string location = "(no location given)";
      for (const auto& e : t.external_data()) {
        if (e.key() == "location") location = e.value();
      }
      auto& files = s.external_data_files;
      if (std::find(files.begin(), files.end(), location) == files.end()) {
        files.push_back(location);
      }
    }
  };
  for (const auto& t : g.initializer()) add_tensor(t, element_count(t.dims(), name, t.name()));
  for (const auto& t : g.sparse_initializer()) {
    add_tensor(t.values(), element_count(t.dims(), name, t.values().name()));
  }
  s.initializer_count = g.initializer_size() + g.sparse_initializer_size();
  return s;
}

namespace {

// onnx::checker::check_model (on the file when `path` is given, so that external data files are
// checked too), then strict shape inference with type checks: Python's
// check_model(full_check=True).
CheckResult full_check(const pb::ModelProto& model, const std::string* path) {
  try {
    if (path) {
      pb::checker::check_model(*path);
    } else {
      pb::checker::check_model(model);
    }
    pb::ModelProto copy = model;
    pb::shape_inference::InferShapes(copy, pb::OpSchemaRegistry::Instance(),
                                     pb::ShapeInferenceOptions(/*check_type=*/true,
                                                               /*strict_mode=*/1));
  } catch (const std::exception& e) {
    return CheckResult{false, e.what()};
  }
  return CheckResult{true, ""};
}

}  // namespace

CheckResult check_model_proto(const pb::ModelProto& model) {
  return full_check(model, nullptr);
}

}  // namespace detail

// -----------------------------------------------------------------------------------------------
// Public entry points
// -----------------------------------------------------------------------------------------------

ModelSummary inspect_model(const std::string& path) {
  const std::vector<std::byte> bytes = detail::read_file(path, kMaxModelFileBytes);
  return inspect_model_bytes(bytes, path);
}

ModelSummary inspect_model_bytes(std::span<const std::byte> bytes, std::string_view name) {
  const auto model = detail::parse_model(bytes, name);
  return detail::summarise(model, name, static_cast<int64_t>(bytes.size()));
}

CheckResult check_model(const std::string& path) {
  const auto model = detail::parse_model(detail::read_file(path, kMaxModelFileBytes), path);
  return detail::full_check(model, &path);
}

size_t element_size(std::string_view dtype) {
  static constexpr std::pair<std::string_view, size_t> kSizes[] = {
      {"float32", 4},        {"float64", 8},    {"float16", 2},       {"bfloat16", 2},
      {"int8", 1},           {"int16", 2},      {"int32", 4},         {"int64", 8},
      {"uint8", 1},          {"uint16", 2},     {"uint32", 4},        {"uint64", 8},
      {"bool", 1},           {"complex64", 8},  {"complex128", 16},   {"float8e4m3fn", 1},
      {"float8e4m3fnuz", 1}, {"float8e5m2", 1}, {"float8e5m2fnuz", 1}};
  for (const auto& [n, size] : kSizes) {
    if (n == dtype) return size;
  }
  return 0;
}

int64_t TensorData::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

namespace {

// Copies `count` values of a typed repeated field into `out`, narrowing each to `size` bytes
// (int32_data carries int8/int16/uint8/uint16/bool/float16 values, uint64_data carries uint32).
template <typename Field>
void copy_narrowed(const Field& field, size_t size, std::vector<std::byte>& out) {
  using T = typename Field::value_type;
  out.resize(static_cast<size_t>(field.size()) * size);
  for (int i = 0; i < field.size(); ++i) {
    const T v = field.Get(i);
    std::memcpy(out.data() + static_cast<size_t>(i) * size, &v, std::min(size, sizeof(T)));
  }
}

}  // namespace

TensorData read_tensor_proto(const std::string& path) {
  namespace pb = detail::pb;
  const auto bytes = detail::read_file(path, kMaxModelFileBytes);
  pb::TensorProto t;
  KILN_CHECK_AS(IOError, t.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())),
                "{}: not a valid onnx.TensorProto (protobuf parse failed)", path);
  KILN_CHECK_AS(IOError, t.data_location() != pb::TensorProto::EXTERNAL,
                "{}: tensor '{}' keeps its data in an external file, which is not supported here",
                path, t.name());
  TensorData out;
  out.name = t.name();
  out.dtype = detail::element_type_name(t.data_type());
  out.dims.assign(t.dims().begin(), t.dims().end());
  const size_t size = element_size(out.dtype);
  KILN_CHECK_AS(IOError, size > 0, "{}: tensor '{}' has element type {}, which is not supported",
                path, t.name(), out.dtype);
  const int64_t numel = detail::element_count(out.dims, path, t.name());
  const int64_t nbytes =
      detail::checked_mul(numel, static_cast<int64_t>(size), path, "the byte size", t.name());

  if (t.has_raw_data()) {
    const std::string& raw = t.raw_data();
    out.data.resize(raw.size());
    std::memcpy(out.data.data(), raw.data(), raw.size());
  } else {
    switch (t.data_type()) {
      case pb::TensorProto::FLOAT:
      case pb::TensorProto::COMPLEX64:
        copy_narrowed(t.float_data(), 4, out.data);
        break;
      case pb::TensorProto::DOUBLE:
      case pb::TensorProto::COMPLEX128:
        copy_narrowed(t.double_data(), 8, out.data);
        break;
      case pb::TensorProto::INT64:
        copy_narrowed(t.int64_data(), 8, out.data);
        break;
      case pb::TensorProto::UINT32:
      case pb::TensorProto::UINT64:
        copy_narrowed(t.uint64_data(), size, out.data);
        break;
      default:
        copy_narrowed(t.int32_data(), size, out.data);
        break;
    }
  }
  KILN_CHECK_AS(IOError, static_cast<int64_t>(out.data.size()) == nbytes,
                "{}: tensor '{}' of {} [{}] needs {} bytes of data but holds {}", path, t.name(),
                out.dtype, fmt::join(out.dims, ", "), nbytes, out.data.size());
  return out;
}

// -----------------------------------------------------------------------------------------------
// Rendering: text for people, JSON for machines
// -----------------------------------------------------------------------------------------------

namespace {

// Length of the valid UTF-8 sequence starting at s[i] (2..4 bytes), or 0 when it is not one.
size_t utf8_sequence(std::string_view s, size_t i) {
  const auto c = static_cast<uint8_t>(s[i]);
  const size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
  if (n == 0 || n > s.size() - i || (c >= 0xE0 && n != (c >= 0xF0 ? 4u : 3u))) return 0;
  uint32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    const auto cc = static_cast<uint8_t>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  const bool surrogate_or_too_big = (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF;
  return overlong || surrogate_or_too_big ? 0 : n;
}

// Names as a terminal should show them: printable ASCII and valid UTF-8 as is, anything else as
// \xNN; an empty name as ''.
std::string printable(std::string_view s) {
  if (s.empty()) return "''";
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
      ++i;
    } else if (size_t n = c >= 0x80 ? utf8_sequence(s, i) : 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += fmt::format("\\x{:02x}", c);
      ++i;
    }
  }
  return out;
}

// 25557032 -> "25,557,032".
std::string group_digits(int64_t v) {
  const std::string digits = std::to_string(v);
  const size_t sign = digits[0] == '-' ? 1 : 0;
  std::string out = digits.substr(0, sign);
  for (size_t i = sign; i < digits.size(); ++i) {
    if (i > sign && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// 102228128 -> "97.5 MiB".
std::string human_bytes(int64_t v) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double x = static_cast<double>(v);
  size_t u = 0;
  while (x >= 1024 && u + 1 < std::size(kUnits)) {
    x /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", v) : fmt::format("{:.1f} {}", x, kUnits[u]);
}

std::string domain_name(std::string_view domain) {
  return domain.empty() ? "ai.onnx" : printable(domain);
}

// A minimal JSON emitter: commas and escaping are its only jobs.
class JsonWriter {
 public:
  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }
  JsonWriter& key(std::string_view k) {
    comma();
    string(k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  JsonWriter& value(std::string_view v) { return comma(), string(v), *this; }
  JsonWriter& value(const char* v) { return value(std::string_view(v)); }
  JsonWriter& value(int64_t v) { return comma(), out_ += std::to_string(v), *this; }
  JsonWriter& value(bool v) { return comma(), out_ += v ? "true" : "false", *this; }
  JsonWriter& null() { return comma(), out_ += "null", *this; }
  std::string str() && { return std::move(out_); }

 private:
  JsonWriter& open(char c) {
    comma();
    out_ += c;
    first_ = true;
    return *this;
  }
  JsonWriter& close(char c) {
    out_ += c;
    first_ = false;
    return *this;
  }
  void comma() {
    if (!first_ && !after_key_) out_ += ',';
    first_ = false;
    after_key_ = false;
  }
  // Escapes quotes, backslashes and control characters; invalid UTF-8 becomes U+FFFD so the output
  // stays valid JSON whatever bytes the model holds.
  void string(std::string_view s) {
    out_ += '"';
    for (size_t i = 0; i < s.size();) {
      const auto c = static_cast<uint8_t>(s[i]);
      if (c == '"' || c == '\\') {
        out_ += '\\';
        out_ += static_cast<char>(c);
      } else if (c == '\n') {
        out_ += "\\n";
      } else if (c == '\t') {
        out_ += "\\t";
      } else if (c == '\r') {
        out_ += "\\r";
      } else if (c < 0x20) {
        out_ += fmt::format("\\u{:04x}", c);
      } else if (c >= 0x80) {
        const size_t n = utf8_sequence(s, i);
        out_ += n ? s.substr(i, n) : "\\ufffd";
        i += n ? n : 1;
        continue;
      } else {
        out_ += static_cast<char>(c);
      }
      ++i;
    }
    out_ += '"';
  }

  std::string out_;
  bool first_ = true;
  bool after_key_ = false;
};

void write_values(JsonWriter& w, const std::vector<ValueSummary>& values) {
  w.begin_array();
  for (const auto& v : values) {
    w.begin_object().key("name").value(v.name).key("type").value(v.type).key("shape");
    if (!v.shape) {
      w.null();
    } else {
      w.begin_array();
      for (const Dim& d : *v.shape) {
        if (d.is_value()) {
          w.value(*d.value);
        } else if (d.is_param()) {
          w.value(d.param);
        } else {
          w.null();
        }
      }
      w.end_array();
    }
    w.end_object();
  }
  w.end_array();
}

}  // namespace

std::string format_shape(const std::optional<std::vector<Dim>>& shape) {
  if (!shape) return "?";
  std::string out = "[";
  for (size_t i = 0; i < shape->size(); ++i) {
    const Dim& d = (*shape)[i];
    if (i) out += ", ";
    out += d.is_value() ? std::to_string(*d.value) : d.is_param() ? printable(d.param) : "?";
  }
  return out + "]";
}

std::string format_summary(const ModelSummary& s, const CheckResult* check) {
  std::string out =
      fmt::format("{}: ONNX model, {}\n", printable(s.path), human_bytes(s.file_bytes));
  auto line = [&](std::string_view label, std::string_view text) {
    out += fmt::format("  {:<15}{}\n", label, text);
  };
  line("IR version", std::to_string(s.ir_version));
  std::vector<std::string> opsets;
  for (const auto& o : s.opset_import) {
    opsets.push_back(fmt::format("{} {}", domain_name(o.domain), o.version));
  }
  line("opset import", opsets.empty() ? "(none)" : fmt::format("{}", fmt::join(opsets, ", ")));
  std::string producer = printable(s.producer_name);
  if (!s.producer_version.empty()) producer += " " + printable(s.producer_version);
  line("producer", s.producer_name.empty() && s.producer_version.empty() ? "(none)" : producer);
  if (!s.domain.empty() || s.model_version != 0) {
    line("model", fmt::format("{} version {}", printable(s.domain), s.model_version));
  }
  line("graph", printable(s.graph_name));
  for (const auto& [k, v] : s.metadata_props) {
    line("metadata", fmt::format("{} = {}", printable(k), printable(v.substr(0, 200))));
  }

  auto values = [&](std::string_view label, const std::vector<ValueSummary>& vs) {
    out += fmt::format("  {} ({})\n", label, vs.size());
    size_t name_w = 0, type_w = 0;
    for (const auto& v : vs) {
      name_w = std::max(name_w, printable(v.name).size());
      type_w = std::max(type_w, v.type.size());
    }
    for (const auto& v : vs) {
      out += fmt::format("    {:<{}}  {:<{}}  {}\n", printable(v.name), name_w, printable(v.type),
                         type_w, format_shape(v.shape));
    }
  };
  values("inputs", s.inputs);
  values("outputs", s.outputs);

  line("parameters",
       fmt::format("{} in {} initializer{} ({})", group_digits(s.parameters), s.initializer_count,
                   s.initializer_count == 1 ? "" : "s", human_bytes(s.parameter_bytes)));
  std::vector<std::string> files;
  for (const auto& f : s.external_data_files) files.push_back(printable(f));
  line("external data", files.empty() ? "none" : fmt::format("{}", fmt::join(files, ", ")));
  if (s.function_count) line("functions", std::to_string(s.function_count));

  out += fmt::format("  ops ({} node{}, {} type{})\n", s.node_count, s.node_count == 1 ? "" : "s",
                     s.ops.size(), s.ops.size() == 1 ? "" : "s");
  size_t op_w = 0;
  for (const auto& [op, n] : s.ops) op_w = std::max(op_w, printable(op).size());
  for (const auto& [op, n] : s.ops) out += fmt::format("    {:<{}}  {}\n", printable(op), op_w, n);
  if (check) {
    // The checker's message can span lines: escape each and indent them under the label.
    std::string_view msg = check->message;
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.remove_suffix(1);
    std::string text = check->ok ? "ok" : "FAILED: ";
    for (size_t start = 0; !check->ok && start <= msg.size();) {
      const size_t nl = std::min(msg.find('\n', start), msg.size());
      if (start) text += "\n" + std::string(17, ' ');
      if (nl > start) text += printable(msg.substr(start, nl - start));
      start = nl + 1;
    }
    line("checker", text);
  }
  return out;
}

std::string summary_to_json(const ModelSummary& s, const CheckResult* check) {
  JsonWriter w;
  w.begin_object();
  w.key("path").value(s.path).key("file_bytes").value(s.file_bytes);
  w.key("ir_version").value(s.ir_version);
  w.key("opset_import").begin_array();
  for (const auto& o : s.opset_import) {
    w.begin_object().key("domain").value(o.domain).key("version").value(o.version).end_object();
  }
  w.end_array();
  w.key("producer").begin_object();
  w.key("name").value(s.producer_name).key("version").value(s.producer_version).end_object();
  w.key("domain").value(s.domain).key("model_version").value(s.model_version);
  w.key("graph").value(s.graph_name);
  w.key("inputs");
  write_values(w, s.inputs);
  w.key("outputs");
  write_values(w, s.outputs);
  w.key("ops").begin_object();
  for (const auto& [op, n] : s.ops) w.key(op).value(n);
  w.end_object();
  w.key("nodes").value(s.node_count).key("functions").value(s.function_count);
  w.key("initializers").value(s.initializer_count);
  w.key("parameters").value(s.parameters).key("parameter_bytes").value(s.parameter_bytes);
  w.key("external_data").value(s.uses_external_data());
  w.key("external_data_files").begin_array();
  for (const auto& f : s.external_data_files) w.value(f);
  w.end_array();
  w.key("metadata").begin_object();
  for (const auto& [k, v] : s.metadata_props) w.key(k).value(v);
  w.end_object();
  if (check) {
    w.key("check").begin_object();
    w.key("ok").value(check->ok).key("message").value(check->message).end_object();
  }
  w.end_object();
  return std::move(w).str();
}

}  // namespace kiln::onnx
