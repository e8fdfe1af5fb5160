// W2 conv2d: N = 32, C = 64, H = W = 32, K = 64, 3×3, pad 1, float32, 2 threads; forward and
// forward+backward (dx, dw, db), Kiln vs LibTorch in the same process. Prints the medians of the
// repetitions and the Kiln / LibTorch time ratios at the end.
//   ./build/benchmarks/conv_bench          (7 repetitions of >= 0.5 s each are built in)
// Also times NAS-BERT's separable conv1d (depthwise k = 7 then pointwise) for reference.
// Legend: B batch, C / K input / output channels, H × W image, L sequence length.
#include <benchmark/benchmark.h>

#include "bench_common.h"

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/parallel.h"
#ifdef KILN_WITH_TORCH
#include <torch/torch.h>
#endif

namespace {

using namespace kiln;
using kiln_bench::set_threads;
#ifdef KILN_WITH_TORCH
using kiln_bench::set_torch_threads;
#endif

constexpr int64_t kB = 32, kC = 64, kH = 32, kW = 32, kK = 64;

// W2 shapes: x (B, C, H, W), w (K, C, 3, 3), b (K).
struct KilnW2 {
  Tensor x, w, b, dy;
  explicit KilnW2(bool grad) {
    Generator g(1);
    x = Tensor(kernels::randn({kB, kC, kH, kW}, 0, 1, kFloat32, &g), grad);
    w = Tensor(kernels::randn({kK, kC, 3, 3}, 0, 0.05, kFloat32, &g), grad);
    b = Tensor(kernels::randn({kK}, 0, 1, kFloat32, &g), grad);
    dy = Tensor(kernels::randn({kB, kK, kH, kW}, 0, 1, kFloat32, &g));
  }
};

void W2_conv2d_forward_kiln(benchmark::State& st) {
  set_threads();
  KilnW2 t(false);
  for (auto _ : st) benchmark::DoNotOptimize(conv2d(t.x, t.w, t.b, {1, 1}, {1, 1}));
}

void W2_conv2d_forward_backward_kiln(benchmark::State& st) {
  set_threads();
  KilnW2 t(true);
  for (auto _ : st) {
    t.x.zero_grad();
    t.w.zero_grad();
    t.b.zero_grad();
    conv2d(t.x, t.w, t.b, {1, 1}, {1, 1}).backward(t.dy);
    benchmark::DoNotOptimize(t.w.grad().data().raw_data());
  }
}

// Separable conv1d as in NAS-BERT: depthwise (C, 1, 7) pad 3, then pointwise (C, C, 1).
// x: (B, C, L) with B = 32, C = 512, L = 128.
void SepConv1d_forward_backward_kiln(benchmark::State& st) {
  set_threads();
  Generator g(2);
  Tensor x(kernels::randn({32, 512, 128}, 0, 1, kFloat32, &g), true);
  Tensor dw(kernels::randn({512, 1, 7}, 0, 0.3, kFloat32, &g), true);
  Tensor pw(kernels::randn({512, 512, 1}, 0, 0.05, kFloat32, &g), true);
  Tensor dy(kernels::randn({32, 512, 128}, 0, 1, kFloat32, &g));
  for (auto _ : st) {
    x.zero_grad();
    dw.zero_grad();
    pw.zero_grad();
    conv1d(conv1d(x, dw, {}, 1, 3, 1, 512), pw).backward(dy);
    benchmark::DoNotOptimize(pw.grad().data().raw_data());
  }
}

#ifdef KILN_WITH_TORCH
struct TorchW2 {
  torch::Tensor x, w, b, dy;
  explicit TorchW2(bool grad) {
    torch::manual_seed(1);
    x = torch::randn({kB, kC, kH, kW}).requires_grad_(grad);
    w = (torch::randn({kK, kC, 3, 3}) * 0.05).requires_grad_(grad);
    b = torch::randn({kK}).requires_grad_(grad);
    dy = torch::randn({kB, kK, kH, kW});
  }
};

void W2_conv2d_forward_torch(benchmark::State& st) {
  set_torch_threads();
  TorchW2 t(false);
  torch::NoGradGuard no_grad;
  for (auto _ : st) benchmark::DoNotOptimize(torch::conv2d(t.x, t.w, t.b, 1, 1));
}

void W2_conv2d_forward_backward_torch(benchmark::State& st) {
  set_torch_threads();
  TorchW2 t(true);
  for (auto _ : st) {
    for (auto* p : {&t.x, &t.w, &t.b}) p->mutable_grad() = torch::Tensor();
    torch::conv2d(t.x, t.w, t.b, 1, 1).backward(t.dy);
    benchmark::DoNotOptimize(t.w.grad().data_ptr());
  }
}

void SepConv1d_forward_backward_torch(benchmark::State& st) {
  set_torch_threads();
  torch::manual_seed(2);
  auto x = torch::randn({32, 512, 128}).requires_grad_();
  auto dw = (torch::randn({512, 1, 7}) * 0.3).requires_grad_();
  auto pw = (torch::randn({512, 512, 1}) * 0.05).requires_grad_();
  auto dy = torch::randn({32, 512, 128});
  for (auto _ : st) {
    for (auto* p : {&x, &dw, &pw}) p->mutable_grad() = torch::Tensor();
    torch::conv1d(torch::conv1d(x, dw, {}, 1, 3, 1, 512), pw).backward(dy);
    benchmark::DoNotOptimize(pw.grad().data_ptr());
  }
}
#endif

// Console output as usual, and the median real time of each benchmark kept for the ratio table.
class MedianReporter : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, double> median_ms;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs)
      if (r.run_type == Run::RT_Aggregate && r.aggregate_name == "median")
        median_ms[r.run_name.function_name] = r.GetAdjustedRealTime();  // in the unit set: ms
    ConsoleReporter::ReportRuns(runs);
  }
};

void register_all() {
  auto reg = [](const char* name, void (*fn)(benchmark::State&)) {
    benchmark::RegisterBenchmark(name, fn)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(0.5)
        ->Repetitions(7);
  };
  reg("W2_conv2d_forward_kiln", W2_conv2d_forward_kiln);
  reg("W2_conv2d_forward_backward_kiln", W2_conv2d_forward_backward_kiln);
  reg("SepConv1d_forward_backward_kiln", SepConv1d_forward_backward_kiln);
#ifdef KILN_WITH_TORCH
  reg("W2_conv2d_forward_torch", W2_conv2d_forward_torch);
  reg("W2_conv2d_forward_backward_torch", W2_conv2d_forward_backward_torch);
  reg("SepConv1d_forward_backward_torch", SepConv1d_forward_backward_torch);
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
  const std::string title = "median (" + std::to_string(kiln_bench::bench_threads()) + " threads)";
  std::printf("\n%-28s %12s %12s %8s\n", title.c_str(), "Kiln ms", "LibTorch ms", "ratio");
  for (const char* w :
       {"W2_conv2d_forward", "W2_conv2d_forward_backward", "SepConv1d_forward_backward"}) {
    const std::string k = std::string(w) + "_kiln", t = std::string(w) + "_torch";
    if (!reporter.median_ms.count(k)) continue;
    const double km = reporter.median_ms[k];
    if (reporter.median_ms.count(t)) {
      const double tm = reporter.median_ms[t];
      std::printf("%-28s %12.2f %12.2f %8.2f\n", w, km, tm, km / tm);
    } else {
      std::printf("%-28s %12.2f %12s %8s\n", w, km, "-", "-");
    }
  }
  return 0;
}
