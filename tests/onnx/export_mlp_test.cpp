// ONNX export of MLPs: ONNX Runtime at another batch size computes what Kiln computes; the file
// passes the checker; initializers carry parameter names; options (names, opset, fp16, external
// data) do what they say; unmapped ops fail naming the op and the module.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <set>

#include "export_helpers.h"
#include "kiln/nn/activation.h"
#include "kiln/nn/container.h"
#include "kiln/nn/dropout.h"
#include "kiln/nn/linear.h"
#include "kiln/nn/normalization.h"
#include "kiln/tensor/error.h"

namespace kiln::test {
namespace {

// Tolerance for fp32 models of this size: Kiln and ONNX Runtime sum the same products in a
// different order (GEMM blocking), a few ulps of values of order 1.
constexpr double kFp32Tol = 1e-5;

std::shared_ptr<nn::Sequential> make_mlp() {
  manual_seed(11);
  return std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Linear>(nn::LinearOptions(12, 32)), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(nn::LinearOptions(32, 24)), std::make_shared<nn::GELU>(),
      std::make_shared<nn::Linear>(nn::LinearOptions(24, 16)), std::make_shared<nn::Tanh>(),
      std::make_shared<nn::Linear>(nn::LinearOptions(16, 16)), std::make_shared<nn::Sigmoid>(),
      std::make_shared<nn::Linear>(nn::LinearOptions(16, 5)), std::make_shared<nn::Softmax>()});
}

onnx::ExportOptions mlp_options() {
  onnx::ExportOptions o;
  o.input_names = {"features"};
  o.output_names = {"probs"};
  o.dynamic_axes = {{"features", {{0, "batch"}}}, {"probs", {{0, "batch"}}}};
  return o;
}

TEST(ExportMlp, OrtMatchesKilnAtAnotherBatchSize) {
  auto mlp = make_mlp();
  const std::string path = export_path("mlp");
  onnx::export_model(*mlp, {randn({4, 12})}, path, mlp_options());
  expect_checker_passes(path);
  for (int64_t batch : {1, 9}) {
    Compared c = compare_with_ort(*mlp, path, {"features"}, {randn({batch, 12})}, "probs");
    EXPECT_EQ(c.ort_shape, (std::vector<int64_t>{batch, 5}));
    EXPECT_EQ(c.ort_shape, c.kiln_shape);
    EXPECT_LE(c.max_abs_diff, kFp32Tol) << "batch " << batch;
    EXPECT_GT(c.max_abs_value, 0.05);
  }
}

TEST(ExportMlp, DeclaresNamesShapesOpsetAndProducer) {
  auto mlp = make_mlp();
  const std::string path = export_path("mlp_names");
  onnx::export_model(*mlp, {randn({4, 12})}, path, mlp_options());
  const onnx::ModelSummary s = onnx::inspect_model(path);
  EXPECT_EQ(s.ir_version, 8);
  ASSERT_EQ(s.opset_import.size(), 1u);
  EXPECT_EQ(s.opset_import[0].version, 17);
  EXPECT_EQ(s.producer_name, "kiln");
  ASSERT_EQ(s.inputs.size(), 1u);
  EXPECT_EQ(s.inputs[0].name, "features");
  EXPECT_EQ(s.inputs[0].type, "float32");
  EXPECT_EQ(dims_of(s.inputs[0]), (std::vector<std::string>{"batch", "12"}));
  ASSERT_EQ(s.outputs.size(), 1u);
  EXPECT_EQ(s.outputs[0].name, "probs");
  EXPECT_EQ(dims_of(s.outputs[0]), (std::vector<std::string>{"batch", "5"}));
  // The parameters plus GELU's three scalar constants (1/√2... as initializers const_*).
  EXPECT_EQ(s.parameters, mlp->num_parameters() + 3);
  // GELU is written in its Erf form (the Gelu op needs opset 20); Linear on 2-D input is Gemm.
  std::map<std::string, int64_t> ops(s.ops.begin(), s.ops.end());
  EXPECT_EQ(ops["Gemm"], 5);
  EXPECT_EQ(ops["Erf"], 1);
  EXPECT_EQ(ops["Softmax"], 1);
  EXPECT_EQ(ops.count("Gelu"), 0u);
}

TEST(ExportMlp, InitializersAreNamedAfterParameters) {
  auto mlp = make_mlp();
  const std::string path = export_path("mlp_inits");
  onnx::export_model(*mlp, {randn({3, 12})}, path, mlp_options());
  std::vector<std::string> names = onnx::initializer_names(path);
  std::set<std::string> got, want, constants;
  for (const auto& n : names) (n.rfind("const_", 0) == 0 ? constants : got).insert(n);
  for (const auto& [name, t] : mlp->named_parameters()) want.insert(name);
  EXPECT_EQ(got, want);
  EXPECT_EQ(constants.size(), 3u);  // GELU's scalars: √2, 0.5 and 1
  EXPECT_TRUE(got.count("0.weight") && got.count("8.bias"));
}

TEST(ExportMlp, StaticAxesWithoutDynamicAxesAndDefaultNames) {
  auto mlp = make_mlp();
  const std::string path = export_path("mlp_static");
  onnx::export_model(*mlp, {randn({2, 12})}, path);
  const onnx::ModelSummary s = onnx::inspect_model(path);
  EXPECT_EQ(s.inputs[0].name, "input");
  EXPECT_EQ(s.outputs[0].name, "output");
  EXPECT_EQ(dims_of(s.inputs[0]), (std::vector<std::string>{"2", "12"}));
  Compared c = compare_with_ort(*mlp, path, {"input"}, {randn({2, 12})});
  EXPECT_LE(c.max_abs_diff, kFp32Tol);
}

TEST(ExportMlp, RestoresTrainingModeAndDropsDropout) {
  manual_seed(3);
  auto net = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Linear>(nn::LinearOptions(6, 8)),
      std::make_shared<nn::Dropout>(nn::DropoutOptions().p(0.5)),
      std::make_shared<nn::LayerNorm>(nn::LayerNormOptions(8)),
      std::make_shared<nn::Linear>(nn::LinearOptions(8, 3)), std::make_shared<nn::LogSoftmax>()});
  net->train();
  const std::string path = export_path("mlp_dropout");
  onnx::ExportOptions o = mlp_options();
  onnx::export_model(*net, {randn({4, 6})}, path, o);
  EXPECT_TRUE(net->is_training());
  const onnx::ModelSummary s = onnx::inspect_model(path);
  std::map<std::string, int64_t> ops(s.ops.begin(), s.ops.end());
  EXPECT_EQ(ops["LayerNormalization"], 1);
  EXPECT_EQ(ops["LogSoftmax"], 1);
  Compared c = compare_with_ort(*net, path, {"features"}, {randn({5, 6})}, "probs");
  EXPECT_LE(c.max_abs_diff, kFp32Tol);
}

TEST(ExportMlp, Opset14WritesLayerNormAsPrimitives) {
  manual_seed(5);
  auto net = std::make_shared<nn::Sequential>(
      std::vector<nn::ModulePtr>{std::make_shared<nn::Linear>(nn::LinearOptions(6, 8)),
                                 std::make_shared<nn::LayerNorm>(nn::LayerNormOptions(8))});
  const std::string path = export_path("mlp_opset14");
  onnx::ExportOptions o = mlp_options();
  o.opset = 14;
  onnx::export_model(*net, {randn({4, 6})}, path, o);
  expect_checker_passes(path);
  const onnx::ModelSummary s = onnx::inspect_model(path);
  EXPECT_EQ(s.opset_import[0].version, 14);
  std::map<std::string, int64_t> ops(s.ops.begin(), s.ops.end());
  EXPECT_EQ(ops.count("LayerNormalization"), 0u);
  Compared c = compare_with_ort(*net, path, {"features"}, {randn({3, 6})}, "probs");
  EXPECT_LE(c.max_abs_diff, kFp32Tol);
}

TEST(ExportMlp, Fp16WeightsHalveTheFileAndStayClose) {
  auto mlp = make_mlp();
  const std::string p32 = export_path("mlp_fp32"), p16 = export_path("mlp_fp16");
  onnx::export_model(*mlp, {randn({4, 12})}, p32, mlp_options());
  onnx::ExportOptions o = mlp_options();
  o.fp16_weights = true;
  onnx::export_model(*mlp, {randn({4, 12})}, p16, o);
  expect_checker_passes(p16);
  const auto s32 = onnx::inspect_model(p32), s16 = onnx::inspect_model(p16);
  EXPECT_EQ(s16.parameters, s32.parameters);
  // Parameters shrink from 4 to 2 bytes each; the three float32 GELU scalars stay.
  EXPECT_EQ(s32.parameter_bytes - s16.parameter_bytes, 2 * mlp->num_parameters());
  // fp16 keeps 11 significant bits: each weight moves by up to 2^-12 relative; through five
  // layers of width <= 32 with outputs in [0, 1] that stays under 1e-3 (measured: 7e-6).
  Compared c = compare_with_ort(*mlp, p16, {"features"}, {randn({6, 12})}, "probs");
  EXPECT_LE(c.max_abs_diff, 1e-3);
  EXPECT_GT(c.max_abs_diff, 0.0);  // the weights really are rounded
}

TEST(ExportMlp, ExternalDataAboveTheThreshold) {
  auto mlp = make_mlp();
  const std::string path = export_path("mlp_external");
  onnx::ExportOptions o = mlp_options();
  o.external_data_threshold = 1024;  // as if this model were over 2 GB
  o.external_data_min_bytes = 256;
  onnx::ExportInfo info = onnx::export_model(*mlp, {randn({4, 12})}, path, o);
  ASSERT_FALSE(info.external_data_file.empty());
  EXPECT_TRUE(std::filesystem::exists(info.external_data_file));
  const onnx::ModelSummary s = onnx::inspect_model(path);
  ASSERT_EQ(s.external_data_files.size(), 1u);
  EXPECT_EQ(s.external_data_files[0], std::filesystem::path(path).filename().string() + ".data");
  EXPECT_LT(s.file_bytes, 4096);  // the weights are not in the .onnx file
  expect_checker_passes(path);
  Compared c = compare_with_ort(*mlp, path, {"features"}, {randn({7, 12})}, "probs");
  EXPECT_LE(c.max_abs_diff, kFp32Tol);
}

// A module whose forward uses an op with no ONNX mapping (sort) after a Linear named "proj".
class SortingHead : public nn::Module {
 public:
  SortingHead() : Module("SortingHead") {
    proj = register_module("proj", std::make_shared<nn::Linear>(nn::LinearOptions(4, 4)));
  }
  Tensor forward(const Tensor& x) override { return sort(proj->forward(x), -1).values; }
  std::shared_ptr<nn::Linear> proj;
};

TEST(ExportMlp, UnmappedOpFailsNamingTheOpAndModule) {
  SortingHead head;
  const std::string path = export_path("unmapped");
  std::filesystem::remove(path);
  try {
    onnx::export_model(head, {randn({2, 4})}, path);
    FAIL() << "export of sort should fail";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("op 'sort'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("after module 'proj'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("no ONNX mapping"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2, 4]"), std::string::npos) << msg;
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(ExportMlp, RejectsBadOptions) {
  auto mlp = make_mlp();
  onnx::ExportOptions o;
  o.opset = 11;
  EXPECT_THROW(onnx::export_model(*mlp, {randn({2, 12})}, export_path("bad"), o), Error);
  o = {};
  o.input_names = {"a", "b"};
  EXPECT_THROW(onnx::export_model(*mlp, {randn({2, 12})}, export_path("bad"), o), Error);
  o = {};
  o.dynamic_axes = {{"nope", {{0, "batch"}}}};
  EXPECT_THROW(onnx::export_model(*mlp, {randn({2, 12})}, export_path("bad"), o), Error);
}

TEST(ExportMlp, OpTableListsTheCoreOps) {
  std::vector<std::string> ops = onnx::exportable_ops();
  for (const char* op : {"linear", "conv2d", "conv1d", "layer_norm", "batch_norm", "embedding",
                         "scaled_dot_product_attention", "gelu", "softmax", "log_softmax"})
    EXPECT_TRUE(std::find(ops.begin(), ops.end(), op) != ops.end()) << op;
}

}  // namespace
}  // namespace kiln::test
