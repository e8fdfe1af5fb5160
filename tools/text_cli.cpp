// `kiln text-classification` and `kiln sentence-similarity`: ML.NET's `mlnet`-shaped commands over
// kiln/text/trainers.h. Each has three subcommands:
//
//   kiln text-classification train --data train.tsv --label-col Label --text-col Text
//        [--text2-col T2] [--valid valid.tsv] --out DIR [--epochs N] [--batch-size N] ...
//   kiln text-classification predict  --model DIR --data test.tsv --out predictions.tsv
//   kiln text-classification evaluate --model DIR --data test.tsv [--json]
//
// DIR holds what TextModelBase::save writes (weights, config, tokenizer), metrics.json and
// model.onnx (kiln/text/onnx_export.h: inputs input_ids / attention_mask, dynamic batch and
// sequence; output probabilities or score). Files
// ending in .tsv are tab-separated, others comma-separated (--sep overrides); the first row is the
// header. This file is argument handling only.
#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli_args.h"
#include "kiln/data/csv.h"
#include "kiln/distributed/distributed.h"
#include "kiln/io/atomic_file.h"
#include "kiln/io/json.h"
#include "kiln/tensor/error.h"
#include "kiln/text/onnx_export.h"
#include "kiln/text/trainers.h"
#include "kiln/track/run.h"

namespace kiln::tools {

namespace {

namespace fs = std::filesystem;

enum class Task { Classification, Similarity };

const char* task_name(Task t) {
  return t == Task::Classification ? "text-classification" : "sentence-similarity";
}

std::string usage(Task t) {
  const bool cls = t == Task::Classification;
  return fmt::format(
      "usage: kiln {0} train --data FILE --label-col NAME --text-col NAME {1}--out DIR [options]\n"
      "       kiln {0} predict --model DIR --data FILE --out FILE\n"
      "       kiln {0} evaluate --model DIR --data FILE [--json]\n"
      "\n"
      "train options:\n"
      "  --text2-col NAME     second sentence column{2}\n"
      "  --valid FILE         validation data (metrics per epoch, early stopping)\n"
      "  --epochs N           maximum epochs (default 10)\n"
      "  --batch-size N       rows per step (default 32)\n"
      "  --max-length N       tokens per row, specials included (default 128)\n"
      "  --lr X               learning rate (default {3})\n"
      "  --arch NAME          encoder preset: nasbert-5m (default), nasbert-10m, nasbert-30m,\n"
      "                       nasbert-60m, bert\n"
      "  --patience N         early stopping on the validation loss after N epochs without gain\n"
      "  --pretrained PATH    encoder to start from: a `kiln pretrain` output directory or a\n"
      "                       weights file (default: the shipped nasbert-5m-en encoder)\n"
      "  --from-scratch       random initial weights instead of the shipped encoder\n"
      "  --tokenizer DIR      tokenizer files (implies --from-scratch unless --pretrained is\n"
      "                       a weights file trained with it; default: the shipped encoder's)\n"
      "  --seed N             initialisation, shuffling and dropout (default 0)\n"
      "  --verbose N          0 silent, 1 progress bar, 2 one line per epoch (default 1)\n"
      "common options:\n"
      "  --sep C              field separator (default: tab for .tsv files, else comma)\n"
      "  --quote, --no-quote  treat \" as a quoting character or as text (default: quoting in\n"
      "                       comma-separated files, none in tab-separated ones)\n"
      "\n"
      "{4}\n"
      "Exit status: 0 ok, 1 failure (the message names the file or column), 2 bad usage.\n",
      task_name(t), cls ? "" : "--text2-col NAME ", cls ? " (sentence pairs)" : " (required)",
      cls ? "1e-3" : "2e-4",
      cls ? "predict writes the input columns plus PredictedLabel and Score.<label> per class;\n"
            "evaluate prints micro/macro accuracy, macro-F1, log-loss and the confusion matrix."
          : "predict writes the input columns plus Score; evaluate prints Pearson, Spearman, MSE.");
}

char separator_for(const fs::path& path, const Args& a) {
  if (a.has("--sep")) {
    std::string s = a.get("--sep");
    if (s == "\\t" || s == "tab") return '\t';
    if (s.size() != 1) throw UsageError(fmt::format("--sep wants one character, got '{}'", s));
    return s[0];
  }
  return path.extension() == ".tsv" ? '\t' : ',';
}

data::Table read_table(const fs::path& path, const Args& a) {
  KILN_CHECK_AS(::kiln::IOError, fs::exists(path), "{}: no such file", path.string());
  if (a.has("--quote") && a.has("--no-quote")) {
    throw UsageError("--quote and --no-quote contradict each other");
  }
  data::CsvOptions o{.separator = separator_for(path, a)};
  if (a.has("--quote")) o.allow_quoting = true;
  if (a.has("--no-quote")) o.allow_quoting = false;
  return data::load_csv(path, o);
}

// Similarity labels arrive as text from the file: parse them as float scores.
data::Table with_float_label(data::Table t, const std::string& label) {
  KILN_CHECK(t.has_column(label), "no column '{}' (columns: {})", label,
             fmt::join(t.column_names(), ", "));
  const data::Column& c = t[label];
  if (c.type() != data::ColumnType::String) return t;
  std::vector<float> v(c.size());
  for (size_t i = 0; i < c.size(); ++i) {
    const std::string& s = c.strings()[i];
    size_t used = 0;
    double x = 0;
    try {
      x = std::stod(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    KILN_CHECK(used == s.size() && !s.empty(), "column '{}' row {}: score '{}' is not a number",
               label, i + 1, s);
    v[i] = static_cast<float>(x);
  }
  t.remove_column(label);
  t.add_column(data::Column(label, std::move(v)));
  return t;
}

void write_text(const fs::path& path, const std::string& text) {
  ::kiln::write_file_atomic(path, text, "kiln text");
}

std::string classification_json(const text::ClassificationMetrics& m) {
  return fmt::format(
      "{{\"accuracy\": {}, \"macro_accuracy\": {}, \"macro_f1\": {}, \"log_loss\": {}, "
      "\"log_loss_reduction\": {}}}",
      m.micro_accuracy, m.macro_accuracy, m.macro_f1, m.log_loss, m.log_loss_reduction);
}

std::string regression_json(const text::RegressionMetrics& m) {
  return fmt::format("{{\"pearson\": {}, \"spearman\": {}, \"mse\": {}}}", m.pearson, m.spearman,
                     m.mse);
}

template <typename Options>
void fill_common(Options& o, const Args& a, const data::Table* valid) {
  o.label_column = a.get("--label-col");
  o.sentence1_column = a.get("--text-col");
  o.batch_size = a.get_int("--batch-size", 32);
  o.max_epochs = static_cast<int>(a.get_int("--epochs", 10));
  o.learning_rate = a.get_double("--lr", o.learning_rate);
  o.max_length = a.get_int("--max-length", 128);
  o.architecture = a.get("--arch", "nasbert-5m");
  if (valid) o.validation = *valid;
  if (a.has("--tokenizer")) o.tokenizer_path = a.get("--tokenizer");
  if (a.has("--pretrained")) o.pretrained_encoder = a.get("--pretrained");
  o.from_scratch = a.has("--from-scratch");
  o.early_stopping_patience = static_cast<int>(a.get_int("--patience", 0));
  o.seed = static_cast<uint64_t>(a.get_int("--seed", 0));
  o.verbose = static_cast<int>(a.get_int("--verbose", 1));
}

// The label column a saved model was trained with (its config.json).
std::string model_label(const fs::path& dir) {
  const fs::path config = dir / "config.json";
  std::ifstream f(config, std::ios::binary);
  KILN_CHECK_AS(::kiln::IOError, f.good(), "{}: no such file (is {} a saved model?)",
                config.string(), dir.string());
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return json::parse(text, config.string()).at("label_column").as_string();
}

int train(Task task, const Args& a) {
  a.check_known({"--data", "--label-col", "--text-col",   "--text2-col",  "--valid",
                 "--out",  "--epochs",    "--batch-size", "--max-length", "--lr",
                 "--arch", "--patience",  "--tokenizer",  "--pretrained", "--from-scratch",
                 "--seed", "--verbose",   "--sep",        "--quote",      "--no-quote"});
  const fs::path out = a.get("--out");
  const std::string label = a.get("--label-col");
  data::Table table = read_table(a.get("--data"), a);
  std::optional<data::Table> valid;
  if (a.has("--valid")) valid = read_table(a.get("--valid"), a);
  // Experiment tracking (kiln/track/run.h): the trainer logs into this run; --no-track skips it.
  // Under mpirun, rank 0 alone makes the run (MPI starts here rather than at compile()).
  distributed::init_from_environment();
  track::RunPtr run = track::tracking_enabled() && distributed::rank() == 0
                          ? track::Run::start({.experiment = task_name(task)})
                          : nullptr;
  track::ActiveRun active(run);
  if (run) run->log_data_file("train", a.get("--data"), &table);
  if (run && valid) run->log_data_file("validation", a.get("--valid"), &*valid);
  if (task == Task::Classification) {
    text::TextClassificationOptions o;
    fill_common(o, a, valid ? &*valid : nullptr);
    if (a.has("--text2-col")) o.sentence2_column = a.get("--text2-col");
    text::TextClassificationModel model = text::TextClassification(o).fit(table);
    if (distributed::rank() != 0) return 0;  // under mpirun: every rank holds the same model
    model.save(out);
    text::export_onnx(model, out / "model.onnx");
    std::string metrics = "{}";
    if (valid) {
      text::ClassificationMetrics m = model.evaluate(*valid);
      fmt::print("validation:\n{}\n", m.to_string());
      metrics = classification_json(m);
      if (run) run->log_confusion_matrix({.labels = m.labels, .counts = m.confusion});
      if (run) run->log_metric("eval/macro_f1", m.macro_f1, 0);
    }
    write_text(out / "metrics.json", metrics + "\n");
  } else {
    text::SentenceSimilarityOptions o;
    table = with_float_label(std::move(table), label);
    if (valid) valid = with_float_label(std::move(*valid), label);
    fill_common(o, a, valid ? &*valid : nullptr);
    o.sentence2_column = a.get("--text2-col");
    text::SentenceSimilarityModel model = text::SentenceSimilarity(o).fit(table);
    if (distributed::rank() != 0) return 0;  // under mpirun: every rank holds the same model
    model.save(out);
    text::export_onnx(model, out / "model.onnx");
    std::string metrics = "{}";
    if (valid) {
      text::RegressionMetrics m = model.evaluate(*valid);
      fmt::print("validation:\n{}\n", m.to_string());
      metrics = regression_json(m);
    }
    write_text(out / "metrics.json", metrics + "\n");
  }
  fmt::print("saved the model to {} (ONNX: {})\n", out.string(), (out / "model.onnx").string());
  if (run) {
    run->log_artifact(out, "model");
    run->end();
    fmt::print("tracked as run {} in {} (kiln runs show {})\n", run->id(),
               run->store().dir().string(), run->id());
  }
  return 0;
}

int predict(Task task, const Args& a) {
  a.check_known({"--model", "--data", "--out", "--sep", "--quote", "--no-quote"});
  const fs::path out = a.get("--out");
  const fs::path model_dir = a.get("--model");
  data::Table table = read_table(a.get("--data"), a);
  data::Table scored = task == Task::Classification
                           ? text::TextClassificationModel::load(model_dir).transform(table)
                           : text::SentenceSimilarityModel::load(model_dir).transform(table);
  data::CsvWriteOptions w{.separator = separator_for(out, a)};
  if (a.has("--quote")) w.quoting = true;  // write it the way it was read
  data::save_csv(scored, out, w);
  fmt::print("wrote {} rows to {}\n", scored.num_rows(), out.string());
  return 0;
}

int evaluate(Task task, const Args& a) {
  a.check_known({"--model", "--data", "--json", "--sep", "--quote", "--no-quote"});
  const fs::path model_dir = a.get("--model");
  data::Table table = read_table(a.get("--data"), a);
  const bool json = a.has("--json");
  if (task == Task::Classification) {
    text::ClassificationMetrics m = text::TextClassificationModel::load(model_dir).evaluate(table);
    fmt::print("{}\n", json ? classification_json(m) : m.to_string());
  } else {
    auto model = text::SentenceSimilarityModel::load(model_dir);
    text::RegressionMetrics m = model.evaluate(with_float_label(table, model_label(model_dir)));
    fmt::print("{}\n", json ? regression_json(m) : m.to_string());
  }
  return 0;
}

int text_main(Task task, std::span<const std::string> args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    fmt::print(args.empty() ? stderr : stdout, "{}", usage(task));
    return args.empty() ? 2 : 0;
  }
  const std::string sub = args[0];
  try {
    if (args.size() > 1 && (args[1] == "--help" || args[1] == "-h")) {
      fmt::print("{}", usage(task));
      return 0;
    }
    if (sub == "train") {
      return train(task, Args(args.subspan(1), {"--from-scratch", "--quote", "--no-quote"}));
    }
    if (sub == "predict") return predict(task, Args(args.subspan(1), {"--quote", "--no-quote"}));
    if (sub == "evaluate") {
      return evaluate(task, Args(args.subspan(1), {"--json", "--quote", "--no-quote"}));
    }
    throw UsageError(fmt::format("unknown subcommand '{}' (train, predict, evaluate)", sub));
  } catch (const UsageError& e) {
    fmt::print(stderr, "kiln {}: {}\n{}", task_name(task), e.what(), usage(task));
    return 2;
  }
}

}  // namespace

int text_classification_main(std::span<const std::string> args) {
  return text_main(Task::Classification, args);
}
int sentence_similarity_main(std::span<const std::string> args) {
  return text_main(Task::Similarity, args);
}

}  // namespace kiln::tools
