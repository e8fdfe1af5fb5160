// Callbacks: EarlyStopping, ModelCheckpoint, CSVLogger, LearningRateScheduler, ReduceLROnPlateau,
// TerminateOnNaN, LambdaCallback. A LambdaCallback listed first injects a scripted "score" into the
// epoch logs so each rule is tested on known values.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kiln/autograd/functions.h"
#include "kiln/tensor/error.h"
#include "kiln/train/train.h"
#include "train/train_test_util.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

std::string temp_dir(const std::string& name) {
  const std::string dir = testing_util::scratch_path(name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Fixture {
  Sequential model{layers::Dense(2)};
  Tensor x = randn({16, 3}), y = randint(0, 2, {16});
  explicit Fixture(double lr = 0.0) {
    model.compile(optimizers::SGD(lr), "sparse_categorical_crossentropy");
  }
  History fit(std::vector<callbacks::CallbackPtr> cbs, int epochs) {
    return model.fit(
        x, y, {.epochs = epochs, .batch_size = 8, .callbacks = std::move(cbs), .verbose = 0});
  }
};

// Sets logs["score"] to script[epoch] at each epoch end.
callbacks::CallbackPtr scripted(std::vector<double> script) {
  return callbacks::LambdaCallback({.on_epoch_end = [script](int epoch, Logs& logs) {
    logs["score"] = script[static_cast<size_t>(epoch)];
  }});
}

TEST(EarlyStopping, StopsAfterPatienceEpochsWithoutImprovement) {
  Fixture f;
  auto stop = callbacks::EarlyStopping("score", /*patience=*/2);
  History h = f.fit({scripted({5, 4, 4.5, 4.2, 1, 1}), stop}, 6);
  // Best 4 at epoch 1; epochs 2 and 3 do not improve -> stop at epoch 3.
  EXPECT_EQ(h.size(), 4u);
  EXPECT_EQ(stop->stopped_epoch(), 3);
  EXPECT_EQ(stop->best_epoch(), 1);
  EXPECT_EQ(stop->best(), 4.0);
  auto maxmode = callbacks::EarlyStopping("val_accuracy", 0);
  EXPECT_EQ(callbacks::resolve_mode("auto", "val_accuracy"), "max");
  EXPECT_EQ(callbacks::resolve_mode("auto", "val_loss"), "min");
  auto delta = callbacks::EarlyStopping(
      callbacks::EarlyStoppingOptions{.monitor = "score", .patience = 1, .min_delta = 0.5});
  EXPECT_EQ(f.fit({scripted({5, 4.7, 4.6}), delta}, 3).size(), 2u);  // 4.7 is not 0.5 better than 5
}

TEST(EarlyStopping, RestoresTheBestWeights) {
  Fixture f(0.5);
  nn::StateDict at_best;
  auto snap = callbacks::LambdaCallback({.on_epoch_end = [&](int epoch, Logs&) {
    if (epoch == 1)
      for (const auto& [k, t] : f.model.module().state_dict())
        at_best.insert(k, Tensor(t.data().clone()));
  }});
  auto stop = callbacks::EarlyStopping(callbacks::EarlyStoppingOptions{
      .monitor = "score", .patience = 1, .restore_best_weights = true});
  f.fit({scripted({3, 1, 2, 0}), snap, stop}, 4);
  EXPECT_EQ(stop->stopped_epoch(), 2);
  for (const auto& [k, t] : f.model.module().state_dict())
    EXPECT_EQ(t.to_vector<float>(), at_best.at(k).to_vector<float>()) << k;
}

TEST(ModelCheckpoint, FormatsTheTemplate) {
  EXPECT_EQ(
      callbacks::format_filepath("w-{epoch:02d}-{val_loss:.4f}.kiln", 4, {{"val_loss", 0.123456}}),
      "w-05-0.1235.kiln");
  EXPECT_EQ(callbacks::format_filepath("{{literal}}-{epoch}", 0, {}), "{literal}-1");
  try {
    callbacks::format_filepath("m-{val_acc}.kiln", 0, {{"loss", 1.0}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("available: epoch, loss"), std::string::npos) << e.what();
  }
  EXPECT_THROW(callbacks::format_filepath("{loss:q}", 0, {{"loss", 1.0}}), Error);
  EXPECT_THROW(callbacks::format_filepath("{loss", 0, {{"loss", 1.0}}), Error);
}

TEST(ModelCheckpoint, SavesEveryEpochOrOnlyTheBest) {
  const std::string dir = temp_dir("ckpt");
  Fixture f(0.1);
  auto every = callbacks::ModelCheckpoint(dir + "/all/m-{epoch:02d}.kiln");
  auto best = callbacks::ModelCheckpoint(
      callbacks::ModelCheckpointOptions{.filepath = dir + "/best-{epoch}-{score:.1f}.kiln",
                                        .monitor = "score",
                                        .save_best_only = true});
  f.fit({scripted({3, 1, 2, 0.5}), every, best}, 4);
  EXPECT_EQ(every->saved().size(), 4u);
  EXPECT_TRUE(fs::exists(dir + "/all/m-04.kiln"));
  EXPECT_EQ(best->saved(),
            (std::vector<std::string>{dir + "/best-1-3.0.kiln", dir + "/best-2-1.0.kiln",
                                      dir + "/best-4-0.5.kiln"}));
  Sequential r = load_model(dir + "/all/m-02.kiln");
  EXPECT_EQ(r.epoch(), 2);
  EXPECT_EQ(r.history().size(), 2u);
}

TEST(CSVLogger, WritesSortedColumnsAndAppends) {
  const std::string path = temp_dir("csv") + "/log.csv";
  Fixture f;
  f.fit({callbacks::CSVLogger(path)}, 2);
  std::string text = read_text(path);
  EXPECT_EQ(text.substr(0, text.find('\n')), "epoch,loss");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
  f.fit({callbacks::CSVLogger(path, ',', /*append=*/true)}, 1);
  text = read_text(path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 4);  // no second header
  f.fit({callbacks::CSVLogger(path)}, 1);
  text = read_text(path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);  // overwritten
}

TEST(LearningRateScheduler, SetsTheRateEachEpoch) {
  Fixture f(1.0);
  std::vector<int> epochs_seen;
  auto sched = callbacks::LearningRateScheduler([&](int epoch, double lr) {
    epochs_seen.push_back(epoch);
    return lr * 0.5;
  });
  History h = f.fit({sched}, 3);
  EXPECT_EQ(epochs_seen, (std::vector<int>{0, 1, 2}));
  EXPECT_DOUBLE_EQ(f.model.optimizer()->lr(), 0.125);
  EXPECT_EQ(h["learning_rate"], (std::vector<double>{0.5, 0.25, 0.125}));
}

TEST(ReduceLROnPlateau, ReducesAfterPatienceThenCoolsDown) {
  Fixture f(1.0);
  auto reduce = callbacks::ReduceLROnPlateau(callbacks::ReduceLROnPlateauOptions{
      .monitor = "score", .factor = 0.5, .patience = 2, .cooldown = 2, .min_lr = 0.3});
  History h = f.fit({scripted({1, 1, 1, 1, 1, 1, 1}), reduce}, 7);
  // Keras' rule: epoch 0 sets the best; 1, 2 wait -> reduce at 2 (logged rates are the epoch's
  // own); cooldown 2 is counted down at epochs 3 and 4 (4 already counts as waiting, as Keras
  // decrements first); 5 reduces again, floored at min_lr = 0.3.
  EXPECT_EQ(h["learning_rate"], (std::vector<double>{1, 1, 1, 0.5, 0.5, 0.5, 0.3}));
  EXPECT_DOUBLE_EQ(f.model.optimizer()->lr(), 0.3);
}

TEST(TerminateOnNaN, StopsAtTheFirstBadBatch) {
  Fixture f(0.1);
  f.model.compile(optimizers::SGD(0.1), "mse");
  int64_t batches = 0;
  auto count = callbacks::LambdaCallback({.on_batch_end = [&](int64_t, Logs&) { ++batches; }});
  Tensor y = full({16, 2}, std::nan(""));
  History h = f.model.fit(f.x, y,
                          {.epochs = 5,
                           .batch_size = 4,
                           .callbacks = {count, callbacks::TerminateOnNaN()},
                           .verbose = 0});
  EXPECT_EQ(batches, 1);
  EXPECT_EQ(h.size(), 1u);
  EXPECT_TRUE(std::isnan(h["loss"][0]));
}

TEST(LambdaCallback, SeesEveryHookInOrder) {
  Fixture f;
  std::vector<std::string> events;
  auto cb = callbacks::LambdaCallback({
      .on_train_begin = [&](Logs&) { events.push_back("train_begin"); },
      .on_train_end = [&](Logs&) { events.push_back("train_end"); },
      .on_epoch_begin = [&](int e, Logs&) { events.push_back("epoch_begin " + std::to_string(e)); },
      .on_epoch_end =
          [&](int e, Logs& l) {
            events.push_back("epoch_end " + std::to_string(e) + " " +
                             std::to_string(l.count("loss")));
          },
      .on_batch_begin = [&](int64_t b,
                            Logs&) { events.push_back("batch_begin " + std::to_string(b)); },
      .on_batch_end =
          [&](int64_t b, Logs& l) {
            events.push_back("batch_end " + std::to_string(b) + " " +
                             std::to_string(l.count("loss")));
          },
  });
  f.fit({cb}, 1);
  EXPECT_EQ(events, (std::vector<std::string>{"train_begin", "epoch_begin 0", "batch_begin 0",
                                              "batch_end 0 1", "batch_begin 1", "batch_end 1 1",
                                              "epoch_end 0 1", "train_end"}));
  EXPECT_THROW(cb->model(), Error);  // only during fit
}

}  // namespace
}  // namespace kiln
