#include "kiln/autograd/op_registry.h"

#include <mutex>
#include <shared_mutex>

namespace kiln {
namespace {

struct OpNameRegistry {
  std::shared_mutex mu;
  std::map<std::string, bool, std::less<>> names;

  // Adds `name`; an entry already differentiable stays so.
  void add(std::string_view name, bool differentiable) {
    {
      std::shared_lock lock(mu);
      auto it = names.find(name);
      if (it != names.end() && (it->second || !differentiable)) return;
    }
    std::unique_lock lock(mu);
    auto [it, inserted] = names.emplace(std::string(name), differentiable);
    if (!inserted && differentiable) it->second = true;
  }
  std::map<std::string, bool> copy() {
    std::shared_lock lock(mu);
    return {names.begin(), names.end()};
  }
};

OpNameRegistry& declared() {
  static OpNameRegistry r;
  return r;
}
OpNameRegistry& recorded() {
  static OpNameRegistry r;
  return r;
}

}  // namespace

OpDeclarations::OpDeclarations(std::initializer_list<std::string_view> differentiable,
                               std::initializer_list<std::string_view> nondifferentiable) {
  for (std::string_view n : nondifferentiable) declared().add(n, false);
  for (std::string_view n : differentiable) declared().add(n, true);
}

std::map<std::string, bool> declared_op_names() {
  return declared().copy();
}

std::map<std::string, bool> recorded_op_names() {
  return recorded().copy();
}

namespace detail {
void note_op_name(std::string_view name, bool differentiable) {
  recorded().add(name, differentiable);
}
}  // namespace detail

}  // namespace kiln
