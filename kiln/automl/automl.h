#pragma once
// kiln automl: a time-boxed model search for text classification that returns the best model, its
// ONNX file and the leaderboard (ML.NET's `mlnet classification --train-time`).
//
//   automl::TextClassificationSearch search({.label_column = "Label", .text_column = "Text",
//                                            .time_budget_s = 300, .seed = 0});
//   automl::TextSearchResult r = search.run(automl::read_text_table("mail.tsv", "Label", "Text"));
//   std::puts(r.leaderboard_table().c_str());
//   r.save("spam_model");  // model.onnx, featurizer.json, config.json, leaderboard.json
//   // a TF-IDF winner also writes model.safetensors: automl::TfidfLinearModel::load("spam_model")
//
// Search: the rows are split (stratified, seeded) into 80 % training and 20 % validation; each
// trial trains one learner configuration on the training part and scores it on the validation part
// (metric accuracy or macro_f1) — except the TF-IDF learner below 10,000 rows, which is scored by
// 5-fold cross-validation over all rows (ML.NET's rule; options folds, cv_max_rows); the tuner is
// kiln::automl::search (tuner.h). The best configuration is then refitted on all rows, inside the
// same budget: search holds back the estimated refit time (the best trial's time × 1.2 r for an
// encoder, its time per fold × 3 r² for TF-IDF, whose n-gram tables grow with the rows too; r = all
// rows / training rows, + 1 s) while it fits in what is left when that trial finishes; when it
// does not, or the refit is cut, the best trial's own model is kept and the result says so.
// Learners, cheapest first: "tfidf_linear" (tfidf.h; space tfidf_linear_space()),
// "nasbert_finetune": kiln::text::TextClassification fine-tuning the encoder
// Kiln ships (models/nasbert-5m-en, found by text::shipped_encoder_dir(); skipped with a note when
// absent; space nasbert_finetune_space(); after its 1-epoch start the search runs the encoder's
// known recipe, nasbert_finetune_recipes(), sized to the time left), and "nasbert_scratch": the
// same trainer from random weights (space nasbert_scratch_space()). An encoder trial is cut at the
// next batch when the deadline passes and reported as stopped. With experiment tracking on, every
// trial is a run (tuner.h).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "kiln/automl/tfidf.h"
#include "kiln/automl/tuner.h"
#include "kiln/data/columns.h"
#include "kiln/text/trainers.h"

namespace kiln::automl {

struct TextClassificationSearchOptions {
  std::string label_column = "Label";
  std::string text_column = "Text";
  /// For pairs (ML.NET's TextClassification with Sentence2ColumnName): the second text column.
  /// The encoders read "[cls] text [sep] text2 [sep]"; the TF-IDF model the two joined by "\n".
  std::string text2_column = "";
  double time_budget_s = 60;        // the whole run: search and refit
  std::string metric = "accuracy";  // or "macro_f1"
  uint64_t seed = 0;
  int max_trials = 0;  // 0: until the budget is spent
  double validation_fraction = 0.2;
  /// The TF-IDF learner is scored by `folds`-fold cross-validation over all rows below
  /// cv_max_rows rows (ML.NET's rule), else on the holdout; folds < 2: always the holdout.
  int folds = 5;
  size_t cv_max_rows = 10000;
  bool verbose = false;  // one line per trial on stdout
  /// The learners to search over (see above), in this order.
  std::vector<std::string> learners = {"tfidf_linear", "nasbert_finetune", "nasbert_scratch"};
};

/// Accuracy or macro-F1 (mean over classes present in truth or prediction) of predictions.
double classification_metric(const std::string& metric, std::span<const int64_t> truth,
                             std::span<const int64_t> predicted, int64_t num_classes);

/// The tfidf_linear learner's search space: learning_rate (log 1e-3..1, init 0.1), l2 (log
/// 1e-8..1e-2, init 1e-5), epochs (full-batch steps, int log 10..400, init 20), loss
/// ("logistic", "squared_hinge"; init "logistic"), word_ngrams ("1", "2"; init "1"), char_ngrams
/// ("none", "3-4", "3-5"; init "none"), max_features (int log 1000..500000, init 2000).
SearchSpace tfidf_linear_space();
/// The tfidf_linear learner's recipes: squared hinge, peak 0.3, l2 1e-4, word 1-2 + character 3-5
/// grams, 500,000 features, at 200, 100 and 50 steps; its cost is n-grams per word × (steps + 10).
std::vector<Config> tfidf_linear_recipes();
/// The nasbert_finetune learner's space: learning_rate (log 1e-5..3e-3, init 1e-3), epochs (int
/// 1..12, init 1), max_length (int log 32..256, init 32), batch_size ("16", "32", "64"; init "32").
SearchSpace nasbert_finetune_space();
/// The nasbert_finetune learner's recipes (Learner::recipes): the model card's 1e-3, 64 tokens,
/// batch 32, at 10, 6 and 3 epochs; its cost is epochs × max_length.
std::vector<Config> nasbert_finetune_recipes();
/// The nasbert_scratch learner's space (the same trainer from random weights): learning_rate (log
/// 1e-4..3e-3, init 1e-3), epochs (int 1..12, init 1), max_length and batch_size as above.
SearchSpace nasbert_scratch_space();

/// A model's accuracy and macro-F1 on a labelled table (TextSearchResult::evaluate).
struct TextTestMetrics {
  double accuracy = 0;
  double macro_f1 = 0;
};

struct TextSearchResult {
  SearchResult search;
  std::string metric;
  std::vector<std::string> labels;
  std::string winner;      // the best trial's learner
  TfidfLinearModel model;  // the winner when it is tfidf_linear (refitted unless refitted false)
  std::optional<text::TextClassificationModel> encoder_model;  // when it is an encoder learner
  bool refitted = false;
  double refit_seconds = 0;
  double total_seconds = 0;  // search + refit
  double budget_s = 0;
  std::string label_column, text_column, text2_column;
  /// The final model's accuracy and macro-F1 on `table` (the label and text columns of the search;
  /// a label the search never saw counts as a miss). Throws naming a missing column.
  TextTestMetrics evaluate(const data::Table& table) const;
  /// The leaderboard as a fixed-width table, best first (then the failed / stopped trials).
  std::string leaderboard_table() const;
  /// {"metric", "budget_s", "seconds", "refitted", "best_trial", "trials": [{trial, trainer,
  /// hyperparameters, metric, seconds, status, message}], "notes"}.
  json::Value leaderboard_json() const;
  /// Writes the model (TfidfLinearModel::save, or the text model's save + text::export_onnx,
  /// model.onnx taking input_ids and attention_mask) and leaderboard.json into dir.
  void save(const std::filesystem::path& dir) const;
};

class TextClassificationSearch {
 public:
  explicit TextClassificationSearch(TextClassificationSearchOptions options);
  /// Runs the search on `table` (label column: strings or keys; text column: strings). Throws
  /// kiln::Error naming the missing column (and the columns present), an empty table, or a label
  /// column with fewer than two classes.
  TextSearchResult run(const data::Table& table) const;

 private:
  TextClassificationSearchOptions options_;
};

/// Reads a CSV or TSV (tab when the name ends in .tsv) with a header, keeping the label and text
/// columns (and text2_column when not empty) as strings. Throws kiln::IOError / kiln::Error naming the file and what is wrong (missing file, no
/// rows, a missing column with the header's names).
data::Table read_text_table(const std::filesystem::path& path, const std::string& label_column,
                            const std::string& text_column, const std::string& text2_column = "");

}  // namespace kiln::automl
