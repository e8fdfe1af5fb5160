// The CFO-style tuner and the time-boxed trial loop (kiln/automl/tuner.h).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include "kiln/automl/tuner.h"
#include "kiln/tensor/error.h"
#include "kiln/track/run.h"
#include "kiln/track/store.h"

namespace kiln::automl {
namespace {

// A synthetic objective with a known optimum: learning_rate = 1e-2 (log scale), units = 37,
// activation = "gelu"; its maximum is 0 there.
SearchSpace synthetic_space() {
  SearchSpace s;
  s.add(Param::log_float("learning_rate", 1e-5, 1.0, 1e-5));
  s.add(Param::int_range("units", 1, 100, 1));
  s.add(Param::categorical("activation", {"relu", "tanh", "gelu"}, "relu"));
  return s;
}

double synthetic(const Config& c) {
  const double lr = std::log10(get_number(c, "learning_rate")) + 2.0;
  const double units = (get_number(c, "units") - 37.0) / 10.0;
  const double act = get_choice(c, "activation") == "gelu" ? 0.0 : 0.5;
  return -(lr * lr) - units * units - act;
}

TEST(SearchSpace, NormalizeRoundTrips) {
  const SearchSpace s = synthetic_space();
  const Config c{{"learning_rate", 1e-3}, {"units", 50.0}, {"activation", std::string("tanh")}};
  const std::vector<double> u = s.normalize(c);
  EXPECT_NEAR(u[0], 0.4, 1e-12);  // log10: (-3 - -5) / 5
  EXPECT_NEAR(u[1], 49.0 / 99.0, 1e-12);
  EXPECT_NEAR(u[2], 0.5, 1e-12);  // middle slice of three
  const Config back = s.denormalize(u);
  EXPECT_NEAR(get_number(back, "learning_rate"), 1e-3, 1e-15);
  EXPECT_EQ(get_number(back, "units"), 50.0);
  EXPECT_EQ(get_choice(back, "activation"), "tanh");
  EXPECT_EQ(s.initial().at("units"), ParamValue(1.0));
}

TEST(SearchSpace, BadParamsAreClearErrors) {
  EXPECT_THROW(
      {
        try {
          Param::log_float("lr", 0.0, 1.0, 0.5);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("'lr': a log scale needs low > 0"),
                    std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  EXPECT_THROW(Param::int_range("epochs", 1, 10, 11), Error);
  EXPECT_THROW(Param::categorical("a", {"x", "x"}, "x"), Error);
  EXPECT_THROW(Param::categorical("a", {"x", "y"}, "z"), Error);
  SearchSpace s;
  s.add(Param::uniform_float("a", 0, 1, 0));
  EXPECT_THROW(s.add(Param::uniform_float("a", 0, 1, 0)), Error);
}

// The tuner starts at the low-cost point and reaches the optimum's neighbourhood within 150
// trials (at seeds 0..4 it takes 23–83; see the printed counts).
TEST(Cfo, FindsTheKnownOptimumWithin150Trials) {
  for (uint64_t seed = 0; seed < 5; ++seed) {
    Cfo tuner(synthetic_space(), {.seed = seed});
    const Config first = tuner.suggest();
    EXPECT_EQ(first, synthetic_space().initial());
    tuner.report(first, synthetic(first));
    int found_at = -1;
    for (int trial = 2; trial <= 150 && found_at < 0; ++trial) {
      const Config c = tuner.suggest();
      tuner.report(c, synthetic(c));
      if (*tuner.best_score() > -0.05) found_at = trial;
    }
    std::printf("seed %llu: within 0.05 of the optimum at trial %d (%s)\n",
                static_cast<unsigned long long>(seed), found_at,
                to_string(tuner.best_config()).c_str());
    ASSERT_GT(found_at, 0) << "seed " << seed << ": best " << *tuner.best_score() << " at "
                           << to_string(tuner.best_config());
    EXPECT_EQ(get_choice(tuner.best_config(), "activation"), "gelu");
    EXPECT_NEAR(get_number(tuner.best_config(), "units"), 37.0, 2.0);
    EXPECT_NEAR(std::log10(get_number(tuner.best_config(), "learning_rate")), -2.0, 0.23);
  }
}

TEST(Cfo, SameSeedSameSuggestions) {
  auto run = [](uint64_t seed) {
    Cfo tuner(synthetic_space(), {.seed = seed});
    std::vector<Config> seen;
    for (int i = 0; i < 40; ++i) {
      seen.push_back(tuner.suggest());
      tuner.report(seen.back(), synthetic(seen.back()));
    }
    return seen;
  };
  EXPECT_EQ(run(3), run(3));
  EXPECT_NE(run(3), run(4));
}

TEST(Cfo, ReportMustMatchTheSuggestion) {
  Cfo tuner(synthetic_space(), {.seed = 1});
  const Config c = tuner.suggest();
  EXPECT_THROW(tuner.suggest(), Error);  // pending suggestion not reported
  Config other = c;
  other["units"] = 99.0;
  EXPECT_THROW(tuner.report(other, 0.0), Error);
  tuner.report(c, std::nullopt);  // a failed trial is allowed
  EXPECT_FALSE(tuner.best_score().has_value());
}

// A learner whose trials sleep in small slices and obey the deadline: the loop must end within
// the budget (loosely: 1.5×), and the trial the budget cuts is reported as stopped.
TEST(Search, KeepsTheTimeBudgetAndReportsStoppedTrials) {
  SearchSpace s;
  s.add(Param::int_range("work_ms", 50, 2000, 50, /*log=*/true));
  Learner slow{.name = "sleeper", .space = s, .run = [](const Config& c, const Deadline& dl) {
                 const int ms = static_cast<int>(get_number(c, "work_ms"));
                 for (int i = 0; i < ms / 10; ++i) {
                   if (dl.passed()) return TrialOutcome{.status = TrialStatus::Stopped};
                   std::this_thread::sleep_for(std::chrono::milliseconds(10));
                 }
                 return TrialOutcome{.score = static_cast<double>(ms)};  // longer is better
               }};
  const double budget = 1.5;
  const auto t0 = std::chrono::steady_clock::now();
  const SearchResult r = search({slow}, {.time_budget_s = budget, .seed = 2});
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("budget %.2f s, search took %.3f s over %zu trials\n", budget, took, r.trials.size());
  EXPECT_LE(took, 1.5 * budget);
  ASSERT_GE(r.trials.size(), 2u);
  ASSERT_GE(r.best, 0);
  EXPECT_EQ(r.trials.back().status, TrialStatus::Stopped);
  EXPECT_FALSE(r.trials.back().score.has_value());
  EXPECT_EQ(r.trials.front().config.at("work_ms"), ParamValue(50.0));  // the low-cost start
}

TEST(Search, ReserveHoldsTimeBackAndFailuresAreRecorded) {
  SearchSpace s;
  s.add(Param::uniform_float("x", 0, 1, 0));
  int calls = 0;
  Learner flaky{.name = "flaky", .space = s, .run = [&](const Config& c, const Deadline&) {
                  if (++calls % 3 == 0) throw Error("flaky: bad luck");
                  return TrialOutcome{.score = get_number(c, "x")};
                }};
  const SearchResult r = search({flaky}, {.time_budget_s = 100,
                                          .seed = 0,
                                          .max_trials = 9,
                                          .reserve_s = [](const TrialRecord*) { return 0.0; }});
  ASSERT_EQ(r.trials.size(), 9u);
  EXPECT_EQ(r.trials[2].status, TrialStatus::Failed);
  EXPECT_EQ(r.trials[2].message, "flaky: bad luck");
  // A reserve as large as the budget leaves no time for any trial.
  const SearchResult none =
      search({flaky}, {.time_budget_s = 1, .reserve_s = [](const TrialRecord*) { return 5.0; }});
  EXPECT_TRUE(none.trials.empty());
}

// With tracking on, every trial is a run: the configuration as automl.* parameters, the score as
// the metric (after `shown`), and finished / killed / failed for ok / stopped / failed trials.
TEST(Search, EveryTrialIsATrackedRun) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / fmt::format("kiln_automl_runs_{}", ::getpid());
  fs::remove_all(dir);
  SearchSpace s;
  s.add(Param::uniform_float("x", 0, 1, 0.25));
  int calls = 0;
  std::vector<std::string> active_ids;
  Learner mixed{.name = "mixed", .space = s, .run = [&](const Config& c, const Deadline&) {
                  // The trial's run is the active run while it trains (trainers log into it).
                  active_ids.push_back(track::active_run() ? track::active_run()->id() : "");
                  ++calls;
                  if (calls == 2) return TrialOutcome{.status = TrialStatus::Stopped};
                  if (calls == 3) throw Error("mixed: bad luck");
                  return TrialOutcome{.score = get_number(c, "x")};
                }};
  const SearchOptions so{.time_budget_s = 100,
                         .max_trials = 4,
                         .tracking = {.experiment = "automl-test",
                                      .metric = "accuracy",
                                      .shown = [](double v) { return 10 * v; }}};
  const SearchResult off = search({mixed}, so);  // tracking is off: nothing is recorded
  for (const TrialRecord& r : off.trials) EXPECT_TRUE(r.run_id.empty());
  calls = 0;
  active_ids.clear();
  track::set_tracking_dir(dir);
  const SearchResult r = search({mixed}, so);
  track::set_tracking_enabled(false);
  ASSERT_EQ(r.trials.size(), 4u);
  track::Store store(dir);
  const std::vector<track::RunRecord> runs = store.list_runs({.experiment = "automl-test"});
  ASSERT_EQ(runs.size(), 4u);
  std::string search_id;
  for (size_t i = 0; i < r.trials.size(); ++i) {
    const TrialRecord& t = r.trials[i];
    ASSERT_FALSE(t.run_id.empty());
    EXPECT_EQ(active_ids[i], t.run_id);
    const track::RunRecord run = store.get_run(t.run_id);
    EXPECT_EQ(run.info.name, fmt::format("trial {} mixed", t.trial));
    EXPECT_EQ(run.tags.at("automl.trial"), fmt::format("{}", t.trial));
    if (i == 0) search_id = run.tags.at("automl.search");
    EXPECT_EQ(run.tags.at("automl.search"), search_id);
    EXPECT_EQ(run.params.at("automl.learner"), "mixed");
    EXPECT_EQ(run.params.at("automl.x"), fmt::format("{:.6g}", get_number(t.config, "x")));
    EXPECT_EQ(run.final_metrics.count("automl.trial_seconds"), 1u);
    if (t.status == TrialStatus::Ok) {
      EXPECT_EQ(run.info.status, track::RunStatus::Finished);
      EXPECT_DOUBLE_EQ(run.final_metrics.at("automl.accuracy"), 10 * *t.score);
    } else {
      EXPECT_EQ(run.final_metrics.count("automl.accuracy"), 0u);
    }
  }
  EXPECT_EQ(store.get_run(r.trials[1].run_id).info.status, track::RunStatus::Killed);
  EXPECT_EQ(store.get_run(r.trials[2].run_id).info.status, track::RunStatus::Failed);
  EXPECT_EQ(store.get_run(r.trials[2].run_id).tags.at("automl.message"), "mixed: bad luck");
  EXPECT_EQ(track::active_run(), nullptr);
  fs::remove_all(dir);
}

// A learner whose score and time grow with its epochs (score = epochs / 20, 20 ms per epoch), and
// whose recipes are 20, 10 and 5 epochs: after its 1-epoch start the search runs the longest
// recipe predicted (start time × epochs) to fit half the time left, and CFO goes on from there.
TEST(Search, RunsTheLongestRecipeThatFitsHalfTheTimeLeft) {
  SearchSpace s;
  s.add(Param::int_range("epochs", 1, 20, 1));
  Learner slow{
      .name = "slow",
      .space = s,
      .run =
          [](const Config& c, const Deadline& dl) {
            const int epochs = static_cast<int>(get_number(c, "epochs"));
            for (int i = 0; i < epochs; ++i) {
              if (dl.passed()) return TrialOutcome{.status = TrialStatus::Stopped};
              std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
            return TrialOutcome{.score = epochs / 20.0};
          },
      .recipes = {Config{{"epochs", 20.0}}, Config{{"epochs", 10.0}}, Config{{"epochs", 5.0}}},
      .cost = [](const Config& c) { return get_number(c, "epochs"); }};
  // 2 s: 20 epochs (~0.4 s) fit half of ~1.98 s. 0.65 s: half the time left is ~0.31 s, which
  // 20 epochs cannot fit (the start sleeps 20 ms: >= 0.4 s) and 10 do while the start takes up to
  // 31 ms (sanitizer builds included).
  for (const auto& [budget, expected] : {std::pair{2.0, 20.0}, std::pair{0.65, 10.0}}) {
    const SearchResult r = search({slow}, {.time_budget_s = budget, .max_trials = 3});
    ASSERT_GE(r.trials.size(), 2u);
    EXPECT_EQ(r.trials[0].chosen, "start");
    EXPECT_EQ(get_number(r.trials[1].config, "epochs"), expected) << r.trials[1].chosen;
    EXPECT_EQ(r.trials[1].chosen.rfind("recipe (predicted", 0), 0u) << r.trials[1].chosen;
  }
  // A recipe without a cost function is a clear error.
  Learner no_cost = slow;
  no_cost.cost = nullptr;
  EXPECT_THROW(search({no_cost}, {.time_budget_s = 1}), Error);
}

// The estimated cost for improvement (ECI, tuner.h): a leader that stops improving keeps the
// trials only until the time since its best exceeds what the lagging learner is estimated to need
// to catch up (2 · gap / speed, speed from ML.NET's 5 % prior: 2 · 0.2 / (0.015 / 0.02 s) =
// 0.53 s here), then the lagging learner gets its next trial.
TEST(Search, TheLeastEstimatedCostForImprovementPicksTheLearner) {
  SearchSpace s;
  s.add(Param::uniform_float("x", 0, 1, 0));
  const auto constant = [](double score, int ms) {
    return [score, ms](const Config&, const Deadline&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      return TrialOutcome{.score = score};
    };
  };
  const Learner leader{.name = "leader", .space = s, .run = constant(0.5, 5)};
  const Learner lagging{.name = "lagging", .space = s, .run = constant(0.3, 20)};
  const SearchResult r = search({leader, lagging}, {.time_budget_s = 30, .max_trials = 250});
  ASSERT_EQ(r.trials.size(), 250u);
  EXPECT_EQ(r.trials[0].learner, "leader");
  EXPECT_EQ(r.trials[1].learner, "lagging");
  int second_lagging = -1;
  for (size_t i = 2; i < r.trials.size() && second_lagging < 0; ++i) {
    if (r.trials[i].learner == "lagging") second_lagging = r.trials[i].trial;
  }
  // ~0.53 s of 5 ms trials: about the 100th; far more than 40, far fewer than 250.
  fmt::print("the lagging learner's second trial: trial {} ({})\n", second_lagging,
             second_lagging > 0 ? r.trials[second_lagging - 1].chosen : "-");
  EXPECT_GT(second_lagging, 40);
  EXPECT_LT(second_lagging, 250);
  EXPECT_EQ(r.trials[2].chosen.rfind("eci ", 0), 0u) << r.trials[2].chosen;
}

}  // namespace
}  // namespace kiln::automl
