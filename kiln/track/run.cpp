#include "kiln/track/run.h"

#include <fmt/format.h>

#include <cstdlib>
#include <exception>

#include "kiln/data/columns.h"
#include "kiln/io/json.h"
#include "kiln/tensor/error.h"

namespace kiln::track {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- configuration

namespace {

struct Config {
  std::mutex mu;
  fs::path dir;      // set_tracking_dir
  int enabled = -1;  // -1: not set (the environment decides), 0 off, 1 on
  RunPtr active;
};

Config& config() {
  static Config c;
  return c;
}

}  // namespace

fs::path tracking_dir() {
  Config& c = config();
  std::lock_guard lock(c.mu);
  if (!c.dir.empty()) return c.dir;
  if (const char* env = std::getenv("KILN_TRACKING_DIR"); env && *env) return env;
  return "kiln-runs";
}

void set_tracking_dir(const fs::path& dir) {
  Config& c = config();
  std::lock_guard lock(c.mu);
  c.dir = dir;
  c.enabled = 1;
}

void set_tracking_enabled(bool enabled) {
  Config& c = config();
  std::lock_guard lock(c.mu);
  c.enabled = enabled ? 1 : 0;
}

bool tracking_enabled() {
  Config& c = config();
  std::lock_guard lock(c.mu);
  if (c.enabled >= 0) return c.enabled == 1;
  const char* env = std::getenv("KILN_TRACKING_DIR");
  return env && *env;
}

RunPtr active_run() {
  Config& c = config();
  std::lock_guard lock(c.mu);
  return c.active;
}

ActiveRun::ActiveRun(RunPtr run) {
  Config& c = config();
  std::lock_guard lock(c.mu);
  previous_ = std::move(c.active);
  c.active = std::move(run);
}

ActiveRun::~ActiveRun() {
  Config& c = config();
  std::lock_guard lock(c.mu);
  c.active = std::move(previous_);
}

std::string table_schema(const data::Table& table) {
  json::Value v = json::Value::object();
  v["rows"] = static_cast<int64_t>(table.num_rows());
  json::Value cols = json::Value::array();
  for (const std::string& name : table.column_names()) {
    json::Value c = json::Value::object();
    c["name"] = name;
    c["type"] = std::string(data::to_string(table[name].type()));
    cols.push_back(std::move(c));
  }
  v["columns"] = std::move(cols);
  return v.dump();
}

// ---------------------------------------------------------------- Run

Run::Run(Store store, std::string id, std::string experiment, int64_t flush_interval_ms)
    : store_(std::move(store)),
      id_(std::move(id)),
      experiment_(std::move(experiment)),
      flush_interval_ms_(flush_interval_ms),
      last_flush_ms_(now_ms()) {}

std::shared_ptr<Run> Run::start(RunOptions o) {
  Store store(o.dir.empty() ? tracking_dir() : o.dir, {.busy_timeout_ms = o.busy_timeout_ms});
  std::string id = store.create_run(o.experiment, {.name = o.name});
  if (!o.tags.empty()) store.set_tags(id, o.tags);
  return std::shared_ptr<Run>(
      new Run(std::move(store), std::move(id), o.experiment, o.flush_interval_ms));
}

Run::~Run() {
  if (ended_) return;
  try {
    end(std::uncaught_exceptions() > 0 ? RunStatus::Failed : RunStatus::Finished);
  } catch (const std::exception& e) {
    fmt::print(stderr, "kiln track: run {} could not be closed: {}\n", id_, e.what());
  }
}

void Run::log_param(const std::string& key, const std::string& value) {
  store_.log_params(id_, {{key, value}});
}

void Run::log_param(const std::string& key, double value) {
  store_.log_params(id_, {{key, fmt::format("{}", value)}});
}

void Run::log_params(const std::map<std::string, std::string>& params) {
  store_.log_params(id_, params);
}

void Run::set_tag(const std::string& key, const std::string& value) {
  store_.set_tags(id_, {{key, value}});
}

void Run::log_metric(const std::string& key, double value, int64_t step, int64_t epoch) {
  {
    std::lock_guard lock(mu_);
    pending_.push_back(
        MetricPoint{.key = key, .value = value, .step = step, .epoch = epoch, .time_ms = 0});
  }
  maybe_flush();
}

void Run::maybe_flush() {
  // A clock read per point is ~20 ns; the flush itself runs once per interval.
  const int64_t now = now_ms();
  bool due = false;
  {
    std::lock_guard lock(mu_);
    due = now - last_flush_ms_ >= flush_interval_ms_ || pending_.size() >= 100000;
    if (!pending_.empty()) pending_.back().time_ms = now;
  }
  if (due) flush();
}

bool Run::flush() {
  std::vector<MetricPoint> points;
  {
    std::lock_guard lock(mu_);
    points.swap(pending_);
    last_flush_ms_ = now_ms();
  }
  if (points.empty()) return true;
  try {
    store_.log_metrics(id_, points);
    return true;
  } catch (const DatabaseLocked&) {
    // Locked by another writer past the timeout: keep the points for the next flush.
    std::lock_guard lock(mu_);
    points.insert(points.end(), pending_.begin(), pending_.end());
    pending_.swap(points);
    return false;
  }
}

void Run::end(RunStatus status) {
  KILN_CHECK(!ended_, "Run::end: run {} has already ended", id_);
  const int64_t end_ms = now_ms();
  bool written = flush() || flush();  // a second wait of the full busy timeout
  if (written) {
    try {
      store_.end_run(id_, status, end_ms);
    } catch (const DatabaseLocked&) {
      written = false;
    }
  }
  if (!written) {
    // Still locked: keep the rest of the run beside the database; the next open applies it.
    std::vector<MetricPoint> points;
    {
      std::lock_guard lock(mu_);
      points.swap(pending_);
    }
    const fs::path file = store_.write_pending(id_, points, status, end_ms);
    fmt::print(stderr,
               "kiln track: {} stayed locked; run {}'s last {} points and its status are kept in "
               "{} and applied at the next open\n",
               store_.database_path().string(), id_, points.size(), file.string());
  }
  ended_ = true;
}

void Run::log_confusion_matrix(const ConfusionMatrix& m) {
  store_.log_confusion_matrix(id_, m);
}

void Run::log_data_file(const std::string& role, const fs::path& file, const data::Table* table) {
  store_.log_data_file(id_, role, file, table ? table_schema(*table) : "");
}

void Run::log_artifact(const fs::path& path, const std::string& name) {
  store_.log_artifact(id_, path, name);
}

}  // namespace kiln::track
