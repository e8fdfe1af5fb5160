// Runs every registered gradcheck case, checks that each records the op it names, and that every
// declared differentiable op (kiln/autograd/op_registry.h) has a case.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "autograd/gradcheck_registry.h"
#include "kiln/autograd/op.h"
#include "kiln/autograd/op_registry.h"
#include "kiln/tensor/creation.h"

namespace kiln::testing {

std::vector<GradcheckCase>& gradcheck_cases() {
  static std::vector<GradcheckCase> cases;
  return cases;
}

Tensor leaf(const Shape& shape, uint64_t seed, double lo, double hi) {
  Generator g(seed);
  return Tensor(kernels::rand(shape, lo, hi, kFloat64, &g), true);
}

TEST(GradcheckTable, EveryCasePasses) {
  ASSERT_FALSE(gradcheck_cases().empty());
  for (const GradcheckCase& c : gradcheck_cases()) {
    SCOPED_TRACE(c.op + " / " + c.label);
    GradcheckResult r = gradcheck(c.fn, c.inputs(), c.options);
    EXPECT_TRUE(r.ok) << c.op << " (" << c.label << "): " << r.message;
    EXPECT_GT(r.checked, 0) << c.op << " (" << c.label << ") compared no Jacobian entries";
  }
}

// The ops a case's function records, traced on its own inputs.
std::set<std::string> traced_ops(const GradcheckCase& c) {
  std::set<std::string> names;
  Tracer tracer;
  c.fn(c.inputs());
  for (const TraceEvent& e : tracer.events()) names.insert(e.name);
  return names;
}

std::string joined(const std::set<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// A case's op name is what its function really records: tracing it must show that op.
TEST(GradcheckTable, EveryCaseRecordsTheOpItNames) {
  for (const GradcheckCase& c : gradcheck_cases()) {
    const std::set<std::string> traced = traced_ops(c);
    EXPECT_TRUE(traced.count(c.op)) << "case '" << c.op << " / " << c.label << "' records ["
                                    << joined(traced) << "], not '" << c.op << "'";
  }
}

// Every op declared differentiable (OpDeclarations in kiln/autograd/ops, collected at static
// initialisation, whether or not a test runs the op) has a case, and every case names a declared
// differentiable op. tests/op_registry_check.cpp holds the declarations complete: every suite
// fails when it records an op that is not declared.
TEST(GradcheckTable, EveryOpHasACase) {
  std::set<std::string> covered;
  for (const GradcheckCase& c : gradcheck_cases()) covered.insert(c.op);
  const std::map<std::string, bool> declared = declared_op_names();
  size_t differentiable = 0;
  for (const auto& [op, d] : declared) {
    if (!d) continue;
    ++differentiable;
    EXPECT_TRUE(covered.count(op)) << "op '" << op << "' has no gradcheck case";
  }
  ASSERT_GT(differentiable, 50u)
      << "too few declared ops: are kiln/autograd/ops' OpDeclarations linked?";
  for (const std::string& op : covered) {
    const auto it = declared.find(op);
    EXPECT_TRUE(it != declared.end() && it->second)
        << "gradcheck case for '" << op << "', which no ops file declares differentiable";
  }
}

}  // namespace kiln::testing
