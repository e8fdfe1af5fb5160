#include "kiln/optim/optimizer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <unordered_set>

#include "kiln/autograd/grad_mode.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"

namespace kiln::optim {

// ---------------------------------------------------------------- GroupOptions

GroupOptions::GroupOptions(std::initializer_list<std::pair<std::string, double>> items) {
  for (const auto& [k, v] : items) set(k, v);
}

bool GroupOptions::contains(const std::string& name) const {
  for (const auto& [k, v] : items_)
    if (k == name) return true;
  return false;
}

double GroupOptions::get(const std::string& name) const {
  for (const auto& [k, v] : items_)
    if (k == name) return v;
  std::vector<std::string> names;
  for (const auto& [k, v] : items_) names.push_back(k);
  throw Error(fmt::format("GroupOptions: no option '{}' (options: {})", name, names));
}

void GroupOptions::set(const std::string& name, double value) {
  for (auto& [k, v] : items_)
    if (k == name) {
      v = value;
      return;
    }
  items_.emplace_back(name, value);
}

// ---------------------------------------------------------------- grouping helpers

std::vector<ParamGroup> split_groups(const NamedParameters& params,
                                     const std::function<bool(const std::string&)>& pred,
                                     GroupOptions overrides) {
  ParamGroup rest, matching;
  matching.options = std::move(overrides);
  for (const auto& np : params) (pred(np.first) ? matching : rest).params.push_back(np);
  std::vector<ParamGroup> out;
  if (!rest.params.empty()) out.push_back(std::move(rest));
  if (!matching.params.empty()) out.push_back(std::move(matching));
  return out;
}

bool is_bias_or_norm(const std::string& name) {
  size_t dot = name.rfind('.');
  std::string last = dot == std::string::npos ? name : name.substr(dot + 1);
  if (last == "bias" || last.ends_with("_bias") || last.starts_with("bias_")) return true;
  // Any path part naming a normalisation layer: "norm1", "layer_norm", "LayerNorm", "bn1", "ln_f".
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('.', start);
    std::string part =
        name.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (end == std::string::npos) break;  // the last part is the parameter's own name, not a module
    std::string lower;
    for (char c : part) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.find("norm") != std::string::npos || lower.starts_with("bn") ||
        lower.starts_with("ln"))
      return true;
    start = end + 1;
  }
  return false;
}

// ---------------------------------------------------------------- Optimizer

Optimizer::Optimizer(std::string name, std::vector<ParamGroup> groups, GroupOptions defaults)
    : name_(std::move(name)), defaults_(std::move(defaults)) {
  KILN_CHECK(!groups.empty(),
             "{}: got no parameter groups (an optimiser needs at least one parameter)", name_);
  std::unordered_set<const TensorImpl*> seen_tensors;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    ParamGroup& g = groups[gi];
    KILN_CHECK(!g.params.empty(), "{}: parameter group {} is empty", name_, gi);
    for (const auto& [k, v] : g.options.items()) {
      std::vector<std::string> valid;
      for (const auto& [dk, dv] : defaults_.items()) valid.push_back(dk);
      KILN_CHECK(defaults_.contains(k),
                 "{}: parameter group {} sets unknown option '{}' ({}'s options: {})", name_, gi, k,
                 name_, valid);
    }
    GroupOptions filled = defaults_;
    for (const auto& [k, v] : g.options.items()) filled.set(k, v);
    g.options = std::move(filled);
    for (const auto& [pname, p] : g.params) {
      KILN_CHECK(
          !pname.empty(),
          "{}: parameter group {} has a parameter with an empty name (state is keyed by name)",
          name_, gi);
      KILN_CHECK(p.defined() && is_floating(p.dtype()),
                 "{}: parameter '{}' must be a defined floating tensor", name_, pname);
      KILN_CHECK(
          by_name_.emplace(pname, p).second,
          "{}: parameter name '{}' appears twice (in one group or two); names must be unique",
          name_, pname);
      KILN_CHECK(
          seen_tensors.insert(p.impl()).second,
          "{}: parameter '{}' is the same tensor as another parameter; pass each tensor once",
          name_, pname);
    }
  }
  groups_ = std::move(groups);
}

void Optimizer::validate_all() const {
  for (size_t gi = 0; gi < groups_.size(); ++gi) validate(gi, groups_[gi].options);
}

void Optimizer::validate(size_t group, const GroupOptions& o) const {
  KILN_CHECK(o.get("lr") >= 0, "{}: group {}: lr must be >= 0, got {}", name_, group, o.get("lr"));
  if (o.contains("weight_decay"))
    KILN_CHECK(o.get("weight_decay") >= 0, "{}: group {}: weight_decay must be >= 0, got {}", name_,
               group, o.get("weight_decay"));
}

void Optimizer::step() {
  NoGradGuard no_grad;
  std::vector<Update> updates;
  std::vector<std::pair<Array, size_t>> strided;  // (parameter values, index of its copy's update)
  for (const auto& g : groups_) {
    for (const auto& [pname, p] : g.params) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      KILN_CHECK_SHAPE(grad.shape() == p.shape(),
                       "{}: gradient of '{}' has shape {} but the parameter has {}", name_, pname,
                       grad.shape(), p.shape());
      Array g_arr = grad.data().dtype() == p.dtype() ? grad.data().contiguous()
                                                     : grad.data().to(p.dtype()).contiguous();
      ParamState& st = state_[pname];
      ++st.step;
      Array values = p.data();
      if (values.is_contiguous()) {
        updates.push_back({&g.options, values, std::move(g_arr), &st});
      } else {
        // Strided parameter (rare: a leaf made from a view): update a contiguous copy and write it
        // back.
        strided.emplace_back(values, updates.size());
        updates.push_back({&g.options, values.clone(), std::move(g_arr), &st});
      }
    }
  }
  update_all(updates);
  for (auto& u : updates) u.p.bump_version();
  for (auto& [values, i] : strided) values.copy_(updates[i].p);
}

void Optimizer::update_all(std::vector<Update>& updates) {
  for (auto& u : updates) update(*u.options, u.p, u.grad, *u.st);
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& [n, p] : g.params) p.zero_grad();
}

void Optimizer::set_lr(double lr) {
  for (size_t i = 0; i < groups_.size(); ++i) set_lr(i, lr);
}

double Optimizer::option(size_t group, const std::string& name) const {
  KILN_CHECK(group < groups_.size(), "{}: group {} does not exist ({} groups)", name_, group,
             groups_.size());
  return groups_[group].options.get(name);
}

void Optimizer::set_option(size_t group, const std::string& name, double value) {
  KILN_CHECK(group < groups_.size(), "{}: group {} does not exist ({} groups)", name_, group,
             groups_.size());
  groups_[group].options.set(name, value);
}

void Optimizer::override_options(const GroupOptions& defaults,
                                 const std::vector<GroupOptions>& groups) {
  KILN_CHECK(groups.size() <= groups_.size(), "{}: options for {} groups, but it has {}", name_,
             groups.size(), groups_.size());
  auto check_name = [&](const std::string& k) {
    std::vector<std::string> valid;
    for (const auto& [dk, dv] : defaults_.items()) valid.push_back(dk);
    KILN_CHECK(defaults_.contains(k), "{}: unknown option '{}' ({}'s options: {})", name_, k, name_,
               valid);
  };
  for (const auto& [k, v] : defaults.items()) {
    check_name(k);
    defaults_.set(k, v);
    for (auto& g : groups_) g.options.set(k, v);
  }
  for (size_t gi = 0; gi < groups.size(); ++gi)
    for (const auto& [k, v] : groups[gi].items()) {
      check_name(k);
      groups_[gi].options.set(k, v);
    }
  validate_all();
}

const ParamState* Optimizer::state(const std::string& name) const {
  auto it = state_.find(name);
  return it == state_.end() ? nullptr : &it->second;
}

StateDict Optimizer::state_dict() const {
  StateDict out;
  // Parameters in group order (deterministic), each with its step and buffers.
  for (const auto& g : groups_) {
    for (const auto& [pname, p] : g.params) {
      auto it = state_.find(pname);
      if (it == state_.end()) continue;
      out.emplace_back("state." + pname + ".step",
                       Tensor(kernels::full({}, static_cast<double>(it->second.step), kInt64)));
      for (const auto& [key, buf] : it->second.buffers)
        out.emplace_back("state." + pname + "." + key, Tensor(buf.clone()));
    }
  }
  for (size_t i = 0; i < groups_.size(); ++i)
    for (const auto& [k, v] : groups_[i].options.items())
      out.emplace_back(fmt::format("param_groups.{}.{}", i, k),
                       Tensor(kernels::full({}, v, kFloat64)));
  return out;
}

void Optimizer::load_state_dict(const StateDict& dict) {
  std::vector<std::string> problems;
  std::unordered_map<std::string, ParamState> new_state;
  std::vector<GroupOptions> new_options(groups_.size());
  std::vector<bool> group_seen(groups_.size(), false);
  for (const auto& [key, t] : dict) {
    if (!t.defined()) {
      problems.push_back(fmt::format("'{}' is undefined", key));
      continue;
    }
    if (key.starts_with("state.")) {
      size_t dot = key.rfind('.');
      if (dot <= 6) {
        problems.push_back(fmt::format("'{}' is not of the form state.<param name>.<key>", key));
        continue;
      }
      std::string pname = key.substr(6, dot - 6), field = key.substr(dot + 1);
      auto p = by_name_.find(pname);
      if (p == by_name_.end()) {
        problems.push_back(fmt::format(
            "'{}' names parameter '{}', which this optimiser does not have", key, pname));
        continue;
      }
      if (field == "step") {
        if (t.numel() != 1) {
          problems.push_back(
              fmt::format("'{}' must hold one number, got shape {}", key, t.shape()));
          continue;
        }
        new_state[pname].step = static_cast<int64_t>(t.data().item<double>());
      } else if (t.shape() != p->second.shape()) {
        problems.push_back(fmt::format("'{}' has shape {} but parameter '{}' has shape {}", key,
                                       t.shape(), pname, p->second.shape()));
      } else {
        new_state[pname].buffers[field] = t.data().to(p->second.dtype()).clone();
      }
    } else if (key.starts_with("param_groups.")) {
      size_t dot = key.find('.', 13);
      size_t gi = 0;
      bool ok = dot != std::string::npos && dot > 13;
      if (ok) {
        try {
          gi = std::stoul(key.substr(13, dot - 13));
        } catch (const std::exception&) {
          ok = false;
        }
      }
      if (!ok || t.numel() != 1) {
        problems.push_back(
            fmt::format("'{}' is not of the form param_groups.<i>.<option> with one number", key));
        continue;
      }
      if (gi >= groups_.size()) {
        problems.push_back(fmt::format("'{}' is for group {}, but this optimiser has {} groups",
                                       key, gi, groups_.size()));
        continue;
      }
      group_seen[gi] = true;
      new_options[gi].set(key.substr(dot + 1), t.data().item<double>());
    } else {
      problems.push_back(fmt::format("unknown key '{}' (expected state.* or param_groups.*)", key));
    }
  }
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    if (!group_seen[gi])
      problems.push_back(fmt::format("no options for group {} (param_groups.{}.*)", gi, gi));
  if (!problems.empty()) {
    std::string msg = fmt::format("{}: load_state_dict: {} problem(s), nothing was loaded:", name_,
                                  problems.size());
    for (const auto& p : problems) msg += "\n  " + p;
    throw Error(msg);
  }
  state_ = std::move(new_state);
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (const auto& [k, v] : new_options[gi].items()) groups_[gi].options.set(k, v);
}

}  // namespace kiln::optim
