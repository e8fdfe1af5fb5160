// The store's read side: experiments, run lists with final metrics, and one run's full record.
#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <limits>

#include "kiln/io/json.h"
#include "kiln/tensor/error.h"
#include "kiln/track/filter.h"
#include "kiln/track/store_impl.h"

namespace kiln::track {

namespace fs = std::filesystem;

namespace {

constexpr const char* kRunColumns =
    "r.id, e.name, r.name, r.status, r.start_ms, r.end_ms, r.git_commit, r.command, r.host, r.pid, "
    "r.proc_start";

std::string this_host() {
  char buf[256] = {};
  return ::gethostname(buf, sizeof buf - 1) == 0 ? std::string(buf) : std::string();
}

// A row of kRunColumns. A run still "running" whose process has exited reads as killed, also
// from a read-only store that cannot write the change.
RunInfo read_run(SQLite::Statement& q, const std::string& host) {
  RunInfo r;
  r.id = q.getColumn(0).getString();
  r.experiment = q.getColumn(1).getString();
  r.name = q.getColumn(2).getString();
  r.status = parse_run_status(q.getColumn(3).getString());
  r.start_ms = q.getColumn(4).getInt64();
  r.end_ms = q.getColumn(5).isNull() ? 0 : q.getColumn(5).getInt64();
  r.git_commit = q.getColumn(6).getString();
  r.command = q.getColumn(7).getString();
  r.host = q.getColumn(8).getString();
  r.pid = q.getColumn(9).getInt64();
  if (r.status == RunStatus::Running && r.host == host &&
      process_start_time(r.pid) != q.getColumn(10).getString()) {
    r.status = RunStatus::Killed;
  }
  return r;
}

double read_value(const SQLite::Column& c) {
  return c.isNull() ? std::numeric_limits<double>::quiet_NaN() : c.getDouble();
}

void read_pairs(SQLite::Database& db, const char* table, const std::string& run,
                std::map<std::string, std::string>& out) {
  SQLite::Statement q(db, fmt::format("SELECT key, value FROM {} WHERE run_id = ?", table));
  q.bind(1, run);
  while (q.executeStep()) out[q.getColumn(0).getString()] = q.getColumn(1).getString();
}

}  // namespace

std::vector<std::string> Store::experiments() const {
  try {
    std::vector<std::string> out;
    SQLite::Statement q(*impl_->db, "SELECT name FROM experiments ORDER BY name");
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    return out;
  } catch (const std::exception& e) {
    impl_->fail(e, "listing experiments");
  }
}

std::vector<RunRecord> Store::list_runs(const ListRunsOptions& options) const {
  const RunFilter filter = RunFilter::parse(options.filter);
  try {
    SQLite::Database& db = *impl_->db;
    const std::string host = this_host();
    std::vector<RunRecord> runs;
    std::map<std::string, size_t> index;
    SQLite::Statement q(
        db, fmt::format("SELECT {} FROM runs r JOIN experiments e ON e.id = "
                        "r.experiment_id {} ORDER BY r.start_ms DESC, r.rowid DESC",
                        kRunColumns, options.experiment.empty() ? "" : "WHERE e.name = ?"));
    if (!options.experiment.empty()) q.bind(1, options.experiment);
    while (q.executeStep()) {
      RunRecord r;
      r.info = read_run(q, host);
      index[r.info.id] = runs.size();
      runs.push_back(std::move(r));
    }
    if (runs.empty()) return runs;
    // One pass per table over every run (cheaper than a query per run for long lists).
    SQLite::Statement p(db, "SELECT run_id, key, value FROM params");
    while (p.executeStep()) {
      auto it = index.find(p.getColumn(0).getString());
      if (it != index.end()) runs[it->second].params[p.getColumn(1)] = p.getColumn(2).getString();
    }
    SQLite::Statement t(db, "SELECT run_id, key, value FROM tags");
    while (t.executeStep()) {
      auto it = index.find(t.getColumn(0).getString());
      if (it != index.end()) runs[it->second].tags[t.getColumn(1)] = t.getColumn(2).getString();
    }
    SQLite::Statement m(db, "SELECT run_id, key, value FROM latest_metrics");
    while (m.executeStep()) {
      auto it = index.find(m.getColumn(0).getString());
      if (it != index.end())
        runs[it->second].final_metrics[m.getColumn(1)] = read_value(m.getColumn(2));
    }
    if (filter.empty()) return runs;
    std::vector<RunRecord> kept;
    for (RunRecord& r : runs)
      if (filter.matches(r)) kept.push_back(std::move(r));
    return kept;
  } catch (const std::exception& e) {
    impl_->fail(e, "listing runs");
  }
}

RunRecord Store::get_run(const std::string& id_or_prefix) const {
  KILN_CHECK(id_or_prefix.size() >= 4 &&
                 id_or_prefix.find_first_not_of("0123456789abcdef") == std::string::npos,
             "{}: '{}' is not a run id (4 to 12 hex digits: an id or a unique prefix of one)",
             database_path().string(), id_or_prefix);
  RunRecord r;
  try {
    SQLite::Database& db = *impl_->db;
    std::vector<std::string> ids;
    SQLite::Statement find(db, "SELECT id FROM runs WHERE substr(id, 1, ?) = ? ORDER BY id");
    find.bind(1, static_cast<int64_t>(id_or_prefix.size()));
    find.bind(2, id_or_prefix);
    while (find.executeStep()) ids.push_back(find.getColumn(0).getString());
    KILN_CHECK(!ids.empty(), "{}: no run '{}'", database_path().string(), id_or_prefix);
    KILN_CHECK(ids.size() == 1, "{}: '{}' is the prefix of {} runs ({}); give more digits",
               database_path().string(), id_or_prefix, ids.size(), fmt::join(ids, ", "));
    const std::string& id = ids[0];
    SQLite::Statement q(db, fmt::format("SELECT {} FROM runs r JOIN experiments e ON e.id = "
                                        "r.experiment_id WHERE r.id = ?",
                                        kRunColumns));
    q.bind(1, id);
    q.executeStep();
    r.info = read_run(q, this_host());
    read_pairs(db, "params", id, r.params);
    read_pairs(db, "tags", id, r.tags);
    SQLite::Statement m(db,
                        "SELECT key, value, step, epoch, time_ms FROM metrics WHERE run_id = ? "
                        "ORDER BY key, step, rowid");
    m.bind(1, id);
    while (m.executeStep()) {
      r.metrics.push_back(
          MetricPoint{.key = m.getColumn(0).getString(),
                      .value = read_value(m.getColumn(1)),
                      .step = m.getColumn(2).getInt64(),
                      .epoch = m.getColumn(3).isNull() ? -1 : m.getColumn(3).getInt64(),
                      .time_ms = m.getColumn(4).getInt64()});
    }
    SQLite::Statement lm(db, "SELECT key, value FROM latest_metrics WHERE run_id = ?");
    lm.bind(1, id);
    while (lm.executeStep()) r.final_metrics[lm.getColumn(0)] = read_value(lm.getColumn(1));
    SQLite::Statement c(db,
                        "SELECT name, labels_json, counts_json FROM confusion WHERE run_id = ?");
    c.bind(1, id);
    while (c.executeStep()) {
      ConfusionMatrix cm;
      cm.name = c.getColumn(0).getString();
      const json::Value labels = json::parse(c.getColumn(1).getString(), "confusion labels");
      const json::Value counts = json::parse(c.getColumn(2).getString(), "confusion counts");
      for (const json::Value& l : labels.as_array()) cm.labels.push_back(l.as_string());
      for (const json::Value& row : counts.as_array()) {
        cm.counts.emplace_back();
        for (const json::Value& v : row.as_array()) cm.counts.back().push_back(v.as_int());
      }
      r.confusion.push_back(std::move(cm));
    }
    SQLite::Statement d(db,
                        "SELECT role, path, sha256, bytes, schema_json FROM data_files WHERE "
                        "run_id = ? ORDER BY rowid");
    d.bind(1, id);
    while (d.executeStep()) {
      r.data.push_back(DataFileInfo{.role = d.getColumn(0).getString(),
                                    .path = d.getColumn(1).getString(),
                                    .sha256 = d.getColumn(2).getString(),
                                    .bytes = d.getColumn(3).getInt64(),
                                    .schema_json = d.getColumn(4).getString()});
    }
    SQLite::Statement a(db,
                        "SELECT path, sha256, bytes FROM artifacts WHERE run_id = ? ORDER BY path");
    a.bind(1, id);
    while (a.executeStep()) {
      r.artifacts.push_back(ArtifactInfo{.path = a.getColumn(0).getString(),
                                         .sha256 = a.getColumn(1).getString(),
                                         .bytes = a.getColumn(2).getInt64()});
    }
  } catch (const std::exception& e) {
    impl_->fail(e, fmt::format("reading run {}", id_or_prefix));
  }
  return r;
}

}  // namespace kiln::track
