// kiln/train/metric_functions.h against hand-computed values (and the scikit-learn / SciPy values
// they match), plus agreement with the streaming metrics of metrics.h on the same predictions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/tensor/error.h"
#include "kiln/train/metric_functions.h"
#include "kiln/train/metrics.h"

namespace kiln {
namespace {

// scikit-learn's f1_score example: y_true = [0, 1, 2, 0, 1, 2], y_pred = [0, 2, 1, 0, 0, 1].
const std::vector<int64_t> kTrue{0, 1, 2, 0, 1, 2};
const std::vector<int64_t> kPred{0, 2, 1, 0, 0, 1};

TEST(ConfusionMatrix, CountsTrueByPredicted) {
  const metrics::ConfusionMatrix c = metrics::confusion_matrix(kTrue, kPred, 3);
  EXPECT_EQ(c, (metrics::ConfusionMatrix{{2, 0, 0}, {1, 0, 1}, {0, 2, 0}}));
  // A class that never occurs still gets its row and column.
  EXPECT_EQ(metrics::confusion_matrix(kTrue, kPred, 4)[3], (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_TRUE(metrics::confusion_matrix({}, {}, 2)[0] == (std::vector<int64_t>{0, 0}));
}

TEST(ConfusionMatrix, RejectsOutOfRangeIdsAndSizeMismatch) {
  EXPECT_THROW(metrics::confusion_matrix(kTrue, kPred, 2), Error);  // class 2 with K = 2
  EXPECT_THROW(metrics::confusion_matrix(std::vector<int64_t>{-1}, std::vector<int64_t>{0}, 2),
               Error);
  EXPECT_THROW(metrics::confusion_matrix(kTrue, std::vector<int64_t>{0}, 3), Error);
}

TEST(ClassificationSummary, MatchesScikitLearnOnItsF1Example) {
  const metrics::ConfusionMatrix c = metrics::confusion_matrix(kTrue, kPred, 3);
  // accuracy_score = 2/6.
  EXPECT_DOUBLE_EQ(metrics::accuracy(c), 2.0 / 6.0);
  // balanced_accuracy_score: recalls 2/2, 0/2, 0/2 -> 1/3.
  EXPECT_DOUBLE_EQ(metrics::macro_accuracy(c), 1.0 / 3.0);
  // f1_score(average="macro") = 0.2666...: class 0 has tp 2, row 2, column 3 -> F1 = 4/5.
  EXPECT_DOUBLE_EQ(metrics::macro_f1(c), 0.8 / 3.0);
  // Every class occurs twice: the prior's log-loss is ln 3.
  EXPECT_NEAR(metrics::prior_log_loss(c), std::log(3.0), 1e-15);
}

TEST(ClassificationSummary, AbsentAndNeverPredictedClasses) {
  // K = 4, class 3 neither present nor predicted: F1 averages over all 4 classes (0 for it), the
  // macro accuracy over the 3 present ones.
  const metrics::ConfusionMatrix c4 = metrics::confusion_matrix(kTrue, kPred, 4);
  EXPECT_DOUBLE_EQ(metrics::macro_f1(c4), 0.8 / 4.0);
  EXPECT_DOUBLE_EQ(metrics::macro_accuracy(c4), 1.0 / 3.0);
  // Class 2 predicted once but never true: balanced_accuracy_score([0, 0, 1], [0, 2, 1]) = 0.75
  // (recalls 1/2 and 1/1), f1 macro = (2/3 + 1 + 0) / 3.
  const metrics::ConfusionMatrix c =
      metrics::confusion_matrix(std::vector<int64_t>{0, 0, 1}, std::vector<int64_t>{0, 2, 1}, 3);
  EXPECT_DOUBLE_EQ(metrics::macro_accuracy(c), 0.75);
  EXPECT_DOUBLE_EQ(metrics::macro_f1(c), (2.0 / 3.0 + 1.0) / 3.0);
  // Prior q = (2/3, 1/3): −(2/3 ln 2/3 + 1/3 ln 1/3) = 0.636514168.
  EXPECT_NEAR(metrics::prior_log_loss(c), 0.636514168294813, 1e-12);
  // Nothing seen: zeros, not NaN.
  const metrics::ConfusionMatrix empty = metrics::confusion_matrix({}, {}, 3);
  EXPECT_EQ(metrics::accuracy(empty), 0.0);
  EXPECT_EQ(metrics::macro_accuracy(empty), 0.0);
  EXPECT_EQ(metrics::macro_f1(empty), 0.0);
  EXPECT_EQ(metrics::prior_log_loss(empty), 0.0);
}

TEST(LogLoss, MeanNegativeLogOfTheTrueClassClampedAt1eMinus15) {
  const std::vector<float> probs{0.7f, 0.2f, 0.1f,   // true 0
                                 0.1f, 0.8f, 0.1f,   // true 1
                                 0.0f, 0.5f, 0.5f};  // true 0 with p = 0: clamped to 1e-15
  const std::vector<int64_t> y{0, 1, 0};
  // (0.356674944 + 0.223143551 + 34.538776395) / 3, from −ln 0.7, −ln 0.8 and 15 ln 10.
  EXPECT_NEAR(metrics::log_loss(probs, y), 11.706198297, 1e-6);
  EXPECT_NEAR(metrics::log_loss(std::vector<float>{0.25f, 0.75f}, std::vector<int64_t>{1}),
              0.287682072, 1e-7);
  EXPECT_THROW(metrics::log_loss(probs, std::vector<int64_t>{0, 3, 0}), Error);  // class 3 of 3
  EXPECT_THROW(metrics::log_loss(std::vector<float>{0.5f}, y), Error);           // not (N, K)
  // ML.NET's reduction: 1 − 0.5 / ln 2; 0 when the prior's log-loss is 0 (one class).
  EXPECT_NEAR(metrics::log_loss_reduction(0.5, std::log(2.0)), 0.2786524796, 1e-9);
  EXPECT_EQ(metrics::log_loss_reduction(0.5, 0.0), 0.0);
}

TEST(Correlation, PearsonAndSpearmanMatchSciPy) {
  const std::vector<double> x{1, 2, 3, 4, 5}, y{2, 4, 5, 4, 5};
  // Σdxdy = 6, Σdx² = 10, Σdy² = 6: r = 6 / √60 (scipy.stats.pearsonr: 0.7745966692).
  EXPECT_NEAR(metrics::pearson_correlation(x, y), 6.0 / std::sqrt(60.0), 1e-15);
  // Ranks of y with ties averaged: [1, 2.5, 4.5, 2.5, 4.5] -> ρ = 7 / √90 (scipy.stats.spearmanr:
  // 0.7378647874).
  EXPECT_NEAR(metrics::spearman_correlation(x, y), 7.0 / std::sqrt(90.0), 1e-15);
  EXPECT_EQ(metrics::pearson_correlation(x, std::vector<double>{1, 1, 1, 1, 1}), 0.0);
  EXPECT_THROW(metrics::pearson_correlation(x, std::vector<double>{1}), Error);
  EXPECT_THROW(metrics::spearman_correlation(x, std::vector<double>{1, 2}), Error);
}

TEST(ClassificationSummary, AgreesWithTheStreamingMetrics) {
  // One-hot scores whose argmax is kPred, fed to AccuracyMetric and the F1 ConfusionMetric.
  std::vector<float> scores(kPred.size() * 3, 0.f);
  for (size_t i = 0; i < kPred.size(); ++i) scores[i * 3 + static_cast<size_t>(kPred[i])] = 1.f;
  const Tensor y_pred = from_vector(scores, {static_cast<int64_t>(kPred.size()), 3});
  const Tensor y_true = from_vector(kTrue);
  const metrics::ConfusionMatrix c = metrics::confusion_matrix(kTrue, kPred, 3);
  auto acc = metrics::SparseCategoricalAccuracy();
  acc->update(y_pred, y_true);
  EXPECT_EQ(metrics::accuracy(c), acc->result());
  auto f1 = metrics::F1Score();
  f1->update(y_pred, y_true);
  // Same quantity; the streaming metric computes 2PR / (P + R), a few roundings more.
  EXPECT_NEAR(metrics::macro_f1(c), f1->result(), 1e-15);
}

}  // namespace
}  // namespace kiln
