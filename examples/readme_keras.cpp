// The README's Keras-style program, kept verbatim so CI compiles it (tests/readme_test.py).
// Run from the repository root: ./build/examples/readme_keras
#include "kiln/kiln.h"
#include "kiln/vision/mnist_json.h"

int main() {
  auto digits = kiln::vision::split_digits(
      kiln::vision::load_mnist_digits_json(kiln::vision::default_digits_dir(".")));
  kiln::Tensor x = digits.train.images, y = digits.train.labels;  // (8000, 784) float, (8000) int64
  kiln::Sequential model(
      {kiln::layers::Dense(128, "relu"), kiln::layers::Dropout(0.2), kiln::layers::Dense(10)});
  model.compile(kiln::optimizers::Adam(1e-3), "sparse_categorical_crossentropy", {"accuracy"});
  kiln::History history = model.fit(x, y,
                                    {.epochs = 5,
                                     .batch_size = 32,
                                     .validation_split = 0.1,
                                     .callbacks = {kiln::callbacks::EarlyStopping("val_loss", 2)}});
  model.summary();  // Layer (type) | Output Shape | Param # ... Total params: 101,770
  kiln::Logs test = model.evaluate(digits.test.images, digits.test.labels);  // {loss, accuracy}
  model.save("mnist.kiln");  // safetensors weights + architecture + optimiser state, atomically
  kiln::Sequential restored = kiln::load_model("mnist.kiln");
}
