#include "kiln/automl/automl.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <optional>

#include "kiln/automl/leaderboard.h"
#include "kiln/automl/trainer_internal.h"
#include "kiln/data/csv.h"
#include "kiln/data/label_encoding.h"
#include "kiln/data/split.h"
#include "kiln/tensor/error.h"
#include "kiln/text/onnx_export.h"
#include "kiln/text/pretrain.h"

namespace kiln::automl {
namespace {

using Clock = std::chrono::steady_clock;

TfidfOptions tfidf_options(const Config& c) {
  TfidfOptions o;
  o.word_ngrams = std::stoi(get_choice(c, "word_ngrams"));
  const std::string& ch = get_choice(c, "char_ngrams");
  if (ch == "none") {
    o.char_max = 0;
  } else {
    o.char_min = ch[0] - '0';
    o.char_max = ch[2] - '0';
  }
  o.max_features = static_cast<int64_t>(get_number(c, "max_features"));
  return o;
}

// Full-batch steps (an epoch is one Adam step over all rows): a few hundred converge on the
// convex problem, and each costs one sparse pass.
LinearTextOptions linear_options(const Config& c, uint64_t seed) {
  return LinearTextOptions{.learning_rate = get_number(c, "learning_rate"),
                           .l2 = get_number(c, "l2"),
                           .epochs = static_cast<int>(get_number(c, "epochs")),
                           .batch_size = 0,
                           .loss = get_choice(c, "loss") == "squared_hinge"
                                       ? LinearLoss::SquaredHinge
                                       : LinearLoss::Logistic,
                           .seed = seed};
}

// The texts the TF-IDF model reads: the text column, or for pairs both joined by a line break
// (ML.NET's FeaturizeText over several columns concatenates them too).
std::vector<std::string> model_texts(const data::Table& table, const std::string& text,
                                     const std::string& text2) {
  std::vector<std::string> out = table[text].strings();
  if (!text2.empty()) {
    const std::vector<std::string>& second = table[text2].strings();
    for (size_t i = 0; i < out.size(); ++i) out[i] += "\n" + second[i];
  }
  return out;
}

void check_columns(const data::Table& table, const std::vector<std::string>& columns) {
  for (const std::string& col : columns) {
    if (col.empty()) continue;
    KILN_CHECK(table.has_column(col), "automl text-classification: no column '{}' (columns: {})",
               col, fmt::join(table.column_names(), ", "));
  }
}

using detail::argmax_rows;
using detail::DeadlineCallback;
using detail::DeadlinePassed;

text::TextClassificationOptions finetune_options(const Config& c, const std::string& label,
                                                 const std::string& text, const std::string& text2,
                                                 uint64_t seed, const Deadline& dl,
                                                 bool from_scratch) {
  text::TextClassificationOptions o{.label_column = label,
                                    .sentence1_column = text,
                                    .batch_size = std::stoll(get_choice(c, "batch_size")),
                                    .max_epochs = static_cast<int>(get_number(c, "epochs")),
                                    .learning_rate = get_number(c, "learning_rate"),
                                    .max_length = static_cast<int64_t>(get_number(c, "max_length")),
                                    .seed = seed,
                                    .verbose = 0,
                                    .callbacks = {std::make_shared<DeadlineCallback>(dl)}};
  o.from_scratch = from_scratch;
  if (!text2.empty()) o.sentence2_column = text2;
  return o;
}

}  // namespace

double classification_metric(const std::string& metric, std::span<const int64_t> truth,
                             std::span<const int64_t> predicted, int64_t num_classes) {
  KILN_CHECK(truth.size() == predicted.size() && !truth.empty(),
             "classification_metric: {} labels but {} predictions (need the same number, >= 1)",
             truth.size(), predicted.size());
  if (metric == "accuracy") {
    size_t right = 0;
    for (size_t i = 0; i < truth.size(); ++i) right += truth[i] == predicted[i];
    return static_cast<double>(right) / static_cast<double>(truth.size());
  }
  KILN_CHECK(metric == "macro_f1",
             "classification_metric: unknown metric '{}' (accuracy or macro_f1)", metric);
  std::vector<double> tp(num_classes), fp(num_classes), fn(num_classes);
  for (size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] == predicted[i]) {
      ++tp[truth[i]];
    } else {
      ++fn[truth[i]];
      ++fp[predicted[i]];
    }
  }
  double sum = 0;
  int present = 0;
  for (int64_t c = 0; c < num_classes; ++c) {
    if (tp[c] + fp[c] + fn[c] == 0) continue;
    ++present;
    sum += 2 * tp[c] / (2 * tp[c] + fp[c] + fn[c]);
  }
  return present ? sum / present : 0.0;
}

SearchSpace tfidf_linear_space() {
  SearchSpace s;
  s.add(Param::log_float("learning_rate", 1e-3, 1.0, 0.1));
  s.add(Param::log_float("l2", 1e-8, 1e-2, 1e-5));
  s.add(Param::int_range("epochs", 10, 400, 20, /*log=*/true));
  s.add(Param::categorical("loss", {"logistic", "squared_hinge"}, "logistic"));
  s.add(Param::categorical("word_ngrams", {"1", "2"}, "1"));
  s.add(Param::categorical("char_ngrams", {"none", "3-4", "3-5"}, "none"));
  s.add(Param::int_range("max_features", 1000, 500000, 2000, /*log=*/true));
  return s;
}

// The linear model's standard strong configuration (FLAML's points_to_evaluate): word 1-2 and
// character 3-5 grams, squared hinge (scikit-learn's LinearSVC on TF-IDF, the usual text
// baseline), at 200 / 100 / 50 full-batch steps; the search runs the longest that fits. Fortunes
// (5,410 quotes, 24 topics): 0.574 test accuracy at 200 steps, where the low-cost start's region
// tops out near 0.55.
std::vector<Config> tfidf_linear_recipes() {
  std::vector<Config> out;
  for (double epochs : {200.0, 100.0, 50.0}) {
    out.push_back(Config{{"learning_rate", 0.3},
                         {"l2", 1e-4},
                         {"epochs", epochs},
                         {"loss", std::string("squared_hinge")},
                         {"word_ngrams", std::string("2")},
                         {"char_ngrams", std::string("3-5")},
                         {"max_features", 500000.0}});
  }
  return out;
}

// n-grams per word (word n-grams: 1 or 2; byte n-grams: ~6 per word and length) × (steps + the
// featurisation, worth ~10 steps).
double tfidf_cost(const Config& c) {
  const std::string& ch = get_choice(c, "char_ngrams");
  const double grams = std::stod(get_choice(c, "word_ngrams")) + (ch == "none"  ? 0.0
                                                                  : ch == "3-4" ? 12.0
                                                                                : 18.0);
  return grams * (get_number(c, "epochs") + 10.0);
}

SearchSpace nasbert_finetune_space() {
  SearchSpace s;
  // Fine-tuning the shipped encoder wants ~1e-3 and ~10 epochs (its model card): the space
  // reaches both; the search starts cheap (1 epoch) as CFO does.
  s.add(Param::log_float("learning_rate", 1e-5, 3e-3, 1e-3));
  s.add(Param::int_range("epochs", 1, 12, 1));
  s.add(Param::int_range("max_length", 32, 256, 32, /*log=*/true));
  s.add(Param::categorical("batch_size", {"16", "32", "64"}, "32"));
  return s;
}

std::vector<Config> nasbert_finetune_recipes() {
  // The shipped encoder's model card recipe (1e-3, 64 tokens, batch 32: 0.565 on the fortunes
  // topics at 10 epochs), at 10, 6 and 3 epochs: the search runs the longest that fits.
  std::vector<Config> out;
  for (double epochs : {10.0, 6.0, 3.0}) {
    out.push_back(Config{{"learning_rate", 1e-3},
                         {"epochs", epochs},
                         {"max_length", 64.0},
                         {"batch_size", std::string("32")}});
  }
  return out;
}

double encoder_cost(const Config& c) {
  return get_number(c, "epochs") * get_number(c, "max_length");
}

SearchSpace nasbert_scratch_space() {
  SearchSpace s;
  // From random weights the same recipe (1e-3, ~10 epochs) serves; the model card's from-scratch
  // figures use it.
  s.add(Param::log_float("learning_rate", 1e-4, 3e-3, 1e-3));
  s.add(Param::int_range("epochs", 1, 12, 1));
  s.add(Param::int_range("max_length", 32, 256, 32, /*log=*/true));
  s.add(Param::categorical("batch_size", {"16", "32", "64"}, "32"));
  return s;
}

TextClassificationSearch::TextClassificationSearch(TextClassificationSearchOptions options)
    : options_(std::move(options)) {
  KILN_CHECK(options_.metric == "accuracy" || options_.metric == "macro_f1",
             "automl text-classification: unknown metric '{}' (accuracy or macro_f1)",
             options_.metric);
  KILN_CHECK(options_.time_budget_s > 0,
             "automl text-classification: the time budget must be > 0 s, got {}",
             options_.time_budget_s);
}

TextSearchResult TextClassificationSearch::run(const data::Table& table) const {
  const Clock::time_point t0 = Clock::now();
  const auto& o = options_;
  check_columns(table, {o.label_column, o.text_column, o.text2_column});
  KILN_CHECK(table.num_rows() > 0, "automl text-classification: the table has no rows");
  const data::Column& label_col = table[o.label_column];
  std::vector<std::string> label_strings;
  if (label_col.type() == data::ColumnType::String) {
    label_strings = label_col.strings();
  } else {
    const data::LabelEncoder keys = data::LabelEncoder::from_key_column(label_col);
    label_strings = keys.inverse_transform(label_col.keys());
  }
  const data::LabelEncoder enc = data::LabelEncoder::fit(label_strings, data::KeyOrdering::ByValue);
  KILN_CHECK(enc.size() >= 2,
             "automl text-classification: label column '{}' has {} class{} ({}); a classifier "
             "needs at least 2",
             o.label_column, enc.size(), enc.size() == 1 ? "" : "es",
             enc.size() ? enc.values()[0] : std::string());
  const std::vector<int64_t> y = enc.transform(label_strings);
  const std::vector<std::string> texts = model_texts(table, o.text_column, o.text2_column);

  const data::SplitIndices split = data::stratified_split(y, o.validation_fraction, o.seed);
  KILN_CHECK(!split.train.empty() && !split.test.empty(),
             "automl text-classification: {} rows are too few for a {:.0f} % validation split",
             table.num_rows(), o.validation_fraction * 100);
  std::vector<std::string> train_x, valid_x;
  std::vector<int64_t> train_y, valid_y;
  for (size_t i : split.train) train_x.push_back(texts[i]), train_y.push_back(y[i]);
  for (size_t i : split.test) valid_x.push_back(texts[i]), valid_y.push_back(y[i]);
  const int64_t k = static_cast<int64_t>(enc.size());

  // The linear learner's validation, ML.NET's rule: below cv_max_rows rows, k-fold
  // cross-validation over all rows, stratified (its trials take seconds, and one 20 % holdout of a
  // few thousand texts ranks close configurations by noise); otherwise the encoders' holdout. Each
  // fold fits its own featuriser on its training rows.
  struct TextFold {
    std::vector<std::string> train_x, valid_x;
    std::vector<int64_t> train_y, valid_y;
  };
  std::vector<TextFold> linear_folds;
  const bool linear_cv = o.folds >= 2 && texts.size() < o.cv_max_rows &&
                         texts.size() >= 2 * static_cast<size_t>(o.folds);
  if (linear_cv) {
    for (const data::SplitIndices& s :
         data::stratified_kfold(y, static_cast<size_t>(o.folds), o.seed)) {
      TextFold f;
      for (size_t i : s.train) f.train_x.push_back(texts[i]), f.train_y.push_back(y[i]);
      for (size_t i : s.test) f.valid_x.push_back(texts[i]), f.valid_y.push_back(y[i]);
      linear_folds.push_back(std::move(f));
    }
  } else {
    linear_folds.push_back(TextFold{train_x, valid_x, train_y, valid_y});
  }
  double linear_train_rows = 0;
  for (const TextFold& f : linear_folds) {
    linear_train_rows += static_cast<double>(f.train_x.size()) / linear_folds.size();
  }

  // The best trial's own model, kept so that a refit the budget cuts costs nothing more (the
  // tuner's best is the first trial with the highest score, hence the strict >).
  std::optional<TfidfLinearModel> kept_linear;
  std::optional<text::TextClassificationModel> kept_encoder;
  double kept_score = -std::numeric_limits<double>::infinity();
  Learner linear{.name = "tfidf_linear",
                 .space = tfidf_linear_space(),
                 .run = [&](const Config& c, const Deadline& dl) {
                   // The mean metric over the folds; the first fold's model is kept.
                   double sum = 0;
                   std::optional<TfidfLinearModel> first;
                   for (const TextFold& f : linear_folds) {
                     TfidfLinearModel m = TfidfLinearModel::fit(
                         f.train_x, f.train_y, enc.values(), tfidf_options(c),
                         linear_options(c, o.seed), [&] { return dl.passed(); });
                     if (m.stopped() || dl.passed())
                       return TrialOutcome{.status = TrialStatus::Stopped};
                     const std::vector<int64_t> pred = argmax_rows(m.predict_proba(f.valid_x));
                     sum += classification_metric(o.metric, f.valid_y, pred, k);
                     if (!first) first = std::move(m);
                   }
                   const double score = sum / static_cast<double>(linear_folds.size());
                   if (score > kept_score) {
                     kept_score = score;
                     kept_linear = std::move(first);
                     kept_encoder.reset();
                   }
                   return TrialOutcome{.score = score};
                 }};
  const data::Table train_table = table.select_rows(split.train);
  const data::Table valid_table = table.select_rows(split.test);
  auto encoder_learner = [&](const std::string& name, SearchSpace space, bool from_scratch) {
    return Learner{
        .name = name,
        .space = std::move(space),
        .run = [&, from_scratch](const Config& c, const Deadline& dl) {
          try {
            text::TextClassificationModel m =
                text::TextClassification(finetune_options(c, o.label_column, o.text_column,
                                                          o.text2_column, o.seed, dl, from_scratch))
                    .fit(train_table);
            if (dl.passed()) return TrialOutcome{.status = TrialStatus::Stopped};
            const text::ClassificationMetrics met = m.evaluate(valid_table);
            const double score = o.metric == "accuracy" ? met.micro_accuracy : met.macro_f1;
            if (score > kept_score) {
              kept_score = score;
              kept_encoder = std::move(m);
              kept_linear.reset();
            }
            return TrialOutcome{.score = score};
          } catch (const DeadlinePassed&) {
            return TrialOutcome{.status = TrialStatus::Stopped};
          }
        }};
  };
  std::vector<Learner> learners;
  std::vector<std::string> notes;
  for (const std::string& name : o.learners) {
    if (name == "tfidf_linear") {
      if (linear_cv) {
        notes.push_back(fmt::format(
            "tfidf_linear: scored by {}-fold cross-validation over all {} rows (fewer than {}, "
            "ML.NET's rule); the encoders on the {:.0f} % holdout",
            o.folds, texts.size(), o.cv_max_rows, o.validation_fraction * 100));
      }
      learners.push_back(linear);
      learners.back().recipes = tfidf_linear_recipes();
      learners.back().cost = tfidf_cost;
    } else if (name == "nasbert_finetune") {
      if (text::shipped_encoder_dir().empty()) {
        notes.push_back(
            "nasbert_finetune: skipped, the shipped encoder models/nasbert-5m-en is not "
            "installed (set KILN_PRETRAINED_DIR)");
      } else {
        Learner l = encoder_learner(name, nasbert_finetune_space(), false);
        l.recipes = nasbert_finetune_recipes();
        l.cost = encoder_cost;
        learners.push_back(std::move(l));
      }
    } else if (name == "nasbert_scratch") {
      learners.push_back(encoder_learner(name, nasbert_scratch_space(), true));
    } else {
      KILN_CHECK(false,
                 "automl text-classification: unknown learner '{}' (tfidf_linear, "
                 "nasbert_finetune, nasbert_scratch)",
                 name);
    }
  }
  KILN_CHECK(!learners.empty(), "automl text-classification: no learner to search over ({})",
             fmt::join(notes, "; "));
  // The refit on all rows: an encoder's time grows with the rows (a 77.7 s fortunes trial refitted
  // in 93.1 s, 0.96 × the row ratio); TF-IDF's faster, as its n-gram tables grow too (the old
  // dense trainer, fortunes, ratio 1.25: 148k- and 200k-feature trials needed more than 1.9× and
  // 2.4× their time on all rows; 3 r² = 4.7×). The sparse trainer's refits take ~1.1 × one
  // fold's time (fortunes 16.9 s for 15.4 s, SpamAssassin 13.2 s for 13.5 s), so 3 r² per fold
  // is generous, not tight.
  const double scale = static_cast<double>(texts.size()) / static_cast<double>(train_x.size());
  const double linear_scale = static_cast<double>(texts.size()) / linear_train_rows;
  const double linear_fits = static_cast<double>(linear_folds.size());
  detail::RefitReserve refit_reserve(t0 + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(o.time_budget_s)),
                                     [&](const TrialRecord& r) {
                                       return r.learner == "tfidf_linear"
                                                  ? r.seconds / linear_fits * 3.0 * linear_scale *
                                                        linear_scale
                                                  : r.seconds * 1.2 * scale;
                                     });
  SearchOptions so{.time_budget_s = o.time_budget_s,
                   .seed = o.seed,
                   .max_trials = o.max_trials,
                   .reserve_s = [&](const TrialRecord* best) { return refit_reserve(best); },
                   .tracking = {.experiment = "automl-text-classification", .metric = o.metric}};
  if (o.verbose) {
    so.on_trial = [](const TrialRecord& r) {
      fmt::print("{}", trial_line(r, 16, nullptr));
      std::fflush(stdout);
    };
  }
  TextSearchResult result;
  result.search = search(learners, so);
  result.search.notes.insert(result.search.notes.begin(), notes.begin(), notes.end());
  result.metric = o.metric;
  result.labels = enc.values();
  result.budget_s = o.time_budget_s;
  result.label_column = o.label_column;
  result.text_column = o.text_column;
  result.text2_column = o.text2_column;
  KILN_CHECK(result.search.best >= 0,
             "automl text-classification: no trial finished within {} s ({} tried; the first "
             "was {}): give a larger --time",
             o.time_budget_s, result.search.trials.size(),
             result.search.trials.empty()
                 ? std::string("never started")
                 : std::string(to_string(result.search.trials.front().status)));
  const Config& best = result.search.trials[result.search.best].config;
  result.winner = result.search.trials[result.search.best].learner;
  // Refit on every row within what is left of the budget; keep the best trial's own model when
  // the refit is predicted not to fit, or is cut (so the budget holds).
  const Deadline end{t0 + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(o.time_budget_s))};
  const Clock::time_point r0 = Clock::now();
  const bool scratch = result.winner == "nasbert_scratch";
  refit_reserve(&result.search.trials[result.search.best]);
  if (!refit_reserve.refit_fits()) {
    result.search.notes.push_back(fmt::format(
        "the refit on all rows was skipped (predicted at {:.0f} s, more than the {:.0f} s left "
        "when its trial finished): the model is the best trial's own, trained on the training "
        "split",
        refit_reserve.predicted(), refit_reserve.left_then()));
  } else if (result.winner == "tfidf_linear") {
    TfidfLinearModel refit =
        TfidfLinearModel::fit(texts, y, enc.values(), tfidf_options(best),
                              linear_options(best, o.seed), [&] { return end.passed(); });
    result.refitted = !refit.stopped();
    if (result.refitted) result.model = std::move(refit);
  } else {
    try {
      result.encoder_model =
          text::TextClassification(finetune_options(best, o.label_column, o.text_column,
                                                    o.text2_column, o.seed, end, scratch))
              .fit(table);
      result.refitted = true;
    } catch (const DeadlinePassed&) {
      result.refitted = false;
    }
  }
  if (!result.refitted) {
    KILN_CHECK(kept_linear.has_value() || kept_encoder.has_value(),
               "automl text-classification: the best trial's model was not kept (an internal "
               "error)");
    if (kept_linear) {
      result.model = std::move(*kept_linear);
    } else {
      result.encoder_model = std::move(*kept_encoder);
    }
  }
  result.refit_seconds = std::chrono::duration<double>(Clock::now() - r0).count();
  if (!result.refitted && refit_reserve.refit_fits()) {
    result.search.notes.push_back(
        "the refit on all rows was cut by the budget: the model is the best trial's own, "
        "trained on the training split");
  }
  result.total_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return result;
}

TextTestMetrics TextSearchResult::evaluate(const data::Table& table) const {
  check_columns(table, {label_column, text_column, text2_column});
  KILN_CHECK(table.num_rows() > 0, "automl text-classification: the test table has no rows");
  if (encoder_model) {
    const text::ClassificationMetrics m = encoder_model->evaluate(table);
    return {.accuracy = m.micro_accuracy, .macro_f1 = m.macro_f1};
  }
  const data::Column& label_col = table[label_column];
  std::vector<std::string> truth_strings =
      label_col.type() == data::ColumnType::String
          ? label_col.strings()
          : data::LabelEncoder::from_key_column(label_col).inverse_transform(label_col.keys());
  // A label the search never saw is one more class, always predicted wrong.
  const int64_t k = static_cast<int64_t>(labels.size());
  std::vector<int64_t> truth;
  for (const std::string& t : truth_strings) {
    const auto it = std::find(labels.begin(), labels.end(), t);
    truth.push_back(it == labels.end() ? k : it - labels.begin());
  }
  const std::vector<int64_t> pred =
      argmax_rows(model.predict_proba(model_texts(table, text_column, text2_column)));
  return {.accuracy = classification_metric("accuracy", truth, pred, k + 1),
          .macro_f1 = classification_metric("macro_f1", truth, pred, k + 1)};
}

std::string TextSearchResult::leaderboard_table() const {
  return leaderboard_rows(search, metric, 13, [](double score) { return score; }) +
         leaderboard_footer(search, "", "rows", refitted, refit_seconds, total_seconds, budget_s);
}

json::Value TextSearchResult::leaderboard_json() const {
  json::Value v = leaderboard_head("text-classification", metric, search, refitted, refit_seconds,
                                   total_seconds, budget_s);
  add_trials_json(v, search, [](double score) { return score; });
  return v;
}

void TextSearchResult::save(const std::filesystem::path& dir) const {
  json::Value extra = json::Value::object();
  extra["task"] = "text-classification";
  extra["label_column"] = label_column;
  extra["text_column"] = text_column;
  if (!text2_column.empty()) {
    // The featuriser reads text_column + "\n" + text2_column.
    extra["text2_column"] = text2_column;
    extra["text_join"] = "\n";
  }
  extra["metric"] = metric;
  extra["refitted_on_all_rows"] = refitted;
  if (search.best >= 0) {
    extra["hyperparameters"] = config_json(search.trials[search.best].config);
    extra["validation_metric"] = *search.trials[search.best].score;
  }
  if (encoder_model) {
    std::filesystem::create_directories(dir);
    encoder_model->save(dir);
    text::export_onnx(*encoder_model, dir / "model.onnx");
  } else {
    model.save(dir, extra);
  }
  data::detail::AtomicFile f(dir / "leaderboard.json", "automl save");
  f.write(leaderboard_json().dump());
  f.commit();
}

data::Table read_text_table(const std::filesystem::path& path, const std::string& label_column,
                            const std::string& text_column, const std::string& text2_column) {
  KILN_CHECK_AS(IOError, std::filesystem::exists(path), "read_text_table: {}: no such file",
                path.string());
  KILN_CHECK_AS(IOError, std::filesystem::file_size(path) > 0,
                "read_text_table: {}: the file is empty", path.string());
  const bool tsv = path.extension() == ".tsv";
  data::CsvOptions opts{.separator = tsv ? '\t' : ','};
  opts.columns = {{.name = label_column, .type = data::ColumnType::String},
                  {.name = text_column, .type = data::ColumnType::String}};
  if (!text2_column.empty())
    opts.columns.push_back({.name = text2_column, .type = data::ColumnType::String});
  data::Table t = data::load_csv(path, opts);
  KILN_CHECK(t.num_rows() > 0, "read_text_table: {}: no data rows after the header", path.string());
  return t;
}

}  // namespace kiln::automl
