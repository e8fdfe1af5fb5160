// Imports a CNN that PyTorch exported (tests/data/onnx/fashion_cnn.onnx, made by
// tests/onnx/make_finetune_model.py), fine-tunes it on Fashion-MNIST (Debian's
// dataset-fashion-mnist) with Kiln's fit, and writes it back out as ONNX.
//
//   ./build/examples/import_onnx [tuned.onnx]
//   ./build/tools/kiln run tuned.onnx --input pixels=images.npy --output-dir out
#include <string>

#include "kiln/kiln.h"
#include "kiln/onnx/export.h"
#include "kiln/onnx/import.h"
#include "kiln/vision/datasets.h"

using namespace kiln;

int main(int argc, char** argv) {
  const std::string out_path = argc > 1 ? argv[1] : "fashion_cnn_tuned.onnx";
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  const vision::ImageSet train = vision::load_mnist_idx(dir + "train-images-idx3-ubyte.gz",
                                                        dir + "train-labels-idx1-ubyte.gz");
  const int64_t n = 6000;
  const Tensor x = (train.images.narrow(0, 0, n).to(kFloat32) / 255.0).reshape({n, 1, 28, 28});
  const Tensor y = train.labels.narrow(0, 0, n).contiguous();

  const std::string path = std::string(KILN_SOURCE_DIR) + "/tests/data/onnx/fashion_cnn.onnx";
  auto model = onnx::import_model(path);  // an nn::Module: parameters under their ONNX names
  fmt::print("{}\n", to_string(*model));
  kiln::Model trainer(model);
  trainer.compile(kiln::optimizers::Adam(2e-3), kiln::losses::SparseCategoricalCrossentropy(true),
                  {"accuracy"});
  trainer.fit(x, y, {.epochs = 2, .batch_size = 32, .validation_split = 0.1});
  Tensor logits = model->forward(x.narrow(0, 0, 8));  // (8, 10); or model->run({{"pixels", x}})
  onnx::ExportOptions options;
  options.input_names = {"pixels"};
  options.output_names = {"logits"};
  options.dynamic_axes = {{"pixels", {{0, "batch"}}}};
  onnx::export_model(*model, {x.narrow(0, 0, 4)}, out_path, options);
  fmt::print("wrote {}; logits of the first image: {}\n", out_path, to_string(logits.select(0, 0)));
}
