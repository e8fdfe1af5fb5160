// W3 mlp_step and W4 lenet_step: milliseconds per training step (forward, loss, backward, optimiser
// update), Kiln vs LibTorch in the same binary, 2 threads. Compare the *_median rows:
//   ./build/benchmarks/train_bench --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
// Peak RSS is the process's (getrusage), so measure it one benchmark per process, Kiln's in the
// binary built without LibTorch (a process that links LibTorch holds ~160 MB before any case runs):
//   ./build/benchmarks/train_bench --benchmark_filter='W3_mlp_step_torch/' ... (counter
//   peak_rss_MB)
//   ./build/benchmarks/train_bench_kiln_only --benchmark_filter='W3_mlp_step_kiln/'
//
// W3: 784-512-256-10 ReLU MLP, batch 128, softmax cross-entropy, SGD lr 0.01 momentum 0.9.
// W4: LeNet-5 on (64, 1, 28, 28): conv 6@5×5 pad 2, ReLU, max-pool 2, conv 16@5×5, ReLU, max-pool
// 2,
//     400-120-84-10 with ReLU, cross-entropy, Adam lr 1e-3.
// Kiln runs through the Keras-like API (Sequential + compile + train_on_batch: what a user writes);
// the
// *_kiln_nn rows run the same step with nn:: modules and an optim:: optimiser directly, which shows
// the API's own overhead.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "bench_common.h"
#include "kiln/kiln.h"
#include "kiln/nn/nn.h"
#include "kiln/optim/adam.h"
#include "kiln/optim/clip_grad.h"
#include "kiln/optim/sgd.h"
#include "kiln/track/callback.h"
#include "kiln/train/train.h"
#ifdef KILN_WITH_TORCH
#include <torch/torch.h>
#endif

using namespace kiln;

namespace {

using kiln_bench::bench_threads;
using kiln_bench::set_threads;
#ifdef KILN_WITH_TORCH
using kiln_bench::set_torch_threads;
#endif

void report_rss(benchmark::State& st) {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  st.counters["peak_rss_MB"] = static_cast<double>(u.ru_maxrss) / 1024.0;
}

struct Data {
  Tensor x, y;
};
Data make_data(Shape x_shape, uint64_t seed) {
  Generator g(seed);
  const int64_t B = x_shape[0];
  return {randn(x_shape, kFloat32, &g), randint(0, 10, {B}, kInt64, &g)};
}

// ---------------------------------------------------------------- W3 mlp_step

void W3_mlp_step_kiln(benchmark::State& st) {
  set_threads();
  manual_seed(0);
  Data d = make_data({128, 784}, 1);
  Sequential model({layers::Dense(512, "relu"), layers::Dense(256, "relu"), layers::Dense(10)});
  model.compile(optimizers::SGD(0.01, 0.9), "sparse_categorical_crossentropy");
  model.train_on_batch(d.x, d.y);  // builds the model and the optimiser
  for (auto _ : st) benchmark::DoNotOptimize(model.train_on_batch(d.x, d.y));
  report_rss(st);
}
BENCHMARK(W3_mlp_step_kiln)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

void W3_mlp_step_kiln_nn(benchmark::State& st) {
  set_threads();
  manual_seed(0);
  Data d = make_data({128, 784}, 1);
  auto net = nn::sequential(
      {std::make_shared<nn::Linear>(nn::LinearOptions(784, 512)), std::make_shared<nn::ReLU>(),
       std::make_shared<nn::Linear>(nn::LinearOptions(512, 256)), std::make_shared<nn::ReLU>(),
       std::make_shared<nn::Linear>(nn::LinearOptions(256, 10))});
  optim::SGD opt(net->named_parameters(), optim::SGDOptions(0.01).momentum(0.9));
  for (auto _ : st) {
    Tensor loss = cross_entropy(net->forward(d.x), d.y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  report_rss(st);
}
BENCHMARK(W3_mlp_step_kiln_nn)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

// ---------------------------------------------------------------- W3 with experiment tracking
// What callbacks::Tracking (kiln/track) adds to a W3 step. W3_fit_epoch/0 and /1 run fit() for
// one epoch of 32 W3 steps without and with the callback (ms_per_step); the difference is below
// the noise of a whole step, so W3_tracking_per_step measures the callback's own per-step work
// (on_batch_end with W3's logs: two buffered points plus the learning rate, and the amortised
// SQLite write once a second) and reports it as a percentage of a W3 step timed in the same
// process (pct_of_W3_step; the bound is 1%).

Sequential w3_model() {
  return Sequential({layers::Dense(512, "relu"), layers::Dense(256, "relu"), layers::Dense(10)});
}

std::string scratch_tracking_dir() {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("kiln_train_bench_track_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

void W3_fit_epoch(benchmark::State& st) {
  set_threads();
  manual_seed(0);
  const bool tracked = st.range(0) == 1;
  constexpr int64_t kSteps = 32;
  Data d = make_data({128 * kSteps, 784}, 1);
  Sequential model = w3_model();
  model.compile(optimizers::SGD(0.01, 0.9), "sparse_categorical_crossentropy", {"accuracy"});
  model.train_on_batch(d.x.narrow(0, 0, 128), d.y.narrow(0, 0, 128));
  const std::string dir = scratch_tracking_dir();
  auto run = track::Run::start({.experiment = "bench", .dir = dir});
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : st) {
    FitOptions o{.epochs = 1, .batch_size = 128, .shuffle = false, .verbose = 0};
    if (tracked) o.callbacks = {callbacks::Tracking(run)};
    benchmark::DoNotOptimize(model.fit(d.x, d.y, o));
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  run->end();
  std::filesystem::remove_all(dir);
  st.counters["ms_per_step"] =
      elapsed / static_cast<double>(kSteps * static_cast<int64_t>(st.iterations())) * 1e3;
}
BENCHMARK(W3_fit_epoch)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

void W3_tracking_per_step(benchmark::State& st) {
  set_threads();
  manual_seed(0);
  Data d = make_data({128, 784}, 1);
  Sequential model = w3_model();
  model.compile(optimizers::SGD(0.01, 0.9), "sparse_categorical_crossentropy", {"accuracy"});
  // The W3 step this is a fraction of: the median of 15 timed steps.
  std::vector<double> step_s;
  for (int i = 0; i < 16; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    model.train_on_batch(d.x, d.y);
    step_s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  step_s.erase(step_s.begin());  // the first step builds the model
  std::nth_element(step_s.begin(), step_s.begin() + 7, step_s.end());
  const double w3_step = step_s[7];

  const std::string dir = scratch_tracking_dir();
  auto run = track::Run::start({.experiment = "bench", .dir = dir});
  auto cb = callbacks::Tracking(run);
  cb->set_model(&model);
  Logs train_begin;
  cb->on_train_begin(train_begin);
  Logs logs{{"loss", 0.31}, {"accuracy", 0.91}};
  int64_t batch = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : st) cb->on_batch_end(batch++, logs);
  run->flush();  // the points still buffered belong to the cost
  const double per_step =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
      static_cast<double>(st.iterations());
  run->end();
  cb->set_model(nullptr);
  std::filesystem::remove_all(dir);
  st.counters["W3_step_ms"] = w3_step * 1e3;
  st.counters["tracking_us_per_step"] = per_step * 1e6;
  st.counters["pct_of_W3_step"] = per_step / w3_step * 100.0;
}
BENCHMARK(W3_tracking_per_step)->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(2.0);

#ifdef KILN_WITH_TORCH
void W3_mlp_step_torch(benchmark::State& st) {
  set_torch_threads();
  torch::manual_seed(0);
  auto x = torch::randn({128, 784});
  auto y = torch::randint(0, 10, {128}, torch::kLong);
  torch::nn::Sequential net(torch::nn::Linear(784, 512), torch::nn::ReLU(),
                            torch::nn::Linear(512, 256), torch::nn::ReLU(),
                            torch::nn::Linear(256, 10));
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  for (auto _ : st) {
    auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  report_rss(st);
}
BENCHMARK(W3_mlp_step_torch)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
#endif

// ---------------------------------------------------------------- W4 lenet_step

Sequential kiln_lenet() {
  return Sequential({layers::Conv2D(6, 5, 1, "same", "relu"), layers::MaxPooling2D(2),
                     layers::Conv2D(16, 5, 1, "valid", "relu"), layers::MaxPooling2D(2),
                     layers::Flatten(), layers::Dense(120, "relu"), layers::Dense(84, "relu"),
                     layers::Dense(10)});
}

void W4_lenet_step_kiln(benchmark::State& st) {
  set_threads();
  manual_seed(0);
  Data d = make_data({64, 1, 28, 28}, 2);
  Sequential model = kiln_lenet();
  model.compile(optimizers::Adam(1e-3), "sparse_categorical_crossentropy");
  model.train_on_batch(d.x, d.y);
  for (auto _ : st) benchmark::DoNotOptimize(model.train_on_batch(d.x, d.y));
  report_rss(st);
}
BENCHMARK(W4_lenet_step_kiln)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

void W4_lenet_step_kiln_nn(benchmark::State& st) {
  set_threads();
  manual_seed(0);
  Data d = make_data({64, 1, 28, 28}, 2);
  auto net = nn::sequential(
      {std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 6, 5).padding(2)),
       std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(nn::MaxPool2dOptions(2)),
       std::make_shared<nn::Conv2d>(nn::Conv2dOptions(6, 16, 5)), std::make_shared<nn::ReLU>(),
       std::make_shared<nn::MaxPool2d>(nn::MaxPool2dOptions(2)), std::make_shared<nn::Flatten>(),
       std::make_shared<nn::Linear>(nn::LinearOptions(400, 120)), std::make_shared<nn::ReLU>(),
       std::make_shared<nn::Linear>(nn::LinearOptions(120, 84)), std::make_shared<nn::ReLU>(),
       std::make_shared<nn::Linear>(nn::LinearOptions(84, 10))});
  optim::Adam opt(net->named_parameters(), optim::AdamOptions(1e-3));
  for (auto _ : st) {
    Tensor loss = cross_entropy(net->forward(d.x), d.y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  report_rss(st);
}
BENCHMARK(W4_lenet_step_kiln_nn)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

#ifdef KILN_WITH_TORCH
struct LeNetImpl : torch::nn::Module {
  LeNetImpl()
      : conv1(register_module("conv1",
                              torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 6, 5).padding(2)))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 16, 5)))),
        fc1(register_module("fc1", torch::nn::Linear(400, 120))),
        fc2(register_module("fc2", torch::nn::Linear(120, 84))),
        fc3(register_module("fc3", torch::nn::Linear(84, 10))) {}
  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(conv1->forward(x)), 2);
    x = torch::max_pool2d(torch::relu(conv2->forward(x)), 2);
    x = x.flatten(1);
    return fc3->forward(torch::relu(fc2->forward(torch::relu(fc1->forward(x)))));
  }
  torch::nn::Conv2d conv1, conv2;
  torch::nn::Linear fc1, fc2, fc3;
};

void W4_lenet_step_torch(benchmark::State& st) {
  set_torch_threads();
  torch::manual_seed(0);
  auto x = torch::randn({64, 1, 28, 28});
  auto y = torch::randint(0, 10, {64}, torch::kLong);
  auto net = std::make_shared<LeNetImpl>();
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-3));
  for (auto _ : st) {
    auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  report_rss(st);
}
BENCHMARK(W4_lenet_step_torch)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
#endif

}  // namespace

// ---------------------------------------------------------------- AdamW step alone
// One AdamW step over W5's parameters (a 4-layer BERT, hidden 256, FFN 1024, vocabulary 8192,
// 4.3M values in 70 tensors: embeddings, 4 x (Q, K, V, output, two LayerNorms, two FFN layers),
// head), fused (arg 1: one parallel loop over every element) or one loop per parameter (arg 0);
// arg 2 times clip_grad_norm_ over the same gradients instead (the 2-norm, nothing scaled).
// The gradients stay set, so every iteration is one full update.
void AdamW_step_bert_params(benchmark::State& st) {
  set_threads();
  Generator g(0);
  optim::NamedParameters params;
  auto add = [&](const std::string& name, Shape shape) {
    Tensor p = randn(shape, kFloat32, &g).requires_grad_();
    p.set_grad(randn(shape, kFloat32, &g));
    params.emplace_back(name, p);
  };
  add("tok", {8192, 256});
  add("pos", {128, 256});
  add("emb_ln.w", {256});
  add("emb_ln.b", {256});
  for (int l = 0; l < 4; ++l) {
    const std::string p = "layer" + std::to_string(l) + ".";
    for (const char* m : {"q", "k", "v", "o"}) {
      add(p + m + ".w", {256, 256});
      add(p + m + ".b", {256});
    }
    add(p + "ffn1.w", {1024, 256});
    add(p + "ffn1.b", {1024});
    add(p + "ffn2.w", {256, 1024});
    add(p + "ffn2.b", {256});
    for (const char* n : {"ln1", "ln2"}) {
      add(p + n + ".w", {256});
      add(p + n + ".b", {256});
    }
  }
  add("head.w", {2, 256});
  add("head.b", {2});
  if (st.range(0) == 2) {  // the gradient-norm clip of a fine-tuning step, over the same tensors
    for (auto _ : st) benchmark::DoNotOptimize(optim::clip_grad_norm_(params, 1e9));
  } else {
    optim::AdamW opt(params, optim::AdamWOptions(1e-4).fused(st.range(0) != 0));
    for (auto _ : st) opt.step();
  }
  st.counters["tensors"] = static_cast<double>(params.size());
}
BENCHMARK(AdamW_step_bert_params)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);

BENCHMARK_MAIN();
