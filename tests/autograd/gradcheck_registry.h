#pragma once
// The gradcheck table: every differentiable op registers at least one case, in a file per op family
// (gradcheck_<family>.cpp). GradcheckTable.EveryCaseRecordsTheOpItNames traces each case and fails
// when its function does not record the op the case names; GradcheckTable.EveryOpHasACase fails
// when an op declared differentiable (OpDeclarations, kiln/autograd/op_registry.h) has no case;
// tests/op_registry_check.cpp fails any suite that records an undeclared op (PyTorch's OpInfo
// discipline).
#include <functional>
#include <string>
#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/gradcheck.h"

namespace kiln::testing {

struct GradcheckCase {
  std::string op;     // the name the op records (make_op's first argument)
  std::string label;  // what this case exercises
  std::function<std::vector<Tensor>()> inputs;  // float64, seeded; requires_grad on checked ones
  std::function<Tensor(const std::vector<Tensor>&)> fn;  // returns one tensor
  GradcheckOptions options = {};
};

std::vector<GradcheckCase>& gradcheck_cases();

struct RegisterGradcheck {
  explicit RegisterGradcheck(std::vector<GradcheckCase> cases) {
    for (auto& c : cases) gradcheck_cases().push_back(std::move(c));
  }
};

/// A seeded float64 leaf with values uniform in [lo, hi), requiring grad.
Tensor leaf(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0);

}  // namespace kiln::testing
