// Linked into every test suite above kiln/tensor (tests/CMakeLists.txt). Once the suite's tests
// have run, every op they recorded (the run-time registry, kiln/autograd/op_registry.h) must be
// declared by its ops file, and one recorded as differentiable must be declared differentiable: so
// the gradcheck table, which needs a case for every declared differentiable op, covers every op any
// test runs, including ops named through a variable or recorded from a header.
#include <gtest/gtest.h>

#include "kiln/autograd/op_registry.h"

namespace {

class OpRegistryCheck : public ::testing::Environment {
 public:
  void TearDown() override {
    const std::map<std::string, bool> declared = kiln::declared_op_names();
    for (const auto& [op, differentiable] : kiln::recorded_op_names()) {
      const auto it = declared.find(op);
      EXPECT_TRUE(it != declared.end())
          << "op '" << op << "' was recorded but is not declared: add it to the OpDeclarations "
          << "of its file under kiln/autograd/ops (and a gradcheck case if differentiable)";
      if (it != declared.end() && differentiable) {
        EXPECT_TRUE(it->second) << "op '" << op << "' was recorded as differentiable but is "
                                << "declared non-differentiable";
      }
    }
  }
};

::testing::Environment* const kOpRegistryCheck =
    ::testing::AddGlobalTestEnvironment(new OpRegistryCheck);

}  // namespace
