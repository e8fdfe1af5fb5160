// kiln::layers: lazy building, shapes, Keras initialisers and defaults, configs.
#include <gtest/gtest.h>

#include <cmath>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/nn/init.h"
#include "kiln/nn/linear.h"
#include "kiln/nn/normalization.h"
#include "kiln/tensor/error.h"
#include "kiln/train/layers.h"

namespace kiln::layers {
namespace {

std::vector<float> values(const Tensor& t) {
  return t.to_vector<float>();
}

TEST(Dense, BuildsOnFirstCallWithGlorotWeightsAndZeroBias) {
  manual_seed(1);
  auto d = Dense(3, "relu");
  EXPECT_FALSE(d->built());
  EXPECT_TRUE(d->named_parameters().empty());
  Tensor y = d->forward(randn({4, 7}));
  EXPECT_TRUE(d->built());
  EXPECT_EQ(y.shape(), (Shape{4, 3}));
  auto params = d->named_parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].first, "weight");
  EXPECT_EQ(d->weight.shape(), (Shape{3, 7}));
  const double bound = std::sqrt(6.0 / (7 + 3));
  for (float w : values(d->weight)) EXPECT_LE(std::abs(w), bound);
  for (float b : values(d->bias)) EXPECT_EQ(b, 0.0f);
  for (float v : values(y)) EXPECT_GE(v, 0.0f);  // relu
}

TEST(Dense, RejectsADifferentInputAfterBuildNamingTheLayer) {
  auto d = Dense(3);
  d->forward(zeros({2, 5}));
  try {
    d->forward(zeros({2, 6}));
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("in_features=5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Dense"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Dense(0), Error);
  EXPECT_THROW(Dense(4, "relux"), Error);
}

TEST(Dense, AppliesToTheLastDim) {
  auto d = Dense(2, "softmax");
  Tensor y = d->forward(randn({2, 5, 4}));
  EXPECT_EQ(y.shape(), (Shape{2, 5, 2}));
  std::vector<float> v = values(y);
  for (size_t i = 0; i < v.size(); i += 2) EXPECT_NEAR(v[i] + v[i + 1], 1.0f, 1e-6);
}

TEST(Conv2D, ValidAndSameShapesAsTensorFlow) {
  Tensor x = randn({2, 3, 9, 9});
  EXPECT_EQ(Conv2D(4, 3)->forward(x).shape(), (Shape{2, 4, 7, 7}));
  EXPECT_EQ(Conv2D(4, 3, 1, "same")->forward(x).shape(), (Shape{2, 4, 9, 9}));
  EXPECT_EQ(Conv2D(4, 3, 2, "same")->forward(x).shape(), (Shape{2, 4, 5, 5}));  // ⌈9/2⌉
  EXPECT_EQ(Conv2D(4, 4, 1, "same")->forward(x).shape(),
            (Shape{2, 4, 9, 9}));  // even kernel: asymmetric
  EXPECT_EQ(Conv2D(4, 3, 2)->forward(x).shape(), (Shape{2, 4, 4, 4}));
  auto c = Conv2D(5, 3);
  c->forward(x);
  EXPECT_EQ(c->weight.shape(), (Shape{5, 3, 3, 3}));
  const double bound = std::sqrt(6.0 / (3 * 9 + 5 * 9));
  for (float w : values(c->weight)) EXPECT_LE(std::abs(w), bound);
  EXPECT_THROW(c->forward(randn({2, 4, 9, 9})), ShapeError);
}

TEST(Conv2D, SamePaddingPutsTheExtraPixelBottomRight) {
  // A 2x2 all-ones kernel over a 3x3 input, "same": the bottom/right border sees the zero padding.
  auto c = Conv2D(nn::Conv2dOptions(0, 1, 2).padding("same").bias(false));
  Tensor x = arange(1, 10, 1, kFloat32).reshape({1, 1, 3, 3});
  c->forward(x);
  c->weight.fill_(1.0);
  EXPECT_EQ(values(c->forward(x)), (std::vector<float>{12, 16, 9, 24, 28, 15, 15, 17, 9}));
}

TEST(Pooling, MaxAndAverageWithValidAndSame) {
  Tensor x = arange(1, 17, 1, kFloat32).reshape({1, 1, 4, 4});
  EXPECT_EQ(values(MaxPooling2D(2)->forward(x)), (std::vector<float>{6, 8, 14, 16}));
  EXPECT_EQ(values(AveragePooling2D(2)->forward(x)), (std::vector<float>{3.5, 5.5, 11.5, 13.5}));
  Tensor y = arange(1, 10, 1, kFloat32).reshape({1, 1, 3, 3});
  EXPECT_EQ(values(MaxPooling2D(2, 2, "same")->forward(y)), (std::vector<float>{5, 6, 8, 9}));
  // "same" average pooling leaves the padding out of the count (TensorFlow's rule).
  EXPECT_EQ(values(AveragePooling2D(2, 2, "same")->forward(y)),
            (std::vector<float>{3, 4.5, 7.5, 9}));
  EXPECT_EQ(GlobalAveragePooling2D()->forward(x).shape(), (Shape{1, 1}));
  EXPECT_FLOAT_EQ(GlobalAveragePooling2D()->forward(x).item<float>(), 8.5f);
  EXPECT_EQ(GlobalAveragePooling2D(true)->forward(x).shape(), (Shape{1, 1, 1, 1}));
}

TEST(Flatten, KeepsTheBatchDim) {
  EXPECT_EQ(Flatten()->forward(zeros({2, 3, 4, 5})).shape(), (Shape{2, 60}));
  EXPECT_EQ(Flatten()->forward(zeros({7})).shape(), (Shape{7, 1}));
}

TEST(Dropout, IdentityInEvalAndSeededInTraining) {
  auto d = Dropout(0.5, 42);
  Tensor x = ones({1000});
  d->eval();
  EXPECT_EQ(values(d->forward(x)), values(x));
  d->train();
  std::vector<float> a = values(d->forward(x));
  int zeros_seen = 0;
  for (float v : a) {
    EXPECT_TRUE(v == 0.0f || v == 2.0f);
    zeros_seen += v == 0.0f;
  }
  EXPECT_NEAR(zeros_seen, 500, 60);
  d->reseed(7);
  std::vector<float> b = values(d->forward(x));
  d->reseed(7);
  EXPECT_EQ(values(d->forward(x)), b);
  EXPECT_THROW(Dropout(1.0), Error);
}

TEST(BatchNormalization, UsesKerasMomentumAndRunningStatsInEval) {
  auto bn = BatchNormalization();  // momentum 0.99, epsilon 1e-3
  Tensor x = tensor({1.f, 10.f, 3.f, 20.f, 5.f, 30.f, 7.f, 40.f}, {4, 2});
  bn->train();
  Tensor y = bn->forward(x);
  // running_mean = 0.99·0 + 0.01·batch_mean
  EXPECT_NEAR(bn->running_mean.to_vector<float>()[0], 0.01 * 4.0, 1e-6);
  EXPECT_NEAR(bn->running_mean.to_vector<float>()[1], 0.01 * 25.0, 1e-5);
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 1);
  // Training output: per-channel zero mean.
  std::vector<float> v = values(y);
  EXPECT_NEAR(v[0] + v[2] + v[4] + v[6], 0.0, 1e-5);
  bn->eval();
  Tensor z = bn->forward(x);
  // Eval: (x − running_mean) / sqrt(running_var + eps), running_var = 0.99 + 0.01·unbiased var.
  const double var0 = 0.99 + 0.01 * (20.0 / 3.0);
  EXPECT_NEAR(values(z)[0], (1.0 - 0.04) / std::sqrt(var0 + 1e-3), 1e-5);
  auto buffers = bn->named_buffers();
  ASSERT_EQ(buffers.size(), 3u);
  EXPECT_EQ(buffers[0].first, "running_mean");
}

TEST(LayerNormalization, NormalisesTheLastDim) {
  auto ln = LayerNormalization();
  Tensor y = ln->forward(tensor({1.f, 2.f, 3.f, 4.f, 10.f, 20.f, 30.f, 40.f}, {2, 4}));
  std::vector<float> v = values(y);
  EXPECT_NEAR(v[0] + v[1] + v[2] + v[3], 0.0, 1e-5);
  EXPECT_NEAR(v[4], v[0], 1e-3);
  EXPECT_EQ(ln->weight.shape(), (Shape{4}));
}

TEST(Embedding, LooksUpRowsAndUsesKerasInit) {
  auto e = Embedding(10, 3);
  EXPECT_TRUE(e->built());
  for (float w : values(e->weight)) EXPECT_LE(std::abs(w), 0.05f);
  Tensor y = e->forward(tensor({1, 2, 3, 9}, {2, 2}));
  EXPECT_EQ(y.shape(), (Shape{2, 2, 3}));
  EXPECT_THROW(e->forward(zeros({2})), TypeError);
}

TEST(Activation, AppliesByName) {
  Tensor x = tensor({-1.f, 0.f, 2.f});
  EXPECT_EQ(values(Activation("relu")->forward(x)), (std::vector<float>{0, 0, 2}));
  EXPECT_NEAR(values(Activation("softplus")->forward(x))[2], std::log1p(std::exp(2.0)), 1e-6);
  EXPECT_NEAR(values(Activation("sigmoid")->forward(x))[1], 0.5, 1e-7);
  EXPECT_EQ(Activation("softmax")->output_activation(), "softmax");
  try {
    Activation("swishy");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown activation \"swishy\""), std::string::npos)
        << e.what();
  }
}

TEST(Adapters, ForwardToTheNnModuleAndShareItsTensors) {
  auto d = Dense(3);
  Tensor x = randn({2, 4});
  Tensor y = d->forward(x);
  auto linear = std::dynamic_pointer_cast<nn::Linear>(d->module());
  ASSERT_NE(linear, nullptr);
  EXPECT_EQ(linear->weight.impl(), d->weight.impl());
  EXPECT_EQ(values(linear->forward(x)), values(y));
  auto bn = BatchNormalization();
  bn->forward(randn({4, 2}));
  EXPECT_NE(std::dynamic_pointer_cast<nn::BatchNorm>(bn->module()), nullptr);
  bn->eval();
  EXPECT_FALSE(bn->module()->is_training());  // the mode reaches the module
}

TEST(Adapters, KerasInitDrawsWhatItDrewBeforeTheNnModule) {
  // The nn module is built without touching the default generator (nn::init::skip_init), so a
  // seeded Dense draws its glorot weights from the same counters as before the adapters.
  manual_seed(3);
  auto d = Dense(5);
  d->build({1, 7});
  manual_seed(3);
  Tensor w = zeros({5, 7});
  nn::init::xavier_uniform_(w);
  EXPECT_EQ(values(d->weight), values(w));
}

TEST(Adapters, OneActivationTableWithKerasDefaultsPassedExplicitly) {
  Tensor x = tensor({-1.f, 2.f});
  EXPECT_EQ(values(Activation("leaky_relu")->forward(x)), (std::vector<float>{-0.2f, 2.f}));
  EXPECT_EQ(values(nn::make_activation("leaky_relu")->forward(x)),
            (std::vector<float>{-0.01f, 2.f}));  // PyTorch's slope in nn
  EXPECT_EQ(values(Activation("relu6")->forward(full({1}, 9.0))), (std::vector<float>{6.f}));
}

TEST(LayerConfig, EveryLayerRoundTripsThroughSerialize) {
  std::vector<nn::ModulePtr> all = {
      Dense(8, "tanh", false),
      Dropout(0.25, 3),
      Flatten(),
      Activation("gelu"),
      Conv2D(nn::Conv2dOptions(0, 4, {3, 5}).stride({2, 1}).padding("same"), "relu"),
      MaxPooling2D(3, 2, "same"),
      AveragePooling2D(2),
      GlobalAveragePooling2D(true),
      std::make_shared<BatchNormalizationLayer>(0.9, 1e-5, false, true),
      LayerNormalization(1e-6),
      Embedding(100, 16)};
  for (const auto& layer : all) {
    json::Value spec = serialize(*layer);
    std::shared_ptr<Layer> back = deserialize(spec);
    EXPECT_EQ(back->name(), layer->name());
    EXPECT_EQ(serialize(*back).dump(), spec.dump());
  }
  EXPECT_THROW(deserialize(json::parse(R"({"class_name": "Nope", "config": {}})")), Error);
  EXPECT_THROW(serialize(*std::make_shared<nn::Module>("Custom")), Error);
}

TEST(LayerConfig, CustomLayersRegister) {
  register_layer("MyDense", [](const json::Value& c) { return Dense(c.at("units").as_int()); });
  auto l = deserialize(json::parse(R"({"class_name": "MyDense", "config": {"units": 4}})"));
  EXPECT_EQ(l->name(), "Dense");
}

}  // namespace
}  // namespace kiln::layers
