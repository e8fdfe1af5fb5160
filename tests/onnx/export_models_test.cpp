// ONNX export of every model kind Kiln builds: seeded random CNN, the vision ResNet and MobileNet,
// LSTM, GRU, Transformer encoder with a padding mask, embedding + depthwise Conv1d text classifier.
// Each runs in ONNX Runtime on inputs of another batch (and sequence) size than the export example
// and must match Kiln.
#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "export_helpers.h"
#include "kiln/nn/activation.h"
#include "kiln/nn/attention.h"
#include "kiln/nn/container.h"
#include "kiln/nn/conv.h"
#include "kiln/nn/dropout.h"
#include "kiln/nn/linear.h"
#include "kiln/nn/normalization.h"
#include "kiln/nn/pooling.h"
#include "kiln/nn/rnn.h"
#include "kiln/nn/transformer.h"
#include "kiln/tensor/error.h"
#include "kiln/vision/models.h"

namespace kiln::test {
namespace {

// fp32 models of this size: the same sums in another order (GEMM/conv blocking, softmax), a few
// ulps of values of order 1.
constexpr double kFp32Tol = 1e-5;

std::map<std::string, int64_t> op_counts(const std::string& path) {
  const onnx::ModelSummary s = onnx::inspect_model(path);
  return {s.ops.begin(), s.ops.end()};
}

// ---------------------------------------------------------------- CNN
std::shared_ptr<nn::Sequential> make_cnn() {
  manual_seed(21);
  auto conv = [](int64_t in, int64_t out, int64_t k) { return nn::Conv2dOptions(in, out, k); };
  return std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Conv2d>(conv(3, 8, 3).padding(1)),
      std::make_shared<nn::BatchNorm2d>(nn::BatchNormOptions(8)), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::MaxPool2d>(nn::MaxPool2dOptions(2)),
      std::make_shared<nn::Conv2d>(conv(8, 8, 3).padding(2).dilation(2).groups(4)),
      std::make_shared<nn::LeakyReLU>(), std::make_shared<nn::AvgPool2d>(nn::AvgPool2dOptions(2)),
      std::make_shared<nn::Conv2d>(conv(8, 6, 1).stride(1).bias(false)),
      std::make_shared<nn::AdaptiveAvgPool2d>(1), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(nn::LinearOptions(6, 4))});
}

TEST(ExportCnn, OrtMatchesKilnAtAnotherBatchSize) {
  auto cnn = make_cnn();
  // Train-mode passes give BatchNorm running statistics that are not the defaults.
  for (int i = 0; i < 3; ++i) cnn->forward(randn({6, 3, 12, 12}) * 2.0 + 0.5);
  onnx::ExportOptions o;
  o.input_names = {"image"};
  o.output_names = {"logits"};
  o.dynamic_axes = {{"image", {{0, "batch"}}}};
  const std::string path = export_path("cnn");
  onnx::export_model(*cnn, {randn({2, 3, 12, 12})}, path, o);
  expect_checker_passes(path);
  auto ops = op_counts(path);
  EXPECT_EQ(ops["Conv"], 3);
  EXPECT_EQ(ops["BatchNormalization"], 1);
  EXPECT_EQ(ops["MaxPool"], 1);
  EXPECT_EQ(ops["AveragePool"], 1);
  EXPECT_EQ(ops["GlobalAveragePool"], 1);
  const onnx::ModelSummary s = onnx::inspect_model(path);
  // The output's batch axis follows the input's: it gets the same symbolic name.
  EXPECT_EQ(dims_of(s.outputs[0]), (std::vector<std::string>{"batch", "4"}));
  Compared c = compare_with_ort(*cnn, path, {"image"}, {randn({5, 3, 12, 12})}, "logits");
  EXPECT_EQ(c.ort_shape, (std::vector<int64_t>{5, 4}));
  EXPECT_LE(c.max_abs_diff, kFp32Tol);
  EXPECT_GT(c.max_abs_value, 0.01);
}

// ---------------------------------------------------------------- vision models
// kiln/vision's ResNet (residual adds, strided 1×1 downsample) and MobileNet (depthwise convs),
// small, with BatchNorm statistics from train-mode passes; checked at batch 5 after export at 2.
TEST(ExportVision, ResNetAndMobileNetMatchKilnAtAnotherBatchSize) {
  struct Case {
    const char* name;
    std::shared_ptr<nn::Module> model;
    int64_t convs, classes;
  };
  manual_seed(23);
  const Case cases[] = {
      {"resnet", vision::resnet({.in_channels = 1, .num_classes = 7, .blocks = {1, 1}, .width = 8}),
       6, 7},
      {"mobilenet",
       vision::mobilenet({.in_channels = 1,
                          .num_classes = 10,
                          .width = 8,
                          .stem_stride = 2,
                          .blocks = {{16, 1}, {32, 2}}}),
       5, 10},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    for (int i = 0; i < 3; ++i) c.model->forward(randn({6, 1, 16, 16}) * 2.0 + 0.5);
    onnx::ExportOptions o;
    o.input_names = {"image"};
    o.output_names = {"logits"};
    o.dynamic_axes = {{"image", {{0, "batch"}}}};
    const std::string path = export_path(c.name);
    onnx::export_model(*c.model, {randn({2, 1, 16, 16})}, path, o);
    expect_checker_passes(path);
    auto ops = op_counts(path);
    EXPECT_EQ(ops["Conv"], c.convs);
    Compared r = compare_with_ort(*c.model, path, {"image"}, {randn({5, 1, 16, 16})}, "logits");
    EXPECT_EQ(r.ort_shape, (std::vector<int64_t>{5, c.classes}));
    EXPECT_LE(r.max_abs_diff, kFp32Tol);
    EXPECT_GT(r.max_abs_value, 0.01);
  }
}

// ---------------------------------------------------------------- LSTM / GRU
// A recurrent classifier: RNN over (B, T, I), then a Linear on the last step's output.
class RnnClassifier : public nn::Module {
 public:
  RnnClassifier(bool lstm, nn::RNNOptions o) : Module("RnnClassifier") {
    const int64_t out = o.hidden_size() * (o.bidirectional() ? 2 : 1);
    if (lstm) {
      rnn = register_module("rnn", std::make_shared<nn::LSTM>(o));
    } else {
      rnn = register_module("rnn", std::make_shared<nn::GRU>(o));
    }
    head = register_module("head", std::make_shared<nn::Linear>(nn::LinearOptions(out, 3)));
    time_dim_ = o.batch_first() ? 1 : 0;
  }
  Tensor forward(const Tensor& x) override {
    // (B, T, D·H) or (T, B, D·H) -> last step (B, D·H) -> (B, 3)
    return head->forward(rnn->forward(x).select(time_dim_, -1));
  }
  nn::ModulePtr rnn;
  std::shared_ptr<nn::Linear> head;

 private:
  int64_t time_dim_;
};

onnx::ExportOptions rnn_options(bool dynamic_sequence) {
  onnx::ExportOptions o;
  o.input_names = {"x"};
  o.output_names = {"y"};
  o.dynamic_axes = {{"x", {{0, "batch"}}}};
  if (dynamic_sequence) o.dynamic_axes["x"][1] = "sequence";
  return o;
}

TEST(ExportRnn, LstmIsNativeAndMatchesKilnAtOtherBatchAndSequence) {
  manual_seed(31);
  RnnClassifier m(true, nn::LSTMOptions(5, 8).num_layers(2).batch_first(true));
  const std::string path = export_path("lstm");
  onnx::export_model(m, {randn({3, 6, 5})}, path, rnn_options(true));
  expect_checker_passes(path);
  auto ops = op_counts(path);
  EXPECT_EQ(ops["LSTM"], 2);  // one per layer, not one node set per time step
  const onnx::ModelSummary s = onnx::inspect_model(path);
  EXPECT_EQ(dims_of(s.inputs[0]), (std::vector<std::string>{"batch", "sequence", "5"}));
  for (auto [B, T] : {std::pair<int64_t, int64_t>{7, 9}, {1, 2}}) {
    Compared c = compare_with_ort(m, path, {"x"}, {randn({B, T, 5})}, "y");
    EXPECT_EQ(c.ort_shape, (std::vector<int64_t>{B, 3}));
    EXPECT_LE(c.max_abs_diff, kFp32Tol) << "B=" << B << " T=" << T;
    EXPECT_GT(c.max_abs_value, 0.01);
  }
}

TEST(ExportRnn, GruBidirectionalIsNativeAndMatchesKilnAtOtherBatchAndSequence) {
  manual_seed(32);
  RnnClassifier m(false, nn::GRUOptions(5, 6).bidirectional(true).num_layers(2));
  const std::string path = export_path("gru");
  onnx::ExportOptions o;
  o.input_names = {"x"};
  o.output_names = {"y"};
  o.dynamic_axes = {{"x", {{0, "sequence"}, {1, "batch"}}}};  // time-major (T, B, I)
  onnx::export_model(m, {randn({4, 2, 5})}, path, o);
  expect_checker_passes(path);
  EXPECT_EQ(op_counts(path)["GRU"], 2);
  Compared c = compare_with_ort(m, path, {"x"}, {randn({6, 3, 5})}, "y");
  EXPECT_EQ(c.ort_shape, (std::vector<int64_t>{3, 3}));
  EXPECT_LE(c.max_abs_diff, kFp32Tol);
  EXPECT_GT(c.max_abs_value, 0.01);
}

TEST(ExportRnn, LstmWithStaticSequenceKeepsDynamicBatch) {
  manual_seed(34);
  RnnClassifier m(true, nn::LSTMOptions(5, 8).batch_first(true).bias(false));
  const std::string path = export_path("lstm_static_seq");
  onnx::export_model(m, {randn({3, 6, 5})}, path, rnn_options(false));
  expect_checker_passes(path);
  Compared c = compare_with_ort(m, path, {"x"}, {randn({5, 6, 5})}, "y");
  EXPECT_EQ(c.ort_shape, (std::vector<int64_t>{5, 3}));
  EXPECT_LE(c.max_abs_diff, kFp32Tol);
}

// A hand-written recurrence: a loop over time steps whose count follows the input.
class LoopRnn : public nn::Module {
 public:
  LoopRnn() : Module("LoopRnn") {
    cell = register_module("cell", std::make_shared<nn::Linear>(nn::LinearOptions(8 + 5, 8)));
  }
  Tensor forward(const Tensor& x) override {  // (B, T, 5) -> (B, 8)
    Tensor h = zeros({x.size(0), 8});
    for (int64_t t = 0; t < x.size(1); ++t) h = tanh(cell->forward(cat({h, x.select(1, t)}, 1)));
    return h;
  }
  std::shared_ptr<nn::Linear> cell;
};

TEST(ExportRnn, LoopOverTimeRefusesADynamicSequenceButExportsWithStaticOne) {
  manual_seed(33);
  LoopRnn m;
  try {
    onnx::export_model(m, {randn({3, 6, 5})}, export_path("loop_seq"), rnn_options(true));
    FAIL() << "a loop over time steps cannot have a dynamic sequence axis";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("traced graph changes with the dynamic axes"),
              std::string::npos)
        << e.what();
  }
  // With the sequence static, the zeros state of batch size becomes a ConstantOfShape.
  const std::string path = export_path("loop");
  onnx::export_model(m, {randn({3, 6, 5})}, path, rnn_options(false));
  EXPECT_EQ(op_counts(path)["ConstantOfShape"], 1);
  Compared c = compare_with_ort(m, path, {"x"}, {randn({4, 6, 5})}, "y");
  EXPECT_EQ(c.ort_shape, (std::vector<int64_t>{4, 8}));
  EXPECT_LE(c.max_abs_diff, kFp32Tol);
}

// ---------------------------------------------------------------- Transformer with padding mask
// Token ids + learned positions -> TransformerEncoder (with key padding mask) -> mean -> Linear.
class TransformerClassifier : public nn::Module {
 public:
  TransformerClassifier() : Module("TransformerClassifier") {
    embed = register_module("embed", std::make_shared<nn::Embedding>(nn::EmbeddingOptions(40, 16)));
    positions = register_parameter("positions", randn({32, 16}) * 0.1);
    auto layer =
        nn::TransformerEncoderLayerOptions(16, 4).dim_feedforward(32).batch_first(true).activation(
            "gelu");
    encoder = register_module("encoder", std::make_shared<nn::TransformerEncoder>(
                                             nn::TransformerEncoderOptions(layer, 2)));
    head = register_module("head", std::make_shared<nn::Linear>(nn::LinearOptions(16, 3)));
  }
  /// inputs = {ids (B, T) int64, padding (B, T) bool, true = padding}
  Tensor forward(const std::vector<Tensor>& inputs) override {
    const Tensor& ids = inputs[0];
    Tensor x = embed->forward(ids) + positions.narrow(0, 0, ids.size(1));  // (B, T, C)
    x = encoder->forward(x, Tensor(), inputs[1]);
    return head->forward(x.mean({1}));  // (B, 3)
  }
  std::shared_ptr<nn::Embedding> embed;
  Tensor positions;
  std::shared_ptr<nn::TransformerEncoder> encoder;
  std::shared_ptr<nn::Linear> head;
};

// Padding mask for sequences of the given lengths (true past each length).
Tensor padding_mask(const std::vector<int64_t>& lengths, int64_t T) {
  std::vector<int64_t> v;
  for (int64_t len : lengths)
    for (int64_t t = 0; t < T; ++t) v.push_back(t >= len);
  return from_vector(v, {static_cast<int64_t>(lengths.size()), T}).to(kBool);
}

TEST(ExportTransformer, PaddingMaskedEncoderMatchesKilnAtOtherBatchAndSequence) {
  manual_seed(41);
  TransformerClassifier m;
  onnx::ExportOptions o;
  o.input_names = {"tokens", "padding"};
  o.output_names = {"logits"};
  o.dynamic_axes = {{"tokens", {{0, "batch"}, {1, "sequence"}}},
                    {"padding", {{0, "batch"}, {1, "sequence"}}}};
  const std::string path = export_path("transformer");
  onnx::export_model(m, {randint(0, 40, {2, 5}), padding_mask({5, 3}, 5)}, path, o);
  expect_checker_passes(path);
  const onnx::ModelSummary s = onnx::inspect_model(path);
  EXPECT_EQ(s.inputs[0].type, "int64");
  EXPECT_EQ(s.inputs[1].type, "bool");
  EXPECT_EQ(dims_of(s.inputs[0]), (std::vector<std::string>{"batch", "sequence"}));
  EXPECT_EQ(dims_of(s.outputs[0]), (std::vector<std::string>{"batch", "3"}));
  auto ops = op_counts(s.path);
  EXPECT_EQ(ops["LayerNormalization"], 4);
  EXPECT_EQ(ops["Gather"] >= 1, true);
  EXPECT_EQ(ops["Erf"], 2);
  for (auto [B, T] : {std::pair<int64_t, int64_t>{3, 9}, {1, 2}}) {
    std::vector<int64_t> lengths;
    for (int64_t b = 0; b < B; ++b) lengths.push_back(std::max<int64_t>(1, T - b * 2));
    Compared c = compare_with_ort(m, path, {"tokens", "padding"},
                                  {randint(0, 40, {B, T}), padding_mask(lengths, T)}, "logits");
    EXPECT_EQ(c.ort_shape, (std::vector<int64_t>{B, 3}));
    EXPECT_LE(c.max_abs_diff, kFp32Tol) << "B=" << B << " T=" << T;
    EXPECT_GT(c.max_abs_value, 0.01);
  }
}

// ---------------------------------------------------------------- cross-attention, time-major
// MultiheadAttention (not batch_first) from a query sequence to a memory: its in-projection
// parameter is sliced into q/k/v blocks, an additive float attn_mask (T, S) and a key padding mask.
class CrossAttention : public nn::Module {
 public:
  CrossAttention() : Module("CrossAttention") {
    attn = register_module(
        "attn", std::make_shared<nn::MultiheadAttention>(nn::MultiheadAttentionOptions(8, 2)));
  }
  /// inputs = {query (T, B, 8), memory (S, B, 8), padding (B, S) bool, attn_mask (T, S) float}
  Tensor forward(const std::vector<Tensor>& in) override {
    return attn->forward(in[0], in[1], in[1], in[2], in[3]);
  }
  std::shared_ptr<nn::MultiheadAttention> attn;
};

TEST(ExportTransformer, CrossAttentionWithMasksMatchesKilnAtOtherSizes) {
  manual_seed(42);
  CrossAttention m;
  onnx::ExportOptions o;
  o.input_names = {"query", "memory", "padding", "bias"};
  o.dynamic_axes = {{"query", {{0, "sequence"}, {1, "batch"}}},
                    {"memory", {{0, "source"}, {1, "batch"}}},
                    {"padding", {{0, "batch"}, {1, "source"}}},
                    {"bias", {{0, "sequence"}, {1, "source"}}}};
  const std::string path = export_path("cross_attention");
  onnx::export_model(
      m, {randn({3, 2, 8}), randn({4, 2, 8}), padding_mask({4, 2}, 4), randn({3, 4})}, path, o);
  expect_checker_passes(path);
  const int64_t T = 5, B = 3, S = 6;
  Compared c = compare_with_ort(
      m, path, o.input_names,
      {randn({T, B, 8}), randn({S, B, 8}), padding_mask({6, 1, 3}, S), randn({T, S})});
  EXPECT_EQ(c.ort_shape, (std::vector<int64_t>{T, B, 8}));
  EXPECT_LE(c.max_abs_diff, kFp32Tol);
  EXPECT_GT(c.max_abs_value, 0.01);
}

// ---------------------------------------------------------------- text classifier
// Embedding -> depthwise Conv1d (groups = channels) -> pointwise Conv1d -> max over time -> Linear.
class TextCnn : public nn::Module {
 public:
  TextCnn() : Module("TextCnn") {
    embed = register_module("embed", std::make_shared<nn::Embedding>(nn::EmbeddingOptions(30, 12)));
    depthwise = register_module(
        "depthwise",
        std::make_shared<nn::Conv1d>(nn::Conv1dOptions(12, 12, 3).padding(1).groups(12)));
    pointwise =
        register_module("pointwise", std::make_shared<nn::Conv1d>(nn::Conv1dOptions(12, 16, 1)));
    head = register_module("head", std::make_shared<nn::Linear>(nn::LinearOptions(16, 4)));
  }
  Tensor forward(const Tensor& ids) override {
    Tensor x = embed->forward(ids).transpose(1, 2);  // (B, C, T)
    x = relu(pointwise->forward(relu(depthwise->forward(x))));
    return log_softmax(head->forward(amax(x, {2})), -1);  // (B, 4)
  }
  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::Conv1d> depthwise, pointwise;
  std::shared_ptr<nn::Linear> head;
};

TEST(ExportText, EmbeddingDepthwiseConvMatchesKilnAtOtherBatchAndSequence) {
  manual_seed(51);
  TextCnn m;
  onnx::ExportOptions o;
  o.input_names = {"tokens"};
  o.output_names = {"log_probs"};
  o.dynamic_axes = {{"tokens", {{0, "batch"}, {1, "sequence"}}}};
  const std::string path = export_path("textcnn");
  onnx::export_model(m, {randint(0, 30, {2, 7})}, path, o);
  expect_checker_passes(path);
  auto ops = op_counts(path);
  EXPECT_EQ(ops["Gather"], 1);
  EXPECT_EQ(ops["Conv"], 2);
  const std::vector<std::string> names = onnx::initializer_names(path);
  EXPECT_NE(std::find(names.begin(), names.end(), "embed.weight"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "depthwise.weight"), names.end());
  Compared c = compare_with_ort(m, path, {"tokens"}, {randint(0, 30, {5, 11})}, "log_probs");
  EXPECT_EQ(c.ort_shape, (std::vector<int64_t>{5, 4}));
  EXPECT_LE(c.max_abs_diff, kFp32Tol);
}

}  // namespace
}  // namespace kiln::test
