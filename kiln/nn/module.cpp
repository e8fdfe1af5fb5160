#include "kiln/nn/module.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <unordered_set>

#include "kiln/autograd/grad_mode.h"
#include "kiln/tensor/error.h"

namespace kiln::nn {

// ---------------------------------------------------------------- StateDict

StateDict::StateDict(NamedTensors items) {
  for (auto& [k, v] : items) insert(std::move(k), std::move(v));
}

void StateDict::insert(std::string name, Tensor value) {
  KILN_CHECK(!contains(name), "StateDict::insert: key '{}' is already present", name);
  index_.emplace(name, items_.size());
  items_.emplace_back(std::move(name), std::move(value));
}

void StateDict::set(const std::string& name, Tensor value) {
  auto it = index_.find(name);
  if (it == index_.end()) {
    insert(name, std::move(value));
  } else {
    items_[it->second].second = std::move(value);
  }
}

const Tensor& StateDict::at(const std::string& name) const {
  auto it = index_.find(name);
  KILN_CHECK(it != index_.end(), "StateDict::at: no key '{}' (keys: {})", name, keys());
  return items_[it->second].second;
}

const Tensor* StateDict::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

void StateDict::erase(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) return;
  items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(it->second));
  index_.clear();
  for (size_t i = 0; i < items_.size(); ++i) index_.emplace(items_[i].first, i);
}

std::vector<std::string> StateDict::keys() const {
  std::vector<std::string> k;
  k.reserve(items_.size());
  for (const auto& [name, t] : items_) k.push_back(name);
  return k;
}

// ---------------------------------------------------------------- Module: registration

Module::Module(std::string type_name) : type_name_(std::move(type_name)) {}

std::string Module::where() const {
  return path_.empty() ? type_name_ : fmt::format("{} ({})", path_, type_name_);
}

Tensor Module::forward(const Tensor& x) {
  (void)x;
  throw Error(fmt::format(
      "{}: forward(x) is not implemented for this module (it takes several inputs, or is a "
      "container: see its documentation)",
      where()));
}

Tensor Module::forward(const std::vector<Tensor>& inputs) {
  KILN_CHECK(inputs.size() == 1,
             "{}: got {} inputs, but this module takes exactly one (forward(x))", where(),
             inputs.size());
  return forward(inputs[0]);
}

void Module::check_new_name(const std::string& what, const std::string& name) const {
  KILN_CHECK(!name.empty(), "{}: {} name must not be empty", where(), what);
  KILN_CHECK(name.find('.') == std::string::npos,
             "{}: {} name '{}' must not contain '.' (dots separate path parts)", where(), what,
             name);
  auto taken = [&](const auto& list) {
    for (const auto& [n, v] : list)
      if (n == name) return true;
    return false;
  };
  KILN_CHECK(!taken(parameters_) && !taken(buffers_) && !taken(children_),
             "{}: cannot register {} '{}': the name is already used by a parameter, buffer or "
             "submodule of this module",
             where(), what, name);
}

Tensor Module::register_parameter(const std::string& name, Tensor value, bool requires_grad) {
  check_new_name("parameter", name);
  KILN_CHECK(value.defined(),
             "{}: parameter '{}' is undefined (leave optional parameters unregistered instead)",
             where(), name);
  KILN_CHECK(is_floating(value.dtype()), "{}: parameter '{}' must be floating point, got {}",
             where(), name, value.dtype());
  KILN_CHECK(value.is_leaf(), "{}: parameter '{}' must be a leaf tensor (detach() it first)",
             where(), name);
  value.requires_grad_(requires_grad);
  value.set_name(path_.empty() ? name : path_ + "." + name);
  parameters_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_new_name("buffer", name);
  KILN_CHECK(value.defined(), "{}: buffer '{}' is undefined", where(), name);
  value.set_name(path_.empty() ? name : path_ + "." + name);
  buffers_.emplace_back(name, value);
  return value;
}

void Module::register_module_impl(const std::string& name, ModulePtr module) {
  check_new_name("submodule", name);
  KILN_CHECK(module != nullptr, "{}: submodule '{}' is null", where(), name);
  KILN_CHECK(module.get() != this, "{}: a module cannot be its own submodule ('{}')", where(),
             name);
  children_.emplace_back(name, module);
  module->relabel(path_.empty() ? name : path_ + "." + name);
}

void Module::replace_parameter(const std::string& name, Tensor value) {
  for (auto& [n, p] : parameters_) {
    if (n != name) continue;
    KILN_CHECK(value.defined() && is_floating(value.dtype()) && value.is_leaf(),
               "{}: replace_parameter('{}') needs a defined floating leaf tensor", where(), name);
    value.requires_grad_(p.requires_grad());
    value.set_name(p.name());
    p = value;
    return;
  }
  throw Error(fmt::format("{}: replace_parameter: no parameter named '{}'", where(), name));
}

void Module::replace_buffer(const std::string& name, Tensor value) {
  for (auto& [n, b] : buffers_) {
    if (n != name) continue;
    KILN_CHECK(value.defined(), "{}: replace_buffer('{}'): value is undefined", where(), name);
    value.set_name(b.name());
    b = value;
    return;
  }
  throw Error(fmt::format("{}: replace_buffer: no buffer named '{}'", where(), name));
}

void Module::replace_module(const std::string& name, ModulePtr module) {
  KILN_CHECK(module != nullptr, "{}: replace_module('{}'): module is null", where(), name);
  for (auto& [n, m] : children_) {
    if (n != name) continue;
    m = std::move(module);
    m->relabel(path_.empty() ? name : path_ + "." + name);
    return;
  }
  throw Error(fmt::format("{}: replace_module: no submodule named '{}'", where(), name));
}

const Tensor& Module::parameter(const std::string& name) const {
  for (const auto& [n, p] : parameters_)
    if (n == name) return p;
  throw Error(fmt::format("{}: no parameter named '{}'", where(), name));
}

const Tensor& Module::buffer(const std::string& name) const {
  for (const auto& [n, b] : buffers_)
    if (n == name) return b;
  throw Error(fmt::format("{}: no buffer named '{}'", where(), name));
}

// Sets this subtree's module paths and tensor names as seen from the root: `path` is this module's
// path ("" for the root itself).
void Module::relabel(const std::string& path) {
  path_ = path;
  std::string pre = path.empty() ? "" : path + ".";
  for (auto& [n, p] : parameters_) p.set_name(pre + n);
  for (auto& [n, b] : buffers_) b.set_name(pre + n);
  for (auto& [n, c] : children_) c->relabel(pre + n);
}

void Module::name_parameters() {
  relabel("");
}

// ---------------------------------------------------------------- traversal

std::vector<std::pair<std::string, ModulePtr>> Module::named_modules(
    const std::string& prefix) const {
  std::vector<std::pair<std::string, ModulePtr>> out;
  std::unordered_set<const Module*> seen{this};
  // The root: its owning pointer when it is held by a shared_ptr, else a non-owning alias of `this`
  // (valid while the caller holds the module).
  ModulePtr self = std::const_pointer_cast<Module>(weak_from_this().lock());
  if (!self) self = ModulePtr(ModulePtr(), const_cast<Module*>(this));
  out.emplace_back(prefix, std::move(self));
  struct Walk {
    std::vector<std::pair<std::string, ModulePtr>>& out;
    std::unordered_set<const Module*>& seen;
    void operator()(const Module& m, const std::string& pre) {
      for (const auto& [n, c] : m.children_) {
        if (!seen.insert(c.get()).second) continue;
        std::string full = pre.empty() ? n : pre + "." + n;
        out.emplace_back(full, c);
        (*this)(*c, full);
      }
    }
  };
  Walk{out, seen}(*this, prefix);
  return out;
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  std::unordered_set<const TensorImpl*> seen;
  auto add = [&](const std::string& pre, const Module& m) {
    for (const auto& [n, p] : m.parameters_)
      if (seen.insert(p.impl()).second) out.emplace_back(pre.empty() ? n : pre + "." + n, p);
  };
  if (!recurse) {
    add("", *this);
    return out;
  }
  for (const auto& [pre, m] : named_modules()) add(pre, *m);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, p] : named_parameters(recurse)) out.push_back(p);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  std::unordered_set<const TensorImpl*> seen;
  auto add = [&](const std::string& pre, const Module& m) {
    for (const auto& [n, b] : m.buffers_)
      if (seen.insert(b.impl()).second) out.emplace_back(pre.empty() ? n : pre + "." + n, b);
  };
  if (!recurse) {
    add("", *this);
    return out;
  }
  for (const auto& [pre, m] : named_modules()) add(pre, *m);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, b] : named_buffers(recurse)) out.push_back(b);
  return out;
}

std::vector<std::pair<std::string, ModulePtr>> Module::named_children() const {
  return children_;
}

std::vector<ModulePtr> Module::children() const {
  std::vector<ModulePtr> out;
  for (const auto& [n, c] : children_) out.push_back(c);
  return out;
}

ModulePtr Module::child(const std::string& name) const {
  for (const auto& [n, c] : children_)
    if (n == name) return c;
  return nullptr;
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (const auto& [name, p] : named_parameters())
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

// ---------------------------------------------------------------- modes and gradients

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::zero_grad() {
  for (auto& [n, p] : named_parameters()) p.zero_grad();
}

void Module::requires_grad(bool on) {
  for (auto& [n, p] : named_parameters()) p.requires_grad_(on);
}

void Module::reset_parameters(Generator* gen) {
  for (auto& [n, c] : children_) c->reset_parameters(gen);
}

// ---------------------------------------------------------------- state

void Module::collect_state(const std::string& prefix, NamedTensors& out) const {
  for (const auto& [n, p] : parameters_) out.emplace_back(prefix + n, p);
  for (const auto& [n, b] : buffers_) out.emplace_back(prefix + n, b);
  for (const auto& [n, c] : children_) c->collect_state(prefix + n + ".", out);
}

StateDict Module::state_dict() const {
  NamedTensors all;
  collect_state("", all);
  StateDict out;
  for (auto& [n, t] : all) out.insert(n, t.detach());
  return out;
}

LoadResult Module::load_state_dict(const StateDict& dict, bool strict) {
  NamedTensors own;
  collect_state("", own);
  LoadResult result;
  std::vector<std::string> mismatches;
  std::unordered_set<std::string> own_keys;
  for (const auto& [name, t] : own) {
    own_keys.insert(name);
    const Tensor* src = dict.find(name);
    if (!src) {
      result.missing_keys.push_back(name);
      continue;
    }
    if (!src->defined() || src->shape() != t.shape())
      mismatches.push_back(fmt::format(
          "size mismatch for {}: copying a tensor with shape {} from the dict, the shape "
          "in the current module is {}",
          name, src->defined() ? shape_str(src->shape()) : "undefined", shape_str(t.shape())));
  }
  for (const auto& [name, t] : dict)
    if (!own_keys.count(name)) result.unexpected_keys.push_back(name);

  bool key_errors = strict && (!result.missing_keys.empty() || !result.unexpected_keys.empty());
  if (key_errors || !mismatches.empty()) {
    auto quoted = [](const std::vector<std::string>& keys) {
      std::string s;
      for (size_t i = 0; i < keys.size(); ++i) s += (i ? ", \"" : "\"") + keys[i] + "\"";
      return s;
    };
    std::string msg = fmt::format("load_state_dict: error(s) loading state_dict into {}:", where());
    if (strict && !result.missing_keys.empty())
      msg += fmt::format("\n  Missing key(s) ({}): {}.", result.missing_keys.size(),
                         quoted(result.missing_keys));
    if (strict && !result.unexpected_keys.empty())
      msg += fmt::format("\n  Unexpected key(s) ({}): {}.", result.unexpected_keys.size(),
                         quoted(result.unexpected_keys));
    for (const auto& m : mismatches) msg += "\n  " + m + ".";
    if (strict && (!result.missing_keys.empty() || !result.unexpected_keys.empty()))
      msg +=
          "\n  (strict=true requires the dict's keys to equal the module's state_dict() keys; pass "
          "strict=false "
          "to load a subset)";
    throw Error(msg);
  }

  NoGradGuard no_grad;
  for (auto& [name, t] : own) {
    const Tensor* src = dict.find(name);
    if (!src) continue;
    // The copy goes through the raw values: a parameter is a leaf that requires grad, and loading
    // is not an operation autograd should see. Bumps the version, so stale saved activations are
    // caught.
    Array dst = t.data();
    dst.copy_(src->data());
  }
  return result;
}

// ---------------------------------------------------------------- printing

namespace {
std::string indent_after_first_line(const std::string& s, int n) {
  std::string out;
  std::string pad(static_cast<size_t>(n), ' ');
  for (char c : s) {
    out += c;
    if (c == '\n') out += pad;
  }
  return out;
}
}  // namespace

std::string to_string(const Module& module) {
  std::vector<std::string> lines;
  std::string extra = module.extra_repr();
  if (!extra.empty()) {
    size_t start = 0;
    while (true) {
      size_t nl = extra.find('\n', start);
      lines.push_back(
          extra.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
  }
  size_t n_extra = lines.size();
  for (const auto& [n, c] : module.named_children())
    lines.push_back("(" + n + "): " + indent_after_first_line(to_string(*c), 2));
  if (lines.size() == n_extra) return module.name() + "(" + extra + ")";
  std::string s = module.name() + "(";
  for (const auto& l : lines) s += "\n  " + l;
  return s + "\n)";
}

}  // namespace kiln::nn
