// The README's first program, verbatim (tests/readme_test.py checks they stay equal).
#include "kiln/kiln.h"
using namespace kiln;

int main() {
  Tensor x = randn({64, 784});
  Tensor w = randn({10, 784}).requires_grad_();
  Tensor b = zeros({10}).requires_grad_();
  Tensor loss = mean(square(linear(x, w, b)));  // y = x·wᵀ + b
  loss.backward();                              // w.grad(): (10, 784), b.grad(): (10)
  fmt::print("{}\n", to_string(b.grad()));
}
