#include "kiln/nn/loss.h"

#include "kiln/tensor/error.h"

namespace kiln::nn {
namespace functional {
namespace {

void check_reduction(const std::string& reduction, const char* op) {
  KILN_CHECK(reduction == "mean" || reduction == "sum" || reduction == "none",
             "{}: reduction must be \"mean\", \"sum\" or \"none\", got \"{}\"", op, reduction);
}

Tensor reduce(const Tensor& loss, const std::string& reduction, const char* op) {
  check_reduction(reduction, op);
  if (reduction == "mean") return mean(loss);
  if (reduction == "sum") return sum(loss);
  return loss;
}

// Elementwise losses compare tensors of one shape: broadcasting (B, 1) against (B) would silently
// compute a (B, B) loss, a classic bug, so it is an error here.
void check_same_shape(const Tensor& input, const Tensor& target, const char* op) {
  KILN_CHECK_SHAPE(input.defined() && target.defined(), "{}: input and target must be defined", op);
  KILN_CHECK_SHAPE(
      input.shape() == target.shape(),
      "{}: input {} and target {} differ (they must have the same shape; reshape the target)", op,
      input.shape(), target.shape());
  KILN_CHECK_TYPE(is_floating(input.dtype()), "{}: input must be floating point, got {}", op,
                  input.dtype());
}

// Integer / bool targets are accepted for convenience and converted to the input's dtype.
Tensor as_float(const Tensor& target, const Tensor& like) {
  return target.dtype() == like.dtype() ? target : target.to(like.dtype());
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight,
                     int64_t ignore_index, double label_smoothing, const std::string& reduction) {
  check_reduction(reduction, "cross_entropy");
  KILN_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0,
             "cross_entropy: label_smoothing must be in [0, 1], got {}", label_smoothing);
  if (!is_floating(target.dtype()))
    return kiln::cross_entropy(logits, target, weight, ignore_index, label_smoothing, reduction);

  // Class-probability targets: −Σ_k w_k·q_k·log softmax(x)_k over the class dim (1).
  KILN_CHECK_SHAPE(
      logits.shape() == target.shape(),
      "cross_entropy: probability targets must have the logits' shape: logits {} vs target {}",
      logits.shape(), target.shape());
  KILN_CHECK_SHAPE(logits.dim() >= 2, "cross_entropy: logits must be (B, K[, *]), got shape {}",
                   logits.shape());
  const int64_t K = logits.size(1);
  Tensor q =
      label_smoothing > 0 ? add(mul(target, 1.0 - label_smoothing), label_smoothing / K) : target;
  Tensor per_class = mul(log_softmax(logits, 1), q);
  if (weight.defined()) {
    KILN_CHECK_SHAPE(weight.dim() == 1 && weight.size(0) == K,
                     "cross_entropy: weight {} must be (K) = [{}]", weight.shape(), K);
    Shape ws(static_cast<size_t>(logits.dim()), 1);
    ws[1] = K;
    per_class = mul(per_class, weight.reshape(ws));
  }
  return reduce(neg(sum(per_class, {1})), reduction, "cross_entropy");
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const Tensor& weight,
                int64_t ignore_index, const std::string& reduction) {
  check_reduction(reduction, "nll_loss");
  return kiln::nll_loss(log_probs, target, weight, ignore_index, reduction);
}

Tensor binary_cross_entropy(const Tensor& probs, const Tensor& target, const Tensor& weight,
                            const std::string& reduction) {
  check_same_shape(probs, target, "binary_cross_entropy");
  Tensor y = as_float(target, probs);
  // log clamped at −100 so p = 0 or 1 gives a finite loss (and gradient), as PyTorch.
  Tensor log_p = clamp(log(probs), -100.0, 0.0);
  Tensor log_1mp = clamp(log(rsub(probs, 1.0)), -100.0, 0.0);
  Tensor loss = neg(add(mul(y, log_p), mul(rsub(y, 1.0), log_1mp)));
  if (weight.defined()) loss = mul(loss, weight);
  return reduce(loss, reduction, "binary_cross_entropy");
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        const Tensor& weight, const Tensor& pos_weight,
                                        const std::string& reduction) {
  check_same_shape(logits, target, "binary_cross_entropy_with_logits");
  Tensor y = as_float(target, logits);
  // softplus(−x) = log(1 + e^(−x)) = m + log(e^(−m) + e^(−x−m)), m = max(−x, 0): no exp overflows.
  Tensor m = relu(neg(logits));
  Tensor softplus_neg = add(log(add(exp(neg(m)), exp(sub(neg(logits), m)))), m);
  Tensor loss;
  if (pos_weight.defined()) {
    Tensor log_weight = add(mul(add(pos_weight, -1.0), y), 1.0);  // 1 + (pw − 1)·y
    loss = add(mul(rsub(y, 1.0), logits), mul(log_weight, softplus_neg));
  } else {
    loss = add(mul(rsub(y, 1.0), logits), softplus_neg);
  }
  if (weight.defined()) loss = mul(loss, weight);
  return reduce(loss, reduction, "binary_cross_entropy_with_logits");
}

Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction) {
  check_same_shape(input, target, "mse_loss");
  return reduce(square(sub(input, as_float(target, input))), reduction, "mse_loss");
}

Tensor l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction) {
  check_same_shape(input, target, "l1_loss");
  return reduce(abs(sub(input, as_float(target, input))), reduction, "l1_loss");
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, double beta,
                      const std::string& reduction) {
  check_same_shape(input, target, "smooth_l1_loss");
  KILN_CHECK(beta >= 0, "smooth_l1_loss: beta must be >= 0, got {}", beta);
  Tensor z = abs(sub(input, as_float(target, input)));
  if (beta == 0.0) return reduce(z, reduction, "smooth_l1_loss");
  Tensor loss = where(lt(z, beta), mul(square(z), 0.5 / beta), add(z, -0.5 * beta));
  return reduce(loss, reduction, "smooth_l1_loss");
}

Tensor huber_loss(const Tensor& input, const Tensor& target, double delta,
                  const std::string& reduction) {
  check_same_shape(input, target, "huber_loss");
  KILN_CHECK(delta > 0, "huber_loss: delta must be > 0, got {}", delta);
  Tensor z = abs(sub(input, as_float(target, input)));
  Tensor loss = where(lt(z, delta), mul(square(z), 0.5), mul(add(z, -0.5 * delta), delta));
  return reduce(loss, reduction, "huber_loss");
}

Tensor cosine_embedding_loss(const Tensor& x1, const Tensor& x2, const Tensor& target,
                             double margin, const std::string& reduction) {
  KILN_CHECK_SHAPE(
      x1.defined() && x2.defined() && x1.shape() == x2.shape() && (x1.dim() == 1 || x1.dim() == 2),
      "cosine_embedding_loss: x1 and x2 must both be (B, D) or (D), got {} and {}",
      x1.defined() ? shape_str(x1.shape()) : "undefined",
      x2.defined() ? shape_str(x2.shape()) : "undefined");
  KILN_CHECK_SHAPE(target.defined() && target.dim() == x1.dim() - 1 &&
                       (x1.dim() == 1 || target.size(0) == x1.size(0)),
                   "cosine_embedding_loss: target must be (B) for inputs (B, D) or () for (D): "
                   "inputs {}, target {}",
                   x1.shape(), target.defined() ? shape_str(target.shape()) : "undefined");
  // cos = Σ x1·x2 / √((Σ x1² + ε)(Σ x2² + ε)), ε = 1e−12 as PyTorch.
  constexpr double kEps = 1e-12;
  const int64_t d = x1.dim() - 1;
  Tensor prod = sum(mul(x1, x2), {d});
  Tensor mag = sqrt(mul(add(sum(square(x1), {d}), kEps), add(sum(square(x2), {d}), kEps)));
  Tensor cos = div(prod, mag);
  Tensor y = target.to(x1.dtype());
  Tensor zero = zeros_like(cos);
  Tensor pos = where(eq(y, 1.0), rsub(cos, 1.0), zero);
  Tensor neg_part = where(eq(y, -1.0), relu(add(cos, -margin)), zero);
  return reduce(add(pos, neg_part), reduction, "cosine_embedding_loss");
}

}  // namespace functional

// ---------------------------------------------------------------- modules

Loss::Loss(std::string type_name, std::string reduction)
    : Module(std::move(type_name)), reduction_(std::move(reduction)) {
  KILN_CHECK(reduction_ == "mean" || reduction_ == "sum" || reduction_ == "none",
             "{}: reduction must be \"mean\", \"sum\" or \"none\", got \"{}\"", name(), reduction_);
}

Tensor Loss::forward(const std::vector<Tensor>& inputs) {
  KILN_CHECK(inputs.size() == 2, "{}: expected inputs {{input, target}}, got {} tensors", where(),
             inputs.size());
  return forward(inputs[0], inputs[1]);
}

std::string Loss::extra_repr() const {
  return reduction_ == "mean" ? "" : "reduction=" + reduction_;
}

CrossEntropyLoss::CrossEntropyLoss(CrossEntropyLossOptions options)
    : Loss("CrossEntropyLoss", options.reduction()), options_(std::move(options)) {}
Tensor CrossEntropyLoss::forward(const Tensor& input, const Tensor& target) {
  return functional::cross_entropy(input, target, options_.weight(), options_.ignore_index(),
                                   options_.label_smoothing(), reduction_);
}

NLLLoss::NLLLoss(NLLLossOptions options)
    : Loss("NLLLoss", options.reduction()), options_(std::move(options)) {}
Tensor NLLLoss::forward(const Tensor& input, const Tensor& target) {
  return functional::nll_loss(input, target, options_.weight(), options_.ignore_index(),
                              reduction_);
}

BCELoss::BCELoss(BCELossOptions options)
    : Loss("BCELoss", options.reduction()), options_(std::move(options)) {}
Tensor BCELoss::forward(const Tensor& input, const Tensor& target) {
  return functional::binary_cross_entropy(input, target, options_.weight(), reduction_);
}

BCEWithLogitsLoss::BCEWithLogitsLoss(BCEWithLogitsLossOptions options)
    : Loss("BCEWithLogitsLoss", options.reduction()), options_(std::move(options)) {}
Tensor BCEWithLogitsLoss::forward(const Tensor& input, const Tensor& target) {
  return functional::binary_cross_entropy_with_logits(input, target, options_.weight(),
                                                      options_.pos_weight(), reduction_);
}

Tensor MSELoss::forward(const Tensor& input, const Tensor& target) {
  return functional::mse_loss(input, target, reduction_);
}

Tensor L1Loss::forward(const Tensor& input, const Tensor& target) {
  return functional::l1_loss(input, target, reduction_);
}

SmoothL1Loss::SmoothL1Loss(SmoothL1LossOptions options)
    : Loss("SmoothL1Loss", options.reduction()), options_(std::move(options)) {}
Tensor SmoothL1Loss::forward(const Tensor& input, const Tensor& target) {
  return functional::smooth_l1_loss(input, target, options_.beta(), reduction_);
}

HuberLoss::HuberLoss(HuberLossOptions options)
    : Loss("HuberLoss", options.reduction()), options_(std::move(options)) {}
Tensor HuberLoss::forward(const Tensor& input, const Tensor& target) {
  return functional::huber_loss(input, target, options_.delta(), reduction_);
}

CosineEmbeddingLoss::CosineEmbeddingLoss(CosineEmbeddingLossOptions options)
    : Module("CosineEmbeddingLoss"), options_(std::move(options)) {}
Tensor CosineEmbeddingLoss::forward(const std::vector<Tensor>& inputs) {
  KILN_CHECK(inputs.size() == 3, "{}: expected inputs {{x1, x2, y}}, got {} tensors", where(),
             inputs.size());
  return forward(inputs[0], inputs[1], inputs[2]);
}
Tensor CosineEmbeddingLoss::forward(const Tensor& x1, const Tensor& x2, const Tensor& y) {
  return functional::cosine_embedding_loss(x1, x2, y, options_.margin(), options_.reduction());
}
std::string CosineEmbeddingLoss::extra_repr() const {
  return fmt::format("margin={}", options_.margin());
}

}  // namespace kiln::nn
