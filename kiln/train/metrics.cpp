#include "kiln/train/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kiln/tensor/error.h"

namespace kiln::metrics {

namespace {

// Row-wise view of class scores: (N, K) values, K = last dim.
struct Rows {
  std::vector<double> v;
  int64_t n = 0, k = 0;
  double at(int64_t i, int64_t j) const { return v[static_cast<size_t>(i * k + j)]; }
  int64_t argmax(int64_t i) const {
    int64_t best = 0;
    for (int64_t j = 1; j < k; ++j)
      if (at(i, j) > at(i, best)) best = j;
    return best;
  }
};

Rows rows_of(const Tensor& y_pred) {
  Rows r;
  r.k = y_pred.dim() == 0 ? 1 : y_pred.size(-1);
  r.n = r.k == 0 ? 0 : y_pred.numel() / r.k;
  r.v = y_pred.to_vector<double>();
  return r;
}

bool is_binary_output(const Tensor& y_pred) {
  return y_pred.dim() <= 1 || y_pred.size(-1) == 1;
}

// Integer class ids, one per row of y_pred (y_true (B, *) or (B, *, 1)).
std::vector<int64_t> class_ids(const Tensor& y_true, int64_t n, const std::string& metric,
                               const Tensor& y_pred) {
  KILN_CHECK_SHAPE(y_true.numel() == n,
                   "{}: y_true {} must hold one class id per row of y_pred {} ({} expected)",
                   metric, y_true.shape(), y_pred.shape(), n);
  std::vector<double> v = y_true.to_vector<double>();
  std::vector<int64_t> ids(v.size());
  for (size_t i = 0; i < v.size(); ++i) ids[i] = static_cast<int64_t>(std::llround(v[i]));
  return ids;
}

// Binary decisions and 0/1 targets for thresholded metrics.
void binary_pairs(const Tensor& y_pred, const Tensor& y_true, double threshold,
                  const std::string& metric, std::vector<uint8_t>& pred,
                  std::vector<uint8_t>& truth) {
  KILN_CHECK_SHAPE(y_pred.numel() == y_true.numel(),
                   "{}: y_true {} does not match the binary y_pred {} (one 0/1 label per output)",
                   metric, y_true.shape(), y_pred.shape());
  std::vector<double> p = y_pred.to_vector<double>(), t = y_true.to_vector<double>();
  pred.resize(p.size());
  truth.resize(t.size());
  for (size_t i = 0; i < p.size(); ++i) {
    pred[i] = p[i] > threshold;
    truth[i] = t[i] > 0.5;
  }
}

}  // namespace

json::Value Metric::serialize() const {
  json::Value s = json::Value::object();
  s["class_name"] = class_name_;
  s["name"] = name_;
  s["config"] = config();
  return s;
}

void MeanMetric::update(const Tensor& values, const Tensor& unused) {
  (void)unused;
  for (double v : values.to_vector<double>()) update_value(v);
}

// ---------------------------------------------------------------- accuracy

AccuracyMetric::AccuracyMetric(std::string mode, std::string name)
    : Metric("Accuracy", std::move(name)), mode_(std::move(mode)) {
  KILN_CHECK(mode_ == "auto" || mode_ == "sparse" || mode_ == "categorical" || mode_ == "binary",
             "accuracy: mode must be auto, sparse, categorical or binary, got \"{}\"", mode_);
}

void AccuracyMetric::update(const Tensor& y_pred, const Tensor& y_true) {
  std::string mode = mode_;
  if (mode == "auto") {
    if (is_binary_output(y_pred)) {
      mode = "binary";
    } else {
      mode = y_true.shape() == y_pred.shape() && is_floating(y_true.dtype()) ? "categorical"
                                                                             : "sparse";
    }
  }
  if (mode == "binary") {
    std::vector<uint8_t> p, t;
    binary_pairs(y_pred, y_true, threshold(), name_, p, t);
    for (size_t i = 0; i < p.size(); ++i) correct_ += p[i] == t[i];
    total_ += static_cast<int64_t>(p.size());
    return;
  }
  KILN_CHECK_SHAPE(y_pred.dim() >= 2, "{}: y_pred must be (B, K) class scores, got {}", name_,
                   y_pred.shape());
  Rows r = rows_of(y_pred);
  if (mode == "categorical") {
    KILN_CHECK_SHAPE(y_true.shape() == y_pred.shape(),
                     "{}: one-hot y_true {} must be shaped like y_pred {}", name_, y_true.shape(),
                     y_pred.shape());
    Rows t = rows_of(y_true);
    for (int64_t i = 0; i < r.n; ++i) correct_ += r.argmax(i) == t.argmax(i);
  } else {
    std::vector<int64_t> ids = class_ids(y_true, r.n, name_, y_pred);
    for (int64_t i = 0; i < r.n; ++i) correct_ += r.argmax(i) == ids[static_cast<size_t>(i)];
  }
  total_ += r.n;
}

json::Value AccuracyMetric::config() const {
  json::Value c = json::Value::object();
  c["mode"] = mode_;
  return c;
}

TopKAccuracyMetric::TopKAccuracyMetric(int64_t k, std::string name)
    : Metric("TopKCategoricalAccuracy", std::move(name)), k_(k) {
  KILN_CHECK(k >= 1, "top_k_categorical_accuracy: k must be >= 1, got {}", k);
}

void TopKAccuracyMetric::update(const Tensor& y_pred, const Tensor& y_true) {
  KILN_CHECK_SHAPE(y_pred.dim() >= 2, "{}: y_pred must be (B, K) class scores, got {}", name_,
                   y_pred.shape());
  Rows r = rows_of(y_pred);
  std::vector<int64_t> target;
  if (y_true.shape() == y_pred.shape() && is_floating(y_true.dtype())) {
    Rows t = rows_of(y_true);
    for (int64_t i = 0; i < r.n; ++i) target.push_back(t.argmax(i));
  } else {
    target = class_ids(y_true, r.n, name_, y_pred);
  }
  for (int64_t i = 0; i < r.n; ++i) {
    const int64_t y = target[static_cast<size_t>(i)];
    if (y < 0 || y >= r.k) {
      ++total_;
      continue;
    }
    int64_t higher = 0;
    for (int64_t j = 0; j < r.k; ++j) higher += r.at(i, j) > r.at(i, y);
    correct_ += higher < k_;
    ++total_;
  }
}

json::Value TopKAccuracyMetric::config() const {
  json::Value c = json::Value::object();
  c["k"] = k_;
  return c;
}

// ---------------------------------------------------------------- precision / recall / F1

ConfusionMetric::ConfusionMetric(Kind kind, std::string name)
    : Metric(kind == Kind::Precision ? "Precision"
             : kind == Kind::Recall  ? "Recall"
                                     : "F1Score",
             std::move(name)),
      kind_(kind) {}

void ConfusionMetric::reset() {
  tp_.clear();
  fp_.clear();
  fn_.clear();
}

void ConfusionMetric::update(const Tensor& y_pred, const Tensor& y_true) {
  auto grow = [&](size_t k) {
    if (tp_.size() < k) {
      tp_.resize(k, 0);
      fp_.resize(k, 0);
      fn_.resize(k, 0);
    }
  };
  if (is_binary_output(y_pred)) {
    binary_ = true;
    grow(1);
    std::vector<uint8_t> p, t;
    binary_pairs(y_pred, y_true, threshold(), name_, p, t);
    for (size_t i = 0; i < p.size(); ++i) {
      tp_[0] += p[i] && t[i];
      fp_[0] += p[i] && !t[i];
      fn_[0] += !p[i] && t[i];
    }
    return;
  }
  binary_ = false;
  Rows r = rows_of(y_pred);
  grow(static_cast<size_t>(r.k));
  std::vector<int64_t> ids;
  if (y_true.shape() == y_pred.shape() && is_floating(y_true.dtype())) {
    Rows t = rows_of(y_true);
    for (int64_t i = 0; i < r.n; ++i) ids.push_back(t.argmax(i));
  } else {
    ids = class_ids(y_true, r.n, name_, y_pred);
  }
  for (int64_t i = 0; i < r.n; ++i) {
    const int64_t p = r.argmax(i), y = ids[static_cast<size_t>(i)];
    KILN_CHECK(y >= 0 && y < r.k, "{}: label {} is out of range for {} classes (y_pred {})", name_,
               y, r.k, y_pred.shape());
    if (p == y) {
      ++tp_[static_cast<size_t>(p)];
    } else {
      ++fp_[static_cast<size_t>(p)];
      ++fn_[static_cast<size_t>(y)];
    }
  }
}

double ConfusionMetric::result() const {
  if (tp_.empty()) return 0.0;
  auto ratio = [](int64_t a, int64_t b) {
    return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0;
  };
  double total = 0.0;
  for (size_t c = 0; c < tp_.size(); ++c) {
    const double precision = ratio(tp_[c], tp_[c] + fp_[c]);
    const double recall = ratio(tp_[c], tp_[c] + fn_[c]);
    switch (kind_) {
      case Kind::Precision:
        total += precision;
        break;
      case Kind::Recall:
        total += recall;
        break;
      case Kind::F1:
        total += precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
        break;
    }
  }
  return total / static_cast<double>(tp_.size());
}

// ---------------------------------------------------------------- AUC

void AUCMetric::update(const Tensor& y_pred, const Tensor& y_true) {
  Tensor scores = y_pred;
  if (y_pred.dim() == 2 && y_pred.size(1) == 2) scores = y_pred.select(1, 1);
  KILN_CHECK_SHAPE(is_binary_output(scores) && scores.numel() == y_true.numel(),
                   "{}: needs binary scores (B), (B, 1) or (B, 2) and 0/1 labels of the same "
                   "count, got y_pred {} "
                   "and y_true {}",
                   name_, y_pred.shape(), y_true.shape());
  std::vector<double> s = scores.to_vector<double>(), t = y_true.to_vector<double>();
  scores_.insert(scores_.end(), s.begin(), s.end());
  for (double v : t) labels_.push_back(v > 0.5);
}

double AUCMetric::result() const {
  const size_t n = scores_.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return scores_[a] > scores_[b]; });
  // Sweep thresholds from the highest score down; each group of tied scores is one ROC step, and
  // the area under it is a trapezoid: ΔFP · (TP_before + TP_after) / 2.
  double tp = 0, fp = 0, area = 0;
  for (size_t i = 0; i < n;) {
    double dtp = 0, dfp = 0;
    size_t j = i;
    for (; j < n && scores_[order[j]] == scores_[order[i]]; ++j)
      (labels_[order[j]] ? dtp : dfp) += 1;
    area += dfp * (tp + tp + dtp) / 2.0;
    tp += dtp;
    fp += dfp;
    i = j;
  }
  return tp > 0 && fp > 0 ? area / (tp * fp) : 0.0;
}

// ---------------------------------------------------------------- regression

ErrorMetric::ErrorMetric(bool squared, std::string name)
    : Metric(squared ? "MeanSquaredError" : "MeanAbsoluteError", std::move(name)),
      squared_(squared) {}

void ErrorMetric::update(const Tensor& y_pred, const Tensor& y_true) {
  KILN_CHECK_SHAPE(y_pred.numel() == y_true.numel(),
                   "{}: y_true {} does not match y_pred {} (same numel required)", name_,
                   y_true.shape(), y_pred.shape());
  std::vector<double> p = y_pred.to_vector<double>(), t = y_true.to_vector<double>();
  for (size_t i = 0; i < p.size(); ++i) {
    double d = p[i] - t[i];
    sum_ += squared_ ? d * d : std::abs(d);
  }
  count_ += static_cast<int64_t>(p.size());
}

void R2Metric::reset() {
  n_ = 0;
  sum_y_.clear();
  sum_y2_.clear();
  ss_res_.clear();
}

void R2Metric::update(const Tensor& y_pred, const Tensor& y_true) {
  KILN_CHECK_SHAPE(y_pred.numel() == y_true.numel() && y_pred.dim() >= 1 && y_pred.dim() <= 2,
                   "{}: y_pred must be (B) or (B, D) and y_true of the same numel, got {} and {}",
                   name_, y_pred.shape(), y_true.shape());
  const int64_t B = y_pred.size(0);
  const int64_t D = y_pred.dim() == 2 ? y_pred.size(1) : 1;
  if (sum_y_.empty()) {
    sum_y_.assign(static_cast<size_t>(D), 0.0);
    sum_y2_.assign(static_cast<size_t>(D), 0.0);
    ss_res_.assign(static_cast<size_t>(D), 0.0);
  }
  KILN_CHECK_SHAPE(static_cast<int64_t>(sum_y_.size()) == D,
                   "{}: y_pred has {} outputs but earlier batches had {}", name_, D, sum_y_.size());
  std::vector<double> p = y_pred.to_vector<double>(), t = y_true.to_vector<double>();
  for (int64_t i = 0; i < B; ++i)
    for (int64_t d = 0; d < D; ++d) {
      const size_t k = static_cast<size_t>(i * D + d), c = static_cast<size_t>(d);
      sum_y_[c] += t[k];
      sum_y2_[c] += t[k] * t[k];
      ss_res_[c] += (t[k] - p[k]) * (t[k] - p[k]);
    }
  n_ += B;
}

double R2Metric::result() const {
  if (n_ == 0) return 0.0;
  double total = 0.0;
  for (size_t c = 0; c < sum_y_.size(); ++c) {
    const double mean = sum_y_[c] / static_cast<double>(n_);
    const double ss_tot = sum_y2_[c] - static_cast<double>(n_) * mean * mean;
    // A constant target: R² is 1 for a perfect fit and 0 otherwise (scikit-learn's convention).
    total += ss_tot > 0 ? 1.0 - ss_res_[c] / ss_tot : (ss_res_[c] == 0 ? 1.0 : 0.0);
  }
  return total / static_cast<double>(sum_y_.size());
}

// ---------------------------------------------------------------- states for distributed fit

std::vector<double> Metric::state() const {
  throw Error(fmt::format(
      "metric '{}' ({}) cannot be combined across processes: override Metric::state() and "
      "merge_state() to use it in distributed training",
      name_, class_name_));
}

void Metric::merge_state(std::span<const double>) {
  (void)state();  // the same error
}

namespace {

// Checks a merged state's length (states come from the same metric on other ranks).
void check_state(const std::string& name, std::span<const double> s, size_t want) {
  KILN_CHECK(s.size() == want, "{}: merge_state: state has {} numbers, expected {}", name, s.size(),
             want);
}

int64_t as_count(double v) {
  return static_cast<int64_t>(std::llround(v));
}

}  // namespace

void MeanMetric::merge_state(std::span<const double> o) {
  check_state(name_, o, 2);
  sum_ += o[0];
  weight_ += o[1];
}

std::vector<double> AccuracyMetric::state() const {
  return {static_cast<double>(correct_), static_cast<double>(total_)};
}
void AccuracyMetric::merge_state(std::span<const double> o) {
  check_state(name_, o, 2);
  correct_ += as_count(o[0]);
  total_ += as_count(o[1]);
}

std::vector<double> TopKAccuracyMetric::state() const {
  return {static_cast<double>(correct_), static_cast<double>(total_)};
}
void TopKAccuracyMetric::merge_state(std::span<const double> o) {
  check_state(name_, o, 2);
  correct_ += as_count(o[0]);
  total_ += as_count(o[1]);
}

std::vector<double> ConfusionMetric::state() const {
  std::vector<double> s{binary_ ? 1.0 : 0.0, static_cast<double>(tp_.size())};
  for (const auto* v : {&tp_, &fp_, &fn_})
    for (int64_t x : *v) s.push_back(static_cast<double>(x));
  return s;
}
void ConfusionMetric::merge_state(std::span<const double> o) {
  KILN_CHECK(o.size() >= 2, "{}: merge_state: state has {} numbers, expected at least 2", name_,
             o.size());
  const size_t k = static_cast<size_t>(as_count(o[1]));
  check_state(name_, o, 2 + 3 * k);
  if (k == 0) return;  // that rank saw no batch
  if (tp_.empty()) binary_ = o[0] != 0.0;
  if (tp_.size() < k) {
    tp_.resize(k, 0);
    fp_.resize(k, 0);
    fn_.resize(k, 0);
  }
  for (size_t c = 0; c < k; ++c) {
    tp_[c] += as_count(o[2 + c]);
    fp_[c] += as_count(o[2 + k + c]);
    fn_[c] += as_count(o[2 + 2 * k + c]);
  }
}

std::vector<double> AUCMetric::state() const {
  std::vector<double> s{static_cast<double>(scores_.size())};
  s.insert(s.end(), scores_.begin(), scores_.end());
  for (uint8_t l : labels_) s.push_back(l);
  return s;
}
void AUCMetric::merge_state(std::span<const double> o) {
  KILN_CHECK(!o.empty(), "{}: merge_state: empty state", name_);
  const size_t n = static_cast<size_t>(as_count(o[0]));
  check_state(name_, o, 1 + 2 * n);
  scores_.insert(scores_.end(), o.begin() + 1, o.begin() + 1 + static_cast<std::ptrdiff_t>(n));
  for (size_t i = 0; i < n; ++i) labels_.push_back(o[1 + n + i] != 0.0);
}

std::vector<double> ErrorMetric::state() const {
  return {sum_, static_cast<double>(count_)};
}
void ErrorMetric::merge_state(std::span<const double> o) {
  check_state(name_, o, 2);
  sum_ += o[0];
  count_ += as_count(o[1]);
}

std::vector<double> R2Metric::state() const {
  std::vector<double> s{static_cast<double>(n_), static_cast<double>(sum_y_.size())};
  for (const auto* v : {&sum_y_, &sum_y2_, &ss_res_}) s.insert(s.end(), v->begin(), v->end());
  return s;
}
void R2Metric::merge_state(std::span<const double> o) {
  KILN_CHECK(o.size() >= 2, "{}: merge_state: state has {} numbers, expected at least 2", name_,
             o.size());
  const size_t d = static_cast<size_t>(as_count(o[1]));
  check_state(name_, o, 2 + 3 * d);
  if (d == 0) return;
  if (sum_y_.empty()) {
    sum_y_.assign(d, 0.0);
    sum_y2_.assign(d, 0.0);
    ss_res_.assign(d, 0.0);
  }
  KILN_CHECK(sum_y_.size() == d, "{}: merge_state: {} outputs vs {} here", name_, d, sum_y_.size());
  n_ += as_count(o[0]);
  for (size_t c = 0; c < d; ++c) {
    sum_y_[c] += o[2 + c];
    sum_y2_[c] += o[2 + d + c];
    ss_res_[c] += o[2 + 2 * d + c];
  }
}

// ---------------------------------------------------------------- factories

std::shared_ptr<AccuracyMetric> Accuracy() {
  return std::make_shared<AccuracyMetric>("auto", "accuracy");
}
std::shared_ptr<AccuracyMetric> SparseCategoricalAccuracy() {
  return std::make_shared<AccuracyMetric>("sparse", "sparse_categorical_accuracy");
}
std::shared_ptr<AccuracyMetric> CategoricalAccuracy() {
  return std::make_shared<AccuracyMetric>("categorical", "categorical_accuracy");
}
std::shared_ptr<AccuracyMetric> BinaryAccuracy() {
  return std::make_shared<AccuracyMetric>("binary", "binary_accuracy");
}
std::shared_ptr<TopKAccuracyMetric> TopKCategoricalAccuracy(int64_t k) {
  return std::make_shared<TopKAccuracyMetric>(k, "top_k_categorical_accuracy");
}
std::shared_ptr<ConfusionMetric> Precision() {
  return std::make_shared<ConfusionMetric>(ConfusionMetric::Kind::Precision, "precision");
}
std::shared_ptr<ConfusionMetric> Recall() {
  return std::make_shared<ConfusionMetric>(ConfusionMetric::Kind::Recall, "recall");
}
std::shared_ptr<ConfusionMetric> F1Score() {
  return std::make_shared<ConfusionMetric>(ConfusionMetric::Kind::F1, "f1_score");
}
std::shared_ptr<AUCMetric> AUC() {
  return std::make_shared<AUCMetric>("auc");
}
std::shared_ptr<ErrorMetric> MeanSquaredError() {
  return std::make_shared<ErrorMetric>(true, "mean_squared_error");
}
std::shared_ptr<ErrorMetric> MeanAbsoluteError() {
  return std::make_shared<ErrorMetric>(false, "mean_absolute_error");
}
std::shared_ptr<R2Metric> R2Score() {
  return std::make_shared<R2Metric>("r2_score");
}

MetricPtr get(const std::string& name) {
  MetricPtr m;
  if (name == "accuracy" || name == "acc") {
    m = Accuracy();
  } else if (name == "sparse_categorical_accuracy") {
    m = SparseCategoricalAccuracy();
  } else if (name == "categorical_accuracy") {
    m = CategoricalAccuracy();
  } else if (name == "binary_accuracy") {
    m = BinaryAccuracy();
  } else if (name == "top_k_categorical_accuracy" || name == "sparse_top_k_categorical_accuracy") {
    m = TopKCategoricalAccuracy(5);
  } else if (name == "precision") {
    m = Precision();
  } else if (name == "recall") {
    m = Recall();
  } else if (name == "f1_score" || name == "f1") {
    m = F1Score();
  } else if (name == "auc") {
    m = AUC();
  } else if (name == "mse" || name == "mean_squared_error") {
    m = MeanSquaredError();
  } else if (name == "mae" || name == "mean_absolute_error") {
    m = MeanAbsoluteError();
  } else if (name == "r2_score" || name == "r2") {
    m = R2Score();
  } else {
    throw Error(fmt::format(
        "metrics::get: unknown metric \"{}\" (known: accuracy, sparse_categorical_accuracy, "
        "categorical_accuracy, binary_accuracy, top_k_categorical_accuracy, "
        "sparse_top_k_categorical_accuracy, precision, recall, f1_score, auc, mse, mae, r2_score)",
        name));
  }
  m->set_name(name);
  return m;
}

MetricPtr deserialize(const json::Value& spec) {
  const std::string& cls = spec.at("class_name").as_string();
  const std::string name = spec.get_or<std::string>("name", "");
  const json::Value* c = spec.find("config");
  const json::Value cfg = c ? *c : json::Value::object();
  MetricPtr m;
  if (cls == "Accuracy") {
    m = std::make_shared<AccuracyMetric>(cfg.get_or<std::string>("mode", "auto"), name);
  } else if (cls == "TopKCategoricalAccuracy") {
    m = std::make_shared<TopKAccuracyMetric>(cfg.get_or<int64_t>("k", 5), name);
  } else if (cls == "Precision") {
    m = Precision();
  } else if (cls == "Recall") {
    m = Recall();
  } else if (cls == "F1Score") {
    m = F1Score();
  } else if (cls == "AUC") {
    m = AUC();
  } else if (cls == "MeanSquaredError") {
    m = MeanSquaredError();
  } else if (cls == "MeanAbsoluteError") {
    m = MeanAbsoluteError();
  } else if (cls == "R2Score") {
    m = R2Score();
  } else if (cls == "Mean") {
    m = std::make_shared<MeanMetric>(name);
  } else {
    throw Error(fmt::format(
        "metrics::deserialize: unknown metric class \"{}\" (custom metrics are not saved: "
        "compile the loaded model again)",
        cls));
  }
  if (!name.empty()) m->set_name(name);
  return m;
}

}  // namespace kiln::metrics
