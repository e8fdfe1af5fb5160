// kiln: Kiln's command-line tool. `kiln <command> [args...]`; `kiln --help` lists the commands.
//
// Adding a command: write tools/<name>.cpp defining `int <name>_main(std::span<const std::string>)`
// in namespace kiln::tools (return 0 on success, 1 on failure, 2 on bad usage; throwing kiln::Error
// prints "kiln <name>: <message>" and exits 1), declare it below and add one row to kCommands.
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/tensor/error.h"
#include "kiln/track/run.h"

namespace kiln::tools {

int inspect_main(std::span<const std::string> args);
int text_classification_main(std::span<const std::string> args);
int sentence_similarity_main(std::span<const std::string> args);
int pretrain_main(std::span<const std::string> args);
int runs_main(std::span<const std::string> args);
int models_main(std::span<const std::string> args);
int ui_main(std::span<const std::string> args);
int run_main(std::span<const std::string> args);
int score_main(std::span<const std::string> args);
int automl_main(std::span<const std::string> args);

namespace {

struct Command {
  std::string_view name;
  std::string_view summary;  // one line for `kiln --help`
  int (*run)(std::span<const std::string> args);
};

constexpr Command kCommands[] = {
    {"inspect", "summarise an ONNX model: inputs, outputs, opsets, parameters, operators",
     inspect_main},
    {"run", "run an ONNX model on .npy inputs, writing one .npy per output", run_main},
    {"score", "score a CSV table with a tabular ONNX model, appending its outputs", score_main},
    {"text-classification", "train, predict with or evaluate a text classifier (NAS-BERT)",
     text_classification_main},
    {"sentence-similarity", "train, predict with or evaluate a sentence-pair scorer (NAS-BERT)",
     sentence_similarity_main},
    {"pretrain", "pre-train an encoder on a text corpus (ELECTRA or masked LM), resumable",
     pretrain_main},
    {"runs", "list, show, compare and report tracked training runs", runs_main},
    {"models", "register, promote, list and get versions in the model registry", models_main},
    {"ui", "serve the runs, their curves and the registry on http://127.0.0.1:8080/", ui_main},
    {"automl", "search models for a task within a time budget; best model + leaderboard",
     automl_main},
};

void print_usage(std::FILE* to) {
  fmt::print(to, "usage: kiln <command> [args...]\n       kiln --version\n\ncommands:\n");
  for (const Command& c : kCommands) fmt::print(to, "  {:<22}{}\n", c.name, c.summary);
  fmt::print(to,
             "\noptions for every command:\n"
             "  --track DIR           record training runs in DIR (default $KILN_TRACKING_DIR, "
             "else ./kiln-runs)\n"
             "  --no-track            do not record this training run\n");
  fmt::print(to, "\nRun `kiln <command> --help` for a command's options.\n");
}

const Command* find_command(std::string_view name) {
  for (const Command& c : kCommands) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

int run(const Command& c, std::span<const std::string> args) {
  try {
    return c.run(args);
  } catch (const std::exception& e) {
    // One line on stderr, whatever went wrong: the message names the file and the problem.
    fmt::print(stderr, "kiln {}: {}\n", c.name, e.what());
    return 1;
  }
}

}  // namespace
}  // namespace kiln::tools

int main(int argc, char** argv) {
  using namespace kiln::tools;
  // --track DIR and --no-track apply to every command (kiln/track/run.h): training commands record
  // a run in DIR (default $KILN_TRACKING_DIR, else ./kiln-runs); `runs`, `models` and `ui` read it.
  std::vector<std::string> args;
  bool track = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--no-track") {
      track = false;
    } else if (a == "--track") {
      if (i + 1 >= argc) {
        fmt::print(stderr, "kiln: --track needs a directory\n");
        return 2;
      }
      kiln::track::set_tracking_dir(argv[++i]);
    } else {
      args.push_back(a);
    }
  }
  kiln::track::set_tracking_enabled(track);
  if (args.empty()) {
    print_usage(stderr);
    return 2;
  }
  const std::string& first = args[0];
  if (first == "--help" || first == "-h") {
    print_usage(stdout);
    return 0;
  }
  if (first == "--version") {
    fmt::print("kiln {}\n", KILN_VERSION);
    return 0;
  }
  if (first == "help" && args.size() == 2) {  // `kiln help inspect` = `kiln inspect --help`
    if (const Command* c = find_command(args[1])) {
      const std::vector<std::string> help = {"--help"};
      return run(*c, help);
    }
  }
  const Command* c = find_command(first);
  if (!c) {
    fmt::print(stderr, "kiln: unknown command '{}' (run `kiln --help` for the list)\n", first);
    return 2;
  }
  return run(*c, std::span(args).subspan(1));
}
