#pragma once
// Learning-rate schedulers, as torch.optim.lr_scheduler (PyTorch 1.13). Each is built on an
// optimiser (which must outlive it), records "initial_lr" in every group, and sets the epoch-0
// learning rate at construction; step() then advances one epoch (or one batch, for OneCycleLR /
// WarmupDecay). The recurrences are PyTorch's own "chainable" forms, so the sequences equal torch's
// to the last bit.
//
//   optim::SGD opt(model->named_parameters(), optim::SGDOptions(0.1).momentum(0.9));
//   optim::CosineAnnealingLR sched(opt, /*T_max=*/100);
//   for (int epoch = 0; epoch < 100; ++epoch) { train_one_epoch(); sched.step(); }
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kiln/optim/optimizer.h"
#include "kiln/optim/options.h"

namespace kiln::optim {

/// Scheduler state for checkpoints: (name, value) pairs.
using SchedulerState = std::vector<std::pair<std::string, double>>;

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  /// Advances one epoch and sets every group's learning rate.
  void step();
  /// The learning rates set by the last step (one per group).
  const std::vector<double>& last_lr() const { return last_lr_; }
  /// Epochs stepped since construction (0 right after it).
  int64_t last_epoch() const { return last_epoch_; }
  /// The groups' "initial_lr" values.
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  /// last_epoch, step count, base and last learning rates (restore the optimiser's own state_dict
  /// too).
  SchedulerState state_dict() const;
  void load_state_dict(const SchedulerState& state);

 protected:
  explicit LRScheduler(Optimizer& optimizer);
  /// Records base_lrs and performs PyTorch's initial step (epoch 0). Derived constructors call it
  /// last.
  void initial_step();
  /// The learning rates for last_epoch_ (may read the groups' current "lr", as PyTorch's do).
  virtual std::vector<double> get_lr() = 0;

  Optimizer& optimizer_;
  std::vector<double> base_lrs_;
  std::vector<double> last_lr_;
  int64_t last_epoch_ = -1;
  int64_t step_count_ = 0;
};

/// lr ← lr·gamma every step_size epochs.
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);

 protected:
  std::vector<double> get_lr() override;

 private:
  int64_t step_size_;
  double gamma_;
};

/// lr ← lr·gamma at each milestone epoch (a milestone listed k times multiplies by gamma^k).
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma = 0.1);

 protected:
  std::vector<double> get_lr() override;

 private:
  std::map<int64_t, int> milestones_;
  double gamma_;
};

/// lr ← lr·gamma every epoch.
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma);

 protected:
  std::vector<double> get_lr() override;

 private:
  double gamma_;
};

/// SGDR's cosine annealing without restarts (Loshchilov & Hutter, 2017):
/// lr_t = eta_min + (base − eta_min)·(1 + cos(π·t / T_max)) / 2, in PyTorch's recursive form (which
/// keeps oscillating with period 2·T_max past T_max).
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0.0);

 protected:
  std::vector<double> get_lr() override;

 private:
  int64_t T_max_;
  double eta_min_;
};

/// lr = base_lr · lambda(epoch), one lambda for every group or one per group.
class LambdaLR : public LRScheduler {
 public:
  LambdaLR(Optimizer& optimizer, std::function<double(int64_t)> lambda);
  LambdaLR(Optimizer& optimizer, std::vector<std::function<double(int64_t)>> lambdas);

 protected:
  std::vector<double> get_lr() override;

 private:
  std::vector<std::function<double(int64_t)>> lambdas_;
};

struct WarmupDecayOptions {
  WarmupDecayOptions(int64_t warmup_steps, int64_t total_steps)
      : warmup_steps_(warmup_steps), total_steps_(total_steps) {}
  /// Steps of linear warm-up from 0 to the base lr (factor = step / warmup_steps).
  KILN_ARG(int64_t, warmup_steps);
  /// Where the decay reaches its floor.
  KILN_ARG(int64_t, total_steps);
  /// "linear" (to the floor at total_steps), "cosine" (half a cosine to the floor) or "constant".
  KILN_ARG(std::string, decay) = "linear";
  /// The floor as a fraction of the base lr.
  KILN_ARG(double, min_lr_ratio) = 0.0;
};

/// Linear warm-up then linear or cosine decay — the transformer recipe (as Hugging Face's
/// get_{linear,cosine}_schedule_with_warmup), a LambdaLR with factor
///   s < W: s / W;   else linear: max(0, (N − s) / (N − W));  cosine: ½(1 + cos(π·(s − W) / (N −
///   W)))
/// mapped to floor + (1 − floor)·factor. Step it once per batch.
class WarmupDecay : public LambdaLR {
 public:
  WarmupDecay(Optimizer& optimizer, WarmupDecayOptions options);
  /// The factor applied to the base lr at `step`.
  static double factor(const WarmupDecayOptions& options, int64_t step);
};

struct OneCycleLROptions {
  OneCycleLROptions(double max_lr, int64_t total_steps)
      : max_lr_({max_lr}), total_steps_(total_steps) {}
  OneCycleLROptions(std::vector<double> max_lr, int64_t total_steps)
      : max_lr_(std::move(max_lr)), total_steps_(total_steps) {}
  /// One value for every group or one per group.
  KILN_ARG(std::vector<double>, max_lr);
  KILN_ARG(int64_t, total_steps);
  /// Fraction of the cycle spent increasing the lr.
  KILN_ARG(double, pct_start) = 0.3;
  /// "cos" or "linear".
  KILN_ARG(std::string, anneal_strategy) = "cos";
  /// Cycle "momentum" (SGD, RMSprop) or "beta1" (Adam) inversely to the lr.
  KILN_ARG(bool, cycle_momentum) = true;
  KILN_ARG(double, base_momentum) = 0.85;
  KILN_ARG(double, max_momentum) = 0.95;
  /// initial_lr = max_lr / div_factor.
  KILN_ARG(double, div_factor) = 25.0;
  /// min_lr = initial_lr / final_div_factor.
  KILN_ARG(double, final_div_factor) = 1e4;
  /// Three phases (up, down to initial_lr, annihilate to min_lr) instead of two (up, down to
  /// min_lr).
  KILN_ARG(bool, three_phase) = false;
};

/// Smith & Topin (2017), the 1cycle policy, exactly as torch.optim.lr_scheduler.OneCycleLR. Step it
/// once per batch; stepping past total_steps is an error.
class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, OneCycleLROptions options);

 protected:
  std::vector<double> get_lr() override;

 private:
  struct Phase {
    double end_step;
    const char *start_lr, *end_lr, *start_momentum, *end_momentum;
  };
  double anneal(double start, double end, double pct) const;
  OneCycleLROptions options_;
  std::vector<Phase> phases_;
  std::string momentum_key_;  // "momentum", "beta1" or "" (not cycling)
};

struct ReduceLROnPlateauOptions {
  /// "min": the metric should fall (a loss); "max": rise (an accuracy).
  KILN_ARG(std::string, mode) = "min";
  /// new_lr = lr·factor.
  KILN_ARG(double, factor) = 0.1;
  /// Epochs without improvement tolerated before reducing.
  KILN_ARG(int64_t, patience) = 10;
  /// Minimum change that counts as an improvement.
  KILN_ARG(double, threshold) = 1e-4;
  /// "rel": better than best·(1 ∓ threshold); "abs": better than best ∓ threshold.
  KILN_ARG(std::string, threshold_mode) = "rel";
  /// Epochs to wait after a reduction before counting bad epochs again.
  KILN_ARG(int64_t, cooldown) = 0;
  /// Lower bound on each group's lr (one value for all groups, or one per group).
  KILN_ARG(std::vector<double>, min_lr) = {0.0};
  /// Reductions smaller than eps are skipped.
  KILN_ARG(double, eps) = 1e-8;
};

/// Reduces the learning rate when a metric stops improving, as
/// torch.optim.lr_scheduler.ReduceLROnPlateau.
class ReduceLROnPlateau {
 public:
  ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options = {});
  /// Reports this epoch's metric (e.g. validation loss).
  void step(double metric);
  const std::vector<double>& last_lr() const { return last_lr_; }
  double best() const { return best_; }
  int64_t num_bad_epochs() const { return num_bad_epochs_; }
  bool in_cooldown() const { return cooldown_counter_ > 0; }
  SchedulerState state_dict() const;
  void load_state_dict(const SchedulerState& state);

 private:
  bool is_better(double a, double best) const;
  Optimizer& optimizer_;
  ReduceLROnPlateauOptions options_;
  std::vector<double> min_lrs_;
  std::vector<double> last_lr_;
  double best_;
  int64_t num_bad_epochs_ = 0;
  int64_t cooldown_counter_ = 0;
  int64_t last_epoch_ = 0;
};

}  // namespace kiln::optim
