// Fused nn ops: softmax, layer_norm and softmax cross-entropy on 4096×1024 float32 rows, forward
// and forward+backward, plus multi-head attention and the post-LN residual output
// layer_norm(x + dropout(h, 0.1)) in training (ResidualNorm: Kiln's fused dropout_add_layer_norm;
// ResidualNorm_3ops: Kiln's dropout, add and layer_norm one after the other); Kiln vs LibTorch in the same process, 2 threads.
// Prints the medians of the repetitions (rows/s as a counter) and the Kiln / LibTorch time ratios
// at the end.
//   ./build/benchmarks/nn_bench --benchmark_enable_random_interleaving=true
// (interleaving spreads a busy machine's noise over both sides).
// Legend: R rows, D row length (classes for cross-entropy), B batch, H heads, T tokens, d head dim.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "bench_common.h"
#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/normalization.h"
#include "kiln/tensor/parallel.h"
#include "kiln/tensor/softmax.h"
#ifdef KILN_WITH_TORCH
#include <torch/torch.h>
#endif

namespace {

using namespace kiln;

constexpr int64_t kR = 4096, kD = 1024;  // rows × row length
constexpr int64_t kB = 8, kH = 12, kT = 128,
                  kHeadDim = 64;  // attention: BERT-base heads, 128 tokens

using kiln_bench::bench_threads;
using kiln_bench::set_threads;
#ifdef KILN_WITH_TORCH
using kiln_bench::set_torch_threads;
#endif
void rows_per_second(benchmark::State& st, int64_t rows) {
  st.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsIterationInvariantRate);
}

// Inputs shared by both sides: the same seeded values (LibTorch wraps Kiln's buffers).
struct Inputs {
  Array x, dy, w, b, target;  // (R, D), (R, D), (D), (D), (R)
  Array h;                    // (R, D): the sub-layer output added to the residual x
  Array q, k, v, dout;        // (B, H, T, d) each
  Inputs() {
    Generator g(1);
    x = kernels::randn({kR, kD}, 0, 2, kFloat32, &g);
    dy = kernels::randn({kR, kD}, 0, 1, kFloat32, &g);
    w = kernels::randn({kD}, 1, 0.1, kFloat32, &g);
    b = kernels::randn({kD}, 0, 0.1, kFloat32, &g);
    target = kernels::randint(0, kD, {kR}, kInt64, &g);
    h = kernels::randn({kR, kD}, 0, 1, kFloat32, &g);
    for (Array* a : {&q, &k, &v, &dout})
      *a = kernels::randn({kB, kH, kT, kHeadDim}, 0, 1, kFloat32, &g);
  }
};
const Inputs& inputs() {
  static const Inputs in;
  return in;
}

// ---------------------------------------------------------------- Kiln
void Softmax_forward_kiln(benchmark::State& st) {
  set_threads();
  const Inputs& in = inputs();
  for (auto _ : st) benchmark::DoNotOptimize(kernels::softmax(in.x, -1));
  rows_per_second(st, kR);
}
void Softmax_forward_backward_kiln(benchmark::State& st) {
  set_threads();
  const Inputs& in = inputs();
  Tensor x(in.x, true), dy(in.dy);
  for (auto _ : st) {
    x.zero_grad();
    softmax(x, -1).backward(dy);
    benchmark::DoNotOptimize(x.grad().data().raw_data());
  }
  rows_per_second(st, kR);
}
void LayerNorm_forward_kiln(benchmark::State& st) {
  set_threads();
  const Inputs& in = inputs();
  for (auto _ : st) benchmark::DoNotOptimize(kernels::layer_norm(in.x, kD, in.w, in.b, 1e-5).y);
  rows_per_second(st, kR);
}
void LayerNorm_forward_backward_kiln(benchmark::State& st) {
  set_threads();
  const Inputs& in = inputs();
  Tensor x(in.x, true), w(in.w, true), b(in.b, true), dy(in.dy);
  for (auto _ : st) {
    for (Tensor* p : {&x, &w, &b}) p->zero_grad();
    layer_norm(x, {kD}, w, b).backward(dy);
    benchmark::DoNotOptimize(x.grad().data().raw_data());
  }
  rows_per_second(st, kR);
}
constexpr double kResidualDropout = 0.1;
void residual_norm_kiln(benchmark::State& st, bool fused) {
  set_threads();
  const Inputs& in = inputs();
  Tensor x(in.x, true), h(in.h, true), w(in.w, true), b(in.b, true), dy(in.dy);
  Generator gen(5);
  for (auto _ : st) {
    for (Tensor* p : {&x, &h, &w, &b}) p->zero_grad();
    Tensor y = fused ? dropout_add_layer_norm(x, h, kResidualDropout, true, &gen, {kD}, w, b)
                     : layer_norm(add(x, dropout(h, kResidualDropout, true, &gen)), {kD}, w, b);
    y.backward(dy);
    benchmark::DoNotOptimize(h.grad().data().raw_data());
  }
  rows_per_second(st, kR);
}
void ResidualNorm_forward_backward_kiln(benchmark::State& st) {
  residual_norm_kiln(st, true);
}
void ResidualNorm_3ops_forward_backward_kiln(benchmark::State& st) {
  residual_norm_kiln(st, false);
}
void CrossEntropy_forward_kiln(benchmark::State& st) {
  set_threads();
  const Inputs& in = inputs();
  Tensor x(in.x), t(in.target);
  for (auto _ : st) benchmark::DoNotOptimize(cross_entropy(x, t).data().raw_data());
  rows_per_second(st, kR);
}
void CrossEntropy_forward_backward_kiln(benchmark::State& st) {
  set_threads();
  const Inputs& in = inputs();
  Tensor x(in.x, true), t(in.target);
  for (auto _ : st) {
    x.zero_grad();
    cross_entropy(x, t).backward();
    benchmark::DoNotOptimize(x.grad().data().raw_data());
  }
  rows_per_second(st, kR);
}
void Attention_forward_backward_kiln(benchmark::State& st) {
  set_threads();
  const Inputs& in = inputs();
  Tensor q(in.q, true), k(in.k, true), v(in.v, true), dy(in.dout), mask = zeros({kB, 1, 1, kT});
  for (auto _ : st) {
    for (Tensor* p : {&q, &k, &v}) p->zero_grad();
    scaled_dot_product_attention(q, k, v, mask).backward(dy);
    benchmark::DoNotOptimize(q.grad().data().raw_data());
  }
  rows_per_second(st, kB * kH * kT);
}

// Inference (no gradient): the scores of each (batch, head) entry stay in a scratch block
// (kernels::attention_no_grad). The "_scores" row runs the recorded path instead (q requires grad,
// no backward), which writes the (B, H, T, T) scores array, softmaxes it, then multiplies.
void Attention_forward_kiln(benchmark::State& st) {
  set_threads();
  const Inputs& in = inputs();
  Tensor q(in.q), k(in.k), v(in.v), mask = zeros({kB, 1, 1, kT});
  kiln::NoGradGuard no_grad;
  for (auto _ : st) benchmark::DoNotOptimize(scaled_dot_product_attention(q, k, v, mask));
  rows_per_second(st, kB * kH * kT);
}
void Attention_forward_scores_kiln(benchmark::State& st) {
  set_threads();
  const Inputs& in = inputs();
  Tensor q(in.q, true), k(in.k), v(in.v), mask = zeros({kB, 1, 1, kT});
  for (auto _ : st) benchmark::DoNotOptimize(scaled_dot_product_attention(q, k, v, mask));
  rows_per_second(st, kB * kH * kT);
}

// ---------------------------------------------------------------- LibTorch on the same values
#ifdef KILN_WITH_TORCH
torch::Tensor wrap(const Array& a) {
  return torch::from_blob(a.raw_data(), a.shape(),
                          a.dtype() == kInt64 ? torch::kInt64 : torch::kFloat32)
      .clone();
}
void Softmax_forward_torch(benchmark::State& st) {
  set_torch_threads();
  auto x = wrap(inputs().x);
  for (auto _ : st) benchmark::DoNotOptimize(torch::softmax(x, -1));
  rows_per_second(st, kR);
}
void Softmax_forward_backward_torch(benchmark::State& st) {
  set_torch_threads();
  auto x = wrap(inputs().x).requires_grad_(), dy = wrap(inputs().dy);
  for (auto _ : st) {
    x.mutable_grad() = torch::Tensor();
    torch::softmax(x, -1).backward(dy);
    benchmark::DoNotOptimize(x.grad().data_ptr());
  }
  rows_per_second(st, kR);
}
void LayerNorm_forward_torch(benchmark::State& st) {
  set_torch_threads();
  auto x = wrap(inputs().x), w = wrap(inputs().w), b = wrap(inputs().b);
  torch::NoGradGuard ng;
  for (auto _ : st) benchmark::DoNotOptimize(torch::layer_norm(x, {kD}, w, b, 1e-5));
  rows_per_second(st, kR);
}
void LayerNorm_forward_backward_torch(benchmark::State& st) {
  set_torch_threads();
  auto x = wrap(inputs().x).requires_grad_(), w = wrap(inputs().w).requires_grad_(),
       b = wrap(inputs().b).requires_grad_(), dy = wrap(inputs().dy);
  for (auto _ : st) {
    for (auto* p : {&x, &w, &b}) p->mutable_grad() = torch::Tensor();
    torch::layer_norm(x, {kD}, w, b, 1e-5).backward(dy);
    benchmark::DoNotOptimize(x.grad().data_ptr());
  }
  rows_per_second(st, kR);
}
// LibTorch 1.13's CPU path has no fused dropout + add + layer norm: the three ops (both Kiln rows
// compare with this one).
void residual_norm_torch(benchmark::State& st) {
  set_torch_threads();
  auto x = wrap(inputs().x).requires_grad_(), h = wrap(inputs().h).requires_grad_(),
       w = wrap(inputs().w).requires_grad_(), b = wrap(inputs().b).requires_grad_(),
       dy = wrap(inputs().dy);
  for (auto _ : st) {
    for (auto* p : {&x, &h, &w, &b}) p->mutable_grad() = torch::Tensor();
    torch::layer_norm(x + torch::dropout(h, kResidualDropout, true), {kD}, w, b, 1e-5).backward(dy);
    benchmark::DoNotOptimize(h.grad().data_ptr());
  }
  rows_per_second(st, kR);
}
void ResidualNorm_forward_backward_torch(benchmark::State& st) {
  residual_norm_torch(st);
}
void ResidualNorm_3ops_forward_backward_torch(benchmark::State& st) {
  residual_norm_torch(st);
}
void CrossEntropy_forward_torch(benchmark::State& st) {
  set_torch_threads();
  auto x = wrap(inputs().x), t = wrap(inputs().target);
  for (auto _ : st) benchmark::DoNotOptimize(torch::nn::functional::cross_entropy(x, t));
  rows_per_second(st, kR);
}
void CrossEntropy_forward_backward_torch(benchmark::State& st) {
  set_torch_threads();
  auto x = wrap(inputs().x).requires_grad_(), t = wrap(inputs().target);
  for (auto _ : st) {
    x.mutable_grad() = torch::Tensor();
    torch::nn::functional::cross_entropy(x, t).backward();
    benchmark::DoNotOptimize(x.grad().data_ptr());
  }
  rows_per_second(st, kR);
}
// LibTorch 1.13 has no fused attention on CPU: the same math as its Python reference
// implementation.
void Attention_forward_torch(benchmark::State& st) {
  set_torch_threads();
  const Inputs& in = inputs();
  auto q = wrap(in.q), k = wrap(in.k), v = wrap(in.v), mask = torch::zeros({kB, 1, 1, kT});
  const double scale = 1.0 / std::sqrt(static_cast<double>(kHeadDim));
  torch::NoGradGuard no_grad;
  for (auto _ : st) {
    auto s = torch::matmul(q, k.transpose(-1, -2)) * scale + mask;
    benchmark::DoNotOptimize(torch::matmul(torch::softmax(s, -1), v));
  }
  rows_per_second(st, kB * kH * kT);
}
void Attention_forward_backward_torch(benchmark::State& st) {
  set_torch_threads();
  const Inputs& in = inputs();
  auto q = wrap(in.q).requires_grad_(), k = wrap(in.k).requires_grad_(),
       v = wrap(in.v).requires_grad_();
  auto dy = wrap(in.dout), mask = torch::zeros({kB, 1, 1, kT});
  const double scale = 1.0 / std::sqrt(static_cast<double>(kHeadDim));
  for (auto _ : st) {
    for (auto* p : {&q, &k, &v}) p->mutable_grad() = torch::Tensor();
    auto s = torch::matmul(q, k.transpose(-1, -2)) * scale + mask;
    torch::matmul(torch::softmax(s, -1), v).backward(dy);
    benchmark::DoNotOptimize(q.grad().data_ptr());
  }
  rows_per_second(st, kB * kH * kT);
}
#endif

// Console output as usual, and the median real and CPU time of each benchmark kept for the ratio
// tables (CPU time is the main thread's: with 1 thread it is the work done, whatever the load).
class MedianReporter : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, double> real_ms, cpu_ms;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs)
      if (r.run_type == Run::RT_Aggregate && r.aggregate_name == "median") {
        real_ms[r.run_name.function_name] = r.GetAdjustedRealTime();  // in the unit set: ms
        cpu_ms[r.run_name.function_name] = r.GetAdjustedCPUTime();
      }
    ConsoleReporter::ReportRuns(runs);
  }
};

const char* const kWorkloads[] = {"Softmax_forward",
                                  "Softmax_forward_backward",
                                  "LayerNorm_forward",
                                  "LayerNorm_forward_backward",
                                  "CrossEntropy_forward",
                                  "CrossEntropy_forward_backward",
                                  "Attention_forward",
                                  "Attention_forward_backward",
                                  "ResidualNorm_forward_backward",
                                  "ResidualNorm_3ops_forward_backward"};

void register_all() {
  auto reg = [](const std::string& name, void (*fn)(benchmark::State&)) {
    benchmark::RegisterBenchmark(name.c_str(), fn)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(0.3)
        ->Repetitions(7);
  };
  reg("Softmax_forward_kiln", Softmax_forward_kiln);
  reg("Softmax_forward_backward_kiln", Softmax_forward_backward_kiln);
  reg("LayerNorm_forward_kiln", LayerNorm_forward_kiln);
  reg("LayerNorm_forward_backward_kiln", LayerNorm_forward_backward_kiln);
  reg("CrossEntropy_forward_kiln", CrossEntropy_forward_kiln);
  reg("CrossEntropy_forward_backward_kiln", CrossEntropy_forward_backward_kiln);
  reg("Attention_forward_kiln", Attention_forward_kiln);
  reg("Attention_forward_scores_kiln", Attention_forward_scores_kiln);
  reg("Attention_forward_backward_kiln", Attention_forward_backward_kiln);
  reg("ResidualNorm_forward_backward_kiln", ResidualNorm_forward_backward_kiln);
  reg("ResidualNorm_3ops_forward_backward_kiln", ResidualNorm_3ops_forward_backward_kiln);
#ifdef KILN_WITH_TORCH
  reg("Softmax_forward_torch", Softmax_forward_torch);
  reg("Softmax_forward_backward_torch", Softmax_forward_backward_torch);
  reg("LayerNorm_forward_torch", LayerNorm_forward_torch);
  reg("LayerNorm_forward_backward_torch", LayerNorm_forward_backward_torch);
  reg("CrossEntropy_forward_torch", CrossEntropy_forward_torch);
  reg("CrossEntropy_forward_backward_torch", CrossEntropy_forward_backward_torch);
  reg("Attention_forward_torch", Attention_forward_torch);
  reg("Attention_forward_backward_torch", Attention_forward_backward_torch);
  reg("ResidualNorm_forward_backward_torch", ResidualNorm_forward_backward_torch);
  reg("ResidualNorm_3ops_forward_backward_torch", ResidualNorm_3ops_forward_backward_torch);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  MedianReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  for (auto [label, table] :
       {std::pair{"real", &reporter.real_ms}, std::pair{"cpu", &reporter.cpu_ms}}) {
    std::printf("\n%-30s %10s %12s %8s %14s\n",
                fmt::format("median {} ms, {} threads", label, bench_threads()).c_str(), "Kiln",
                "LibTorch", "ratio", "Kiln rows/s");
    for (const char* w : kWorkloads) {
      const std::string k = std::string(w) + "_kiln", t = std::string(w) + "_torch";
      if (!table->count(k)) continue;
      const double km = table->at(k);
      const double rows =
          std::string(w).rfind("Attention", 0) == 0 ? double(kB * kH * kT) : double(kR);
      if (table->count(t))
        std::printf("%-30s %10.3f %12.3f %8.2f %14.3g\n", w, km, table->at(t), km / table->at(t),
                    rows / km * 1e3);
      else
        std::printf("%-30s %10.3f %12s %8s %14.3g\n", w, km, "-", "-", rows / km * 1e3);
    }
  }
  return 0;
}
