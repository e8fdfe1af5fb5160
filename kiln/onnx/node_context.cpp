// NodeContext (attributes with defaults, error locations) and the helpers every op family shares
// (import_ops_internal.h), and the op table built from the families' register functions.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "kiln/onnx/import_ops_internal.h"

namespace kiln::onnx {

// ---------------------------------------------------------------------------------------------
// NodeContext and shared helpers
// ---------------------------------------------------------------------------------------------

namespace detail {

std::string NodeContext::where() const {
  return fmt::format("{} node '{}' (opset {})", op_type, name, opset);
}
int64_t NodeContext::i(const std::string& a, int64_t def) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return def;
  KILN_CHECK(it->second.kind == Attribute::Int, "{}: attribute '{}' must be an int", where(), a);
  return it->second.i;
}
double NodeContext::f(const std::string& a, double def) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return def;
  if (it->second.kind == Attribute::Int) return static_cast<double>(it->second.i);
  KILN_CHECK(it->second.kind == Attribute::Float, "{}: attribute '{}' must be a float", where(), a);
  return it->second.f;
}
std::string NodeContext::s(const std::string& a, const std::string& def) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return def;
  KILN_CHECK(it->second.kind == Attribute::String, "{}: attribute '{}' must be a string", where(),
             a);
  return it->second.s;
}
std::vector<int64_t> NodeContext::ints(const std::string& a, std::vector<int64_t> def) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return def;
  if (it->second.kind == Attribute::Int) return {it->second.i};
  KILN_CHECK(it->second.kind == Attribute::Ints || it->second.kind == Attribute::Other,
             "{}: attribute '{}' must be a list of ints", where(), a);
  return it->second.ints;
}
std::vector<double> NodeContext::floats(const std::string& a, std::vector<double> def) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return def;
  KILN_CHECK(it->second.kind == Attribute::Floats || it->second.kind == Attribute::Other,
             "{}: attribute '{}' must be a list of floats", where(), a);
  return it->second.floats;
}
Tensor NodeContext::tensor(const std::string& a) const {
  auto it = attrs.find(a);
  KILN_CHECK(it != attrs.end() && it->second.kind == Attribute::TensorValue,
             "{}: tensor attribute '{}' is missing", where(), a);
  return it->second.t;
}

const Tensor& required(const NodeContext& node, const Inputs& in, size_t k) {
  KILN_CHECK(k < in.size() && in[k].defined(), "{}: input {} is required but absent", node.where(),
             k);
  return in[k];
}

std::vector<int64_t> int_values(const NodeContext& node, const Tensor& t, const char* what) {
  KILN_CHECK(t.defined(), "{}: {} is absent", node.where(), what);
  KILN_CHECK_TYPE(is_integral(t.dtype()), "{}: {} must be an integer tensor, got {}", node.where(),
                  what, t.dtype());
  KILN_CHECK_SHAPE(t.dim() <= 1, "{}: {} must be 1-D, got shape [{}]", node.where(), what,
                   fmt::join(t.shape(), ", "));
  return t.to_vector<int64_t>();
}

double scalar_value(const NodeContext& node, const Tensor& t, const char* what) {
  KILN_CHECK(t.defined() && t.numel() == 1, "{}: {} must hold one value, got shape [{}]",
             node.where(), what, t.defined() ? fmt::format("{}", fmt::join(t.shape(), ", ")) : "");
  return t.to_vector<double>()[0];
}

int64_t axis(const NodeContext& node, int64_t a, int64_t r) {
  KILN_CHECK_SHAPE(a >= -r && a < std::max<int64_t>(r, 1),
                   "{}: axis {} is out of range for rank {}", node.where(), a, r);
  return a < 0 ? a + r : a;
}

// A leaf, not a traced op: exporting an imported model again sees such values (shapes, masks,
// indices) as constants of the traced pass, as it does for tensors a Kiln module makes in forward.
Tensor nondiff(const NodeContext&, const Inputs&, Array out) {
  return Tensor(std::move(out));
}

Tensor int64_tensor(const std::vector<int64_t>& v, Shape shape) {
  Array a(std::move(shape), kInt64);
  std::copy(v.begin(), v.end(), a.data<int64_t>());
  return Tensor(a);
}
Tensor index_tensor(const std::vector<int64_t>& v) {
  return int64_tensor(v, {static_cast<int64_t>(v.size())});
}

void check_numel(const NodeContext& n, const Shape& s) {
  int64_t total = 1;
  for (int64_t d : s) {
    KILN_CHECK_SHAPE(d >= 0, "{}: negative dimension in target shape [{}]", n.where(),
                     fmt::join(s, ", "));
    KILN_CHECK_SHAPE(!__builtin_mul_overflow(total, d, &total) && total <= (int64_t{1} << 34),
                     "{}: target shape [{}] is too large", n.where(), fmt::join(s, ", "));
  }
}

std::string op_key(const std::string& domain, const std::string& op_type) {
  return domain.empty() || domain == "ai.onnx" ? op_type : domain + ":" + op_type;
}

const OpTable& op_table() {
  static const OpTable table = [] {
    OpTable t;
    register_math_ops(t);
    register_einsum_ops(t);
    register_tensor_ops(t);
    register_create_ops(t);
    register_nn_ops(t);
    register_resize_ops(t);
    register_loss_ops(t);
    register_rnn_ops(t);
    register_quant_ops(t);
    register_training_ops(t);
    register_vision_ops(t);
    register_text_ops(t);
    register_spectral_ops(t);
    register_sequence_ops(t);
    return t;
  }();
  return table;
}

}  // namespace detail
}  // namespace kiln::onnx
