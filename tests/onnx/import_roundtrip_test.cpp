// Round trip: every model kind Kiln exports (MLP, CNN with batch norm and pooling, LSTM, GRU,
// Transformer encoder with a padding mask, embedding + depthwise Conv1d, fp16 weights, layer norm
// written as primitives) is imported back and gives the original module's outputs on inputs of
// another batch (and sequence) size; the imported module keeps the parameter names; exported
// again, ONNX Runtime gives the imported module's outputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>

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
#include "kiln/onnx/import.h"
#include "kiln/text/nasbert.h"
#include "kiln/text/onnx_export.h"

namespace kiln::test {
namespace {

// Float32 models of this size: the same sums in another order (Kiln's composite of an ONNX node
// against Kiln's fused op), a few ulps of values of order 1.
constexpr double kTol = 2e-5;

double max_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return INFINITY;
  const auto x = a.to(kFloat64).to_vector<double>(), y = b.to(kFloat64).to_vector<double>();
  double d = 0;
  for (size_t k = 0; k < x.size(); ++k) d = std::max(d, std::abs(x[k] - y[k]));
  return d;
}

Tensor run_module(nn::Module& m, const std::vector<Tensor>& in) {
  NoGradGuard g;
  m.eval();
  return in.size() == 1 ? m.forward(in[0]) : m.forward(in);
}

// Export `m` on `example`, import, compare on `other`, export the import again, compare in ORT.
// `again` (when given) are the options for exporting the imported module: an imported LSTM/GRU
// is unrolled over time, so its sequence axis must be static there (export_model says so).
void round_trip(const std::string& name, nn::Module& m, const std::vector<Tensor>& example,
                const std::vector<Tensor>& other, const onnx::ExportOptions& o,
                std::optional<onnx::ExportOptions> again_options = std::nullopt,
                std::vector<Tensor> other_again = {}) {
  SCOPED_TRACE(name);
  const std::string path = export_path("rt_" + name);
  onnx::export_model(m, example, path, o);
  auto imported = onnx::import_model(path);
  const Tensor want = run_module(m, other);
  const Tensor got = run_module(*imported, other);
  EXPECT_LE(max_diff(got, want), kTol);
  EXPECT_GT(max_diff(want, zeros_like(want)), 0.01);
  // Parameters come back under the module's names (initializers named after them).
  std::vector<std::string> original;
  for (const auto& [n, t] : m.named_parameters()) original.push_back(n);
  // (The exporter writes LSTM/GRU weights in ONNX's gate order as "<name>:onnx"; skipped.)
  for (const auto& [n, t] : imported->named_parameters())
    if (n.find(':') == std::string::npos) {
      EXPECT_NE(std::find(original.begin(), original.end(), n), original.end()) << n;
    }
  EXPECT_GT(imported->named_parameters().size(), 0u);
  // And out again: ONNX Runtime runs the imported module's export with its outputs.
  const std::string again = export_path("rt_" + name + "_again");
  onnx::export_model(*imported, example, again, again_options.value_or(o));
  expect_checker_passes(again);
  Compared c = compare_with_ort(*imported, again, o.input_names,
                                other_again.empty() ? other : other_again, o.output_names[0]);
  EXPECT_LE(c.max_abs_diff, kTol);
  EXPECT_GT(c.max_abs_value, 0.01);
}

onnx::ExportOptions options(std::vector<std::string> inputs,
                            std::map<std::string, std::map<int64_t, std::string>> dyn) {
  onnx::ExportOptions o;
  o.input_names = std::move(inputs);
  o.output_names = {"y"};
  o.dynamic_axes = std::move(dyn);
  return o;
}

TEST(ImportRoundTrip, Mlp) {
  manual_seed(71);
  nn::Sequential m(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Linear>(nn::LinearOptions(12, 16)), std::make_shared<nn::GELU>(),
      std::make_shared<nn::Dropout>(0.3), std::make_shared<nn::Linear>(nn::LinearOptions(16, 4)),
      std::make_shared<nn::LogSoftmax>(nn::SoftmaxOptions(1))});
  round_trip("mlp", m, {randn({3, 12})}, {randn({7, 12})}, options({"x"}, {{"x", {{0, "batch"}}}}));
}

TEST(ImportRoundTrip, CnnWithBatchNormAndPooling) {
  manual_seed(72);
  auto conv = [](int64_t in, int64_t out, int64_t k) { return nn::Conv2dOptions(in, out, k); };
  nn::Sequential m(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Conv2d>(conv(3, 8, 3).padding(1)),
      std::make_shared<nn::BatchNorm2d>(nn::BatchNormOptions(8)), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::MaxPool2d>(nn::MaxPool2dOptions(2)),
      std::make_shared<nn::Conv2d>(conv(8, 8, 3).padding(2).dilation(2).groups(4)),
      std::make_shared<nn::LeakyReLU>(), std::make_shared<nn::AvgPool2d>(nn::AvgPool2dOptions(2)),
      std::make_shared<nn::Conv2d>(conv(8, 6, 1).bias(false)),
      std::make_shared<nn::AdaptiveAvgPool2d>(1), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(nn::LinearOptions(6, 4))});
  // Running statistics that are not the identity, so batch norm matters.
  {
    NoGradGuard g;
    m.train();
    for (int k = 0; k < 3; ++k) m.forward(randn({4, 3, 12, 12}) * 2.0 + 0.5);
  }
  round_trip("cnn", m, {randn({2, 3, 12, 12})}, {randn({5, 3, 12, 12})},
             options({"image"}, {{"image", {{0, "batch"}}}}));
}

class RnnHead : public nn::Module {
 public:
  RnnHead(bool lstm, nn::RNNOptions o) : Module("RnnHead") {
    const int64_t out = o.hidden_size() * (o.bidirectional() ? 2 : 1);
    if (lstm)
      rnn = register_module("rnn", std::make_shared<nn::LSTM>(o));
    else
      rnn = register_module("rnn", std::make_shared<nn::GRU>(o));
    head = register_module("head", std::make_shared<nn::Linear>(nn::LinearOptions(out, 3)));
  }
  Tensor forward(const Tensor& x) override {  // (B, T, I) -> last step -> (B, 3)
    return head->forward(rnn->forward(x).select(1, -1));
  }
  nn::ModulePtr rnn;
  std::shared_ptr<nn::Linear> head;
};

TEST(ImportRoundTrip, LstmTwoLayers) {
  manual_seed(73);
  RnnHead m(true, nn::LSTMOptions(5, 8).num_layers(2).batch_first(true));
  round_trip("lstm", m, {randn({3, 6, 5})}, {randn({4, 9, 5})},
             options({"x"}, {{"x", {{0, "batch"}, {1, "sequence"}}}}),
             options({"x"}, {{"x", {{0, "batch"}}}}), {randn({4, 6, 5})});
}

TEST(ImportRoundTrip, GruBidirectional) {
  manual_seed(74);
  RnnHead m(false, nn::GRUOptions(5, 6).bidirectional(true).batch_first(true));
  round_trip("gru", m, {randn({3, 6, 5})}, {randn({2, 4, 5})},
             options({"x"}, {{"x", {{0, "batch"}, {1, "sequence"}}}}),
             options({"x"}, {{"x", {{0, "batch"}}}}), {randn({2, 6, 5})});
}

class Encoder : public nn::Module {
 public:
  Encoder() : Module("Encoder") {
    embed = register_module("embed", std::make_shared<nn::Embedding>(nn::EmbeddingOptions(40, 16)));
    auto layer =
        nn::TransformerEncoderLayerOptions(16, 4).dim_feedforward(32).batch_first(true).activation(
            "gelu");
    encoder = register_module("encoder", std::make_shared<nn::TransformerEncoder>(
                                             nn::TransformerEncoderOptions(layer, 2)));
    head = register_module("head", std::make_shared<nn::Linear>(nn::LinearOptions(16, 3)));
  }
  Tensor forward(const std::vector<Tensor>& in) override {  // ids (B, T), padding (B, T) bool
    Tensor x = encoder->forward(embed->forward(in[0]), Tensor(), in[1]);
    return head->forward(x.mean({1}));
  }
  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::TransformerEncoder> encoder;
  std::shared_ptr<nn::Linear> head;
};

Tensor padding(const std::vector<int64_t>& lengths, int64_t T) {
  std::vector<int64_t> v;
  for (int64_t len : lengths)
    for (int64_t t = 0; t < T; ++t) v.push_back(t >= len);
  return from_vector(v, {static_cast<int64_t>(lengths.size()), T}).to(kBool);
}

TEST(ImportRoundTrip, TransformerWithPaddingMask) {
  manual_seed(75);
  Encoder m;
  round_trip("transformer", m, {randint(0, 40, {2, 5}), padding({5, 3}, 5)},
             {randint(0, 40, {3, 7}), padding({7, 2, 5}, 7)},
             options({"tokens", "padding"}, {{"tokens", {{0, "batch"}, {1, "sequence"}}},
                                             {"padding", {{0, "batch"}, {1, "sequence"}}}}),
             // The file computes reshape targets from Shape(tokens); Kiln runs Shape as a
             // constant of the traced pass, so the imported module exports with static axes.
             options({"tokens", "padding"}, {}), {randint(0, 40, {2, 5}), padding({4, 5}, 5)});
}

// The exporter writes Kiln's fused linear, GELU and attention as ONNX primitives; the importer
// fuses them back (one Kiln op each) and the result equals running the primitives as written.
TEST(ImportRoundTrip, FusionsFireAndMatchTheUnfusedGraph) {
  manual_seed(79);
  Encoder m;
  const std::string path = export_path("rt_fusion");
  auto o = options({"tokens", "padding"}, {{"tokens", {{0, "batch"}, {1, "sequence"}}},
                                           {"padding", {{0, "batch"}, {1, "sequence"}}}});
  onnx::export_model(m, {randint(0, 40, {2, 5}), padding({5, 3}, 5)}, path, o);
  auto fused = onnx::import_model(path);
  onnx::ImportOptions plain;
  plain.optimize = false;
  auto unfused = onnx::import_model(path, plain);
  const auto ops = fused->node_ops();
  auto n = [&](const char* op) { return std::count(ops.begin(), ops.end(), std::string(op)); };
  EXPECT_EQ(n("Attention"), 2);  // one per layer
  EXPECT_EQ(n("Gelu"), 2);
  EXPECT_EQ(n("Linear"), 2 * 4);  // in_proj, out_proj, fc1, fc2 per layer (the head is a Gemm)
  EXPECT_EQ(n("MatMul"), 0);
  EXPECT_LT(fused->node_count(), unfused->node_count());
  const std::vector<Tensor> in{randint(0, 40, {3, 7}),
                               padding({7, 0, 4}, 7)};  // a fully padded row
  const Tensor a = run_module(*fused, in), b = run_module(*unfused, in);
  EXPECT_LE(max_diff(a, b), kTol);
  EXPECT_LE(max_diff(a, run_module(m, in)), kTol);
}

// The text models' own exporter (NAS-BERT: separable convolutions, attention, feed-forward,
// embedding projection; inputs input_ids and attention_mask) imports back equal, padded rows
// included, with attention and GELU fused.
TEST(ImportRoundTrip, NasBertTextClassifier) {
  manual_seed(80);
  text::EncoderConfig c;
  c.vocab_size = 50;
  c.embed_dim = 16;
  c.hidden = 32;
  c.layers = "S3 M | F S5";
  c.heads = 2;
  c.ffn_dim = 48;
  c.max_positions = 32;
  text::TextClassifier m(c, 3);
  m.eval();
  const std::string path = export_path("rt_nasbert");
  text::export_text_classifier(m, path, /*probabilities=*/false);
  auto imported = onnx::import_model(path);
  Tensor ids = randint(2, 50, {3, 9});
  std::vector<int64_t> mask_v(27, 1);
  for (int64_t t = 5; t < 9; ++t) mask_v[static_cast<size_t>(9 + t)] = 0;  // row 1: 5 tokens
  const Tensor mask = from_vector(mask_v, {3, 9});
  ids = where(eq(mask, 0.0), full({3, 9}, static_cast<double>(c.padding_id), kInt64), ids);
  const Tensor got = run_module(*imported, {ids, mask});
  const Tensor want = run_module(m, {ids, mask});
  EXPECT_LE(max_diff(got, want), kTol);
  EXPECT_GT(max_diff(want, zeros_like(want)), 0.01);
  const auto ops = imported->node_ops();
  EXPECT_GE(std::count(ops.begin(), ops.end(), std::string("Attention")), 1);
}

TEST(ImportRoundTrip, EmbeddingDepthwiseConv1d) {
  manual_seed(76);
  class TextConv : public nn::Module {
   public:
    TextConv() : Module("TextConv") {
      embed =
          register_module("embed", std::make_shared<nn::Embedding>(nn::EmbeddingOptions(30, 12)));
      depthwise = register_module(
          "depthwise",
          std::make_shared<nn::Conv1d>(nn::Conv1dOptions(12, 12, 3).padding(1).groups(12)));
      head = register_module("head", std::make_shared<nn::Linear>(nn::LinearOptions(12, 4)));
    }
    Tensor forward(const Tensor& ids) override {                           // (B, T) -> (B, 4)
      Tensor x = depthwise->forward(embed->forward(ids).transpose(1, 2));  // (B, C, T)
      return head->forward(relu(x).mean({2}));
    }
    std::shared_ptr<nn::Embedding> embed;
    std::shared_ptr<nn::Conv1d> depthwise;
    std::shared_ptr<nn::Linear> head;
  } m;
  round_trip("textconv", m, {randint(0, 30, {2, 6})}, {randint(0, 30, {5, 11})},
             options({"ids"}, {{"ids", {{0, "batch"}, {1, "sequence"}}}}));
}

TEST(ImportRoundTrip, LayerNormAsPrimitivesAtOpset14) {
  manual_seed(77);
  nn::Sequential m(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Linear>(nn::LinearOptions(6, 8)),
      std::make_shared<nn::LayerNorm>(nn::LayerNormOptions({8})), std::make_shared<nn::Tanh>(),
      std::make_shared<nn::Linear>(nn::LinearOptions(8, 2))});
  auto o = options({"x"}, {{"x", {{0, "batch"}}}});
  o.opset = 14;
  round_trip("layernorm14", m, {randn({2, 6})}, {randn({6, 6})}, o);
}

TEST(ImportRoundTrip, Fp16WeightsImportAsTheirFloat32Values) {
  manual_seed(78);
  nn::Sequential m(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Linear>(nn::LinearOptions(8, 5)), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(nn::LinearOptions(5, 3))});
  auto o = options({"x"}, {{"x", {{0, "batch"}}}});
  o.fp16_weights = true;
  const std::string path = export_path("rt_fp16");
  onnx::export_model(m, {randn({2, 8})}, path, o);
  auto imported = onnx::import_model(path);
  const Tensor x = randn({4, 8});
  const Compared c = compare_with_ort(*imported, path, {"x"}, {x}, "y");
  EXPECT_LE(c.max_abs_diff, kTol);  // Kiln and ORT agree on the rounded weights
  EXPECT_LE(max_diff(run_module(*imported, {x}), run_module(m, {x})), 1e-2);  // fp16 rounding
}

}  // namespace
}  // namespace kiln::test
