#include "kiln/optim/scheduler.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <limits>
#include <numbers>

#include "kiln/tensor/error.h"

namespace kiln::optim {

// ---------------------------------------------------------------- LRScheduler

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer) {}

void LRScheduler::initial_step() {
  // PyTorch: group.setdefault('initial_lr', group['lr']); base_lrs = initial_lrs; then one step().
  for (size_t g = 0; g < optimizer_.num_groups(); ++g) {
    if (!optimizer_.param_groups()[g].options.contains("initial_lr"))
      optimizer_.set_option(g, "initial_lr", optimizer_.lr(g));
    base_lrs_.push_back(optimizer_.option(g, "initial_lr"));
  }
  step();
}

void LRScheduler::step() {
  ++step_count_;
  ++last_epoch_;
  std::vector<double> lrs = get_lr();
  for (size_t g = 0; g < lrs.size(); ++g) optimizer_.set_lr(g, lrs[g]);
  last_lr_ = std::move(lrs);
}

SchedulerState LRScheduler::state_dict() const {
  SchedulerState s{{"last_epoch", static_cast<double>(last_epoch_)},
                   {"step_count", static_cast<double>(step_count_)}};
  for (size_t i = 0; i < base_lrs_.size(); ++i)
    s.emplace_back(fmt::format("base_lrs.{}", i), base_lrs_[i]);
  for (size_t i = 0; i < last_lr_.size(); ++i)
    s.emplace_back(fmt::format("last_lr.{}", i), last_lr_[i]);
  return s;
}

void LRScheduler::load_state_dict(const SchedulerState& state) {
  std::vector<double> base(base_lrs_.size()), last(base_lrs_.size());
  auto index = [&](const std::string& key, size_t prefix, size_t n) {
    size_t idx = n;
    try {
      idx = std::stoul(key.substr(prefix));
    } catch (const std::exception&) {
    }
    KILN_CHECK(idx < n, "LRScheduler::load_state_dict: key '{}' does not name one of the {} groups",
               key, n);
    return idx;
  };
  for (const auto& [k, v] : state) {
    if (k == "last_epoch") {
      last_epoch_ = static_cast<int64_t>(v);
    } else if (k == "step_count") {
      step_count_ = static_cast<int64_t>(v);
    } else if (k.starts_with("base_lrs.")) {
      base[index(k, 9, base.size())] = v;
    } else if (k.starts_with("last_lr.")) {
      last[index(k, 8, last.size())] = v;
    } else {
      throw Error(fmt::format("LRScheduler::load_state_dict: unexpected key '{}'", k));
    }
  }
  base_lrs_ = std::move(base);
  last_lr_ = std::move(last);
}

// ---------------------------------------------------------------- StepLR, MultiStepLR,
// ExponentialLR

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  KILN_CHECK(step_size > 0, "StepLR: step_size must be positive, got {}", step_size);
  initial_step();
}

std::vector<double> StepLR::get_lr() {
  std::vector<double> lrs;
  for (size_t g = 0; g < optimizer_.num_groups(); ++g) {
    double lr = optimizer_.lr(g);
    lrs.push_back(last_epoch_ == 0 || last_epoch_ % step_size_ != 0 ? lr : lr * gamma_);
  }
  return lrs;
}

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma)
    : LRScheduler(optimizer), gamma_(gamma) {
  for (int64_t m : milestones) ++milestones_[m];
  initial_step();
}

std::vector<double> MultiStepLR::get_lr() {
  std::vector<double> lrs;
  auto it = milestones_.find(last_epoch_);
  for (size_t g = 0; g < optimizer_.num_groups(); ++g) {
    double lr = optimizer_.lr(g);
    lrs.push_back(it == milestones_.end() ? lr : lr * std::pow(gamma_, it->second));
  }
  return lrs;
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma)
    : LRScheduler(optimizer), gamma_(gamma) {
  initial_step();
}

std::vector<double> ExponentialLR::get_lr() {
  std::vector<double> lrs;
  for (size_t g = 0; g < optimizer_.num_groups(); ++g)
    lrs.push_back(last_epoch_ == 0 ? optimizer_.lr(g) : optimizer_.lr(g) * gamma_);
  return lrs;
}

// ---------------------------------------------------------------- CosineAnnealingLR

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min)
    : LRScheduler(optimizer), T_max_(T_max), eta_min_(eta_min) {
  KILN_CHECK(T_max > 0, "CosineAnnealingLR: T_max must be positive, got {}", T_max);
  initial_step();
}

std::vector<double> CosineAnnealingLR::get_lr() {
  constexpr double pi = std::numbers::pi;
  const double T = static_cast<double>(T_max_), e = static_cast<double>(last_epoch_);
  std::vector<double> lrs;
  for (size_t g = 0; g < optimizer_.num_groups(); ++g) {
    const double lr = optimizer_.lr(g), base = base_lrs_[g];
    if (last_epoch_ == 0) {
      lrs.push_back(lr);
    } else if (step_count_ == 1 && last_epoch_ > 0) {
      lrs.push_back(eta_min_ + (base - eta_min_) * (1 + std::cos(e * pi / T)) / 2);
    } else if ((last_epoch_ - 1 - T_max_) % (2 * T_max_) == 0) {
      lrs.push_back(lr + (base - eta_min_) * (1 - std::cos(pi / T)) / 2);
    } else {
      lrs.push_back((1 + std::cos(pi * e / T)) / (1 + std::cos(pi * (e - 1) / T)) *
                        (lr - eta_min_) +
                    eta_min_);
    }
  }
  return lrs;
}

// ---------------------------------------------------------------- LambdaLR, WarmupDecay

LambdaLR::LambdaLR(Optimizer& optimizer, std::function<double(int64_t)> lambda)
    : LambdaLR(optimizer,
               std::vector<std::function<double(int64_t)>>(optimizer.num_groups(), lambda)) {}

LambdaLR::LambdaLR(Optimizer& optimizer, std::vector<std::function<double(int64_t)>> lambdas)
    : LRScheduler(optimizer), lambdas_(std::move(lambdas)) {
  KILN_CHECK(lambdas_.size() == optimizer.num_groups(),
             "LambdaLR: got {} lambdas for {} parameter groups", lambdas_.size(),
             optimizer.num_groups());
  initial_step();
}

std::vector<double> LambdaLR::get_lr() {
  std::vector<double> lrs;
  for (size_t g = 0; g < base_lrs_.size(); ++g)
    lrs.push_back(base_lrs_[g] * lambdas_[g](last_epoch_));
  return lrs;
}

double WarmupDecay::factor(const WarmupDecayOptions& o, int64_t step) {
  const double s = static_cast<double>(step), W = static_cast<double>(o.warmup_steps());
  const double N = static_cast<double>(o.total_steps());
  if (step < o.warmup_steps()) return s / std::max(1.0, W);
  double f = 1.0;
  if (o.decay() == "linear") {
    f = std::max(0.0, (N - s) / std::max(1.0, N - W));
  } else if (o.decay() == "cosine") {
    double progress = std::min(1.0, (s - W) / std::max(1.0, N - W));
    f = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  }
  return o.min_lr_ratio() + (1.0 - o.min_lr_ratio()) * f;
}

namespace {
const WarmupDecayOptions& checked(const WarmupDecayOptions& o) {
  KILN_CHECK(
      o.warmup_steps() >= 0 && o.total_steps() >= o.warmup_steps(),
      "WarmupDecay: need 0 <= warmup_steps <= total_steps, got warmup_steps={} total_steps={}",
      o.warmup_steps(), o.total_steps());
  KILN_CHECK(o.decay() == "linear" || o.decay() == "cosine" || o.decay() == "constant",
             "WarmupDecay: decay must be \"linear\", \"cosine\" or \"constant\", got \"{}\"",
             o.decay());
  KILN_CHECK(o.min_lr_ratio() >= 0 && o.min_lr_ratio() <= 1,
             "WarmupDecay: min_lr_ratio must be in [0, 1], got {}", o.min_lr_ratio());
  return o;
}
}  // namespace

WarmupDecay::WarmupDecay(Optimizer& optimizer, WarmupDecayOptions options)
    : LambdaLR(optimizer,
               [o = checked(options)](int64_t step) { return WarmupDecay::factor(o, step); }) {}

// ---------------------------------------------------------------- OneCycleLR

OneCycleLR::OneCycleLR(Optimizer& optimizer, OneCycleLROptions options)
    : LRScheduler(optimizer), options_(std::move(options)) {
  const auto& o = options_;
  const size_t G = optimizer.num_groups();
  KILN_CHECK(o.total_steps() > 0, "OneCycleLR: total_steps must be positive, got {}",
             o.total_steps());
  KILN_CHECK(o.pct_start() >= 0 && o.pct_start() <= 1,
             "OneCycleLR: pct_start must be in [0, 1], got {}", o.pct_start());
  KILN_CHECK(o.anneal_strategy() == "cos" || o.anneal_strategy() == "linear",
             "OneCycleLR: anneal_strategy must be \"cos\" or \"linear\", got \"{}\"",
             o.anneal_strategy());
  KILN_CHECK(o.max_lr().size() == 1 || o.max_lr().size() == G,
             "OneCycleLR: expected 1 or {} values for max_lr (one per group), got {}", G,
             o.max_lr().size());
  const double total = static_cast<double>(o.total_steps());
  if (o.three_phase()) {
    phases_ = {
        {o.pct_start() * total - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
        {2 * o.pct_start() * total - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"},
        {total - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"}};
  } else {
    phases_ = {{o.pct_start() * total - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
               {total - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"}};
  }
  for (size_t g = 0; g < G; ++g) {
    const double max_lr = o.max_lr().size() == 1 ? o.max_lr()[0] : o.max_lr()[g];
    const double initial = max_lr / o.div_factor();
    optimizer.set_option(g, "initial_lr", initial);
    optimizer.set_option(g, "max_lr", max_lr);
    optimizer.set_option(g, "min_lr", initial / o.final_div_factor());
  }
  if (o.cycle_momentum()) {
    const GroupOptions& d = optimizer.defaults();
    KILN_CHECK(d.contains("momentum") || d.contains("beta1"),
               "OneCycleLR: cycle_momentum needs an optimiser with momentum or beta1 ({} has "
               "neither); pass "
               "cycle_momentum(false)",
               optimizer.name());
    momentum_key_ = d.contains("beta1") ? "beta1" : "momentum";
    for (size_t g = 0; g < G; ++g) {
      optimizer.set_option(g, momentum_key_, o.max_momentum());
      optimizer.set_option(g, "max_momentum", o.max_momentum());
      optimizer.set_option(g, "base_momentum", o.base_momentum());
    }
  }
  initial_step();
}

double OneCycleLR::anneal(double start, double end, double pct) const {
  if (options_.anneal_strategy() == "cos") {
    const double cos_out = std::cos(std::numbers::pi * pct) + 1;
    return end + (start - end) / 2.0 * cos_out;
  }
  return (end - start) * pct + start;
}

std::vector<double> OneCycleLR::get_lr() {
  const int64_t step = last_epoch_;
  KILN_CHECK(step <= options_.total_steps(),
             "OneCycleLR: stepped {} times but total_steps is {} (step once per batch; size "
             "total_steps to the run)",
             step, options_.total_steps());
  std::vector<double> lrs;
  for (size_t g = 0; g < optimizer_.num_groups(); ++g) {
    double start_step = 0, lr = 0, momentum = 0;
    for (size_t i = 0; i < phases_.size(); ++i) {
      const Phase& ph = phases_[i];
      if (static_cast<double>(step) <= ph.end_step || i == phases_.size() - 1) {
        const double pct = (static_cast<double>(step) - start_step) / (ph.end_step - start_step);
        lr = anneal(optimizer_.option(g, ph.start_lr), optimizer_.option(g, ph.end_lr), pct);
        if (!momentum_key_.empty())
          momentum = anneal(optimizer_.option(g, ph.start_momentum),
                            optimizer_.option(g, ph.end_momentum), pct);
        break;
      }
      start_step = ph.end_step;
    }
    lrs.push_back(lr);
    if (!momentum_key_.empty()) optimizer_.set_option(g, momentum_key_, momentum);
  }
  return lrs;
}

// ---------------------------------------------------------------- ReduceLROnPlateau

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options)
    : optimizer_(optimizer), options_(std::move(options)) {
  const auto& o = options_;
  const size_t G = optimizer.num_groups();
  KILN_CHECK(o.mode() == "min" || o.mode() == "max",
             "ReduceLROnPlateau: mode must be \"min\" or \"max\", got \"{}\"", o.mode());
  KILN_CHECK(o.threshold_mode() == "rel" || o.threshold_mode() == "abs",
             "ReduceLROnPlateau: threshold_mode must be \"rel\" or \"abs\", got \"{}\"",
             o.threshold_mode());
  KILN_CHECK(o.factor() < 1.0, "ReduceLROnPlateau: factor must be < 1.0, got {}", o.factor());
  KILN_CHECK(o.min_lr().size() == 1 || o.min_lr().size() == G,
             "ReduceLROnPlateau: expected 1 or {} values for min_lr (one per group), got {}", G,
             o.min_lr().size());
  min_lrs_ = o.min_lr().size() == 1 ? std::vector<double>(G, o.min_lr()[0]) : o.min_lr();
  best_ = o.mode() == "min" ? std::numeric_limits<double>::infinity()
                            : -std::numeric_limits<double>::infinity();
  for (size_t g = 0; g < G; ++g) last_lr_.push_back(optimizer.lr(g));
}

bool ReduceLROnPlateau::is_better(double a, double best) const {
  const auto& o = options_;
  if (o.mode() == "min" && o.threshold_mode() == "rel") return a < best * (1.0 - o.threshold());
  if (o.mode() == "min") return a < best - o.threshold();
  if (o.threshold_mode() == "rel") return a > best * (o.threshold() + 1.0);
  return a > best + o.threshold();
}

void ReduceLROnPlateau::step(double metric) {
  ++last_epoch_;
  if (is_better(metric, best_)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (in_cooldown()) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;  // bad epochs in cooldown do not count
  }
  if (num_bad_epochs_ > options_.patience()) {
    for (size_t g = 0; g < optimizer_.num_groups(); ++g) {
      const double old_lr = optimizer_.lr(g);
      const double new_lr = std::max(old_lr * options_.factor(), min_lrs_[g]);
      if (old_lr - new_lr > options_.eps()) optimizer_.set_lr(g, new_lr);
    }
    cooldown_counter_ = options_.cooldown();
    num_bad_epochs_ = 0;
  }
  for (size_t g = 0; g < optimizer_.num_groups(); ++g) last_lr_[g] = optimizer_.lr(g);
}

SchedulerState ReduceLROnPlateau::state_dict() const {
  return {{"best", best_},
          {"num_bad_epochs", static_cast<double>(num_bad_epochs_)},
          {"cooldown_counter", static_cast<double>(cooldown_counter_)},
          {"last_epoch", static_cast<double>(last_epoch_)}};
}

void ReduceLROnPlateau::load_state_dict(const SchedulerState& state) {
  for (const auto& [k, v] : state) {
    if (k == "best") {
      best_ = v;
    } else if (k == "num_bad_epochs") {
      num_bad_epochs_ = static_cast<int64_t>(v);
    } else if (k == "cooldown_counter") {
      cooldown_counter_ = static_cast<int64_t>(v);
    } else if (k == "last_epoch") {
      last_epoch_ = static_cast<int64_t>(v);
    } else {
      throw Error(fmt::format("ReduceLROnPlateau::load_state_dict: unexpected key '{}'", k));
    }
  }
}

}  // namespace kiln::optim
