// kiln automl text-classification (kiln/automl/automl.h, tfidf.h): the search on a synthetic
// three-topic corpus, the budget, the saved model in ONNX Runtime, and bad input.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "automl/automl_test_util.h"
#include "kiln/autograd/functions.h"
#include "kiln/automl/automl.h"
#include "kiln/data/split.h"
#include "kiln/io/json.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"
#include "onnx/ort_runner.h"

namespace kiln::automl {
namespace {

using test_util::fresh_dir;
using test_util::what;

namespace fs = std::filesystem;
// The fast learner only: fine-tuning the shipped encoder takes minutes (the figures in the report).
const std::vector<std::string> kLinear = {"tfidf_linear"};

// 3 topics x 100 texts: each text mixes 4 words of its topic with 6 shared filler words.
data::Table topics_table(uint64_t seed) {
  const std::vector<std::vector<std::string>> words = {
      {"goal", "match", "striker", "league", "referee", "penalty"},
      {"stock", "market", "shares", "profit", "dividend", "investor"},
      {"rain", "storm", "forecast", "sunny", "cloud", "wind"}};
  const std::vector<std::string> filler = {"the", "a",    "today", "people", "said",
                                           "new", "time", "year",  "about",  "more"};
  const std::vector<std::string> names = {"sport", "finance", "weather"};
  data::SplitMix64 rng(seed);
  std::vector<std::string> label, text;
  for (int i = 0; i < 300; ++i) {
    const size_t t = static_cast<size_t>(i % 3);
    std::string s;
    for (int w = 0; w < 10; ++w) {
      const std::string& word =
          w < 4 ? words[t][rng.bounded(words[t].size())] : filler[rng.bounded(filler.size())];
      s += (s.empty() ? "" : " ") + word;
    }
    label.push_back(names[t]);
    text.push_back(s);
  }
  data::Table table;
  table.add_column(data::Column("Label", label));
  table.add_column(data::Column("Text", text));
  return table;
}

TEST(Tfidf, FeaturesAreL2NormalisedAndReproducibleFromJson) {
  const std::vector<std::string> texts = {"Free money now", "the meeting is at noon",
                                          "FREE money, free prizes"};
  const TfidfFeaturizer f = TfidfFeaturizer::fit(texts, {.max_features = 50});
  EXPECT_EQ(f.num_features(), 50);
  const SparseRows x = f.transform(texts);
  ASSERT_EQ(x.rows(), 3u);
  for (size_t r = 0; r < 3; ++r) {
    double norm = 0;
    for (int64_t k = x.offsets[r]; k < x.offsets[r + 1]; ++k) norm += x.value[k] * x.value[k];
    EXPECT_NEAR(norm, 1.0, 1e-5) << "row " << r;
  }
  const TfidfFeaturizer back =
      TfidfFeaturizer::from_json(json::parse(f.to_json().dump(), "featurizer"));
  const SparseRows y = back.transform(texts);
  EXPECT_EQ(x.index, y.index);
  EXPECT_EQ(x.value, y.value);
  // Lowercasing: "Free" and "FREE" are the same word.
  const SparseRows a = f.transform(std::vector<std::string>{"free"});
  const SparseRows b = f.transform(std::vector<std::string>{"FREE"});
  EXPECT_EQ(a.index, b.index);
}

// The sparse loss and gradient of the linear model against its dense twin: the same model built
// from autograd ops in float64 (x (B, F) dense, z = x·w + b), for both losses, on a subset of
// rows in shuffled order (with a repeated row), at one and two threads.
TEST(TfidfLinear, SparseLossAndGradientMatchDenseAutograd) {
  const int64_t n = 70, f = 11, k = 4;
  data::SplitMix64 rng(3);
  SparseRows x;
  x.cols = f;
  std::vector<int64_t> labels;
  for (int64_t r = 0; r < n; ++r) {
    for (int32_t c = 0; c < f; ++c) {
      if (rng.bounded(3) == 0) {
        x.index.push_back(c);
        x.value.push_back(static_cast<float>(rng.bounded(1000)) / 500.0f - 1.0f);
      }
    }
    x.offsets.push_back(static_cast<int64_t>(x.index.size()));
    labels.push_back(static_cast<int64_t>(rng.bounded(k)));
  }
  std::vector<size_t> rows;
  for (size_t i = 0; i < 67; ++i) rows.push_back((i * 37 + 5) % n);
  rows.push_back(rows[3]);
  Generator gen(7);
  const Tensor w = randn({f, k}, kFloat32, &gen), b = randn({k}, kFloat32, &gen);
  const int threads = get_num_threads();
  for (LinearLoss loss : {LinearLoss::Logistic, LinearLoss::SquaredHinge}) {
    SCOPED_TRACE(loss == LinearLoss::Logistic ? "logistic" : "squared hinge");
    // Dense float64 twin through autograd.
    const Tensor xd = to_dtype(x.dense(rows), kFloat64);
    const Tensor wd = to_dtype(w, kFloat64).requires_grad_();
    const Tensor bd = to_dtype(b, kFloat64).requires_grad_();
    std::vector<int64_t> y;
    std::vector<double> sign;
    for (size_t r : rows) {
      y.push_back(labels[r]);
      for (int64_t c = 0; c < k; ++c) sign.push_back(c == labels[r] ? 1.0 : -1.0);
    }
    const auto bn = static_cast<int64_t>(rows.size());
    const Tensor z = add(matmul(xd, wd), bd);
    Tensor ref_loss = loss == LinearLoss::Logistic
                          ? cross_entropy(z, from_vector(y, {bn}))
                          : mul(sum(square(relu(rsub(mul(z, from_vector(sign, {bn, k})), 1.0)))),
                                1.0 / static_cast<double>(bn));
    ref_loss.backward();
    const std::vector<double> ref_gw = wd.grad().to_vector<double>();
    const std::vector<double> ref_gb = bd.grad().to_vector<double>();
    std::vector<float> first_gw;
    for (int t : {1, 2}) {
      set_num_threads(t);
      std::vector<float> gw(static_cast<size_t>(f * k), 9.0f), gb(static_cast<size_t>(k), 9.0f);
      const double l = detail::linear_loss_grad(x, rows, labels, w.data_ptr<float>(),
                                                b.data_ptr<float>(), k, loss, gw.data(), gb.data());
      EXPECT_NEAR(l, ref_loss.item<double>(), 1e-5 * std::abs(ref_loss.item<double>()));
      for (size_t i = 0; i < gw.size(); ++i) EXPECT_NEAR(gw[i], ref_gw[i], 1e-6) << "w " << i;
      for (size_t i = 0; i < gb.size(); ++i) EXPECT_NEAR(gb[i], ref_gb[i], 1e-6) << "b " << i;
      if (t == 1)
        first_gw = gw;
      else
        EXPECT_EQ(gw, first_gw) << "the gradient depends on the thread count";
    }
    set_num_threads(threads);
  }
  std::vector<float> gw(static_cast<size_t>(f * k)), gb(static_cast<size_t>(k));
  const std::vector<size_t> bad = {0, static_cast<size_t>(n)};
  EXPECT_THROW(detail::linear_loss_grad(x, bad, labels, w.data_ptr<float>(), b.data_ptr<float>(), k,
                                        LinearLoss::Logistic, gw.data(), gb.data()),
               Error);
}

// Both losses learn the synthetic topics from full-batch steps (batch_size 0).
TEST(TfidfLinear, BothLossesLearnTheTopicsFromFullBatchSteps) {
  const data::Table table = topics_table(11);
  const std::vector<std::string> texts = table["Text"].strings();
  std::vector<int64_t> y;
  const std::vector<std::string> names = {"finance", "sport", "weather"};
  for (const std::string& l : table["Label"].strings()) {
    y.push_back(std::find(names.begin(), names.end(), l) - names.begin());
  }
  const std::span<const std::string> train(texts.data(), 240), test(texts.data() + 240, 60);
  for (LinearLoss loss : {LinearLoss::Logistic, LinearLoss::SquaredHinge}) {
    const TfidfLinearModel m = TfidfLinearModel::fit(
        train, std::span<const int64_t>(y.data(), 240), names, {.max_features = 500},
        {.learning_rate = 0.1, .l2 = 1e-5, .epochs = 60, .batch_size = 0, .loss = loss});
    const std::vector<float> p = m.predict_proba(test).to_vector<float>();
    int right = 0;
    for (size_t i = 0; i < 60; ++i) {
      const auto best = std::max_element(p.begin() + 3 * i, p.begin() + 3 * i + 3) - p.begin();
      right += best - static_cast<int64_t>(3 * i) == y[240 + i];
    }
    EXPECT_GE(right, 57) << (loss == LinearLoss::Logistic ? "logistic" : "squared hinge");
  }
}

TEST(TextSearch, MetricsMatchHandComputedValues) {
  const std::vector<int64_t> truth = {0, 0, 1, 1}, pred = {0, 1, 1, 1};
  EXPECT_DOUBLE_EQ(classification_metric("accuracy", truth, pred, 2), 0.75);
  // F1: class 0 = 2·1 / (2·1 + 0 + 1) = 2/3, class 1 = 2·2 / (2·2 + 1 + 0) = 4/5.
  EXPECT_DOUBLE_EQ(classification_metric("macro_f1", truth, pred, 2), (2.0 / 3 + 0.8) / 2);
  // A class absent from truth and prediction does not count.
  EXPECT_DOUBLE_EQ(classification_metric("macro_f1", truth, pred, 3), (2.0 / 3 + 0.8) / 2);
  EXPECT_THROW(classification_metric("auc", truth, pred, 2), Error);
}

TEST(TextSearch, FindsAnAccurateModelWithinTheBudget) {
  const double budget = 4.0;
  const auto t0 = std::chrono::steady_clock::now();
  const TextSearchResult r =
      TextClassificationSearch({.time_budget_s = budget, .seed = 1, .learners = kLinear})
          .run(topics_table(5));
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string table = r.leaderboard_table();
  std::printf("%s\n", table.substr(0, table.find('\n', table.find('\n') + 1)).c_str());
  std::printf("budget %.1f s, took %.2f s\n", budget, took);
  EXPECT_LE(took, 1.5 * budget);
  ASSERT_GE(r.search.best, 0);
  EXPECT_GE(*r.search.trials[r.search.best].score, 0.95);
  EXPECT_TRUE(r.refitted);
  EXPECT_EQ(r.labels, (std::vector<std::string>{"finance", "sport", "weather"}));
  EXPECT_GE(r.search.trials.size(), 3u);
  const json::Value lb = json::parse(r.leaderboard_json().dump(), "leaderboard");
  EXPECT_EQ(lb.at("trials").size(), r.search.trials.size());
  EXPECT_EQ(lb.at("trials").at(0).at("trainer").as_string(), "tfidf_linear");
}

// ML.NET's rule: below cv_max_rows rows the linear learner is scored by 5-fold cross-validation
// over all rows, and the result says so; from cv_max_rows on, by the holdout.
TEST(TextSearch, TheLinearLearnerIsCrossValidatedBelowCvMaxRows) {
  const auto notes = [](size_t cv_max_rows) {
    const TextSearchResult r = TextClassificationSearch({.time_budget_s = 30,
                                                         .seed = 2,
                                                         .max_trials = 2,
                                                         .cv_max_rows = cv_max_rows,
                                                         .learners = kLinear})
                                   .run(topics_table(3));
    EXPECT_GE(*r.search.trials[r.search.best].score, 0.9);
    return fmt::format("{}", fmt::join(r.search.notes, " | "));
  };
  const std::string cv = notes(10000);
  EXPECT_NE(cv.find("5-fold cross-validation over all 300 rows"), std::string::npos) << cv;
  const std::string holdout = notes(300);
  EXPECT_EQ(holdout.find("cross-validation"), std::string::npos) << holdout;
}

TEST(TextSearch, SameSeedSameTrialsAtAFixedTrialCount) {
  auto configs = [](uint64_t seed) {
    const TextSearchResult r =
        TextClassificationSearch(
            {.time_budget_s = 100, .seed = seed, .max_trials = 4, .learners = kLinear})
            .run(topics_table(5));
    std::vector<std::pair<Config, double>> out;
    for (const TrialRecord& t : r.search.trials) out.emplace_back(t.config, t.score.value_or(-1));
    return out;
  };
  EXPECT_EQ(configs(2), configs(2));
}

// The saved model.onnx, fed the featuriser's output, gives Kiln's probabilities in ONNX Runtime.
TEST(TextSearch, SavedOnnxMatchesKilnInOnnxRuntime) {
  const TextSearchResult r =
      TextClassificationSearch(
          {.time_budget_s = 100, .seed = 0, .max_trials = 2, .learners = kLinear})
          .run(topics_table(5));
  const fs::path dir = fresh_dir("onnx");
  r.save(dir);
  for (const char* f : {"model.onnx", "featurizer.json", "config.json", "leaderboard.json"}) {
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  }
  const std::vector<std::string> texts = {"the striker scored a goal", "shares and profit",
                                          "storm and rain today", "nothing known here"};
  // Featurise with the featuriser read back from the saved JSON, as another program would.
  std::ifstream in(dir / "featurizer.json");
  const std::string js((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const TfidfFeaturizer f = TfidfFeaturizer::from_json(json::parse(js, "featurizer.json"));
  const SparseRows x = f.transform(texts);
  const std::vector<size_t> all = {0, 1, 2, 3};
  const Tensor dense = x.dense(all);
  const std::vector<float> kiln = r.model.predict_proba(texts).to_vector<float>();
  const std::vector<float> xs = dense.to_vector<float>();
  const auto out =
      test::run_in_ort((dir / "model.onnx").string(),
                       {{"features", test::NpyArray::of<float>({4, f.num_features()}, xs)}});
  const std::vector<float> ort = out.at("probabilities").values<float>();
  ASSERT_EQ(ort.size(), kiln.size());
  // float32 GEMM over F features, then softmax: both sum in a different order.
  for (size_t i = 0; i < ort.size(); ++i) EXPECT_NEAR(ort[i], kiln[i], 1e-5) << i;
  EXPECT_EQ(json::parse(js, "f").at("kind").as_string(), "kiln-tfidf");
  // TfidfLinearModel::load reads the directory back: the same labels and probabilities.
  const TfidfLinearModel back = TfidfLinearModel::load(dir);
  EXPECT_EQ(back.labels(), r.model.labels());
  const std::vector<float> again = back.predict_proba(texts).to_vector<float>();
  ASSERT_EQ(again.size(), kiln.size());
  for (size_t i = 0; i < again.size(); ++i) EXPECT_FLOAT_EQ(again[i], kiln[i]) << i;
  // A missing file is an error naming it.
  fs::remove(dir / "model.safetensors");
  EXPECT_NE(what([&] { TfidfLinearModel::load(dir); }).find("model.safetensors"),
            std::string::npos);
  fs::remove_all(dir);
}

// The final model scored on another table: a label the search never saw counts as a miss.
TEST(TextSearch, EvaluateScoresTheFinalModelOnATestTable) {
  const TextSearchResult r =
      TextClassificationSearch(
          {.time_budget_s = 100, .seed = 0, .max_trials = 3, .learners = kLinear})
          .run(topics_table(5));
  const TextTestMetrics held_out = r.evaluate(topics_table(9));
  EXPECT_GE(held_out.accuracy, 0.95);
  EXPECT_GE(held_out.macro_f1, 0.95);
  data::Table t;
  t.add_column(
      data::Column("Label", std::vector<std::string>{"sport", "finance", "weather", "politics"}));
  t.add_column(data::Column(
      "Text", std::vector<std::string>{"goal match striker league", "stock market shares profit",
                                       "rain storm forecast cloud", "goal match striker league"}));
  const TextTestMetrics m = r.evaluate(t);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.75);
  // sport: 1 right, 1 predicted for politics (F1 2/3); finance, weather 1; politics 0.
  EXPECT_NEAR(m.macro_f1, (2.0 / 3 + 1 + 1 + 0) / 4, 1e-12);
  data::Table labels_only;
  labels_only.add_column(data::Column("Label", std::vector<std::string>{"sport"}));
  EXPECT_NE(what([&] { r.evaluate(labels_only); }).find("no column 'Text'"), std::string::npos);
}

// Pairs: the label is the second text's topic (the first is a random row's text, unrelated), so
// only a model that reads text2_column scores above chance. The TF-IDF model sees one bag of both
// texts, so the first text's topic words still mislead it; the encoders see the pair.
TEST(TextSearch, PairsReadTheSecondTextColumn) {
  const data::Table base = topics_table(5);
  const std::vector<std::string>& texts = base["Text"].strings();
  data::SplitMix64 rng(11);
  std::vector<std::string> first;
  for (size_t i = 0; i < texts.size(); ++i) first.push_back(texts[rng.bounded(texts.size())]);
  data::Table pairs;
  pairs.add_column(data::Column("Label", base["Label"].strings()));
  pairs.add_column(data::Column("First", first));
  pairs.add_column(data::Column("Second", texts));
  const TextSearchResult r = TextClassificationSearch({.text_column = "First",
                                                       .text2_column = "Second",
                                                       .time_budget_s = 100,
                                                       .seed = 0,
                                                       .max_trials = 6,
                                                       .learners = kLinear})
                                 .run(pairs);
  ASSERT_GE(r.search.best, 0);
  const double with_second = *r.search.trials[r.search.best].score;
  EXPECT_GE(with_second, 0.65);
  EXPECT_GE(r.evaluate(pairs).accuracy, 0.65);
  data::Table no_second = pairs.select_rows(std::vector<size_t>{0, 1});
  no_second = [&] {
    data::Table t;
    t.add_column(data::Column("Label", no_second["Label"].strings()));
    t.add_column(data::Column("First", no_second["First"].strings()));
    return t;
  }();
  EXPECT_NE(what([&] { r.evaluate(no_second); }).find("no column 'Second'"), std::string::npos);
  // The first text alone (another row's topic) is close to chance.
  const TextSearchResult alone = TextClassificationSearch({.text_column = "First",
                                                           .time_budget_s = 100,
                                                           .seed = 0,
                                                           .max_trials = 6,
                                                           .learners = kLinear})
                                     .run(pairs);
  const double first_only = *alone.search.trials[alone.search.best].score;
  std::printf("validation accuracy: both texts %.3f, the first alone %.3f (chance 0.333)\n",
              with_second, first_only);
  EXPECT_LT(first_only, 0.5);
  EXPECT_GT(with_second, first_only + 0.2);
}

// NAS-BERT from random weights is a learner too; its winner is a text model that evaluates.
TEST(TextSearch, FromScratchEncoderIsALearner) {
  const data::Table t = topics_table(3).select_rows(std::vector<size_t>{
      0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
      20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39});
  const TextSearchResult r =
      TextClassificationSearch(
          {.time_budget_s = 300, .seed = 0, .max_trials = 1, .learners = {"nasbert_scratch"}})
          .run(t);
  ASSERT_EQ(r.search.trials.size(), 1u);
  EXPECT_EQ(r.search.trials[0].status, TrialStatus::Ok) << r.search.trials[0].message;
  EXPECT_EQ(r.winner, "nasbert_scratch");
  ASSERT_TRUE(r.encoder_model.has_value());
  EXPECT_TRUE(r.refitted);
  EXPECT_EQ(get_number(r.search.trials[0].config, "epochs"), 1);  // the low-cost start
  // Saved as `kiln text-classification train` saves: it loads and predicts what the search's
  // model predicts.
  const fs::path dir = fresh_dir("scratch");
  r.save(dir);
  EXPECT_TRUE(fs::exists(dir / "model.onnx"));
  const text::TextClassificationModel back = text::TextClassificationModel::load(dir);
  const std::vector<float> a = r.encoder_model->predict_proba(t).to_vector<float>();
  const std::vector<float> b = back.predict_proba(t).to_vector<float>();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_FLOAT_EQ(a[i], b[i]) << i;
  EXPECT_DOUBLE_EQ(r.evaluate(t).accuracy, back.evaluate(t).micro_accuracy);
  fs::remove_all(dir);
}

TEST(TextSearch, BadInputGivesClearErrors) {
  const data::Table t = topics_table(1);
  EXPECT_EQ(what([&] { TextClassificationSearch({.label_column = "Class"}).run(t); }),
            "automl text-classification: no column 'Class' (columns: Label, Text)");
  data::Table one;
  one.add_column(data::Column("Label", std::vector<std::string>(5, "spam")));
  one.add_column(data::Column("Text", std::vector<std::string>(5, "buy now")));
  EXPECT_EQ(what([&] { TextClassificationSearch({.learners = kLinear}).run(one); }),
            "automl text-classification: label column 'Label' has 1 class (spam); a classifier "
            "needs at least 2");
  EXPECT_NE(what([&] { TextClassificationSearch({.metric = "auc"}); }).find("unknown metric 'auc'"),
            std::string::npos);
  EXPECT_NE(what([&] {
              TextClassificationSearch({.learners = {"svm"}}).run(t);
            }).find("unknown learner 'svm'"),
            std::string::npos);
  const fs::path dir = fresh_dir("bad_input");
  { std::ofstream(dir / "empty.csv"); }
  EXPECT_NE(what([&] {
              read_text_table(dir / "empty.csv", "Label", "Text");
            }).find("empty.csv: the file is empty"),
            std::string::npos);
  { std::ofstream(dir / "header.csv") << "Label,Text\n"; }
  EXPECT_NE(what([&] {
              read_text_table(dir / "header.csv", "Label", "Text");
            }).find("header.csv: no data rows after the header"),
            std::string::npos);
  { std::ofstream(dir / "nolabel.csv") << "Class,Text\nspam,buy\n"; }
  EXPECT_NE(what([&] { read_text_table(dir / "nolabel.csv", "Label", "Text"); }).find("Label"),
            std::string::npos);
  EXPECT_NE(what([&] {
              read_text_table(dir / "missing.csv", "Label", "Text");
            }).find("missing.csv: no such file"),
            std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kiln::automl
