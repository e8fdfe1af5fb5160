// W1 sgemm and elementwise bandwidth, Kiln vs LibTorch in the same process (2 threads); W5's
// linear layers at inference, plain tiles vs packed weights.
//   ./build/benchmarks/core_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// GFLOP/s and GB/s are reported as counters; compare the *_median rows.
#include <benchmark/benchmark.h>

#include "bench_common.h"

#include <cstring>

#include "kiln/kiln.h"
#include "kiln/tensor/backend.h"
#include "kiln/tensor/linalg.h"
#include "kiln/tensor/ops.h"
#ifdef KILN_WITH_TORCH
#include <torch/torch.h>
#endif

using namespace kiln;
using kiln_bench::set_threads;
#ifdef KILN_WITH_TORCH
using kiln_bench::set_torch_threads;
#endif

// W1: C = A·B for N×N float32, on each GEMM backend (second argument: 0 = OpenBLAS, 1 = oneDNN;
// Kiln's default is oneDNN where it runs AVX-512 code, see kiln/tensor/backend.h).
static void W1_sgemm_kiln(benchmark::State& st) {
  set_threads();
  int64_t n = st.range(0);
  const GemmBackend backend = st.range(1) ? GemmBackend::OneDnn : GemmBackend::OpenBlas;
  const GemmBackend saved = gemm_backend();
  set_gemm_backend(backend);
  Generator g(1);
  Array a = kernels::randn({n, n}, 0, 1, kFloat32, &g),
        b = kernels::randn({n, n}, 0, 1, kFloat32, &g);
  for (auto _ : st) benchmark::DoNotOptimize(kernels::matmul(a, b));
  set_gemm_backend(saved);
  st.SetLabel(gemm_backend_name(backend));
  st.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(W1_sgemm_kiln)
    ->ArgsProduct({{256, 512, 1024, 2048}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// W5's linear layers at inference, y = x·wᵀ + b through kernels::linear_forward: the plain tiles
// (dnnl_sgemm repacks w each call; reuse = 0) against the packed-weights path (oneDNN's matmul
// primitive on w packed once and kept; reuse = 1, AVX-512 only — elsewhere both rows run the plain
// tiles). Arguments: M (1×128 or 32×128 tokens), N, K, reuse.
static void Linear_forward_kiln(benchmark::State& st) {
  set_threads();
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const bool reuse = st.range(3) != 0;
  Generator g(2);
  Array x = kernels::randn({M, K}, 0, 1, kFloat32, &g),
        w = kernels::randn({N, K}, 0, 1, kFloat32, &g), b = kernels::randn({N}, 0, 1, kFloat32, &g);
  kernels::linear_forward(x, w, b, reuse);  // packs w (reuse) and makes the primitives, untimed
  for (auto _ : st) benchmark::DoNotOptimize(kernels::linear_forward(x, w, b, reuse));
  st.SetLabel(reuse ? "packed" : "plain");
  st.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * M * N * K, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(Linear_forward_kiln)
    ->ArgsProduct({{128, 4096}, {1024}, {256}, {0, 1}})
    ->ArgsProduct({{128, 4096}, {256}, {1024}, {0, 1}})
    ->ArgsProduct({{128, 4096}, {768}, {256}, {0, 1}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

#ifdef KILN_WITH_TORCH
static void W1_sgemm_torch(benchmark::State& st) {
  set_torch_threads();
  int64_t n = st.range(0);
  torch::manual_seed(1);
  auto a = torch::randn({n, n}), b = torch::randn({n, n});
  for (auto _ : st) benchmark::DoNotOptimize(torch::matmul(a, b));
  st.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(W1_sgemm_torch)
    ->Arg(256)
    ->Arg(512)
    ->Arg(1024)
    ->Arg(2048)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
#endif

constexpr int64_t kElems = 16 << 20;  // 16M floats = 64 MB per operand

// Bytes moved: read two inputs (or one), write one output.
static void set_bw(benchmark::State& st, int operands) {
  st.counters["GB/s"] = benchmark::Counter(static_cast<double>(kElems) * 4 * operands,
                                           benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
}

static void Elementwise_memcpy(benchmark::State& st) {
  set_threads();
  Array a = kernels::ones({kElems}), b = kernels::zeros({kElems});
  for (auto _ : st) {
    std::memcpy(b.raw_data(), a.raw_data(), a.nbytes());
    benchmark::ClobberMemory();
  }
  set_bw(st, 2);
}
BENCHMARK(Elementwise_memcpy)->Unit(benchmark::kMillisecond)->UseRealTime();

static void Elementwise_kiln(benchmark::State& st) {
  set_threads();
  Generator g(2);
  Array a = kernels::randn({kElems}, 0, 1, kFloat32, &g),
        b = kernels::randn({kElems}, 0, 1, kFloat32, &g);
  int which = static_cast<int>(st.range(0));
  for (auto _ : st) {
    if (which == 0) benchmark::DoNotOptimize(kernels::add(a, b));
    if (which == 1) benchmark::DoNotOptimize(kernels::mul(a, b));
    if (which == 2) benchmark::DoNotOptimize(kernels::unary(kernels::UnaryOp::GeluErf, a));
  }
  st.SetLabel(which == 0 ? "add" : which == 1 ? "mul" : "gelu");
  set_bw(st, which == 2 ? 2 : 3);
}
BENCHMARK(Elementwise_kiln)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

#ifdef KILN_WITH_TORCH
static void Elementwise_torch(benchmark::State& st) {
  set_torch_threads();
  auto a = torch::randn({kElems}), b = torch::randn({kElems});
  int which = static_cast<int>(st.range(0));
  for (auto _ : st) {
    if (which == 0) benchmark::DoNotOptimize(a + b);
    if (which == 1) benchmark::DoNotOptimize(a * b);
    if (which == 2) benchmark::DoNotOptimize(torch::gelu(a));
  }
  st.SetLabel(which == 0 ? "add" : which == 1 ? "mul" : "gelu");
  set_bw(st, which == 2 ? 2 : 3);
}
BENCHMARK(Elementwise_torch)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

BENCHMARK_MAIN();
