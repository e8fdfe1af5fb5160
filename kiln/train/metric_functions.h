#pragma once
// Metrics of finished predictions as plain functions (namespace kiln::metrics), for evaluating a
// trained model on a whole table at once: the confusion matrix and ML.NET's multiclass summary
// (micro / macro accuracy, macro F1, log-loss and its reduction), and the correlations of a
// regression. The streaming metrics that fit() updates batch by batch are in metrics.h; where both
// compute one quantity they agree (accuracy() on a confusion matrix equals AccuracyMetric's result
// over the same predictions; the mean squared error is ErrorMetric's, see MeanSquaredError()).
//
//   const auto c = kiln::metrics::confusion_matrix(y_true, y_pred, K);  // [true][predicted]
//   double f1 = kiln::metrics::macro_f1(c);
//
// Legend: N = rows, K = classes.
#include <cstdint>
#include <span>
#include <vector>

namespace kiln::metrics {

/// Counts of (true class, predicted class) pairs: c[t][p], (K, K).
using ConfusionMatrix = std::vector<std::vector<int64_t>>;

/// The confusion matrix of class ids y_true, y_pred (N each, ids in [0, K)). Throws naming the row
/// when an id is out of range or the sizes differ.
ConfusionMatrix confusion_matrix(std::span<const int64_t> y_true, std::span<const int64_t> y_pred,
                                 int64_t num_classes);

/// Micro accuracy: Σ_k c[k][k] / N, the fraction of rows predicted right (0 when N = 0).
double accuracy(const ConfusionMatrix& c);

/// Macro accuracy (ML.NET's MacroAccuracy, scikit-learn's balanced_accuracy_score): the mean over
/// the classes present in y_true (row sum > 0) of per-class recall c[k][k] / Σ_j c[k][j]; 0 when
/// no class is present.
double macro_accuracy(const ConfusionMatrix& c);

/// Macro F1: the mean over all K classes of F1_k = 2·c[k][k] / (row_k + col_k) (= 2PR / (P + R),
/// written with counts so it is one rounding), 0 for a class neither present nor predicted
/// (scikit-learn's f1_score(average="macro", labels=range(K), zero_division=0)).
double macro_f1(const ConfusionMatrix& c);

/// Log-loss: the mean over rows of −ln p_i(y_i), each probability clamped to [1e-15, 1] (a zero
/// probability costs ln 1e15 ≈ 34.5, not infinity).   probs: (N, K) row-major   y_true: (N) in
/// [0, K).
double log_loss(std::span<const float> probs, std::span<const int64_t> y_true);

/// The log-loss of always predicting the data's class prior: −Σ_k q_k ln q_k with q_k = row_k / N,
/// the entropy of the true classes (0 when N = 0).
double prior_log_loss(const ConfusionMatrix& c);

/// ML.NET's LogLossReduction: 1 − log_loss / prior_log_loss, the improvement over predicting the
/// prior (1 is perfect, 0 no better than the prior, negative worse); 0 when the prior's log-loss
/// is 0 (one class only).
double log_loss_reduction(double log_loss, double prior_log_loss);

/// Pearson's r of x and y (same size >= 2): Σ(x − x̄)(y − ȳ) / √(Σ(x − x̄)² · Σ(y − ȳ)²); 0 when
/// either is constant.
double pearson_correlation(std::span<const double> x, std::span<const double> y);

/// Spearman's ρ: Pearson's r of the 1-based ranks, tied values sharing their mean rank.
double spearman_correlation(std::span<const double> x, std::span<const double> y);

}  // namespace kiln::metrics
