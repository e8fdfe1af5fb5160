#pragma once
// Internal to kiln/onnx: the one place Kiln includes Debian's ONNX protobuf classes (libonnx-dev),
// so that public headers stay free of protobuf. Only kiln/onnx/*.cpp and its *_internal.h headers
// include this file; it is not installed. The ONNX_NAMESPACE=onnx and ONNX_ML=1 definitions these
// headers need come with the `onnx_proto` CMake target, which kiln_onnx links privately.
#include <onnx/onnx-data_pb.h>  // SequenceProto (test data)
#include <onnx/onnx_pb.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/onnx/reader.h"

namespace kiln::onnx::detail {

// Inside kiln::onnx a bare `onnx::` names this namespace, so ONNX's classes go by `pb::`.
namespace pb = ::onnx;

/// Reads a whole regular file. Throws kiln::IOError "<path>: ..." when it is missing, not a regular
/// file (a FIFO or /dev/zero would never end), or larger than `max_bytes`.
std::vector<std::byte> read_file(const std::string& path, int64_t max_bytes);

/// Parses `bytes` as an ONNX ModelProto and checks it looks like one (ir_version and graph set).
/// Throws kiln::IOError "<name>: not a valid ONNX model (protobuf parse failed at byte 812 in
/// graph.node[3]: ...)" with the first malformed field when the bytes are not a protobuf message.
pb::ModelProto parse_model(std::span<const std::byte> bytes, std::string_view name);

/// Summarises a parsed model (what inspect_model() returns).
ModelSummary summarise(const pb::ModelProto& model, std::string_view name, int64_t file_bytes);

/// onnx::checker::check_model on an in-memory model (external data is not looked at), then strict
/// shape inference with type checks. For the exporter: every model it writes must pass.
CheckResult check_model_proto(const pb::ModelProto& model);

/// "float32" for TensorProto::FLOAT, "int64" for INT64, ...; "unknown(N)" for other values.
std::string element_type_name(int32_t elem_type);

}  // namespace kiln::onnx::detail
