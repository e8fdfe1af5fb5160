#pragma once
// Internal to kiln/onnx: the op table import_model runs ONNX nodes with. One file per operator
// family (ops_math.cpp: elementwise + reductions; ops_tensor.cpp: shapes, indexing, joins;
// ops_nn.cpp: Gemm/Conv/pooling/normalisation; ops_create.cpp: constants, casts, Shape...;
// ops_resize.cpp; ops_rnn.cpp: LSTM/GRU/RNN; ops_loss.cpp). Each entry is a function
//   std::vector<Tensor> fn(const NodeContext& node, const Inputs& in)
// reading its attributes (with the ONNX spec's defaults) from `node`; an optional input that is
// absent arrives as an undefined Tensor. Semantics that changed across opsets branch on
// node.opset (e.g. Squeeze's axes moved from an attribute to an input at opset 13).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/tensor.h"
#include "kiln/onnx/import.h"
#include "kiln/tensor/error.h"

namespace kiln::onnx::detail {

/// One attribute value, already decoded from its AttributeProto.
struct Attribute {
  enum Kind { Int, Float, String, Ints, Floats, Strings, TensorValue, Graph, Other } kind = Other;
  int64_t i = 0;
  double f = 0.0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;
  Tensor t;
};

/// A node as an op function sees it.
struct NodeContext {
  std::string op_type;
  std::string name;  // the node's name, or "#<index>" when it has none
  int64_t opset = 0;
  int64_t n_outputs = 1;  // outputs the node declares (Split without sizes divides by it)
  bool training = false;  // the module's training flag (Dropout, BatchNormalization)
  std::map<std::string, Attribute> attrs;

  /// "Conv node 'conv1' (opset 11)": how errors name a node.
  std::string where() const;
  bool has(const std::string& attr) const { return attrs.count(attr) != 0; }
  int64_t i(const std::string& attr, int64_t def) const;
  double f(const std::string& attr, double def) const;
  std::string s(const std::string& attr, const std::string& def) const;
  std::vector<int64_t> ints(const std::string& attr, std::vector<int64_t> def = {}) const;
  std::vector<double> floats(const std::string& attr, std::vector<double> def = {}) const;
  /// A tensor attribute (Constant's value); throws naming the node when absent.
  Tensor tensor(const std::string& attr) const;
};

using Inputs = std::vector<Tensor>;
using OpFn = std::vector<Tensor> (*)(const NodeContext& node, const Inputs& in);
/// Ops that take or make sequences or string tensors (ops_sequence.cpp, StringNormalizer) see
/// every value as it is; the runtime hands tensor ops (OpFn) tensors only and names the node and
/// input when a sequence or string tensor reaches one.
using Values = std::vector<Value>;
using ValueOpFn = Values (*)(const NodeContext& node, const Values& in);

/// One table entry. The runtime runs value_fn when it is set, else fn; an op with both (Identity,
/// Cast, CastLike: strings or sequences besides tensors) keeps fn as its tensor-only form, which
/// constant folding and other ops call.
struct OpEntry {
  OpFn fn = nullptr;
  ValueOpFn value_fn = nullptr;
  OpEntry() = default;
  OpEntry(OpFn f) : fn(f) {}  // NOLINT(google-explicit-constructor): table["Add"] = add_op
  OpEntry(ValueOpFn f) : value_fn(f) {}  // NOLINT(google-explicit-constructor)
};

/// Registers `op_type` -> fn. Called by the register_* functions below.
using OpTable = std::map<std::string, OpEntry>;
void register_math_ops(OpTable& table);
void register_einsum_ops(OpTable& table);
void register_tensor_ops(OpTable& table);
void register_create_ops(OpTable& table);
void register_nn_ops(OpTable& table);
void register_resize_ops(OpTable& table);
void register_loss_ops(OpTable& table);
void register_rnn_ops(OpTable& table);
void register_quant_ops(OpTable& table);
void register_training_ops(OpTable& table);
void register_vision_ops(OpTable& table);
void register_text_ops(OpTable& table);
void register_spectral_ops(OpTable& table);
void register_sequence_ops(OpTable& table);
/// The table key of an op: its type in the default domain ("" or "ai.onnx"), else
/// "<domain>:<type>".
std::string op_key(const std::string& domain, const std::string& op_type);
/// The whole table (built once).
const OpTable& op_table();

// ---- helpers the op families share ----
/// Input `k`, or throws "<where>: input k is required" when absent.
const Tensor& required(const NodeContext& node, const Inputs& in, size_t k);
/// A 1-D (or scalar) integer tensor's values (shape inputs, axes, pads, ...).
std::vector<int64_t> int_values(const NodeContext& node, const Tensor& t, const char* what);
/// A scalar's value as double.
double scalar_value(const NodeContext& node, const Tensor& t, const char* what);
/// Normalises a possibly negative axis against rank `r`; throws naming the node when out of range.
int64_t axis(const NodeContext& node, int64_t a, int64_t r);
/// An int64 tensor holding `v` with `shape`; a 1-D one (indices for index_select).
Tensor int64_tensor(const std::vector<int64_t>& v, Shape shape);
Tensor index_tensor(const std::vector<int64_t>& v);
/// Throws naming the node when a target shape has a negative dim or more than 2^34 elements: a
/// hostile Reshape/Expand/Tile/ConstantOfShape target could ask for petabytes.
void check_numel(const NodeContext& node, const Shape& s);
/// "a tensor", "a sequence", "a string tensor", "an empty optional": how errors name a value.
const char* kind_name(const Value& v);
/// Whether a string tensor's shape (no negative dims) holds exactly its number of strings.
bool string_count_matches(const StringTensor& s);
/// Wraps raw values as a non-differentiable result of this node.
Tensor nondiff(const NodeContext& node, const Inputs& in, Array out);

}  // namespace kiln::onnx::detail
