// kiln automl image-classification (kiln/automl/image_search.h): the search on a small synthetic
// image folder (coloured squares on noise) against the majority baseline and the budget, a trial
// cut at the deadline, reproducibility, the saved winner in ONNX Runtime and reloaded, bad input.
#include "kiln/automl/image_search.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "automl/automl_test_util.h"
#include "kiln/autograd/functions.h"
#include "kiln/data/split.h"
#include "kiln/tensor/error.h"
#include "kiln/vision/image.h"
#include "kiln/vision/transforms.h"
#include "onnx/ort_runner.h"

namespace kiln::automl {
namespace {

using test_util::what;

namespace fs = std::filesystem;

// root/<red|green|blue>/<i>.png: `per_class` 16×16 RGB images per class, each a filled square of
// the class's colour (side 5..9, anywhere) on gray noise (values 60..195).
fs::path write_squares(const std::string& name, int per_class, uint64_t seed) {
  const fs::path root = fs::temp_directory_path() / ("kiln_automl_img_" + name);
  fs::remove_all(root);
  data::SplitMix64 rng(seed);
  const std::vector<std::string> classes = {"red", "green", "blue"};
  constexpr int64_t kSide = 16;
  for (size_t k = 0; k < classes.size(); ++k) {
    fs::create_directories(root / classes[k]);
    for (int i = 0; i < per_class; ++i) {
      std::vector<uint8_t> px(kSide * kSide * 3);  // (H, W, 3)
      for (uint8_t& v : px) v = static_cast<uint8_t>(60 + rng.bounded(136));
      const auto side = static_cast<int64_t>(5 + rng.bounded(5));
      const auto top = static_cast<int64_t>(rng.bounded(kSide - side + 1));
      const auto left = static_cast<int64_t>(rng.bounded(kSide - side + 1));
      for (int64_t y = top; y < top + side; ++y) {
        for (int64_t x = left; x < left + side; ++x) {
          for (size_t c = 0; c < 3; ++c) {
            px[(y * kSide + x) * 3 + c] = c == k ? 230 : 30;
          }
        }
      }
      vision::write_png((root / classes[k] / fmt::format("{:03d}.png", i)).string(),
                        from_vector(px, {kSide, kSide, 3}));
    }
  }
  return root;
}

double accuracy(const vision::ImageClassificationModel& m, const data::Table& t) {
  const std::vector<float> p = m.predict_proba(t).to_vector<float>();  // (N, K)
  const size_t k = m.classes().size();
  const std::vector<int64_t>& truth = t["Label"].keys();
  size_t right = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    const float* row = p.data() + i * k;
    right += std::max_element(row, row + k) - row == truth[i];
  }
  return static_cast<double>(right) / static_cast<double>(truth.size());
}

TEST(ImageClassificationSearch, BeatsTheMajorityWithinTheBudget) {
  const data::Table train = vision::load_image_folder_table(write_squares("train", 30, 1).string());
  const data::Table test = vision::load_image_folder_table(write_squares("test", 20, 2).string());
  // The good configurations (3+ epochs at batch 16) come after ~10 trials of ~0.1 s in Release;
  // ASan + UBSan builds train ~10-20x slower, so they get a budget that allows as many trials.
#if defined(__SANITIZE_ADDRESS__)
  constexpr double kBudget = 40;
#else
  constexpr double kBudget = 6;
#endif
  const auto t0 = std::chrono::steady_clock::now();
  const ImageSearchResult r =
      ImageClassificationSearch({.time_budget_s = kBudget, .seed = 0, .learners = {"lenet5"}})
          .run(train);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("{}search + refit took {:.2f} s of a {:.0f} s budget\n", r.leaderboard_table(), took,
             kBudget);
  // The budget includes the refit; a trial stops at the first batch after its deadline.
  EXPECT_LE(took, 1.5 * kBudget);
  // 90 RGB images of 16 × 16: 69,120 values, k-fold when 69,120 / 0.9 < 10⁷ × budget / 3600 s,
  // i.e. from a 27.6 s budget on (FLAML's rule).
  EXPECT_EQ(r.validation, kBudget > 27.7 ? "5-fold cross-validation" : "holdout 20 %");
  EXPECT_EQ(r.rows, 90u);
  EXPECT_EQ(r.options.height, 16);
  EXPECT_EQ(r.options.color, vision::ColorMode::RGB);
  EXPECT_EQ(r.labels, (std::vector<std::string>{"blue", "green", "red"}));
  ASSERT_GE(r.search.best, 0);
  ASSERT_TRUE(r.model.has_value());
  // Balanced classes: the majority baseline is 1/3, on the folds and on fresh images.
  EXPECT_GT(*r.search.trials[static_cast<size_t>(r.search.best)].score, 0.6);
  const double test_acc = accuracy(*r.model, test);
  fmt::print("held-out accuracy {:.3f} (majority 0.333)\n", test_acc);
  EXPECT_GT(test_acc, 0.6);
  EXPECT_NE(r.leaderboard_table().find("rank"), std::string::npos);
  const json::Value j = r.leaderboard_json();
  EXPECT_EQ(j.at("task").as_string(), "image-classification");
  EXPECT_EQ(j.at("trials").size(), r.search.trials.size());
}

TEST(ImageClassificationSearch, ATrialPastItsDeadlineIsReportedStopped) {
  // A ResNet on 32 px images, 5 folds of 288 images, takes many seconds per trial: a 3 s budget,
  // of which the search holds back 1 s for the refit, cuts the first. (With 72 images per fold a
  // one-thread trial finished inside the 2 s once the block cache reused blocks by size class.)
  const data::Table t = vision::load_image_folder_table(write_squares("stop", 120, 3).string());
  for (const double fraction : {1.0, 0.25}) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string msg = what([&] {
      ImageClassificationSearch({.time_budget_s = 3,
                                 .cv_values_per_hour = 1e12,  // 5 folds whatever the budget
                                 .max_trial_fraction = fraction,
                                 .image_size = 32,
                                 .learners = {"resnet"}})
          .run(t);
    });
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("{}\nstopped after {:.2f} s of a 3 s budget\n", msg, took);
    // The whole search time (2 s), or a quarter of it (~0.5 s).
    const std::string why = fraction == 1 ? "the search's deadline passed)"
                                          : "% of the search time (max_trial_fraction))";
    EXPECT_NE(msg.find("(1 tried; the first was stopped: "), std::string::npos) << msg;
    EXPECT_NE(msg.find(why), std::string::npos) << msg;
    // Cut at the first batch after the deadline, not at the end of the trial.
    EXPECT_LT(took, fraction == 1 ? 4.5 : 3.0);
  }
}

TEST(ImageClassificationSearch, SameSeedSameTrialsAtAFixedTrialCount) {
  const data::Table t = vision::load_image_folder_table(write_squares("seed", 12, 4).string());
  auto trials = [&](uint64_t seed) {
    const ImageSearchResult r =
        ImageClassificationSearch(
            {.time_budget_s = 100, .seed = seed, .max_trials = 3, .learners = {"lenet5"}})
            .run(t);
    std::vector<std::pair<Config, double>> out;
    for (const TrialRecord& tr : r.search.trials)
      out.emplace_back(tr.config, tr.score.value_or(-1));
    return out;
  };
  const auto a = trials(5);
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(a, trials(5));
}

TEST(ImageClassificationSearch, SavedWinnerMatchesKilnInOnnxRuntimeAndReloads) {
  const data::Table t = vision::load_image_folder_table(write_squares("onnx", 12, 5).string());
  for (const std::string learner : {"lenet5", "mobilenet"}) {
    const ImageSearchResult r =
        ImageClassificationSearch(
            {.time_budget_s = 100, .seed = 0, .max_trials = 1, .folds = 2, .learners = {learner}})
            .run(t);
    ASSERT_EQ(r.winner, learner);
    EXPECT_TRUE(r.refitted);
    const fs::path dir = fs::temp_directory_path() / ("kiln_automl_img_saved_" + learner);
    fs::remove_all(dir);
    r.save(dir);
    for (const char* f : {"model.onnx", "model.safetensors", "config.json", "leaderboard.json"}) {
      EXPECT_TRUE(fs::exists(dir / f)) << f;
    }
    // The pixels Kiln feeds its network: decoded, resized, x / 255, channels first.
    const Tensor images = vision::load_table_images(t, r.options);  // (N, S, S, 3) uint8
    const int64_t n = images.size(0), s = r.options.height;
    std::vector<float> pixels;
    for (int64_t i = 0; i < n; ++i) {
      const std::vector<float> x = vision::to_tensor(images.select(0, i)).to_vector<float>();
      pixels.insert(pixels.end(), x.begin(), x.end());
    }
    const std::vector<float> kiln = r.model->predict_proba(t).to_vector<float>();
    const auto out =
        test::run_in_ort((dir / "model.onnx").string(),
                         {{"pixels", test::NpyArray::of<float>({n, 3, s, s}, pixels)}});
    const std::vector<float> ort = out.at("probabilities").values<float>();
    ASSERT_EQ(ort.size(), kiln.size());
    // float32 convolutions (im2col GEMMs vs ORT's kernels) and a softmax over 3 classes: the sums
    // run in a different order, a few ulps of values <= 1.
    for (size_t i = 0; i < ort.size(); ++i) EXPECT_NEAR(ort[i], kiln[i], 1e-5) << learner << i;
    // Reloaded from model.safetensors and config.json: the same network, the same outputs.
    const vision::ImageClassificationModel back = load_image_classifier(dir);
    EXPECT_EQ(back.classes(), r.labels);
    const std::vector<float> again = back.predict_proba(t).to_vector<float>();
    ASSERT_EQ(again.size(), kiln.size());
    for (size_t i = 0; i < again.size(); ++i) EXPECT_FLOAT_EQ(again[i], kiln[i]) << i;
    fs::remove_all(dir);
  }
}

TEST(ImageClassificationSearch, BadInputGivesClearErrors) {
  const data::Table t = vision::load_image_folder_table(write_squares("bad", 3, 6).string());
  EXPECT_EQ(what([&] { ImageClassificationSearch({.label_column = "Class"}).run(t); }),
            "automl image-classification: no column 'Class' (columns: Label, ImagePath)");
  const data::Table one = t.select_rows(std::vector<size_t>{0, 1, 2});
  EXPECT_EQ(what([&] { ImageClassificationSearch({}).run(one); }),
            "automl image-classification: label column 'Label' has 1 class (blue); a classifier "
            "needs at least 2");
  EXPECT_NE(what([&] {
              ImageClassificationSearch({}).run(t);
            }).find("9 images are too few for 5-fold cross-validation (need >= 10)"),
            std::string::npos);
  EXPECT_NE(what([&] { ImageClassificationSearch({.metric = "rmse"}); }).find("unknown metric"),
            std::string::npos);
  EXPECT_NE(what([&] {
              ImageClassificationSearch({.learners = {"vgg"}});
            }).find("unknown learner 'vgg' (lenet5, mobilenet, resnet)"),
            std::string::npos);
  EXPECT_NE(what([&] {
              ImageClassificationSearch({.max_trial_fraction = 0});
            }).find("max_trial_fraction must be in (0, 1], got 0"),
            std::string::npos);
  const fs::path empty = fs::temp_directory_path() / "kiln_automl_img_empty";
  fs::remove_all(empty);
  fs::create_directories(empty / "a");
  EXPECT_NE(what([&] {
              vision::load_image_folder_table(empty.string());
            }).find("holds no .png/.jpg/.jpeg image"),
            std::string::npos);
  fs::remove_all(empty);
  EXPECT_NE(what([&] { load_image_classifier(empty); }).find("config.json: no such file"),
            std::string::npos);
}

}  // namespace
}  // namespace kiln::automl
