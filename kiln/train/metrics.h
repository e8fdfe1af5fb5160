#pragma once
// Streaming metrics (namespace kiln::metrics): reset(), update(y_pred, y_true) per batch, result()
// over everything seen since the reset — so a metric over an epoch is exact, not an average of
// batch values.
//
//   model.compile(kiln::optimizers::Adam(), "sparse_categorical_crossentropy",
//                 {"accuracy", kiln::metrics::TopKCategoricalAccuracy(3), "f1_score"});
//
//   auto acc = kiln::metrics::Accuracy();
//   acc->update(logits, labels);   acc->result();   acc->reset();
//
// Strings: "accuracy" / "acc", "sparse_categorical_accuracy", "categorical_accuracy",
// "binary_accuracy", "top_k_categorical_accuracy" (k = 5), "sparse_top_k_categorical_accuracy" (k =
// 5), "precision", "recall", "f1_score" / "f1", "auc", "mse" / "mean_squared_error", "mae" /
// "mean_absolute_error", "r2_score" / "r2". The log key is the string given.
//
// Conventions: metrics are unweighted (class_weight weights the loss only, as Keras' `metrics=`).
// Shapes: y_pred (B, K) class scores with y_true (B) / (B, 1) integer ids (sparse) or (B, K)
// one-hot (categorical); y_pred (B) or (B, 1) is binary, thresholded at 0.5 on probabilities or 0
// on logits (the model tells metrics which it outputs, see set_from_logits).
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kiln/autograd/tensor.h"
#include "kiln/io/json.h"

namespace kiln::metrics {

class Metric {
 public:
  virtual ~Metric() = default;
  /// The log key ("accuracy", "val_" is prepended for validation).
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  virtual void reset() = 0;
  /// Accumulates one batch (values are read, never differentiated).
  virtual void update(const Tensor& y_pred, const Tensor& y_true) = 0;
  /// The value over everything since reset() (0 before any update).
  virtual double result() const = 0;
  /// Whether binary outputs are logits (threshold 0) or probabilities (0.5); set by compile().
  void set_from_logits(bool from_logits) { from_logits_ = from_logits; }
  /// {"class_name": ..., "name": ..., "config": {...}} for checkpoints.
  json::Value serialize() const;
  /// The running state as numbers (counts, sums, or the scores seen), so that instances fed by
  /// different processes can be combined: distributed fit gathers every rank's state and merges
  /// them in rank order, which gives exactly the single-process value. Kiln's metrics implement
  /// both; a custom metric must override them to be used in distributed training (the default
  /// throws, naming the metric).
  virtual std::vector<double> state() const;
  /// Adds another instance's state() to this one: result() then covers both sets of batches.
  virtual void merge_state(std::span<const double> other);

 protected:
  Metric(std::string class_name, std::string name)
      : class_name_(std::move(class_name)), name_(std::move(name)) {}
  virtual json::Value config() const { return json::Value::object(); }
  /// The binary decision threshold in y_pred's units.
  double threshold() const { return from_logits_ ? 0.0 : 0.5; }
  std::string class_name_;
  std::string name_;
  bool from_logits_ = false;
};
using MetricPtr = std::shared_ptr<Metric>;

/// Weighted mean of values (e.g. batch losses weighted by batch size).
class MeanMetric : public Metric {
 public:
  explicit MeanMetric(std::string name = "mean") : Metric("Mean", std::move(name)) {}
  void reset() override { sum_ = weight_ = 0.0; }
  /// y_pred: the values (any shape, each weighted 1); y_true ignored.
  void update(const Tensor& values, const Tensor& unused) override;
  void update_value(double value, double weight = 1.0) {
    sum_ += value * weight;
    weight_ += weight;
  }
  double result() const override { return weight_ > 0 ? sum_ / weight_ : 0.0; }
  std::vector<double> state() const override { return {sum_, weight_}; }
  void merge_state(std::span<const double> other) override;

 private:
  double sum_ = 0.0, weight_ = 0.0;
};

/// Fraction of correct predictions. mode "auto" (Keras' "accuracy": picks sparse, categorical or
/// binary from the shapes and dtypes each batch), "sparse", "categorical" or "binary".
class AccuracyMetric : public Metric {
 public:
  explicit AccuracyMetric(std::string mode = "auto", std::string name = "accuracy");
  void reset() override { correct_ = total_ = 0; }
  void update(const Tensor& y_pred, const Tensor& y_true) override;
  double result() const override {
    return total_ ? static_cast<double>(correct_) / static_cast<double>(total_) : 0.0;
  }
  std::vector<double> state() const override;
  void merge_state(std::span<const double> other) override;

 protected:
  json::Value config() const override;

 private:
  std::string mode_;
  int64_t correct_ = 0, total_ = 0;
};

/// Fraction of rows whose true class is among the k highest scores (ties: the true class counts
/// when fewer than k classes score strictly higher). Sparse or one-hot targets, picked from the
/// shapes.
class TopKAccuracyMetric : public Metric {
 public:
  explicit TopKAccuracyMetric(int64_t k = 5, std::string name = "top_k_categorical_accuracy");
  void reset() override { correct_ = total_ = 0; }
  void update(const Tensor& y_pred, const Tensor& y_true) override;
  double result() const override {
    return total_ ? static_cast<double>(correct_) / static_cast<double>(total_) : 0.0;
  }
  std::vector<double> state() const override;
  void merge_state(std::span<const double> other) override;

 protected:
  json::Value config() const override;

 private:
  int64_t k_;
  int64_t correct_ = 0, total_ = 0;
};

/// Precision, recall and F1. Binary outputs ((B) / (B, 1)): of the positive class. Multi-class
/// outputs
/// ((B, K), predicted class = argmax): the macro average over the K classes (a class never
/// predicted has precision 0, never present recall 0, as scikit-learn's zero_division=0).
class ConfusionMetric : public Metric {
 public:
  enum class Kind { Precision, Recall, F1 };
  ConfusionMetric(Kind kind, std::string name);
  void reset() override;
  void update(const Tensor& y_pred, const Tensor& y_true) override;
  double result() const override;
  /// [binary, K, tp (K), fp (K), fn (K)].
  std::vector<double> state() const override;
  void merge_state(std::span<const double> other) override;

 private:
  Kind kind_;
  bool binary_ = true;
  std::vector<int64_t> tp_, fp_, fn_;  // per class (binary: one entry, the positive class)
};

/// Area under the ROC curve of a binary classifier, exact: the trapezoid rule over every distinct
/// score (tied scores form one step, i.e. count ½ — the Mann–Whitney U statistic / (P·N)). y_pred
/// (B), (B, 1), or (B, 2) (column 1 is the positive score); y_true 0/1. 0 when only one class has
/// been seen.
class AUCMetric : public Metric {
 public:
  explicit AUCMetric(std::string name = "auc") : Metric("AUC", std::move(name)) {}
  void reset() override {
    scores_.clear();
    labels_.clear();
  }
  void update(const Tensor& y_pred, const Tensor& y_true) override;
  double result() const override;
  /// [n, scores (n), labels (n)]: AUC needs every score, so this grows with the data.
  std::vector<double> state() const override;
  void merge_state(std::span<const double> other) override;

 private:
  std::vector<double> scores_;
  std::vector<uint8_t> labels_;
};

/// Mean squared / absolute error over all elements.
class ErrorMetric : public Metric {
 public:
  ErrorMetric(bool squared, std::string name);
  void reset() override { sum_ = 0.0, count_ = 0; }
  void update(const Tensor& y_pred, const Tensor& y_true) override;
  double result() const override { return count_ ? sum_ / static_cast<double>(count_) : 0.0; }
  std::vector<double> state() const override;
  void merge_state(std::span<const double> other) override;

 private:
  bool squared_;
  double sum_ = 0.0;
  int64_t count_ = 0;
};

/// Coefficient of determination R² = 1 − SS_res / SS_tot, per output column then averaged uniformly
/// (Keras' R2Score default). y_pred, y_true: (B) or (B, D).
class R2Metric : public Metric {
 public:
  explicit R2Metric(std::string name = "r2_score") : Metric("R2Score", std::move(name)) {}
  void reset() override;
  void update(const Tensor& y_pred, const Tensor& y_true) override;
  double result() const override;
  /// [n, D, sum_y (D), sum_y² (D), ss_res (D)].
  std::vector<double> state() const override;
  void merge_state(std::span<const double> other) override;

 private:
  int64_t n_ = 0;
  std::vector<double> sum_y_, sum_y2_, ss_res_;
};

// Factories (Keras' class names).
std::shared_ptr<AccuracyMetric> Accuracy();
std::shared_ptr<AccuracyMetric> SparseCategoricalAccuracy();
std::shared_ptr<AccuracyMetric> CategoricalAccuracy();
std::shared_ptr<AccuracyMetric> BinaryAccuracy();
std::shared_ptr<TopKAccuracyMetric> TopKCategoricalAccuracy(int64_t k = 5);
std::shared_ptr<ConfusionMetric> Precision();
std::shared_ptr<ConfusionMetric> Recall();
std::shared_ptr<ConfusionMetric> F1Score();
std::shared_ptr<AUCMetric> AUC();
std::shared_ptr<ErrorMetric> MeanSquaredError();
std::shared_ptr<ErrorMetric> MeanAbsoluteError();
std::shared_ptr<R2Metric> R2Score();

/// The metric a string names (see above); throws listing the names otherwise.
MetricPtr get(const std::string& name);
/// Rebuilds a metric from Metric::serialize() output.
MetricPtr deserialize(const json::Value& spec);

}  // namespace kiln::metrics
