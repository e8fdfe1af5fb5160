#pragma once
// kiln automl for images: a time-boxed search over Kiln's CNN presets for image classification of
// an image folder (one sub-folder per class), returning the best model, its ONNX file and the
// leaderboard (ML.NET's `mlnet image-classification --dataset --train-time`).
//
//   automl::ImageClassificationSearch search({.time_budget_s = 300, .seed = 0});
//   automl::ImageSearchResult r = search.run(vision::load_image_folder_table("digits/"));
//   std::puts(r.leaderboard_table().c_str());
//   r.save("digits_model");  // model.onnx, model.safetensors, config.json, leaderboard.json
//   vision::ImageClassificationModel m = automl::load_image_classifier("digits_model");
//
// Images: every image is converted to one colour mode and resized (bilinear) to one square side;
// by default both come from the first image (gray when it has fewer than 3 channels, else RGB; its
// larger side clamped to [16, 32]: the presets are small-image CNNs and the trials run on CPU).
// Validation follows ML.NET's and FLAML's rules together: stratified k-fold cross-validation (k =
// 5, a trial's score being the mean over the folds) when there are fewer than cv_max_rows (10,000)
// images and images × values per image / 0.9 < cv_values_per_hour (10⁷) × the budget in hours;
// otherwise one seeded stratified 80/20 holdout. The second condition is FLAML's (its
// SMALL_LARGE_THRES): on 8,000 MNIST digits (6.3M values) and 300 s, five fits per trial left 13
// trials and 0.953 accuracy; one fit per trial lets the search reach the 10-epoch recipe. The tuner
// is kiln::automl::search (tuner.h). Each trial trains vision::ImageClassificationTrainer (Adam,
// sparse cross-entropy, seeded) on a fold's training images; a callback ends training at the first
// batch after the deadline and the trial is reported as stopped; so is a trial that runs longer
// than max_trial_fraction (1/4) of the search time, which drops a learner whose cheapest trial is
// too slow. The best configuration is refitted on all images inside the budget: search holds back
// the estimated refit time (the best trial's time per fold × all images / fold training images ×
// 1.5 + 1 s) while it fits in what is left when that trial finishes; when it does not, or the refit
// is cut anyway, the best trial's first-fold model (trained within the budget) is the result and a
// note says so.
//
// Learners, cheapest first, each the preset of kiln/vision/models.h with default widths:
//   "lenet5"    LeNet-5 (62k parameters at 28 px);
//   "mobilenet" MobileNet-v1-style, depthwise-separable blocks;
//   "resnet"    CIFAR-style ResNet {2, 2, 2} at width 16 (175k parameters).
// Each has the space image_cnn_space(): learning_rate, epochs, batch_size. "lenet5" also has
// the LeNet trainer's recipe (Adam 1e-3, batch 32) at 10, 6 and 3 epochs, run after its start
// when it fits half the time left (Learner::recipes).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "kiln/automl/tuner.h"
#include "kiln/data/columns.h"
#include "kiln/io/json.h"
#include "kiln/vision/image_classification.h"

namespace kiln::automl {

struct ImageClassificationSearchOptions {
  /// Key, String or Int column of classes, and String column of image paths (relative ones are
  /// resolved against image_folder), as vision::load_image_folder_table names them.
  std::string label_column = "Label";
  std::string image_path_column = "ImagePath";
  std::string image_folder = "";
  double time_budget_s = 60;        // the whole run: search and refit
  std::string metric = "accuracy";  // or "macro_f1"
  uint64_t seed = 0;
  int max_trials = 0;  // 0: until the budget is spent
  int folds = 5;
  size_t cv_max_rows = 10000;       // k-fold below this many images, a holdout from here on
  double cv_values_per_hour = 1e7;  // and k-fold only while images × values / 0.9 < this × hours
  double holdout_fraction = 0.2;
  /// A trial is stopped once it has run for this share of the search time (the budget less the
  /// preparation), so that the first trial of an expensive learner cannot use up the budget (on
  /// 8,000 MNIST digits, 2 cores, one 5-fold MobileNet trial ran past 280 s of 300).
  double max_trial_fraction = 0.25;
  /// Side of the square the images are resized to; 0: the first image's larger side, clamped to
  /// [16, 32].
  int64_t image_size = 0;
  /// Gray or RGB; Keep: gray when the first image has fewer than 3 channels, else RGB.
  vision::ColorMode color = vision::ColorMode::Keep;
  bool verbose = false;  // one line per trial on stdout
  /// The learners to search over (see above), in this order.
  std::vector<std::string> learners = {"lenet5", "mobilenet", "resnet"};
};

/// Every CNN learner's space: learning_rate (log 1e-4..1e-2, init 1e-3), epochs (int log 1..30,
/// init 2), batch_size ("16", "32", "64"; init "32"). The start is CFO's low-cost point: 2 epochs.
SearchSpace image_cnn_space();

struct ImageSearchResult {
  SearchResult search;     // scores: the metric (higher is better)
  std::string metric;      // "accuracy" or "macro_f1"
  std::string validation;  // "5-fold cross-validation" or "holdout 20 %"
  std::string winner;      // the best trial's learner
  std::vector<std::string> labels;
  /// The trainer options of the result (architecture, image size and colour, hyper-parameters).
  vision::ImageClassificationOptions options;
  /// The result: refitted on all images, or the best trial's first-fold model (refitted false).
  std::optional<vision::ImageClassificationModel> model;
  bool refitted = false;
  double refit_seconds = 0;
  double total_seconds = 0;  // preparation, search and refit
  double budget_s = 0;
  size_t rows = 0;
  /// The leaderboard as a fixed-width table, best first (then the failed / stopped trials).
  std::string leaderboard_table() const;
  /// {"task", "metric", "validation", "budget_s", "seconds", "refitted", "image_size", "color",
  /// "best_trial", "trials": [{trial, trainer, hyperparameters, metric, seconds, status,
  /// message}], "notes"}.
  json::Value leaderboard_json() const;
  /// Writes into dir: model.onnx (input "pixels" (batch, C, S, S) float32 in [0, 1], output
  /// "probabilities" (batch, K) in labels order), model.safetensors (the network's weights by
  /// name), config.json (architecture, image size, colour, labels, preprocessing,
  /// hyper-parameters) and leaderboard.json.
  void save(const std::filesystem::path& dir) const;
};

class ImageClassificationSearch {
 public:
  /// Throws kiln::Error on an unknown metric or learner, a budget <= 0, folds < 2, an image size
  /// below 8 or a max_trial_fraction outside (0, 1].
  explicit ImageClassificationSearch(ImageClassificationSearchOptions options);
  /// Runs the search on `table` (one row per image). Throws kiln::Error naming a missing column
  /// (with the columns present), a table without rows, fewer than two classes, too few images
  /// for the folds, or a first image that cannot be read.
  ImageSearchResult run(const data::Table& table) const;

 private:
  ImageClassificationSearchOptions options_;
};

/// Reads a directory that ImageSearchResult::save wrote back into a model (the network rebuilt
/// from config.json, the weights from model.safetensors). Throws kiln::IOError naming a missing
/// file.
vision::ImageClassificationModel load_image_classifier(const std::filesystem::path& dir);

}  // namespace kiln::automl
