// See ort_runner.h. The .npy format:
// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
#include "ort_runner.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace kiln::test {

namespace fs = std::filesystem;

namespace {

struct NpyType {
  const char* dtype;
  const char* descr;
  size_t size;
};
constexpr NpyType kNpyTypes[] = {
    {"float32", "<f4", 4}, {"float64", "<f8", 8}, {"int64", "<i8", 8},  {"int32", "<i4", 4},
    {"bool", "|b1", 1},    {"float16", "<f2", 2}, {"int8", "|i1", 1},   {"int16", "<i2", 2},
    {"uint8", "|u1", 1},   {"uint16", "<u2", 2},  {"uint32", "<u4", 4}, {"uint64", "<u8", 8},
};

const NpyType* by_dtype(const std::string& dtype) {
  for (const NpyType& t : kNpyTypes) {
    if (dtype == t.dtype) return &t;
  }
  return nullptr;
}

// The value of `'key': ` in a .npy header dict, up to the next top-level ',' or '}'.
std::string header_field(const std::string& header, const std::string& key,
                         const std::string& path) {
  const size_t k = header.find("'" + key + "'");
  KILN_CHECK_AS(IOError, k != std::string::npos, "read_npy: {}: header has no '{}': {}", path, key,
                header);
  size_t start = header.find(':', k);
  KILN_CHECK_AS(IOError, start != std::string::npos, "read_npy: {}: bad header {}", path, header);
  ++start;
  while (start < header.size() && header[start] == ' ') ++start;
  size_t end = start;
  if (start < header.size() && header[start] == '(') {
    end = header.find(')', start);
    KILN_CHECK_AS(IOError, end != std::string::npos, "read_npy: {}: bad shape in {}", path, header);
    return header.substr(start + 1, end - start - 1);
  }
  end = header.find_first_of(",}", start);
  std::string v = header.substr(start, end - start);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') v = v.substr(1, v.size() - 2);
  return v;
}

// Single-quotes `s` for /bin/sh.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The first executable `name` on $PATH, or "" when there is none.
std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const fs::path p = fs::path(dir.empty() ? "." : dir) / name;
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

// A fresh directory under $TMPDIR, removed with everything in it when this goes out of scope.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "kiln_ort_XXXXXX").string();
    KILN_CHECK(::mkdtemp(tmpl.data()) != nullptr, "run_in_ort: cannot create a directory in {}",
               fs::temp_directory_path().string());
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void NpyArray::check_element_size(size_t size) const {
  KILN_CHECK_TYPE(npy_element_size(dtype) == size,
                  "NpyArray: dtype {} has {}-byte elements, not {} (wrong C++ type)", dtype,
                  npy_element_size(dtype), size);
}

size_t npy_element_size(const std::string& dtype) {
  const NpyType* t = by_dtype(dtype);
  KILN_CHECK_TYPE(t, "npy: unsupported dtype '{}'", dtype);
  return t->size;
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  KILN_CHECK_AS(IOError, in.good(), "read_npy: {}: cannot open", path);
  const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  KILN_CHECK_AS(IOError, file.size() >= 10 && file.compare(0, 6, "\x93NUMPY") == 0,
                "read_npy: {}: not a .npy file (no \\x93NUMPY magic)", path);
  const int major = static_cast<unsigned char>(file[6]);
  KILN_CHECK_AS(IOError, major >= 1 && major <= 3, "read_npy: {}: unsupported format version {}",
                path, major);
  const size_t len_bytes = major == 1 ? 2 : 4;
  KILN_CHECK_AS(IOError, file.size() >= 8 + len_bytes, "read_npy: {}: truncated header", path);
  size_t header_len = 0;
  for (size_t i = 0; i < len_bytes; ++i) {
    header_len |= static_cast<size_t>(static_cast<unsigned char>(file[8 + i])) << (8 * i);
  }
  const size_t data_start = 8 + len_bytes + header_len;
  KILN_CHECK_AS(IOError, data_start <= file.size(), "read_npy: {}: truncated header", path);
  const std::string header = file.substr(8 + len_bytes, header_len);

  NpyArray a;
  const std::string descr = header_field(header, "descr", path);
  for (const NpyType& t : kNpyTypes) {
    if (descr == t.descr ||
        (descr[0] == '=' && descr.substr(1) == std::string(t.descr).substr(1))) {
      a.dtype = t.dtype;
    }
  }
  KILN_CHECK_AS(IOError, !a.dtype.empty(),
                "read_npy: {}: unsupported dtype '{}' (little-endian numeric or bool only)", path,
                descr);
  KILN_CHECK_AS(IOError, header_field(header, "fortran_order", path) == "False",
                "read_npy: {}: Fortran-order arrays are not supported", path);
  std::stringstream dims(header_field(header, "shape", path));
  for (std::string d; std::getline(dims, d, ',');) {
    if (d.find_first_not_of(' ') == std::string::npos) continue;
    a.shape.push_back(std::stoll(d));
  }
  const size_t nbytes = static_cast<size_t>(a.numel()) * npy_element_size(a.dtype);
  KILN_CHECK_AS(IOError, file.size() - data_start == nbytes,
                "read_npy: {}: shape [{}] of {} needs {} data bytes but the file has {}", path,
                fmt::join(a.shape, ", "), a.dtype, nbytes, file.size() - data_start);
  a.bytes.resize(nbytes);
  if (nbytes) std::memcpy(a.bytes.data(), file.data() + data_start, nbytes);
  return a;
}

void write_npy(const std::string& path, const NpyArray& a) {
  const NpyType* t = by_dtype(a.dtype);
  KILN_CHECK_TYPE(t, "write_npy: {}: unsupported dtype '{}'", path, a.dtype);
  KILN_CHECK_SHAPE(a.bytes.size() == static_cast<size_t>(a.numel()) * t->size,
                   "write_npy: {}: {} bytes for {} [{}]", path, a.bytes.size(), a.dtype,
                   fmt::join(a.shape, ", "));
  const std::string shape = a.shape.size() == 1 ? fmt::format("({},)", a.shape[0])
                                                : fmt::format("({})", fmt::join(a.shape, ", "));
  std::string header =
      fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", t->descr, shape);
  // Pad so that magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
  const size_t total = (10 + header.size() + 1 + 63) / 64 * 64;
  header.resize(total - 10 - 1, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  KILN_CHECK_AS(IOError, out.good(), "write_npy: {}: cannot open for writing", path);
  const char pre[10] = {'\x93',
                        'N',
                        'U',
                        'M',
                        'P',
                        'Y',
                        1,
                        0,
                        static_cast<char>(header.size() & 0xff),
                        static_cast<char>(header.size() >> 8)};
  out.write(pre, sizeof(pre));
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(a.bytes.data()),
            static_cast<std::streamsize>(a.bytes.size()));
  KILN_CHECK_AS(IOError, out.good(), "write_npy: {}: write failed", path);
}

std::map<std::string, NpyArray> run_in_ort(const std::string& model_path,
                                           const std::map<std::string, NpyArray>& inputs) {
  const char* node_env = std::getenv("KILN_NODE");
  const std::string node = node_env ? node_env : find_on_path("node");
  KILN_CHECK(!node.empty(),
             "run_in_ort: `node` is not on PATH; install Node.js (Debian package nodejs) or set "
             "KILN_NODE to its path");
  KILN_CHECK(::access(node.c_str(), X_OK) == 0,
             "run_in_ort: {} (from $KILN_NODE) is not executable", node);
  const fs::path modules = KILN_NODE_MODULES;
  KILN_CHECK(fs::exists(modules / "onnxruntime-node" / "package.json"),
             "run_in_ort: onnxruntime-node is not installed in {} (run `npm install "
             "--ignore-scripts` in {}; package.json pins onnxruntime-node@1.30.0)",
             modules.string(), KILN_SOURCE_DIR);
  const fs::path script = fs::path(KILN_SOURCE_DIR) / "tests" / "onnx" / "ort_run.js";
  KILN_CHECK(fs::exists(script), "run_in_ort: {} is missing", script.string());
  KILN_CHECK_AS(IOError, fs::exists(model_path), "run_in_ort: {}: no such file", model_path);

  TempDir tmp;
  std::string manifest = "{";
  int i = 0;
  for (const auto& [name, array] : inputs) {
    const fs::path file = tmp.path() / fmt::format("in_{}.npy", i);
    write_npy(file.string(), array);
    manifest +=
        fmt::format("{}{}: {}", i++ ? ", " : "", json_string(name), json_string(file.string()));
  }
  manifest += "}";
  const fs::path manifest_path = tmp.path() / "inputs.json";
  std::ofstream(manifest_path) << manifest;

  const fs::path out_dir = tmp.path() / "out";
  const std::string cmd = fmt::format(
      "KILN_NODE_MODULES={} {} {} {} {} --manifest {} >{} 2>{}", shell_quote(modules.string()),
      shell_quote(node), shell_quote(script.string()), shell_quote(model_path),
      shell_quote(out_dir.string()), shell_quote(manifest_path.string()),
      shell_quote((tmp.path() / "stdout").string()), shell_quote((tmp.path() / "stderr").string()));
  const int status = std::system(cmd.c_str());
  const int rc = status == -1 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  if (rc != 0) {
    std::string err = read_text(tmp.path() / "stderr");
    while (!err.empty() && err.back() == '\n') err.pop_back();
    throw Error(
        fmt::format("run_in_ort: {}: ort_run.js failed (exit {}): {}", model_path, rc, err));
  }

  std::map<std::string, NpyArray> outputs;
  std::stringstream lines(read_text(tmp.path() / "stdout"));
  for (std::string line; std::getline(lines, line);) {
    const size_t tab = line.find('\t');
    KILN_CHECK(tab != std::string::npos, "run_in_ort: unexpected output line from ort_run.js: {}",
               line);
    outputs[line.substr(tab + 1)] = read_npy((out_dir / line.substr(0, tab)).string());
  }
  return outputs;
}

std::string onnx_testdata_dir() {
  const char* env = std::getenv("KILN_ONNX_TESTDATA");
  const std::string dir = env ? env : "/usr/share/libonnx-testdata/data";
  KILN_CHECK_AS(IOError, fs::is_directory(dir),
                "ONNX test models not found in {} (apt-get install libonnx-testdata, or set "
                "KILN_ONNX_TESTDATA)",
                dir);
  return dir;
}

}  // namespace kiln::test
