#pragma once
// Internal to kiln/onnx's exporter, shared by its three sources and by nothing else:
//   export.cpp      the driver: traces, graph inputs/outputs, initializers and constants, value
//                   names and run-time shapes, pruning, the checker, writing the file;
//   export_ops.cpp  the lowering rules and the op table (Kiln op name -> ONNX nodes);
//   export_rnn.cpp  LSTM/GRU module calls found in a trace and written as native ONNX nodes.
// Not a public header: it includes protobuf (through proto_internal.h), and it is not installed
// (cmake/KilnInstall.cmake excludes *_internal.h). Public API: kiln/onnx/export.h.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kiln/autograd/op.h"
#include "kiln/nn/rnn.h"
#include "kiln/onnx/export.h"
#include "kiln/onnx/proto_internal.h"

namespace kiln::onnx::export_detail {

using detail::pb::AttributeProto;
using detail::pb::GraphProto;
using detail::pb::ModelProto;
using detail::pb::NodeProto;
using detail::pb::TensorProto;
using detail::pb::ValueInfoProto;

/// The ONNX element type of a Kiln dtype.
int32_t onnx_type(DType t);
/// "[2, 3]".
std::string dims_str(const Shape& s);

// ---------------------------------------------------------------- attributes
AttributeProto attr_int(const std::string& name, int64_t v);
AttributeProto attr_float(const std::string& name, double v);
AttributeProto attr_ints(const std::string& name, const std::vector<int64_t>& v);
AttributeProto attr_string(const std::string& name, const std::string& v);

// A traced tensor's shape in both traces: dims that differ follow a dynamic axis.
struct DimPair {
  int64_t a, b;
  bool dynamic() const { return a != b; }
  bool operator==(const DimPair&) const = default;
};

class Exporter;

// An LSTM/GRU module call inside a trace: the events [start, start + count) that its unrolled
// forward recorded. It is written as native ONNX LSTM/GRU nodes, which keep the sequence axis
// dynamic (the unrolled events repeat once per time step).
struct RnnRegion {
  size_t start = 0, count = 0;
  nn::RNNBase* rnn = nullptr;
  std::string path;  // module path from the exported root ("" for the root itself)
  bool lstm = false;
  Tensor x;       // the module's input as traced
  Tensor output;  // the module's output as traced
};

// One step of the lowered program: a single trace event or a whole RNN region.
struct Item {
  bool region = false;
  size_t index = 0;  // event index, or index into the regions
};

/// One trace event being lowered: its inputs/outputs in both traces plus node-building helpers.
class Lowering {
 public:
  Lowering(Exporter& ex, size_t index, const TraceEvent& e, const TraceEvent& e2)
      : ex_(ex), index_(index), e_(e), e2_(e2) {}

  const TraceEvent& event() const { return e_; }
  size_t num_inputs() const { return e_.inputs.size(); }
  bool has_input(size_t i) const { return i < e_.inputs.size() && e_.inputs[i].defined(); }
  const Tensor& input(size_t i) const { return e_.inputs.at(i); }
  DType in_dtype(size_t i) const { return e_.inputs.at(i).dtype(); }
  int64_t in_rank(size_t i) const { return e_.inputs.at(i).dim(); }
  std::vector<DimPair> in_dims(size_t i) const { return dims(e_.inputs.at(i), e2_.inputs.at(i)); }
  /// The ONNX value name of input i ("" for an undefined optional input).
  std::string in(size_t i);
  /// The ONNX value name for output i.
  std::string out(size_t i = 0);

  // Attributes as recorded. `fixed_*` throws when the value differs between the traces.
  int64_t attr_int(const std::string& name) const { return fixed<int64_t>(name); }
  double attr_float(const std::string& name) const { return fixed<double>(name); }
  std::string attr_string(const std::string& name) const { return fixed<std::string>(name); }
  std::vector<int64_t> attr_ints(const std::string& name) const {
    return fixed<std::vector<int64_t>>(name);
  }
  bool has_attr(const std::string& name) const {
    for (const auto& [k, v] : e_.attrs)
      if (k == name) return true;
    return false;
  }
  /// An int-vector attribute in both traces (for sizes that may follow a dynamic axis).
  std::pair<std::vector<int64_t>, std::vector<int64_t>> attr_ints_both(
      const std::string& name) const {
    return {attr<std::vector<int64_t>>(e_.attrs, name),
            attr<std::vector<int64_t>>(e2_.attrs, name)};
  }
  std::pair<int64_t, int64_t> attr_int_both(const std::string& name) const {
    return {attr<int64_t>(e_.attrs, name), attr<int64_t>(e2_.attrs, name)};
  }

  /// Appends a node; returns its (first) output name, fresh unless `outputs` is given.
  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   std::vector<AttributeProto> attrs = {}, std::vector<std::string> outputs = {});
  /// Scalar / 1-D constants (initializers).
  std::string scalar(double v, DType dtype);
  std::string ints(const std::vector<int64_t>& v);
  /// A 1-D int64 shape value: static dims as constants, dynamic ones read from the shape of
  /// `x` (a value of this event) or of a graph input with the same size in both traces.
  std::string shape_value(const std::vector<DimPair>& dims);

  [[noreturn]] void fail(const std::string& why) const;
  int64_t opset() const;

 private:
  template <typename T>
  T fixed(const std::string& name) const {
    const T& a = attr<T>(e_.attrs, name);
    if (!(a == attr<T>(e2_.attrs, name)))
      fail(
          fmt::format("attribute '{}' changes with a dynamic axis, which this op's export does "
                      "not support",
                      name));
    return a;
  }
  static std::vector<DimPair> dims(const Tensor& a, const Tensor& b) {
    std::vector<DimPair> d;
    for (int64_t i = 0; i < a.dim(); ++i) d.push_back({a.size(i), b.size(i)});
    return d;
  }

  Exporter& ex_;
  size_t index_;
  const TraceEvent& e_;
  const TraceEvent& e2_;
};

using Lower = std::function<void(Lowering&)>;

// ---------------------------------------------------------------- the exporter
// Builds the GraphProto (export.cpp): value names, initializers and constants, run-time shapes.
class Exporter {
 public:
  Exporter(nn::Module& module, const ExportOptions& o) : module_(module), o_(o) {
    for (const auto& [name, t] : module.named_parameters()) state_.emplace(t.impl(), name);
    for (const auto& [name, t] : module.named_buffers()) state_.emplace(t.impl(), name);
  }

  ModelProto build(const std::vector<Tensor>& inputs1, const std::vector<Tensor>& inputs2,
                   const std::vector<TraceEvent>& ev1, const std::vector<TraceEvent>& ev2,
                   const Tensor& out1, const Tensor& out2, const std::vector<std::string>& in_names,
                   const std::string& out_name, const std::vector<Item>& items1,
                   const std::vector<Item>& items2, const std::vector<RnnRegion>& regions1,
                   const std::vector<RnnRegion>& regions2);
  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   std::vector<AttributeProto> attrs = {}, std::vector<std::string> outputs = {});
  /// Writes one RNN region as native ONNX LSTM / GRU nodes (export_rnn.cpp).
  void lower_rnn(const RnnRegion& r, const RnnRegion& r2);

  std::string value_of(const Tensor& t, const Tensor& t2, size_t event_index);
  std::string fresh(std::string_view hint) { return fmt::format("{}_{}", hint, counter_++); }
  GraphProto& graph() { return *graph_; }
  std::string output_name(const Tensor& t) {
    auto it = names_.find(t.impl());
    if (it != names_.end()) return it->second;
    std::string n = fresh(current_op_);
    names_.emplace(t.impl(), n);
    return n;
  }
  std::string constant(const std::string& name, const Tensor& values);
  std::string constant_ints(const std::vector<int64_t>& v);
  std::string constant_scalar(double v, DType dtype);
  /// Where a dim of size (a, b) across the traces can be read: (value name, axis).
  std::optional<std::pair<std::string, int64_t>> find_dim(
      DimPair d, const std::vector<std::pair<Tensor, Tensor>>& near);
  std::string shape_value(const std::vector<DimPair>& dims,
                          const std::vector<std::pair<Tensor, Tensor>>& near,
                          const std::string& what);
  std::string module_near(size_t event_index) const;
  int64_t opset() const { return o_.opset; }
  const std::vector<TraceEvent>* events_ = nullptr;
  std::string current_op_;

 private:
  nn::Module& module_;
  const ExportOptions& o_;
  std::unordered_map<const TensorImpl*, std::string> state_;  // parameter / buffer names
  std::unordered_map<const TensorImpl*, std::string> names_;  // value names assigned so far
  std::vector<std::pair<Tensor, Tensor>> graph_inputs_;       // (trace 1, trace 2)
  std::vector<std::string> graph_input_names_;
  std::unordered_map<std::string, std::string> const_cache_;
  std::set<std::string> used_names_;
  GraphProto* graph_ = nullptr;
  int64_t counter_ = 0;
  int64_t const_counter_ = 0;
  // "const_<n>" not yet used by a parameter, buffer or value (an imported model's buffers may
  // already carry such names from an earlier export).
  std::string fresh_const_name() {
    std::string n;
    do n = fmt::format("const_{}", const_counter_++);
    while (used_names_.count(n));
    return n;
  }
};

/// The one op table (export_ops.cpp): Kiln op name -> ONNX lowering.
const std::unordered_map<std::string, Lower>& op_table();

/// One traced forward pass: every op call and the module's output.
struct TraceResult {
  std::vector<TraceEvent> events;
  Tensor output;
};

// Finds the LSTM/GRU module calls in a trace (see RnnRegion). A call is written natively when its
// initial state is the default zeros, its input is batched (3-D), and nothing but its output is
// used outside it; otherwise its unrolled events are exported op by op (static sequence length).
// Defined in export_rnn.cpp, beside Exporter::lower_rnn.
std::vector<RnnRegion> find_rnn_regions(nn::Module& root, const TraceResult& t,
                                        const std::vector<Tensor>& graph_inputs);

}  // namespace kiln::onnx::export_detail
