#include "kiln/automl/tuner.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <map>

#include "kiln/tensor/error.h"
#include "kiln/track/run.h"
#include "kiln/track/store.h"

namespace kiln::automl {
namespace {

constexpr double kPi = 3.14159265358979323846;
// Suggestions that round to an already tried configuration are answered from the cache; after
// this many in a row the tuner restarts, so suggest() always returns.
constexpr int kMaxCachedInARow = 200;

bool better(std::optional<double> a, std::optional<double> b) {
  if (!a) return false;
  return !b || *a > *b;
}

// One id per search(), for the automl.search tag of its trials' runs.
std::string new_search_id() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  return fmt::format("{:x}", static_cast<uint64_t>(us));
}

track::RunPtr start_trial_run(const TrialTracking& t, const std::string& search_id,
                              const TrialRecord& rec) {
  if (t.experiment.empty() || !track::tracking_enabled()) return nullptr;
  track::RunPtr run = track::Run::start({.experiment = t.experiment,
                                         .name = fmt::format("trial {} {}", rec.trial, rec.learner),
                                         .tags = {{"automl.search", search_id},
                                                  {"automl.trial", fmt::format("{}", rec.trial)},
                                                  {"automl.learner", rec.learner}}});
  // Prefixed: a trainer that tracks itself logs its own "learning_rate" etc. into the same run.
  std::map<std::string, std::string> params{{"automl.learner", rec.learner}};
  for (const auto& [name, value] : rec.config) {
    params["automl." + name] = std::holds_alternative<double>(value)
                                   ? fmt::format("{:.6g}", std::get<double>(value))
                                   : std::get<std::string>(value);
  }
  run->log_params(params);
  return run;
}

void end_trial_run(const TrialTracking& t, const track::RunPtr& run, TrialRecord& rec) {
  if (!run) return;
  rec.run_id = run->id();
  // "automl.accuracy", not "accuracy": a trainer that tracks itself logs its training accuracy.
  if (rec.score)
    run->log_metric("automl." + t.metric, t.shown ? t.shown(*rec.score) : *rec.score, 0);
  run->log_metric("automl.trial_seconds", rec.seconds, 0);
  if (!rec.message.empty()) run->set_tag("automl.message", rec.message);
  run->end(rec.status == TrialStatus::Ok        ? track::RunStatus::Finished
           : rec.status == TrialStatus::Stopped ? track::RunStatus::Killed
                                                : track::RunStatus::Failed);
}

}  // namespace

Cfo::Cfo(SearchSpace space, CfoOptions options)
    : space_(std::move(space)), options_(options), rng_(options.seed) {
  KILN_CHECK(space_.size() > 0, "automl::Cfo: the search space has no parameters");
  KILN_CHECK(
      options_.init_step > 0 && options_.min_step > 0 && options_.min_step < options_.init_step,
      "automl::Cfo: need 0 < min_step < init_step, got min_step {} and init_step {}",
      options_.min_step, options_.init_step);
  const double root_d = std::sqrt(static_cast<double>(space_.size()));
  step_ = options_.init_step * root_d;
  min_step_ = options_.min_step * root_d;
  x_ = space_.normalize(space_.initial());
}

double Cfo::uniform() {
  return static_cast<double>(rng_.next() >> 11) * 0x1.0p-53;  // 53 random bits in [0, 1)
}

double Cfo::gaussian() {
  // Box–Muller; 1 − u keeps the logarithm's argument in (0, 1].
  const double u1 = 1.0 - uniform(), u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
}

std::vector<double> Cfo::clip(std::vector<double> u) const {
  for (double& v : u) v = std::clamp(v, 0.0, 1.0);
  return u;
}

void Cfo::new_direction() {
  dir_.assign(space_.size(), 0.0);
  double norm = 0;
  while (norm < 1e-12) {
    norm = 0;
    for (double& d : dir_) {
      d = gaussian();
      norm += d * d;
    }
    norm = std::sqrt(norm);
  }
  for (double& d : dir_) d /= norm;
  // Categoricals have no order for small steps to follow: with probability 1/4 a direction also
  // jumps one of them to a random choice (the same jump for x + δu and x − δu).
  jump_.assign(space_.size(), -1.0);
  for (size_t i = 0; i < space_.size(); ++i) {
    const Param& p = space_.params()[i];
    if (p.kind != Param::Kind::Categorical || p.choices.size() < 2) continue;
    if (uniform() < 0.25) {
      const double k = static_cast<double>(p.choices.size());
      jump_[i] = (std::floor(uniform() * k) + 0.5) / k;
    }
  }
}

Config Cfo::suggest() {
  KILN_CHECK(!has_pending_, "automl::Cfo::suggest: the previous suggestion ({}) has no report yet",
             to_string(pending_config_));
  for (int cached = 0;; ++cached) {
    if (cached == kMaxCachedInARow) {
      // Every nearby point has been tried: restart somewhere new.
      for (double& v : x_) v = uniform();
      fx_.reset();
      phase_ = Phase::Start;
      step_ = options_.init_step * std::sqrt(static_cast<double>(space_.size()));
      ++restarts_;
      cached = 0;
    }
    std::vector<double> point;
    if (phase_ == Phase::Start) {
      point = x_;
    } else {
      if (phase_ == Phase::Plus) new_direction();
      const double sign = phase_ == Phase::Plus ? 1.0 : -1.0;
      point = x_;
      for (size_t i = 0; i < point.size(); ++i) point[i] += sign * step_ * dir_[i];
      point = clip(std::move(point));
      for (size_t i = 0; i < point.size(); ++i) {
        if (jump_[i] >= 0) point[i] = jump_[i];
      }
    }
    Config c = space_.denormalize(point);
    const auto seen =
        std::find_if(tried_.begin(), tried_.end(), [&](const auto& t) { return t.first == c; });
    if (seen == tried_.end()) {
      pending_ = std::move(point);
      pending_config_ = c;
      has_pending_ = true;
      return c;
    }
    pending_ = std::move(point);
    advance(seen->second);
  }
}

void Cfo::report(const Config& c, std::optional<double> score) {
  KILN_CHECK(has_pending_ && c == pending_config_,
             "automl::Cfo::report: '{}' is not the pending suggestion ('{}')", to_string(c),
             has_pending_ ? to_string(pending_config_) : std::string("none"));
  has_pending_ = false;
  tried_.emplace_back(c, score);
  if (better(score, best_score_)) {
    best_score_ = score;
    best_config_ = c;
  }
  advance(score);
}

void Cfo::tell(const Config& c, std::optional<double> score) {
  KILN_CHECK(!has_pending_, "automl::Cfo::tell: the suggestion '{}' has no report yet",
             to_string(pending_config_));
  tried_.emplace_back(c, score);
  if (better(score, best_score_)) {
    best_score_ = score;
    best_config_ = c;
  }
  if (better(score, fx_)) {
    x_ = space_.normalize(c);
    fx_ = score;
    fails_ = 0;
    phase_ = Phase::Plus;
  }
}

void Cfo::advance(std::optional<double> score) {
  if (phase_ == Phase::Start) {
    x_ = pending_;
    fx_ = score;
    phase_ = Phase::Plus;
    return;
  }
  if (better(score, fx_)) {  // move; the next direction is fresh
    x_ = pending_;
    fx_ = score;
    fails_ = 0;
    phase_ = Phase::Plus;
    return;
  }
  if (phase_ == Phase::Plus) {  // try the opposite direction
    phase_ = Phase::Minus;
    return;
  }
  phase_ = Phase::Plus;
  const int dirs = 1 << std::min<int>(9, static_cast<int>(space_.size()));
  if (++fails_ < dirs) return;
  fails_ = 0;
  step_ *= 0.5;
  if (step_ >= min_step_) return;
  // Converged here: restart from a random point with the initial step.
  for (double& v : x_) v = uniform();
  fx_.reset();
  phase_ = Phase::Start;
  step_ = options_.init_step * std::sqrt(static_cast<double>(space_.size()));
  ++restarts_;
}

std::string_view to_string(TrialStatus s) {
  switch (s) {
    case TrialStatus::Ok:
      return "ok";
    case TrialStatus::Stopped:
      return "stopped";
    case TrialStatus::Failed:
      return "failed";
  }
  return "?";
}

SearchResult search(const std::vector<Learner>& learners, const SearchOptions& options) {
  KILN_CHECK(!learners.empty(), "automl::search: no learners to search over");
  KILN_CHECK(options.time_budget_s > 0, "automl::search: time_budget_s must be > 0, got {}",
             options.time_budget_s);
  for (const Learner& l : learners) {
    KILN_CHECK(l.recipes.empty() || l.cost,
               "automl::search: learner '{}' has recipes but no cost function", l.name);
  }
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  const Clock::time_point end = start + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(options.time_budget_s));
  // A learner's state for the estimated cost for improvement (tuner.h): its own time only.
  struct State {
    Cfo tuner;
    double cheapest = std::numeric_limits<double>::infinity();  // fastest finished trial
    std::optional<double> best = std::nullopt, previous_best = std::nullopt;
    double since_best = 0;    // its time spent since its best was found
    double between_best = 0;  // its time from the previous best to the best
    double eci = 0;
    double start_seconds = 0;  // its low-cost start's time (for recipes' predictions)
    bool dropped = false, recipes_done = false;
    bool last_failed = false;  // its last trial failed or was stopped
    int trials = 0;
  };
  std::vector<State> states;
  for (size_t i = 0; i < learners.size(); ++i) {
    states.push_back(State{.tuner = Cfo(learners[i].space, {.seed = options.seed * 1000003 + i})});
  }
  SearchResult result;
  const bool tracked = !options.tracking.experiment.empty() && track::tracking_enabled();
  const std::string search_id = tracked ? new_search_id() : std::string();
  // A connection held for the whole search: each trial's run then closes its own without
  // checkpointing the write-ahead log, which cost ~40 ms of fdatasync per trial.
  std::optional<track::Store> keep_open;
  if (tracked) keep_open.emplace(track::tracking_dir());
  auto deadline = [&] {
    const TrialRecord* best = result.best >= 0 ? &result.trials[result.best] : nullptr;
    const double reserve = options.reserve_s ? std::max(0.0, options.reserve_s(best)) : 0.0;
    return Deadline{
        end - std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(reserve))};
  };
  auto best_of_all = [&] {
    std::optional<double> b;
    for (const State& s : states) {
      if (better(s.best, b)) b = s.best;
    }
    return b;
  };
  // A configuration's time, predicted from learner i's low-cost start by its cost model.
  auto predicted_seconds = [&](size_t i, const Config& c) {
    const Learner& l = learners[i];
    return states[i].start_seconds * l.cost(c) / l.cost(l.space.initial());
  };
  // ECI of learner s after its trials (tuner.h).
  auto update_eci = [&](State& s) {
    const std::optional<double> all = best_of_all();
    double eci = std::max(s.since_best, s.between_best);
    if (s.best && all && *all > *s.best) {
      const double previous =
          s.previous_best ? *s.previous_best : *s.best - 0.05 * std::max(std::abs(*s.best), 1e-6);
      const double speed = (*s.best - previous) / std::max(s.between_best, 1e-6);
      if (speed > 0) eci = std::max(eci, 2 * (*all - *s.best) / speed);
    }
    s.eci = eci;
  };
  while (options.max_trials <= 0 || static_cast<int>(result.trials.size()) < options.max_trials) {
    const Deadline dl = deadline();
    if (dl.passed()) break;
    const double left = dl.seconds_left();
    // Pick the learner and its configuration: untried learners' low-cost starts first, in order;
    // then a recipe that fits; then the least ECI.
    int pick = -1;
    std::optional<Config> recipe;
    std::string chosen;
    for (size_t i = 0; i < states.size() && pick < 0; ++i) {
      State& s = states[i];
      if (s.dropped) continue;
      if (s.trials > 0 && s.cheapest > left) {
        s.dropped = true;
        result.notes.push_back(fmt::format(
            "{}: dropped with {:.1f} s left, less than its fastest finished trial ({:.1f} s)",
            learners[i].name, left, s.cheapest));
        continue;
      }
      if (s.trials == 0) {
        pick = static_cast<int>(i);
        chosen = "start";
      }
    }
    for (size_t i = 0; i < states.size() && pick < 0; ++i) {
      State& s = states[i];
      if (s.dropped || s.recipes_done || !s.best) continue;
      s.recipes_done = true;
      const Learner& l = learners[i];
      if (l.recipes.empty()) continue;
      for (const Config& c : l.recipes) {
        const double predicted = predicted_seconds(i, c);
        if (predicted <= 0.5 * left) {
          pick = static_cast<int>(i);
          recipe = c;
          chosen = fmt::format("recipe (predicted {:.0f} s of {:.0f} s left)", predicted, left);
          break;
        }
      }
      if (!recipe) {
        result.notes.push_back(fmt::format(
            "{}: no recipe fits half the {:.0f} s left (the cheapest is predicted at {:.0f} s)",
            l.name, left, predicted_seconds(i, l.recipes.back())));
      }
    }
    if (pick < 0) {
      double least = std::numeric_limits<double>::infinity();
      for (size_t i = 0; i < states.size(); ++i) {
        if (states[i].dropped) continue;
        if (states[i].eci < least) least = states[i].eci, pick = static_cast<int>(i);
      }
      if (pick < 0) break;
      std::vector<std::string> others;
      for (size_t i = 0; i < states.size(); ++i) {
        if (static_cast<int>(i) == pick || states[i].dropped) continue;
        others.push_back(fmt::format("{} {:.1f} s", learners[i].name, states[i].eci));
      }
      chosen = fmt::format("eci {:.1f} s{}", least,
                           others.empty() ? "" : fmt::format(" ({})", fmt::join(others, ", ")));
    }
    State& s = states[pick];
    const Config config = recipe ? *recipe : s.tuner.suggest();
    if (!recipe && learners[pick].cost && s.start_seconds > 0) {
      // A learner with a cost model whose next configuration cannot finish in the time left is
      // done: running it would only be cut.
      const Learner& l = learners[pick];
      const double predicted = predicted_seconds(static_cast<size_t>(pick), config);
      if (predicted > left) {
        s.tuner.report(config, std::nullopt);
        s.dropped = true;
        result.notes.push_back(fmt::format(
            "{}: dropped with {:.1f} s left, less than its next configuration's predicted {:.1f} s "
            "({})",
            l.name, left, predicted, to_string(config)));
        continue;
      }
    }
    TrialRecord rec{.trial = static_cast<int>(result.trials.size()) + 1,
                    .learner = learners[pick].name,
                    .config = config,
                    .chosen = chosen};
    const Clock::time_point t0 = Clock::now();
    const track::RunPtr run = start_trial_run(options.tracking, search_id, rec);
    try {
      std::optional<track::ActiveRun> active;
      if (run) active.emplace(run);
      TrialOutcome out = learners[pick].run(config, dl);
      rec.status = out.status;
      rec.score = out.status == TrialStatus::Ok ? out.score : std::nullopt;
      rec.message = std::move(out.message);
      if (out.status == TrialStatus::Ok && !out.score) {
        rec.status = TrialStatus::Failed;
        rec.message = "the learner returned no score";
      }
    } catch (const std::exception& e) {
      rec.status = TrialStatus::Failed;
      rec.message = e.what();
    }
    rec.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    end_trial_run(options.tracking, run, rec);
    if (recipe) {
      s.tuner.tell(config, rec.score);
    } else {
      s.tuner.report(config, rec.score);
    }
    ++s.trials;
    if (s.trials == 1) s.start_seconds = rec.seconds;
    if (rec.status == TrialStatus::Ok) s.cheapest = std::min(s.cheapest, rec.seconds);
    if (rec.status != TrialStatus::Ok && s.trials == 1) {
      // Its low-cost start did not finish: nothing cheaper is left to try.
      s.dropped = true;
      result.notes.push_back(fmt::format("{}: dropped, its low-cost first trial was {} ({})",
                                         rec.learner, to_string(rec.status), rec.message));
    }
    // The ECI bookkeeping of tuner.h.
    s.since_best += rec.seconds;
    if (better(rec.score, s.best)) {
      s.previous_best = s.best;
      s.best = rec.score;
      s.between_best = s.since_best;
      s.since_best = 0;
    }
    result.trials.push_back(rec);
    if (rec.score && (result.best < 0 || *rec.score > *result.trials[result.best].score)) {
      result.best = static_cast<int>(result.trials.size()) - 1;
    }
    s.last_failed = rec.status != TrialStatus::Ok;
    double largest = 0;
    for (State& st : states) {
      update_eci(st);
      if (!st.last_failed) largest = std::max(largest, st.eci);
    }
    for (State& st : states) {
      if (st.last_failed) st.eci = 2 * std::max(largest, st.since_best);
    }
    if (options.on_trial) options.on_trial(result.trials.back());
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace kiln::automl
