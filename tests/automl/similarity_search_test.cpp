// kiln automl sentence-similarity (kiln/automl/similarity_search.h): the pair features, the search
// on synthetic pairs with a known similarity, the budget, the saved model in ONNX Runtime, and bad
// input.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "automl/automl_test_util.h"
#include "kiln/automl/similarity_search.h"
#include "kiln/data/split.h"
#include "kiln/io/json.h"
#include "kiln/tensor/error.h"
#include "kiln/text/pretrain.h"
#include "onnx/ort_runner.h"

namespace kiln::automl {
namespace {

using test_util::fresh_dir;
using test_util::what;

namespace fs = std::filesystem;
// The fast learner only: fine-tuning the shipped encoder takes minutes (the README's figure).
const std::vector<std::string> kPairs = {"pair_features"};

// `rows` pairs of 8-word sentences over a 200-word vocabulary: B keeps k of A's words (k uniform
// in 0..8, in a shuffled order) and draws the rest from words not in A; the label is k / 8.
data::Table pairs_table(size_t rows, uint64_t seed) {
  data::SplitMix64 rng(seed);
  std::vector<std::string> vocab;
  for (int i = 0; i < 200; ++i) vocab.push_back(fmt::format("w{}x{}", i, i * 7 % 13));
  std::vector<float> label;
  std::vector<std::string> first, second;
  constexpr size_t kWords = 8;
  for (size_t r = 0; r < rows; ++r) {
    std::vector<size_t> a;
    while (a.size() < kWords) {
      const size_t w = rng.bounded(vocab.size());
      if (std::find(a.begin(), a.end(), w) == a.end()) a.push_back(w);
    }
    const size_t k = rng.bounded(kWords + 1);
    std::vector<size_t> b(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(k));
    while (b.size() < kWords) {
      const size_t w = rng.bounded(vocab.size());
      if (std::find(a.begin(), a.end(), w) == a.end() &&
          std::find(b.begin(), b.end(), w) == b.end()) {
        b.push_back(w);
      }
    }
    for (size_t i = b.size() - 1; i > 0; --i) std::swap(b[i], b[rng.bounded(i + 1)]);
    std::string sa, sb;
    for (size_t w : a) sa += (sa.empty() ? "" : " ") + vocab[w];
    for (size_t w : b) sb += (sb.empty() ? "" : " ") + vocab[w];
    first.push_back(sa);
    second.push_back(sb);
    label.push_back(static_cast<float>(k) / kWords);
  }
  data::Table table;
  table.add_column(data::Column("Score", label));
  table.add_column(data::Column("A", first));
  table.add_column(data::Column("B", second));
  return table;
}

SentenceSimilaritySearchOptions pair_options() {
  return {.label_column = "Score", .text_column = "A", .text2_column = "B", .learners = kPairs};
}

TEST(PairFeatures, MatchHandComputedValues) {
  const std::vector<std::string> a = {"The cat sat", "", "same words here"};
  const std::vector<std::string> b = {"the cat ran away", "", "here  same WORDS"};
  const PairFeaturizer f = PairFeaturizer::fit(a, b, {.char_n = 3});
  const std::vector<float> x = f.transform(a, b);
  ASSERT_EQ(x.size(), 3u * PairFeaturizer::kNumFeatures);
  // Pair 0: W(A) = {the, cat, sat}, W(B) = {the, cat, ran, away}: 2 shared of 5.
  EXPECT_FLOAT_EQ(x[1], 2.0f / 5);
  // Bigrams {the cat, cat sat} and {the cat, cat ran, ran away}: 1 shared of 4.
  EXPECT_FLOAT_EQ(x[2], 1.0f / 4);
  // Character 3-grams of "the cat sat" (9, all distinct) and "the cat ran away" (14, distinct):
  // shared "the", "he ", "e c", " ca", "cat", "at " = 6 of 9 + 14 − 6 = 17.
  EXPECT_FLOAT_EQ(x[3], 6.0f / 17);
  EXPECT_FLOAT_EQ(x[4], 2.0f / 3);    // containment: 2 of the smaller 3
  EXPECT_FLOAT_EQ(x[5], 3.0f / 4);    // word counts 3 and 4
  EXPECT_FLOAT_EQ(x[6], 11.0f / 16);  // bytes 11 and 16
  EXPECT_GT(x[0], 0.0f);              // shared words: positive cosine
  EXPECT_LT(x[0], 1.0f);
  const size_t f1 = PairFeaturizer::kNumFeatures, f2 = 2 * f1;
  // Two empty texts: no sets, equal lengths.
  EXPECT_EQ(std::vector<float>(x.begin() + f1, x.begin() + f2),
            (std::vector<float>{0, 0, 0, 0, 0, 1, 1}));
  // The same words in another order and case: word Jaccard and containment 1, cosine 1.
  EXPECT_FLOAT_EQ(x[f2 + 1], 1.0f);
  EXPECT_FLOAT_EQ(x[f2 + 4], 1.0f);
  EXPECT_NEAR(x[f2 + 0], 1.0f, 1e-6);
  EXPECT_LT(x[f2 + 2], 1.0f);  // the bigrams differ
  // The JSON round trip featurises the same way.
  const PairFeaturizer back = PairFeaturizer::from_json(json::parse(f.to_json().dump(), "f"));
  EXPECT_EQ(back.transform(a, b), x);
}

TEST(SimilaritySearch, MetricsMatchHandComputedValues) {
  const std::vector<double> truth = {0, 1, 2, 3}, pred = {0, 1, 2, 5};
  EXPECT_DOUBLE_EQ(similarity_metric("rmse", truth, pred), 1.0);  // √(4 / 4)
  EXPECT_DOUBLE_EQ(similarity_metric("spearman", truth, pred), 1.0);
  EXPECT_LT(similarity_metric("pearson", truth, pred), 1.0);
  EXPECT_GT(similarity_metric("pearson", truth, pred), 0.9);
  EXPECT_THROW(similarity_metric("mae", truth, pred), Error);
}

// rmse on held-out pairs against always predicting the training mean (the label's spread), within
// a short budget.
TEST(SimilaritySearch, BeatsTheMeanWithinTheBudget) {
  const double budget = 3.0;
  const data::Table train = pairs_table(400, 3), test = pairs_table(200, 4);
  SentenceSimilaritySearchOptions o = pair_options();
  o.time_budget_s = budget;
  o.metric = "rmse";
  o.seed = 1;
  const auto t0 = std::chrono::steady_clock::now();
  const SimilaritySearchResult r = SentenceSimilaritySearch(o).run(train);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string table = r.leaderboard_table();
  std::printf("%s\n", table.substr(0, table.find('\n', table.find('\n') + 1)).c_str());
  ASSERT_GE(r.search.best, 0);
  EXPECT_EQ(r.winner, "pair_features");
  EXPECT_TRUE(r.refitted);
  EXPECT_GE(r.search.trials.size(), 3u);
  const std::vector<float> p = r.predict(test["A"].strings(), test["B"].strings());
  const std::vector<float>& y = test["Score"].floats();
  const std::vector<float>& y_train = train["Score"].floats();
  double mean = 0;
  for (float v : y_train) mean += v / static_cast<double>(y_train.size());
  std::vector<double> truth(y.begin(), y.end()), pred(p.begin(), p.end());
  const double rmse = similarity_metric("rmse", truth, pred);
  const double rmse_mean =
      similarity_metric("rmse", truth, std::vector<double>(truth.size(), mean));
  const double pearson = similarity_metric("pearson", truth, pred);
  std::printf("budget %.1f s, took %.2f s; test rmse %.4f (the mean: %.4f), Pearson %.4f\n", budget,
              took, rmse, rmse_mean, pearson);
  EXPECT_LE(took, 1.5 * budget);
  // Word Jaccard alone is k / (16 − k), a monotone function of the label: the features hold it.
  EXPECT_LT(rmse, 0.5 * rmse_mean);
  EXPECT_GT(pearson, 0.9);
  const json::Value lb = json::parse(r.leaderboard_json().dump(), "leaderboard");
  EXPECT_EQ(lb.at("trials").size(), r.search.trials.size());
  EXPECT_EQ(lb.at("task").as_string(), "sentence-similarity");
  EXPECT_EQ(lb.at("trials").at(0).at("trainer").as_string(), "pair_features");
}

TEST(SimilaritySearch, SameSeedSameTrialsAtAFixedTrialCount) {
  const data::Table t = pairs_table(200, 5);
  auto configs = [&](uint64_t seed) {
    SentenceSimilaritySearchOptions o = pair_options();
    o.time_budget_s = 100;
    o.seed = seed;
    o.max_trials = 4;
    const SimilaritySearchResult r = SentenceSimilaritySearch(o).run(t);
    std::vector<std::pair<Config, double>> out;
    for (const TrialRecord& tr : r.search.trials) {
      out.emplace_back(tr.config, tr.score.value_or(-1));
    }
    return out;
  };
  const auto first = configs(2);
  EXPECT_EQ(first.size(), 4u);
  EXPECT_EQ(first, configs(2));
}

// The saved model.onnx, fed the features of featurizer.json's featuriser, gives Kiln's scores in
// ONNX Runtime.
TEST(SimilaritySearch, SavedOnnxMatchesKilnInOnnxRuntime) {
  SentenceSimilaritySearchOptions o = pair_options();
  o.time_budget_s = 100;
  o.max_trials = 3;
  const SimilaritySearchResult r = SentenceSimilaritySearch(o).run(pairs_table(200, 6));
  const fs::path dir = fresh_dir("sim_onnx");
  r.save(dir);
  for (const char* f : {"model.onnx", "featurizer.json", "config.json", "leaderboard.json"}) {
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  }
  const data::Table t = pairs_table(6, 7);
  const std::vector<std::string>&a = t["A"].strings(), &b = t["B"].strings();
  std::ifstream in(dir / "featurizer.json");
  const std::string js((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const PairFeaturizer f = PairFeaturizer::from_json(json::parse(js, "featurizer.json"));
  const std::vector<float> x = f.transform(a, b);
  const std::vector<float> kiln = r.predict(a, b);
  const auto out = test::run_in_ort(
      (dir / "model.onnx").string(),
      {{"features", test::NpyArray::of<float>({6, PairFeaturizer::kNumFeatures}, x)}});
  const std::vector<float> ort = out.at("score").values<float>();
  ASSERT_EQ(ort.size(), kiln.size());
  // float32 GEMMs over 7 (and 16) terms: the two runtimes sum in a different order.
  for (size_t i = 0; i < ort.size(); ++i) EXPECT_NEAR(ort[i], kiln[i], 1e-5) << i;
  const json::Value config = json::parse(
      [&] {
        std::ifstream c(dir / "config.json");
        return std::string((std::istreambuf_iterator<char>(c)), std::istreambuf_iterator<char>());
      }(),
      "config.json");
  EXPECT_EQ(config.at("task").as_string(), "sentence-similarity");
  EXPECT_EQ(config.at("text2_column").as_string(), "B");
  fs::remove_all(dir);
}

// The MLP variant (Linear -> ReLU -> Linear) exports as well.
TEST(SimilaritySearch, SavedMlpOnnxMatchesKilnInOnnxRuntime) {
  const data::Table t = pairs_table(100, 9);
  const std::vector<std::string>&a = t["A"].strings(), &b = t["B"].strings();
  const std::vector<float>& yf = t["Score"].floats();
  const std::vector<double> y(yf.begin(), yf.end());
  const PairRegressionModel m =
      PairRegressionModel::fit(a, b, y, {}, {.epochs = 3, .hidden = 16, .seed = 3});
  const fs::path dir = fresh_dir("sim_onnx_mlp");
  m.save(dir, json::Value::object());
  const std::vector<float> x = m.featurizer().transform(a, b);
  const std::vector<float> kiln = m.predict(a, b).to_vector<float>();
  const auto out = test::run_in_ort(
      (dir / "model.onnx").string(),
      {{"features", test::NpyArray::of<float>({100, PairFeaturizer::kNumFeatures}, x)}});
  const std::vector<float> ort = out.at("score").values<float>();
  ASSERT_EQ(ort.size(), kiln.size());
  for (size_t i = 0; i < ort.size(); ++i) EXPECT_NEAR(ort[i], kiln[i], 1e-5) << i;
  fs::remove_all(dir);
}

// A fine-tuning trial past its deadline is reported as stopped (the deadline, 0.2 s in, passes
// while the encoder loads; the trial ends after its first batch).
TEST(SimilaritySearch, EncoderTrialCutByTheDeadlineIsStopped) {
  if (text::shipped_encoder_dir().empty()) GTEST_SKIP() << "models/nasbert-5m-en not installed";
  SentenceSimilaritySearchOptions o = pair_options();
  o.learners = {"nasbert_finetune"};
  o.time_budget_s = 1.2;
  EXPECT_EQ(what([&] { SentenceSimilaritySearch(o).run(pairs_table(40, 8)); }),
            "automl sentence-similarity: no trial finished within 1.2 s (1 tried; the first was "
            "stopped): give a larger --time");
}

TEST(SimilaritySearch, BadInputGivesClearErrors) {
  const data::Table t = pairs_table(20, 1);
  SentenceSimilaritySearchOptions o = pair_options();
  o.text2_column = "C";
  EXPECT_EQ(what([&] { SentenceSimilaritySearch(o).run(t); }),
            "automl sentence-similarity: no column 'C' (columns: Score, A, B)");
  EXPECT_EQ(what([&] { SentenceSimilaritySearch(pair_options()).run(t.select_rows({})); }),
            "automl sentence-similarity: the table has no rows");
  data::Table text_label;
  text_label.add_column(data::Column("Score", std::vector<std::string>{"0.5", "high", "0"}));
  text_label.add_column(data::Column("A", std::vector<std::string>{"a b", "c d", "e f"}));
  text_label.add_column(data::Column("B", std::vector<std::string>{"a b", "c e", "g h"}));
  EXPECT_EQ(what([&] { SentenceSimilaritySearch(pair_options()).run(text_label); }),
            "automl sentence-similarity: label column 'Score' is not numeric: row 2 holds 'high' "
            "(a similarity label must be a number)");
  data::Table constant;
  constant.add_column(data::Column("Score", std::vector<float>(3, 0.5f)));
  constant.add_column(text_label["A"]);
  constant.add_column(text_label["B"]);
  EXPECT_EQ(what([&] { SentenceSimilaritySearch(pair_options()).run(constant); }),
            "automl sentence-similarity: label column 'Score' is constant (every row holds 0.5); "
            "a similarity model needs scores that vary");
  EXPECT_NE(what([&] {
              SentenceSimilaritySearchOptions m = pair_options();
              m.metric = "mae";
              SentenceSimilaritySearch{m};
            }).find("unknown metric 'mae' (pearson, spearman or rmse)"),
            std::string::npos);
  EXPECT_NE(what([&] {
              SentenceSimilaritySearchOptions m = pair_options();
              m.learners = {"svm"};
              SentenceSimilaritySearch(m).run(t);
            }).find("unknown learner 'svm'"),
            std::string::npos);
  const fs::path dir = fresh_dir("sim_bad_input");
  { std::ofstream(dir / "empty.csv"); }
  EXPECT_NE(what([&] {
              read_similarity_table(dir / "empty.csv", "Score", "A", "B");
            }).find("empty.csv: the file is empty"),
            std::string::npos);
  { std::ofstream(dir / "header.csv") << "Score,A,B\n"; }
  EXPECT_NE(what([&] {
              read_similarity_table(dir / "header.csv", "Score", "A", "B");
            }).find("header.csv: no data rows after the header"),
            std::string::npos);
  { std::ofstream(dir / "pairs.csv") << "Score,A,B\n1,a b,a b\n0,c,d\n"; }
  const data::Table read = read_similarity_table(dir / "pairs.csv", "Score", "A", "B");
  EXPECT_EQ(read.num_rows(), 2u);
  EXPECT_NE(
      what([&] { read_similarity_table(dir / "pairs.csv", "Score", "A", "Text2"); }).find("Text2"),
      std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kiln::automl
