// `kiln inspect [--json] [--check] MODEL.onnx`: what a model expects and holds, without running it
// (the input/output names and shapes users otherwise open Netron for). The data comes from
// kiln/onnx/reader.h; this file is argument handling only.
#include <fmt/format.h>

#include <cstdio>
#include <optional>
#include <span>
#include <string>

#include "kiln/onnx/reader.h"

namespace kiln::tools {

namespace {

constexpr const char* kUsage =
    "usage: kiln inspect [--json] [--check] MODEL.onnx\n"
    "\n"
    "Prints an ONNX model's IR version, opset imports, producer, graph inputs and outputs (names,\n"
    "element types, shapes with symbolic dims by name), parameter count and size, external data\n"
    "files, and a histogram of its operators.\n"
    "\n"
    "  --json    one JSON object instead of text\n"
    "  --check   also run onnx::checker::check_model and strict shape inference (exit 1 if they\n"
    "            fail)\n"
    "\n"
    "Exit status: 0 ok, 1 unreadable or invalid model (or failed check), 2 bad usage.\n";

}  // namespace

int inspect_main(std::span<const std::string> args) {
  bool json = false, check = false, flags_done = false;
  std::optional<std::string> path;
  for (const std::string& a : args) {
    if (!flags_done && (a == "--help" || a == "-h")) {
      fmt::print("{}", kUsage);
      return 0;
    } else if (!flags_done && a == "--json") {
      json = true;
    } else if (!flags_done && a == "--check") {
      check = true;
    } else if (!flags_done && a == "--") {
      flags_done = true;
    } else if (!flags_done && a.size() > 1 && a[0] == '-') {
      fmt::print(stderr, "kiln inspect: unknown option '{}'\n{}", a, kUsage);
      return 2;
    } else if (path) {
      fmt::print(stderr, "kiln inspect: one model at a time ('{}' and '{}' given)\n", *path, a);
      return 2;
    } else {
      path = a;
    }
  }
  if (!path) {
    fmt::print(stderr, "kiln inspect: no model file given\n{}", kUsage);
    return 2;
  }

  const onnx::ModelSummary summary = onnx::inspect_model(*path);
  std::optional<onnx::CheckResult> verdict;
  if (check) verdict = onnx::check_model(*path);
  const onnx::CheckResult* v = verdict ? &*verdict : nullptr;
  if (json) {
    fmt::print("{}\n", onnx::summary_to_json(summary, v));
  } else {
    fmt::print("{}", onnx::format_summary(summary, v));
  }
  return v && !v->ok ? 1 : 0;
}

}  // namespace kiln::tools
