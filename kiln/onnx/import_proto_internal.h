#pragma once
// Internal to kiln/onnx: protobuf messages -> Kiln values for import_model (import_proto.cpp).
#include <cstdint>
#include <string>
#include <string_view>

#include "kiln/onnx/import.h"
#include "kiln/onnx/import_ops_internal.h"
#include "kiln/onnx/proto_internal.h"

namespace kiln::onnx::detail {

/// ONNX element type -> Kiln dtype; false when Kiln has no such dtype.
bool dtype_of_elem(int32_t elem, DType& out);
/// As dtype_of_elem, but float16 maps to float32: the dtype a float16 value has in Kiln (graph
/// inputs and outputs, tensor attributes and TensorProto files are widened as initializers are).
bool held_dtype_of_elem(int32_t elem, DType& out);

/// A TensorProto as an Array: raw_data, the typed fields, or external data in a file beside the
/// model in `dir`. `widen_half` turns float16 tensors into float32 (initializers). Throws
/// kiln::IOError naming `where` and the tensor for unsupported types, bad dims or sizes.
Array array_from_proto(const pb::TensorProto& t, const std::string& dir, std::string_view where,
                       bool widen_half = false);

/// A STRING TensorProto (string_data) as a StringTensor; throws kiln::IOError naming `where` when
/// its dims are negative or do not match the number of strings.
StringTensor strings_from_proto(const pb::TensorProto& t, std::string_view where);

/// An AttributeProto decoded (old files without `type` are recognised by their set field).
Attribute decode_attribute(const pb::AttributeProto& a, const std::string& dir,
                           std::string_view where);

/// Whether input `k` of an `op` node is a weight slot (float initializers there train by default).
bool is_weight_slot(const std::string& op, size_t k, const Array& value);

/// A graph input or output's declared name, element type and dims.
ValueInfo value_info(const pb::ValueInfoProto& v);

}  // namespace kiln::onnx::detail
