#pragma once
// A cost-aware hyper-parameter tuner and a time-boxed trial loop over several learners.
//
// The tuner is a randomized direct search in the spirit of FLAML's CFO / FLOW2 (Wang, Wu, Huang &
// Amini, "Economical Hyperparameter Optimization with Blended Search Strategy", ICLR 2021, and
// Wu, Wang & Huang, "Frugal Optimization for Cost-related Hyperparameters", AAAI 2021), written
// here from the papers' description:
//   * it starts at the space's low-cost initial point (one epoch, few features, short sequences),
//     so expensive configurations are reached only by a chain of moves that each paid off;
//   * from the incumbent x (a point of the unit cube [0, 1]^D) it draws a direction u uniformly on
//     the unit sphere and tries x + δ·u, then x − δ·u when the first is not better;
//   * a better point becomes the incumbent; after 2^min(D, 9) directions in a row without
//     improvement the step δ halves; below min_step the search restarts from a seeded random point
//     with the initial step (the global best is kept).
// Configurations that round to one already tried (ints, categoricals) reuse its score instead of
// running again. Everything random comes from one seeded splitmix64 stream: the same seed and the
// same reported scores give the same suggestions.
//
//   Cfo tuner(space, {.seed = 7});
//   for (int i = 0; i < 50; ++i) {
//     Config c = tuner.suggest();
//     tuner.report(c, evaluate(c));   // higher is better; std::nullopt = the trial failed
//   }
//   tuner.best_config();
//
// search() runs the trials of several learners (each a search space and a function that trains
// and scores one configuration) within a wall-clock budget; see SearchOptions.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kiln/automl/search_space.h"
#include "kiln/data/split.h"

namespace kiln::automl {

struct CfoOptions {
  uint64_t seed = 0;
  double init_step = 0.1;  // δ0 = init_step · √D
  double min_step = 1e-3;  // restart when δ falls below min_step · √D
};

/// The CFO-style local search over one search space. Scores: higher is better.
class Cfo {
 public:
  explicit Cfo(SearchSpace space, CfoOptions options = {});
  /// The next configuration to evaluate. Must be followed by report() of that configuration.
  Config suggest();
  /// The score of the configuration suggest() returned (std::nullopt: failed or stopped; it counts
  /// as worse than anything). Throws kiln::Error when `c` is not the pending suggestion.
  void report(const Config& c, std::optional<double> score);
  /// Records a configuration evaluated outside suggest() (a learner's recipe, FLAML's
  /// points_to_evaluate): it counts as tried, and when it beats the incumbent the local search
  /// moves there (with a fresh direction, the step kept). Throws kiln::Error while a suggestion
  /// is pending.
  void tell(const Config& c, std::optional<double> score);
  /// Best configuration and score reported so far (score nullopt before any success).
  const Config& best_config() const { return best_config_; }
  std::optional<double> best_score() const { return best_score_; }
  /// The current step δ (in unit-cube distance) and the number of restarts so far.
  double step() const { return step_; }
  int restarts() const { return restarts_; }
  const SearchSpace& space() const { return space_; }

 private:
  enum class Phase { Start, Plus, Minus };
  double uniform();
  double gaussian();
  std::vector<double> clip(std::vector<double> u) const;
  // Advances the state after the score of the pending point is known.
  void advance(std::optional<double> score);
  void new_direction();

  SearchSpace space_;
  CfoOptions options_;
  data::SplitMix64 rng_;
  Phase phase_ = Phase::Start;
  std::vector<double> x_, dir_, pending_;  // incumbent, direction, pending point (D)
  std::vector<double> jump_;               // per categorical: the slice it jumps to, -1 none (D)
  std::optional<double> fx_;               // incumbent's score
  double step_ = 0, min_step_ = 0;
  int fails_ = 0, restarts_ = 0;
  bool has_pending_ = false;
  Config pending_config_, best_config_;
  std::optional<double> best_score_;
  std::vector<std::pair<Config, std::optional<double>>> tried_;
};

/// A point in time after which trials must stop.
struct Deadline {
  std::chrono::steady_clock::time_point at;
  bool passed() const { return std::chrono::steady_clock::now() >= at; }
  double seconds_left() const {
    return std::chrono::duration<double>(at - std::chrono::steady_clock::now()).count();
  }
};

enum class TrialStatus { Ok, Stopped, Failed };
/// "ok", "stopped" (cut by the budget), "failed" (threw; the message says why).
std::string_view to_string(TrialStatus s);

/// What a learner's run function returns for one configuration.
struct TrialOutcome {
  TrialStatus status = TrialStatus::Ok;
  std::optional<double> score = std::nullopt;  // validation metric, higher is better (Ok only)
  std::string message = {};
};

/// A candidate trainer: its search space and a function that trains one configuration on the
/// search split, checking `deadline` often (at least once per batch) and returning
/// TrialStatus::Stopped when it passes.
struct Learner {
  std::string name;
  SearchSpace space;
  std::function<TrialOutcome(const Config&, const Deadline&)> run;
  /// Known-good configurations (FLAML's points_to_evaluate, sized to the budget), most expensive
  /// first. Once the low-cost start has finished, the search runs the first recipe whose predicted
  /// time (the start's seconds × cost(recipe) / cost(start)) fits in half the time left, and the
  /// local search goes on from the better of the two. Empty: none.
  std::vector<Config> recipes = {};
  /// A number proportional to a configuration's training time (e.g. epochs × tokens); needed
  /// only with recipes.
  std::function<double(const Config&)> cost = nullptr;
};

/// One row of the leaderboard.
struct TrialRecord {
  int trial = 0;  // 1-based, in run order
  std::string learner = {};
  Config config = {};
  TrialStatus status = TrialStatus::Ok;
  std::optional<double> score = std::nullopt;
  double seconds = 0;  // wall-clock time of the trial
  std::string message = {};
  std::string run_id = {};  // its experiment-tracking run (SearchOptions::tracking), or empty
  /// Why the search ran it: "start" (the learner's low-cost start), "recipe (predicted N s of M s
  /// left)", or "eci N s" (the least estimated cost for improvement; the others' follow).
  std::string chosen = {};
};

/// Records every trial as a run of experiment tracking (kiln/track/run.h), as ML.NET's AutoML and
/// FLAML log each trial to MLflow. The run is the active run while the trial trains, so a trainer
/// that tracks itself (text::TextClassification, vision::ImageClassificationTrainer) logs its
/// epochs into it; the search adds the learner and configuration as parameters, the tags
/// automl.search (one id per search), automl.trial and automl.learner, the score as metric
/// "automl.<metric>" (after `shown`, e.g. in the label's units), the trial's wall time as
/// "automl.trial_seconds", a failure's message as tag automl.message, and the status: finished, killed (stopped
/// by the budget) or failed. Nothing is recorded when experiment is empty or tracking is off
/// (track::tracking_enabled()).
struct TrialTracking {
  std::string experiment = "";
  std::string metric = "score";
  std::function<double(double)> shown = nullptr;  // empty: the score as it is
};

struct SearchOptions {
  double time_budget_s = 60;  // the whole search, including what reserve_s holds back
  uint64_t seed = 0;
  int max_trials = 0;  // 0: until the budget is spent
  /// Seconds to hold back at the end (e.g. the final refit's estimated time), asked again after
  /// every trial with the best trial so far (nullptr when there is none). Empty: nothing.
  std::function<double(const TrialRecord* best)> reserve_s = nullptr;
  /// Called after every trial (printing progress).
  std::function<void(const TrialRecord&)> on_trial = nullptr;
  TrialTracking tracking = {};
};

struct SearchResult {
  std::vector<TrialRecord> trials;
  int best = -1;  // index into trials of the best Ok trial, -1 when none succeeded
  double seconds = 0;
  std::vector<std::string> notes;  // why a learner was dropped, and the like
};

/// Runs trials until the budget (minus the reserve) is spent or max_trials is reached. Each
/// learner starts with its space's low-cost initial configuration, in the order given (put the
/// cheapest first), then its recipe if one fits (Learner::recipes). Afterwards the next learner
/// is the one with the least estimated cost for improvement (ECI), FLAML's learner proposer
/// (Wang, Wu, Weimer & Zhu, "FLAML: A Fast and Lightweight AutoML Library", MLSys 2021), which
/// ML.NET's AutoML uses too. With a learner's own time only:
///   ECI1 = max(time since its best was found, time it took to go from its previous best to it),
///   ECI2 = 2 · (best of all − its best) / its speed, speed = (its best − its previous best) /
///          the time between them (before a second improvement the previous best is taken as 5 %
///          of |best| lower, ML.NET's prior);
///   ECI = max(ECI1, ECI2); after a failed or stopped trial the learner's ECI is twice the
///   largest of all (ML.NET's rule).
/// FLAML draws a learner with probability ∝ 1/ECI; Kiln takes the least ECI, so a seed and a
/// trial count give the same trials (barring near ties in measured time). A learner whose
/// cheapest finished trial would not fit the time left is dropped (a note says so). Every trial
/// runs under the deadline start + budget − reserve.
SearchResult search(const std::vector<Learner>& learners, const SearchOptions& options);

}  // namespace kiln::automl
