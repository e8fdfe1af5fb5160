#include "kiln/automl/leaderboard.h"

#include <fmt/format.h>

#include <algorithm>
#include <variant>

namespace kiln::automl {

json::Value config_json(const Config& c) {
  json::Value v = json::Value::object();
  for (const auto& [name, value] : c) {
    if (std::holds_alternative<std::string>(value)) {
      v[name] = std::get<std::string>(value);
    } else {
      v[name] = std::get<double>(value);
    }
  }
  return v;
}

std::vector<const TrialRecord*> ranked_trials(const SearchResult& search) {
  std::vector<const TrialRecord*> ranked;
  for (const TrialRecord& r : search.trials) ranked.push_back(&r);
  std::stable_sort(ranked.begin(), ranked.end(), [](const TrialRecord* a, const TrialRecord* b) {
    if (a->score.has_value() != b->score.has_value()) return a->score.has_value();
    return a->score && *a->score > *b->score;
  });
  return ranked;
}

std::string leaderboard_rows(const SearchResult& search, const std::string& metric,
                             int trainer_width, const ShownMetric& shown) {
  const int metric_width = std::max<int>(9, static_cast<int>(metric.size()));
  std::string out = fmt::format("{:>4}  {:>5}  {:<{}} {:>{}} {:>8}  {:<8} {:<7} {}\n", "rank",
                                "trial", "trainer", trainer_width, metric, metric_width, "seconds",
                                "status", "chosen", "hyper-parameters");
  const std::vector<const TrialRecord*> ranked = ranked_trials(search);
  for (size_t i = 0; i < ranked.size(); ++i) {
    const TrialRecord& r = *ranked[i];
    out += fmt::format("{:>4}  {:>5}  {:<{}} {:>{}} {:>8.2f}  {:<8} {:<7} {}\n", i + 1, r.trial,
                       r.learner, trainer_width,
                       r.score ? fmt::format("{:.4f}", shown(*r.score)) : "-", metric_width,
                       r.seconds, to_string(r.status), r.chosen.substr(0, r.chosen.find(' ')),
                       to_string(r.config));
  }
  return out;
}

std::string trial_line(const TrialRecord& r, int trainer_width, const ShownMetric& shown) {
  return fmt::format("trial {:>3}  {:<{}} {:<8} {:>10} {:>7.2f} s  {}  {}\n", r.trial, r.learner,
                     trainer_width, to_string(r.status),
                     r.score ? fmt::format("{:.4f}", shown ? shown(*r.score) : *r.score) : "-",
                     r.seconds, r.chosen, to_string(r.config));
}

std::string leaderboard_footer(const SearchResult& search, const std::string& what,
                               const std::string& unit, bool refitted, double refit_seconds,
                               double total_seconds, double budget_s) {
  std::string out = fmt::format(
      "{} trials{} in {:.1f} s; refit on all {} {} ({:.1f} s); total {:.1f} s of a {:.0f} s "
      "budget\n",
      search.trials.size(), what, search.seconds, unit, refitted ? "done" : "cut", refit_seconds,
      total_seconds, budget_s);
  for (const std::string& note : search.notes) out += "note: " + note + "\n";
  return out;
}

json::Value leaderboard_head(const std::string& task, const std::string& metric,
                             const SearchResult& search, bool refitted, double refit_seconds,
                             double total_seconds, double budget_s) {
  json::Value v = json::Value::object();
  v["task"] = task;
  v["metric"] = metric;
  v["budget_s"] = budget_s;
  v["seconds"] = total_seconds;
  v["search_seconds"] = search.seconds;
  v["refit_seconds"] = refit_seconds;
  v["refitted"] = refitted;
  return v;
}

void add_trials_json(json::Value& v, const SearchResult& search, const ShownMetric& shown) {
  v["best_trial"] = search.best >= 0 ? search.trials[static_cast<size_t>(search.best)].trial : -1;
  json::Value trials = json::Value::array();
  for (const TrialRecord& r : search.trials) {
    json::Value t = json::Value::object();
    t["trial"] = r.trial;
    t["trainer"] = r.learner;
    t["hyperparameters"] = config_json(r.config);
    t["metric"] = r.score ? json::Value(shown(*r.score)) : json::Value(nullptr);
    t["seconds"] = r.seconds;
    t["status"] = std::string(to_string(r.status));
    t["message"] = r.message;
    t["chosen"] = r.chosen;
    if (!r.run_id.empty()) t["run_id"] = r.run_id;
    trials.push_back(std::move(t));
  }
  v["trials"] = std::move(trials);
  json::Value notes = json::Value::array();
  for (const std::string& note : search.notes) notes.push_back(note);
  v["notes"] = std::move(notes);
}

}  // namespace kiln::automl
