#pragma once
// Keras-style losses (namespace kiln::losses), by string or object:
//
//   model.compile(kiln::optimizers::Adam(), "sparse_categorical_crossentropy");
//   model.compile(kiln::optimizers::Adam(),
//   kiln::losses::BinaryCrossentropy(/*from_logits=*/true));
//
// Every loss is loss_i per sample (averaged over the non-batch dims), then Keras' "sum over batch
// size" reduction: mean_i(w_i · loss_i) with w = sample weights (class_weight) or 1. The losses
// themselves are nn::functional's (cross_entropy, nll_loss, binary_cross_entropy[_with_logits],
// mse_loss, l1_loss, huber_loss) with reduction "none"; this file adds Keras' names, the per-sample
// mean, sample weights and the probability clipping.
//
// Logits or probabilities. Keras' string losses assume probabilities (from_logits=False); Kiln's
// models usually end in a linear layer, so a loss whose from_logits is not given decides at
// compile() from the model's last activation: a model ending in softmax (categorical losses) or
// sigmoid (binary) gives probabilities, read through log(clip(p, 1e-7, 1 − 1e-7)) as Keras does;
// anything else gives logits, read through the fused, stable log-softmax / log-sigmoid forms. Pass
// from_logits to override. Legend: B = batch, K = classes, * = any further dims.
#include <memory>
#include <optional>
#include <string>

#include "kiln/autograd/tensor.h"
#include "kiln/io/json.h"

namespace kiln::losses {

class Loss {
 public:
  virtual ~Loss() = default;
  /// The weighted batch mean described above: a 0-d tensor. sample_weight: (B) or undefined.
  Tensor operator()(const Tensor& y_pred, const Tensor& y_true,
                    const Tensor& sample_weight = {}) const;
  /// Per-sample losses (B) (averaged over non-batch dims).
  virtual Tensor per_sample(const Tensor& y_pred, const Tensor& y_true) const = 0;
  /// "sparse_categorical_crossentropy", ... (the string that selects it).
  const std::string& name() const { return name_; }
  /// {"class_name": ..., "config": {...}} for checkpoints.
  json::Value serialize() const;
  /// Resolves an unset from_logits from the model's last activation ("softmax", "sigmoid", ...).
  virtual void resolve_output(const std::string& output_activation) { (void)output_activation; }
  /// Whether the loss reads y_pred as logits (after resolve_output; true for regression losses).
  virtual bool from_logits() const { return true; }

 protected:
  Loss(std::string class_name, std::string name)
      : class_name_(std::move(class_name)), name_(std::move(name)) {}
  /// Mean of the unweighted per-sample losses (the fused fast path where one exists).
  virtual Tensor mean_loss(const Tensor& y_pred, const Tensor& y_true) const;
  virtual json::Value config() const { return json::Value::object(); }
  std::string class_name_;
  std::string name_;
};
using LossPtr = std::shared_ptr<Loss>;

/// Shared by the cross-entropies: from_logits explicit or resolved at compile.
class ProbabilisticLoss : public Loss {
 public:
  bool from_logits() const override { return from_logits_.value_or(true); }
  void resolve_output(const std::string& output_activation) override;

 protected:
  ProbabilisticLoss(std::string class_name, std::string name, std::optional<bool> from_logits,
                    std::string prob_activation)
      : Loss(std::move(class_name), std::move(name)),
        from_logits_(from_logits),
        prob_activation_(std::move(prob_activation)) {}
  json::Value config() const override;
  std::optional<bool> from_logits_;
  std::string prob_activation_;  // the activation whose outputs are probabilities
};

/// y_pred: (B, K) logits or probabilities; y_true: (B) or (B, 1) integer class ids (int64, int32,
/// or floats holding integers).  loss_i = −log p_i[y_i].
class SparseCategoricalCrossentropyLoss : public ProbabilisticLoss {
 public:
  explicit SparseCategoricalCrossentropyLoss(std::optional<bool> from_logits = std::nullopt);
  Tensor per_sample(const Tensor& y_pred, const Tensor& y_true) const override;

 protected:
  Tensor mean_loss(const Tensor& y_pred, const Tensor& y_true) const override;
};

/// y_pred: (B, K); y_true: (B, K) one-hot or probabilities.  loss_i = −Σ_k y_ik log p_ik, with y
/// smoothed to y·(1 − ls) + ls / K.
class CategoricalCrossentropyLoss : public ProbabilisticLoss {
 public:
  explicit CategoricalCrossentropyLoss(std::optional<bool> from_logits = std::nullopt,
                                       double label_smoothing = 0.0);
  Tensor per_sample(const Tensor& y_pred, const Tensor& y_true) const override;

 protected:
  json::Value config() const override;

 private:
  double label_smoothing_;
};

/// y_pred: (B), (B, 1) or (B, K) multi-label; y_true: 0/1 of the same numel per sample.
/// loss_i = mean over the last dim of −(y log p + (1 − y) log(1 − p)).
class BinaryCrossentropyLoss : public ProbabilisticLoss {
 public:
  explicit BinaryCrossentropyLoss(std::optional<bool> from_logits = std::nullopt);
  Tensor per_sample(const Tensor& y_pred, const Tensor& y_true) const override;
};

/// (y_pred − y_true)² averaged over non-batch dims.   y_pred, y_true: (B, *) (a (B) target matches
/// (B, 1))
class MeanSquaredErrorLoss : public Loss {
 public:
  MeanSquaredErrorLoss() : Loss("MeanSquaredError", "mean_squared_error") {}
  Tensor per_sample(const Tensor& y_pred, const Tensor& y_true) const override;
};

/// |y_pred − y_true| averaged over non-batch dims.
class MeanAbsoluteErrorLoss : public Loss {
 public:
  MeanAbsoluteErrorLoss() : Loss("MeanAbsoluteError", "mean_absolute_error") {}
  Tensor per_sample(const Tensor& y_pred, const Tensor& y_true) const override;
};

/// 0.5·d² for |d| ≤ delta, delta·(|d| − 0.5·delta) beyond, averaged over non-batch dims.
class HuberLoss : public Loss {
 public:
  explicit HuberLoss(double delta = 1.0);
  Tensor per_sample(const Tensor& y_pred, const Tensor& y_true) const override;

 protected:
  json::Value config() const override;

 private:
  double delta_;
};

// Factories (Keras' class names).
std::shared_ptr<SparseCategoricalCrossentropyLoss> SparseCategoricalCrossentropy(
    std::optional<bool> from_logits = std::nullopt);
std::shared_ptr<CategoricalCrossentropyLoss> CategoricalCrossentropy(
    std::optional<bool> from_logits = std::nullopt, double label_smoothing = 0.0);
std::shared_ptr<BinaryCrossentropyLoss> BinaryCrossentropy(
    std::optional<bool> from_logits = std::nullopt);
std::shared_ptr<MeanSquaredErrorLoss> MeanSquaredError();
std::shared_ptr<MeanAbsoluteErrorLoss> MeanAbsoluteError();
std::shared_ptr<HuberLoss> Huber(double delta = 1.0);

/// The loss a string names: "sparse_categorical_crossentropy", "categorical_crossentropy",
/// "binary_crossentropy", "mse" / "mean_squared_error", "mae" / "mean_absolute_error", "huber".
/// Throws listing the names otherwise.
LossPtr get(const std::string& name);
/// Rebuilds a loss from Loss::serialize() output.
LossPtr deserialize(const json::Value& spec);

}  // namespace kiln::losses
