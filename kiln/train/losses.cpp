#include "kiln/train/losses.h"

#include "kiln/autograd/functions.h"
#include "kiln/nn/loss.h"
#include "kiln/tensor/error.h"

namespace kiln::losses {

namespace {

// Keras' clipping of probabilities before log(): backend.epsilon().
constexpr double kEps = 1e-7;

// Mean over every dim but the batch dim: (B, *) -> (B).
Tensor per_sample_mean(const Tensor& l) {
  if (l.dim() <= 1) return l;
  return mean(l.reshape({l.size(0), -1}), {1});
}

// y_true as y_pred's shape and dtype for elementwise losses ((B) matches (B, 1), as Keras
// squeezes).
Tensor match_target(const Tensor& y_pred, const Tensor& y_true, const std::string& loss) {
  KILN_CHECK_SHAPE(
      y_pred.dim() >= 1 && y_true.dim() >= 1 && y_pred.size(0) == y_true.size(0) &&
          y_pred.numel() == y_true.numel(),
      "{}: y_true {} does not match y_pred {} (same shape, or (B) against (B, 1), required)", loss,
      y_true.shape(), y_pred.shape());
  Tensor t = y_true.shape() == y_pred.shape() ? y_true : y_true.reshape(y_pred.shape());
  return t.dtype() == y_pred.dtype() ? t : t.to(y_pred.dtype());
}

// (B, *, K) predictions and (B, *) / (B, *, 1) integer targets as (N, K) rows and (N) int64 ids.
std::pair<Tensor, Tensor> sparse_rows(const Tensor& y_pred, const Tensor& y_true,
                                      const std::string& loss) {
  KILN_CHECK_SHAPE(y_pred.dim() >= 2, "{}: y_pred must be (B, K) class scores, got {}", loss,
                   y_pred.shape());
  KILN_CHECK_SHAPE(y_true.dim() >= 1 && y_true.size(0) == y_pred.size(0),
                   "{}: y_true has {} rows but y_pred has batch {} (y_true {} vs y_pred {})", loss,
                   y_true.dim() >= 1 ? y_true.size(0) : 0, y_pred.size(0), y_true.shape(),
                   y_pred.shape());
  const int64_t K = y_pred.size(-1);
  const int64_t N = y_pred.numel() / K;
  KILN_CHECK_SHAPE(y_true.numel() == N,
                   "{}: y_true {} must hold one class id per row of y_pred {} ({} ids expected: "
                   "y_pred is (B, *, K) "
                   "and y_true (B, *))",
                   loss, y_true.shape(), y_pred.shape(), N);
  Tensor t = y_true.reshape({N});
  if (t.dtype() != kInt64) t = t.to(kInt64);
  return {y_pred.reshape({N, K}), t};
}

}  // namespace

// ---------------------------------------------------------------- Loss

Tensor Loss::operator()(const Tensor& y_pred, const Tensor& y_true,
                        const Tensor& sample_weight) const {
  KILN_CHECK(y_pred.defined() && y_true.defined(), "{}: y_pred and y_true must be defined", name_);
  if (!sample_weight.defined()) return mean_loss(y_pred, y_true);
  Tensor l = per_sample(y_pred, y_true);
  KILN_CHECK_SHAPE(
      sample_weight.numel() == l.size(0),
      "{}: sample_weight has {} entries but the batch has {} samples (one weight per sample)",
      name_, sample_weight.numel(), l.size(0));
  Tensor w = sample_weight.reshape({l.size(0)});
  if (w.dtype() != l.dtype()) w = w.to(l.dtype());
  return mean(l * w);
}

Tensor Loss::mean_loss(const Tensor& y_pred, const Tensor& y_true) const {
  return mean(per_sample(y_pred, y_true));
}

json::Value Loss::serialize() const {
  json::Value s = json::Value::object();
  s["class_name"] = class_name_;
  s["name"] = name_;
  s["config"] = config();
  return s;
}

void ProbabilisticLoss::resolve_output(const std::string& output_activation) {
  if (!from_logits_) from_logits_ = output_activation != prob_activation_;
}

json::Value ProbabilisticLoss::config() const {
  json::Value c = json::Value::object();
  c["from_logits"] = from_logits_ ? json::Value(*from_logits_) : json::Value();
  return c;
}

// ---------------------------------------------------------------- cross-entropies

SparseCategoricalCrossentropyLoss::SparseCategoricalCrossentropyLoss(
    std::optional<bool> from_logits)
    : ProbabilisticLoss("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy",
                        from_logits, "softmax") {}

Tensor SparseCategoricalCrossentropyLoss::per_sample(const Tensor& y_pred,
                                                     const Tensor& y_true) const {
  auto [x, t] = sparse_rows(y_pred, y_true, name_);
  Tensor rows = from_logits() ? cross_entropy(x, t, {}, -100, 0.0, "none")
                              : nll_loss(log(clamp(x, kEps, 1.0 - kEps)), t, {}, -100, "none");
  return per_sample_mean(rows.reshape({y_pred.size(0), -1}));
}

Tensor SparseCategoricalCrossentropyLoss::mean_loss(const Tensor& y_pred,
                                                    const Tensor& y_true) const {
  auto [x, t] = sparse_rows(y_pred, y_true, name_);
  return from_logits() ? cross_entropy(x, t) : nll_loss(log(clamp(x, kEps, 1.0 - kEps)), t);
}

CategoricalCrossentropyLoss::CategoricalCrossentropyLoss(std::optional<bool> from_logits,
                                                         double label_smoothing)
    : ProbabilisticLoss("CategoricalCrossentropy", "categorical_crossentropy", from_logits,
                        "softmax"),
      label_smoothing_(label_smoothing) {
  KILN_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0,
             "categorical_crossentropy: label_smoothing must be in [0, 1], got {}",
             label_smoothing);
}

Tensor CategoricalCrossentropyLoss::per_sample(const Tensor& y_pred, const Tensor& y_true) const {
  KILN_CHECK_SHAPE(y_pred.dim() >= 2 && y_true.shape() == y_pred.shape(),
                   "{}: y_true {} must be one-hot / probability rows shaped like y_pred {} (B, K); "
                   "for integer class "
                   "ids use sparse_categorical_crossentropy",
                   name_, y_true.shape(), y_pred.shape());
  Tensor y = y_true.dtype() == y_pred.dtype() ? y_true : y_true.to(y_pred.dtype());
  const int64_t K = y_pred.size(-1);
  if (from_logits()) {
    // nn's cross-entropy over (N, K) rows with probability targets (classes in dim 1).
    Tensor rows = nn::functional::cross_entropy(y_pred.reshape({-1, K}), y.reshape({-1, K}), {},
                                                -100, label_smoothing_, "none");
    return per_sample_mean(rows.reshape(Shape(y_pred.shape().begin(), y_pred.shape().end() - 1)));
  }
  if (label_smoothing_ > 0)
    y = y * (1.0 - label_smoothing_) + label_smoothing_ / static_cast<double>(K);
  // Keras renormalises the probabilities over the class dim, then clips.
  Tensor p = y_pred / sum(y_pred, {-1}, true);
  return per_sample_mean(neg(sum(y * log(clamp(p, kEps, 1.0 - kEps)), {-1})));
}

json::Value CategoricalCrossentropyLoss::config() const {
  json::Value c = ProbabilisticLoss::config();
  c["label_smoothing"] = label_smoothing_;
  return c;
}

BinaryCrossentropyLoss::BinaryCrossentropyLoss(std::optional<bool> from_logits)
    : ProbabilisticLoss("BinaryCrossentropy", "binary_crossentropy", from_logits, "sigmoid") {}

Tensor BinaryCrossentropyLoss::per_sample(const Tensor& y_pred, const Tensor& y_true) const {
  Tensor y = match_target(y_pred, y_true, name_);
  // Probabilities are clipped to [1e-7, 1 − 1e-7] first, as Keras (nn's log clamp at −100 then
  // never acts).
  return per_sample_mean(
      from_logits()
          ? nn::functional::binary_cross_entropy_with_logits(y_pred, y, {}, {}, "none")
          : nn::functional::binary_cross_entropy(clamp(y_pred, kEps, 1.0 - kEps), y, {}, "none"));
}

// ---------------------------------------------------------------- regression

Tensor MeanSquaredErrorLoss::per_sample(const Tensor& y_pred, const Tensor& y_true) const {
  return per_sample_mean(
      nn::functional::mse_loss(y_pred, match_target(y_pred, y_true, name_), "none"));
}

Tensor MeanAbsoluteErrorLoss::per_sample(const Tensor& y_pred, const Tensor& y_true) const {
  return per_sample_mean(
      nn::functional::l1_loss(y_pred, match_target(y_pred, y_true, name_), "none"));
}

HuberLoss::HuberLoss(double delta) : Loss("Huber", "huber"), delta_(delta) {
  KILN_CHECK(delta > 0, "huber: delta must be positive, got {}", delta);
}

Tensor HuberLoss::per_sample(const Tensor& y_pred, const Tensor& y_true) const {
  return per_sample_mean(
      nn::functional::huber_loss(y_pred, match_target(y_pred, y_true, name_), delta_, "none"));
}

json::Value HuberLoss::config() const {
  json::Value c = json::Value::object();
  c["delta"] = delta_;
  return c;
}

// ---------------------------------------------------------------- factories

std::shared_ptr<SparseCategoricalCrossentropyLoss> SparseCategoricalCrossentropy(
    std::optional<bool> from_logits) {
  return std::make_shared<SparseCategoricalCrossentropyLoss>(from_logits);
}
std::shared_ptr<CategoricalCrossentropyLoss> CategoricalCrossentropy(
    std::optional<bool> from_logits, double label_smoothing) {
  return std::make_shared<CategoricalCrossentropyLoss>(from_logits, label_smoothing);
}
std::shared_ptr<BinaryCrossentropyLoss> BinaryCrossentropy(std::optional<bool> from_logits) {
  return std::make_shared<BinaryCrossentropyLoss>(from_logits);
}
std::shared_ptr<MeanSquaredErrorLoss> MeanSquaredError() {
  return std::make_shared<MeanSquaredErrorLoss>();
}
std::shared_ptr<MeanAbsoluteErrorLoss> MeanAbsoluteError() {
  return std::make_shared<MeanAbsoluteErrorLoss>();
}
std::shared_ptr<HuberLoss> Huber(double delta) {
  return std::make_shared<HuberLoss>(delta);
}

LossPtr get(const std::string& name) {
  if (name == "sparse_categorical_crossentropy") return SparseCategoricalCrossentropy();
  if (name == "categorical_crossentropy") return CategoricalCrossentropy();
  if (name == "binary_crossentropy") return BinaryCrossentropy();
  if (name == "mse" || name == "mean_squared_error") return MeanSquaredError();
  if (name == "mae" || name == "mean_absolute_error") return MeanAbsoluteError();
  if (name == "huber") return Huber();
  throw Error(
      fmt::format("losses::get: unknown loss \"{}\" (known: sparse_categorical_crossentropy, "
                  "categorical_crossentropy, binary_crossentropy, mse, mae, huber)",
                  name));
}

LossPtr deserialize(const json::Value& spec) {
  const std::string& cls = spec.at("class_name").as_string();
  const json::Value* c = spec.find("config");
  const json::Value cfg = c ? *c : json::Value::object();
  auto logits = [&]() -> std::optional<bool> {
    const json::Value* v = cfg.find("from_logits");
    if (v == nullptr || v->is_null()) return std::nullopt;
    return v->as_bool();
  };
  if (cls == "SparseCategoricalCrossentropy") return SparseCategoricalCrossentropy(logits());
  if (cls == "CategoricalCrossentropy")
    return CategoricalCrossentropy(logits(), cfg.get_or<double>("label_smoothing", 0.0));
  if (cls == "BinaryCrossentropy") return BinaryCrossentropy(logits());
  if (cls == "MeanSquaredError") return MeanSquaredError();
  if (cls == "MeanAbsoluteError") return MeanAbsoluteError();
  if (cls == "Huber") return Huber(cfg.get_or<double>("delta", 1.0));
  throw Error(fmt::format(
      "losses::deserialize: unknown loss class \"{}\" (custom losses are not saved: compile "
      "the loaded model again)",
      cls));
}

}  // namespace kiln::losses
