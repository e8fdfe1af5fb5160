// ImageClassificationSearch (image_search.h): labels, image size, validation folds, the CNN
// learners, the refit, the leaderboard, save and load.
// Legend: N = images, C = channels, S = the square side, K = classes.
#include "kiln/automl/image_search.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "kiln/autograd/functions.h"
#include "kiln/automl/automl.h"
#include "kiln/automl/leaderboard.h"
#include "kiln/automl/trainer_internal.h"
#include "kiln/data/label_encoding.h"
#include "kiln/data/split.h"
#include "kiln/io/file.h"
#include "kiln/onnx/export.h"
#include "kiln/tensor/error.h"
#include "kiln/vision/image.h"
#include "kiln/vision/models.h"

namespace kiln::automl {
namespace {

namespace fs = std::filesystem;
using detail::argmax_rows;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

const std::vector<std::string> kLearners = {"lenet5", "mobilenet", "resnet"};

// Ends Model::fit after the first batch that finishes past the deadline (the trial is then
// reported as stopped).
class StopAtDeadline : public callbacks::Callback {
 public:
  explicit StopAtDeadline(Deadline d) : deadline_(d) {}
  void on_batch_end(int64_t batch, Logs& logs) override {
    (void)batch, (void)logs;
    if (deadline_.passed()) model().stop_training = true;
  }

 private:
  Deadline deadline_;
};

// The trainer options of one configuration of learner `architecture`.
vision::ImageClassificationOptions trainer_options(const vision::ImageClassificationOptions& base,
                                                   const std::string& architecture, const Config& c,
                                                   const Deadline& dl) {
  vision::ImageClassificationOptions o = base;
  o.architecture = architecture;
  o.learning_rate = get_number(c, "learning_rate");
  o.epochs = static_cast<int>(get_number(c, "epochs"));
  o.batch_size = std::stoll(get_choice(c, "batch_size"));
  o.callbacks = {std::make_shared<StopAtDeadline>(dl)};
  return o;
}

// x: (B, C, S, S) -> softmax(net(x)): (B, K). Holds the trained network without owning it.
class ProbabilityHead : public nn::Module {
 public:
  using nn::Module::forward;
  explicit ProbabilityHead(nn::Module& net) : nn::Module("ImageClassifier") {
    net_ = register_module("net", nn::ModulePtr(nn::ModulePtr(), &net));
  }
  Tensor forward(const Tensor& x) override { return softmax(net_->forward(x), -1); }

 private:
  nn::ModulePtr net_;
};

std::string color_name(vision::ColorMode c) {
  return c == vision::ColorMode::RGB ? "rgb" : "gray";
}

// One validation fold: rows of the working table.
struct Fold {
  std::vector<size_t> train_rows, valid_rows;
  std::vector<int64_t> valid_y;
};

}  // namespace

SearchSpace image_cnn_space() {
  SearchSpace s;
  s.add(Param::log_float("learning_rate", 1e-4, 1e-2, 1e-3));
  s.add(Param::int_range("epochs", 1, 30, 2, /*log=*/true));
  s.add(Param::categorical("batch_size", {"16", "32", "64"}, "32"));
  return s;
}

ImageClassificationSearch::ImageClassificationSearch(ImageClassificationSearchOptions options)
    : options_(std::move(options)) {
  const auto& o = options_;
  KILN_CHECK(o.metric == "accuracy" || o.metric == "macro_f1",
             "automl image-classification: unknown metric '{}' (accuracy or macro_f1)", o.metric);
  KILN_CHECK(o.time_budget_s > 0,
             "automl image-classification: the time budget must be > 0 s, got {}", o.time_budget_s);
  KILN_CHECK(o.folds >= 2, "automl image-classification: folds must be >= 2, got {}", o.folds);
  KILN_CHECK(o.image_size == 0 || o.image_size >= 8,
             "automl image-classification: image_size must be 0 (from the data) or >= 8, got {}",
             o.image_size);
  KILN_CHECK(o.max_trial_fraction > 0 && o.max_trial_fraction <= 1,
             "automl image-classification: max_trial_fraction must be in (0, 1], got {}",
             o.max_trial_fraction);
  KILN_CHECK(!o.learners.empty(), "automl image-classification: no learner to search over");
  for (const std::string& l : o.learners) {
    KILN_CHECK(std::find(kLearners.begin(), kLearners.end(), l) != kLearners.end(),
               "automl image-classification: unknown learner '{}' ({})", l,
               fmt::join(kLearners, ", "));
  }
}

ImageSearchResult ImageClassificationSearch::run(const data::Table& table) const {
  const Clock::time_point t0 = Clock::now();
  const auto& o = options_;
  for (const std::string& col : {o.label_column, o.image_path_column}) {
    KILN_CHECK(table.has_column(col), "automl image-classification: no column '{}' (columns: {})",
               col, fmt::join(table.column_names(), ", "));
  }
  KILN_CHECK(table.num_rows() > 0, "automl image-classification: the table has no images");
  KILN_CHECK(table[o.image_path_column].type() == data::ColumnType::String,
             "automl image-classification: image path column '{}' must hold strings, got {}",
             o.image_path_column, data::to_string(table[o.image_path_column].type()));

  // Labels: one Key column over the classes sorted by value, so every fold and the refit see
  // the same class ids.
  const data::Column& label_col = table[o.label_column];
  std::vector<std::string> label_text;
  for (size_t r = 0; r < table.num_rows(); ++r) label_text.push_back(label_col.value_string(r));
  const data::LabelEncoder enc = data::LabelEncoder::fit(label_text, data::KeyOrdering::ByValue);
  KILN_CHECK(enc.size() >= 2,
             "automl image-classification: label column '{}' has {} class{} ({}); a classifier "
             "needs at least 2",
             o.label_column, enc.size(), enc.size() == 1 ? "" : "es",
             enc.size() ? enc.values()[0] : std::string());
  const std::vector<int64_t> y = enc.transform(label_text);  // (N)
  data::Table work;
  work.add_column(data::Column::from_keys(o.label_column, y, enc.values()));
  work.add_column(data::Column(o.image_path_column, table[o.image_path_column].strings()));

  // Image size and colour: from the first image unless given.
  vision::ImageClassificationOptions base{.label_column = o.label_column,
                                          .image_path_column = o.image_path_column,
                                          .image_folder = o.image_folder,
                                          .seed = o.seed};
  {
    std::string first = work[o.image_path_column].strings()[0];
    if (!o.image_folder.empty() && !fs::path(first).is_absolute())
      first = (fs::path(o.image_folder) / first).string();
    const Tensor img = vision::read_image(first, vision::ColorMode::Keep);  // (H, W, C)
    const int64_t side = o.image_size > 0
                             ? o.image_size
                             : std::clamp<int64_t>(std::max(img.size(0), img.size(1)), 16, 32);
    base.height = base.width = side;
    base.color = o.color != vision::ColorMode::Keep ? o.color
                 : img.size(2) >= 3                 ? vision::ColorMode::RGB
                                                    : vision::ColorMode::Gray;
  }

  // Validation: k stratified folds below cv_max_rows images when the data is small for the
  // budget (image_search.h), else one stratified holdout.
  ImageSearchResult result;
  const size_t n = y.size();
  const double values = static_cast<double>(n) * static_cast<double>(base.height * base.width) *
                        (base.color == vision::ColorMode::RGB ? 3.0 : 1.0);
  std::vector<data::SplitIndices> splits;
  if (n < o.cv_max_rows && values / 0.9 < o.cv_values_per_hour * o.time_budget_s / 3600) {
    KILN_CHECK(n >= 2 * static_cast<size_t>(o.folds),
               "automl image-classification: {} images are too few for {}-fold "
               "cross-validation (need >= {})",
               n, o.folds, 2 * o.folds);
    splits = data::stratified_kfold(y, static_cast<size_t>(o.folds), o.seed);
    result.validation = fmt::format("{}-fold cross-validation", o.folds);
  } else {
    splits = {data::stratified_split(y, o.holdout_fraction, o.seed)};
    result.validation = fmt::format("holdout {:.0f} %", o.holdout_fraction * 100);
  }
  std::vector<Fold> folds;
  double train_rows = 0;
  for (const data::SplitIndices& s : splits) {
    Fold f{.train_rows = {s.train.begin(), s.train.end()},
           .valid_rows = {s.test.begin(), s.test.end()},
           .valid_y = {}};
    KILN_CHECK(!f.train_rows.empty() && !f.valid_rows.empty(),
               "automl image-classification: {} images are too few for the validation split", n);
    for (size_t i : f.valid_rows) f.valid_y.push_back(y[i]);
    train_rows += static_cast<double>(f.train_rows.size()) / static_cast<double>(splits.size());
    folds.push_back(std::move(f));
  }
  const auto k = static_cast<int64_t>(enc.size());

  const double search_s = std::max(0.0, o.time_budget_s - seconds_since(t0));
  // The learners: train on every fold, score the mean validation metric. The first fold's model
  // of the best trial so far is kept, in case the final refit does not fit the budget.
  std::optional<vision::ImageClassificationModel> fallback;
  std::optional<double> fallback_score;
  const auto make_learner = [&](const std::string& name) {
    return Learner{
        .name = name,
        .space = image_cnn_space(),
        .run = [&, name](const Config& c, const Deadline& dl) {
          // This trial's own deadline: the search's, or its share of the search time if sooner.
          const double cap = o.max_trial_fraction * search_s;
          const Deadline trial_dl{
              std::min(dl.at, Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(cap)))};
          const auto stopped = [&] {
            return TrialOutcome{
                .status = TrialStatus::Stopped,
                .message = dl.passed() ? std::string("the search's deadline passed")
                                       : fmt::format("ran past {:.1f} s, {:.0f} % of the search "
                                                     "time (max_trial_fraction)",
                                                     cap, o.max_trial_fraction * 100)};
          };
          const vision::ImageClassificationTrainer trainer(
              trainer_options(base, name, c, trial_dl));
          double sum = 0;
          std::optional<vision::ImageClassificationModel> first;
          for (const Fold& f : folds) {
            vision::ImageClassificationModel m = trainer.fit(work.select_rows(f.train_rows));
            if (trial_dl.passed()) return stopped();
            const Tensor p = m.predict_proba(work.select_rows(f.valid_rows));  // (n_valid, K)
            sum += classification_metric(o.metric, f.valid_y, argmax_rows(p), k);
            if (!first) first = std::move(m);
          }
          const double score = sum / static_cast<double>(folds.size());
          if (!std::isfinite(score)) {
            return TrialOutcome{.status = TrialStatus::Failed,
                                .message = "the predictions diverged (non-finite metric)"};
          }
          if (!fallback_score || score > *fallback_score) fallback = first, fallback_score = score;
          return TrialOutcome{.score = score};
        }};
  };
  std::vector<Learner> learners;
  for (const std::string& name : o.learners) {
    Learner l = make_learner(name);
    if (name == "lenet5") {
      // The LeNet-5 trainer's recipe (0.9705 on 8,000 MNIST digits at 10 epochs).
      for (double epochs : {10.0, 6.0, 3.0}) {
        l.recipes.push_back(
            Config{{"learning_rate", 1e-3}, {"epochs", epochs}, {"batch_size", std::string("32")}});
      }
      l.cost = [](const Config& c) { return get_number(c, "epochs"); };
    }
    learners.push_back(std::move(l));
  }

  // The refit trains once on all images, a trial once per fold on train_rows images.
  const double refit_scale =
      static_cast<double>(n) / train_rows / static_cast<double>(folds.size());
  detail::RefitReserve refit_reserve(
      t0 + std::chrono::duration_cast<Clock::duration>(
               std::chrono::duration<double>(o.time_budget_s)),
      [&](const TrialRecord& r) { return r.seconds * refit_scale * 1.5; });
  SearchOptions so{.time_budget_s = search_s,
                   .seed = o.seed,
                   .max_trials = o.max_trials,
                   .reserve_s = [&](const TrialRecord* best) { return refit_reserve(best); },
                   .tracking = {.experiment = "automl-image-classification", .metric = o.metric}};
  if (o.verbose) {
    so.on_trial = [](const TrialRecord& r) {
      fmt::print("{}", trial_line(r, 9, nullptr));
      std::fflush(stdout);
    };
  }
  result.search = search(learners, so);
  result.metric = o.metric;
  result.labels = enc.values();
  result.budget_s = o.time_budget_s;
  result.rows = n;
  KILN_CHECK(result.search.best >= 0,
             "automl image-classification: no trial finished within {} s ({} tried; the first "
             "was {}{}): give a larger --time",
             o.time_budget_s, result.search.trials.size(),
             result.search.trials.empty()
                 ? std::string("never started")
                 : std::string(to_string(result.search.trials.front().status)),
             result.search.trials.empty() || result.search.trials.front().message.empty()
                 ? std::string()
                 : ": " + result.search.trials.front().message);
  const TrialRecord& best = result.search.trials[static_cast<size_t>(result.search.best)];
  result.winner = best.learner;

  // Refit on every image within what is left of the budget.
  const Deadline end{t0 + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(o.time_budget_s))};
  const Clock::time_point r0 = Clock::now();
  result.options = trainer_options(base, best.learner, best.config, end);
  refit_reserve(&best);
  if (refit_reserve.refit_fits()) {
    vision::ImageClassificationModel refit =
        vision::ImageClassificationTrainer(result.options).fit(work);
    result.refitted = !end.passed();
    if (result.refitted) result.model = std::move(refit);
  }
  result.options.callbacks.clear();
  if (!result.refitted) {
    result.model = std::move(fallback);
    result.search.notes.push_back(fmt::format(
        "the refit on all images was {}: the best trial's first-fold model (trained on that "
        "fold's training images) is the result",
        refit_reserve.refit_fits()
            ? std::string("cut by the budget")
            : fmt::format("skipped (predicted at {:.0f} s, more than the {:.0f} s left when its "
                          "trial finished)",
                          refit_reserve.predicted(), refit_reserve.left_then())));
  }
  result.refit_seconds = seconds_since(r0);
  result.total_seconds = seconds_since(t0);
  return result;
}

std::string ImageSearchResult::leaderboard_table() const {
  const std::string what = fmt::format(", {}, {} images at {}x{} {},", validation, rows,
                                       options.height, options.width, color_name(options.color));
  return leaderboard_rows(search, metric, 9, [](double score) { return score; }) +
         leaderboard_footer(search, what, "images", refitted, refit_seconds, total_seconds,
                            budget_s);
}

json::Value ImageSearchResult::leaderboard_json() const {
  json::Value v = leaderboard_head("image-classification", metric, search, refitted, refit_seconds,
                                   total_seconds, budget_s);
  v["validation"] = validation;
  v["image_size"] = options.height;
  v["color"] = color_name(options.color);
  add_trials_json(v, search, [](double score) { return score; });
  return v;
}

void ImageSearchResult::save(const fs::path& dir) const {
  KILN_CHECK(model.has_value(), "ImageSearchResult::save: there is no model (the search failed)");
  fs::create_directories(dir);
  const int64_t c = options.color == vision::ColorMode::RGB ? 3 : 1;
  const int64_t s = options.height;
  ProbabilityHead head(model->model().module());
  onnx::ExportOptions eo;
  eo.input_names = {"pixels"};
  eo.output_names = {"probabilities"};
  eo.dynamic_axes = {{"pixels", {{0, "batch"}}}, {"probabilities", {{0, "batch"}}}};
  eo.doc_string = fmt::format(
      "image classification from kiln automl ({}): input = {} images resized (bilinear) to {}x{}, "
      "(batch, {}, {}, {}) float32 = pixel / 255; output = class probabilities in config.json's "
      "label order",
      winner, color_name(options.color), s, s, c, s, s);
  onnx::export_model(head, {zeros({2, c, s, s})}, (dir / "model.onnx").string(), eo);
  model->model().save_weights((dir / "model.safetensors").string());

  json::Value config = json::Value::object();
  config["task"] = "image-classification";
  config["architecture"] = options.architecture;
  config["image_size"] = s;
  config["color"] = color_name(options.color);
  config["label_column"] = options.label_column;
  config["image_path_column"] = options.image_path_column;
  json::Value labels_json = json::Value::array();
  for (const std::string& l : labels) labels_json.push_back(l);
  config["labels"] = std::move(labels_json);
  config["metric"] = metric;
  config["validation"] = validation;
  config["refitted_on_all_images"] = refitted;
  if (search.best >= 0) {
    const TrialRecord& best = search.trials[static_cast<size_t>(search.best)];
    config["hyperparameters"] = config_json(best.config);
    config["validation_metric"] = *best.score;
  }
  config["onnx_input"] = fmt::format("pixels: (batch, {}, {}, {}) float32 in [0, 1]", c, s, s);
  config["onnx_output"] = "probabilities: (batch, K) float32 in labels order";
  config["preprocessing"] = fmt::format(
      "decode, convert to {}, resize to {}x{} (bilinear), divide by 255, channels first "
      "(kiln::vision::ImageClassificationModel does this)",
      color_name(options.color), s, s);
  io::write_text_file(dir / "config.json", config.dump(), "ImageSearchResult::save");
  io::write_text_file(dir / "leaderboard.json", leaderboard_json().dump(),
                      "ImageSearchResult::save");
}

vision::ImageClassificationModel load_image_classifier(const fs::path& dir) {
  for (const char* f : {"config.json", "model.safetensors"}) {
    KILN_CHECK_AS(IOError, fs::exists(dir / f), "load_image_classifier: {}: no such file",
                  (dir / f).string());
  }
  const json::Value config = io::read_json_file(dir / "config.json");
  std::vector<std::string> labels;
  for (const json::Value& l : config.at("labels").as_array()) labels.push_back(l.as_string());
  vision::ImageClassificationOptions o;
  o.architecture = config.at("architecture").as_string();
  o.height = o.width = config.at("image_size").as_int();
  o.color =
      config.at("color").as_string() == "rgb" ? vision::ColorMode::RGB : vision::ColorMode::Gray;
  o.label_column = config.at("label_column").as_string();
  o.image_path_column = config.at("image_path_column").as_string();
  const int64_t c = o.color == vision::ColorMode::RGB ? 3 : 1;
  const auto k = static_cast<int64_t>(labels.size());
  nn::ModulePtr net;
  if (o.architecture == "lenet5") {
    net = vision::lenet5({.in_channels = c, .num_classes = k, .image_size = o.height});
  } else if (o.architecture == "mobilenet") {
    net = vision::mobilenet({.in_channels = c, .num_classes = k});
  } else {
    KILN_CHECK(o.architecture == "resnet",
               "load_image_classifier: {}: unknown architecture '{}' ({})",
               (dir / "config.json").string(), o.architecture, fmt::join(kLearners, ", "));
    net = vision::resnet({.in_channels = c, .num_classes = k});
  }
  auto model = std::make_shared<Model>(net, "image_classification");
  model->load_weights((dir / "model.safetensors").string());
  return vision::ImageClassificationModel(model, std::move(labels), o, History{});
}

}  // namespace kiln::automl
