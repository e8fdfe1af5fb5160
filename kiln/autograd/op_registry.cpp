#include "kiln/autograd/op_registry.h"

#include <mutex>
#include <shared_mutex>

namespace kiln {
namespace {

struct OpNameRegistry {
  std::shared_mutex mu;
  std::map<std::string, bool, std::less<>> names;
};

OpNameRegistry& registry() {
  static OpNameRegistry r;
  return r;
}

}  // namespace

std::map<std::string, bool> recorded_op_names() {
  OpNameRegistry& r = registry();
  std::shared_lock lock(r.mu);
  return {r.names.begin(), r.names.end()};
}

namespace detail {

void note_op_name(std::string_view name, bool differentiable) {
  OpNameRegistry& r = registry();
  {
    std::shared_lock lock(r.mu);
    if (r.names.find(name) != r.names.end()) return;
  }
  std::unique_lock lock(r.mu);
  r.names.emplace(std::string(name), differentiable);
}

}  // namespace detail
}  // namespace kiln
