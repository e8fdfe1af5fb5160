#pragma once
// kiln automl sentence-similarity: a time-boxed model search for scoring how similar two texts
// are (ML.NET's SentenceSimilarity task; the label is a float score per pair), returning the best
// model, its ONNX file and the leaderboard.
//
//   automl::SentenceSimilaritySearch search({.label_column = "Score", .text_column = "A",
//                                            .text2_column = "B", .time_budget_s = 300});
//   automl::SimilaritySearchResult r =
//       search.run(automl::read_similarity_table("pairs.csv", "Score", "A", "B"));
//   std::puts(r.leaderboard_table().c_str());
//   r.save("sim_model");  // model.onnx, featurizer.json, config.json, leaderboard.json
//   std::vector<float> s = r.predict(first_texts, second_texts);
//
// Search: the pairs are split (seeded) into 80 % training and 20 % validation; each trial trains
// one learner configuration on the training part and scores it on the validation part (metric
// pearson, spearman or rmse); the tuner is kiln::automl::search (tuner.h). The best configuration
// is then refitted on all pairs inside the same budget: search holds back the estimated refit time
// (the best trial's time × all rows / training rows × 1.5 + 1 s); when the refit would still not
// fit, the best trial's own model (trained on the training split) is kept and the result says so.
// Learners, cheapest first:
//   "pair_features": PairRegressionModel, a linear model or a one-hidden-layer MLP on seven
//     similarity features of the pair (PairFeaturizer below: TF-IDF cosine, word / word-bigram /
//     character-n-gram Jaccard, containment, two length ratios), trained with Kiln's Adam on MSE.
//     The classic strong baseline for paraphrase scoring (on the KJV/WEB Bible verse pairs plain
//     word Jaccard alone reaches Pearson 0.917). Space pair_features_space().
//   "nasbert_finetune": kiln::text::SentenceSimilarity fine-tuning the encoder Kiln ships
//     (models/nasbert-5m-en; skipped with a note when absent); space
//     similarity_finetune_space(). A fine-tuning trial is cut at the next batch when the deadline
//     passes and reported as stopped.
// Measured (KJV/WEB Bible verse pairs, 8,000 training / 2,000 test, --time 300, 2 cores): 122
// trials in 298.5 s of the budget with the refit; the winner, pair_features with a 16-unit hidden
// layer, reaches test Pearson 0.9885 (word Jaccard alone 0.917; one fine-tuning trial of the
// shipped encoder, 1 epoch in 52 s, 0.272 on validation).
// model.onnx: for nasbert_finetune text::export_onnx's graph (input_ids, attention_mask -> score);
// for pair_features the regression on the features ("features" (batch, 7) -> "score" (batch, 1)),
// with the featurisation a preprocessing step Kiln applies (PairFeaturizer, whose recipe and
// fitted TF-IDF tables featurizer.json holds).
#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kiln/automl/tfidf.h"
#include "kiln/automl/tuner.h"
#include "kiln/data/columns.h"
#include "kiln/io/json.h"
#include "kiln/nn/container.h"
#include "kiln/text/trainers.h"

namespace kiln::automl {

/// What PairFeaturizer computes for a pair (A, B), in this order; every feature lies in [0, 1].
inline constexpr std::array<const char*, 7> kPairFeatureNames = {
    "tfidf_cosine",  // cosine of the two TF-IDF vectors (TfidfFeaturizer fitted on A and B)
    "word_jaccard",  // |W(A) ∩ W(B)| / |W(A) ∪ W(B)|, W = the set of words (0 when both empty)
    "bigram_jaccard",     // the same over sets of adjacent word pairs
    "char_jaccard",       // the same over sets of character n-grams (n = char_n)
    "word_containment",   // |W(A) ∩ W(B)| / min(|W(A)|, |W(B)|) (0 when either is empty)
    "word_length_ratio",  // min(words) / max(words) over the word counts (1 when both are 0)
    "char_length_ratio",  // min(bytes) / max(bytes) of the two texts (1 when both are empty)
};

struct PairFeatureOptions {
  TfidfOptions tfidf = {.word_ngrams = 1, .char_max = 0, .max_features = 5000};  // the cosine's
  int char_n = 3;  // character n-gram length of char_jaccard, 1..8
};

/// Featurises text pairs: (N pairs) -> (N, 7) float32 features (kPairFeatureNames).
/// Words are the TF-IDF recipe's (tfidf.h): the text cut to max_chars bytes, ASCII-lowercased,
/// maximal runs of ASCII letters/digits or bytes >= 0x80. Character n-grams are taken over the
/// lowercased text with each whitespace run collapsed to one space.
class PairFeaturizer {
 public:
  static constexpr int64_t kNumFeatures = static_cast<int64_t>(kPairFeatureNames.size());
  /// Fits the TF-IDF part on the texts of both columns (2N documents). Throws kiln::Error on bad
  /// options, no pairs or columns of different lengths. `should_stop` as in TfidfFeaturizer::fit.
  static PairFeaturizer fit(std::span<const std::string> a, std::span<const std::string> b,
                            const PairFeatureOptions& options,
                            const std::function<bool()>& should_stop = nullptr);
  /// Features of the pairs (a[i], b[i]): N·7 values, row-major. `should_stop` is asked every 64
  /// pairs; when it says yes, the rows done so far are returned.
  std::vector<float> transform(std::span<const std::string> a, std::span<const std::string> b,
                               const std::function<bool()>& should_stop = nullptr) const;
  const PairFeatureOptions& options() const { return options_; }
  /// {"kind": "kiln-pair-features", "features": names, "char_n", "recipe", "tfidf": its to_json}.
  json::Value to_json() const;
  /// Reads what to_json wrote; throws kiln::Error naming a missing or bad field.
  static PairFeaturizer from_json(const json::Value& v);

 private:
  PairFeatureOptions options_;
  TfidfFeaturizer tfidf_;
};

/// Hyper-parameters of the regression on the pair features.
struct PairRegressorOptions {
  double learning_rate = 0.03;  // Adam
  double l2 = 1e-6;             // L2 penalty (Adam's coupled weight decay)
  int epochs = 5;
  int64_t hidden = 0;  // 0: linear; else one ReLU hidden layer of this width
  int64_t batch_size = 64;
  uint64_t seed = 0;
};

/// Featuriser + network: score(A, B) = net(features(A, B)), net = Linear(7, 1) or
/// Linear(7, H) -> ReLU -> Linear(H, 1). Trained on the standardised label t = (y − mean) / std
/// with MSE; the last layer is rescaled afterwards so it outputs the label's units.
class PairRegressionModel {
 public:
  /// Trains on pairs (a[i], b[i]) with scores y[i]. `should_stop` is asked during featurisation
  /// and before every batch; when it says yes, training ends and stopped() is true.
  static PairRegressionModel fit(std::span<const std::string> a, std::span<const std::string> b,
                                 std::span<const double> y, const PairFeatureOptions& features,
                                 const PairRegressorOptions& options,
                                 const std::function<bool()>& should_stop = nullptr);
  /// Scores of the pairs (a[i], b[i]): (N) float32.
  Tensor predict(std::span<const std::string> a, std::span<const std::string> b) const;
  /// Scores of already featurised pairs: x (N, 7) -> (N, 1).
  Tensor predict_features(const Tensor& x) const;
  const PairFeaturizer& featurizer() const { return featurizer_; }
  bool stopped() const { return stopped_; }
  /// Writes dir/model.onnx (input "features" (batch, 7) float32 -> output "score" (batch, 1)),
  /// dir/featurizer.json (to_json) and dir/config.json (the preprocessing note and `extra`).
  void save(const std::filesystem::path& dir, const json::Value& extra) const;

 private:
  PairFeaturizer featurizer_;
  std::shared_ptr<nn::Sequential> net_;
  bool stopped_ = false;
};

struct SentenceSimilaritySearchOptions {
  std::string label_column = "Label";
  std::string text_column = "Sentence1";
  std::string text2_column = "Sentence2";
  double time_budget_s = 60;       // the whole run: search and refit
  std::string metric = "pearson";  // or "spearman", "rmse"
  uint64_t seed = 0;
  int max_trials = 0;  // 0: until the budget is spent
  double validation_fraction = 0.2;
  bool verbose = false;  // one line per trial on stdout
  /// The learners to search over (see above), in this order.
  std::vector<std::string> learners = {"pair_features", "nasbert_finetune"};
};

/// "pearson", "spearman" (metrics::pearson_correlation / spearman_correlation) or "rmse" of
/// predictions against the true scores.
double similarity_metric(const std::string& metric, std::span<const double> truth,
                         std::span<const double> predicted);

/// The pair_features learner's space: learning_rate (log 1e-3..0.3, init 0.03), l2 (log
/// 1e-8..1e-2, init 1e-6), epochs (int log 1..100, init 5), hidden ("0", "16"; init "0"),
/// word_ngrams ("1", "2"; init "1") and char_ngrams ("none", "3-4", "3-5"; init "none") of the
/// TF-IDF cosine, max_features (int log 1000..100000, init 5000), char_n (int 2..5, init 3).
SearchSpace pair_features_space();
/// The nasbert_finetune learner's space: learning_rate (log 1e-5..3e-3, init 2e-4), epochs (int
/// 1..6, init 1), max_length (int log 32..256, init 64), batch_size ("16", "32", "64"; init "32").
SearchSpace similarity_finetune_space();

struct SimilaritySearchResult {
  /// Scores: pearson / spearman themselves; rmse as −rmse / metric_scale (higher is better, in
  /// units of the label's standard deviation).
  SearchResult search;
  std::string metric;
  double metric_scale = 1;                        // rmse: the labels' standard deviation
  std::string winner;                             // the best trial's learner
  std::optional<PairRegressionModel> pair_model;  // when it is pair_features
  std::optional<text::SentenceSimilarityModel> encoder_model;  // when it is nasbert_finetune
  bool refitted = false;
  double refit_seconds = 0;
  double total_seconds = 0;  // search + refit
  double budget_s = 0;
  std::string label_column, text_column, text2_column;
  /// The metric of a trial's score (the score, or −score · metric_scale for rmse).
  double metric_value(double score) const;
  /// The winner's scores of the pairs (a[i], b[i]): N values.
  std::vector<float> predict(std::span<const std::string> a, std::span<const std::string> b) const;
  /// The leaderboard as a fixed-width table, best first (then the failed / stopped trials).
  std::string leaderboard_table() const;
  /// {"task", "metric", "budget_s", "seconds", "refitted", "best_trial", "trials": [{trial,
  /// trainer, hyperparameters, metric, seconds, status, message}], "notes"}.
  json::Value leaderboard_json() const;
  /// Writes the model (PairRegressionModel::save, or the text model's save + text::export_onnx)
  /// and leaderboard.json into dir.
  void save(const std::filesystem::path& dir) const;
};

class SentenceSimilaritySearch {
 public:
  /// Throws kiln::Error on an unknown metric or a budget <= 0.
  explicit SentenceSimilaritySearch(SentenceSimilaritySearchOptions options);
  /// Runs the search on `table` (label column: float, int, or text holding numbers; text columns:
  /// strings). Throws kiln::Error naming a missing column (and the columns present), an empty
  /// table, a label that is not a number (with its row), a constant label, or an unknown learner.
  SimilaritySearchResult run(const data::Table& table) const;

 private:
  SentenceSimilaritySearchOptions options_;
};

/// Reads a CSV or TSV (tab when the name ends in .tsv) with a header, keeping the three columns as
/// strings. Throws kiln::IOError / kiln::Error naming the file and what is wrong (missing file, no
/// rows, a missing column with the header's names).
data::Table read_similarity_table(const std::filesystem::path& path,
                                  const std::string& label_column, const std::string& text_column,
                                  const std::string& text2_column);

}  // namespace kiln::automl
