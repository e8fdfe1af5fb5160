#pragma once
// ONNX export: trace one forward pass of a Kiln module and write it as an ONNX model that ONNX
// Runtime (or any ONNX consumer) runs with the same results.
//
//   kiln::onnx::ExportOptions o;
//   o.input_names = {"pixels"};
//   o.output_names = {"logits"};
//   o.dynamic_axes = {{"pixels", {{0, "batch"}}}, {"logits", {{0, "batch"}}}};
//   kiln::onnx::export_model(model, {kiln::randn({4, 784})}, "mlp.onnx", o);
//
// How it works: the module runs in eval mode under NoGradGuard with a kiln::Tracer active; every
// op call (TraceEvent: op name, attributes, input and output tensors) becomes one or a few ONNX
// nodes through one table (export_ops.cpp, kOpTable: one line per Kiln op). Parameters and buffers
// become initializers named by their hierarchical names ("encoder.layers.0.linear1.weight");
// tensors created inside forward become initializers too ("const_3").
//
// Dynamic axes: the forward pass is traced a second time with every dynamic axis of the example
// inputs grown (rows repeated cyclically), and the two traces are compared. Sizes that change with
// a dynamic axis (a reshape target, a slice end, a zeros() state of batch size) are emitted as
// shape computations on the graph inputs instead of constants. nn::LSTM / nn::GRU calls are
// recognised in the trace and written as native ONNX LSTM / GRU nodes (one per layer), so their
// sequence axis can be dynamic too. A model whose op sequence otherwise changes with a dynamic axis
// (a hand-written loop over time steps) is refused with an error saying so — export such a model
// with that axis static.
//
// Every model passes onnx::checker::check_model (full check) and strict shape inference before it
// is written. Targets IR version 8, opset 17 by default.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kiln/autograd/tensor.h"
#include "kiln/nn/module.h"

namespace kiln::onnx {

struct ExportOptions {
  /// ONNX opset of the default domain, 13..17. Below 17, layer_norm is written as its primitive
  /// ops (LayerNormalization arrived in opset 17).
  int64_t opset = 17;
  /// Graph input names, one per example input; default "input" (one input) or "input_0", ...
  std::vector<std::string> input_names;
  /// Graph output name(s); default "output". (Module::forward returns one tensor.)
  std::vector<std::string> output_names;
  /// Per input or output name: axis -> symbolic dimension name, e.g.
  /// {{"tokens", {{0, "batch"}, {1, "sequence"}}}}. Undeclared axes are static. Output axes whose
  /// size follows a dynamic input axis get that axis' name even when not declared here.
  std::map<std::string, std::map<int64_t, std::string>> dynamic_axes;
  /// Store float32 parameters as float16 initializers (half the file size), each followed by a
  /// Cast back to float32; outputs then differ from Kiln's by the fp16 rounding of the weights.
  bool fp16_weights = false;
  /// When the initializers together exceed this many bytes, every initializer of at least
  /// external_data_min_bytes is written to "<model file>.data" next to the model (ONNX external
  /// data: location, offset, length), since one protobuf message cannot exceed 2 GB.
  int64_t external_data_threshold = int64_t{1} << 31;
  int64_t external_data_min_bytes = 1024;
  /// ModelProto.producer_name / producer_version / doc_string.
  std::string producer_name = "kiln";
  std::string producer_version = "0.1";
  std::string doc_string;
};

/// What export_model wrote.
struct ExportInfo {
  int64_t nodes = 0;               // ONNX nodes in the graph
  int64_t initializers = 0;        // initializers (parameters, buffers, constants)
  std::string external_data_file;  // path of the external data file, "" when none
};

/// Traces `module.forward(example_inputs)` (one input: forward(x); several: forward(inputs)) and
/// writes the ONNX model to `path`. The module is put in eval mode for the trace and its training
/// flag is restored afterwards. Throws kiln::Error naming the op and the module (path of the
/// nearest parameter) when an op has no ONNX mapping, naming the axis when a dynamic axis changes
/// the traced graph, and with the checker's message if the model fails onnx::checker.
ExportInfo export_model(nn::Module& module, const std::vector<Tensor>& example_inputs,
                        const std::string& path, const ExportOptions& options = {});

/// The initializer names of any ONNX file, in file order (what export_model named after the
/// module's parameters and buffers). Throws kiln::IOError when the file cannot be read or parsed.
std::vector<std::string> initializer_names(const std::string& path);

/// The Kiln op names export_model can translate (the keys of its op table), sorted.
std::vector<std::string> exportable_ops();

}  // namespace kiln::onnx
