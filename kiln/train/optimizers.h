#pragma once
// Optimiser specs for Model::compile (namespace kiln::optimizers). An optim::Optimizer needs the
// parameters at construction, but a Keras model has none until it is built, so compile() takes a
// spec — the optimiser's class and hyper-parameters — and the model builds the optim:: object once
// its layers exist (first fit / build). Hyper-parameter DEFAULTS are Keras's (Adam epsilon 1e-7,
// SGD lr 1e-2, RMSprop rho 0.9, Adagrad initial accumulator 0.1, AdamW weight decay 0.004), passed
// explicitly to optim::make_optimizer, which builds optim::'s class by name: the option names and
// UPDATE RULES are optim::'s (PyTorch's).
//
//   model.compile(kiln::optimizers::Adam(1e-3), "mse");                 // a spec
//   model.compile("sgd", "mse");                                        // Keras' string shortcut
//   model.compile(kiln::optimizers::SGD(0.1, 0.9).clipnorm(1.0)
//                     .schedule(kiln::optimizers::CosineAnnealingLR(20)), "mse");
//   auto opt = std::make_shared<kiln::optim::AdamW>(model.module().named_parameters());
//   model.compile(opt, "mse");                                          // LibTorch style
//                                                                       // (a built model)
//
// Strings: "sgd" (lr 1e-2), "adam" (1e-3), "adamw" (1e-3), "rmsprop" (1e-3), "adagrad" (1e-3).
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kiln/io/json.h"
#include "kiln/optim/optimizer.h"
#include "kiln/optim/scheduler.h"

namespace kiln::optimizers {

/// A learning-rate schedule built on the optimiser: stepped once per epoch (StepLR, ExponentialLR,
/// CosineAnnealingLR) or once per batch (OneCycleLR, WarmupDecay), as optim::'s classes of the same
/// name.
class ScheduleSpec {
 public:
  ScheduleSpec() = default;
  ScheduleSpec(std::string class_name, std::vector<std::pair<std::string, json::Value>> options);
  bool defined() const { return !class_name_.empty(); }
  const std::string& class_name() const { return class_name_; }
  /// True for schedules stepped after every batch.
  bool per_batch() const;
  std::unique_ptr<optim::LRScheduler> build(optim::Optimizer& optimizer) const;
  json::Value serialize() const;
  static ScheduleSpec deserialize(const json::Value& spec);

 private:
  std::string class_name_;
  json::Value options_ = json::Value::object();
};

ScheduleSpec StepLR(int64_t step_size, double gamma = 0.1);
ScheduleSpec ExponentialLR(double gamma);
ScheduleSpec CosineAnnealingLR(int64_t T_max, double eta_min = 0.0);
ScheduleSpec OneCycleLR(double max_lr, int64_t total_steps, double pct_start = 0.3);
/// decay: "linear", "cosine" or "constant" (optim::WarmupDecayOptions).
ScheduleSpec WarmupDecay(int64_t warmup_steps, int64_t total_steps, std::string decay = "linear",
                         double min_lr_ratio = 0.0);

class OptimizerSpec {
 public:
  /// A Keras string shortcut: "sgd", "adam", "adamw", "rmsprop", "adagrad".
  OptimizerSpec(const char* name);         // NOLINT(google-explicit-constructor)
  OptimizerSpec(const std::string& name);  // NOLINT(google-explicit-constructor)
  /// An optimiser already built over the model's parameters (the model must be built).
  template <typename T>
  requires std::derived_from<T, optim::Optimizer> OptimizerSpec(
      std::shared_ptr<T> instance)  // NOLINT(google-explicit-constructor)
      : OptimizerSpec(std::static_pointer_cast<optim::Optimizer>(std::move(instance)), 0) {}
  /// class_name: "SGD", "Adam", "AdamW", "RMSprop" or "Adagrad"; options by optim:: names ("lr",
  /// "momentum", "beta1", "eps", "weight_decay", ...).
  OptimizerSpec(std::string class_name, std::vector<std::pair<std::string, double>> options);

  /// Keras' clipnorm: each parameter's gradient is clipped to this L2 norm on its own.
  OptimizerSpec& clipnorm(double max_norm);
  /// Keras' global_clipnorm (torch's clip_grad_norm_): all gradients scaled together.
  OptimizerSpec& global_clipnorm(double max_norm);
  /// Clamps every gradient element into [−v, v].
  OptimizerSpec& clipvalue(double v);
  OptimizerSpec& schedule(ScheduleSpec s);
  /// Sets one hyper-parameter (optim:: name).
  OptimizerSpec& set(const std::string& option, double value);

  const std::string& class_name() const { return class_name_; }
  const std::vector<std::pair<std::string, double>>& options() const { return options_; }
  std::optional<double> clipnorm() const { return clipnorm_; }
  std::optional<double> global_clipnorm() const { return global_clipnorm_; }
  std::optional<double> clipvalue() const { return clipvalue_; }
  const ScheduleSpec& schedule() const { return schedule_; }
  /// The pre-built optimiser, if the spec wraps one.
  const std::shared_ptr<optim::Optimizer>& instance() const { return instance_; }

  /// The optimiser over `params` (or the wrapped instance). With `groups` (from serialize() of a
  /// multi-group optimiser), parameters are grouped by name with each group's options.
  std::shared_ptr<optim::Optimizer> build(const optim::NamedParameters& params,
                                          const json::Value& groups = {}) const;
  /// {"class_name", "options", "clipnorm", ..., "schedule", "groups"}; `built` (may be null) adds
  /// the built optimiser's groups and its current defaults.
  json::Value serialize(const optim::Optimizer* built = nullptr) const;
  static OptimizerSpec deserialize(const json::Value& spec);

 private:
  OptimizerSpec(std::shared_ptr<optim::Optimizer> instance, int);
  std::string class_name_;
  std::vector<std::pair<std::string, double>> options_;
  std::optional<double> clipnorm_, global_clipnorm_, clipvalue_;
  ScheduleSpec schedule_;
  std::shared_ptr<optim::Optimizer> instance_;
};

// Factories (Keras' names and defaults).
OptimizerSpec SGD(double lr = 1e-2, double momentum = 0.0, bool nesterov = false,
                  double weight_decay = 0.0);
OptimizerSpec Adam(double lr = 1e-3, double beta_1 = 0.9, double beta_2 = 0.999,
                   double epsilon = 1e-7, bool amsgrad = false);
OptimizerSpec AdamW(double lr = 1e-3, double weight_decay = 0.004, double beta_1 = 0.9,
                    double beta_2 = 0.999, double epsilon = 1e-7);
OptimizerSpec RMSprop(double lr = 1e-3, double rho = 0.9, double momentum = 0.0,
                      double epsilon = 1e-7, bool centered = false);
OptimizerSpec Adagrad(double lr = 1e-3, double initial_accumulator_value = 0.1,
                      double epsilon = 1e-7);

}  // namespace kiln::optimizers
