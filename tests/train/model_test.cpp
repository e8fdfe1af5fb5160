// Model / Sequential: compile, fit (validation split, shuffling, class weights), evaluate, predict,
// the
// *_on_batch steps, summary, save / load_model, and exact resumption from a checkpoint.
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "kiln/autograd/functions.h"
#include "kiln/nn/container.h"
#include "kiln/nn/linear.h"
#include "kiln/nn/loss.h"
#include "kiln/optim/adam.h"
#include "kiln/optim/sgd.h"
#include "kiln/tensor/error.h"
#include "kiln/train/train.h"
#include "train/train_test_util.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
  return testing_util::scratch_path(name);
}

// Three Gaussian blobs in 4-d: an easy 3-class problem.   x: (n, 4) float32, y: (n) int64
struct Blobs {
  Tensor x, y;
};
Blobs blobs(int64_t n, uint64_t seed) {
  Generator g(seed);
  Tensor y = randint(0, 3, {n}, kInt64, &g);
  Tensor centers = tensor({2.f, 0.f, 0.f, 1.f, 0.f, 2.f, 0.f, -1.f, 0.f, 0.f, 2.f, 0.f}, {3, 4});
  Tensor x = index_select(centers, 0, y) + randn({n, 4}, kFloat32, &g) * 0.5;
  return {x.detach(), y};
}

Sequential small_mlp() {
  return Sequential({layers::Dense(16, "relu"), layers::Dropout(0.2), layers::Dense(3)});
}

bool bitwise_equal(const nn::Module& a, const nn::Module& b) {
  auto sa = a.state_dict(), sb = b.state_dict();
  if (sa.size() != sb.size()) return false;
  for (size_t i = 0; i < sa.size(); ++i) {
    const Array x = sa.items()[i].second.data().contiguous(),
                y = sb.items()[i].second.data().contiguous();
    if (sa.items()[i].first != sb.items()[i].first || x.shape() != y.shape() ||
        x.nbytes() != y.nbytes() || std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) != 0)
      return false;
  }
  return true;
}

TEST(Model, FitLearnsBlobsAndReportsHistory) {
  manual_seed(3);
  Blobs d = blobs(600, 1);
  Sequential model = small_mlp();
  model.compile(optimizers::Adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  History h =
      model.fit(d.x, d.y, {.epochs = 5, .batch_size = 32, .validation_split = 0.2, .verbose = 0});
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h.keys(), (std::vector<std::string>{"accuracy", "loss", "val_accuracy", "val_loss"}));
  EXPECT_LT(h["loss"].back(), h["loss"].front());
  EXPECT_GT(h["val_accuracy"].back(), 0.9);
  Logs e = model.evaluate(d.x, d.y, {.verbose = 0});
  EXPECT_GT(e.at("accuracy"), 0.9);
  EXPECT_EQ(model.epoch(), 5);
  EXPECT_EQ(model.history().size(), 5u);
  Tensor p = model.predict(d.x, {.batch_size = 64});
  EXPECT_EQ(p.shape(), (Shape{600, 3}));
  EXPECT_FALSE(p.requires_grad());
  // predict is deterministic (dropout off) and equals predict_on_batch.
  EXPECT_EQ(p.to_vector<float>(), model.predict_on_batch(d.x).to_vector<float>());
}

TEST(Model, ErrorsNameTheRule) {
  Sequential model = small_mlp();
  try {
    model.fit(zeros({10, 4}), zeros({10}, kInt64));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not compiled"), std::string::npos) << e.what();
  }
  model.compile("adam", "sparse_categorical_crossentropy");
  try {
    model.fit(zeros({8000, 4}), zeros({7999}, kInt64), {.verbose = 0});
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("fit: x has 8000 rows but y has 7999"), std::string::npos)
        << e.what();
  }
  try {
    model.summary_string();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("call build(input_shape)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(model.fit(zeros({10, 4}), zeros({10}, kInt64), {.validation_split = 1.0}), Error);
  EXPECT_THROW(model.compile("adamax", "mse"), Error);
}

TEST(Model, SummaryLooksLikeKeras) {
  Sequential model({layers::Dense(128, "relu"), layers::Dropout(0.2), layers::BatchNormalization(),
                    layers::Dense(10)});
  model.build({-1, 784});
  const std::string s = model.summary_string();
  EXPECT_NE(s.find("Model: \"sequential\""), std::string::npos) << s;
  EXPECT_NE(s.find(" Layer (type)                Output Shape              Param #"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find(" dense (Dense)               (None, 128)               100,480"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find(" dropout (Dropout)           (None, 128)               0"), std::string::npos)
      << s;
  EXPECT_NE(s.find(" batch_normalization (BatchNormalization) (None, 128)  512"), std::string::npos)
      << s;
  EXPECT_NE(s.find(" dense_1 (Dense)             (None, 10)                1,290"),
            std::string::npos)
      << s;
  // 100,480 + 512 (256 trainable, 256 running stats) + 1,290
  EXPECT_NE(s.find("Total params: 102,282"), std::string::npos) << s;
  EXPECT_NE(s.find("Trainable params: 102,026"), std::string::npos) << s;
  EXPECT_NE(s.find("Non-trainable params: 256"), std::string::npos) << s;
}

TEST(Model, ValidationSplitTakesTheEndAndShufflingIsSeeded) {
  // Record which rows each phase asks for.
  std::vector<int64_t> seen;
  auto make = [&](std::vector<int64_t>& log) {
    return FunctionBatchSource(20, [&log](const std::vector<int64_t>& idx) {
      log.insert(log.end(), idx.begin(), idx.end());
      Tensor x = zeros({static_cast<int64_t>(idx.size()), 2});
      return Batch{x, zeros({static_cast<int64_t>(idx.size())}, kInt64), {}};
    });
  };
  auto run = [&](uint64_t seed) {
    seen.clear();
    Sequential m({layers::Dense(2)});
    m.compile(optimizers::SGD(0.0), "sparse_categorical_crossentropy");
    FunctionBatchSource src = make(seen);
    m.fit(src,
          {.epochs = 2, .batch_size = 4, .validation_split = 0.25, .seed = seed, .verbose = 0});
    return seen;
  };
  std::vector<int64_t> a = run(5), b = run(5), c = run(6);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // The first request builds the model (row 0); then each epoch: 15 training rows, then
  // rows 15..19.
  ASSERT_EQ(a.size(), 1u + 2 * 20);
  std::vector<int64_t> epoch0(a.begin() + 1, a.begin() + 16), val0(a.begin() + 16, a.begin() + 21);
  EXPECT_EQ(val0, (std::vector<int64_t>{15, 16, 17, 18, 19}));
  std::vector<int64_t> sorted = epoch0;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 15; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
  EXPECT_NE(epoch0, sorted);  // shuffled
}

// FitOptions::sample_lengths: the training rows of an epoch (fewer than 50 batches: one run) come
// longest first, the held-out rows are untouched, and a wrong count is a clear error.
TEST(Model, SampleLengthsGroupBatchesByLength) {
  std::vector<int64_t> seen;
  FunctionBatchSource src(20, [&seen](const std::vector<int64_t>& idx) {
    seen.insert(seen.end(), idx.begin(), idx.end());
    Tensor x = zeros({static_cast<int64_t>(idx.size()), 2});
    return Batch{x, zeros({static_cast<int64_t>(idx.size())}, kInt64), {}};
  });
  std::vector<int64_t> lengths(20);
  for (int64_t i = 0; i < 20; ++i) lengths[static_cast<size_t>(i)] = (i * 7) % 5;
  Sequential m({layers::Dense(2)});
  m.compile(optimizers::SGD(0.0), "sparse_categorical_crossentropy");
  m.fit(src, {.epochs = 1,
              .batch_size = 4,
              .validation_split = 0.25,
              .verbose = 0,
              .sample_lengths = lengths});
  ASSERT_EQ(seen.size(), 1u + 20);  // the build request, 15 training rows, 5 validation rows
  std::vector<int64_t> train(seen.begin() + 1, seen.begin() + 16);
  for (size_t i = 1; i < train.size(); ++i) {
    EXPECT_GE(lengths[static_cast<size_t>(train[i - 1])], lengths[static_cast<size_t>(train[i])])
        << "position " << i;
  }
  std::vector<int64_t> sorted = train;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 15; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
  try {
    m.fit(src, {.epochs = 1, .verbose = 0, .sample_lengths = std::vector<int64_t>(3, 1)});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sample_lengths has 3 entries but the data has 20 rows"),
              std::string::npos)
        << e.what();
  }
}

TEST(Model, ClassWeightBecomesSampleWeights) {
  // x = 0 and a zero-initialised bias: every prediction is 0, so the per-sample squared errors are
  // y².
  Sequential m({layers::Dense(1)});
  m.compile(optimizers::SGD(0.0), "mse");
  Tensor x = zeros({4, 2}), y = tensor({0.f, 1.f, 1.f, 0.f}, {4, 1});
  auto loss_with = [&](std::map<int64_t, double> cw) {
    return m.fit(x, y, {.epochs = 1, .batch_size = 4, .class_weight = cw, .verbose = 0})["loss"][0];
  };
  EXPECT_DOUBLE_EQ(loss_with({}), 0.5);
  EXPECT_DOUBLE_EQ(loss_with({{1, 3.0}}), 1.5);  // mean(1·0, 3·1, 3·1, 1·0)
  EXPECT_DOUBLE_EQ(loss_with({{0, 0.0}, {1, 0.0}}), 0.0);
}

TEST(Model, TrainOnBatchStepsAndTestOnBatchDoesNot) {
  manual_seed(4);
  Blobs d = blobs(64, 2);
  Sequential m({layers::Dense(8, "tanh"), layers::Dense(3)});
  m.compile(optimizers::SGD(0.5), "sparse_categorical_crossentropy", {"accuracy"});
  Logs first = m.train_on_batch(d.x, d.y);
  EXPECT_TRUE(first.count("accuracy"));
  Logs before = m.test_on_batch(d.x, d.y);
  Logs again = m.test_on_batch(d.x, d.y);
  EXPECT_EQ(before.at("loss"), again.at("loss"));
  for (int i = 0; i < 20; ++i) m.train_on_batch(d.x, d.y);
  EXPECT_LT(m.test_on_batch(d.x, d.y).at("loss"), before.at("loss"));
}

TEST(Model, AcceptsAPrebuiltOptimizerAndClipping) {
  Sequential m({layers::Dense(3)});
  m.build({-1, 4});
  auto sgd = std::make_shared<optim::SGD>(m.module().named_parameters(),
                                          optim::SGDOptions(0.1).momentum(0.9));
  m.compile(sgd, "sparse_categorical_crossentropy");
  EXPECT_EQ(m.optimizer(), sgd.get());
  Blobs d = blobs(32, 3);
  m.fit(d.x, d.y, {.epochs = 1, .verbose = 0});
  Sequential c({layers::Dense(3)});
  c.compile(optimizers::SGD(0.1).clipnorm(1e-3).global_clipnorm(1.0).clipvalue(0.5),
            "sparse_categorical_crossentropy");
  c.fit(d.x, d.y, {.epochs = 1, .verbose = 0});
  EXPECT_EQ(c.optimizer()->name(), "SGD");
}

TEST(Model, SoftmaxOutputMakesTheLossReadProbabilities) {
  Sequential m({layers::Dense(3, "softmax")});
  m.compile("adam", "sparse_categorical_crossentropy");
  EXPECT_FALSE(m.loss()->from_logits());
  Sequential l({layers::Dense(3)});
  l.compile("adam", "sparse_categorical_crossentropy");
  EXPECT_TRUE(l.loss()->from_logits());
  Blobs d = blobs(200, 4);
  History h = m.fit(d.x, d.y, {.epochs = 3, .verbose = 0});
  EXPECT_LT(h["loss"].back(), h["loss"].front());
}

TEST(Model, SaveAndLoadModelRoundTrip) {
  manual_seed(5);
  Blobs d = blobs(200, 5);
  Sequential m({layers::Dense(8, "relu"), layers::BatchNormalization(), layers::Dense(3)});
  m.compile(optimizers::AdamW(1e-2).schedule(optimizers::StepLR(1, 0.5)),
            "sparse_categorical_crossentropy", {"accuracy", metrics::TopKCategoricalAccuracy(2)});
  m.fit(d.x, d.y, {.epochs = 2, .verbose = 0});
  const std::string path = temp_path("roundtrip.kiln");
  m.save(path);
  Sequential r = load_model(path);
  EXPECT_TRUE(r.built());
  EXPECT_EQ(r.epoch(), 2);
  EXPECT_EQ(r.history()["loss"], m.history()["loss"]);
  EXPECT_TRUE(bitwise_equal(m.module(), r.module()));
  EXPECT_EQ(r.predict(d.x).to_vector<float>(), m.predict(d.x).to_vector<float>());
  EXPECT_EQ(r.optimizer()->name(), "AdamW");
  EXPECT_DOUBLE_EQ(r.optimizer()->lr(), m.optimizer()->lr());  // 1e-2 · 0.5²
  EXPECT_EQ(r.metrics().size(), 2u);
  EXPECT_EQ(r.metrics()[1]->name(), "top_k_categorical_accuracy");
  EXPECT_EQ(r.summary_string(), m.summary_string());
  // Weights alone, under plain state_dict names.
  const std::string wpath = temp_path("weights.safetensors");
  m.save_weights(wpath);
  EXPECT_NE(load_safetensors(wpath).find("0.weight"), nullptr);
  Sequential fresh({layers::Dense(8, "relu"), layers::BatchNormalization(), layers::Dense(3)});
  fresh.load_weights(wpath);
  EXPECT_TRUE(bitwise_equal(m.module(), fresh.module()));
  Sequential wrong({layers::Dense(9, "relu"), layers::BatchNormalization(), layers::Dense(3)});
  EXPECT_THROW(wrong.load_weights(wpath), Error);
  EXPECT_THROW(load_model(wpath), IOError);  // a weights-only file is not a model file
}

// Trains `epochs` more epochs and returns the model.
void train(Model& m, const Blobs& d, int from, int to) {
  m.fit(d.x, d.y,
        {.epochs = to,
         .batch_size = 16,
         .validation_split = 0.1,
         .seed = 77,
         .initial_epoch = from,
         .verbose = 0});
}

TEST(Model, ResumingFromACheckpointIsBitwiseExact) {
  manual_seed(6);
  Blobs d = blobs(300, 6);
  auto make = [] {
    return Sequential({layers::Dense(16, "relu"), layers::Dropout(0.3),
                       layers::BatchNormalization(), layers::Dense(3)});
  };
  Sequential a = make();
  a.compile(optimizers::Adam(3e-3).schedule(optimizers::ExponentialLR(0.9)).clipnorm(5.0),
            "sparse_categorical_crossentropy", {"accuracy"});
  train(a, d, 0, 2);
  const std::string path = temp_path("resume.kiln");
  a.save(path);
  train(a, d, 2, 3);  // the uninterrupted run's third epoch

  Sequential b = load_model(path);
  ASSERT_EQ(b.epoch(), 2);
  train(b, d, b.epoch(), 3);
  EXPECT_TRUE(bitwise_equal(a.module(), b.module()));
  EXPECT_EQ(a.history()["loss"], b.history()["loss"]);
  EXPECT_EQ(a.optimizer()->lr(), b.optimizer()->lr());
  auto sa = a.optimizer()->state_dict(), sb = b.optimizer()->state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i)
    EXPECT_EQ(sa[i].second.to_vector<double>(), sb[i].second.to_vector<double>()) << sa[i].first;
}

// A custom module: a lazily built kiln layer and an nn::Linear.
class TwoHead : public nn::Module {
 public:
  TwoHead() : Module("TwoHead") {
    body = register_module("body", layers::Dense(8, "relu"));
    head = register_module("head", std::make_shared<nn::Linear>(nn::LinearOptions(8, 3)));
  }
  Tensor forward(const Tensor& x) override { return head->forward(body->forward(x)); }
  std::shared_ptr<layers::DenseLayer> body;
  std::shared_ptr<nn::Linear> head;
};

TEST(Model, WrapsACustomModuleAndLoadsItWithAFactory) {
  manual_seed(7);
  Blobs d = blobs(200, 7);
  Model m(std::make_shared<TwoHead>(), "two_head");
  m.compile("adam", "sparse_categorical_crossentropy", {"accuracy"});
  History h = m.fit(d.x, d.y, {.epochs = 3, .verbose = 0});
  EXPECT_LT(h["loss"].back(), h["loss"].front());
  const std::string s = m.summary_string();
  EXPECT_NE(s.find(" body (Dense)                (None, 8)"), std::string::npos) << s;
  EXPECT_NE(s.find(" head (Linear)               ?"), std::string::npos) << s;
  const std::string path = temp_path("custom.kiln");
  m.save(path);
  try {
    load_model(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("load_model(path, factory)"), std::string::npos)
        << e.what();
  }
  Model r = load_model(path, [] { return std::make_shared<TwoHead>(); });
  EXPECT_TRUE(bitwise_equal(m.module(), r.module()));
  EXPECT_EQ(r.epoch(), 3);
  EXPECT_EQ(r.predict(d.x).to_vector<float>(), m.predict(d.x).to_vector<float>());
  r.fit(d.x, d.y, {.epochs = 4, .initial_epoch = 3, .verbose = 0});
  EXPECT_EQ(r.history().size(), 4u);
}

// Keras 3's compute_loss: a model whose objective is not one output against y overrides it and
// compiles with loss nullptr. Here an autoencoder: the loss is forward(x) against x itself.
class AutoEncoder : public Model {
 public:
  AutoEncoder()
      : Model(std::make_shared<nn::Sequential>(
                  std::vector<nn::ModulePtr>{layers::Dense(2, "tanh"), layers::Dense(4)}),
              "autoencoder") {}

 protected:
  Tensor compute_loss(const Batch& batch, Tensor& output) override {
    output = module().forward(batch.x);
    return nn::functional::mse_loss(output, batch.x);
  }
};

TEST(Model, ComputeLossOverridesTheCompiledLoss) {
  manual_seed(3);
  Blobs d = blobs(256, 3);
  AutoEncoder m;
  m.compile(optimizers::Adam(1e-2), nullptr, {"mae"});
  const Tensor unused_y = zeros({256}, kInt64);  // y is not read by the loss, only by the metrics
  History h = m.fit(d.x, d.x, {.epochs = 8, .verbose = 0});
  EXPECT_LT(h["loss"].back(), 0.7 * h["loss"].front()) << fmt::format("{}", h["loss"]);
  // evaluate goes through compute_loss too: the loss of the reconstruction, and the metric sees
  // the output compute_loss set.
  const Logs e = m.evaluate(d.x, d.x, {.verbose = 0});
  const Tensor rec = m.predict(d.x);
  EXPECT_NEAR(e.at("loss"), nn::functional::mse_loss(rec, d.x).item<double>(), 1e-5);
  EXPECT_NEAR(e.at("mae"), mean(abs(rec - d.x)).item<double>(), 1e-5);
  // The null loss survives a checkpoint.
  const std::string path = temp_path("autoencoder.kiln");
  m.save(path);
  Model r = load_model(path, [] {
    return std::make_shared<nn::Sequential>(
        std::vector<nn::ModulePtr>{layers::Dense(2, "tanh"), layers::Dense(4)});
  });
  EXPECT_TRUE(r.compiled());
  EXPECT_EQ(r.loss(), nullptr);
  EXPECT_TRUE(bitwise_equal(m.module(), r.module()));
  // A plain Model compiled without a loss says what is missing.
  try {
    r.fit(d.x, unused_y, {.epochs = 1, .verbose = 0});
    FAIL() << "expected an error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("compiled without a loss"), std::string::npos)
        << err.what();
    EXPECT_NE(std::string(err.what()).find("compute_loss"), std::string::npos) << err.what();
  }
}

TEST(Model, EmbeddingModelsBuildWithIntegerInputs) {
  Sequential m({layers::Embedding(20, 4), layers::Flatten(), layers::Dense(2)});
  m.build({-1, 5});
  EXPECT_EQ(m.summary_string().find("?"), std::string::npos);
  m.compile("adam", "sparse_categorical_crossentropy");
  Tensor ids = randint(0, 20, {16, 5}), y = randint(0, 2, {16});
  m.fit(ids, y, {.epochs = 1, .verbose = 0});
  const std::string path = temp_path("embed.kiln");
  m.save(path);
  Sequential r = load_model(path);
  EXPECT_EQ(r.predict(ids).to_vector<float>(), m.predict(ids).to_vector<float>());
}

TEST(Model, VerboseFitPrintsOneKerasLinePerEpochWhenNotATerminal) {
  Blobs d = blobs(64, 8);
  Sequential m({layers::Dense(3)});
  m.compile("sgd", "sparse_categorical_crossentropy", {"accuracy"});
  testing::internal::CaptureStdout();
  m.fit(d.x, d.y, {.epochs = 2, .batch_size = 16, .validation_data = {d.x, d.y}});
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;  // captured stdout is not a terminal
  EXPECT_NE(out.find("Epoch 1/2\n4/4 [==============================] - "), std::string::npos)
      << out;
  const size_t line = out.find("Epoch 2/2\n");
  ASSERT_NE(line, std::string::npos) << out;
  const std::string last = out.substr(line + 10);
  EXPECT_NE(last.find("/step - loss: "), std::string::npos) << last;
  EXPECT_LT(last.find(" - accuracy: "), last.find(" - val_loss: ")) << last;
  EXPECT_LT(last.find(" - val_loss: "), last.find(" - val_accuracy: ")) << last;
  testing::internal::CaptureStdout();
  m.fit(d.x, d.y, {.epochs = 1, .verbose = 2});
  EXPECT_NE(testing::internal::GetCapturedStdout().find("Epoch 1/1\n2/2 - "), std::string::npos);
  testing::internal::CaptureStdout();
  m.fit(d.x, d.y, {.epochs = 1, .verbose = 0});
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "");
}

TEST(Model, FitTakesABatchSourceWithSampleWeights) {
  // Weight 0 on every sample: the loss is 0 and SGD never moves the weights.
  Blobs d = blobs(32, 9);
  FunctionBatchSource src(32, [&](const std::vector<int64_t>& idx) {
    Tensor i = from_vector(idx, {static_cast<int64_t>(idx.size())});
    return Batch{index_select(d.x, 0, i), index_select(d.y, 0, i),
                 zeros({static_cast<int64_t>(idx.size())})};
  });
  Sequential m({layers::Dense(3)});
  m.compile(optimizers::SGD(1.0), "sparse_categorical_crossentropy");
  m.build({-1, 4});
  Tensor before = m.module().state_dict().at("0.weight").clone();
  History h = m.fit(src, {.epochs = 2, .batch_size = 8, .verbose = 0});
  EXPECT_EQ(h["loss"], (std::vector<double>{0.0, 0.0}));
  EXPECT_EQ(m.module().state_dict().at("0.weight").to_vector<float>(), before.to_vector<float>());
}

TEST(Model, MultiGroupOptimizersSurviveACheckpoint) {
  Blobs d = blobs(64, 10);
  auto make = [] { return Sequential({layers::Dense(8, "relu"), layers::Dense(3)}); };
  Sequential m = make();
  m.build({-1, 4});
  auto groups = optim::split_groups(m.module().named_parameters(), optim::is_bias_or_norm,
                                    {{"weight_decay", 0.0}});
  m.compile(std::make_shared<optim::AdamW>(groups, optim::AdamWOptions(1e-2)),
            "sparse_categorical_crossentropy");
  m.fit(d.x, d.y, {.epochs = 1, .verbose = 0});
  const std::string path = temp_path("groups.kiln");
  m.save(path);
  Sequential r = load_model(path);
  ASSERT_EQ(r.optimizer()->num_groups(), 2u);
  EXPECT_EQ(r.optimizer()->option(1, "weight_decay"), 0.0);
  EXPECT_EQ(r.optimizer()->option(0, "weight_decay"), 1e-2);
  m.fit(d.x, d.y, {.epochs = 2, .initial_epoch = 1, .verbose = 0});
  r.fit(d.x, d.y, {.epochs = 2, .initial_epoch = 1, .verbose = 0});
  EXPECT_TRUE(bitwise_equal(m.module(), r.module()));
}

TEST(Optimizers, StringsAndFactoriesUseKerasDefaults) {
  EXPECT_EQ(optimizers::OptimizerSpec("sgd").options()[0],
            (std::pair<std::string, double>{"lr", 1e-2}));
  EXPECT_EQ(optimizers::OptimizerSpec("adam").options()[0],
            (std::pair<std::string, double>{"lr", 1e-3}));
  optimizers::OptimizerSpec adam = optimizers::Adam();
  EXPECT_EQ(adam.class_name(), "Adam");
  auto back = optimizers::OptimizerSpec::deserialize(adam.clipnorm(2.0).serialize());
  EXPECT_EQ(back.clipnorm(), 2.0);
  EXPECT_EQ(back.serialize().dump(), adam.serialize().dump());
  EXPECT_THROW(optimizers::Adam().set("momentum", 0.9), Error);
}

TEST(Progbar, RendersLikeKeras) {
  Progbar bar(1875, 1, nullptr, false);
  EXPECT_EQ(
      bar.render(1875, {{"loss", 0.29314}, {"accuracy", 0.915}}, 3.2, true),
      "1875/1875 [==============================] - 3s 2ms/step - loss: 0.2931 - accuracy: 0.9150");
  EXPECT_EQ(bar.render(100, {{"loss", 1.2e-5}}, 1.0, false),
            " 100/1875 [>.............................] - ETA: 17s - loss: 1.2000e-05");
  EXPECT_EQ(bar.render(20, {}, 1.0, false).substr(0, 42),
            "  20/1875 [..............................]");
  Progbar two(10, 2, nullptr, false);
  EXPECT_EQ(two.render(10, {{"val_loss", 0.5}}, 0.004, true),
            "10/10 - 0s 400us/step - val_loss: 0.5000");
  EXPECT_EQ(Progbar::format_eta(3725), "1:02:05");
}

}  // namespace
}  // namespace kiln
