// optim::make_optimizer: classes by name, defaults overridden, then each group's own options.
#include <gtest/gtest.h>

#include "kiln/autograd/functions.h"
#include "kiln/optim/factory.h"
#include "kiln/tensor/error.h"

namespace kiln::optim {
namespace {

TEST(MakeOptimizer, OverridesDefaultsThenGroupOptions) {
  Tensor w = zeros({2, 2}), b = zeros({2});
  auto opt = make_optimizer(
      "Adam", {ParamGroup{{{"w", w}}, {}}, ParamGroup{{{"b", b}}, {{"weight_decay", 0.0}}}},
      {{"lr", 0.01}, {"eps", 1e-7}, {"weight_decay", 0.1}});
  EXPECT_EQ(opt->name(), "Adam");
  EXPECT_DOUBLE_EQ(opt->defaults().get("eps"), 1e-7);
  EXPECT_DOUBLE_EQ(opt->option(0, "weight_decay"), 0.1);
  EXPECT_DOUBLE_EQ(opt->option(1, "weight_decay"), 0.0);
  EXPECT_DOUBLE_EQ(opt->option(1, "lr"), 0.01);
  EXPECT_DOUBLE_EQ(default_options("AdamW").get("weight_decay"), 1e-2);  // PyTorch's
  for (const std::string& name : optimizer_names())
    EXPECT_EQ(make_optimizer(name, {ParamGroup{{{"w", w}}, {}}})->name(), name);
}

TEST(MakeOptimizer, UnknownNamesAndBadValuesThrow) {
  Tensor w = zeros({2});
  EXPECT_THROW(make_optimizer("Adamax", {ParamGroup{{{"w", w}}, {}}}), Error);
  EXPECT_THROW(make_optimizer("SGD", {ParamGroup{{{"w", w}}, {}}}, {{"beta1", 0.9}}), Error);
  EXPECT_THROW(make_optimizer("SGD", {ParamGroup{{{"w", w}}, {}}}, {{"nesterov", 1.0}}),
               Error);  // nesterov needs momentum
  EXPECT_THROW(make_optimizer("Adam", {ParamGroup{{{"w", w}}, {}}}, {{"lr", -1.0}}), Error);
}

}  // namespace
}  // namespace kiln::optim
