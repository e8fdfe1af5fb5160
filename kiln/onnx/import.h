#pragma once
// ONNX import: any ONNX model (PyTorch, Keras/tf2onnx, Paddle, Kiln's own export) as an nn::Module
// whose forward runs the graph with Kiln's ops, autograd included.
//
//   auto model = kiln::onnx::import_model("resnet.onnx");        // eval mode, ready to run
//   kiln::Tensor logits = model->forward(images);                  // single input, first output
//   auto outs = model->run({{"input_ids", ids}, {"mask", mask}});  // by name: every output
//   kiln::Model(model).compile(...).fit(x, y, ...);                // fine-tune it
//   kiln::onnx::export_model(*model, {images}, "tuned.onnx");     // and write it back out
//
// What happens at load (import_model): the file is parsed, ONNX's shape inference annotates the
// graph, nodes are put in topological order (a cycle or a value nobody produces is an error naming
// it), every node is matched with Kiln's op table (kiln/onnx/ops_*.cpp) and every operator Kiln
// lacks is reported in one message before anything runs:
//   import_model: m.onnx uses operators Kiln does not implement: NonMaxSuppression (opset 11), ...
// Initializers become parameters under their ONNX names ("fc1.weight" is parameter "weight" of a
// child module "fc1", so state_dict() and export give back the same names); float initializers
// feeding a weight slot (Gemm/MatMul/Conv/ConvTranspose/BatchNormalization/LayerNormalization/
// InstanceNormalization/PRelu/Add/Mul/...) are trainable by default, the rest (shapes, indices,
// running statistics) are buffers. Constant nodes stay constants.
//
// What happens per forward: the nodes run in order; each intermediate value is dropped right after
// its last consumer, so peak memory follows the live set, not the whole graph. Dimensions are
// whatever the inputs bring (symbolic dims stay dynamic); inputs are checked against the declared
// element types and fixed dims first.
//
// Ops are Kiln's autograd ops (fused linear/conv/softmax/layer_norm/batch_norm kernels where the
// ONNX node maps to one), so backward() and fit() work through the graph. Ops with no useful
// gradient (comparisons, Floor/Ceil/Round/Sign, ArgMax, Shape, NonZero, ...) are recorded as
// non-differentiable; asin/acos/atan and a few integer ops are computed without a gradient as well
// (they are documented in ops_math.cpp).
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kiln/autograd/tensor.h"
#include "kiln/nn/module.h"

namespace kiln::onnx {

struct ImportOptions {
  /// Per-initializer override of the default trainable rule (ONNX name -> trainable). Naming an
  /// initializer that does not exist is an error.
  std::map<std::string, bool> trainable;
  /// When false, every initializer is a buffer (a frozen model; fine for inference).
  bool train_weights = true;
  /// Load-time rewrites: constant folding of Constant-node values, Conv + BatchNormalization
  /// folding, and MatMul(x, Transpose(W)) + Add(b) -> linear, the erf GELU pattern -> gelu,
  /// MatMul-scale-mask-Softmax-MatMul -> scaled_dot_product_attention (Kiln's fused ops). Off runs
  /// the graph node by node as written.
  bool optimize = true;
};

/// An ONNX string tensor: Kiln's Tensor has no string dtype, so the importer holds strings apart
/// (StringNormalizer, Identity and Cast read and write them). Elements in row-major order.
struct StringTensor {
  Shape shape;
  std::vector<std::string> data;  // one per element: product of shape
};

/// An ONNX optional that holds nothing (an optional that holds a value is just that value).
struct EmptyOptional {};

/// A value flowing through an imported graph: a tensor, an ONNX sequence (seq(tensor), made and
/// read by the Sequence* ops, SplitToSequence and ConcatFromSequence), a string tensor or an empty
/// optional. A default (undefined) Tensor stands for an omitted optional input of a node.
using Value = std::variant<Tensor, std::vector<Tensor>, StringTensor, EmptyOptional>;

/// One graph input or output: its name, kind, element type and declared dims (-1 = dynamic).
struct ValueInfo {
  enum class Kind { Tensor, Sequence, String } kind = Kind::Tensor;
  bool optional = false;  // optional(kind): the value, or EmptyOptional
  std::string name;
  DType dtype = kFloat32;  // of the tensor, or of a sequence's elements
  bool has_shape = false;
  std::vector<int64_t> dims;      // -1 for symbolic or unknown dims
  std::vector<std::string> syms;  // symbolic names ("batch"), "" where fixed or unknown
};

class ImportedGraph;  // the compiled graph (import.cpp)

/// An ONNX graph as a Kiln module. Parameters and buffers carry the initializers' ONNX names.
class OnnxModule : public nn::Module {
 public:
  using Module::forward;
  OnnxModule(std::string path, std::shared_ptr<ImportedGraph> graph);
  ~OnnxModule() override;

  /// Single-input models: forward(x) -> the first output.
  Tensor forward(const Tensor& x) override;
  /// Positional inputs (graph input order) -> the first output.
  Tensor forward(const std::vector<Tensor>& inputs) override;
  /// Inputs by name -> the first output.
  Tensor forward(const std::map<std::string, Tensor>& inputs);
  /// Every output, in graph output order (positional inputs).
  std::vector<Tensor> run(const std::vector<Tensor>& inputs);
  /// Every output by name (inputs by name; each graph input must be given exactly once).
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs);
  /// Every output, for models whose inputs or outputs are sequences or string tensors too (run()
  /// throws when an output is not a tensor).
  std::vector<Value> run_values(std::vector<Value> inputs);

  const std::vector<ValueInfo>& inputs() const;
  const std::vector<ValueInfo>& outputs() const;
  std::vector<std::string> input_names() const;
  std::vector<std::string> output_names() const;
  /// The file the model came from (or the name given to import_model_bytes).
  const std::string& source() const { return source_; }
  /// Nodes left to run per forward after load-time folding and fusion.
  int64_t node_count() const;
  /// The op of each of those nodes in execution order: ONNX op types, and "Linear", "Gelu",
  /// "Attention" where a pattern of ONNX nodes was fused into one Kiln op.
  std::vector<std::string> node_ops() const;
  /// "OnnxModule(model.onnx: 53 nodes, inputs=[input[batch,1,28,28]], outputs=[...])".
  std::string extra_repr() const override;

 private:
  std::string source_;
  std::shared_ptr<ImportedGraph> graph_;
};

/// Reads the ONNX model at `path` and compiles it into a module (in eval mode). Throws
/// kiln::IOError for a file that cannot be read or parsed, kiln::Error naming the problem for a
/// malformed graph (cycle, missing input, bad initializer) and listing every unsupported operator.
std::shared_ptr<OnnxModule> import_model(const std::string& path,
                                         const ImportOptions& options = {});
/// The same from bytes in memory; `name` stands for the path in messages.
std::shared_ptr<OnnxModule> import_model_bytes(std::span<const std::byte> bytes,
                                               std::string_view name,
                                               const ImportOptions& options = {});

/// The ONNX operator types import_model implements, sorted (ops of other domains than the
/// default one as "<domain>:<op>", e.g. "ai.onnx.preview.training:Adam").
std::vector<std::string> importable_ops();

/// A .pb TensorProto (ONNX's test data format) as a Tensor (float32/64, int32/64, uint8, bool;
/// float16 is widened to float32, as import_model holds it).
Tensor load_tensor_proto(const std::string& path);
/// A .pb test data file as the value `info` declares: a TensorProto (string tensors included) or,
/// for a sequence, a SequenceProto of tensors; for an optional, an OptionalProto.
Value load_value_proto(const std::string& path, const ValueInfo& info);

}  // namespace kiln::onnx
