#include "kiln/io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <unordered_set>

#include "kiln/io/atomic_file.h"
#include "kiln/io/json.h"
#include "kiln/tensor/error.h"

namespace kiln {

static_assert(
    std::endian::native == std::endian::little,
    "safetensors stores little-endian data; Kiln's reader and writer assume a little-endian host");

namespace {

// The reference implementation's bound on the header: larger headers are refused before allocating.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

const char* safetensors_dtype(DType t) {
  switch (t) {
    case DType::Bool:
      return "BOOL";
    case DType::UInt8:
      return "U8";
    case DType::Int32:
      return "I32";
    case DType::Int64:
      return "I64";
    case DType::Float32:
      return "F32";
    case DType::Float64:
      return "F64";
  }
  return "?";
}

// Kiln's dtype for a safetensors dtype string; false when Kiln has no such dtype.
bool kiln_dtype(std::string_view s, DType& out) {
  static const std::pair<std::string_view, DType> table[] = {
      {"BOOL", DType::Bool}, {"U8", DType::UInt8},    {"I32", DType::Int32},
      {"I64", DType::Int64}, {"F32", DType::Float32}, {"F64", DType::Float64}};
  for (const auto& [name, t] : table)
    if (s == name) {
      out = t;
      return true;
    }
  return false;
}

bool is_known_unsupported_dtype(std::string_view s) {
  static const std::string_view known[] = {"F16", "BF16", "I8",      "I16",    "U16",
                                           "U32", "U64",  "F8_E4M3", "F8_E5M2"};
  return std::find(std::begin(known), std::end(known), s) != std::end(known);
}

struct Entry {
  std::string name;
  DType dtype = DType::Float32;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

[[noreturn]] void fail(std::string_view source, std::string_view what) {
  throw IOError(fmt::format("safetensors: {}: {}", source, what));
}

uint64_t read_u64_le(const char* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, 8);
  return v;
}

// A non-negative integer from a JSON value, or a failure naming `what`.
uint64_t non_negative(const json::Value& v, std::string_view source, const std::string& what) {
  if (!v.is_int() || v.as_int() < 0)
    fail(source, fmt::format("{} must be a non-negative integer, got {}", what, v.dump()));
  return static_cast<uint64_t>(v.as_int());
}

// Parses and validates the header against a data buffer of `buffer_size` bytes. Every check runs
// here, before a single tensor byte is read.
std::vector<Entry> parse_header(std::string_view header, uint64_t buffer_size,
                                std::string_view source, SafetensorsMetadata& metadata) {
  json::Value root;
  try {
    root = json::parse(header, fmt::format("safetensors: {}: header", source));
  } catch (const IOError&) {
    throw;
  } catch (const Error& e) {
    fail(source, fmt::format("malformed header: {}", e.what()));
  }
  if (!root.is_object())
    fail(source, fmt::format("the header must be a JSON object, got {}", root.kind_name()));
  std::vector<Entry> entries;
  entries.reserve(root.size());
  for (const auto& [name, v] : root.members()) {
    if (name == "__metadata__") {
      if (!v.is_object())
        fail(source, fmt::format("__metadata__ must be an object, got {}", v.kind_name()));
      for (const auto& [k, s] : v.members()) {
        if (!s.is_string())
          fail(source, fmt::format("__metadata__[{}] must be a string, got {}", json::quote(k),
                                   s.kind_name()));
        metadata[k] = s.as_string();
      }
      continue;
    }
    const std::string where = fmt::format("tensor {}", json::quote(name));
    if (!v.is_object())
      fail(source, fmt::format("{}: entry must be an object, got {}", where, v.kind_name()));
    const json::Value* dtype = v.find("dtype");
    const json::Value* shape = v.find("shape");
    const json::Value* offsets = v.find("data_offsets");
    if (!dtype || !shape || !offsets)
      fail(source, fmt::format("{}: entry needs \"dtype\", \"shape\" and \"data_offsets\", got {}",
                               where, v.dump().substr(0, 200)));
    Entry e;
    e.name = name;
    if (!dtype->is_string())
      fail(source,
           fmt::format("{}: dtype must be a string, got {}", where, dtype->dump().substr(0, 40)));
    if (!kiln_dtype(dtype->as_string(), e.dtype)) {
      const std::string& d = dtype->as_string();
      fail(source,
           is_known_unsupported_dtype(d)
               ? fmt::format("{}: dtype {} is not supported by Kiln (BOOL, U8, I32, I64, F32, F64)",
                             where, d)
               : fmt::format(
                     "{}: unknown dtype {} (safetensors dtypes: BOOL, U8, I32, I64, F32, F64, "
                     "F16, BF16, ...)",
                     where, json::quote(d.substr(0, 40))));
    }
    if (!shape->is_array())
      fail(source, fmt::format("{}: shape must be an array, got {}", where, shape->kind_name()));
    for (size_t i = 0; i < shape->size(); ++i) {
      uint64_t d = non_negative(shape->at(i), source, fmt::format("{}: shape[{}]", where, i));
      if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(source, fmt::format("{}: shape[{}] = {} is too large", where, i, d));
      e.shape.push_back(static_cast<int64_t>(d));
    }
    // Even a tensor with a 0 dim gets strides from the other dims: their product must fit int64.
    uint64_t extent = 1;
    for (int64_t d : e.shape) {
      if (d == 0) continue;
      if (extent > (uint64_t{1} << 62) / static_cast<uint64_t>(d))
        fail(source, fmt::format("{}: shape {} is too large", where, shape->dump().substr(0, 80)));
      extent *= static_cast<uint64_t>(d);
    }
    // numel × itemsize must fit the buffer; dividing (not multiplying) keeps the check
    // overflow-free.
    bool too_big = false;
    uint64_t bytes = dtype_size(e.dtype);
    if (std::find(e.shape.begin(), e.shape.end(), 0) != e.shape.end()) bytes = 0;
    for (int64_t d : e.shape) {
      if (bytes == 0) break;
      if (bytes > buffer_size / static_cast<uint64_t>(d)) {
        too_big = true;
        break;
      }
      bytes *= static_cast<uint64_t>(d);
    }
    if (!offsets->is_array() || offsets->size() != 2)
      fail(source, fmt::format("{}: data_offsets must be [begin, end], got {}", where,
                               offsets->dump().substr(0, 60)));
    e.begin = non_negative(offsets->at(0), source, where + ": data_offsets[0]");
    e.end = non_negative(offsets->at(1), source, where + ": data_offsets[1]");
    if (e.begin > e.end)
      fail(source,
           fmt::format("{}: data_offsets [{}, {}] end before they begin", where, e.begin, e.end));
    if (e.end > buffer_size)
      fail(source,
           fmt::format(
               "{}: data_offsets [{}, {}] run past the data buffer of {} bytes (truncated file?)",
               where, e.begin, e.end, buffer_size));
    if (too_big || (bytes != 0 && bytes != e.end - e.begin))
      fail(source,
           fmt::format(
               "{}: shape {} × {} ({} bytes each) does not match the {} bytes of data_offsets "
               "[{}, {}]",
               where, shape->dump(), dtype->as_string(), dtype_size(e.dtype), e.end - e.begin,
               e.begin, e.end));
    if (bytes == 0 && e.end != e.begin)
      fail(source,
           fmt::format("{}: shape {} has no elements but data_offsets [{}, {}] span {} bytes",
                       where, shape->dump(), e.begin, e.end, e.end - e.begin));
    entries.push_back(std::move(e));
  }
  // The tensors must tile the buffer exactly: no overlap (two tensors sharing bytes) and no holes
  // (bytes no tensor owns — the format forbids them so a file cannot smuggle other content).
  std::vector<const Entry*> order;
  for (const Entry& e : entries) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t cursor = 0;
  for (const Entry* e : order) {
    if (e->begin < cursor)
      fail(source,
           fmt::format(
               "tensor {}: data_offsets [{}, {}] overlap another tensor's bytes (which end at {})",
               json::quote(e->name), e->begin, e->end, cursor));
    if (e->begin > cursor)
      fail(source,
           fmt::format(
               "tensor {}: data_offsets [{}, {}] leave a hole: bytes [{}, {}) belong to no tensor",
               json::quote(e->name), e->begin, e->end, cursor, e->begin));
    cursor = e->end;
  }
  if (cursor != buffer_size)
    fail(source,
         fmt::format("the tensors cover {} bytes but the data buffer holds {} (trailing bytes or a "
                     "corrupt header)",
                     cursor, buffer_size));
  std::vector<Entry> sorted;
  sorted.reserve(order.size());
  for (const Entry* e : order) sorted.push_back(*e);
  return sorted;
}

// Copies one tensor's bytes into a new array; BOOL bytes must be 0 or 1 (other values are not
// bools).
Tensor make_tensor(const Entry& e, const char* bytes, std::string_view source) {
  Array a(e.shape, e.dtype);
  if (e.end > e.begin) std::memcpy(a.raw_data(), bytes, e.end - e.begin);
  if (e.dtype == DType::Bool) {
    for (uint64_t i = 0; i < e.end - e.begin; ++i)
      if (static_cast<unsigned char>(bytes[i]) > 1)
        fail(source, fmt::format("tensor {}: BOOL byte {} is {} (must be 0 or 1)",
                                 json::quote(e.name), i, static_cast<unsigned char>(bytes[i])));
  }
  return Tensor(std::move(a));
}

std::string build_header(const NamedTensorList& tensors, const SafetensorsMetadata& metadata,
                         std::vector<Array>& contiguous) {
  json::Value header = json::Value::object();
  if (!metadata.empty()) {
    json::Value& m = header["__metadata__"];
    m = json::Value::object();
    for (const auto& [k, v] : metadata) m[k] = v;
  }
  std::unordered_set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    KILN_CHECK(!name.empty() && name != "__metadata__",
               "save_safetensors: invalid tensor name '{}' (names must be non-empty and not "
               "\"__metadata__\")",
               name);
    KILN_CHECK(names.insert(name).second, "save_safetensors: duplicate tensor name '{}'", name);
    KILN_CHECK(t.defined(), "save_safetensors: tensor '{}' is undefined", name);
    Array a = t.data().contiguous();
    json::Value entry = json::Value::object();
    entry["dtype"] = safetensors_dtype(a.dtype());
    json::Value shape = json::Value::array();
    for (int64_t d : a.shape()) shape.push_back(d);
    entry["shape"] = std::move(shape);
    entry["data_offsets"] = json::Value::array({offset, offset + a.nbytes()});
    offset += a.nbytes();
    header[name] = std::move(entry);
    contiguous.push_back(std::move(a));
  }
  std::string text = header.dump();
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  while ((8 + text.size()) % 8 != 0) text += ' ';
  return text;
}

}  // namespace

const Tensor* SafetensorsFile::find(std::string_view name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

const Tensor& SafetensorsFile::at(std::string_view name) const {
  const Tensor* t = find(name);
  KILN_CHECK(t != nullptr, "safetensors: no tensor named '{}' (the file holds {} tensors)", name,
             tensors.size());
  return *t;
}

std::string serialize_safetensors(const NamedTensorList& tensors,
                                  const SafetensorsMetadata& metadata) {
  std::vector<Array> data;
  std::string header = build_header(tensors, metadata, data);
  std::string out;
  uint64_t n = header.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += header;
  for (const Array& a : data) out.append(static_cast<const char*>(a.raw_data()), a.nbytes());
  return out;
}

SafetensorsFile parse_safetensors(std::string_view bytes, std::string_view source) {
  if (bytes.size() < 8)
    fail(source, fmt::format("file is {} bytes, shorter than the 8-byte header length (truncated?)",
                             bytes.size()));
  const uint64_t n = read_u64_le(bytes.data());
  if (n > bytes.size() - 8)
    fail(source,
         fmt::format(
             "header length {} is larger than the {} bytes that follow it (truncated or corrupt)",
             n, bytes.size() - 8));
  if (n > kMaxHeaderBytes)
    fail(source, fmt::format("header length {} exceeds the {}-byte limit", n, kMaxHeaderBytes));
  SafetensorsFile out;
  const uint64_t buffer_size = bytes.size() - 8 - n;
  std::vector<Entry> entries = parse_header(bytes.substr(8, n), buffer_size, source, out.metadata);
  const char* data = bytes.data() + 8 + n;
  for (const Entry& e : entries)
    out.tensors.emplace_back(e.name, make_tensor(e, data + e.begin, source));
  return out;
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    throw IOError(fmt::format("safetensors: {}: cannot open ({})", path, std::strerror(errno)));
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  if (size < 0) fail(path, "cannot determine the file size");
  f.seekg(0);
  const uint64_t file_size = static_cast<uint64_t>(size);
  if (file_size < 8)
    fail(path, fmt::format("file is {} bytes, shorter than the 8-byte header length (truncated?)",
                           file_size));
  char len[8];
  if (!f.read(len, 8)) fail(path, "cannot read the header length");
  const uint64_t n = read_u64_le(len);
  if (n > file_size - 8)
    fail(path,
         fmt::format(
             "header length {} is larger than the {} bytes that follow it (truncated or corrupt)",
             n, file_size - 8));
  if (n > kMaxHeaderBytes)
    fail(path, fmt::format("header length {} exceeds the {}-byte limit", n, kMaxHeaderBytes));
  std::string header(n, '\0');
  if (!f.read(header.data(), static_cast<std::streamsize>(n)))
    fail(path, "cannot read the header (truncated?)");
  SafetensorsFile out;
  std::vector<Entry> entries = parse_header(header, file_size - 8 - n, path, out.metadata);
  std::string buf;
  for (const Entry& e : entries) {
    buf.resize(e.end - e.begin);
    if (e.end > e.begin && !f.read(buf.data(), static_cast<std::streamsize>(buf.size())))
      fail(path, fmt::format("tensor {}: cannot read bytes [{}, {}) (file changed while reading?)",
                             json::quote(e.name), e.begin, e.end));
    out.tensors.emplace_back(e.name, make_tensor(e, buf.data(), path));
  }
  return out;
}

void save_safetensors(const std::string& path, const NamedTensorList& tensors,
                      const SafetensorsMetadata& metadata) {
  write_file_atomic(path, serialize_safetensors(tensors, metadata), "save_safetensors");
}

}  // namespace kiln
