#pragma once
// Test utility: run an ONNX model in ONNX Runtime, the consumer Kiln's exported models must
// satisfy.
//
//   auto out = kiln::test::run_in_ort("mlp.onnx", {{"x", kiln::test::NpyArray::of<float>({2, 8},
//   x)}});
//   // x: 16 floats; `out` maps each output name to its array.
//   std::vector<float> probs = out.at("probs").values<float>();
//
// It shells out to Node.js: `node tests/onnx/ort_run.js` with onnxruntime-node@1.30.0 from the
// project's node_modules (`npm install --ignore-scripts`; the package ships libonnxruntime.so).
// Arrays travel as .npy files, through the small reader/writer below (Kiln's tensor library gets
// its own .npy support; this one is for tests only).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "kiln/tensor/error.h"

namespace kiln::test {

/// A dense C-order array as stored in a .npy file.
struct NpyArray {
  /// "float32", "float64", "int64", "int32", "bool"; also "float16", "int8", "int16", "uint8",
  /// "uint16", "uint32", "uint64".
  std::string dtype;
  std::vector<int64_t> shape;    // empty for a scalar
  std::vector<std::byte> bytes;  // numel x element size, little-endian, C order

  /// Product of shape (1 for a scalar).
  int64_t numel() const;

  /// The elements as T; throws kiln::TypeError unless sizeof(T) is the dtype's element size.
  /// (std::vector<bool> packs bits: read bool arrays as uint8_t.)
  template <typename T>
  std::vector<T> values() const {
    check_element_size(sizeof(T));
    std::vector<T> out(bytes.size() / sizeof(T));
    if (!out.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
    return out;
  }

  /// An array with `shape` holding `values` (their count must match the shape); the dtype follows T
  /// (float -> float32, double -> float64, int64_t -> int64, int32_t -> int32, bool -> bool,
  /// uint8_t -> uint8).
  template <typename T>
  static NpyArray of(std::vector<int64_t> shape, std::span<const T> values) {
    return of_dtype(dtype_name_of<T>(), std::move(shape), values);
  }

  /// The same with the dtype named, for types C++ lacks (e.g. "float16" from uint16_t bits).
  template <typename T>
  static NpyArray of_dtype(std::string dtype, std::vector<int64_t> shape,
                           std::span<const T> values) {
    NpyArray a{std::move(dtype), std::move(shape), {}};
    a.check_element_size(sizeof(T));
    KILN_CHECK_SHAPE(static_cast<int64_t>(values.size()) == a.numel(),
                     "NpyArray::of: {} values for shape [{}] ({} elements)", values.size(),
                     fmt::join(a.shape, ", "), a.numel());
    a.bytes.resize(values.size_bytes());
    if (!values.empty()) std::memcpy(a.bytes.data(), values.data(), values.size_bytes());
    return a;
  }

 private:
  void check_element_size(size_t size) const;

  template <typename T>
  static constexpr const char* dtype_name_of() {
    if constexpr (std::is_same_v<T, float>) {
      return "float32";
    } else if constexpr (std::is_same_v<T, double>) {
      return "float64";
    } else if constexpr (std::is_same_v<T, int64_t>) {
      return "int64";
    } else if constexpr (std::is_same_v<T, int32_t>) {
      return "int32";
    } else if constexpr (std::is_same_v<T, bool>) {
      return "bool";
    } else if constexpr (std::is_same_v<T, uint8_t>) {
      return "uint8";
    } else {
      static_assert(sizeof(T) == 0, "NpyArray::of: use of_dtype() for this element type");
    }
  }
};

/// Bytes per element of an NpyArray dtype; throws kiln::TypeError for other names.
size_t npy_element_size(const std::string& dtype);

/// Reads a .npy file (format 1.0-3.0, little-endian, C order). Throws kiln::IOError naming the
/// file.
NpyArray read_npy(const std::string& path);

/// Writes `a` as a format 1.0 .npy file NumPy reads back exactly.
void write_npy(const std::string& path, const NpyArray& a);

/// Runs `model_path` in ONNX Runtime (CPU execution provider) with `inputs` keyed by input name and
/// returns every output keyed by output name.
/// Throws kiln::Error when node or onnxruntime-node is missing (saying which package to install:
/// tests that need ONNX Runtime fail rather than skip) or when ONNX Runtime rejects the model or
/// the inputs (with its message).
std::map<std::string, NpyArray> run_in_ort(const std::string& model_path,
                                           const std::map<std::string, NpyArray>& inputs);

/// Where Debian's libonnx-testdata puts ONNX's 1,072 test models ($KILN_ONNX_TESTDATA overrides).
/// Throws kiln::IOError saying to install the package when the directory is missing.
std::string onnx_testdata_dir();

}  // namespace kiln::test
