#pragma once
// What every automl task prints and saves about its trials: the ranked table and the JSON arrays
// of leaderboard.json. A task passes `shown`, which turns the tuner's score (higher is better)
// into the metric as the person reads it (e.g. a negated RMSE back into dollars).
#include <functional>
#include <string>
#include <vector>

#include "kiln/automl/search_space.h"
#include "kiln/automl/tuner.h"
#include "kiln/io/json.h"

namespace kiln::automl {

using ShownMetric = std::function<double(double score)>;

/// A configuration as a JSON object {name: value}.
json::Value config_json(const Config& c);

/// The trials best first; trials without a score (failed, stopped) last; ties keep run order.
std::vector<const TrialRecord*> ranked_trials(const SearchResult& search);

/// The table's header and one row per ranked trial:
///   rank  trial  trainer  <metric>  seconds  status  chosen  hyper-parameters
/// where chosen is the first word of TrialRecord::chosen (start, recipe, eci).
/// with the trainer column `trainer_width` characters wide.
std::string leaderboard_rows(const SearchResult& search, const std::string& metric,
                             int trainer_width, const ShownMetric& shown);

/// One trial as the search prints it while running (verbose), after `shown`:
///   "trial   3  tfidf_linear  ok         0.8125    1.25 s  eci 2.1 s (…)  epochs=2 …"
std::string trial_line(const TrialRecord& r, int trainer_width, const ShownMetric& shown);

/// The line every leaderboard table ends with, then one "note: ..." line per search note:
///   "{N} trials{what} in {s} s; refit on all {unit} done|cut ({s} s); total {s} s of a {B} s budget"
/// `what` says more about the trials (e.g. " (5-fold cross-validation, 60 rows)").
std::string leaderboard_footer(const SearchResult& search, const std::string& what,
                               const std::string& unit, bool refitted, double refit_seconds,
                               double total_seconds, double budget_s);

/// A leaderboard.json object's head: task, metric, budget_s, seconds (search and refit),
/// search_seconds, refit_seconds, refitted.
json::Value leaderboard_head(const std::string& task, const std::string& metric,
                             const SearchResult& search, bool refitted, double refit_seconds,
                             double total_seconds, double budget_s);

/// Adds "best_trial", "trials" (trial, trainer, hyperparameters, metric, seconds, status, message,
/// chosen)
/// and "notes" to a leaderboard.json object.
void add_trials_json(json::Value& v, const SearchResult& search, const ShownMetric& shown);

}  // namespace kiln::automl
