// Decoding ONNX protobuf messages for import_model (see import_proto_internal.h): tensors (raw,
// typed or external data; float16 widened), attributes and value infos. Every count and size comes
// from an untrusted file and is checked before anything is allocated or copied.
#include "kiln/onnx/import_proto_internal.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

namespace kiln::onnx::detail {
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

// Typed repeated field -> `numel` elements of T.
template <typename T, typename Field>
void copy_field(const Field& field, int64_t numel, void* dst, std::string_view where) {
  KILN_CHECK_AS(IOError, field.size() == numel, "{}: holds {} values but its dims need {}", where,
                field.size(), numel);
  T* out = static_cast<T*>(dst);
  for (int64_t i = 0; i < numel; ++i) out[i] = static_cast<T>(field.Get(static_cast<int>(i)));
}

}  // namespace

// ONNX element type -> Kiln dtype; false when Kiln has no such dtype.
bool dtype_of_elem(int32_t elem, DType& out) {
  switch (elem) {
    case pb::TensorProto::FLOAT:
      out = kFloat32;
      return true;
    case pb::TensorProto::DOUBLE:
      out = kFloat64;
      return true;
    case pb::TensorProto::INT32:
      out = kInt32;
      return true;
    case pb::TensorProto::INT64:
      out = kInt64;
      return true;
    case pb::TensorProto::BOOL:
      out = kBool;
      return true;
    case pb::TensorProto::UINT8:
      out = kUInt8;
      return true;
    default:
      return false;
  }
}

bool held_dtype_of_elem(int32_t elem, DType& out) {
  if (elem == pb::TensorProto::FLOAT16) {
    out = kFloat32;
    return true;
  }
  return dtype_of_elem(elem, out);
}

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
    KILN_CHECK_AS(IOError, t.int32_data_size() == numel, "{}: holds {} values, dims need {}", what,
                  t.int32_data_size(), numel);
    for (int64_t k = 0; k < numel; ++k)
      out[k] = half_to_float(static_cast<uint16_t>(t.int32_data(static_cast<int>(k))));
  }
  return a;
}

Array array_from_proto(const pb::TensorProto& t, const std::string& dir, std::string_view where,
                       bool widen_half) {
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
    KILN_CHECK_AS(
        IOError,
        !location.empty() && location.find("..") == std::string::npos && location[0] != '/',
        "{}: external data location '{}' must be a file beside the model", what, location);
    KILN_CHECK_AS(IOError, offset >= 0 && (length < 0 || length == nbytes),
                  "{}: external data offset {} / length {} do not fit {} bytes", what, offset,
                  length, nbytes);
    const std::string file = (std::filesystem::path(dir) / location).string();
    std::ifstream in(file, std::ios::binary);
    KILN_CHECK_AS(IOError, in.good(), "{}: cannot open external data file {}", what, file);
    in.seekg(0, std::ios::end);
    const int64_t size = in.tellg();
    KILN_CHECK_AS(IOError, offset <= size && nbytes <= size - offset,
                  "{}: external data file {} has {} bytes, needs {} at offset {}", what, file, size,
                  nbytes, offset);
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
    case DType::Float32:
      copy_field<float>(t.float_data(), numel, dst, what);
      break;
    case DType::Float64:
      copy_field<double>(t.double_data(), numel, dst, what);
      break;
    case DType::Int64:
      copy_field<int64_t>(t.int64_data(), numel, dst, what);
      break;
    case DType::Int32:
      copy_field<int32_t>(t.int32_data(), numel, dst, what);
      break;
    case DType::UInt8:
      copy_field<uint8_t>(t.int32_data(), numel, dst, what);
      break;
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

Attribute decode_attribute(const pb::AttributeProto& a, const std::string& dir,
                           std::string_view where) {
  Attribute out;
  switch (a.type()) {
    case pb::AttributeProto::INT:
      out.kind = Attribute::Int;
      out.i = a.i();
      break;
    case pb::AttributeProto::FLOAT:
      out.kind = Attribute::Float;
      out.f = a.f();
      break;
    case pb::AttributeProto::STRING:
      out.kind = Attribute::String;
      out.s = a.s();
      break;
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
      out.t = Tensor(array_from_proto(a.t(), dir, fmt::format("{} attribute '{}'", where, a.name()),
                                      /*widen_half=*/true));
      break;
    case pb::AttributeProto::GRAPH:
    case pb::AttributeProto::GRAPHS:
      out.kind = Attribute::Graph;
      break;
    default: {
      // Old files leave `type` unset (0); infer it from the one field that is set.
      if (a.has_i())
        out.kind = Attribute::Int, out.i = a.i();
      else if (a.has_f())
        out.kind = Attribute::Float, out.f = a.f();
      else if (a.has_s())
        out.kind = Attribute::String, out.s = a.s();
      else if (a.ints_size())
        out.kind = Attribute::Ints, out.ints.assign(a.ints().begin(), a.ints().end());
      else if (a.floats_size())
        out.kind = Attribute::Floats, out.floats.assign(a.floats().begin(), a.floats().end());
      else if (a.has_t())
        out.kind = Attribute::TensorValue,
        out.t = Tensor(array_from_proto(a.t(), dir, where, /*widen_half=*/true));
      break;
    }
  }
  return out;
}

// Which inputs of an op are weights (float initializers there are trainable by default).
bool is_weight_slot(const std::string& op, size_t k, const Array& value) {
  static const std::map<std::string, std::vector<size_t>> kSlots = {
      {"Gemm", {0, 1, 2}},
      {"MatMul", {0, 1}},
      {"Conv", {1, 2}},
      {"ConvTranspose", {1, 2}},
      {"BatchNormalization", {1, 2}},
      {"LayerNormalization", {1, 2}},
      {"InstanceNormalization", {1, 2}},
      {"PRelu", {1}},
      {"Gather", {0}},
      {"LSTM", {1, 2, 3}},
      {"GRU", {1, 2, 3}},
      {"RNN", {1, 2, 3}}};
  if (!is_floating(value.dtype())) return false;
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") return value.numel() > 1;
  auto it = kSlots.find(op);
  return it != kSlots.end() &&
         std::find(it->second.begin(), it->second.end(), k) != it->second.end();
}

StringTensor strings_from_proto(const pb::TensorProto& t, std::string_view where) {
  StringTensor out;
  int64_t n = 1;
  for (int64_t d : t.dims()) {
    KILN_CHECK_AS(IOError, d >= 0 && !__builtin_mul_overflow(n, d, &n),
                  "{}: string tensor '{}' has bad dims", where, t.name());
    out.shape.push_back(d);
  }
  KILN_CHECK_AS(IOError, n == t.string_data_size(),
                "{}: string tensor '{}' has {} strings for {} elements", where, t.name(),
                t.string_data_size(), n);
  out.data.assign(t.string_data().begin(), t.string_data().end());
  return out;
}

ValueInfo value_info(const pb::ValueInfoProto& v) {
  ValueInfo out;
  out.name = v.name();
  out.optional = v.type().has_optional_type();
  const pb::TypeProto& type = out.optional ? v.type().optional_type().elem_type() : v.type();
  const bool seq = type.has_sequence_type() && type.sequence_type().elem_type().has_tensor_type();
  if (seq) out.kind = ValueInfo::Kind::Sequence;
  if (type.has_tensor_type() && type.tensor_type().elem_type() == pb::TensorProto::STRING)
    out.kind = ValueInfo::Kind::String;
  if (type.has_tensor_type() || seq) {
    const auto& tt = seq ? type.sequence_type().elem_type().tensor_type() : type.tensor_type();
    DType d;
    if (held_dtype_of_elem(tt.elem_type(), d)) out.dtype = d;
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

}  // namespace kiln::onnx::detail
