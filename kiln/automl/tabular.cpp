// TabularSearch (tabular.h): labels, validation folds, the two learners, the refit, the
// leaderboard.
#include "kiln/automl/tabular.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>

#include "kiln/autograd/functions.h"
#include "kiln/automl/automl.h"
#include "kiln/automl/leaderboard.h"
#include "kiln/data/csv.h"
#include "kiln/data/label_encoding.h"
#include "kiln/data/split.h"
#include "kiln/tensor/error.h"

namespace kiln::automl {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

TabularNetOptions net_options(const std::string& learner, const Config& c, uint64_t seed) {
  TabularNetOptions o{.learning_rate = get_number(c, "learning_rate"),
                      .epochs = static_cast<int>(get_number(c, "epochs")),
                      .seed = seed};
  if (learner == "linear") {
    o.weight_decay = get_number(c, "l2");
  } else {
    o.depth = static_cast<int>(get_number(c, "depth"));
    o.hidden = static_cast<int64_t>(get_number(c, "hidden"));
    o.dropout = get_number(c, "dropout");
    o.weight_decay = get_number(c, "weight_decay");
  }
  return o;
}

// The text of column `c` at `row` ("" for a NaN float).
std::string field(const data::Column& c, size_t row) {
  return c.type() == data::ColumnType::String ? c.strings()[row] : c.value_string(row);
}

// One validation fold: rows are indices into the input table.
struct Fold {
  std::vector<size_t> train_rows, valid_rows;
  TabularFeaturizer featurizer;
  std::vector<float> x_train, x_valid;  // (rows, F) row-major
  std::vector<double> y_train, y_valid;
};

}  // namespace

SearchSpace linear_tabular_space() {
  SearchSpace s;
  s.add(Param::log_float("learning_rate", 1e-4, 0.3, 0.01));
  s.add(Param::log_float("l2", 1e-8, 0.1, 1e-6));
  s.add(Param::int_range("epochs", 1, 60, 3, /*log=*/true));
  return s;
}

SearchSpace mlp_tabular_space() {
  SearchSpace s;
  s.add(Param::int_range("depth", 1, 2, 1));
  s.add(Param::int_range("hidden", 8, 512, 32, /*log=*/true));
  s.add(Param::uniform_float("dropout", 0.0, 0.5, 0.0));
  s.add(Param::log_float("learning_rate", 1e-4, 0.03, 0.01));
  s.add(Param::log_float("weight_decay", 1e-6, 0.3, 1e-4));
  s.add(Param::int_range("epochs", 1, 100, 10, /*log=*/true));
  return s;
}

double regression_metric(const std::string& metric, std::span<const double> truth,
                         std::span<const double> predicted) {
  KILN_CHECK(truth.size() == predicted.size() && !truth.empty(),
             "regression_metric: {} values but {} predictions (need the same number, >= 1)",
             truth.size(), predicted.size());
  const double n = static_cast<double>(truth.size());
  double sse = 0, sae = 0, mean = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    const double d = predicted[i] - truth[i];
    sse += d * d;
    sae += std::abs(d);
    mean += truth[i];
  }
  if (metric == "rmse") return std::sqrt(sse / n);
  if (metric == "mae") return sae / n;
  KILN_CHECK(metric == "r2", "regression_metric: unknown metric '{}' (rmse, mae or r2)", metric);
  mean /= n;
  double sst = 0;
  for (double t : truth) sst += (t - mean) * (t - mean);
  return sst > 0 ? 1 - sse / sst : 0.0;
}

bool higher_is_better(const std::string& metric) {
  return metric != "rmse" && metric != "mae";
}

double TabularSearchResult::metric_value(double score) const {
  return higher_is_better(metric) ? score : -score * metric_scale;
}

std::string TabularSearchResult::shown_metric(double score) const {
  if (!std::isfinite(score)) return "diverged";
  return higher_is_better(metric) ? fmt::format("{:.4f}", score)
                                  : fmt::format("{:.5g}", metric_value(score));
}

TabularSearch::TabularSearch(TabularSearchOptions options) : options_(std::move(options)) {
  auto& o = options_;
  const bool classify = o.task == TabularTask::Classification;
  const std::string task(to_string(o.task));
  if (o.metric.empty()) o.metric = classify ? "accuracy" : "rmse";
  const std::vector<std::string> metrics = classify
                                               ? std::vector<std::string>{"accuracy", "macro_f1"}
                                               : std::vector<std::string>{"rmse", "mae", "r2"};
  KILN_CHECK(std::find(metrics.begin(), metrics.end(), o.metric) != metrics.end(),
             "automl {}: unknown metric '{}' ({})", task, o.metric, fmt::join(metrics, ", "));
  KILN_CHECK(o.time_budget_s > 0, "automl {}: the time budget must be > 0 s, got {}", task,
             o.time_budget_s);
  KILN_CHECK(o.folds >= 2, "automl {}: folds must be >= 2, got {}", task, o.folds);
  KILN_CHECK(o.ensemble >= 1 && o.rescore_top >= 0 && o.rescore_repeats >= 0,
             "automl {}: need ensemble >= 1, rescore_top >= 0 and rescore_repeats >= 0; got {}, "
             "{}, {}",
             task, o.ensemble, o.rescore_top, o.rescore_repeats);
  for (const std::string& l : o.learners) {
    KILN_CHECK(l == "linear" || l == "mlp", "automl {}: unknown learner '{}' (linear, mlp)", task,
               l);
  }
  KILN_CHECK(!o.learners.empty(), "automl {}: no learner to search over", task);
}

TabularSearchResult TabularSearch::run(const data::Table& table) const {
  const Clock::time_point t0 = Clock::now();
  const auto& o = options_;
  const bool classify = o.task == TabularTask::Classification;
  const std::string task(to_string(o.task));
  KILN_CHECK(table.has_column(o.label_column), "automl {}: no column '{}' (columns: {})", task,
             o.label_column, fmt::join(table.column_names(), ", "));
  KILN_CHECK(table.num_rows() > 0, "automl {}: the table has no rows", task);
  KILN_CHECK(table.num_columns() >= 2, "automl {}: the table has only the label column '{}'", task,
             o.label_column);

  // Labels: rows with a missing label are left out.
  const data::Column& label_col = table[o.label_column];
  std::vector<size_t> kept;
  std::vector<std::string> label_text;
  for (size_t r = 0; r < table.num_rows(); ++r) {
    std::string v = field(label_col, r);
    if (is_missing_value(v)) continue;
    kept.push_back(r);
    label_text.push_back(std::move(v));
  }
  TabularSearchResult result;
  if (kept.size() < table.num_rows()) {
    result.search.notes.push_back(fmt::format("{} of {} rows have no label and were left out",
                                              table.num_rows() - kept.size(), table.num_rows()));
  }
  std::vector<double> y;  // (kept) class ids or values
  std::vector<std::string> labels;
  if (classify) {
    const data::LabelEncoder enc = data::LabelEncoder::fit(label_text, data::KeyOrdering::ByValue);
    KILN_CHECK(enc.size() >= 2,
               "automl classification: label column '{}' has {} class{} ({}); a classifier "
               "needs at least 2",
               o.label_column, enc.size(), enc.size() == 1 ? "" : "es",
               enc.size() ? enc.values()[0] : std::string("all labels missing"));
    for (int64_t id : enc.transform(label_text)) y.push_back(static_cast<double>(id));
    labels = enc.values();
  } else {
    KILN_CHECK(!kept.empty(), "automl regression: label column '{}' has no values", o.label_column);
    for (size_t i = 0; i < kept.size(); ++i) {
      float v = 0;
      KILN_CHECK(data::detail::parse_float(label_text[i], v) && std::isfinite(v),
                 "automl regression: label column '{}' is not numeric: row {} holds '{}' (a "
                 "regression label must be a number; use classification for categories)",
                 o.label_column, kept[i] + 1, label_text[i]);
      y.push_back(v);
    }
  }

  // rmse and mae reach the tuner in units of the label's standard deviation, so that its share
  // rule (a learner 0.01 behind gets e^-1 of the time) means the same for any label scale.
  result.metric = o.metric;  // metric_value() reads it in the progress lines
  result.metric_scale = 1;
  if (!higher_is_better(o.metric)) {
    double mean = 0, sq = 0;
    for (double v : y) mean += v / static_cast<double>(y.size());
    for (double v : y) sq += (v - mean) * (v - mean);
    const double sd = std::sqrt(sq / static_cast<double>(y.size()));
    if (sd > 0) result.metric_scale = sd;
  }
  const double metric_scale = result.metric_scale;

  // Validation: k folds below cv_max_rows rows, else one holdout (indices into kept).
  const size_t n = kept.size();
  const bool cross_validate = n < o.cv_max_rows;
  std::vector<int64_t> ids;  // classification: the class ids
  if (classify) ids.assign(y.begin(), y.end());
  if (cross_validate) {
    KILN_CHECK(n >= 2 * static_cast<size_t>(o.folds),
               "automl {}: {} labelled rows are too few for {}-fold cross-validation (need >= {})",
               task, n, o.folds, 2 * o.folds);
    result.validation = fmt::format("{}-fold cross-validation", o.folds);
  } else {
    result.validation = fmt::format("holdout {:.0f} %", o.holdout_fraction * 100);
  }
  // The folds of one split of the kept rows, drawn with `split_seed`.
  const auto make_folds = [&](uint64_t split_seed) {
    std::vector<data::SplitIndices> splits;
    if (cross_validate) {
      splits = classify ? data::stratified_kfold(ids, static_cast<size_t>(o.folds), split_seed)
                        : data::kfold(n, static_cast<size_t>(o.folds), split_seed);
    } else {
      splits = {classify ? data::stratified_split(ids, o.holdout_fraction, split_seed)
                         : data::train_test_split(n, o.holdout_fraction, split_seed)};
    }
    std::vector<Fold> out;
    for (const data::SplitIndices& s : splits) {
      Fold f;
      for (size_t i : s.train) f.train_rows.push_back(kept[i]), f.y_train.push_back(y[i]);
      for (size_t i : s.test) f.valid_rows.push_back(kept[i]), f.y_valid.push_back(y[i]);
      f.featurizer = TabularFeaturizer::fit(table, f.train_rows, {o.label_column});
      f.x_train = f.featurizer.transform(table, f.train_rows);
      f.x_valid = f.featurizer.transform(table, f.valid_rows);
      out.push_back(std::move(f));
    }
    return out;
  };
  const Clock::time_point f0 = Clock::now();
  const std::vector<Fold> folds = make_folds(o.seed);
  const double folds_seconds = seconds_since(f0);  // what one more split costs to prepare
  double train_rows = 0;
  for (const Fold& f : folds) {
    train_rows += static_cast<double>(f.train_rows.size()) / static_cast<double>(folds.size());
  }

  // One configuration's score on `fs`: the mean validation metric over the folds, fold i trained
  // with seed `seed` + i, so that the mean is over initialisations as well as splits (with one
  // seed for every fold, a configuration's luck with its initialisation counts five times, and a
  // search of a thousand trials finds that luck). `first` (when given) receives fold 0's model.
  const auto cv_score = [&](const std::string& learner, const Config& c,
                            const std::vector<Fold>& fs, uint64_t seed, const Deadline& dl,
                            std::optional<TabularModel>* first) {
    double sum = 0;
    for (size_t fi = 0; fi < fs.size(); ++fi) {
      const Fold& f = fs[fi];
      TabularModel m =
          TabularModel::fit(f.featurizer, f.x_train, f.y_train, o.task, labels,
                            net_options(learner, c, seed + fi), [&] { return dl.passed(); });
      if (m.stopped()) return TrialOutcome{.status = TrialStatus::Stopped};
      const int64_t rows = static_cast<int64_t>(f.valid_rows.size());
      const std::vector<float> out =
          m.predict_features(from_vector(f.x_valid, {rows, f.featurizer.num_features()}))
              .to_vector<float>();
      if (classify) {
        const size_t k = labels.size();
        std::vector<int64_t> truth, pred;
        for (int64_t i = 0; i < rows; ++i) {
          const float* p = out.data() + i * static_cast<int64_t>(k);
          pred.push_back(std::max_element(p, p + k) - p);
          truth.push_back(static_cast<int64_t>(f.y_valid[static_cast<size_t>(i)]));
        }
        sum += classification_metric(o.metric, truth, pred, static_cast<int64_t>(k));
      } else {
        const std::vector<double> pred(out.begin(), out.end());
        sum += regression_metric(o.metric, f.y_valid, pred);
      }
      if (first && fi == 0) *first = std::move(m);
    }
    const double metric = sum / static_cast<double>(fs.size());
    if (!std::isfinite(metric)) {
      return TrialOutcome{.status = TrialStatus::Failed,
                          .message = "the predictions diverged (non-finite metric)"};
    }
    return TrialOutcome{.score = higher_is_better(o.metric) ? metric : -metric / metric_scale};
  };

  // The learners: a trial is cv_score on the search's folds. The first fold's model of the best
  // trial so far is kept, in case the final refit does not fit the budget.
  std::optional<TabularModel> fallback;
  std::optional<double> fallback_score;
  // The best distinct configurations so far (at most rescore_top, best first, ties in run
  // order, as ranked_trials): what re-scoring will run, kept during the search for its reserve.
  struct Leader {
    int trial = 0;  // 1-based: the tuner numbers trials in the order it calls `run`
    std::string learner;
    Config config;
    double score = 0, seconds = 0;
  };
  std::vector<Leader> leaders;
  const auto add_leader = [&](Leader l) {
    const auto same = std::find_if(leaders.begin(), leaders.end(), [&](const Leader& x) {
      return x.learner == l.learner && x.config == l.config;
    });
    if (same != leaders.end()) {
      if (same->score >= l.score) return;
      leaders.erase(same);
    }
    const auto at = std::find_if(leaders.begin(), leaders.end(),
                                 [&](const Leader& x) { return x.score < l.score; });
    leaders.insert(at, std::move(l));
    if (leaders.size() > static_cast<size_t>(o.rescore_top)) leaders.pop_back();
  };
  int trials_run = 0;
  const auto make_learner = [&](const std::string& name, SearchSpace space) {
    return Learner{.name = name,
                   .space = std::move(space),
                   .run = [&, name](const Config& c, const Deadline& dl) {
                     const int trial = ++trials_run;
                     const Clock::time_point c0 = Clock::now();
                     std::optional<TabularModel> first;
                     TrialOutcome t = cv_score(name, c, folds, o.seed, dl, &first);
                     if (t.score && (!fallback_score || *t.score > *fallback_score)) {
                       fallback = std::move(first), fallback_score = t.score;
                     }
                     if (t.score) add_leader({trial, name, c, *t.score, seconds_since(c0)});
                     return t;
                   }};
  };
  std::vector<Learner> learners;
  for (const std::string& name : o.learners) {
    learners.push_back(
        make_learner(name, name == "linear" ? linear_tabular_space() : mlp_tabular_space()));
  }
  // A trial trains once per fold on train_rows rows, a refit member once on all rows.
  const double refit_scale =
      static_cast<double>(n) / train_rows / static_cast<double>(folds.size());
  const int members = o.ensemble;
  const int repeats = o.rescore_repeats;
  // Re-scoring the first k of `seconds` (the best distinct configurations' trial times) costs
  // `repeats` × (one split's preparation + their trials), with a margin; it may take a tenth of
  // the budget and what `left` allows: the largest such k, or 0 below two.
  const auto rescore_cost = [&](const std::vector<double>& seconds, size_t k) {
    double sum = folds_seconds;
    for (size_t i = 0; i < k; ++i) sum += seconds[i];
    return k ? repeats * sum * 1.5 + 0.5 : 0.0;
  };
  constexpr double kNoLimit = std::numeric_limits<double>::infinity();
  const auto rescore_count = [&](const std::vector<double>& seconds, double left) {
    if (repeats == 0) return size_t{0};
    const double allowed = std::min(0.1 * o.time_budget_s, left);
    size_t k = 0;
    while (k < seconds.size() && k < static_cast<size_t>(o.rescore_top) &&
           rescore_cost(seconds, k + 1) <= allowed) {
      ++k;
    }
    return k >= 2 ? k : size_t{0};
  };
  const auto refit_reserve = [&](double trial_seconds) {
    return trial_seconds * refit_scale * members * 1.5 + 0.5;
  };
  const double prepared = seconds_since(t0);
  SearchOptions so{.time_budget_s = std::max(0.0, o.time_budget_s - prepared),
                   .seed = o.seed,
                   .max_trials = o.max_trials,
                   .reserve_s = [&](const TrialRecord* best) {
                     if (!best) return 0.5;
                     std::vector<double> seconds;
                     for (const Leader& l : leaders) seconds.push_back(l.seconds);
                     return refit_reserve(best->seconds) +
                            rescore_cost(seconds, rescore_count(seconds, kNoLimit));
                   }};
  so.tracking = {.experiment = o.task == TabularTask::Classification ? "automl-classification"
                                                                     : "automl-regression",
                 .metric = o.metric,
                 .shown = [&](double score) { return result.metric_value(score); }};
  if (o.verbose) {
    so.on_trial = [&](const TrialRecord& r) {
      fmt::print("{}", trial_line(r, 7, [&](double v) { return result.metric_value(v); }));
      std::fflush(stdout);
    };
  }
  SearchResult searched = search(learners, so);
  searched.notes.insert(searched.notes.begin(), result.search.notes.begin(),
                        result.search.notes.end());
  result.search = std::move(searched);
  result.task = o.task;
  result.metric = o.metric;
  result.budget_s = o.time_budget_s;
  result.label_column = o.label_column;
  result.rows = n;
  KILN_CHECK(result.search.best >= 0,
             "automl {}: no trial finished within {} s ({} tried; the first was {}): give a "
             "larger --time",
             task, o.time_budget_s, result.search.trials.size(),
             result.search.trials.empty()
                 ? std::string("never started")
                 : std::string(to_string(result.search.trials.front().status)));
  const Deadline end{t0 + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(o.time_budget_s))};

  // Re-scoring: the best few distinct configurations again on `repeats` new splits with new
  // seeds, and the best mean over all of a configuration's splits wins. Among a thousand trials
  // on one split the top score is partly luck (the winner's curse); the mean of several splits
  // is less so. A repeat that the budget cuts is dropped for every configuration.
  std::vector<int> chosen;  // indices into trials
  std::vector<double> chosen_seconds;
  for (const Leader& l : leaders) {
    const TrialRecord& t = result.search.trials[static_cast<size_t>(l.trial - 1)];
    KILN_CHECK(t.learner == l.learner && t.config == l.config,
               "automl {}: internal: trial {} is not the configuration its learner ran", task,
               l.trial);
    chosen.push_back(l.trial - 1), chosen_seconds.push_back(t.seconds);
  }
  // The refit must fit after re-scoring, whichever candidate wins.
  double slowest = result.search.trials[static_cast<size_t>(result.search.best)].seconds;
  for (double sec : chosen_seconds) slowest = std::max(slowest, sec);
  const Deadline rescore_end{end.at - std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(refit_reserve(slowest)))};
  const size_t top = rescore_count(chosen_seconds, rescore_end.seconds_left());
  if (top == 0 && chosen.size() >= 2 && repeats > 0) {
    result.search.notes.push_back(fmt::format(
        "the best configurations were not scored on more splits: {:.1f} s were left for it, "
        "and two would take {:.1f} s",
        std::max(0.0, rescore_end.seconds_left()), rescore_cost(chosen_seconds, 2)));
  }
  chosen.resize(top);
  if (chosen.size() >= 2) {
    std::vector<std::vector<double>> scores;
    for (int i : chosen) scores.push_back({*result.search.trials[static_cast<size_t>(i)].score});
    int done = 0;
    for (int r = 1; r <= repeats && !rescore_end.passed(); ++r) {
      const std::vector<Fold> again = make_folds(o.seed + static_cast<uint64_t>(r));
      std::vector<double> got;
      for (int i : chosen) {
        const TrialRecord& t = result.search.trials[static_cast<size_t>(i)];
        const TrialOutcome out =
            cv_score(t.learner, t.config, again, o.seed + 1000 * static_cast<uint64_t>(r),
                     rescore_end, nullptr);
        // A configuration that diverges on a new split cannot win; one the budget cuts ends the
        // repeat.
        if (out.status == TrialStatus::Failed) {
          got.push_back(-std::numeric_limits<double>::infinity());
          continue;
        }
        if (!out.score) break;
        got.push_back(*out.score);
      }
      if (got.size() < chosen.size()) break;
      for (size_t c = 0; c < chosen.size(); ++c) scores[c].push_back(got[c]);
      ++done;
    }
    if (done > 0) {
      size_t win = 0;
      std::vector<double> means;
      for (const std::vector<double>& v : scores) {
        double m = 0;
        for (double x : v) m += x / static_cast<double>(v.size());
        means.push_back(m);
        if (m > means[win]) win = means.size() - 1;
      }
      std::vector<std::string> parts;
      for (size_t c = 0; c < chosen.size(); ++c) {
        const TrialRecord& t = result.search.trials[static_cast<size_t>(chosen[c])];
        result.rescored.push_back({.trial = t.trial, .scores = scores[c], .mean_score = means[c]});
        std::vector<std::string> shown;
        for (double v : scores[c]) shown.push_back(result.shown_metric(v));
        parts.push_back(fmt::format("trial {} {} {} (mean of {}, {})", t.trial, t.learner,
                                    result.shown_metric(means[c]), scores[c].size(),
                                    fmt::join(shown, " ")));
      }
      if (std::isfinite(means[win])) result.search.best = chosen[win];
      result.search.notes.push_back(fmt::format(
          "the {} best configurations were scored on {} more split{} with other seeds, and the "
          "best mean won (trial {}): {}",
          chosen.size(), done, done == 1 ? "" : "s", result.search.best + 1,
          fmt::join(parts, "; ")));
    } else {
      result.search.notes.push_back(
          "no time was left to score the best configurations on more splits: the best single "
          "score won");
    }
  }
  const TrialRecord& best = result.search.trials[static_cast<size_t>(result.search.best)];
  result.winner = best.learner;

  // Refit on every labelled row within what is left of the budget: `members` models with seeds
  // seed, seed + 1, ..., their outputs averaged (fewer when the budget runs out).
  const Clock::time_point r0 = Clock::now();
  TabularFeaturizer all = TabularFeaturizer::fit(table, kept, {o.label_column});
  const std::vector<float> x_all = all.transform(table, kept);
  std::vector<TabularModel> fitted;
  double member_seconds = 0;
  for (int e = 0; e < members; ++e) {
    if (e > 0 && end.seconds_left() < member_seconds * 1.2) break;
    const Clock::time_point m0 = Clock::now();
    TabularModel m =
        TabularModel::fit(all, x_all, y, o.task, labels,
                          net_options(best.learner, best.config, o.seed + static_cast<uint64_t>(e)),
                          [&] { return end.passed(); });
    if (m.stopped()) break;
    fitted.push_back(std::move(m));
    member_seconds = std::max(member_seconds, seconds_since(m0));
  }
  result.refitted = !fitted.empty();
  if (result.refitted) {
    result.ensemble = static_cast<int>(fitted.size());
    result.model = TabularModel::average(std::move(fitted));
    if (result.ensemble < members) {
      result.search.notes.push_back(fmt::format(
          "the refit averages {} of the {} models asked for: the budget had no time for more",
          result.ensemble, members));
    }
  } else {
    result.ensemble = 1;
    result.model = std::move(*fallback);
    result.search.notes.push_back(
        "the refit on all rows was cut by the budget: the first-fold model (trained on that "
        "fold's training rows) of the trial with the best single score is the result");
  }
  result.refit_seconds = seconds_since(r0);
  result.total_seconds = seconds_since(t0);
  return result;
}

std::string TabularSearchResult::leaderboard_table() const {
  return leaderboard_rows(search, metric, 7, [this](double score) { return metric_value(score); }) +
         leaderboard_footer(search, fmt::format(" ({}, {} rows)", validation, rows), "rows",
                            refitted, refit_seconds, total_seconds, budget_s);
}

json::Value TabularSearchResult::leaderboard_json() const {
  json::Value v = leaderboard_head(std::string(to_string(task)), metric, search, refitted,
                                   refit_seconds, total_seconds, budget_s);
  v["validation"] = validation;
  v["rows"] = static_cast<int64_t>(rows);
  v["ensemble"] = static_cast<int64_t>(ensemble);
  json::Value again = json::Value::array();
  for (const Rescore& r : rescored) {
    json::Value one = json::Value::object();
    one["trial"] = static_cast<int64_t>(r.trial);
    json::Value metrics = json::Value::array();
    // A split where the configuration diverged is null (JSON has no infinity).
    const auto shown = [&](double s) {
      return std::isfinite(s) ? json::Value(metric_value(s)) : json::Value(nullptr);
    };
    for (double s : r.scores) metrics.push_back(shown(s));
    one["metrics"] = std::move(metrics);
    one["mean"] = shown(r.mean_score);
    again.push_back(std::move(one));
  }
  v["rescored"] = std::move(again);
  add_trials_json(v, search, [this](double score) { return metric_value(score); });
  return v;
}

void TabularSearchResult::save(const std::filesystem::path& dir) const {
  json::Value extra = json::Value::object();
  extra["label_column"] = label_column;
  extra["metric"] = metric;
  extra["validation"] = validation;
  extra["refitted_on_all_rows"] = refitted;
  if (search.best >= 0) {
    const TrialRecord& best = search.trials[static_cast<size_t>(search.best)];
    extra["trainer"] = best.learner;
    extra["hyperparameters"] = config_json(best.config);
    extra["validation_metric"] = metric_value(*best.score);
    for (const Rescore& r : rescored) {
      if (r.trial == best.trial && std::isfinite(r.mean_score)) {
        extra["validation_metric_mean"] = metric_value(r.mean_score);
      }
    }
  }
  extra["ensemble"] = static_cast<int64_t>(ensemble);
  model.save(dir, extra);
  data::detail::AtomicFile f(dir / "leaderboard.json", "automl save");
  f.write(leaderboard_json().dump());
  f.commit();
}

double TabularModel::evaluate(const data::Table& table, const std::string& label_column,
                              const std::string& metric) const {
  KILN_CHECK(table.has_column(label_column), "TabularModel::evaluate: no column '{}' (columns: {})",
             label_column, fmt::join(table.column_names(), ", "));
  const data::Column& col = table[label_column];
  std::vector<size_t> rows;
  std::vector<std::string> text;
  for (size_t r = 0; r < table.num_rows(); ++r) {
    std::string v = field(col, r);
    if (!is_missing_value(v)) rows.push_back(r), text.push_back(std::move(v));
  }
  KILN_CHECK(!rows.empty(), "TabularModel::evaluate: no row has a label in '{}'", label_column);
  const std::vector<float> out = predict(table.select_rows(rows)).to_vector<float>();
  if (task_ == TabularTask::Classification) {
    const size_t k = labels_.size();
    std::vector<int64_t> truth, pred;
    for (size_t i = 0; i < rows.size(); ++i) {
      const float* p = out.data() + i * k;
      pred.push_back(std::max_element(p, p + k) - p);
      // A label the model never saw is an id no prediction has: always wrong.
      const auto it = std::find(labels_.begin(), labels_.end(), text[i]);
      truth.push_back(it - labels_.begin());
    }
    return classification_metric(metric, truth, pred, static_cast<int64_t>(k) + 1);
  }
  std::vector<double> truth;
  for (size_t i = 0; i < rows.size(); ++i) {
    float v = 0;
    KILN_CHECK(data::detail::parse_float(text[i], v),
               "TabularModel::evaluate: label column '{}' is not numeric: row {} holds '{}'",
               label_column, rows[i] + 1, text[i]);
    truth.push_back(v);
  }
  return regression_metric(metric, truth, std::vector<double>(out.begin(), out.end()));
}

data::Table read_tabular_csv(const std::filesystem::path& path, const std::string& label_column) {
  KILN_CHECK_AS(IOError, std::filesystem::exists(path), "read_tabular_csv: {}: no such file",
                path.string());
  KILN_CHECK_AS(IOError, std::filesystem::file_size(path) > 0,
                "read_tabular_csv: {}: the file is empty", path.string());
  const data::CsvOptions opts{.separator = path.extension() == ".tsv" ? '\t' : ','};
  data::Table t = data::load_csv(path, opts);
  KILN_CHECK(t.num_rows() > 0, "read_tabular_csv: {}: no data rows after the header",
             path.string());
  KILN_CHECK(t.has_column(label_column), "read_tabular_csv: {}: no column '{}' (columns: {})",
             path.string(), label_column, fmt::join(t.column_names(), ", "));
  return t;
}

}  // namespace kiln::automl
