// Data-parallel scaling: W3 (train_bench's MLP step) and the NAS-BERT 5M step (text_bench's
// NB5_train_step) at one process × 2 threads against 2 ranks × 1 thread, with the time each step
// spends waiting for gradient all-reduces (the communication the overlap did not hide).
//
//   bash scripts/bench_distributed.sh      # runs both configurations and prints the ratio table
//
// or by hand (the peer cannot run in the same process: it is another process count):
//   KILN_BENCH_THREADS=2 ./build/benchmarks/distributed_bench --benchmark_repetitions=5
//   mpirun -np 2 --bind-to none ./build/benchmarks/distributed_bench --benchmark_repetitions=5
//
// Each step trains on the same global batch either way (W3: 128 rows; NB5: 32 × 128 tokens); a
// rank takes half. Under mpirun each rank runs 1 Kiln thread (KILN_BENCH_THREADS overrides) and
// only rank 0 reports. Iteration counts are fixed, not adaptive: the ranks run the same
// collectives in lockstep, so every rank must run the same number of steps.
// Counters: wait_ms = mean time per step blocked in finish_gradient_synchronization (polling
// MPI_Test until the buckets' MPI_Iallreduce complete); overlapped = fraction of buckets started
// during backward. The Allreduce_* rows time one all-reduce of that model's gradient bytes alone:
// what a step would pay with no overlap.
// Args: the bucket cap in kB (25000 = PyTorch's 25 MB default: W3's 2.1 MB and NB5's 20 MB of
// gradients fit in one bucket, which cannot start before backward ends; smaller caps split them).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "bench_common.h"
#include "kiln/distributed/ddp.h"
#include "kiln/distributed/distributed.h"
#include "kiln/kiln.h"
#include "kiln/nn/nn.h"
#include "kiln/optim/adam.h"
#include "kiln/optim/clip_grad.h"
#include "kiln/optim/sgd.h"
#include "kiln/text/nasbert.h"

using namespace kiln;
namespace dist = kiln::distributed;

namespace {

// One process: 2 threads; a rank of several: 1 (KILN_BENCH_THREADS overrides either).
int threads() {
  if (std::getenv("KILN_BENCH_THREADS") != nullptr) return kiln_bench::bench_threads();
  return dist::world_size() > 1 ? 1 : 2;
}

// Rows [B·r/W, B·(r+1)/W) of a global batch of B: this rank's share.
Tensor share(const Tensor& t) {
  const int64_t B = t.size(0), W = dist::world_size(), r = dist::rank();
  return t.slice(0, B * r / W, B * (r + 1) / W);
}

// The reducer for `params` when distributed (null in one process), and the step counters.
std::unique_ptr<dist::DistributedDataParallel> make_ddp(const nn::NamedTensors& params,
                                                        int64_t bucket_kb) {
  if (dist::world_size() < 2) return nullptr;
  return std::make_unique<dist::DistributedDataParallel>(
      params, dist::DistributedDataParallelOptions{.bucket_cap_mb = bucket_kb / 1000.0});
}

void report(benchmark::State& st, const dist::DistributedDataParallel* ddp) {
  st.counters["ranks"] = dist::world_size();
  st.counters["threads"] = threads();
  if (ddp == nullptr) return;
  const dist::DdpStats& s = ddp->stats();
  st.counters["wait_ms"] = 1e3 * s.wait_seconds / static_cast<double>(s.steps);
  st.counters["buckets"] = static_cast<double>(ddp->num_buckets());
  st.counters["overlapped"] =
      static_cast<double>(s.buckets_started_in_backward) /
      static_cast<double>(s.buckets_started_in_backward + s.buckets_started_at_finish);
}

// ---------------------------------------------------------------- W3 MLP step

std::shared_ptr<nn::Sequential> w3_net() {
  manual_seed(0);
  return nn::sequential(
      {std::make_shared<nn::Linear>(nn::LinearOptions(784, 512)), std::make_shared<nn::ReLU>(),
       std::make_shared<nn::Linear>(nn::LinearOptions(512, 256)), std::make_shared<nn::ReLU>(),
       std::make_shared<nn::Linear>(nn::LinearOptions(256, 10))});
}

void W3_mlp_step(benchmark::State& st) {
  set_num_threads(threads());
  Generator g(1);
  const Tensor x = share(randn({128, 784}, kFloat32, &g));
  const Tensor y = share(randint(0, 10, {128}, kInt64, &g));
  auto net = w3_net();
  auto ddp = make_ddp(net->named_parameters(), st.range(0));
  optim::SGD opt(net->named_parameters(), optim::SGDOptions(0.01).momentum(0.9));
  for (auto _ : st) {
    if (ddp) ddp->prepare_for_backward();
    opt.zero_grad();
    Tensor loss = cross_entropy(net->forward(x), y);
    loss.backward();
    if (ddp) ddp->finish_gradient_synchronization();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  report(st, ddp.get());
}
BENCHMARK(W3_mlp_step)
    ->Arg(25000)
    ->Arg(500)
    ->Iterations(300)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// ---------------------------------------------------------------- NAS-BERT 5M step

constexpr int64_t kVocab = 50261, kPad = 50259;

void NB5_train_step(benchmark::State& st) {
  set_num_threads(threads());
  const int64_t B = 32, T = 128;
  auto model = std::make_shared<text::TextClassifier>(
      text::EncoderConfig::preset("nasbert-5m", kVocab, kPad), 2);
  Generator init(0);
  model->reset_parameters(&init);
  model->train();
  Generator g(1);
  const Tensor ids = share(randint(0, kPad, {B, T}, kInt64, &g));
  const Tensor y = share(randint(0, 2, {B}, kInt64, &g));
  auto ddp = make_ddp(model->named_parameters(), st.range(0));
  optim::Adam opt(model->named_parameters(), optim::AdamOptions(1e-4));
  for (auto _ : st) {
    if (ddp) ddp->prepare_for_backward();
    opt.zero_grad();
    Tensor loss = cross_entropy(model->forward(ids), y);
    loss.backward();
    if (ddp) ddp->finish_gradient_synchronization();
    optim::clip_grad_norm_(model->named_parameters(), 5.0);
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  st.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(B * T), benchmark::Counter::kIsIterationInvariantRate);
  report(st, ddp.get());
}
BENCHMARK(NB5_train_step)
    ->Arg(25000)
    ->Arg(5000)
    ->Iterations(8)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// ---------------------------------------------------------------- the all-reduce alone

// A blocking all-reduce of n float32 gradients: what a step pays when nothing overlaps it.
void allreduce(benchmark::State& st, int64_t n) {
  if (dist::world_size() < 2) {
    st.SkipWithError("needs mpirun -np 2");
    return;
  }
  std::vector<float> buf(static_cast<size_t>(n), 1.0f);
  for (auto _ : st) dist::AllReduceRequest(buf.data(), n, false, "benchmark").wait();
  st.counters["MB"] = 4.0 * static_cast<double>(n) / 1e6;
}
void Allreduce_W3_gradients(benchmark::State& st) {
  int64_t n = 0;
  for (auto& [name, p] : w3_net()->named_parameters()) n += p.numel();
  allreduce(st, n);
}
void Allreduce_NB5_gradients(benchmark::State& st) {
  int64_t n = 0;
  text::TextClassifier m(text::EncoderConfig::preset("nasbert-5m", kVocab, kPad), 2);
  for (auto& [name, p] : m.named_parameters()) n += p.numel();
  allreduce(st, n);
}
BENCHMARK(Allreduce_W3_gradients)->Iterations(200)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(Allreduce_NB5_gradients)->Iterations(20)->Unit(benchmark::kMillisecond)->UseRealTime();

// Ranks other than 0 run every benchmark (they must join the collectives) but print nothing.
class NullReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace

int main(int argc, char** argv) {
  if (dist::launched_world_size() > 1) dist::init();
  benchmark::Initialize(&argc, argv);
  if (dist::rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    NullReporter quiet;
    benchmark::RunSpecifiedBenchmarks(&quiet);
  }
  benchmark::Shutdown();
  return 0;
}
