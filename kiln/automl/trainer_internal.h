#pragma once
// What the automl searches share around Kiln's trainers (private to kiln/automl: not installed).
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "kiln/automl/tuner.h"
#include "kiln/nn/linear.h"
#include "kiln/train/callbacks.h"

namespace kiln::automl::detail {

/// Thrown by DeadlineCallback: a fine-tuning trial unwinds out of fit() and is reported as stopped.
struct DeadlinePassed {};

/// Ends a trainer's fit() at the first batch that finishes past the deadline, by throwing
/// DeadlinePassed (the text trainers build their Model inside fit(), so stop_training cannot reach
/// it from outside).
class DeadlineCallback : public callbacks::Callback {
 public:
  explicit DeadlineCallback(Deadline d) : deadline_(d) {}
  void on_batch_end(int64_t batch, Logs& logs) override {
    (void)batch, (void)logs;
    if (deadline_.passed()) throw DeadlinePassed{};
  }

 private:
  Deadline deadline_;
};

/// SearchOptions::reserve_s for a search that refits its winner on all rows: it holds back the
/// refit's predicted time (predict(best trial) seconds) while that fits in what was left of the
/// budget when the trial became the best, and 1 s otherwise. A refit that would not fit is then
/// skipped — the best trial's own model is the result — instead of stopping the search early for
/// a refit the budget cuts anyway (a 130 s fine-tuning trial would hold back ~200 s).
class RefitReserve {
 public:
  RefitReserve(std::chrono::steady_clock::time_point budget_end,
               std::function<double(const TrialRecord&)> predict)
      : end_(budget_end), predict_(std::move(predict)) {}
  double operator()(const TrialRecord* best);
  /// Whether the current best trial's refit was judged to fit (false before any best).
  bool refit_fits() const { return fits_; }
  /// The predicted refit time of the current best trial (0 before any best).
  double predicted() const { return predicted_; }
  /// The seconds left in the budget when that judgement was made.
  double left_then() const { return left_; }

 private:
  std::chrono::steady_clock::time_point end_;
  std::function<double(const TrialRecord&)> predict_;
  int trial_ = -1;
  bool fits_ = false;
  double predicted_ = 0, left_ = 0;
};

/// The predicted class of each row of (N, K) probabilities (the first of equal maxima).
inline std::vector<int64_t> argmax_rows(const Tensor& p) {
  return p.argmax(1).to_vector<int64_t>();
}

/// A one-output regression layer trained on the standardised target t = (y − mean) / std made to
/// predict y itself: W ← std·W, b ← std·b + mean (so model.onnx answers in the label's units).
void unstandardize_output(nn::Linear& last, double y_std, double y_mean);

}  // namespace kiln::automl::detail
