#pragma once
// Loss functions: functional forms (namespace kiln::nn::functional) and modules. reduction is
// "mean" (default), "sum" or "none" (per-element losses, shaped like the input without the class
// dim). Composites of differentiable ops, except cross_entropy / nll_loss, which call the fused
// ops. Legend: B = batch, K = classes, D = features, * = any further dims.
#include <string>

#include "kiln/nn/module.h"
#include "kiln/nn/options.h"

namespace kiln::nn {
namespace functional {

/// −Σ_k q_k log softmax(x)_k with q = one-hot(target) smoothed by label_smoothing (Szegedy et al.,
/// 2016).
///   logits: (B, K) or (B, K, *)  target: int64 (B) or (B, *)  weight: (K) or undefined
/// Targets equal to ignore_index contribute nothing; "mean" divides by the summed weights of the
/// rest. A floating target shaped like the logits is read as class probabilities (PyTorch ≥ 1.10);
/// "mean" then divides by the number of rows.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight = {},
                     int64_t ignore_index = -100, double label_smoothing = 0.0,
                     const std::string& reduction = "mean");
/// −w[y]·log_probs[y].   log_probs: (B, K)  target: int64 (B)  weight: (K) or undefined
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const Tensor& weight = {},
                int64_t ignore_index = -100, const std::string& reduction = "mean");
/// −w·(y·log p + (1 − y)·log(1 − p)), each log clamped at −100 as PyTorch.   p, y: (*) same shape,
/// p in [0, 1]  weight: broadcastable to (*) or undefined
Tensor binary_cross_entropy(const Tensor& probs, const Tensor& target, const Tensor& weight = {},
                            const std::string& reduction = "mean");
/// BCE on logits, in the stable form (1 − y)·x + (1 + (pw − 1)·y)·(log(1 + e^(−|x|)) + max(−x, 0)).
///   logits, target: (*) same shape  weight: broadcastable to (*)  pos_weight: broadcastable to
///   (*), usually (K) for the last dim — weights the positive term (pw > 1 raises recall)
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        const Tensor& weight = {}, const Tensor& pos_weight = {},
                                        const std::string& reduction = "mean");
/// (x − y)².   x, y: (*) same shape
Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean");
/// |x − y|.   x, y: (*) same shape
Tensor l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean");
/// 0.5·d²/beta if |d| < beta else |d| − 0.5·beta, d = x − y (beta = 0 gives L1).
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, double beta = 1.0,
                      const std::string& reduction = "mean");
/// 0.5·d² if |d| <= delta else delta·(|d| − 0.5·delta) (= beta·smooth_l1 with beta = delta).
Tensor huber_loss(const Tensor& input, const Tensor& target, double delta = 1.0,
                  const std::string& reduction = "mean");
/// 1 − cos(x1, x2) where y = 1; max(0, cos(x1, x2) − margin) where y = −1.
///   x1, x2: (B, D) or (D)  y: (B) or () with values ±1
Tensor cosine_embedding_loss(const Tensor& x1, const Tensor& x2, const Tensor& target,
                             double margin = 0.0, const std::string& reduction = "mean");

}  // namespace functional

/// Base of the loss modules: forward(input, target); forward({input, target}) also works.
class Loss : public Module {
 public:
  using Module::forward;
  using Module::operator();
  virtual Tensor forward(const Tensor& input, const Tensor& target) = 0;
  /// inputs = {input, target}.
  Tensor forward(const std::vector<Tensor>& inputs) override;
  Tensor operator()(const Tensor& input, const Tensor& target) { return forward(input, target); }
  std::string extra_repr() const override;

 protected:
  Loss(std::string type_name, std::string reduction);
  std::string reduction_;
};

struct CrossEntropyLossOptions {
  /// Class weights (K) or undefined.
  KILN_ARG(Tensor, weight);
  KILN_ARG(int64_t, ignore_index) = -100;
  KILN_ARG(double, label_smoothing) = 0.0;
  KILN_ARG(std::string, reduction) = "mean";
};
/// functional::cross_entropy. input: logits (B, K[, *]); target: int64 class ids (B[, *]).
class CrossEntropyLoss : public Loss {
 public:
  using Loss::forward;
  explicit CrossEntropyLoss(CrossEntropyLossOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target) override;

 private:
  CrossEntropyLossOptions options_;
};

struct NLLLossOptions {
  KILN_ARG(Tensor, weight);
  KILN_ARG(int64_t, ignore_index) = -100;
  KILN_ARG(std::string, reduction) = "mean";
};
/// functional::nll_loss. input: log-probabilities (B, K); target: int64 (B).
class NLLLoss : public Loss {
 public:
  using Loss::forward;
  explicit NLLLoss(NLLLossOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target) override;

 private:
  NLLLossOptions options_;
};

struct BCELossOptions {
  KILN_ARG(Tensor, weight);
  KILN_ARG(std::string, reduction) = "mean";
};
/// functional::binary_cross_entropy. input: probabilities in [0, 1].
class BCELoss : public Loss {
 public:
  using Loss::forward;
  explicit BCELoss(BCELossOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target) override;

 private:
  BCELossOptions options_;
};

struct BCEWithLogitsLossOptions {
  KILN_ARG(Tensor, weight);
  KILN_ARG(Tensor, pos_weight);
  KILN_ARG(std::string, reduction) = "mean";
};
/// functional::binary_cross_entropy_with_logits (sigmoid + BCE, numerically stable).
class BCEWithLogitsLoss : public Loss {
 public:
  using Loss::forward;
  explicit BCEWithLogitsLoss(BCEWithLogitsLossOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target) override;

 private:
  BCEWithLogitsLossOptions options_;
};

/// functional::mse_loss.
class MSELoss : public Loss {
 public:
  using Loss::forward;
  explicit MSELoss(std::string reduction = "mean") : Loss("MSELoss", std::move(reduction)) {}
  Tensor forward(const Tensor& input, const Tensor& target) override;
};

/// functional::l1_loss.
class L1Loss : public Loss {
 public:
  using Loss::forward;
  explicit L1Loss(std::string reduction = "mean") : Loss("L1Loss", std::move(reduction)) {}
  Tensor forward(const Tensor& input, const Tensor& target) override;
};

struct SmoothL1LossOptions {
  KILN_ARG(double, beta) = 1.0;
  KILN_ARG(std::string, reduction) = "mean";
};
/// functional::smooth_l1_loss.
class SmoothL1Loss : public Loss {
 public:
  using Loss::forward;
  explicit SmoothL1Loss(SmoothL1LossOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target) override;

 private:
  SmoothL1LossOptions options_;
};

struct HuberLossOptions {
  KILN_ARG(double, delta) = 1.0;
  KILN_ARG(std::string, reduction) = "mean";
};
/// functional::huber_loss.
class HuberLoss : public Loss {
 public:
  using Loss::forward;
  explicit HuberLoss(HuberLossOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target) override;

 private:
  HuberLossOptions options_;
};

struct CosineEmbeddingLossOptions {
  KILN_ARG(double, margin) = 0.0;
  KILN_ARG(std::string, reduction) = "mean";
};
/// functional::cosine_embedding_loss; takes three inputs: forward({x1, x2, y}) or forward(x1, x2,
/// y).
class CosineEmbeddingLoss : public Module {
 public:
  using Module::forward;
  explicit CosineEmbeddingLoss(CosineEmbeddingLossOptions options = {});
  /// inputs = {x1, x2, y}.
  Tensor forward(const std::vector<Tensor>& inputs) override;
  Tensor forward(const Tensor& x1, const Tensor& x2, const Tensor& y);
  std::string extra_repr() const override;

 private:
  CosineEmbeddingLossOptions options_;
};

}  // namespace kiln::nn
