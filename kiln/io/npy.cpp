#include "kiln/io/npy.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>
#include <vector>

#include "kiln/io/atomic_file.h"
#include "kiln/tensor/array.h"
#include "kiln/tensor/error.h"

namespace kiln {
namespace {

const char* npy_descr(DType t) {
  switch (t) {
    case DType::Float32:
      return "<f4";
    case DType::Float64:
      return "<f8";
    case DType::Int64:
      return "<i8";
    case DType::Int32:
      return "<i4";
    case DType::UInt8:
      return "|u1";
    case DType::Bool:
      return "|b1";
  }
  return "";
}

void save_array(const Array& a, const std::string& path) {
  std::string shape = "(";
  for (size_t i = 0; i < a.shape().size(); ++i)
    shape += fmt::format("{}{}", a.shape()[i],
                         a.dim() == 1 ? "," : (i + 1 < a.shape().size() ? ", " : ""));
  shape += ")";
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                   npy_descr(a.dtype()), shape);
  // Pad so magic(6) + version(2) + len(2) + header + '\n' is a multiple of 64.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  AtomicFile f(path, "save_npy");
  f.write(std::string_view("\x93NUMPY\x01\x00", 8));
  const auto len = static_cast<uint16_t>(header.size());
  const char lb[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
  f.write(std::string_view(lb, 2));
  f.write(header);
  const Array c = a.contiguous();
  f.write(std::string_view(static_cast<const char*>(c.raw_data()), c.nbytes()));
  f.commit();
}

Array load_array(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  KILN_CHECK_AS(IOError, f.good(), "load_npy: cannot open {}", path);
  char magic[8];
  f.read(magic, 8);
  KILN_CHECK_AS(IOError, f.gcount() == 8 && std::memcmp(magic, "\x93NUMPY", 6) == 0,
                "load_npy: {} is not a .npy file (bad magic)", path);
  uint32_t hlen = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    f.read(reinterpret_cast<char*>(b), 2);
    hlen = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    f.read(reinterpret_cast<char*>(b), 4);
    hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  }
  KILN_CHECK_AS(IOError, f.good() && hlen < (1u << 20),
                "load_npy: {}: truncated or oversized header", path);
  std::string header(hlen, '\0');
  f.read(header.data(), hlen);
  KILN_CHECK_AS(IOError, static_cast<uint32_t>(f.gcount()) == hlen,
                "load_npy: {}: truncated header", path);
  auto field = [&](const std::string& key) -> std::string {
    size_t p = header.find("'" + key + "'");
    KILN_CHECK_AS(IOError, p != std::string::npos, "load_npy: {}: header lacks '{}'", path, key);
    p = header.find(':', p);
    KILN_CHECK_AS(IOError, p != std::string::npos, "load_npy: {}: malformed header", path);
    return header.substr(p + 1);
  };
  std::string descr = field("descr");
  size_t q1 = descr.find('\''), q2 = q1 == std::string::npos ? q1 : descr.find('\'', q1 + 1);
  KILN_CHECK_AS(IOError, q2 != std::string::npos, "load_npy: {}: malformed descr", path);
  descr = descr.substr(q1 + 1, q2 - q1 - 1);
  DType t;
  if (descr == "<f4")
    t = kFloat32;
  else if (descr == "<f8")
    t = kFloat64;
  else if (descr == "<i8")
    t = kInt64;
  else if (descr == "<i4")
    t = kInt32;
  else if (descr == "|u1")
    t = kUInt8;
  else if (descr == "|b1")
    t = kBool;
  else
    throw IOError(fmt::format("load_npy: {}: unsupported dtype '{}'", path, descr));
  bool fortran = field("fortran_order").find("True") < field("fortran_order").find('}');
  std::string sh = field("shape");
  size_t l = sh.find('('), r = sh.find(')');
  KILN_CHECK_AS(IOError, l != std::string::npos && r != std::string::npos && l < r,
                "load_npy: {}: malformed shape", path);
  Shape shape;
  std::stringstream ss(sh.substr(l + 1, r - l - 1));
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    size_t a = tok.find_first_not_of(" ");
    if (a == std::string::npos) continue;
    int64_t v = 0;
    try {
      v = std::stoll(tok.substr(a));
    } catch (...) {
      throw IOError(fmt::format("load_npy: {}: malformed shape entry '{}'", path, tok));
    }
    KILN_CHECK_AS(IOError, v >= 0 && v < (int64_t{1} << 40), "load_npy: {}: invalid dim {}", path,
                  v);
    shape.push_back(v);
  }
  int64_t numel = 1;
  for (int64_t d : shape) {
    KILN_CHECK_AS(IOError, d == 0 || numel <= (int64_t{1} << 40) / d,
                  "load_npy: {}: shape too large", path);
    numel *= d;
  }
  Shape storage_shape = shape;
  if (fortran) std::reverse(storage_shape.begin(), storage_shape.end());
  // Check the file holds enough bytes before allocating.
  auto pos = f.tellg();
  f.seekg(0, std::ios::end);
  auto end = f.tellg();
  f.seekg(pos);
  KILN_CHECK_AS(
      IOError,
      end - pos >= static_cast<std::streamoff>(numel * static_cast<int64_t>(dtype_size(t))),
      "load_npy: {}: truncated data ({} bytes, {} needed)", path, static_cast<int64_t>(end - pos),
      numel * static_cast<int64_t>(dtype_size(t)));
  Array a(storage_shape, t);
  f.read(static_cast<char*>(a.raw_data()), static_cast<std::streamsize>(a.nbytes()));
  if (fortran && a.dim() > 1) {
    std::vector<int64_t> perm;
    for (int64_t d = a.dim() - 1; d >= 0; --d) perm.push_back(d);
    a = a.permute(perm).contiguous();
  }
  return a;
}

}  // namespace

void save_npy(const Tensor& t, const std::string& path) {
  KILN_CHECK(t.defined(), "save_npy: {}: the tensor is undefined (nothing to write)", path);
  save_array(t.data(), path);
}

Tensor load_npy(const std::string& path) {
  return Tensor(load_array(path));
}

}  // namespace kiln
