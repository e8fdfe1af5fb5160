// kiln automl text-classification: a time-boxed model search (kiln/automl/automl.h).
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <span>
#include <string>

#include "cli_args.h"
#include "kiln/automl/automl.h"
#include "kiln/tensor/error.h"

namespace kiln::tools {
namespace {

constexpr const char* kUsage =
    "usage: kiln automl text-classification --data FILE --label-col NAME --text-col NAME\n"
    "                   --time SECONDS --out DIR [--metric accuracy|macro_f1] [--seed S]\n"
    "                   [--max-trials N]\n"
    "\n"
    "Searches TF-IDF n-gram linear models (CFO-style tuner) on an 80/20 stratified split of FILE\n"
    "(CSV, or TSV when it ends in .tsv) within SECONDS (search and final refit), prints the\n"
    "leaderboard and writes DIR/model.onnx, featurizer.json, config.json and leaderboard.json.\n"
    "Exit status: 0 ok, 1 failure (the message names the file or column), 2 bad usage.\n";

int text_classification(const Args& a) {
  a.check_known({"--data", "--label-col", "--text-col", "--time", "--out", "--metric", "--seed",
                 "--max-trials"});
  const std::string label = a.get("--label-col"), text = a.get("--text-col");
  const std::filesystem::path data = a.get("--data"), out = a.get("--out");
  const double time = a.get_double("--time", 0);
  if (!a.has("--time")) throw UsageError("--time is required");
  if (time <= 0) throw UsageError(fmt::format("--time wants seconds > 0, got {}", time));
  const std::string metric = a.get("--metric", "accuracy");
  if (metric != "accuracy" && metric != "macro_f1") {
    throw UsageError(fmt::format("--metric must be accuracy or macro_f1, not '{}'", metric));
  }
  const data::Table table = automl::read_text_table(data, label, text);
  fmt::print("{}: {} rows; searching for {:.0f} s\n", data.string(), table.num_rows(), time);
  const automl::TextClassificationSearch search(
      {.label_column = label,
       .text_column = text,
       .time_budget_s = time,
       .metric = metric,
       .seed = static_cast<uint64_t>(a.get_int("--seed", 0)),
       .max_trials = static_cast<int>(a.get_int("--max-trials", 0)),
       .verbose = true});
  const automl::TextSearchResult r = search.run(table);
  fmt::print("\n{}", r.leaderboard_table());
  r.save(out);
  fmt::print("saved {}/model.onnx (+ featurizer.json, config.json, leaderboard.json)\n",
             out.string());
  return 0;
}

}  // namespace

int automl_main(std::span<const std::string> args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    fmt::print(args.empty() ? stderr : stdout, "{}", kUsage);
    return args.empty() ? 2 : 0;
  }
  try {
    if (args[0] != "text-classification") {
      throw UsageError(fmt::format("unknown task '{}' (text-classification)", args[0]));
    }
    return text_classification(Args(args.subspan(1), {}));
  } catch (const UsageError& e) {
    fmt::print(stderr, "kiln automl: {}\n{}", e.what(), kUsage);
    return 2;
  }
}

}  // namespace kiln::tools
