// kiln automl text-classification | classification | regression | sentence-similarity |
// image-classification: a time-boxed model search (kiln/automl/automl.h, tabular.h,
// similarity_search.h, image_search.h).
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "cli_args.h"
#include "kiln/automl/automl.h"
#include "kiln/automl/image_search.h"
#include "kiln/automl/similarity_search.h"
#include "kiln/automl/tabular.h"
#include "kiln/data/csv.h"
#include "kiln/tensor/error.h"

namespace kiln::tools {
namespace {

constexpr const char* kUsage =
    "usage: kiln automl text-classification --data FILE --label-col NAME --text-col NAME\n"
    "                   [--text2-col NAME]\n"
    "                   --time SECONDS --out DIR [--metric accuracy|macro_f1] [--seed S]\n"
    "                   [--max-trials N] [--test FILE]\n"
    "                   [--learners tfidf_linear,nasbert_finetune,nasbert_scratch]\n"
    "       kiln automl classification|regression --data FILE --label-col NAME --time SECONDS\n"
    "                   --out DIR [--metric accuracy|macro_f1 | rmse|mae|r2] [--seed S]\n"
    "                   [--max-trials N] [--learners linear,mlp] [--ensemble N] [--test FILE]\n"
    "       kiln automl sentence-similarity --data FILE --label-col NAME --text-col A\n"
    "                   --text2-col B --time SECONDS --out DIR [--metric pearson|spearman|rmse]\n"
    "                   [--seed S] [--max-trials N] [--test FILE]\n"
    "                   [--learners pair_features,nasbert_finetune]\n"
    "       kiln automl image-classification --data DIR --time SECONDS --out DIR\n"
    "                   [--metric accuracy|macro_f1] [--seed S] [--max-trials N]\n"
    "                   [--learners lenet5,mobilenet,resnet] [--image-size N] [--test DIR]\n"
    "\n"
    "text-classification searches TF-IDF n-gram linear models and NAS-BERT fine-tuning (from the\n"
    "shipped encoder, or from scratch) with a CFO-style tuner on an 80/20 stratified split of "
    "FILE\n"
    "(CSV, or TSV when it ends in .tsv); below 10,000 rows the TF-IDF models are scored by\n"
    "5-fold cross-validation over all rows instead. classification and regression\n"
    "search a linear model and an MLP over FILE's other columns (numeric ones standardised,\n"
    "categorical ones one-hot, missing values imputed), scored by 5-fold cross-validation (a\n"
    "20 % holdout from 10,000 rows on); the 5 best configurations are scored again on 2 more\n"
    "splits and the best mean wins, and the final model averages --ensemble N (default 5)\n"
    "models of it. All keep SECONDS (search and final refit), print the\n"
    "leaderboard and write DIR/model.onnx, featurizer.json, config.json and leaderboard.json;\n"
    "--test FILE scores the final model on another file with the same columns.\n"
    "sentence-similarity scores text pairs (A, B) against a numeric label: a regression on pair\n"
    "features (TF-IDF cosine, word and character n-gram Jaccard, length ratios) and fine-tuning\n"
    "the shipped encoder, on an 80/20 split; it writes the same files.\n"
    "image-classification searches the CNN presets (LeNet-5, MobileNet, ResNet) on an image\n"
    "folder DIR/<class>/*.png|jpg, scored by 5-fold cross-validation (a 20 % holdout from\n"
    "10,000 images on, or when the pixels are many for the budget: FLAML's rule, images x\n"
    "values / 0.9 >= 10^7 x hours); it writes DIR/model.onnx (pixels in, probabilities out),\n"
    "model.safetensors, config.json and leaderboard.json; --test DIR scores another folder.\n"
    "Exit status: 0 ok, 1 failure (the message names the file or column), 2 bad usage.\n";

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = std::min(s.find(',', start), s.size());
    out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

int text_classification(const Args& a) {
  a.check_known({"--data", "--label-col", "--text-col", "--time", "--out", "--metric", "--seed",
                 "--max-trials", "--test", "--learners", "--text2-col"});
  const std::string text2 = a.get("--text2-col", "");
  const std::string label = a.get("--label-col"), text = a.get("--text-col");
  const std::filesystem::path data = a.get("--data"), out = a.get("--out");
  const double time = a.get_double("--time", 0);
  if (!a.has("--time")) throw UsageError("--time is required");
  if (time <= 0) throw UsageError(fmt::format("--time wants seconds > 0, got {}", time));
  const std::string metric = a.get("--metric", "accuracy");
  if (metric != "accuracy" && metric != "macro_f1") {
    throw UsageError(fmt::format("--metric must be accuracy or macro_f1, not '{}'", metric));
  }
  automl::TextClassificationSearchOptions options{
      .label_column = label,
      .text_column = text,
      .text2_column = text2,
      .time_budget_s = time,
      .metric = metric,
      .seed = static_cast<uint64_t>(a.get_int("--seed", 0)),
      .max_trials = static_cast<int>(a.get_int("--max-trials", 0)),
      .verbose = true};
  if (a.has("--learners")) {
    options.learners = split_list(a.get("--learners"));
    for (const std::string& l : options.learners) {
      if (l != "tfidf_linear" && l != "nasbert_finetune" && l != "nasbert_scratch") {
        throw UsageError(fmt::format(
            "--learners takes tfidf_linear, nasbert_finetune and/or nasbert_scratch, not '{}'", l));
      }
    }
  }
  const data::Table table = automl::read_text_table(data, label, text, text2);
  fmt::print("{}: {} rows; searching for {:.0f} s\n", data.string(), table.num_rows(), time);
  const automl::TextSearchResult r = automl::TextClassificationSearch(options).run(table);
  fmt::print("\n{}", r.leaderboard_table());
  r.save(out);
  fmt::print("saved {}/model.onnx (+ {}config.json, leaderboard.json)\n", out.string(),
             r.encoder_model ? "the model's weights and tokenizer, "
                             : "model.safetensors, featurizer.json, ");
  if (a.has("--test")) {
    const std::filesystem::path test = a.get("--test");
    const data::Table t = automl::read_text_table(test, label, text, text2);
    const automl::TextTestMetrics m = r.evaluate(t);
    fmt::print("test on {} ({} rows): accuracy {:.4f}, macro_f1 {:.4f}\n", test.string(),
               t.num_rows(), m.accuracy, m.macro_f1);
  }
  return 0;
}

int tabular(const Args& a, automl::TabularTask task) {
  a.check_known({"--data", "--label-col", "--time", "--out", "--metric", "--seed", "--max-trials",
                 "--learners", "--ensemble", "--test"});
  const bool classify = task == automl::TabularTask::Classification;
  const std::string label = a.get("--label-col");
  const std::filesystem::path data = a.get("--data"), out = a.get("--out");
  if (!a.has("--time")) throw UsageError("--time is required");
  const double time = a.get_double("--time", 0);
  if (time <= 0) throw UsageError(fmt::format("--time wants seconds > 0, got {}", time));
  const std::string metric = a.get("--metric", classify ? "accuracy" : "rmse");
  const bool known = classify ? (metric == "accuracy" || metric == "macro_f1")
                              : (metric == "rmse" || metric == "mae" || metric == "r2");
  if (!known) {
    throw UsageError(fmt::format("--metric must be {}, not '{}'",
                                 classify ? "accuracy or macro_f1" : "rmse, mae or r2", metric));
  }
  const std::vector<std::string> learners = split_list(a.get("--learners", "linear,mlp"));
  for (const std::string& l : learners) {
    if (l != "linear" && l != "mlp") {
      throw UsageError(fmt::format("--learners takes linear and/or mlp, not '{}'", l));
    }
  }
  const int64_t ensemble = a.get_int("--ensemble", 5);
  if (ensemble < 1)
    throw UsageError(fmt::format("--ensemble wants a count >= 1, got {}", ensemble));
  const data::Table table = automl::read_tabular_csv(data, label);
  fmt::print("{}: {} rows, {} columns; searching for {:.0f} s\n", data.string(), table.num_rows(),
             table.num_columns(), time);
  const automl::TabularSearch search({.task = task,
                                      .label_column = label,
                                      .time_budget_s = time,
                                      .metric = metric,
                                      .seed = static_cast<uint64_t>(a.get_int("--seed", 0)),
                                      .max_trials = static_cast<int>(a.get_int("--max-trials", 0)),
                                      .verbose = true,
                                      .learners = learners,
                                      .ensemble = static_cast<int>(ensemble)});
  const automl::TabularSearchResult r = search.run(table);
  fmt::print("\n{}", r.leaderboard_table());
  r.save(out);
  fmt::print("saved {}/model.onnx (+ featurizer.json, config.json, leaderboard.json)\n",
             out.string());
  if (a.has("--test")) {
    const std::filesystem::path test = a.get("--test");
    const data::Table t = automl::read_tabular_csv(test, label);
    fmt::print("test {} on {} ({} rows): {:.4f}\n", metric, test.string(), t.num_rows(),
               r.model.evaluate(t, label, metric));
  }
  return 0;
}

int sentence_similarity(const Args& a) {
  a.check_known({"--data", "--label-col", "--text-col", "--text2-col", "--time", "--out",
                 "--metric", "--seed", "--max-trials", "--learners", "--test"});
  const std::string label = a.get("--label-col"), text = a.get("--text-col"),
                    text2 = a.get("--text2-col");
  const std::filesystem::path data = a.get("--data"), out = a.get("--out");
  if (!a.has("--time")) throw UsageError("--time is required");
  const double time = a.get_double("--time", 0);
  if (time <= 0) throw UsageError(fmt::format("--time wants seconds > 0, got {}", time));
  const std::string metric = a.get("--metric", "pearson");
  if (metric != "pearson" && metric != "spearman" && metric != "rmse") {
    throw UsageError(fmt::format("--metric must be pearson, spearman or rmse, not '{}'", metric));
  }
  const std::vector<std::string> learners =
      split_list(a.get("--learners", "pair_features,nasbert_finetune"));
  for (const std::string& l : learners) {
    if (l != "pair_features" && l != "nasbert_finetune") {
      throw UsageError(
          fmt::format("--learners takes pair_features and/or nasbert_finetune, not '{}'", l));
    }
  }
  const data::Table table = automl::read_similarity_table(data, label, text, text2);
  fmt::print("{}: {} pairs; searching for {:.0f} s\n", data.string(), table.num_rows(), time);
  const automl::SentenceSimilaritySearch search(
      {.label_column = label,
       .text_column = text,
       .text2_column = text2,
       .time_budget_s = time,
       .metric = metric,
       .seed = static_cast<uint64_t>(a.get_int("--seed", 0)),
       .max_trials = static_cast<int>(a.get_int("--max-trials", 0)),
       .verbose = true,
       .learners = learners});
  const automl::SimilaritySearchResult r = search.run(table);
  fmt::print("\n{}", r.leaderboard_table());
  r.save(out);
  fmt::print("saved {}/model.onnx (+ {}config.json, leaderboard.json)\n", out.string(),
             r.pair_model ? "featurizer.json, " : "model.safetensors, tokenizer/, ");
  if (a.has("--test")) {
    const std::filesystem::path test = a.get("--test");
    const data::Table t = automl::read_similarity_table(test, label, text, text2);
    const std::vector<float> p = r.predict(t[text].strings(), t[text2].strings());
    const std::vector<double> predicted(p.begin(), p.end());
    std::vector<double> truth;
    for (const std::string& v : t[label].strings()) {
      float x = 0;
      KILN_CHECK(data::detail::parse_float(v, x), "{}: label '{}' is not a number", test.string(),
                 v);
      truth.push_back(x);
    }
    fmt::print("test on {} ({} pairs): Pearson {:.4f}  Spearman {:.4f}  RMSE {:.4f}\n",
               test.string(), t.num_rows(), automl::similarity_metric("pearson", truth, predicted),
               automl::similarity_metric("spearman", truth, predicted),
               automl::similarity_metric("rmse", truth, predicted));
  }
  return 0;
}

int image_classification(const Args& a) {
  a.check_known({"--data", "--time", "--out", "--metric", "--seed", "--max-trials", "--learners",
                 "--image-size", "--test"});
  const std::filesystem::path data = a.get("--data"), out = a.get("--out");
  if (!a.has("--time")) throw UsageError("--time is required");
  const double time = a.get_double("--time", 0);
  if (time <= 0) throw UsageError(fmt::format("--time wants seconds > 0, got {}", time));
  const std::string metric = a.get("--metric", "accuracy");
  if (metric != "accuracy" && metric != "macro_f1") {
    throw UsageError(fmt::format("--metric must be accuracy or macro_f1, not '{}'", metric));
  }
  const std::vector<std::string> learners =
      split_list(a.get("--learners", "lenet5,mobilenet,resnet"));
  for (const std::string& l : learners) {
    if (l != "lenet5" && l != "mobilenet" && l != "resnet") {
      throw UsageError(
          fmt::format("--learners takes lenet5, mobilenet and/or resnet, not '{}'", l));
    }
  }
  const int64_t image_size = a.get_int("--image-size", 0);
  if (image_size != 0 && image_size < 8) {
    throw UsageError(
        fmt::format("--image-size wants 0 (from the data) or >= 8, got {}", image_size));
  }
  const data::Table table = vision::load_image_folder_table(data.string());
  fmt::print("{}: {} images; searching for {:.0f} s\n", data.string(), table.num_rows(), time);
  const automl::ImageClassificationSearch search(
      {.time_budget_s = time,
       .metric = metric,
       .seed = static_cast<uint64_t>(a.get_int("--seed", 0)),
       .max_trials = static_cast<int>(a.get_int("--max-trials", 0)),
       .image_size = image_size,
       .verbose = true,
       .learners = learners});
  const automl::ImageSearchResult r = search.run(table);
  fmt::print("\n{}", r.leaderboard_table());
  r.save(out);
  fmt::print("saved {}/model.onnx (+ model.safetensors, config.json, leaderboard.json)\n",
             out.string());
  if (a.has("--test")) {
    const std::filesystem::path test = a.get("--test");
    const data::Table t = vision::load_image_folder_table(test.string());
    const std::vector<std::string>& classes = r.model->classes();
    std::vector<int64_t> truth, predicted;
    const std::vector<float> p = r.model->predict_proba(t).to_vector<float>();  // (N, K)
    for (size_t i = 0; i < t.num_rows(); ++i) {
      const std::string label = t["Label"].value_string(i);
      const auto it = std::find(classes.begin(), classes.end(), label);
      if (it == classes.end()) {
        throw Error(fmt::format("--test {}: class '{}' is not one of the model's ({})",
                                test.string(), label, fmt::join(classes, ", ")));
      }
      truth.push_back(it - classes.begin());
      const float* row = p.data() + i * classes.size();
      predicted.push_back(std::max_element(row, row + classes.size()) - row);
    }
    fmt::print("test {} on {} ({} images): {:.4f}\n", metric, test.string(), t.num_rows(),
               automl::classification_metric(metric, truth, predicted,
                                             static_cast<int64_t>(classes.size())));
  }
  return 0;
}

}  // namespace

int automl_main(std::span<const std::string> args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    fmt::print(args.empty() ? stderr : stdout, "{}", kUsage);
    return args.empty() ? 2 : 0;
  }
  try {
    if (args[0] == "text-classification") return text_classification(Args(args.subspan(1), {}));
    if (args[0] == "classification") {
      return tabular(Args(args.subspan(1), {}), automl::TabularTask::Classification);
    }
    if (args[0] == "regression") {
      return tabular(Args(args.subspan(1), {}), automl::TabularTask::Regression);
    }
    if (args[0] == "sentence-similarity") return sentence_similarity(Args(args.subspan(1), {}));
    if (args[0] == "image-classification") return image_classification(Args(args.subspan(1), {}));
    throw UsageError(
        fmt::format("unknown task '{}' (text-classification, classification, regression, "
                    "sentence-similarity, image-classification)",
                    args[0]));
  } catch (const UsageError& e) {
    fmt::print(stderr, "kiln automl: {}\n{}", e.what(), kUsage);
    return 2;
  }
}

}  // namespace kiln::tools
