#include "kiln/train/optimizers.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "kiln/optim/factory.h"
#include "kiln/tensor/error.h"

namespace kiln::optimizers {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string canonical_class(const std::string& name) {
  for (const std::string& cls : optim::optimizer_names())
    if (lower(cls) == lower(name)) return cls;
  throw Error(fmt::format(
      "optimizers: unknown optimizer \"{}\" (known: sgd, adam, adamw, rmsprop, adagrad)", name));
}

// Keras' defaults where they differ from optim's (PyTorch's), for options a spec leaves out; the
// factories below pass them explicitly.
optim::GroupOptions keras_defaults(const std::string& cls) {
  if (cls == "SGD") return {{"lr", 1e-3}};
  if (cls == "Adam") return {{"eps", 1e-7}};
  if (cls == "AdamW") return {{"eps", 1e-7}, {"weight_decay", 0.004}};
  if (cls == "RMSprop") return {{"lr", 1e-3}, {"alpha", 0.9}, {"eps", 1e-7}};
  return {{"lr", 1e-3}, {"initial_accumulator_value", 0.1}, {"eps", 1e-7}};  // Adagrad
}

}  // namespace

// ---------------------------------------------------------------- schedules

ScheduleSpec::ScheduleSpec(std::string class_name,
                           std::vector<std::pair<std::string, json::Value>> options)
    : class_name_(std::move(class_name)) {
  for (auto& [k, v] : options) options_[k] = std::move(v);
}

bool ScheduleSpec::per_batch() const {
  return class_name_ == "OneCycleLR" || class_name_ == "WarmupDecay";
}

std::unique_ptr<optim::LRScheduler> ScheduleSpec::build(optim::Optimizer& opt) const {
  const json::Value& o = options_;
  if (class_name_ == "StepLR")
    return std::make_unique<optim::StepLR>(opt, o.at("step_size").as_int(),
                                           o.get_or<double>("gamma", 0.1));
  if (class_name_ == "ExponentialLR")
    return std::make_unique<optim::ExponentialLR>(opt, o.at("gamma").as_double());
  if (class_name_ == "CosineAnnealingLR")
    return std::make_unique<optim::CosineAnnealingLR>(opt, o.at("T_max").as_int(),
                                                      o.get_or<double>("eta_min", 0.0));
  if (class_name_ == "OneCycleLR")
    return std::make_unique<optim::OneCycleLR>(
        opt, optim::OneCycleLROptions(o.at("max_lr").as_double(), o.at("total_steps").as_int())
                 .pct_start(o.get_or<double>("pct_start", 0.3)));
  if (class_name_ == "WarmupDecay")
    return std::make_unique<optim::WarmupDecay>(
        opt, optim::WarmupDecayOptions(o.at("warmup_steps").as_int(), o.at("total_steps").as_int())
                 .decay(o.get_or<std::string>("decay", "linear"))
                 .min_lr_ratio(o.get_or<double>("min_lr_ratio", 0.0)));
  throw Error(fmt::format(
      "optimizers: unknown schedule \"{}\" (known: StepLR, ExponentialLR, CosineAnnealingLR, "
      "OneCycleLR, WarmupDecay)",
      class_name_));
}

json::Value ScheduleSpec::serialize() const {
  if (!defined()) return json::Value();
  json::Value s = json::Value::object();
  s["class_name"] = class_name_;
  s["options"] = options_;
  return s;
}

ScheduleSpec ScheduleSpec::deserialize(const json::Value& spec) {
  ScheduleSpec s;
  if (spec.is_null()) return s;
  s.class_name_ = spec.at("class_name").as_string();
  s.options_ = spec.at("options");
  return s;
}

ScheduleSpec StepLR(int64_t step_size, double gamma) {
  return ScheduleSpec("StepLR", {{"step_size", step_size}, {"gamma", gamma}});
}
ScheduleSpec ExponentialLR(double gamma) {
  return ScheduleSpec("ExponentialLR", {{"gamma", gamma}});
}
ScheduleSpec CosineAnnealingLR(int64_t T_max, double eta_min) {
  return ScheduleSpec("CosineAnnealingLR", {{"T_max", T_max}, {"eta_min", eta_min}});
}
ScheduleSpec OneCycleLR(double max_lr, int64_t total_steps, double pct_start) {
  return ScheduleSpec("OneCycleLR",
                      {{"max_lr", max_lr}, {"total_steps", total_steps}, {"pct_start", pct_start}});
}
ScheduleSpec WarmupDecay(int64_t warmup_steps, int64_t total_steps, std::string decay,
                         double min_lr_ratio) {
  return ScheduleSpec("WarmupDecay", {{"warmup_steps", warmup_steps},
                                      {"total_steps", total_steps},
                                      {"decay", std::move(decay)},
                                      {"min_lr_ratio", min_lr_ratio}});
}

// ---------------------------------------------------------------- OptimizerSpec

OptimizerSpec::OptimizerSpec(const char* name) : OptimizerSpec(std::string(name)) {}

OptimizerSpec::OptimizerSpec(const std::string& name) {
  const std::string n = lower(name);
  if (n == "sgd") {
    *this = SGD();
  } else if (n == "adam") {
    *this = Adam();
  } else if (n == "adamw") {
    *this = AdamW();
  } else if (n == "rmsprop") {
    *this = RMSprop();
  } else if (n == "adagrad") {
    *this = Adagrad();
  } else {
    throw Error(fmt::format(
        "optimizers: unknown optimizer \"{}\" (known: sgd, adam, adamw, rmsprop, adagrad)", name));
  }
}

OptimizerSpec::OptimizerSpec(std::string class_name,
                             std::vector<std::pair<std::string, double>> options)
    : class_name_(canonical_class(class_name)) {
  for (auto& [k, v] : options) set(k, v);
}

OptimizerSpec::OptimizerSpec(std::shared_ptr<optim::Optimizer> instance, int)
    : instance_(std::move(instance)) {
  KILN_CHECK(instance_ != nullptr, "compile: the optimizer is null");
  class_name_ = canonical_class(instance_->name());
  options_ = instance_->defaults().items();
}

OptimizerSpec& OptimizerSpec::clipnorm(double max_norm) {
  KILN_CHECK(max_norm > 0, "optimizers: clipnorm must be positive, got {}", max_norm);
  clipnorm_ = max_norm;
  return *this;
}

OptimizerSpec& OptimizerSpec::global_clipnorm(double max_norm) {
  KILN_CHECK(max_norm > 0, "optimizers: global_clipnorm must be positive, got {}", max_norm);
  global_clipnorm_ = max_norm;
  return *this;
}

OptimizerSpec& OptimizerSpec::clipvalue(double v) {
  KILN_CHECK(v > 0, "optimizers: clipvalue must be positive, got {}", v);
  clipvalue_ = v;
  return *this;
}

OptimizerSpec& OptimizerSpec::schedule(ScheduleSpec s) {
  schedule_ = std::move(s);
  return *this;
}

OptimizerSpec& OptimizerSpec::set(const std::string& option, double value) {
  const optim::GroupOptions known = optim::default_options(class_name_);
  if (!known.contains(option)) {
    std::vector<std::string> names;
    for (const auto& [k, v] : known.items()) names.push_back(k);
    throw Error(fmt::format("optimizers: {} has no option \"{}\" (options: {})", class_name_,
                            option, fmt::join(names, ", ")));
  }
  for (auto& [k, v] : options_)
    if (k == option) {
      v = value;
      return *this;
    }
  options_.emplace_back(option, value);
  return *this;
}

std::shared_ptr<optim::Optimizer> OptimizerSpec::build(const optim::NamedParameters& params,
                                                       const json::Value& groups) const {
  if (instance_) return instance_;
  KILN_CHECK(!params.empty(), "compile: the model has no trainable parameters to optimise");
  // Parameter groups: all in one, or as recorded by serialize() (by parameter name).
  std::vector<optim::ParamGroup> pg;
  if (groups.is_array() && groups.size() > 0) {
    std::map<std::string, Tensor> by_name(params.begin(), params.end());
    std::set<std::string> used;
    for (const json::Value& g : groups.as_array()) {
      optim::ParamGroup group;
      for (const json::Value& n : g.at("params").as_array()) {
        auto it = by_name.find(n.as_string());
        KILN_CHECK(it != by_name.end(),
                   "optimizers: saved parameter group names '{}', which the model does not have",
                   n.as_string());
        group.params.emplace_back(it->first, it->second);
        used.insert(it->first);
      }
      if (const json::Value* go = g.find("options"))
        for (const auto& [k, v] : go->members()) group.options.set(k, v.as_double());
      pg.push_back(std::move(group));
    }
    for (const auto& [n, t] : params)
      KILN_CHECK(used.count(n), "optimizers: parameter '{}' is in no saved parameter group", n);
  } else {
    pg.push_back(optim::ParamGroup{params, {}});
  }
  optim::GroupOptions options = keras_defaults(class_name_);
  for (const auto& [k, v] : options_) options.set(k, v);
  return optim::make_optimizer(class_name_, std::move(pg), options);
}

json::Value OptimizerSpec::serialize(const optim::Optimizer* built) const {
  json::Value s = json::Value::object();
  s["class_name"] = class_name_;
  json::Value o = json::Value::object();
  for (const auto& [k, v] : built ? built->defaults().items() : options_) o[k] = v;
  s["options"] = std::move(o);
  if (clipnorm_) s["clipnorm"] = *clipnorm_;
  if (global_clipnorm_) s["global_clipnorm"] = *global_clipnorm_;
  if (clipvalue_) s["clipvalue"] = *clipvalue_;
  if (schedule_.defined()) s["schedule"] = schedule_.serialize();
  if (built && built->num_groups() > 1) {
    json::Value groups = json::Value::array();
    for (const auto& g : built->param_groups()) {
      json::Value jg = json::Value::object();
      json::Value names = json::Value::array();
      for (const auto& [n, t] : g.params) names.push_back(n);
      jg["params"] = std::move(names);
      json::Value go = json::Value::object();
      for (const auto& [k, v] : g.options.items()) go[k] = v;
      jg["options"] = std::move(go);
      groups.push_back(std::move(jg));
    }
    s["groups"] = std::move(groups);
  }
  return s;
}

OptimizerSpec OptimizerSpec::deserialize(const json::Value& spec) {
  std::vector<std::pair<std::string, double>> options;
  if (const json::Value* o = spec.find("options"))
    for (const auto& [k, v] : o->members()) options.emplace_back(k, v.as_double());
  OptimizerSpec s(spec.at("class_name").as_string(), options);
  if (const json::Value* v = spec.find("clipnorm")) s.clipnorm(v->as_double());
  if (const json::Value* v = spec.find("global_clipnorm")) s.global_clipnorm(v->as_double());
  if (const json::Value* v = spec.find("clipvalue")) s.clipvalue(v->as_double());
  if (const json::Value* v = spec.find("schedule")) s.schedule(ScheduleSpec::deserialize(*v));
  return s;
}

// ---------------------------------------------------------------- factories

OptimizerSpec SGD(double lr, double momentum, bool nesterov, double weight_decay) {
  return OptimizerSpec("SGD", {{"lr", lr},
                               {"momentum", momentum},
                               {"nesterov", nesterov ? 1.0 : 0.0},
                               {"weight_decay", weight_decay}});
}
OptimizerSpec Adam(double lr, double beta_1, double beta_2, double epsilon, bool amsgrad) {
  return OptimizerSpec("Adam", {{"lr", lr},
                                {"beta1", beta_1},
                                {"beta2", beta_2},
                                {"eps", epsilon},
                                {"amsgrad", amsgrad ? 1.0 : 0.0}});
}
OptimizerSpec AdamW(double lr, double weight_decay, double beta_1, double beta_2, double epsilon) {
  return OptimizerSpec("AdamW", {{"lr", lr},
                                 {"weight_decay", weight_decay},
                                 {"beta1", beta_1},
                                 {"beta2", beta_2},
                                 {"eps", epsilon}});
}
OptimizerSpec RMSprop(double lr, double rho, double momentum, double epsilon, bool centered) {
  return OptimizerSpec("RMSprop", {{"lr", lr},
                                   {"alpha", rho},
                                   {"momentum", momentum},
                                   {"eps", epsilon},
                                   {"centered", centered ? 1.0 : 0.0}});
}
OptimizerSpec Adagrad(double lr, double initial_accumulator_value, double epsilon) {
  return OptimizerSpec(
      "Adagrad",
      {{"lr", lr}, {"initial_accumulator_value", initial_accumulator_value}, {"eps", epsilon}});
}

}  // namespace kiln::optimizers
