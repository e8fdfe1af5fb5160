#pragma once
// gradcheck: compares the analytical gradient (backward) of fn with central finite differences.
// Use float64 inputs; keep them away from kinks (relu at 0, abs at 0, max ties).
//
//   auto r = kiln::gradcheck([](const std::vector<Tensor>& in) { return kiln::tanh(in[0]); },
//                            {kiln::randn({3, 4}, kFloat64).requires_grad_()});
//   EXPECT_TRUE(r.ok) << r.message;
#include <functional>
#include <string>
#include <vector>

#include "kiln/autograd/tensor.h"

namespace kiln {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-5;  // |analytical − numerical| <= atol + rtol·|numerical|
  double rtol = 1e-3;
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // the first mismatch: input, element, both values
  double max_abs_error = 0;
  int64_t checked = 0;  // Jacobian entries compared
};

/// Checks d fn(inputs) / d inputs[i] for every input with requires_grad. fn may return any shape:
/// each output element is back-propagated separately (full Jacobian), so keep tensors small.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace kiln
