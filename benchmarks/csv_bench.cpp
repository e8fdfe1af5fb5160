// CSV parse throughput (MB/s of file bytes), single-threaded, on a generated ~50 MB file read from
// the page cache (the first load warms it), so this measures the parser, not the disk.
//
//   NumericTyped  : 10 float columns + 1 int column, the common ML feature table.
//   NumericChunks : the same through CsvReader::next_chunk in 4096-row chunks (streaming path).
//   AllStrings    : the same file, every column kept as a string (no number parsing).
//   QuotedText    : a label (Key) + a quoted text column with commas, doubled quotes and newlines.
//
// Report the median: ./csv_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "kiln/data/csv.h"

namespace {

namespace fs = std::filesystem;
using kiln::data::ColumnSpec;
using kiln::data::ColumnType;

constexpr size_t kTargetBytes = size_t{50} << 20;

// Deterministic values without <random>: splitmix64.
uint64_t next_random(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

fs::path path_for(const std::string& name) {
  return fs::temp_directory_path() / fmt::format("kiln_csv_bench_{}_{}", ::getpid(), name);
}

// Writes rows from make_row(state, out) until the file reaches kTargetBytes; returns the path.
template <typename F>
fs::path generate(const std::string& name, const std::string& header, F make_row) {
  const fs::path p = path_for(name);
  std::FILE* f = std::fopen(p.c_str(), "wb");
  std::string text = header;
  uint64_t state = 42;
  size_t written = 0;
  while (written < kTargetBytes) {
    make_row(state, text);
    if (text.size() > (1 << 20)) {
      written += std::fwrite(text.data(), 1, text.size(), f);
      text.clear();
    }
  }
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  return p;
}

const fs::path& numeric_file() {
  static const fs::path p = generate(
      "numeric.csv", "f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,label\n", [](uint64_t& s, std::string& out) {
        for (int c = 0; c < 10; ++c) {
          const double v = (static_cast<double>(next_random(s) % 2000000) - 1e6) / 1e4;
          fmt::format_to(std::back_inserter(out), "{:.4f},", v);
        }
        fmt::format_to(std::back_inserter(out), "{}\n", next_random(s) % 10);
      });
  return p;
}

const fs::path& text_file() {
  static const fs::path p = generate("text.csv", "label,text\n", [](uint64_t& s, std::string& out) {
    out += next_random(s) % 3 == 0 ? "spam," : "ham,";
    out += "\"Subject: offer, ";
    for (uint64_t w = 0, n = 5 + next_random(s) % 30; w < n; ++w) {
      out += (w % 9 == 8) ? "\"\"quoted\"\" " : (w % 13 == 12 ? "line\nbreak " : "word ");
    }
    out += "\"\n";
  });
  return p;
}

std::vector<ColumnSpec> numeric_specs() {
  std::vector<ColumnSpec> specs;
  for (int c = 0; c < 10; ++c)
    specs.push_back({.name = fmt::format("f{}", c), .type = ColumnType::Float});
  specs.push_back({.name = "label", .type = ColumnType::Int});
  return specs;
}

void report(benchmark::State& state, const fs::path& p) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(fs::file_size(p)));
}

void BM_NumericTyped(benchmark::State& state) {
  const fs::path& p = numeric_file();
  const kiln::data::CsvOptions o{.columns = numeric_specs()};
  for (auto _ : state) {
    kiln::data::Table t = kiln::data::load_csv(p, o);
    benchmark::DoNotOptimize(t.num_rows());
  }
  report(state, p);
}

void BM_NumericChunks(benchmark::State& state) {
  const fs::path& p = numeric_file();
  const kiln::data::CsvOptions o{.columns = numeric_specs()};
  for (auto _ : state) {
    kiln::data::CsvReader reader(p, o);
    kiln::data::Table chunk;
    size_t rows = 0;
    while (reader.next_chunk(chunk, 4096)) rows += chunk.num_rows();
    benchmark::DoNotOptimize(rows);
  }
  report(state, p);
}

void BM_AllStrings(benchmark::State& state) {
  const fs::path& p = numeric_file();
  for (auto _ : state) {
    kiln::data::Table t = kiln::data::load_csv(p);
    benchmark::DoNotOptimize(t.num_rows());
  }
  report(state, p);
}

void BM_QuotedText(benchmark::State& state) {
  const fs::path& p = text_file();
  const kiln::data::CsvOptions o{.columns = {{.name = "label", .type = ColumnType::Key},
                                             {.name = "text", .type = ColumnType::String}}};
  for (auto _ : state) {
    kiln::data::Table t = kiln::data::load_csv(p, o);
    benchmark::DoNotOptimize(t.num_rows());
  }
  report(state, p);
}

BENCHMARK(BM_NumericTyped)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_NumericChunks)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AllStrings)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_QuotedText)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ignored;
  fs::remove(path_for("numeric.csv"), ignored);
  fs::remove(path_for("text.csv"), ignored);
  return 0;
}
