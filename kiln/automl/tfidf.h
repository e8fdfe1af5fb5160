#pragma once
// An n-gram TF-IDF featuriser and a linear classifier on its features: the linear
// text learner of kiln::automl (ML.NET's FeaturizeText + SdcaMaximumEntropy is the anchor; here the
// model is trained with Kiln's Adam on cross-entropy, or on one-vs-rest squared hinge as
// scikit-learn's LinearSVC, with sparse forward and backward passes).
//
// Featurisation (a preprocessing step Kiln applies; the exported ONNX graph takes its output):
//   1. the text is cut to max_chars bytes and ASCII-lowercased;
//   2. words are maximal runs of ASCII letters/digits or bytes >= 0x80; word n-grams for
//      n = 1..word_ngrams are joined by one space and hashed as "w" + gram;
//   3. character n-grams (bytes) for n = char_min..char_max are taken over the text with every run
//      of whitespace collapsed to one space, hashed as "c" + gram;
//   4. hash = FNV-1a 64-bit of those bytes, bucket = hash mod hash_buckets; fit keeps the
//      max_features buckets with the highest document frequency (ties: the smaller bucket) and
//      numbers them in bucket order;
//   5. value = count · idf, idf = ln((1 + N) / (1 + df)) + 1 (N documents in fit), then each row is
//      scaled to unit L2 norm.
// to_json() writes all of this (options, kept buckets, idf) so another program can reproduce it.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kiln/autograd/tensor.h"
#include "kiln/io/json.h"
#include "kiln/nn/linear.h"

namespace kiln::automl {

struct TfidfOptions {
  int word_ngrams = 2;  // 0..3: word n-grams 1..word_ngrams (0: none)
  int char_min = 3;     // character n-grams char_min..char_max (char_max 0: none)
  int char_max = 5;
  int64_t max_features = 20000;
  int64_t hash_buckets = int64_t{1} << 22;
  size_t max_chars = 8192;  // bytes of each text that are featurised
};

/// Rows of sparse feature vectors (CSR). rows(): N; cols: F.
struct SparseRows {
  std::vector<int64_t> offsets{0};  // (N + 1)
  std::vector<int32_t> index;       // (nnz) feature ids, ascending within a row
  std::vector<float> value;         // (nnz)
  int64_t cols = 0;
  size_t rows() const { return offsets.size() - 1; }
  /// The rows `which` as a dense (B, F) float32 tensor.
  Tensor dense(std::span<const size_t> which) const;
};

class TfidfFeaturizer {
 public:
  /// Learns the kept buckets and idf from `texts`. Throws kiln::Error on bad options or no texts.
  /// `should_stop` is asked every 64 texts; when it says yes, fit returns an empty featuriser
  /// (num_features() == 0) at once.
  static TfidfFeaturizer fit(std::span<const std::string> texts, const TfidfOptions& options,
                             const std::function<bool()>& should_stop = nullptr);
  /// Features of `texts`: (N, num_features()) sparse, rows of unit L2 norm (or all zero).
  /// `should_stop` as in fit: when it says yes, the rows done so far are returned.
  SparseRows transform(std::span<const std::string> texts,
                       const std::function<bool()>& should_stop = nullptr) const;
  int64_t num_features() const { return static_cast<int64_t>(idf_.size()); }
  const TfidfOptions& options() const { return options_; }
  /// {"kind": "kiln-tfidf", options, "buckets": [...], "idf": [...], and the recipe in words}.
  json::Value to_json() const;
  /// Reads what to_json wrote; throws kiln::Error naming a missing or bad field.
  static TfidfFeaturizer from_json(const json::Value& v);

 private:
  TfidfOptions options_;
  std::vector<int64_t> buckets_;  // kept buckets, ascending (F)
  std::vector<float> idf_;        // (F)
};

/// The linear model's training loss over class scores z = W·x + b (K classes, label y).
enum class LinearLoss {
  /// Multinomial logistic regression: −log softmax(z)_y (ML.NET's SdcaMaximumEntropy).
  Logistic,
  /// One-vs-rest squared hinge: Σ_k max(0, 1 − s_k z_k)², s_y = +1, s_k = −1 otherwise
  /// (scikit-learn's LinearSVC). predict_proba is then softmax(z): it ranks as the scores, but
  /// is not calibrated.
  SquaredHinge,
};

/// Hyper-parameters of the linear model. The defaults are automl's recipe: 200 full-batch steps
/// of squared hinge (0.574 on the fortunes topics, 0.986 on SpamAssassin, with word 1-2 and
/// character 3-5 grams and max_features 500,000; the old defaults, 3 epochs of logistic loss in
/// batches of 64 at 0.05, gave 0.506 and 0.979 with 20,000 features).
struct LinearTextOptions {
  double learning_rate = 0.3;  // Adam's peak step, annealed to 0 on a half cosine over all steps
  double l2 = 1e-4;            // L2 penalty (Adam's coupled weight decay)
  int epochs = 200;            // passes over the rows
  int64_t batch_size = 0;      // rows per Adam step; 0: all rows (one full-batch step per epoch)
  LinearLoss loss = LinearLoss::SquaredHinge;
  uint64_t seed = 0;
};

namespace detail {
/// The mean loss of rows `rows` of x (labels[r] in [0, k)) under scores z = x·w + b, with w
/// (F, k) row-major (x.cols = F) and b (k), and its gradient: gw (F·k) and gb (k) are
/// overwritten with d loss / d w and d loss / d b. Sparse: O(nnz · k) plus zeroing gw. Rows are
/// scored in parallel; the gradient sums run in row order, so results do not depend on the
/// thread count.
double linear_loss_grad(const SparseRows& x, std::span<const size_t> rows,
                        std::span<const int64_t> labels, const float* w, const float* b, int64_t k,
                        LinearLoss loss, float* gw, float* gb);
}  // namespace detail

/// Featuriser + linear layer: p(class | text) = softmax(W · features(text) + b).
class TfidfLinearModel {
 public:
  /// Trains on texts (N) with labels (N) in [0, K), K = label_names.size() >= 2. `should_stop`
  /// is asked during featurisation and before every batch; when it says yes, training ends and
  /// stopped() is true (a model stopped before its first batch cannot predict).
  static TfidfLinearModel fit(std::span<const std::string> texts, std::span<const int64_t> labels,
                              std::vector<std::string> label_names, const TfidfOptions& features,
                              const LinearTextOptions& options,
                              const std::function<bool()>& should_stop = nullptr);
  /// Class probabilities (N, K) float32.
  Tensor predict_proba(std::span<const std::string> texts) const;
  /// Class probabilities of already featurised rows: softmax(x·Wᵀ + b). x: (N, F) -> (N, K).
  Tensor predict_proba_features(const Tensor& x) const;
  const TfidfFeaturizer& featurizer() const { return featurizer_; }
  const std::vector<std::string>& labels() const { return labels_; }
  bool stopped() const { return stopped_; }
  /// Writes dir/model.onnx (input "features" (batch, F) float32 -> output "probabilities"
  /// (batch, K)), dir/model.safetensors ("weight" (K, F), "bias" (K)), dir/featurizer.json
  /// (to_json) and dir/config.json (labels, columns, the preprocessing note). `extra` members are
  /// added to config.json.
  void save(const std::filesystem::path& dir, const json::Value& extra) const;
  /// Reads what save() wrote (featurizer.json, config.json's labels, model.safetensors): predicts
  /// what the saved model predicted. Throws kiln::IOError naming a missing or unreadable file and
  /// kiln::Error when the weights do not match the featuriser and the labels.
  static TfidfLinearModel load(const std::filesystem::path& dir);

 private:
  TfidfFeaturizer featurizer_;
  std::vector<std::string> labels_;
  std::shared_ptr<nn::Linear> linear_;
  bool stopped_ = false;
};

}  // namespace kiln::automl
