#pragma once
// Optimisers by class name, for callers that hold a name and options rather than a type: the Keras
// API's compile("adam") and its saved models (kiln::optimizers), configuration files.
//
//   auto opt = optim::make_optimizer("Adam", {{params, {}}}, {{"lr", 1e-3}, {"eps", 1e-7}});
#include <memory>
#include <string>
#include <vector>

#include "kiln/optim/optimizer.h"

namespace kiln::optim {

/// "SGD", "Adam", "AdamW", "RMSprop", "Adagrad".
const std::vector<std::string>& optimizer_names();
/// Class `name`'s options with their defaults (PyTorch's; SGD, which has none for lr, gets 1e-3).
/// Throws listing the names when `name` is unknown.
GroupOptions default_options(const std::string& name);
/// Class `name` over `groups`: its defaults overridden by `options`, then each group's own options.
/// Unknown option names and values breaking the class's rules throw, naming them.
std::shared_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<ParamGroup> groups,
                                          const GroupOptions& options = {});

}  // namespace kiln::optim
