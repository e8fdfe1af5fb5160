#pragma once
// optim::Optimizer — the base of SGD, Adam, AdamW, RMSprop and Adagrad. An optimiser holds
// parameter groups; each group is a list of NAMED parameters plus its hyper-parameters ("lr",
// "weight_decay",
// ...), so groups are chosen by name (no weight decay on biases and norms) and saved state is keyed
// by parameter name, not position: a checkpoint still loads after the model gains or reorders
// layers.
//
//   auto groups = optim::split_groups(model->named_parameters(), optim::is_bias_or_norm,
//                                     {{"weight_decay", 0.0}});
//   optim::AdamW opt(groups, optim::AdamWOptions(3e-4).weight_decay(0.1));
//   loss.backward();  opt.step();  opt.zero_grad();
//
// Updates run outside the graph, in place on each parameter's values (bumping its version, so a
// stale saved activation is detected), one fused loop per parameter, split across threads for big
// tensors.
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kiln/autograd/tensor.h"

namespace kiln::optim {

/// (name, parameter) pairs — what nn::Module::named_parameters() returns.
using NamedParameters = std::vector<std::pair<std::string, Tensor>>;
/// Flat (name, tensor) state for checkpoints: see Optimizer::state_dict().
using StateDict = std::vector<std::pair<std::string, Tensor>>;

/// A group's hyper-parameters by name, in insertion order (booleans are 0 / 1).
class GroupOptions {
 public:
  GroupOptions() = default;
  GroupOptions(std::initializer_list<std::pair<std::string, double>> items);
  bool contains(const std::string& name) const;
  /// The value of `name`; throws listing the group's options when absent.
  double get(const std::string& name) const;
  /// Sets `name`, appending it when absent.
  void set(const std::string& name, double value);
  const std::vector<std::pair<std::string, double>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, double>> items_;
};

/// Parameters that share hyper-parameters. At construction `options` holds overrides of the
/// optimiser's defaults (e.g. {{"weight_decay", 0.0}}); the optimiser fills in the rest.
struct ParamGroup {
  NamedParameters params;
  GroupOptions options;
};

/// Two groups: parameters whose name fails `pred` (optimiser defaults), then those that pass it,
/// with `overrides`. Empty groups are dropped.
std::vector<ParamGroup> split_groups(const NamedParameters& params,
                                     const std::function<bool(const std::string&)>& pred,
                                     GroupOptions overrides);
/// The usual "no decay" rule: biases ("bias" or "*.bias", "*_bias", PyTorch's RNN "bias_ih_l0") and
/// normalisation layers' parameters (a path part containing "norm", or named "bn*" / "ln*").
bool is_bias_or_norm(const std::string& name);

/// Per-parameter optimiser state: the step count and named buffers (e.g. "exp_avg"), shaped like
/// the parameter.
struct ParamState {
  int64_t step = 0;
  std::map<std::string, Array> buffers;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// Updates every parameter that has a gradient (others are skipped, as PyTorch).
  void step();
  /// Clears every parameter's gradient (set to undefined).
  void zero_grad();

  /// "SGD", "Adam", ...
  const std::string& name() const { return name_; }
  size_t num_groups() const { return groups_.size(); }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  /// The defaults every group started from (its option names are the valid ones).
  const GroupOptions& defaults() const { return defaults_; }
  double lr(size_t group = 0) const { return option(group, "lr"); }
  /// Sets the learning rate of every group.
  void set_lr(double lr);
  void set_lr(size_t group, double lr) { set_option(group, "lr", lr); }
  double option(size_t group, const std::string& name) const;
  /// Sets (or adds, e.g. a scheduler's "initial_lr") a group option.
  void set_option(size_t group, const std::string& name, double value);
  /// Replaces defaults (and every group's value) by `defaults`, then group i's values by
  /// `groups[i]` where given: what building an optimiser by name (make_optimizer) needs. Unknown
  /// names and values that break the optimiser's rules throw, naming them.
  void override_options(const GroupOptions& defaults, const std::vector<GroupOptions>& groups = {});
  /// The state of parameter `name` (nullptr before its first update).
  const ParamState* state(const std::string& name) const;

  /// Everything needed to resume exactly, as flat named tensors:
  ///   "state.<param name>.step"        0-d int64
  ///   "state.<param name>.<buffer>"    e.g. "state.fc1.weight.exp_avg", shaped like the parameter
  ///   "param_groups.<i>.<option>"      0-d float64, e.g. "param_groups.1.lr"
  StateDict state_dict() const;
  /// Restores state_dict() output into an optimiser built over the same named parameters and number
  /// of groups. Unknown parameter names, unknown keys, shape mismatches and a different group count
  /// are reported together in one error, before anything changes.
  void load_state_dict(const StateDict& dict);

 protected:
  Optimizer(std::string name, std::vector<ParamGroup> groups, GroupOptions defaults);
  /// One parameter's update. Runs under NoGradGuard. `p` is the parameter's values (contiguous,
  /// written in place), `grad` its gradient (contiguous, p's dtype), `st` its state (step already
  /// incremented).
  virtual void update(const GroupOptions& options, Array& p, const Array& grad, ParamState& st) = 0;
  /// One step's updates, collected by step(): each as update() takes them.
  struct Update {
    const GroupOptions* options;
    Array p;     // contiguous values, written in place
    Array grad;  // contiguous, p's dtype
    ParamState* st;
  };
  /// Applies every update of one step. The default calls update() on each in order; an optimiser
  /// may override it to run them all in one pass (Adam's fused path).
  virtual void update_all(std::vector<Update>& updates);
  /// Checks one group's filled-in options (throw naming the group index and the rule).
  virtual void validate(size_t group, const GroupOptions& options) const;
  /// validate() on every group: each concrete optimiser's constructor calls it last (a virtual call
  /// from the base constructor would not reach the override).
  void validate_all() const;

 private:
  std::string name_;
  GroupOptions defaults_;
  std::vector<ParamGroup> groups_;
  std::unordered_map<std::string, ParamState> state_;
  std::unordered_map<std::string, Tensor> by_name_;
};

}  // namespace kiln::optim
