// Sentence similarity on real paraphrases: the same Bible verse in the King James Version and the
// World English Bible (Debian packages sword-text-kjv and sword-text-web, public domain) is a pair
// with label 1; a KJV verse with a different WEB verse (half from the same chapter) has label 0.
// Trains ML.NET's SentenceSimilarity trainer (kiln::text::SentenceSimilarity, an encoder trained
// from scratch) on the pairs, reports Pearson, Spearman and MSE on a held-out split next to two
// training-free baselines on the same split, saves the model and exports it to ONNX.
//
//   ./build/examples/sentence_similarity                  # 20,000 train / 2,000 test pairs
//   ./build/examples/sentence_similarity --train 1000 --test 500 --epochs 1    # a quick look
//
// Flags: --train N (20000), --test N (2000), --epochs N (4), --max-length T (96 tokens for the
// pair), --batch-size B (32), --lr X (2e-3), --architecture NAME ("small": E 64, C 128, 2 heads,
// the layers of --layers; or a preset such as nasbert-5m), --layers L ("M M": two attention
// layers), --vocab-size V (a byte-level BPE of V ids learnt from the training pairs; 0 = GPT-2's
// 50,257; default 4000), --seed S (42), --out DIR (sentence_similarity_model), --threads N,
// --save-pairs DIR (write the split as DIR/train.tsv and DIR/test.tsv, columns Label, Sentence1,
// Sentence2, for `kiln automl sentence-similarity`, and stop).
//
// Baselines (no training): token Jaccard |A ∩ B| / |A ∪ B| and bag-of-words cosine of the two
// sentences' lower-cased word counts, correlated with the label (MSE does not apply: they are not
// calibrated scores). Pairs are split at random: a verse's text can occur in a training negative
// and in a test positive (never as the same pair).
//
// Measured with the defaults (seed 42; 2 cores shared with other jobs; 3 min 35 s wall, 213 s of
// it training the 429,953-parameter "M M" encoder; the figures repeat exactly on a rerun):
//   model    SentenceSimilarity   Pearson 0.5680  Spearman 0.5580  MSE 0.1707
//   baseline token Jaccard        Pearson 0.8997  Spearman 0.8623
//   baseline bag-of-words cosine  Pearson 0.8711  Spearman 0.8400
// (2,000 test pairs, 984 positive: predicting the mean scores MSE 0.25.) The encoder trained from
// scratch does NOT beat word overlap: the same verse in two translations shares most of its
// words, which the baselines measure directly and the encoder must learn to compare across the
// [sep]. Data is what helps it: with 8,000 training pairs (same settings) it reaches only Pearson
// 0.27, and 16,000 pairs through "M S3 M" (3 epochs, lr 3e-3) 0.28. nasbert-5m runs ~1 s per batch
// of 32 on these cores, too slow for a default run here.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kiln/data/split.h"
#include "kiln/tensor/parallel.h"
#include "kiln/text/onnx_export.h"
#include "kiln/text/sword.h"
#include "kiln/text/trainers.h"
#include "kiln/tokenizers/vocab_trainer.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

struct Args {
  size_t train = 20000;
  size_t test = 2000;
  int epochs = 4;
  int64_t max_length = 96;
  int64_t batch_size = 32;
  double lr = 2e-3;
  std::string architecture = "small";
  std::string layers = "M M";
  std::optional<size_t> vocab_size;  // default 4000 for "small", none (the shipped encoder's) else
  std::string pretrained;            // a pretrained encoder directory (default: the shipped one)
  bool from_scratch = false;
  uint64_t seed = 42;
  std::string out = "sentence_similarity_model";
  int threads = 0;
  std::string save_pairs;  // a directory: write the split as TSV and stop
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sentence_similarity: %s needs a value\n", f.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (f == "--train") {
      a.train = std::stoull(value());
    } else if (f == "--test") {
      a.test = std::stoull(value());
    } else if (f == "--epochs") {
      a.epochs = std::stoi(value());
    } else if (f == "--max-length") {
      a.max_length = std::stoll(value());
    } else if (f == "--batch-size") {
      a.batch_size = std::stoll(value());
    } else if (f == "--lr") {
      a.lr = std::stod(value());
    } else if (f == "--architecture") {
      a.architecture = value();
    } else if (f == "--layers") {
      a.layers = value();
    } else if (f == "--vocab-size") {
      a.vocab_size = std::stoull(value());
    } else if (f == "--pretrained") {
      a.pretrained = value();
    } else if (f == "--from-scratch") {
      a.from_scratch = true;
    } else if (f == "--seed") {
      a.seed = std::stoull(value());
    } else if (f == "--out") {
      a.out = value();
    } else if (f == "--threads") {
      a.threads = std::stoi(value());
    } else if (f == "--save-pairs") {
      a.save_pairs = value();
    } else {
      std::fprintf(stderr,
                   "usage: sentence_similarity [--train N] [--test N] [--epochs N] "
                   "[--max-length T] [--batch-size B] [--lr X] [--architecture NAME] [--layers L] "
                   "[--vocab-size V] [--pretrained DIR | --from-scratch] [--seed S] [--out DIR] "
                   "[--threads N] [--save-pairs DIR]\n");
      std::exit(f == "--help" || f == "-h" ? 0 : 2);
    }
  }
  return a;
}

// Lower-cased ASCII letter/digit runs (apostrophes and other bytes separate words).
std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  std::string w;
  for (const char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!w.empty()) {
      out.push_back(std::move(w));
      w.clear();
    }
  }
  if (!w.empty()) out.push_back(std::move(w));
  return out;
}

double jaccard(const std::string& a, const std::string& b) {
  const std::vector<std::string> wa = words(a), wb = words(b);
  const std::set<std::string> sa(wa.begin(), wa.end()), sb(wb.begin(), wb.end());
  size_t both = 0;
  for (const std::string& w : sa) both += sb.count(w);
  const size_t either = sa.size() + sb.size() - both;
  return either == 0 ? 0.0 : static_cast<double>(both) / static_cast<double>(either);
}

double bow_cosine(const std::string& a, const std::string& b) {
  std::map<std::string, double> ca, cb;
  for (const std::string& w : words(a)) ca[w] += 1;
  for (const std::string& w : words(b)) cb[w] += 1;
  double dot = 0, na = 0, nb = 0;
  for (const auto& [w, n] : ca) {
    na += n * n;
    const auto it = cb.find(w);
    if (it != cb.end()) dot += n * it->second;
  }
  for (const auto& [w, n] : cb) nb += n * n;
  return na == 0 || nb == 0 ? 0.0 : dot / std::sqrt(na * nb);
}

void print_baseline(const char* name, const data::Table& test,
                    double (*score)(const std::string&, const std::string&)) {
  const auto& s1 = test["Sentence1"].strings();
  const auto& s2 = test["Sentence2"].strings();
  std::vector<double> x, y;
  for (size_t i = 0; i < test.num_rows(); ++i) {
    x.push_back(score(s1[i], s2[i]));
    y.push_back(test["Label"].floats()[i]);
  }
  std::printf("baseline %-22s Pearson %.4f  Spearman %.4f\n", name, text::pearson_correlation(x, y),
              text::spearman_correlation(x, y));
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  if (args.threads > 0) set_num_threads(args.threads);
  try {
    const auto t0 = std::chrono::steady_clock::now();
    const fs::path kjv = text::default_sword_dir() / "engKJV2006eb";
    const fs::path web = text::default_sword_dir() / "engWEB2015eb";
    const data::Table all =
        text::load_bible_pairs(kjv, web, {.max_pairs = args.train + args.test, .seed = args.seed});
    const double test_fraction =
        static_cast<double>(args.test) / static_cast<double>(all.num_rows());
    const data::SplitIndices split =
        data::train_test_split(all.num_rows(), test_fraction, args.seed);
    const data::Table train = all.select_rows(split.train), test = all.select_rows(split.test);
    size_t positives = 0;
    for (const float y : test["Label"].floats()) positives += y == 1.0f;
    std::printf(
        "KJV/WEB verse pairs: %zu train, %zu test (%zu same verse, %zu different); e.g.\n"
        "  %s  KJV: %s\n  %s  WEB: %s  -> label %.0f\n",
        train.num_rows(), test.num_rows(), positives, test.num_rows() - positives,
        train["Reference1"].strings()[0].c_str(), train["Sentence1"].strings()[0].c_str(),
        train["Reference2"].strings()[0].c_str(), train["Sentence2"].strings()[0].c_str(),
        static_cast<double>(train["Label"].floats()[0]));
    if (!args.save_pairs.empty()) {
      // Verses hold no tab or newline, so the TSV needs no quoting.
      fs::create_directories(args.save_pairs);
      for (const auto& [name, t] : {std::pair{"train.tsv", &train}, std::pair{"test.tsv", &test}}) {
        std::ofstream f(fs::path(args.save_pairs) / name);
        f << "Label\tSentence1\tSentence2\n";
        for (size_t i = 0; i < t->num_rows(); ++i) {
          f << (*t)["Label"].floats()[i] << '\t' << (*t)["Sentence1"].strings()[i] << '\t'
            << (*t)["Sentence2"].strings()[i] << '\n';
        }
      }
      std::printf("wrote %s/train.tsv and test.tsv\n", args.save_pairs.c_str());
      return 0;
    }

    text::SentenceSimilarityOptions o{.batch_size = args.batch_size,
                                      .max_epochs = args.epochs,
                                      .learning_rate = args.lr,
                                      .max_length = args.max_length,
                                      .architecture = args.architecture};
    o.seed = args.seed;
    o.from_scratch = args.from_scratch;
    if (!args.pretrained.empty()) o.pretrained_encoder = args.pretrained;
    const size_t vocab_size = args.vocab_size.value_or(args.architecture == "small" ? 4000 : 0);
    if (vocab_size > 0) {
      // A byte-level BPE learnt from the training sentences: a 4k-id embedding trains faster
      // from scratch than GPT-2's 50k ids, most of which never occur in these texts.
      std::vector<std::string> corpus = train["Sentence1"].strings();
      const auto& second = train["Sentence2"].strings();
      corpus.insert(corpus.end(), second.begin(), second.end());
      o.tokenizer =
          std::make_shared<text::BpeTokenizer>(text::train_bpe(corpus, {.vocab_size = vocab_size}));
    }
    if (args.architecture == "small") {
      // E 64, C 128, 2 heads: about 0.5M parameters (with a 4k vocabulary), several times faster
      // per step than nasbert-5m.
      const auto tok = o.tokenizer ? o.tokenizer : text::load_text_tokenizer();
      o.tokenizer = tok;
      text::EncoderConfig c =
          text::EncoderConfig::preset("nasbert-5m", tok->vocab_size(), tok->pad_id());
      c.embed_dim = 64;
      c.hidden = 128;
      c.layers = args.layers;
      c.heads = 2;
      o.encoder = c;
    }
    const text::SentenceSimilarityModel model = text::SentenceSimilarity(o).fit(train);
    const auto t1 = std::chrono::steady_clock::now();
    std::printf("trained %s (%lld parameters) in %.1f s\n",
                args.architecture == "small" ? ("small \"" + args.layers + "\"").c_str()
                                             : args.architecture.c_str(),
                static_cast<long long>(model.module()->num_parameters()),
                std::chrono::duration<double>(t1 - t0).count());

    const text::RegressionMetrics m = model.evaluate(test);
    std::printf("model    %-22s Pearson %.4f  Spearman %.4f  MSE %.4f\n", "SentenceSimilarity",
                m.pearson, m.spearman, m.mse);
    print_baseline("token Jaccard", test, jaccard);
    print_baseline("bag-of-words cosine", test, bow_cosine);

    model.save(args.out);
    const fs::path onnx_path = fs::path(args.out) / "model.onnx";
    text::export_onnx(model, onnx_path);
    std::printf("saved the model to %s/ and exported %s (input_ids, attention_mask -> score)\n",
                args.out.c_str(), onnx_path.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sentence_similarity: %s\n", e.what());
    return 1;
  }
  return 0;
}
