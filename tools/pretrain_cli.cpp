// `kiln pretrain`: self-supervised pre-training of an encoder preset on a corpus directory
// (kiln/text/pretrain.h), resumable: run the same command again and it continues from
// OUT/checkpoint.safetensors.
//
//   kiln pretrain --corpus .cache/corpus-en --out runs/nasbert-5m-en --steps 20000
//                 [--objective electra|mlm] [--arch nasbert-5m] [--vocab-size 16384] ...
//
// OUT receives tokenizer/ (trained on the corpus unless --tokenizer is given; reused on resume),
// corpus.tokens (the tokenised corpus, reused while the corpus and tokenizer are unchanged),
// checkpoint.safetensors, encoder.safetensors (what --pretrained and the text trainers load),
// config.json and log.csv (step, loss, ..., tokens seen, seconds).
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <span>
#include <string>

#include "cli_args.h"
#include "kiln/io/atomic_file.h"
#include "kiln/io/json.h"
#include "kiln/io/safetensors.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"
#include "kiln/text/pretrain.h"
#include "kiln/text/trainers.h"
#include "kiln/track/run.h"

namespace kiln::tools {

namespace {

namespace fs = std::filesystem;

constexpr const char* kUsage =
    "usage: kiln pretrain --corpus DIR --out DIR [options]\n"
    "\n"
    "Pre-trains an encoder on the .txt files of DIR (one paragraph per line, a blank line between\n"
    "documents; scripts/make_corpus.sh builds Kiln's English corpus). Rerunning the same command\n"
    "resumes from OUT/checkpoint.safetensors; --steps may grow between sittings.\n"
    "\n"
    "options:\n"
    "  --objective NAME     electra (replaced-token detection, default) or mlm (masked LM)\n"
    "  --arch NAME          encoder preset: nasbert-5m (default), nasbert-10m, nasbert-30m,\n"
    "                       nasbert-60m, bert\n"
    "  --steps N            total optimisation steps (default 10000)\n"
    "  --batch-size N       rows per step (default 32)\n"
    "  --max-length N       tokens per row, specials included (default 128)\n"
    "  --lr X               peak learning rate (default 5e-4)\n"
    "  --warmup N           linear warm-up steps (default 1000), then linear decay to 0\n"
    "  --vocab-size N       byte-level BPE ids trained on the corpus (default 16384)\n"
    "  --tokenizer DIR      use this tokenizer instead of training one\n"
    "  --seed N             initialisation, data order, masking and dropout (default 0)\n"
    "  --word-vectors FILE  GloVe-format vectors (dim = the preset's embed_dim) for the token\n"
    "                       embeddings at step 0 (scripts/corpus/word_vectors.py makes one)\n"
    "  --init PATH          continue pre-training from these encoder weights (a pretrained\n"
    "                       encoder directory such as models/nasbert-5m-en, whose tokenizer is\n"
    "                       then used, or a save_encoder file); heads start fresh\n"
    "  --checkpoint-every N steps between checkpoints (default 500)\n"
    "  --snapshot-every N   also keep OUT/encoder-<step>.safetensors every N steps\n"
    "  --time-limit S       checkpoint and stop after S seconds (resume later)\n"
    "  --sitting-steps N    checkpoint and stop after N steps of this sitting\n"
    "  --log-every N        steps between progress lines and log.csv rows (default 50)\n"
    "  --threads N          worker threads (default: all cores)\n"
    "  --verbose N          0 silent, 1 progress (default 1)\n"
    "\n"
    "Exit status: 0 ok (finished or stopped at the time limit), 1 failure, 2 bad usage.\n";

int run(const Args& a) {
  a.check_known({"--corpus",
                 "--out",
                 "--objective",
                 "--arch",
                 "--steps",
                 "--batch-size",
                 "--max-length",
                 "--lr",
                 "--warmup",
                 "--vocab-size",
                 "--tokenizer",
                 "--seed",
                 "--checkpoint-every",
                 "--snapshot-every",
                 "--word-vectors",
                 "--init",
                 "--time-limit",
                 "--sitting-steps",
                 "--log-every",
                 "--threads",
                 "--verbose"});
  const fs::path corpus_dir = a.get("--corpus");
  const fs::path out = a.get("--out");
  if (a.has("--threads")) set_num_threads(static_cast<int>(a.get_int("--threads", 0)));
  const int verbose = static_cast<int>(a.get_int("--verbose", 1));
  fs::create_directories(out);

  // The tokenizer: the run's own (resume), the one given, or one trained on the corpus.
  std::shared_ptr<const text::Tokenizer> tok;
  if (fs::exists(out / "tokenizer")) {
    tok = text::Tokenizer::load(out / "tokenizer");
    if (a.has("--tokenizer") && text::tokenizer_fingerprint(*text::load_text_tokenizer(
                                    a.get("--tokenizer"))) != text::tokenizer_fingerprint(*tok)) {
      throw Error(fmt::format("{} already holds another tokenizer than --tokenizer {}",
                              (out / "tokenizer").string(), a.get("--tokenizer")));
    }
  } else if (a.has("--init") && !a.has("--tokenizer") &&
             fs::exists(fs::path(a.get("--init")) / "tokenizer")) {
    tok = text::Tokenizer::load(fs::path(a.get("--init")) / "tokenizer");
    tok->save(out / "tokenizer");
  } else if (a.has("--tokenizer")) {
    tok = text::load_text_tokenizer(a.get("--tokenizer"));
    tok->save(out / "tokenizer");
  } else {
    const auto vocab = static_cast<size_t>(a.get_int("--vocab-size", 16384));
    if (verbose > 0)
      std::printf("pretrain: training a %zu-id byte-level BPE on the corpus\n", vocab);
    tok = text::train_corpus_tokenizer(corpus_dir, {.vocab_size = vocab});
    tok->save(out / "tokenizer");
  }
  const text::TokenCorpus corpus =
      text::TokenCorpus::build(corpus_dir, *tok, out / "corpus.tokens", verbose);
  if (verbose > 0) {
    std::printf(
        "pretrain: corpus of %lld documents, %lld characters, %lld tokens (%.2f chars/token)\n",
        static_cast<long long>(corpus.documents()), static_cast<long long>(corpus.chars()),
        static_cast<long long>(corpus.size()),
        static_cast<double>(corpus.chars()) / static_cast<double>(corpus.size()));
  }

  text::PretrainOptions o;
  o.objective = a.get("--objective", "electra");
  o.steps = a.get_int("--steps", o.steps);
  o.batch_size = a.get_int("--batch-size", o.batch_size);
  o.max_length = a.get_int("--max-length", o.max_length);
  o.learning_rate = a.get_double("--lr", o.learning_rate);
  o.warmup_steps = a.get_int("--warmup", o.warmup_steps);
  o.seed = static_cast<uint64_t>(a.get_int("--seed", 0));
  o.checkpoint_every = a.get_int("--checkpoint-every", o.checkpoint_every);
  o.snapshot_every = a.get_int("--snapshot-every", 0);
  if (a.has("--word-vectors")) o.word_vectors = a.get("--word-vectors");
  if (a.has("--init")) o.init_encoder = a.get("--init");
  o.time_limit_seconds = a.get_double("--time-limit", 0);
  o.sitting_steps = a.get_int("--sitting-steps", 0);
  o.log_every = a.get_int("--log-every", o.log_every);
  o.out_dir = out;
  o.verbose = verbose;
  const std::string arch = a.get("--arch", "nasbert-5m");
  const text::EncoderConfig cfg =
      text::EncoderConfig::preset(arch, tok->vocab_size(), tok->pad_id());

  json::Value config = json::Value::object();
  config["architecture"] = arch;
  config["objective"] = o.objective;
  config["steps"] = o.steps;
  config["batch_size"] = o.batch_size;
  config["max_length"] = o.max_length;
  config["learning_rate"] = o.learning_rate;
  config["warmup_steps"] = o.warmup_steps;
  config["seed"] = static_cast<int64_t>(o.seed);
  config["word_vectors"] = o.word_vectors.string();
  config["init_encoder"] = o.init_encoder.string();
  config["corpus"] = corpus_dir.string();
  config["corpus_tokens"] = corpus.size();
  config["corpus_chars"] = corpus.chars();
  config["corpus_documents"] = corpus.documents();
  config["encoder_config"] = cfg.to_json();
  write_file_atomic((out / "config.json").string(), config.dump() + "\n");

  // Tracked like the other training commands (--track DIR / --no-track): one run per sitting.
  track::RunPtr run =
      track::tracking_enabled()
          ? track::Run::start({.experiment = "pretrain", .name = arch + " " + o.objective})
          : nullptr;
  track::ActiveRun active(run);
  const text::PretrainResult r = text::pretrain(cfg, *tok, corpus, o);
  if (verbose > 0) {
    std::printf(
        "pretrain: %s at step %lld of %lld, %lld tokens seen, %.0f s in all; encoder in %s\n",
        r.step == o.steps ? "finished" : "stopped", static_cast<long long>(r.step),
        static_cast<long long>(o.steps), static_cast<long long>(r.tokens_seen), r.seconds,
        (out / "encoder.safetensors").string().c_str());
  }
  return 0;
}

}  // namespace

int pretrain_main(std::span<const std::string> args) {
  try {
    for (const std::string& arg : args) {
      if (arg == "--help" || arg == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      }
    }
    const Args a(args, {});
    if (args.empty()) throw UsageError("no corpus given");
    return run(a);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "kiln pretrain: %s\n\n%s", e.what(), kUsage);
    return 2;
  }
}

}  // namespace kiln::tools
