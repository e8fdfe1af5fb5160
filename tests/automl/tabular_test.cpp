// kiln automl classification / regression (kiln/automl/tabular.h, tabular_featurizer.h): the
// featuriser on a hand-made table, the search on synthetic tables against the majority / mean
// baselines and the budget, the saved winner in ONNX Runtime, and bad input.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "automl/automl_test_util.h"
#include "kiln/automl/leaderboard.h"
#include "kiln/automl/tabular.h"
#include "kiln/data/split.h"
#include "kiln/io/json.h"
#include "kiln/tensor/error.h"
#include "onnx/ort_runner.h"

namespace kiln::automl {
namespace {

using test_util::fresh_dir;
using test_util::what;

namespace fs = std::filesystem;

data::Table strings_table(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& columns) {
  data::Table t;
  for (const auto& [name, values] : columns) t.add_column(data::Column(name, values));
  return t;
}

double uniform(data::SplitMix64& rng) {
  return static_cast<double>(rng.next() >> 11) * 0x1.0p-53;
}

// n rows: numeric x1, x2 (5 % missing), categorical c in {a, b, c}, a pure-noise column, and
//   classification: Label = "yes" when x1 + x2² − 1 + (c == a ? 1.5 : 0) > 0 (10 % flipped);
//   regression:     Target = 3·x1 − 2·x2 + 4·[c == b] + 10 + N(0, 0.5²)-ish noise.
// x1 and x2 are uniform on [−2, 2].
data::Table synthetic_table(size_t n, uint64_t seed, bool regression) {
  data::SplitMix64 rng(seed);
  std::vector<std::string> x1s, x2s, cs, noise, label;
  const std::vector<std::string> cats = {"a", "b", "c"};
  for (size_t i = 0; i < n; ++i) {
    const double x1 = 4 * uniform(rng) - 2, x2 = 4 * uniform(rng) - 2;
    const std::string& c = cats[rng.bounded(3)];
    const bool miss1 = uniform(rng) < 0.05, miss2 = uniform(rng) < 0.05;
    x1s.push_back(miss1 ? "" : fmt::format("{:.4f}", x1));
    x2s.push_back(miss2 ? "NA" : fmt::format("{:.4f}", x2));
    cs.push_back(c);
    noise.push_back(fmt::format("{:.3f}", uniform(rng)));
    if (regression) {
      const double e = (uniform(rng) + uniform(rng) + uniform(rng) - 1.5);
      label.push_back(fmt::format("{:.4f}", 3 * x1 - 2 * x2 + (c == "b" ? 4 : 0) + 10 + e));
    } else {
      bool yes = x1 + x2 * x2 - 1 + (c == "a" ? 1.5 : 0) > 0;
      if (uniform(rng) < 0.1) yes = !yes;
      label.push_back(yes ? "yes" : "no");
    }
  }
  return strings_table({{"x1", x1s},
                        {"x2", x2s},
                        {"c", cs},
                        {"noise", noise},
                        {regression ? "Target" : "Label", label}});
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(TabularFeaturizer, TrainingStatsOnlyImputationOneHotAndUnseenCategories) {
  // Rows 0-2 are the fit rows; row 3 holds an extreme value and an unseen category, row 4 a
  // missing category and an unparsable number.
  const data::Table t = strings_table({{"age", {"20", "30", "", "100", "abc"}},
                                       {"color", {"red", "blue", " red ", "green", "NA"}},
                                       {"id", {"x1", "x2", "x3", "x4", "x5"}},
                                       {"empty", {"", "?", "NA", "5", "6"}},
                                       {"y", {"1", "0", "1", "0", "1"}}});
  const std::vector<size_t> fit_rows = {0, 1, 2};
  const TabularFeaturizer f = TabularFeaturizer::fit(t, fit_rows, {"y"});
  // "empty" has no value in the fit rows: dropped.
  ASSERT_EQ(f.columns().size(), 3u);
  EXPECT_TRUE(f.columns()[0].numeric);
  EXPECT_FALSE(f.columns()[1].numeric);
  EXPECT_FALSE(f.columns()[2].numeric);
  // age: mean (20 + 30) / 2 = 25, population std 5 — from the fit rows only (100 is not seen).
  EXPECT_DOUBLE_EQ(f.columns()[0].mean, 25.0);
  EXPECT_DOUBLE_EQ(f.columns()[0].std, 5.0);
  EXPECT_EQ(f.feature_names(), (std::vector<std::string>{"age", "age=missing", "color=blue",
                                                         "color=red", "id=x1", "id=x2", "id=x3"}));
  const std::vector<float> x = f.transform(t);
  const std::vector<float> want = {
      -1, 0, 0, 1, 1, 0, 0,  // 20, red
      1,  0, 1, 0, 0, 1, 0,  // 30, blue
      0,  1, 0, 1, 0, 0, 1,  // missing -> mean (0) + indicator; " red " trimmed
      15, 0, 0, 0, 0, 0, 0,  // (100 − 25) / 5; green and x4 unseen -> all zero
      0,  1, 0, 0, 0, 0, 0,  // "abc" does not parse -> missing; NA -> all zero
  };
  EXPECT_EQ(x, want);
  // The JSON holds everything transform needs.
  const TabularFeaturizer back =
      TabularFeaturizer::from_json(json::parse(f.to_json().dump(), "featurizer"));
  EXPECT_EQ(back.transform(t), x);
  EXPECT_EQ(back.feature_names(), f.feature_names());
  // max_categories keeps the most frequent (ties by value).
  const TabularFeaturizer cut = TabularFeaturizer::fit(
      strings_table({{"c", {"b", "a", "b", "c", "c"}}}), std::vector<size_t>{0, 1, 2, 3, 4}, {}, 2);
  EXPECT_EQ(cut.feature_names(), (std::vector<std::string>{"c=b", "c=c"}));
}

TEST(TabularSearch, MetricsMatchHandComputedValues) {
  const std::vector<double> truth = {1, 2, 3, 4}, pred = {1, 2, 4, 6};
  EXPECT_DOUBLE_EQ(regression_metric("rmse", truth, pred), std::sqrt(5.0 / 4));
  EXPECT_DOUBLE_EQ(regression_metric("mae", truth, pred), 3.0 / 4);
  EXPECT_DOUBLE_EQ(regression_metric("r2", truth, pred), 1 - 5.0 / 5.0);
  EXPECT_THROW(regression_metric("mape", truth, pred), Error);
  EXPECT_TRUE(higher_is_better("r2"));
  EXPECT_FALSE(higher_is_better("rmse"));
}

// A few seconds of search beats the majority class on held-out rows and keeps the budget.
TEST(TabularSearch, ClassificationBeatsMajorityWithinTheBudget) {
  const data::Table train = synthetic_table(800, 1, false), test = synthetic_table(400, 2, false);
  const double budget = 3.0;
  const auto t0 = std::chrono::steady_clock::now();
  const TabularSearchResult r =
      TabularSearch({.label_column = "Label", .time_budget_s = budget, .seed = 3}).run(train);
  const double took = seconds_since(t0);
  std::printf("%s", r.leaderboard_table().c_str());
  EXPECT_LE(took, 1.5 * budget);
  EXPECT_TRUE(r.refitted);
  EXPECT_EQ(r.validation, "5-fold cross-validation");
  ASSERT_GE(r.search.best, 0);
  EXPECT_GE(r.search.trials.size(), 3u);
  size_t yes = 0;
  for (const std::string& l : test["Label"].strings()) yes += l == "yes";
  const double majority =
      static_cast<double>(std::max(yes, test.num_rows() - yes)) / test.num_rows();
  const double acc = r.model.evaluate(test, "Label", "accuracy");
  std::printf("held-out accuracy %.4f, majority %.4f; budget %.1f s, took %.2f s\n", acc, majority,
              budget, took);
  // Labels are 10 % flipped, so 0.9 is the ceiling; the boundary is not linear (x2²).
  EXPECT_GE(acc, majority + 0.1);
  const json::Value lb = json::parse(r.leaderboard_json().dump(), "leaderboard");
  EXPECT_EQ(lb.at("trials").size(), r.search.trials.size());
  EXPECT_EQ(lb.at("task").as_string(), "classification");
}

TEST(TabularSearch, RegressionBeatsTheMeanWithinTheBudget) {
  const data::Table train = synthetic_table(600, 4, true), test = synthetic_table(300, 5, true);
  const double budget = 2.0;
  const auto t0 = std::chrono::steady_clock::now();
  const TabularSearchResult r = TabularSearch({.task = TabularTask::Regression,
                                               .label_column = "Target",
                                               .time_budget_s = budget,
                                               .seed = 1,
                                               .learners = {"linear"}})
                                    .run(train);
  const double took = seconds_since(t0);
  std::printf("%s", r.leaderboard_table().c_str());
  EXPECT_LE(took, 1.5 * budget);
  // The mean predictor's RMSE is the targets' standard deviation.
  std::vector<double> y;
  for (const std::string& s : test["Target"].strings()) y.push_back(std::stod(s));
  double mean = 0, sq = 0;
  for (double v : y) mean += v / static_cast<double>(y.size());
  for (double v : y) sq += (v - mean) * (v - mean);
  const double mean_rmse = std::sqrt(sq / static_cast<double>(y.size()));
  const double rmse = r.model.evaluate(test, "Target", "rmse");
  std::printf("held-out rmse %.4f, mean predictor %.4f\n", rmse, mean_rmse);
  // x1 or x2 missing (5 % each) costs ~ 3·1.15 or 2·1.15 of error on those rows; the rest is noise.
  EXPECT_LE(rmse, 0.4 * mean_rmse);
  EXPECT_GE(r.model.evaluate(test, "Target", "r2"), 0.8);
}

// rmse reaches the tuner in units of the label's std; the progress lines print it in the label's.
TEST(TabularSearch, ProgressLinesShowTheMetricInTheLabelsUnits) {
  testing::internal::CaptureStdout();
  const TabularSearchResult r = TabularSearch({.task = TabularTask::Regression,
                                               .label_column = "Target",
                                               .time_budget_s = 100,
                                               .max_trials = 1,
                                               .verbose = true,
                                               .learners = {"linear"}})
                                    .run(synthetic_table(200, 3, true));
  const std::string out = testing::internal::GetCapturedStdout();
  ASSERT_EQ(r.search.trials.size(), 1u);
  const double rmse = r.metric_value(*r.search.trials[0].score);
  EXPECT_GT(r.metric_scale, 3.0);  // the synthetic target's std is ~4.6
  EXPECT_NE(out.find(fmt::format(" {:.4f} ", rmse)), std::string::npos) << out;
  EXPECT_NE(r.leaderboard_table().find(fmt::format(" {:.4f} ", rmse)), std::string::npos);
}

// average(): the mean of the members' outputs (probabilities for classification), checked against
// the members' own predictions averaged here in double.
TEST(TabularModel, AverageIsTheMeanOfItsMembers) {
  for (const bool regression : {false, true}) {
    const data::Table t = synthetic_table(120, 12, regression);
    const std::string label = regression ? "Target" : "Label";
    std::vector<size_t> rows(t.num_rows());
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = i;
    const TabularFeaturizer f = TabularFeaturizer::fit(t, rows, {label});
    const std::vector<float> x = f.transform(t, rows);
    std::vector<double> y;
    for (const std::string& v : t[label].strings()) {
      y.push_back(regression ? std::stod(v) : (v == "yes" ? 1.0 : 0.0));
    }
    const TabularTask task = regression ? TabularTask::Regression : TabularTask::Classification;
    const std::vector<std::string> labels =
        regression ? std::vector<std::string>{} : std::vector<std::string>{"no", "yes"};
    std::vector<TabularModel> members;
    std::vector<double> want;
    const Tensor xt = from_vector(x, {static_cast<int64_t>(rows.size()), f.num_features()});
    for (uint64_t seed : {0, 1, 2}) {
      members.push_back(TabularModel::fit(
          f, x, y, task, labels,
          {.depth = 1, .hidden = 8, .learning_rate = 0.01, .epochs = 2, .seed = seed}));
      const std::vector<float> p = members.back().predict_features(xt).to_vector<float>();
      want.resize(p.size());
      for (size_t i = 0; i < p.size(); ++i) want[i] += p[i] / 3.0;
    }
    ASSERT_NE(members[0].predict_features(xt).to_vector<float>(),
              members[1].predict_features(xt).to_vector<float>());
    const TabularModel avg = TabularModel::average(std::move(members));
    EXPECT_EQ(avg.members(), 3u);
    const std::vector<float> got = avg.predict_features(xt).to_vector<float>();
    ASSERT_EQ(got.size(), want.size());
    // float32 sums of three values vs double: a few ulps of values up to ~20.
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << i;
  }
  // Members of different tasks do not mix.
  const data::Table c = synthetic_table(40, 13, false);
  std::vector<size_t> rows(c.num_rows());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = i;
  const TabularFeaturizer f = TabularFeaturizer::fit(c, rows, {"Label"});
  const std::vector<float> x = f.transform(c, rows);
  const std::vector<double> y(rows.size(), 1.0);
  std::vector<TabularModel> mixed;
  mixed.push_back(TabularModel::fit(f, x, y, TabularTask::Classification, {"no", "yes"}, {}));
  mixed.push_back(TabularModel::fit(f, x, y, TabularTask::Regression, {}, {}));
  EXPECT_NE(what([&] {
              TabularModel::average(std::move(mixed));
            }).find("TabularModel::average: member 1 does not match member 0"),
            std::string::npos);
  EXPECT_NE(what([&] { TabularModel::average({}); }).find("no members"), std::string::npos);
}

// After the search the best distinct configurations are scored on more splits; the one with the
// best mean is the winner, and the refit averages `ensemble` models of it.
TEST(TabularSearch, RescoringPicksTheBestMeanAndTheRefitAveragesTheEnsemble) {
  const data::Table t = synthetic_table(300, 14, false);
  const TabularSearchResult r = TabularSearch({.time_budget_s = 100,
                                               .seed = 3,
                                               .max_trials = 8,
                                               .learners = {"linear", "mlp"},
                                               .rescore_top = 3,
                                               .rescore_repeats = 2,
                                               .ensemble = 4})
                                    .run(t);
  ASSERT_EQ(r.rescored.size(), 3u);
  std::set<std::pair<std::string, Config>> distinct;
  double best_mean = -1e300;
  int best_trial = 0;
  for (const TabularSearchResult::Rescore& s : r.rescored) {
    ASSERT_EQ(s.scores.size(), 3u);  // the search's split and two more
    const TrialRecord& tr = r.search.trials[static_cast<size_t>(s.trial - 1)];
    EXPECT_EQ(s.scores[0], *tr.score);
    EXPECT_NEAR(s.mean_score, (s.scores[0] + s.scores[1] + s.scores[2]) / 3, 1e-12);
    distinct.insert({tr.learner, tr.config});
    if (s.mean_score > best_mean) best_mean = s.mean_score, best_trial = s.trial;
  }
  EXPECT_EQ(distinct.size(), 3u);
  // The re-scored ones are the three best single scores.
  const std::vector<const TrialRecord*> ranked = ranked_trials(r.search);
  EXPECT_GE(*r.search.trials[static_cast<size_t>(r.rescored.back().trial - 1)].score,
            *ranked[3]->score);
  EXPECT_EQ(r.search.best, best_trial - 1);
  EXPECT_EQ(r.ensemble, 4);
  EXPECT_EQ(r.model.members(), 4u);
  const json::Value lb = json::parse(r.leaderboard_json().dump(), "leaderboard");
  EXPECT_EQ(lb.at("rescored").size(), 3u);
  EXPECT_EQ(lb.at("ensemble").as_int(), 4);
  EXPECT_EQ(lb.at("best_trial").as_int(), best_trial);
  EXPECT_NE(r.leaderboard_table().find("best mean won (trial " + std::to_string(best_trial)),
            std::string::npos)
      << r.leaderboard_table();
  // Without re-scoring the best single score wins, and ensemble 1 is one model.
  const TabularSearchResult one = TabularSearch({.time_budget_s = 100,
                                                 .seed = 3,
                                                 .max_trials = 8,
                                                 .learners = {"linear", "mlp"},
                                                 .rescore_repeats = 0,
                                                 .ensemble = 1})
                                      .run(t);
  EXPECT_TRUE(one.rescored.empty());
  EXPECT_EQ(one.search.best, ranked_trials(one.search)[0]->trial - 1);
  EXPECT_EQ(one.model.members(), 1u);
  // rescore_top 0 keeps no leaders at all: the best single score wins.
  const TabularSearchResult none = TabularSearch({.time_budget_s = 100,
                                                  .seed = 3,
                                                  .max_trials = 8,
                                                  .learners = {"linear", "mlp"},
                                                  .rescore_top = 0})
                                       .run(t);
  EXPECT_TRUE(none.rescored.empty());
  EXPECT_EQ(none.search.best, ranked_trials(none.search)[0]->trial - 1);
  EXPECT_EQ(none.model.members(), 5u);
}

// One learner: which learner runs next depends on the trials' measured times (the ECI of
// tuner.h), as in FLAML ("when time_budget is provided, there can be randomness in the result due
// to runtime variance"); each learner's own configurations depend on the seed and scores only.
TEST(TabularSearch, SameSeedSameTrialsAtAFixedTrialCount) {
  const data::Table t = synthetic_table(200, 7, false);
  auto trials = [&](uint64_t seed) {
    const TabularSearchResult r =
        TabularSearch({.time_budget_s = 100, .seed = seed, .max_trials = 4, .learners = {"mlp"}})
            .run(t);
    std::vector<std::pair<Config, double>> out;
    for (const TrialRecord& tr : r.search.trials)
      out.emplace_back(tr.config, tr.score.value_or(-1));
    return out;
  };
  const auto a = trials(2);
  EXPECT_EQ(a.size(), 4u);
  EXPECT_EQ(a, trials(2));
}

// model.onnx fed the features of the saved featurizer.json gives Kiln's outputs in ONNX Runtime.
void expect_onnx_matches(const TabularSearchResult& r, const data::Table& rows,
                         const std::string& output, const std::string& name, double tol) {
  const fs::path dir = fresh_dir("tab_" + name);
  r.save(dir);
  for (const char* f : {"model.onnx", "featurizer.json", "config.json", "leaderboard.json"}) {
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  }
  std::ifstream in(dir / "featurizer.json");
  const std::string js((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const TabularFeaturizer f = TabularFeaturizer::from_json(json::parse(js, "featurizer.json"));
  const std::vector<float> x = f.transform(rows);
  const std::vector<float> kiln = r.model.predict(rows).to_vector<float>();
  const int64_t n = static_cast<int64_t>(rows.num_rows());
  const auto out =
      test::run_in_ort((dir / "model.onnx").string(),
                       {{"features", test::NpyArray::of<float>({n, f.num_features()}, x)}});
  const std::vector<float> ort = out.at(output).values<float>();
  ASSERT_EQ(ort.size(), kiln.size());
  for (size_t i = 0; i < ort.size(); ++i) EXPECT_NEAR(ort[i], kiln[i], tol) << i;
  fs::remove_all(dir);
}

TEST(TabularSearch, SavedWinnersMatchKilnInOnnxRuntime) {
  // Two trials per learner: the linear model and the MLP each get a chance to win.
  for (const std::vector<std::string>& learners :
       {std::vector<std::string>{"linear"}, std::vector<std::string>{"mlp"}}) {
    const TabularSearchResult c =
        TabularSearch({.time_budget_s = 100, .seed = 0, .max_trials = 2, .learners = learners})
            .run(synthetic_table(300, 8, false));
    EXPECT_EQ(c.winner, learners[0]);
    EXPECT_EQ(c.model.members(), 5u);  // the default ensemble: five networks in one graph
    // float32 GEMMs over <= 512 hidden units then softmax: both sum in a different order.
    expect_onnx_matches(c, synthetic_table(50, 9, false), "probabilities", "onnx_c_" + c.winner,
                        1e-5);
  }
  const TabularSearchResult reg = TabularSearch({.task = TabularTask::Regression,
                                                 .label_column = "Target",
                                                 .time_budget_s = 100,
                                                 .seed = 0,
                                                 .max_trials = 2,
                                                 .learners = {"mlp"}})
                                      .run(synthetic_table(300, 10, true));
  // Predictions are ~10 in size: 1e-4 is a few float32 ulps of the summed products.
  expect_onnx_matches(reg, synthetic_table(50, 11, true), "prediction", "onnx_r", 1e-4);
}

TEST(TabularSearch, BadInputGivesClearErrors) {
  const data::Table t = synthetic_table(50, 1, false);
  EXPECT_EQ(what([&] { TabularSearch({.label_column = "Class"}).run(t); }),
            "automl classification: no column 'Class' (columns: x1, x2, c, noise, Label)");
  const data::Table one = strings_table({{"x", {"1", "2", "3"}}, {"Label", {"a", "a", ""}}});
  EXPECT_EQ(what([&] { TabularSearch({}).run(one); }),
            "automl classification: label column 'Label' has 1 class (a); a classifier needs at "
            "least 2");
  const data::Table words =
      strings_table({{"x", {"1", "2", "3"}}, {"Price", {"1.5", "cheap", "3"}}});
  EXPECT_EQ(what([&] {
              TabularSearch({.task = TabularTask::Regression, .label_column = "Price"}).run(words);
            }),
            "automl regression: label column 'Price' is not numeric: row 2 holds 'cheap' (a "
            "regression label must be a number; use classification for categories)");
  EXPECT_NE(what([&] { TabularSearch({.metric = "rmse"}); }).find("unknown metric 'rmse'"),
            std::string::npos);
  EXPECT_NE(what([&] { TabularSearch({.learners = {"svm"}}); }).find("unknown learner 'svm'"),
            std::string::npos);
  EXPECT_NE(what([&] { TabularSearch({.ensemble = 0}); }).find("need ensemble >= 1"),
            std::string::npos);
  EXPECT_NE(what([&] {
              TabularSearch({.task = TabularTask::Regression, .label_column = "Target"})
                  .run(synthetic_table(6, 1, true));
            }).find("6 labelled rows are too few for 5-fold cross-validation"),
            std::string::npos);
  const fs::path dir = fresh_dir("tab_bad_input");
  { std::ofstream(dir / "empty.csv"); }
  EXPECT_NE(what([&] { read_tabular_csv(dir / "empty.csv", "Label"); }).find("the file is empty"),
            std::string::npos);
  { std::ofstream(dir / "header.csv") << "x,Label\n"; }
  EXPECT_NE(what([&] {
              read_tabular_csv(dir / "header.csv", "Label");
            }).find("header.csv: no data rows after the header"),
            std::string::npos);
  { std::ofstream(dir / "nolabel.csv") << "x,Class\n1,a\n"; }
  EXPECT_NE(what([&] {
              read_tabular_csv(dir / "nolabel.csv", "Label");
            }).find("no column 'Label' (columns: x, Class)"),
            std::string::npos);
  EXPECT_NE(what([&] { read_tabular_csv(dir / "missing.csv", "Label"); }).find("no such file"),
            std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kiln::automl
