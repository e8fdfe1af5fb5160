#pragma once
// kiln automl for tables: a time-boxed search over a linear model and an MLP for classification or
// regression of one column of a CSV from the others (ML.NET's `mlnet classification|regression
// --dataset --label-col --train-time`).
//
//   automl::TabularSearch search({.task = automl::TabularTask::Classification,
//                                 .label_column = "Status", .time_budget_s = 300});
//   automl::TabularSearchResult r = search.run(automl::read_tabular_csv("credit.csv", "Status"));
//   std::puts(r.leaderboard_table().c_str());
//   r.save("credit_model");   // model.onnx, featurizer.json, config.json, leaderboard.json
//
// Validation follows ML.NET's AutoML rule: below cv_max_rows (10,000) rows, k-fold cross-validation
// (k = 5; stratified for classification) and a trial's score is the mean over the folds; from
// cv_max_rows on, one seeded 80/20 holdout. The featuriser (tabular_featurizer.h) is fitted on each
// fold's training rows only. The tuner is kiln::automl::search (tuner.h); each learner starts at
// its cheapest configuration (few epochs, narrow layer). The best configuration is refitted on all
// rows inside the budget: search holds back the estimated refit time (the best trial's time per
// fold × all rows / fold training rows × 1.5 + 0.5 s); when the refit is cut anyway, the best
// trial's first-fold model is kept (trained within the budget) and the result says so.
//
// Learners (both trained with Kiln's nn and optim, mini-batches of 64, seeded):
//   "linear": softmax regression (classification) or linear regression (regression, squared
//            error), Adam with L2 (coupled weight decay); space linear_tabular_space();
//   "mlp":    depth × (Linear, ReLU, Dropout) then Linear, AdamW; space mlp_tabular_space().
// Regression trains on the standardised target (training mean and std) and folds the inverse
// into the last layer, so model.onnx predicts in the target's own units.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kiln/autograd/tensor.h"
#include "kiln/automl/tabular_featurizer.h"
#include "kiln/automl/tuner.h"
#include "kiln/data/columns.h"
#include "kiln/nn/container.h"
#include "kiln/tensor/random.h"

namespace kiln::automl {

enum class TabularTask { Classification, Regression };
/// "classification" or "regression".
std::string_view to_string(TabularTask task);

/// A network's hyper-parameters (hidden = 0 / depth = 0: the linear model).
struct TabularNetOptions {
  int depth = 0;       // hidden layers, 0..2
  int64_t hidden = 0;  // width of each hidden layer
  double dropout = 0;  // after each hidden ReLU
  double learning_rate = 0.01;
  double weight_decay = 0;  // L2 (Adam) for the linear model, decoupled (AdamW) for the MLP
  int epochs = 3;
  int64_t batch_size = 64;
  uint64_t seed = 0;
};

/// A featuriser and a network over its output, or the mean of several networks (average()):
///   classification: probabilities = mean_m softmax(net_m(features))   (N, K)
///   regression:     prediction = mean_m net_m(features)               (N, 1), in the target's units
class TabularModel {
 public:
  /// Trains on featurised rows x (N·F row-major, F = featurizer.num_features()) with targets y
  /// (N): class ids in [0, labels.size()) for classification, values for regression (labels
  /// empty). `should_stop` is asked before every batch; when it says yes, training ends and
  /// stopped() is true.
  static TabularModel fit(TabularFeaturizer featurizer, std::span<const float> x,
                          std::span<const double> y, TabularTask task,
                          std::vector<std::string> labels, const TabularNetOptions& options,
                          const std::function<bool()>& should_stop = nullptr);
  /// Outputs for featurised rows x: (N, F) float32 -> (N, K) probabilities or (N, 1) predictions.
  Tensor predict_features(const Tensor& x) const;
  /// Featurises `table` (which needs the fitted columns) and predicts.
  Tensor predict(const data::Table& table) const;
  /// `metric` (classification_metric's or regression_metric's) of the predictions for the rows of
  /// `table` whose `label_column` is not missing (a class the model never saw counts as wrong).
  double evaluate(const data::Table& table, const std::string& label_column,
                  const std::string& metric) const;
  /// An ensemble: the members' outputs averaged (class probabilities for classification,
  /// predictions for regression), as predict(), evaluate() and model.onnx compute them. The
  /// members must be trained models of one task with the same labels and feature count (the
  /// first member's featurizer is kept: fit them on the same featurised rows). Throws kiln::Error
  /// naming the first member that does not match.
  static TabularModel average(std::vector<TabularModel> members);
  /// How many networks are averaged (1 for a model from fit()).
  size_t members() const { return nets_.size(); }
  TabularTask task() const { return task_; }
  const TabularFeaturizer& featurizer() const { return featurizer_; }
  const std::vector<std::string>& labels() const { return labels_; }
  bool stopped() const { return stopped_; }
  /// Writes dir/model.onnx (input "features" (batch, F) float32 -> output "probabilities" (batch,
  /// K) or "prediction" (batch, 1)), dir/featurizer.json and dir/config.json (task, labels,
  /// preprocessing note, and `extra`'s members).
  void save(const std::filesystem::path& dir, const json::Value& extra) const;

 private:
  TabularFeaturizer featurizer_;
  TabularTask task_ = TabularTask::Classification;
  std::vector<std::string> labels_;
  std::vector<std::shared_ptr<nn::Sequential>> nets_;  // one per member (average())
  std::vector<std::shared_ptr<Generator>> gens_;  // initialisation and the dropout masks (seeded)
  bool stopped_ = false;
};

struct TabularSearchOptions {
  TabularTask task = TabularTask::Classification;
  std::string label_column = "Label";
  double time_budget_s = 60;  // the whole run: featurisation, search and refit
  /// classification: "accuracy" or "macro_f1"; regression: "rmse", "mae" or "r2". Empty: accuracy
  /// or rmse.
  std::string metric = "";
  uint64_t seed = 0;
  int max_trials = 0;  // 0: until the budget is spent
  int folds = 5;
  size_t cv_max_rows = 10000;  // k-fold below this many rows, a holdout from here on
  double holdout_fraction = 0.2;
  bool verbose = false;  // one line per trial on stdout
  std::vector<std::string> learners = {"linear", "mlp"};
  /// After the search, the `rescore_top` best distinct configurations are scored again on
  /// `rescore_repeats` new splits (other fold draws and seeds) and the best mean over all splits
  /// wins: the top score of many trials on one split is partly luck. Fewer configurations when a
  /// trial is slow (re-scoring takes at most a tenth of the budget), none below two or with
  /// rescore_repeats 0.
  int rescore_top = 5;
  int rescore_repeats = 2;
  /// The refit trains this many models of the winning configuration on all rows (seeds seed,
  /// seed + 1, ...) and averages their outputs (TabularModel::average); fewer when the budget
  /// runs out. 1: a single model.
  int ensemble = 5;
};

/// The linear learner's space: learning_rate (log 1e-4..0.3, init 0.01), l2 (log 1e-8..0.1, init
/// 1e-6), epochs (int log 1..60, init 3).
SearchSpace linear_tabular_space();
/// The MLP's space: depth (int 1..2, init 1), hidden (int log 8..512, init 32), dropout (0..0.5,
/// init 0), learning_rate (log 1e-4..0.03, init 0.01), weight_decay (log 1e-6..0.3, init 1e-4),
/// epochs (int log 1..100, init 10). The start is cheap but not starved: with 3 epochs at a
/// width of 16 its first score trailed the linear model's by 9 points on the test tables, and the
/// tuner's share rule then gave it e^-9 of the time.
SearchSpace mlp_tabular_space();

/// Regression metrics of predictions: "rmse", "mae" or "r2" (1 − SSE / SST; 0 when SST is 0).
double regression_metric(const std::string& metric, std::span<const double> truth,
                         std::span<const double> predicted);
/// Whether a larger value of `metric` is better (accuracy, macro_f1, r2) or not (rmse, mae).
bool higher_is_better(const std::string& metric);

struct TabularSearchResult {
  /// Scores: the metric; for rmse and mae −metric / metric_scale (higher is better, and in units
  /// of the label's standard deviation so the tuner's share rule does not depend on its scale).
  SearchResult search;
  double metric_scale = 1;  // rmse / mae: the labels' standard deviation
  TabularTask task = TabularTask::Classification;
  std::string metric;
  std::string validation;  // "5-fold cross-validation" or "holdout 20 %"
  std::string winner;
  /// A re-scored configuration: its scores on the search's split and each new split, and their
  /// mean (the score it was chosen by).
  struct Rescore {
    int trial = 0;
    std::vector<double> scores;
    double mean_score = 0;
  };
  std::vector<Rescore> rescored;  // empty when nothing was re-scored
  TabularModel model;
  int ensemble = 1;  // how many refitted models `model` averages
  bool refitted = false;
  double refit_seconds = 0;
  double total_seconds = 0;
  double budget_s = 0;
  std::string label_column;
  size_t rows = 0;
  /// The metric of a trial's score (the score itself, or −score · metric_scale for rmse and mae).
  double metric_value(double score) const;
  /// metric_value as printed: 4 decimals for accuracy, macro_f1 and r2, 5 digits for rmse / mae,
  /// "diverged" for a non-finite score.
  std::string shown_metric(double score) const;
  /// The leaderboard as a fixed-width table, best first (then the failed / stopped trials).
  std::string leaderboard_table() const;
  /// {"task", "metric", "validation", "budget_s", "seconds", "refitted", "best_trial", "trials":
  /// [{trial, trainer, hyperparameters, metric, seconds, status, message}], "notes", "ensemble",
  /// "rescored": [{trial, metrics (search split first), mean}]}.
  json::Value leaderboard_json() const;
  /// model.save(dir) and leaderboard.json.
  void save(const std::filesystem::path& dir) const;
};

class TabularSearch {
 public:
  /// Throws kiln::Error on an unknown metric or learner, or a budget <= 0.
  explicit TabularSearch(TabularSearchOptions options);
  /// Runs the search on `table` (the label column and feature columns, any types). Rows with a
  /// missing label are dropped (a note says how many). Throws kiln::Error naming a missing label
  /// column (with the columns present), a table without rows, fewer than two classes, a
  /// regression label that is not numeric (with the first bad value and its row), or too few rows
  /// for the folds.
  TabularSearchResult run(const data::Table& table) const;

 private:
  TabularSearchOptions options_;
};

/// Reads a CSV (TSV when the name ends in .tsv) with a header, every column as text. Throws
/// kiln::IOError / kiln::Error naming the file and what is wrong: no such file, an empty file, no
/// data rows, no column `label_column` (with the header's names).
data::Table read_tabular_csv(const std::filesystem::path& path, const std::string& label_column);

}  // namespace kiln::automl
