#pragma once
// Reading ONNX files without running them: the data model behind `kiln inspect`.
//
//   auto s = kiln::onnx::inspect_model("model.onnx");   // throws kiln::IOError on a bad file
//   fmt::print("{}", kiln::onnx::format_summary(s));    // or summary_to_json(s)
//
// Works for any ONNX file (IR 3 and later, also ones Kiln did not write). This header does not
// include protobuf or ONNX headers; the parsed ModelProto never leaves reader.cpp.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::onnx {

/// Files larger than this are refused before reading: protobuf cannot parse a message of 2 GiB or
/// more, which is why ONNX keeps the weights of larger models in external data files.
inline constexpr int64_t kMaxModelFileBytes = (int64_t{1} << 31) - 1;

/// One dimension of a declared shape: a fixed size (`value`), a symbolic name such as "batch"
/// (`param`), or neither (unknown; printed as "?" and null in JSON).
struct Dim {
  std::optional<int64_t> value;
  std::string param;

  bool is_value() const { return value.has_value(); }
  bool is_param() const { return !value && !param.empty(); }
  bool is_unknown() const { return !value && param.empty(); }
};

/// A graph input or output as declared in the file.
struct ValueSummary {
  std::string name;
  /// "float32", "int64", "bool", ... for tensors; "seq(float32)", "map(int64, float32)",
  /// "optional(seq(int64))", "sparse_tensor(float32)" for other types; "unknown" if not declared.
  std::string type;
  /// The declared shape of a tensor (or sparse tensor); nullopt when the rank is unknown or the
  /// value is not a tensor. An empty vector is a scalar.
  std::optional<std::vector<Dim>> shape;
};

/// One opset import: `domain` is "" for the default ai.onnx domain.
struct OpsetImport {
  std::string domain;
  int64_t version = 0;
};

/// Everything `kiln inspect` reports about a model.
struct ModelSummary {
  std::string path;        // as given to inspect_model(); the name for in-memory models
  int64_t file_bytes = 0;  // size of the .onnx file itself

  int64_t ir_version = 0;
  std::vector<OpsetImport> opset_import;
  std::string producer_name;
  std::string producer_version;
  std::string domain;  // model domain, e.g. "ai.kiln" (often empty)
  int64_t model_version = 0;
  std::string doc_string;
  std::vector<std::pair<std::string, std::string>> metadata_props;

  std::string graph_name;
  /// Graph inputs, without the initializers that IR < 4 models (e.g. old PyTorch exports) also
  /// list as inputs.
  std::vector<ValueSummary> inputs;
  std::vector<ValueSummary> outputs;

  /// op_type -> number of nodes, over the main graph and every subgraph (If/Loop/Scan bodies),
  /// sorted by count (descending), then name. Ops outside the default domain are written
  /// "domain:op_type", e.g. "com.microsoft:FusedMatMul".
  std::vector<std::pair<std::string, int64_t>> ops;
  int64_t node_count = 0;      // sum of the histogram
  int64_t function_count = 0;  // model-local functions (their bodies are not in `ops`)

  int64_t initializer_count = 0;  // dense + sparse initializers of the main graph
  int64_t parameters = 0;         // sum of initializer element counts (sparse: dense count)
  int64_t parameter_bytes = 0;    // elements x element size; strings: total string bytes
  /// Files named by initializers whose data lives outside the .onnx file (ONNX external data),
  /// in first-use order; empty when all weights are inside the file.
  std::vector<std::string> external_data_files;
  bool uses_external_data() const { return !external_data_files.empty(); }
};

/// Reads and summarises the ONNX model at `path`.
/// Throws kiln::IOError naming the file when it is missing, not a regular file, larger than
/// kMaxModelFileBytes, or not a valid ONNX model (the message says where the protobuf parse
/// failed). Never reads external data files (it only lists them).
ModelSummary inspect_model(const std::string& path);

/// The same for a model already in memory; `name` is used in error messages and as `path`.
ModelSummary inspect_model_bytes(std::span<const std::byte> bytes, std::string_view name);

/// Outcome of ONNX's own validity checks.
struct CheckResult {
  bool ok = false;
  std::string message;  // the checker's message when !ok; empty when ok
};

/// Runs onnx::checker::check_model on the file (which also checks that external data files exist
/// next to it), then strict shape inference with type checks: Python's
/// onnx.checker.check_model(model, full_check=True). Throws kiln::IOError only when the file cannot
/// be read or parsed; checker findings are returned in the result.
CheckResult check_model(const std::string& path);

/// Multi-line human-readable summary (ends with a newline), with the checker's verdict when `check`
/// is given. Non-printable bytes in names are shown as \xNN so a hostile file cannot send escape
/// codes to the terminal.
std::string format_summary(const ModelSummary& s, const CheckResult* check = nullptr);

/// One JSON object (no trailing newline):
///   {"path", "file_bytes", "ir_version", "opset_import": [{"domain", "version"}],
///    "producer": {"name", "version"}, "domain", "model_version", "graph",
///    "inputs": [{"name", "type", "shape"}], "outputs": [...], "ops": {"Gemm": 2, ...},
///    "nodes", "functions", "initializers", "parameters", "parameter_bytes",
///    "external_data": bool, "external_data_files": [...], "metadata": {...},
///    "check": {"ok", "message"}}   (the last only when `check` is given)
/// `shape` entries are ints, strings for symbolic dims, or null for unknown dims; `shape` itself is
/// null when the rank is unknown. Strings are escaped; invalid UTF-8 becomes U+FFFD.
std::string summary_to_json(const ModelSummary& s, const CheckResult* check = nullptr);

/// Formats a shape as "[batch, 784]" ("?" for unknown dims, "?" alone for unknown rank).
std::string format_shape(const std::optional<std::vector<Dim>>& shape);

/// A TensorProto read into plain bytes (for test references and weight import).
struct TensorData {
  std::string name;
  std::string dtype;            // "float32", "int64", ... as in ValueSummary::type
  std::vector<int64_t> dims;    // empty for a scalar
  std::vector<std::byte> data;  // numel x element size bytes, little-endian, C order

  /// Product of dims (1 for a scalar).
  int64_t numel() const;
};

/// Reads a serialised onnx.TensorProto (the input_0.pb / output_0.pb files of ONNX's test data),
/// whether its values are in raw_data or in the typed fields. Supports fixed-size numeric types and
/// bool; throws kiln::IOError for strings, external data, a bad file, or a size mismatch.
TensorData read_tensor_proto(const std::string& path);

/// Bytes per element of an ONNX element type given by name ("float32" -> 4); 0 for "string" and
/// unknown names.
size_t element_size(std::string_view dtype);

}  // namespace kiln::onnx
