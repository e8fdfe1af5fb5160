#include "kiln/automl/trainer_internal.h"

#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"

namespace kiln::automl::detail {

double RefitReserve::operator()(const TrialRecord* best) {
  if (!best) return 1.0;
  if (best->trial != trial_) {
    trial_ = best->trial;
    predicted_ = predict_(*best);
    left_ = std::chrono::duration<double>(end_ - std::chrono::steady_clock::now()).count();
    fits_ = predicted_ + 1.0 <= left_;
  }
  return fits_ ? predicted_ + 1.0 : 1.0;
}

void unstandardize_output(nn::Linear& last, double y_std, double y_mean) {
  NoGradGuard no_grad;
  std::vector<float> w = last.weight.to_vector<float>();
  for (float& v : w) v = static_cast<float>(v * y_std);
  last.weight.copy_(from_vector(w, last.weight.shape()));
  const float b = last.bias.to_vector<float>()[0];
  last.bias.copy_(from_vector(std::vector<float>{static_cast<float>(b * y_std + y_mean)}, {1}));
}

}  // namespace kiln::automl::detail
