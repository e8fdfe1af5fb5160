#pragma once
// What the automl searches share around Kiln's trainers (private to kiln/automl: not installed).
#include <cstdint>

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

/// A one-output regression layer trained on the standardised target t = (y − mean) / std made to
/// predict y itself: W ← std·W, b ← std·b + mean (so model.onnx answers in the label's units).
void unstandardize_output(nn::Linear& last, double y_std, double y_mean);

}  // namespace kiln::automl::detail
