// Saved models keep loading: tests/golden/keras/cnn.kiln was written by the Keras-style layers as
// they stood before they became adapters over kiln::nn (issue 17), together with its predictions on
// a fixed input. Loading it with today's code must give the same predictions. They are compared to
// float rounding, not bit for bit: the fixture was written by a Release build on an AVX-512
// machine, and another build (ASan at -O1) or CPU (AVX2 only) sums the convolutions and GEMMs in
// another order, which moves the last bits. A wrong weight, layout or padding rule moves them by
// ~0.1, so the 1e-5 bound still catches every real break.
//
// The fixture is regenerated only on purpose (it pins the old format):
//   KILN_WRITE_KERAS_FIXTURE=1 build/tests/test_train --gtest_filter='SavedModelCompat.*'
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "kiln/io/npy.h"
#include "kiln/train/train.h"

namespace kiln {
namespace {

const std::string kDir = std::string(KILN_SOURCE_DIR) + "/tests/golden/keras/";

// A fixed input: (4, 1, 9, 9), values from a seeded generator.
Tensor fixed_input() {
  Generator g(20261205);
  return randn({4, 1, 9, 9}, kFloat32, &g);
}

// Every layer kind the old code saved: Conv2D with "same" at stride 1 and 2 (TensorFlow's rule,
// odd padding at the end), both poolings with "same", BatchNormalization, Dropout, Flatten, Dense
// with leaky_relu (Keras' slope 0.2) and an Activation layer; compiled with Adam and trained a
// few steps so that the running statistics and the optimiser state are not their initial values.
void write_fixture() {
  manual_seed(17);
  Sequential m(
      {layers::Conv2D(4, 3, 1, "same", "relu"),
       layers::Conv2D(nn::Conv2dOptions(0, 6, {3, 2}).stride(2).padding("same").bias(false)),
       layers::BatchNormalization(), layers::Activation("leaky_relu"),
       layers::MaxPooling2D(2, 1, "same"), layers::AveragePooling2D(2, 2, "same"),
       layers::Dropout(0.25, 3), layers::Flatten(), layers::Dense(8, "leaky_relu"),
       layers::Dense(3)},
      "keras_cnn");
  m.compile(optimizers::Adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  Generator g(5);
  Tensor x = randn({32, 1, 9, 9}, kFloat32, &g);
  Tensor y = randint(0, 3, {32}, kInt64, &g);
  m.fit(x, y, {.epochs = 2, .batch_size = 8, .seed = 1, .verbose = 0});
  m.save(kDir + "cnn.kiln");
  save_npy(m.predict(fixed_input()), kDir + "cnn_predictions.npy");
}

TEST(SavedModelCompat, KerasCnnFromBeforeTheAdaptersLoadsAndPredictsTheSame) {
  if (std::getenv("KILN_WRITE_KERAS_FIXTURE") != nullptr) write_fixture();
  Sequential m = load_model(kDir + "cnn.kiln");
  EXPECT_EQ(m.epoch(), 2);
  EXPECT_EQ(m.optimizer()->name(), "Adam");
  EXPECT_DOUBLE_EQ(m.optimizer()->option(0, "eps"), 1e-7);  // Keras' epsilon, kept
  Tensor expected = load_npy(kDir + "cnn_predictions.npy");
  Tensor got = m.predict(fixed_input());
  ASSERT_EQ(got.shape(), expected.shape());
  const std::vector<float> g_values = got.to_vector<float>();
  const std::vector<float> e_values = expected.to_vector<float>();
  for (size_t i = 0; i < e_values.size(); ++i)
    EXPECT_NEAR(g_values[i], e_values[i], 1e-5f) << "prediction " << i;
  // The restored model trains on from its saved optimiser state.
  Generator g(6);
  Tensor x = randn({8, 1, 9, 9}, kFloat32, &g);
  Tensor y = randint(0, 3, {8}, kInt64, &g);
  m.fit(x, y, {.epochs = 3, .batch_size = 8, .initial_epoch = 2, .verbose = 0});
  EXPECT_EQ(m.epoch(), 3);
}

}  // namespace
}  // namespace kiln
