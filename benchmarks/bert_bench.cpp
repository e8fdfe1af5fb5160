// W5 bert_step: a 4-layer post-LN BERT (vocab 8192, hidden 256, 4 heads, FFN 1024, GELU, learned
// positions up to 128, dropout 0.1, first token -> dropout -> Linear(256, 2)). Kiln vs LibTorch in
// the same binary, and for inference also ONNX Runtime (onnxruntime-node through
// benchmarks/ort_bench.js) running the file Kiln's own exporter writes for the same model.
//   W5_train_step_*     batch 16 × 128, cross-entropy, backward, AdamW (lr 1e-4, wd 1e-2).
//   W5_train_full_kiln  the same step with every row of the last layer computed, as LibTorch's
//                       model does (Kiln's TextClassifier computes only the first row there, the
//                       one its head reads: NasBertEncoder::first_token).
//   W5_train_first_torch  LibTorch's last layer written out by hand for the first row alone.
//   W5_infer_1x128_*    eval mode, no grad, batch 1 × 128.
//   W5_infer_32x128_*   eval mode, no grad, batch 32 × 128. (ORT runs Kiln's exported graph, which
//                       also computes the first row alone in the last layer; LibTorch's all rows.)
// Prints the medians of the repetitions and a ratio table at the end:
//   ./build-bench/benchmarks/bert_bench                 (5 repetitions of >= 0.5 s are built in)
//   KILN_BENCH_THREADS=1 ./build-bench/benchmarks/bert_bench   (on a loaded machine)
//   ./build-bench/benchmarks/bert_bench --interleave=15   (inference only: Kiln, LibTorch and ORT
//                       take turns, one ~0.3 s repetition each per round, 15 rounds; medians,
//                       minimums and per-round ratios — steadier than whole runs one after another)
// 2 threads for Kiln, LibTorch and ONNX Runtime (intraOpNumThreads); KILN_BENCH_THREADS overrides.
// Peak RSS (counter peak_rss_MB) is the whole process's, so measure it one case per process, and
// Kiln's in the binary built without LibTorch (linking LibTorch alone costs ~160 MB before any case):
//   ./build-bench/benchmarks/bert_bench --benchmark_filter='W5_train_step_torch/'
//   ./build-bench/benchmarks/bert_bench_kiln_only --benchmark_filter='W5_train_step_kiln/'
// The ORT column's peak RSS is that of the Node process running ONNX Runtime (both shapes).
// ORT is skipped (with a note) when no Kiln inference case ran or `node` cannot run the script.
// Legend: B = batch, T = tokens, C = hidden (256), V = vocabulary.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "kiln/io/json.h"
#include "kiln/kiln.h"
#include "kiln/optim/adam.h"
#include "kiln/text/nasbert.h"
#include "kiln/text/onnx_export.h"
#ifdef KILN_WITH_TORCH
#include <torch/torch.h>
#endif

namespace {

using namespace kiln;

constexpr int64_t kVocab = 8192, kPad = 1, kHidden = 256, kLayers = 4, kHeads = 4, kFfn = 1024,
                  kMaxLen = 128, kClasses = 2;
constexpr double kDropout = 0.1, kLr = 1e-4;
constexpr int64_t kTrainB = 16, kT = 128;

using kiln_bench::bench_threads;
using kiln_bench::set_threads;
#ifdef KILN_WITH_TORCH
using kiln_bench::set_torch_threads;
#endif

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

void report(benchmark::State& st, int64_t sequences_per_iter) {
  st.counters["peak_rss_MB"] = peak_rss_mb();
  st.counters["seq_per_s"] = benchmark::Counter(static_cast<double>(sequences_per_iter),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

// ---------------------------------------------------------------- Kiln

// The W5 model from the text library's post-LN BERT config: E = C = 256, layers "M F" × 4.
text::EncoderConfig w5_config() {
  text::EncoderConfig cfg = text::EncoderConfig::bert(kVocab, kPad, kHidden, kLayers, kHeads, kFfn);
  cfg.max_positions = kMaxLen;
  cfg.dropout = kDropout;
  cfg.validate();
  return cfg;
}

std::shared_ptr<text::TextClassifier> kiln_model() {
  return std::make_shared<text::TextClassifier>(w5_config(), kClasses);
}

// (B, T) int64 ids in [2, V): no pads, every row full length.
Tensor kiln_ids(int64_t B, int64_t T, uint64_t seed) {
  Generator g(seed);
  return randint(2, kVocab, {B, T}, kInt64, &g);
}

// full = false: the classifier as users call it (its last layer computes the first row alone, see
// NasBertEncoder::first_token). full = true: every row of every layer, then the first row, the
// work LibTorch's model below does.
void train_kiln(benchmark::State& st, bool full) {
  set_threads();
  auto model = kiln_model();
  model->train();
  optim::AdamW opt(model->named_parameters(), optim::AdamWOptions(kLr));
  const Tensor ids = kiln_ids(kTrainB, kT, 1);  // (B, T)
  Generator g(2);
  const Tensor y = randint(0, kClasses, {kTrainB}, kInt64, &g);  // (B)
  auto logits = [&] {                                            // (B, 2)
    if (!full) return model->forward(ids);
    return model->classifier->forward(
        model->dropout->forward(select(model->encoder->forward(ids), 1, 0)));
  };
  auto step = [&] {
    opt.zero_grad();
    Tensor loss = cross_entropy(logits(), y);  // (B, 2) logits -> scalar
    loss.backward();
    opt.step();
    return loss.item<float>();
  };
  // One untimed step first (block cache, oneDNN's JIT kernels, Adam's state): otherwise the first
  // repetition's one iteration is that warm-up, and with 4 iterations per 0.5 s a repetition of a
  // single slow step moves the median.
  step();
  for (auto _ : st) benchmark::DoNotOptimize(step());
  report(st, kTrainB);
}
void W5_train_step_kiln(benchmark::State& st) {
  train_kiln(st, false);
}
void W5_train_full_kiln(benchmark::State& st) {
  train_kiln(st, true);
}

void infer_kiln(benchmark::State& st, int64_t B) {
  set_threads();
  auto model = kiln_model();
  model->eval();
  const Tensor ids = kiln_ids(B, kT, 3);
  NoGradGuard no_grad;
  model->forward(ids);  // untimed warm-up, as train_kiln
  for (auto _ : st) {
    Tensor logits = model->forward(ids);  // (B, 2)
    benchmark::DoNotOptimize(logits.data_ptr<float>());
  }
  report(st, B);
}
void W5_infer_1x128_kiln(benchmark::State& st) {
  infer_kiln(st, 1);
}
void W5_infer_32x128_kiln(benchmark::State& st) {
  infer_kiln(st, 32);
}

// ---------------------------------------------------------------- LibTorch

#ifdef KILN_WITH_TORCH
// The same architecture from torch::nn. LibTorch 1.13's C++ TransformerEncoderLayer is post-LN
// (x = norm1(x + dropout1(self_attn(x))); x = norm2(x + dropout2(linear2(dropout(gelu(linear1
// (x))))))), sequence-first (T, B, C), with dropout 0.1 on attention weights, FFN and residuals.
struct TorchBertImpl : torch::nn::Module {
  TorchBertImpl() {
    tok = register_module(
        "tok",
        torch::nn::Embedding(torch::nn::EmbeddingOptions(kVocab, kHidden).padding_idx(kPad)));
    pos = register_module("pos", torch::nn::Embedding(kMaxLen, kHidden));
    norm = register_module("norm",
                           torch::nn::LayerNorm(torch::nn::LayerNormOptions({kHidden}).eps(1e-5)));
    drop = register_module("drop", torch::nn::Dropout(kDropout));
    for (int64_t i = 0; i < kLayers; ++i) {
      layers.push_back(
          register_module("layer" + std::to_string(i),
                          torch::nn::TransformerEncoderLayer(
                              torch::nn::TransformerEncoderLayerOptions(kHidden, kHeads)
                                  .dim_feedforward(kFfn)
                                  .dropout(kDropout)
                                  .activation(torch::kGELU))));
    }
    cls = register_module("cls", torch::nn::Linear(kHidden, kClasses));
  }
  // ids: (B, T) int64  ->  (B, 2) logits. The key padding mask (ids == pad) is passed as Kiln's
  // encoder derives it, so both do the same masking work. first_only: the last layer written out
  // by hand for the first row alone (query = that row), the work Kiln's classifier does.
  torch::Tensor forward(const torch::Tensor& ids, bool first_only = false) {
    const int64_t T = ids.size(1);
    const torch::Tensor pad_mask = ids.eq(kPad);  // (B, T)
    torch::Tensor h =
        tok->forward(ids) + pos->forward(torch::arange(T, torch::kLong));  // (B, T, C)
    h = drop->forward(norm->forward(h)).transpose(0, 1);                   // (T, B, C)
    const size_t n = first_only ? layers.size() - 1 : layers.size();
    for (size_t i = 0; i < n; ++i) h = layers[i]->forward(h, {}, pad_mask);
    if (first_only) {
      auto& L = layers.back();
      torch::Tensor x = h.narrow(0, 0, 1);  // (1, B, C)
      x = L->norm1(x + L->dropout1(std::get<0>(L->self_attn(x, h, h, pad_mask))));
      h = L->norm2(x +
                   L->dropout2(L->linear2(L->dropout(torch::nn::functional::gelu(L->linear1(x))))));
    }
    return cls->forward(drop->forward(h[0]));  // first token (B, C) -> (B, 2)
  }
  torch::nn::Embedding tok{nullptr}, pos{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Dropout drop{nullptr};
  std::vector<torch::nn::TransformerEncoderLayer> layers;
  torch::nn::Linear cls{nullptr};
};
TORCH_MODULE(TorchBert);

void train_torch(benchmark::State& st, bool first_only) {
  set_torch_threads();
  torch::manual_seed(0);
  TorchBert model;
  model->train();
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(kLr));  // wd 1e-2
  const torch::Tensor ids = torch::randint(2, kVocab, {kTrainB, kT}, torch::kLong);
  const torch::Tensor y = torch::randint(0, kClasses, {kTrainB}, torch::kLong);
  auto step = [&] {
    opt.zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(ids, first_only), y);
    loss.backward();
    opt.step();
    return loss.item<float>();
  };
  step();  // untimed warm-up, as train_kiln
  for (auto _ : st) benchmark::DoNotOptimize(step());
  report(st, kTrainB);
}
void W5_train_step_torch(benchmark::State& st) {
  train_torch(st, false);
}
void W5_train_first_torch(benchmark::State& st) {
  train_torch(st, true);
}

void infer_torch(benchmark::State& st, int64_t B) {
  set_torch_threads();
  torch::manual_seed(0);
  TorchBert model;
  model->eval();
  const torch::Tensor ids = torch::randint(2, kVocab, {B, kT}, torch::kLong);
  torch::InferenceMode guard;
  model->forward(ids);  // untimed warm-up, as infer_kiln
  for (auto _ : st) {
    torch::Tensor logits = model->forward(ids);
    benchmark::DoNotOptimize(logits.data_ptr<float>());
  }
  report(st, B);
}
void W5_infer_1x128_torch(benchmark::State& st) {
  infer_torch(st, 1);
}
void W5_infer_32x128_torch(benchmark::State& st) {
  infer_torch(st, 32);
}
#endif

// ---------------------------------------------------------------- ONNX Runtime

struct OrtFigures {
  std::map<int64_t, double> median_ms;  // batch -> median ms at T = 128
  double peak_rss_mb = 0;
};

// The script that runs ONNX Runtime, beside this file.
std::filesystem::path ort_script() {
  return std::filesystem::path(__FILE__).parent_path() / "ort_bench.js";
}

// Writes `model` with Kiln's text exporter (inputs input_ids, attention_mask; output logits) to a
// temporary file for ORT; the caller removes it.
std::filesystem::path export_for_ort(text::TextClassifier& model) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("kiln_bert_bench_" + std::to_string(::getpid()) + ".onnx");
  text::export_text_classifier(model, path, /*probabilities=*/false);
  return path;
}

// Exports a fresh W5 model and times it in ONNX Runtime through ort_bench.js. Returns false (after
// a note on stderr) when node or the script fails.
bool run_ort(OrtFigures& out) {
  namespace fs = std::filesystem;
  const fs::path script = ort_script();
  const fs::path model_path = export_for_ort(*kiln_model());
  const std::string cmd = "node '" + script.string() + "' '" + model_path.string() +
                          "' --shape 1x128 --shape 32x128 --warmup 10 --runs 50 --threads " +
                          std::to_string(bench_threads()) + " --vocab " + std::to_string(kVocab);
  std::fprintf(stderr, "bert_bench: running %s\n", cmd.c_str());
  std::string text;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) text.append(buf, n);
  }
  const int rc = pipe ? ::pclose(pipe) : -1;
  std::error_code ec;
  fs::remove(model_path, ec);
  if (rc != 0) {
    std::fprintf(stderr, "bert_bench: ONNX Runtime skipped: `%s` exited with status %d\n",
                 cmd.c_str(), rc);
    return false;
  }
  try {
    const json::Value v = json::parse(text, "ort_bench.js output");
    for (const json::Value& r : v.at("results").as_array())
      out.median_ms[r.at("batch").as_int()] = r.at("median_ms").as_double();
    out.peak_rss_mb = v.at("peak_rss_MB").as_double();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bert_bench: ONNX Runtime skipped: cannot read ort_bench.js output: %s\n",
                 e.what());
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- interleaved inference

// ort_bench.js --serve as a child process: a request line to its stdin, a JSON line back.
class OrtServer {
 public:
  OrtServer() = default;
  OrtServer(const OrtServer&) = delete;
  OrtServer& operator=(const OrtServer&) = delete;
  ~OrtServer() { finish(); }

  // Starts node on `model`; false (after a note on stderr) when it does not come up.
  bool start(const std::filesystem::path& model) {
    const std::string script = ort_script().string();
    const std::string threads = std::to_string(bench_threads()), vocab = std::to_string(kVocab);
    int in[2], out[2];
    if (::pipe(in) != 0) return false;
    if (::pipe(out) != 0) {
      ::close(in[0]);
      ::close(in[1]);
      return false;
    }
    pid_ = ::fork();
    if (pid_ == 0) {  // child: stdin from in[0], stdout to out[1]
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
      ::execlp("node", "node", script.c_str(), model.c_str(), "--serve", "--threads",
               threads.c_str(), "--vocab", vocab.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    if (pid_ < 0) {
      ::close(in[1]);
      ::close(out[0]);
      return false;
    }
    to_ = ::fdopen(in[1], "w");
    from_ = ::fdopen(out[0], "r");
    if (read_line().find("ready") == std::string::npos) {
      std::fprintf(stderr, "bert_bench: ONNX Runtime skipped: `node %s --serve` did not start\n",
                   script.c_str());
      finish();
      return false;
    }
    return true;
  }

  // Mean ms per run over n runs of the (B, kT) inputs; -1 when the server has failed.
  double run(int64_t B, int64_t n) {
    if (!to_) return -1;
    std::fprintf(to_, "%lld %lld %lld\n", static_cast<long long>(B), static_cast<long long>(kT),
                 static_cast<long long>(n));
    std::fflush(to_);
    return field(read_line(), "mean_ms");
  }

  // Ends the server; its peak RSS (MB), or 0 when it did not say.
  double finish() {
    if (!to_) return 0;
    std::fclose(to_);
    to_ = nullptr;
    const double rss = field(read_line(), "peak_rss_MB");
    std::fclose(from_);
    from_ = nullptr;
    int status = 0;
    ::waitpid(pid_, &status, 0);
    return rss > 0 ? rss : 0;
  }

 private:
  std::string read_line() {
    std::string line;
    int c;
    while (from_ && (c = std::fgetc(from_)) != EOF && c != '\n')
      line.push_back(static_cast<char>(c));
    return line;
  }
  static double field(const std::string& line, const char* name) {
    try {
      return json::parse(line, "ort_bench.js --serve output").at(name).as_double();
    } catch (const std::exception&) {
      return -1;
    }
  }
  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
};

// Mean ms per call over n calls of `call`.
template <typename F>
double mean_ms(int64_t n, F&& call) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n; ++i) call();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
         static_cast<double>(n);
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// --interleave[=R]: W5 inference, Kiln, LibTorch and ONNX Runtime taking turns. Each round runs one
// repetition (the mean of ~0.3 s of calls) of each peer, in an order that rotates every round, with a
// pause between repetitions so no pool is still spinning when the next one starts. A slow spell on
// the machine then falls on all peers alike, and the per-round ratios pair repetitions run side by
// side. Prints, per shape and peer: median and minimum of the R repetitions, and Kiln's ratios.
int run_interleaved(int rounds) {
  std::signal(SIGPIPE, SIG_IGN);  // a failed node must not end the benchmark
  struct Peer {
    Peer(std::string name_, std::function<double(int64_t)> rep_)
        : name(std::move(name_)), rep(std::move(rep_)) {}
    std::string name;
    std::function<double(int64_t)> rep;  // mean ms per call over n calls
    int64_t n = 1;
    std::vector<double> ms;
  };
  auto model = kiln_model();
  model->eval();
  namespace fs = std::filesystem;
  const fs::path onnx_path = export_for_ort(*model);
  OrtServer ort;
  const bool have_ort = ort.start(onnx_path);
#ifdef KILN_WITH_TORCH
  torch::manual_seed(0);
  TorchBert torch_model;
  torch_model->eval();
#endif
  std::printf("W5 inference, interleaved: %d rounds, %d thread(s) each; ms per call\n", rounds,
              bench_threads());
  std::printf("%-16s %-9s %9s %9s %12s %12s %12s\n", "case", "peer", "median", "min",
              "Kiln/peer:", "of medians", "of mins");
  for (const int64_t B : {int64_t{1}, int64_t{32}}) {
    const Tensor ids = kiln_ids(B, kT, 3);
    std::vector<Peer> peers;
    peers.emplace_back("Kiln", [&](int64_t n) {
      set_threads();
      NoGradGuard no_grad;
      return mean_ms(n, [&] {
        Tensor logits = model->forward(ids);  // (B, 2)
        benchmark::DoNotOptimize(logits.data_ptr<float>());
      });
    });
#ifdef KILN_WITH_TORCH
    const torch::Tensor tids = torch::randint(2, kVocab, {B, kT}, torch::kLong);
    peers.emplace_back("LibTorch", [&](int64_t n) {
      set_torch_threads();
      torch::InferenceMode guard;
      return mean_ms(n, [&] {
        torch::Tensor logits = torch_model->forward(tids);
        benchmark::DoNotOptimize(logits.data_ptr<float>());
      });
    });
#endif
    if (have_ort) peers.emplace_back("ORT", [&](int64_t n) { return ort.run(B, n); });
    for (Peer& p : peers) {  // warm-up (primitives, arenas), then ~0.3 s per repetition
      p.rep(3);
      p.n = std::max<int64_t>(2, static_cast<int64_t>(300.0 / std::max(p.rep(3), 1e-3)));
    }
    for (int r = 0; r < rounds; ++r) {
      for (size_t j = 0; j < peers.size(); ++j) {
        Peer& p = peers[(static_cast<size_t>(r) + j) % peers.size()];
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        p.ms.push_back(p.rep(p.n));
      }
    }
    const std::string name = "W5_infer_" + std::to_string(B) + "x128";
    for (const Peer& p : peers) {
      if (std::any_of(p.ms.begin(), p.ms.end(), [](double v) { return v < 0; })) {
        std::printf("%-16s %-9s failed\n", name.c_str(), p.name.c_str());
        continue;
      }
      std::vector<double> paired;  // Kiln's repetition / this peer's, round by round
      for (int r = 0; r < rounds; ++r) paired.push_back(peers[0].ms[r] / p.ms[r]);
      const double med = median_of(p.ms), mn = *std::min_element(p.ms.begin(), p.ms.end());
      std::printf("%-16s %-9s %9.2f %9.2f", name.c_str(), p.name.c_str(), med, mn);
      if (&p == &peers[0]) {
        std::printf("\n");
      } else {
        std::printf(" %12.2f %12.2f %12.2f   (rounds: %.2f-%.2f)\n", median_of(paired),
                    median_of(peers[0].ms) / med,
                    *std::min_element(peers[0].ms.begin(), peers[0].ms.end()) / mn,
                    *std::min_element(paired.begin(), paired.end()),
                    *std::max_element(paired.begin(), paired.end()));
      }
    }
  }
  std::printf(
      "(Kiln/peer: median of the per-round ratios; then the ratio of the medians and of the "
      "minimums)\n");
  if (have_ort) std::printf("ORT (node process) peak RSS %.1f MB\n", ort.finish());
  std::error_code ec;
  fs::remove(onnx_path, ec);
  return 0;
}

// ---------------------------------------------------------------- driver

// Console output as usual, and per benchmark the median real time (ms) and the peak RSS counter.
class MedianReporter : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, double> median_ms, rss_mb;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.run_type == Run::RT_Aggregate && r.aggregate_name == "median") {
        median_ms[r.run_name.function_name] = r.GetAdjustedRealTime();  // in the unit set: ms
        auto it = r.counters.find("peak_rss_MB");
        if (it != r.counters.end()) rss_mb[r.run_name.function_name] = it->second.value;
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
};

void register_all() {
  auto reg = [](const char* name, void (*fn)(benchmark::State&)) {
    benchmark::RegisterBenchmark(name, fn)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(0.5)
        ->Repetitions(5);
  };
  reg("W5_train_step_kiln", W5_train_step_kiln);
  reg("W5_train_full_kiln", W5_train_full_kiln);
  reg("W5_infer_1x128_kiln", W5_infer_1x128_kiln);
  reg("W5_infer_32x128_kiln", W5_infer_32x128_kiln);
#ifdef KILN_WITH_TORCH
  reg("W5_train_step_torch", W5_train_step_torch);
  reg("W5_train_first_torch", W5_train_first_torch);
  reg("W5_infer_1x128_torch", W5_infer_1x128_torch);
  reg("W5_infer_32x128_torch", W5_infer_32x128_torch);
#endif
}

void print_cell(double v) {
  if (v > 0)
    std::printf(" %11.2f", v);
  else
    std::printf(" %11s", "-");
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--interleave") return run_interleaved(15);
    if (a.rfind("--interleave=", 0) == 0)
      return run_interleaved(std::max(1, std::atoi(a.c_str() + 13)));
  }
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  MedianReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  OrtFigures ort;
  const bool any_infer = reporter.median_ms.count("W5_infer_1x128_kiln") ||
                         reporter.median_ms.count("W5_infer_32x128_kiln");
  const bool have_ort = any_infer && run_ort(ort);

  std::printf(
      "\nW5 bert_step medians, %d thread(s), ms (ratio = Kiln / peer; targets: train <= 0.3"
      " x LibTorch, inference <= 0.7 x ORT)\n",
      bench_threads());
  std::printf("%-20s %11s %11s %11s %11s %11s\n", "case", "Kiln", "LibTorch", "ORT", "Kiln/Torch",
              "Kiln/ORT");
  struct Row {
    const char* name;
    const char* kiln;  // benchmark names
    const char* torch;
    int64_t ort_batch;  // 0: no ORT figure
  };
  // train_step: each framework's model as written (Kiln's classifier skips the rows its head does
  // not read; LibTorch's computes them). train_full / train_first: both doing the same work, all
  // rows or the first row alone in the last layer.
  for (const Row& row :
       {Row{"W5_train_step", "W5_train_step_kiln", "W5_train_step_torch", 0},
        Row{"W5_train_full", "W5_train_full_kiln", "W5_train_step_torch", 0},
        Row{"W5_train_first", "W5_train_step_kiln", "W5_train_first_torch", 0},
        Row{"W5_infer_1x128", "W5_infer_1x128_kiln", "W5_infer_1x128_torch", 1},
        Row{"W5_infer_32x128", "W5_infer_32x128_kiln", "W5_infer_32x128_torch", 32}}) {
    const std::string k = row.kiln, t = row.torch;
    if (!reporter.median_ms.count(k) && !reporter.median_ms.count(t)) continue;
    const double km = reporter.median_ms.count(k) ? reporter.median_ms[k] : 0;
    const double tm = reporter.median_ms.count(t) ? reporter.median_ms[t] : 0;
    const double om = have_ort && row.ort_batch && ort.median_ms.count(row.ort_batch)
                          ? ort.median_ms[row.ort_batch]
                          : 0;
    std::printf("%-20s", row.name);
    print_cell(km);
    print_cell(tm);
    print_cell(om);
    print_cell(km > 0 && tm > 0 ? km / tm : 0);
    print_cell(km > 0 && om > 0 ? km / om : 0);
    std::printf("\n");
  }
  std::printf("peak RSS (MB, process-wide so far; run one case per process to separate them):\n");
  for (const auto& [name, mb] : reporter.rss_mb) std::printf("  %-24s %8.1f\n", name.c_str(), mb);
  if (have_ort) std::printf("  %-24s %8.1f\n", "ORT (node process)", ort.peak_rss_mb);
  return 0;
}
