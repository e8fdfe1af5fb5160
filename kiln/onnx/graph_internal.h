#pragma once
// Internal to kiln/onnx: the compiled form of an imported graph (import.cpp builds it, the
// load-time rewrites in optimize.cpp simplify it, OnnxModule runs it).
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kiln/onnx/import.h"
#include "kiln/onnx/import_ops_internal.h"

namespace kiln::onnx {

struct CompiledNode {
  detail::NodeContext ctx;
  detail::OpFn fn = nullptr;             // a tensor op, or
  detail::ValueOpFn value_fn = nullptr;  // one over sequences / string tensors
  std::vector<int> inputs;               // value ids; -1 for an omitted optional input
  std::vector<int> outputs;              // value ids; -1 for an omitted optional output
  std::vector<int> release;              // values whose last use is this node
};

class ImportedGraph {
 public:
  std::string name;
  std::vector<ValueInfo> inputs, outputs;
  std::vector<int> input_ids, output_ids;
  std::vector<std::string> value_names;
  std::vector<CompiledNode> nodes;
  std::vector<std::pair<int, Tensor>> constants;  // Constant nodes and buffer-like values
  /// Shapes of the values fixed at load (initializers and constants), for the fusions.
  std::unordered_map<int, Shape> known_shapes;
  /// One-element float initializers as loaded (for pattern matching at load only).
  std::unordered_map<int, Tensor> initializer_scalars;
  /// Values a Gradient node differentiates by (its xs): each run makes them fresh leaves that
  /// require grad, runs with grad mode on and detaches the initializers (see ops_train.cpp).
  std::vector<int> grad_sources;
  /// Initializer value id -> hierarchical parameter/buffer name in the module.
  std::vector<std::pair<int, std::string>> initializers;

  std::vector<Value> run(const nn::Module& module, std::vector<Value> given) const;
};

namespace detail {

/// Load-time rewrites over values the file fixes (outputs of Constant nodes, in `constants`):
/// nodes whose inputs are all such constants run once now and become constants themselves; a
/// BatchNormalization right after a Conv whose weights are constants is folded into that Conv's
/// weight and bias (as ONNX Runtime does). Initializers are never folded: they are the module's
/// parameters and buffers and may change (training, load_state_dict). `nodes` are in execution
/// order; removed nodes disappear, new constants get new value ids.
void optimize_graph(ImportedGraph& graph);

}  // namespace detail
}  // namespace kiln::onnx
