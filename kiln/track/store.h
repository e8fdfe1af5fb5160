#pragma once
// kiln::track::Store — experiments, runs and a model registry in one SQLite database.
//
//   track::Store store("kiln-runs");                    // creates kiln-runs/kiln.db when absent
//   std::string id = store.create_run("mnist", {});     // status "running"
//   store.log_params(id, {{"lr", "0.001"}});
//   store.log_metrics(id, {{.key = "loss", .value = 0.31, .step = 250, .epoch = 1}});
//   store.log_artifact(id, "mnist.kiln");              // copied to kiln-runs/artifacts/<sha256>
//   store.end_run(id, track::RunStatus::Finished);
//   track::ModelVersion v = store.register_model("digits", id);      // version 1, 2, ...
//   store.set_stage("digits", v.version, track::Stage::Production);
//   store.copy_model_files(store.get_model_version("digits", {}, track::Stage::Production), "out");
//
// The database (<dir>/kiln.db) runs in WAL mode: readers never block the writer and two processes
// may log at once. Every write is one IMMEDIATE transaction, so a process killed mid-write leaves
// the database as it was before that write; a run whose process died shows as "killed" (the run
// records its host, pid and the process's start time). The schema carries its version in SQLite's
// user_version; opening an older database upgrades it in one transaction, a newer one is an error.
// Artifacts are stored by content (<dir>/artifacts/<first two hex digits>/<rest of the SHA-256>),
// written atomically, so two runs that save the same file share one copy.
//
// Errors are kiln::IOError naming the database and the rule: a file that is not SQLite, a database
// from a newer Kiln, a database opened read-only and written to, or one locked by another process
// for longer than busy_timeout_ms. A run whose last write finds the database locked is not lost:
// Run::end keeps it in <dir>/pending/ and the next writable open applies it (write_pending).
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/tensor/error.h"

namespace kiln::track {

/// Another process held the database's write lock for longer than busy_timeout_ms.
class DatabaseLocked : public IOError {
 public:
  using IOError::IOError;
};

enum class RunStatus { Running, Finished, Failed, Killed };
/// "running", "finished", "failed", "killed".
std::string_view to_string(RunStatus s);
/// The inverse of to_string; throws naming the accepted words.
RunStatus parse_run_status(std::string_view s);

/// A registered model version's deployment stage.
enum class Stage { None, Staging, Production, Archived };
/// "none", "staging", "production", "archived".
std::string_view to_string(Stage s);
/// The inverse of to_string (case-insensitive); throws naming the accepted words.
Stage parse_stage(std::string_view s);

/// One point of a metric's history.
struct MetricPoint {
  std::string key;  // "loss", "val_accuracy", "batch/loss", "learning_rate", ...
  double value = 0;
  int64_t step = 0;     // global step (optimisation steps so far, or the caller's counter)
  int64_t epoch = -1;   // epochs completed (1-based) for per-epoch values; -1 for per-step values
  int64_t time_ms = 0;  // Unix time in milliseconds; 0 = now
};

/// Who started a run and from where (create_run fills what is left empty).
struct RunSource {
  std::string name{};        // a label for people ("lr=1e-3"); may be empty
  std::string git_commit{};  // empty: `git rev-parse HEAD` in the working directory, if any
  std::string command{};     // empty: this process's command line
};

struct RunInfo {
  std::string id;  // 12 hex digits
  std::string experiment;
  std::string name;
  RunStatus status = RunStatus::Running;
  int64_t start_ms = 0;
  int64_t end_ms = 0;  // 0 while running
  std::string git_commit, command, host;
  int64_t pid = 0;
};

/// A data file the run read: its SHA-256 and the table's schema (JSON, see table_schema()).
struct DataFileInfo {
  std::string role;  // "train", "validation", "test", ...
  std::string path;  // as given (absolute)
  std::string sha256;
  int64_t bytes = 0;
  std::string schema_json;
};

/// A stored file: `path` is its name within the run ("model/config.json").
struct ArtifactInfo {
  std::string path;
  std::string sha256;
  int64_t bytes = 0;
};

/// counts[true class][predicted class], labels in key order: (K, K).
struct ConfusionMatrix {
  std::string name = "validation";
  std::vector<std::string> labels;
  std::vector<std::vector<int64_t>> counts;
};

/// Everything about one run. list_runs() leaves `metrics`, `confusion`, `data` and `artifacts`
/// empty (final_metrics is always filled).
struct RunRecord {
  RunInfo info;
  std::map<std::string, std::string> params, tags;
  std::map<std::string, double> final_metrics;  // each key's value at its greatest step
  std::vector<MetricPoint> metrics;             // the whole history, by key then step
  std::vector<ConfusionMatrix> confusion;
  std::vector<DataFileInfo> data;
  std::vector<ArtifactInfo> artifacts;
  /// The history of one key, in step order.
  std::vector<MetricPoint> history(std::string_view key) const;
};

struct ModelVersion {
  std::string name;
  int64_t version = 0;
  std::string run_id;
  Stage stage = Stage::None;
  int64_t created_ms = 0, updated_ms = 0;
  std::string description;
};

struct StoreOptions {
  /// Opens the database without write access (and never creates it); writes throw.
  bool read_only = false;
  /// How long a write waits for another process's write transaction before giving up.
  int busy_timeout_ms = 10000;
};

struct ListRunsOptions {
  std::string experiment{};  // empty: every experiment
  std::string filter{};      // see filter.h: "metrics.accuracy > 0.9 and params.lr = 0.001"
};

class Store {
 public:
  /// The schema this build writes. Version 1: experiments, runs, params, tags, metrics by step.
  /// Version 2 adds the metrics' epoch, data files, confusion matrices, artifacts and the registry.
  static constexpr int kSchemaVersion = 2;
  static constexpr const char* kDatabaseName = "kiln.db";

  /// Opens (creating when writable and absent) `dir`/kiln.db and upgrades an older schema.
  explicit Store(const std::filesystem::path& dir, StoreOptions options = {});
  ~Store();
  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;

  const std::filesystem::path& dir() const;
  std::filesystem::path database_path() const;
  /// The schema version found in the file (kSchemaVersion after an upgrade).
  int schema_version() const;

  // ---- runs ----
  /// Starts a run in `experiment` (created on first use); returns its id.
  std::string create_run(const std::string& experiment, const RunSource& source = {});
  void log_params(const std::string& run, const std::map<std::string, std::string>& params);
  void set_tags(const std::string& run, const std::map<std::string, std::string>& tags);
  /// Appends points (one transaction).
  void log_metrics(const std::string& run, std::span<const MetricPoint> points);
  void log_confusion_matrix(const std::string& run, const ConfusionMatrix& m);
  /// Hashes `file` and records it with the table's schema (JSON text, may be empty).
  DataFileInfo log_data_file(const std::string& run, const std::string& role,
                             const std::filesystem::path& file,
                             const std::string& schema_json = "");
  /// Stores a file (or every file under a directory, keeping relative paths) under `name`
  /// (default: the file or directory name) and returns what was recorded.
  std::vector<ArtifactInfo> log_artifact(const std::string& run, const std::filesystem::path& path,
                                         const std::string& name = "");
  /// Sets the final status and end time (end_ms 0: now).
  void end_run(const std::string& run, RunStatus status, int64_t end_ms = 0);
  /// Writes what a run could not write because the database stayed locked — its last points and
  /// final status — to <dir>/pending/<run>-<time>.json (atomically); the next writable open of the
  /// store applies it and removes the file. Returns the file.
  std::filesystem::path write_pending(const std::string& run, std::span<const MetricPoint> points,
                                      std::optional<RunStatus> status, int64_t end_ms) const;
  /// Applies pending files (the constructor does, before marking dead runs killed); returns how
  /// many were applied. A file still blocked by a lock is left for the next open.
  int apply_pending();
  /// Marks running runs of this host whose process has exited as killed; returns how many.
  int reap_dead_runs();

  // ---- queries ----
  std::vector<std::string> experiments() const;
  /// Runs, newest first.
  std::vector<RunRecord> list_runs(const ListRunsOptions& options = {}) const;
  /// The full record of a run given by id or a unique id prefix (at least 4 digits).
  RunRecord get_run(const std::string& id_or_prefix) const;
  /// The stored bytes of an artifact.
  std::filesystem::path artifact_file(const ArtifactInfo& a) const;

  // ---- registry ----
  /// Registers `run`'s artifacts as the next version of model `name` (stage none).
  ModelVersion register_model(const std::string& name, const std::string& run,
                              const std::string& description = "");
  /// Moves a version to `stage`. A version promoted to production moves the name's previous
  /// production version to archived, so "the production model" is always one version.
  ModelVersion set_stage(const std::string& name, int64_t version, Stage stage);
  /// A version by number, else the newest in `stage`, else the newest.
  ModelVersion get_model_version(const std::string& name, std::optional<int64_t> version = {},
                                 std::optional<Stage> stage = {}) const;
  /// Every version of `name` (or of every model when empty), by name then version.
  std::vector<ModelVersion> list_model_versions(const std::string& name = "") const;
  /// Copies the version's run artifacts into `out` (created), keeping their paths; returns them.
  std::vector<std::filesystem::path> copy_model_files(const ModelVersion& v,
                                                      const std::filesystem::path& out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Unix time in milliseconds.
int64_t now_ms();

}  // namespace kiln::track
