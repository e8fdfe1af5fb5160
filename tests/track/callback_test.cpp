// callbacks::Tracking on a real fit(), the trainers' hook (active run / tracking on or off), and
// the HTML views: one SVG point per logged epoch, one curve per compared run, escaped names.
#include <gtest/gtest.h>

#include <string>

#include "kiln/autograd/functions.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/random.h"
#include "kiln/track/callback.h"
#include "kiln/track/report.h"
#include "kiln/train/train.h"
#include "track/track_test_util.h"

namespace kiln::track {
namespace {

namespace fs = std::filesystem;
using testing_util::scratch_dir;

// Occurrences of `needle` in `text`.
size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// 64 rows, validation_split 0.25 -> 48 training rows = 3 steps of 16 per epoch.
std::string fit_tracked(const fs::path& dir, int epochs) {
  manual_seed(3);
  Tensor x = randn({64, 5}), y = randint(0, 3, {64});
  Sequential model({layers::Dense(8, "relu"), layers::Dense(3)});
  model.compile(optimizers::Adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  auto cb = callbacks::Tracking(RunOptions{.experiment = "fit", .name = "tiny", .dir = dir},
                                {{"note", "from the test"}});
  model.fit(x, y,
            {.epochs = epochs,
             .batch_size = 16,
             .validation_split = 0.25,
             .callbacks = {cb},
             .seed = 5,
             .verbose = 0});
  return cb->run()->id();
}

TEST(TrackingCallback, LogsFitOptionsEpochsAndSteps) {
  const fs::path dir = scratch_dir("callback");
  const std::string id = fit_tracked(dir, 3);
  const RunRecord r = Store(dir).get_run(id);
  EXPECT_EQ(r.info.status, RunStatus::Finished);  // the callback owned the run and ended it
  EXPECT_EQ(r.info.name, "tiny");
  EXPECT_EQ(r.params.at("fit.epochs"), "3");
  EXPECT_EQ(r.params.at("fit.batch_size"), "16");
  EXPECT_EQ(r.params.at("fit.validation_split"), "0.25");
  EXPECT_EQ(r.params.at("fit.seed"), "5");
  EXPECT_EQ(r.params.at("optimizer"), "Adam");
  EXPECT_EQ(r.params.at("optimizer.lr"), "0.01");
  EXPECT_EQ(r.params.at("loss"), "sparse_categorical_crossentropy");
  EXPECT_EQ(r.params.at("metrics"), "accuracy");
  EXPECT_EQ(r.params.at("model.parameters"), "75");  // 5*8+8 + 8*3+3
  EXPECT_EQ(r.params.at("note"), "from the test");
  for (const char* key : {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}) {
    const auto h = r.history(key);
    ASSERT_EQ(h.size(), 3u) << key;
    for (int e = 0; e < 3; ++e) {
      EXPECT_EQ(h[static_cast<size_t>(e)].epoch, e + 1) << key;
      EXPECT_EQ(h[static_cast<size_t>(e)].step, 3 * (e + 1)) << key;
    }
  }
  const auto steps = r.history("batch/loss");
  ASSERT_EQ(steps.size(), 9u);
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(steps[i].step, static_cast<int64_t>(i + 1));
    EXPECT_EQ(steps[i].epoch, -1);
  }
  EXPECT_EQ(r.final_metrics.at("loss"), r.history("loss").back().value);
}

TEST(TrackingCallback, TrainerHookFollowsTheActiveRunAndTheSwitch) {
  const fs::path dir = scratch_dir("hook");
  set_tracking_enabled(false);
  EXPECT_EQ(trainer_callback("T", {}), nullptr);
  {
    auto run = Run::start({.experiment = "cli", .dir = dir});
    ActiveRun active(run);
    auto cb = std::dynamic_pointer_cast<callbacks::TrackingCallback>(
        trainer_callback("T", {{"architecture", "x"}}));
    ASSERT_NE(cb, nullptr);
    EXPECT_EQ(cb->run(), run);  // logs into the active run even with tracking off
  }
  EXPECT_EQ(active_run(), nullptr);
  set_tracking_dir(dir);
  EXPECT_TRUE(tracking_enabled());
  EXPECT_EQ(tracking_dir(), dir);
  EXPECT_NE(trainer_callback("T", {}), nullptr);
  set_tracking_enabled(false);
}

TEST(Report, ChartsHaveOnePointPerEpochAndOneCurvePerRun) {
  const fs::path dir = scratch_dir("report");
  const std::string a = fit_tracked(dir, 4), b = fit_tracked(dir, 2);
  Store store(dir);
  const RunRecord ra = store.get_run(a), rb = store.get_run(b);
  const std::string page = run_page(ra, {});
  const size_t loss_chart = page.find("data-title=\"loss\"");
  ASSERT_NE(loss_chart, std::string::npos);
  const std::string chart = page.substr(loss_chart, page.find("</svg>", loss_chart) - loss_chart);
  EXPECT_EQ(count(chart, "<g class=\"points\" data-run=\"" + a + "\" data-key=\"loss\""), 1u);
  EXPECT_EQ(count(chart, "<circle class=\"pt\""), 8u);  // loss and val_loss, 4 epochs each
  const std::string cmp = compare_page({ra, rb}, {});
  const size_t vl = cmp.find("data-title=\"val_loss\"");
  ASSERT_NE(vl, std::string::npos);
  const std::string vchart = cmp.substr(vl, cmp.find("</svg>", vl) - vl);
  EXPECT_EQ(count(vchart, "<polyline class=\"series\" data-run=\"" + a + "\""), 1u);
  EXPECT_EQ(count(vchart, "<polyline class=\"series\" data-run=\"" + b + "\""), 1u);
  EXPECT_EQ(count(vchart, "<circle class=\"pt\""), 6u);
  const std::string report = report_html({ra, rb}, {}, {});
  EXPECT_EQ(count(report, "<section class=\"run\" id=\"run-"), 2u);
  EXPECT_EQ(count(report, "http://") + count(report, "https://"),
            count(report, "http://www.w3.org/2000/svg"))
      << "the report must load nothing from elsewhere";
}

TEST(Report, EscapesNamesAndValues) {
  RunRecord r;
  r.info.id = "0123456789ab";
  r.info.name = "<script>alert(1)</script>";
  r.params["x\"y"] = "<b>";
  const std::string page = run_page(r, {});
  EXPECT_EQ(page.find("<script>alert"), std::string::npos);
  EXPECT_NE(page.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(page.find("x&quot;y"), std::string::npos);
  EXPECT_EQ(svg_chart("empty", "epoch", {}).find("<polyline"), std::string::npos);
}

}  // namespace
}  // namespace kiln::track
