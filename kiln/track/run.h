#pragma once
// kiln::track::Run — the handle a training program logs through — and where runs go.
//
//   auto run = kiln::track::Run::start({.experiment = "pretrain", .name = "mlm h256"});
//   run->log_params({{"lr", "3e-4"}, {"batch_size", "64"}});
//   for (int64_t step = 1; ...; ++step) run->log_metric("loss", loss, step);   // buffered
//   run->log_metric("val_loss", v, step, /*epoch=*/1);
//   run->log_artifact("encoder.safetensors");
//   run->end();                       // "finished"; the destructor ends a run left open:
//                                     // "failed" during stack unwinding, else "finished"
//   std::printf("run %s\n", run->id().c_str());
//
// Metrics are buffered in memory and written in one transaction at most once a second (and by
// flush() / end()), so logging every step costs a vector append (benchmarks/train_bench.cpp,
// BM_W3_TrackingOverhead). When another process holds the database's write lock past the timeout,
// the points stay buffered and the next flush writes them; end() throws only if the final write
// fails, naming the database.
//
// Where: RunOptions::dir, else the directory given to set_tracking_dir() (the CLI's --track DIR),
// else $KILN_TRACKING_DIR, else ./kiln-runs.
//
// Automatic logging: the text and image trainers call trainer_callback(), which logs into the
// active run (ActiveRun) if there is one, else into a new run when tracking is enabled
// (set_tracking_enabled(true), --track DIR, or KILN_TRACKING_DIR set). The `kiln` CLI enables it by
// default (--no-track turns it off); a C++ program opts in.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kiln/track/store.h"

namespace kiln::data {
class Table;
}

namespace kiln::track {

struct RunOptions {
  std::string experiment = "default";
  std::string name = "";
  std::filesystem::path dir = {};  // empty: tracking_dir()
  std::map<std::string, std::string> tags = {};
  /// How long metrics may wait in memory before a flush (0: write every point at once).
  int64_t flush_interval_ms = 1000;
  /// How long a write waits for another process's write lock (StoreOptions::busy_timeout_ms).
  int busy_timeout_ms = 10000;
};

class Run {
 public:
  /// Opens the store and creates the run (status "running"); throws IOError naming the database
  /// when it cannot be written.
  static std::shared_ptr<Run> start(RunOptions options = {});
  ~Run();
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  const std::string& id() const { return id_; }
  const std::string& experiment() const { return experiment_; }
  Store& store() { return store_; }

  void log_param(const std::string& key, const std::string& value);
  void log_param(const std::string& key, double value);
  void log_params(const std::map<std::string, std::string>& params);
  void set_tag(const std::string& key, const std::string& value);
  /// Buffers one point (epoch -1: a per-step value).
  void log_metric(const std::string& key, double value, int64_t step, int64_t epoch = -1);
  void log_confusion_matrix(const ConfusionMatrix& m);
  /// Records a data file's SHA-256 and size, and the schema of the table read from it.
  void log_data_file(const std::string& role, const std::filesystem::path& file,
                     const data::Table* table = nullptr);
  /// Stores a file or a directory's files under `name` (default: its file name).
  void log_artifact(const std::filesystem::path& path, const std::string& name = "");
  /// Writes buffered metrics; false (points kept) when the database stayed locked.
  bool flush();
  /// Flushes and sets the final status.
  void end(RunStatus status = RunStatus::Finished);
  bool ended() const { return ended_; }

 private:
  Run(Store store, std::string id, std::string experiment, int64_t flush_interval_ms);
  void maybe_flush();

  Store store_;
  std::string id_, experiment_;
  int64_t flush_interval_ms_;
  std::mutex mu_;
  std::vector<MetricPoint> pending_;
  int64_t last_flush_ms_ = 0;
  bool ended_ = false;
};
using RunPtr = std::shared_ptr<Run>;

/// Where runs go by default (see the header comment).
std::filesystem::path tracking_dir();
/// Sets the default directory (the CLI's --track DIR); also enables tracking.
void set_tracking_dir(const std::filesystem::path& dir);
/// Turns the trainers' automatic logging on or off (the CLI's --no-track turns it off).
void set_tracking_enabled(bool enabled);
/// On after set_tracking_enabled(true) or set_tracking_dir(), or when KILN_TRACKING_DIR is set.
bool tracking_enabled();

/// The run trainers log into, or nullptr.
RunPtr active_run();
/// Makes `run` the active run for its lifetime (restoring the previous one after).
class ActiveRun {
 public:
  explicit ActiveRun(RunPtr run);
  ~ActiveRun();
  ActiveRun(const ActiveRun&) = delete;
  ActiveRun& operator=(const ActiveRun&) = delete;

 private:
  RunPtr previous_;
};

/// The schema of a table as JSON: {"rows": N, "columns": [{"name": "Label", "type": "string"}]}.
std::string table_schema(const data::Table& table);

}  // namespace kiln::track
