#include "kiln/optim/factory.h"

#include <utility>

#include "kiln/autograd/functions.h"
#include "kiln/optim/adagrad.h"
#include "kiln/optim/adam.h"
#include "kiln/optim/rmsprop.h"
#include "kiln/optim/sgd.h"
#include "kiln/tensor/error.h"

namespace kiln::optim {

const std::vector<std::string>& optimizer_names() {
  static const std::vector<std::string> names = {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad"};
  return names;
}

namespace {
// The class with its own defaults over `groups` (options are applied afterwards).
std::shared_ptr<Optimizer> construct_by_name(const std::string& name,
                                             std::vector<ParamGroup> groups) {
  if (name == "SGD") return std::make_shared<SGD>(std::move(groups), SGDOptions(1e-3));
  if (name == "Adam") return std::make_shared<Adam>(std::move(groups));
  if (name == "AdamW") return std::make_shared<AdamW>(std::move(groups));
  if (name == "RMSprop") return std::make_shared<RMSprop>(std::move(groups));
  if (name == "Adagrad") return std::make_shared<Adagrad>(std::move(groups));
  throw Error(fmt::format("make_optimizer: unknown optimizer \"{}\" (known: {})", name,
                          fmt::join(optimizer_names(), ", ")));
}
}  // namespace

GroupOptions default_options(const std::string& name) {
  // The defaults live in each class's constructor: read them from one over a 1-element tensor.
  return construct_by_name(name, {ParamGroup{{{"p", zeros({1})}}, {}}})->defaults();
}

std::shared_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<ParamGroup> groups,
                                          const GroupOptions& options) {
  std::vector<GroupOptions> own;
  for (ParamGroup& g : groups) own.push_back(std::exchange(g.options, {}));
  std::shared_ptr<Optimizer> opt = construct_by_name(name, std::move(groups));
  opt->override_options(options, own);
  return opt;
}

}  // namespace kiln::optim
