// Runs every registered gradcheck case, checks that each records the op it names, and that every
// differentiable op recorded at run time (kiln/autograd/op_registry.h) has a case.
#include <gtest/gtest.h>

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

// Every differentiable op recorded in this process so far (the run-time registry filled by
// make_op, kiln/autograd/op_registry.h) must be the op of some case.
void expect_every_recorded_op_has_a_case(const char* when) {
  std::set<std::string> covered;
  for (const GradcheckCase& c : gradcheck_cases()) covered.insert(c.op);
  for (const auto& [op, differentiable] : recorded_op_names()) {
    if (!differentiable) continue;
    EXPECT_TRUE(covered.count(op))
        << "op '" << op << "' was recorded (" << when << ") but has no gradcheck case";
  }
}

// A case's op name is what its function really records: tracing it must show that op.
TEST(GradcheckTable, EveryCaseRecordsTheOpItNames) {
  for (const GradcheckCase& c : gradcheck_cases()) {
    const std::set<std::string> traced = traced_ops(c);
    EXPECT_TRUE(traced.count(c.op)) << "case '" << c.op << " / " << c.label << "' records ["
                                    << joined(traced) << "], not '" << c.op << "'";
  }
}

// Checks the registry after every case ran; CoverageAtExit checks it again once every test of
// this binary has run, so an op only another test records is held to the same rule.
TEST(GradcheckTable, EveryOpHasACase) {
  for (const GradcheckCase& c : gradcheck_cases()) traced_ops(c);
  size_t differentiable = 0;
  for (const auto& [op, d] : recorded_op_names()) differentiable += d;
  ASSERT_GT(differentiable, 20u) << "the op registry saw too few ops: is make_op recording names?";
  expect_every_recorded_op_has_a_case("by a gradcheck case");
}

class CoverageAtExit : public ::testing::Environment {
 public:
  void TearDown() override { expect_every_recorded_op_has_a_case("by a test of test_autograd"); }
};
::testing::Environment* const kCoverageAtExit =
    ::testing::AddGlobalTestEnvironment(new CoverageAtExit);

}  // namespace kiln::testing
