#include "kiln/train/metric_functions.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kiln/tensor/error.h"

namespace kiln::metrics {

namespace {

// Row sum (true class k) and column sum (predicted class k) of a confusion matrix, as doubles.
double row_total(const ConfusionMatrix& c, size_t k) {
  double s = 0;
  for (int64_t v : c[k]) s += static_cast<double>(v);
  return s;
}
double column_total(const ConfusionMatrix& c, size_t k) {
  double s = 0;
  for (const auto& row : c) s += static_cast<double>(row[k]);
  return s;
}
double total_count(const ConfusionMatrix& c) {
  double n = 0;
  for (size_t k = 0; k < c.size(); ++k) n += row_total(c, k);
  return n;
}

// 1-based ranks, ties sharing their mean rank.
std::vector<double> mean_ranks(std::span<const double> v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double mean_rank = (static_cast<double>(i + j) / 2.0) + 1.0;
    for (size_t t = i; t <= j; ++t) r[order[t]] = mean_rank;
    i = j + 1;
  }
  return r;
}

}  // namespace

ConfusionMatrix confusion_matrix(std::span<const int64_t> y_true, std::span<const int64_t> y_pred,
                                 int64_t num_classes) {
  KILN_CHECK(y_true.size() == y_pred.size(),
             "confusion_matrix: {} true labels but {} predictions (one of each per row)",
             y_true.size(), y_pred.size());
  KILN_CHECK(num_classes >= 0, "confusion_matrix: num_classes must be >= 0, got {}", num_classes);
  const size_t K = static_cast<size_t>(num_classes);
  ConfusionMatrix c(K, std::vector<int64_t>(K, 0));
  for (size_t i = 0; i < y_true.size(); ++i) {
    KILN_CHECK(
        y_true[i] >= 0 && y_true[i] < num_classes && y_pred[i] >= 0 && y_pred[i] < num_classes,
        "confusion_matrix: row {} has true class {} and predicted class {}; class ids must "
        "lie in [0, {})",
        i, y_true[i], y_pred[i], num_classes);
    ++c[static_cast<size_t>(y_true[i])][static_cast<size_t>(y_pred[i])];
  }
  return c;
}

double accuracy(const ConfusionMatrix& c) {
  const double n = total_count(c);
  double correct = 0;
  for (size_t k = 0; k < c.size(); ++k) correct += static_cast<double>(c[k][k]);
  return n > 0 ? correct / n : 0.0;
}

double macro_accuracy(const ConfusionMatrix& c) {
  double recall_sum = 0;
  int present = 0;
  for (size_t k = 0; k < c.size(); ++k) {
    const double row = row_total(c, k);
    if (row > 0) {
      recall_sum += static_cast<double>(c[k][k]) / row;
      ++present;
    }
  }
  return present > 0 ? recall_sum / present : 0.0;
}

double macro_f1(const ConfusionMatrix& c) {
  if (c.empty()) return 0.0;
  double f1_sum = 0;
  for (size_t k = 0; k < c.size(); ++k) {
    const double tp = static_cast<double>(c[k][k]);
    const double row = row_total(c, k), col = column_total(c, k);
    f1_sum += (row + col) > 0 ? 2 * tp / (row + col) : 0.0;
  }
  return f1_sum / static_cast<double>(c.size());
}

double log_loss(std::span<const float> probs, std::span<const int64_t> y_true) {
  const size_t N = y_true.size();
  if (N == 0) return 0.0;
  KILN_CHECK(probs.size() % N == 0 && !probs.empty(),
             "log_loss: {} probabilities do not split into {} rows (probs must be (N, K))",
             probs.size(), N);
  const int64_t K = static_cast<int64_t>(probs.size() / N);
  double loss = 0;
  for (size_t i = 0; i < N; ++i) {
    const int64_t t = y_true[i];
    KILN_CHECK(t >= 0 && t < K, "log_loss: label {} of row {} is out of range for {} classes", t, i,
               K);
    const double p = probs[i * static_cast<size_t>(K) + static_cast<size_t>(t)];
    loss -= std::log(std::clamp(p, 1e-15, 1.0));
  }
  return loss / static_cast<double>(N);
}

double prior_log_loss(const ConfusionMatrix& c) {
  const double n = total_count(c);
  double prior_loss = 0;
  for (size_t k = 0; k < c.size(); ++k) {
    const double row = row_total(c, k);
    if (row > 0) {
      const double q = row / n;
      prior_loss -= q * std::log(q);
    }
  }
  return prior_loss;
}

double log_loss_reduction(double log_loss, double prior_log_loss) {
  return prior_log_loss > 0 ? 1.0 - log_loss / prior_log_loss : 0.0;
}

double pearson_correlation(std::span<const double> x, std::span<const double> y) {
  KILN_CHECK(
      x.size() == y.size() && x.size() >= 2,
      "pearson_correlation: need two equal-length series of at least 2 values, got {} and {}",
      x.size(), y.size());
  const double n = static_cast<double>(x.size());
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n;
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  if (sxx == 0.0 || syy == 0.0) return 0.0;
  return sxy / std::sqrt(sxx * syy);
}

double spearman_correlation(std::span<const double> x, std::span<const double> y) {
  KILN_CHECK(x.size() == y.size(), "spearman_correlation: sizes differ: {} vs {}", x.size(),
             y.size());
  const std::vector<double> rx = mean_ranks(x), ry = mean_ranks(y);
  return pearson_correlation(rx, ry);
}

}  // namespace kiln::metrics
