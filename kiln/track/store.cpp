// The store: opening, schema migrations and every write. Queries are in store_query.cpp, the
// registry in registry.cpp; store_impl.h holds what the three share.
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "kiln/io/atomic_file.h"
#include "kiln/io/json.h"
#include "kiln/io/safetensors.h"
#include "kiln/tensor/error.h"
#include "kiln/track/hash.h"
#include "kiln/track/store_impl.h"

namespace kiln::track {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- enums

std::string_view to_string(RunStatus s) {
  switch (s) {
    case RunStatus::Running:
      return "running";
    case RunStatus::Finished:
      return "finished";
    case RunStatus::Failed:
      return "failed";
    case RunStatus::Killed:
      return "killed";
  }
  return "?";
}

RunStatus parse_run_status(std::string_view s) {
  for (RunStatus r :
       {RunStatus::Running, RunStatus::Finished, RunStatus::Failed, RunStatus::Killed})
    if (to_string(r) == s) return r;
  KILN_CHECK(false, "run status '{}' is not one of running, finished, failed, killed", s);
  return RunStatus::Running;
}

std::string_view to_string(Stage s) {
  switch (s) {
    case Stage::None:
      return "none";
    case Stage::Staging:
      return "staging";
    case Stage::Production:
      return "production";
    case Stage::Archived:
      return "archived";
  }
  return "?";
}

Stage parse_stage(std::string_view s) {
  std::string l(s);
  for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (Stage st : {Stage::None, Stage::Staging, Stage::Production, Stage::Archived})
    if (to_string(st) == l) return st;
  KILN_CHECK(false, "stage '{}' is not one of none, staging, production, archived", s);
  return Stage::None;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<MetricPoint> RunRecord::history(std::string_view key) const {
  std::vector<MetricPoint> out;
  for (const MetricPoint& p : metrics)
    if (p.key == key) out.push_back(p);
  return out;
}

// ---------------------------------------------------------------- schema

namespace {

// Migration i takes a database from version i to i + 1. Never edit a step once released: add one.
constexpr const char* kMigrations[] = {
    // 0 -> 1
    R"sql(
CREATE TABLE experiments(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                         created_ms INTEGER NOT NULL);
CREATE TABLE runs(id TEXT PRIMARY KEY, experiment_id INTEGER NOT NULL REFERENCES experiments(id),
                  name TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, start_ms INTEGER NOT NULL,
                  end_ms INTEGER, git_commit TEXT NOT NULL DEFAULT '',
                  command TEXT NOT NULL DEFAULT '', host TEXT NOT NULL DEFAULT '',
                  pid INTEGER NOT NULL DEFAULT 0, proc_start TEXT NOT NULL DEFAULT '');
CREATE INDEX runs_by_experiment ON runs(experiment_id, start_ms);
CREATE TABLE params(run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL,
                    value TEXT NOT NULL, PRIMARY KEY(run_id, key));
CREATE TABLE tags(run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL,
                  value TEXT NOT NULL, PRIMARY KEY(run_id, key));
CREATE TABLE metrics(run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL,
                     step INTEGER NOT NULL, value REAL, time_ms INTEGER NOT NULL);
CREATE INDEX metrics_by_run ON metrics(run_id, key, step);
)sql",
    // 1 -> 2
    R"sql(
ALTER TABLE metrics ADD COLUMN epoch INTEGER;
CREATE TABLE latest_metrics(run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL,
                            step INTEGER NOT NULL, value REAL, PRIMARY KEY(run_id, key));
INSERT INTO latest_metrics(run_id, key, step, value)
  SELECT m.run_id, m.key, m.step, m.value FROM metrics m
  WHERE m.rowid = (SELECT m2.rowid FROM metrics m2 WHERE m2.run_id = m.run_id AND m2.key = m.key
                   ORDER BY m2.step DESC, m2.rowid DESC LIMIT 1);
CREATE TABLE data_files(run_id TEXT NOT NULL REFERENCES runs(id), role TEXT NOT NULL,
                        path TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,
                        schema_json TEXT NOT NULL DEFAULT '');
CREATE TABLE confusion(run_id TEXT NOT NULL REFERENCES runs(id), name TEXT NOT NULL,
                       labels_json TEXT NOT NULL, counts_json TEXT NOT NULL,
                       PRIMARY KEY(run_id, name));
CREATE TABLE artifacts(run_id TEXT NOT NULL REFERENCES runs(id), path TEXT NOT NULL,
                       sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, PRIMARY KEY(run_id, path));
CREATE TABLE model_versions(name TEXT NOT NULL, version INTEGER NOT NULL,
                            run_id TEXT NOT NULL REFERENCES runs(id),
                            stage TEXT NOT NULL DEFAULT 'none', created_ms INTEGER NOT NULL,
                            updated_ms INTEGER NOT NULL, description TEXT NOT NULL DEFAULT '',
                            PRIMARY KEY(name, version));
)sql",
};
static_assert(std::size(kMigrations) == Store::kSchemaVersion);

std::string read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string git_head() {
  // Asked once per working directory: an AutoML search starts a run per trial, and the popen of
  // git costs tens of milliseconds each time.
  static std::mutex mu;
  static std::map<std::string, std::string> cache;
  std::error_code ec;
  const std::string cwd = fs::current_path(ec).string();
  std::lock_guard lock(mu);
  if (auto it = cache.find(cwd); it != cache.end()) return it->second;
  std::string out;
  if (std::FILE* p = ::popen("git rev-parse HEAD 2>/dev/null", "r")) {
    char buf[128] = {};
    if (std::fgets(buf, sizeof buf, p)) out = buf;
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (out.size() != 40) out.clear();
  cache[cwd] = out;
  return out;
}

std::string command_line() {
  const std::string raw = read_small_file("/proc/self/cmdline");
  std::string out;
  size_t start = 0;
  while (start < raw.size()) {
    size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    std::string arg = raw.substr(start, end - start);
    if (!out.empty()) out += ' ';
    const bool quote = arg.empty() || arg.find_first_of(" \t\"'$") != std::string::npos;
    out += quote ? json::quote(arg) : arg;
    start = end + 1;
  }
  return out;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

// Switching a database to WAL takes an exclusive lock, and when another connection holds any lock
// SQLite answers SQLITE_BUSY at once instead of calling the busy handler (it would deadlock a
// reader). Processes that create one database together -- the ranks of an mpirun job, two jobs
// started at once -- meet exactly that, so retry here for up to the busy timeout. A file system
// without shared memory (some network mounts) never gets WAL; the store then keeps the rollback
// journal, which is as safe, only with readers that block the writer.
void enable_wal(SQLite::Database& db, int timeout_ms) {
  using clock = std::chrono::steady_clock;
  const clock::time_point deadline = clock::now() + std::chrono::milliseconds(timeout_ms);
  for (int wait_ms = 1;; wait_ms = std::min(wait_ms * 2, 50)) {
    try {
      if (db.execAndGet("PRAGMA journal_mode=WAL").getString() == "wal") return;
      if (clock::now() >= deadline) return;
    } catch (const SQLite::Exception& e) {
      if (e.getErrorCode() != SQLITE_BUSY || clock::now() >= deadline) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
  }
}

std::string new_run_id() {
  static thread_local std::mt19937_64 gen{std::random_device{}() ^ static_cast<uint64_t>(now_ms()) ^
                                          static_cast<uint64_t>(::getpid())};
  return fmt::format("{:012x}", gen() & 0xffffffffffffULL);
}

}  // namespace

std::string process_start_time(int64_t pid) {
  // Field 22 of /proc/<pid>/stat (clock ticks after boot) tells a live process from a later one
  // that was given the same pid. The command name (field 2) may hold spaces, so count from ')'.
  const std::string stat = read_small_file(fmt::format("/proc/{}/stat", pid));
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return "";
  size_t pos = close + 2;
  for (int field = 3; field < 22 && pos < stat.size(); ++field) {
    pos = stat.find(' ', pos);
    if (pos == std::string::npos) return "";
    ++pos;
  }
  return stat.substr(pos, stat.find(' ', pos) - pos);
}

// ---------------------------------------------------------------- errors

[[noreturn]] void Store::Impl::fail(const std::exception& e, std::string_view doing) const {
  const std::string db = database_path().string();
  if (const auto* s = dynamic_cast<const SQLite::Exception*>(&e)) {
    switch (s->getErrorCode()) {
      case SQLITE_NOTADB:
        throw IOError(
            fmt::format("{}: {}: not a SQLite database (a Kiln tracking directory holds "
                        "kiln.db made by Kiln; move this file away or use another --track "
                        "directory)",
                        db, doing));
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        throw DatabaseLocked(
            fmt::format("{}: {}: the database is locked by another process (waited {} ms "
                        "for its write to end)",
                        db, doing, options.busy_timeout_ms));
      case SQLITE_READONLY:
        throw IOError(fmt::format("{}: {}: the database is read-only ({})", db, doing,
                                  options.read_only ? "opened with read_only"
                                                    : "the file or its directory is not writable"));
      case SQLITE_CORRUPT:
        throw IOError(
            fmt::format("{}: {}: the database file is corrupt ({})", db, doing, s->what()));
      case SQLITE_CANTOPEN:
        throw IOError(
            fmt::format("{}: {}: cannot open the database file ({})", db, doing, s->what()));
      default:
        break;
    }
    throw IOError(fmt::format("{}: {}: {}", db, doing, s->what()));
  }
  if (dynamic_cast<const Error*>(&e)) throw;
  throw IOError(fmt::format("{}: {}: {}", db, doing, e.what()));
}

fs::path Store::Impl::database_path() const {
  return dir / Store::kDatabaseName;
}

void Store::Impl::require_run(const std::string& run) const {
  SQLite::Statement q(*db, "SELECT status FROM runs WHERE id = ?");
  q.bind(1, run);
  KILN_CHECK(q.executeStep(), "{}: no run '{}'", database_path().string(), run);
}

// ---------------------------------------------------------------- open

Store::Store(const fs::path& dir, StoreOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.dir = dir;
  s.options = options;
  const fs::path path = s.database_path();
  try {
    if (options.read_only) {
      KILN_CHECK_AS(IOError, fs::exists(path),
                    "{}: no tracking database here (train with tracking "
                    "on first, or point --track / KILN_TRACKING_DIR at the right directory)",
                    path.string());
      s.db =
          std::make_unique<SQLite::Database>(path, SQLite::OPEN_READONLY, options.busy_timeout_ms);
    } else {
      std::error_code ec;
      fs::create_directories(dir, ec);
      KILN_CHECK_AS(IOError, !ec, "{}: cannot create the tracking directory ({})", dir.string(),
                    ec.message());
      s.db = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE,
                                                options.busy_timeout_ms);
    }
  } catch (const std::exception& e) {
    s.fail(e, "open");
  }
  try {
    int version = s.db->execAndGet("PRAGMA user_version").getInt();
    if (!options.read_only) {
      // WAL: readers do not block the writer; a commit is atomic whatever happens to the process.
      // synchronous=NORMAL keeps commits cheap (no fsync each); a power cut may lose the last
      // commits, never the database.
      enable_wal(*s.db, options.busy_timeout_ms);
      s.db->exec("PRAGMA synchronous=NORMAL");
    }
    s.db->exec("PRAGMA foreign_keys=ON");
    KILN_CHECK_AS(IOError, version <= kSchemaVersion,
                  "{}: schema version {} is newer than this Kiln's ({}); use a newer kiln",
                  path.string(), version, kSchemaVersion);
    if (version < kSchemaVersion) {
      KILN_CHECK_AS(IOError, !options.read_only,
                    "{}: schema version {} needs an upgrade to {}, which a read-only open cannot "
                    "write",
                    path.string(), version, kSchemaVersion);
      SQLite::Transaction tx(*s.db, SQLite::TransactionBehavior::IMMEDIATE);
      // Another process may have upgraded it while we waited for the write lock.
      version = s.db->execAndGet("PRAGMA user_version").getInt();
      for (int v = version; v < kSchemaVersion; ++v) s.db->exec(kMigrations[v]);
      s.db->exec(fmt::format("PRAGMA user_version = {}", kSchemaVersion));
      tx.commit();
    }
    s.schema_version = kSchemaVersion;
  } catch (const std::exception& e) {
    s.fail(e, "open");
  }
  if (!options.read_only) {
    apply_pending();
    reap_dead_runs();
  }
}

Store::~Store() = default;
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;

const fs::path& Store::dir() const {
  return impl_->dir;
}
fs::path Store::database_path() const {
  return impl_->database_path();
}
int Store::schema_version() const {
  return impl_->schema_version;
}

// ---------------------------------------------------------------- runs

std::string Store::create_run(const std::string& experiment, const RunSource& source) {
  KILN_CHECK(!experiment.empty(), "create_run: the experiment name is empty");
  const std::string git = source.git_commit.empty() ? git_head() : source.git_commit;
  const std::string cmd = source.command.empty() ? command_line() : source.command;
  const int64_t pid = ::getpid();
  try {
    SQLite::Transaction tx(*impl_->db, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement ins_exp(*impl_->db,
                              "INSERT OR IGNORE INTO experiments(name, created_ms) VALUES(?, ?)");
    ins_exp.bind(1, experiment);
    ins_exp.bind(2, now_ms());
    ins_exp.exec();
    SQLite::Statement get_exp(*impl_->db, "SELECT id FROM experiments WHERE name = ?");
    get_exp.bind(1, experiment);
    get_exp.executeStep();
    const int64_t exp_id = get_exp.getColumn(0).getInt64();
    std::string id;
    for (;;) {
      id = new_run_id();
      SQLite::Statement taken(*impl_->db, "SELECT 1 FROM runs WHERE id = ?");
      taken.bind(1, id);
      if (!taken.executeStep()) break;
    }
    SQLite::Statement ins(*impl_->db,
                          "INSERT INTO runs(id, experiment_id, name, status, start_ms, git_commit, "
                          "command, host, pid, proc_start) VALUES(?, ?, ?, 'running', ?, ?, ?, ?, "
                          "?, ?)");
    ins.bind(1, id);
    ins.bind(2, exp_id);
    ins.bind(3, source.name);
    ins.bind(4, now_ms());
    ins.bind(5, git);
    ins.bind(6, cmd);
    ins.bind(7, host_name());
    ins.bind(8, pid);
    ins.bind(9, process_start_time(pid));
    ins.exec();
    tx.commit();
    return id;
  } catch (const std::exception& e) {
    impl_->fail(e, fmt::format("create_run in experiment '{}'", experiment));
  }
}

void Store::Impl::put_pairs(const char* table, const std::string& run,
                            const std::map<std::string, std::string>& kv, const char* doing) {
  try {
    SQLite::Transaction tx(*db, SQLite::TransactionBehavior::IMMEDIATE);
    require_run(run);
    SQLite::Statement ins(
        *db, fmt::format("INSERT OR REPLACE INTO {}(run_id, key, value) VALUES(?, ?, ?)", table));
    for (const auto& [k, v] : kv) {
      ins.bind(1, run);
      ins.bind(2, k);
      ins.bind(3, v);
      ins.exec();
      ins.reset();
    }
    tx.commit();
  } catch (const std::exception& e) {
    fail(e, fmt::format("{} of run {}", doing, run));
  }
}

void Store::log_params(const std::string& run, const std::map<std::string, std::string>& params) {
  impl_->put_pairs("params", run, params, "log_params");
}

void Store::set_tags(const std::string& run, const std::map<std::string, std::string>& tags) {
  impl_->put_pairs("tags", run, tags, "set_tags");
}

void Store::log_metrics(const std::string& run, std::span<const MetricPoint> points) {
  if (points.empty()) return;
  try {
    SQLite::Transaction tx(*impl_->db, SQLite::TransactionBehavior::IMMEDIATE);
    impl_->require_run(run);
    SQLite::Statement ins(*impl_->db,
                          "INSERT INTO metrics(run_id, key, step, epoch, value, time_ms) "
                          "VALUES(?, ?, ?, ?, ?, ?)");
    const int64_t now = now_ms();
    // The last point of each key (greatest step, later wins ties) updates latest_metrics once.
    std::map<std::string_view, const MetricPoint*> last;
    for (const MetricPoint& p : points) {
      KILN_CHECK(!p.key.empty(), "log_metrics: a point of run {} has an empty key", run);
      ins.bind(1, run);
      ins.bind(2, p.key);
      ins.bind(3, p.step);
      if (p.epoch >= 0) {
        ins.bind(4, p.epoch);
      } else {
        ins.bind(4);
      }
      if (p.value == p.value) {
        ins.bind(5, p.value);
      } else {
        ins.bind(5);  // SQLite has no NaN: NULL reads back as NaN
      }
      ins.bind(6, p.time_ms ? p.time_ms : now);
      ins.exec();
      ins.reset();
      const MetricPoint*& l = last[p.key];
      if (!l || p.step >= l->step) l = &p;
    }
    SQLite::Statement up(*impl_->db,
                         "INSERT INTO latest_metrics(run_id, key, step, value) VALUES(?, ?, ?, ?) "
                         "ON CONFLICT(run_id, key) DO UPDATE SET step = excluded.step, value = "
                         "excluded.value WHERE excluded.step >= latest_metrics.step");
    for (const auto& [k, p] : last) {
      up.bind(1, run);
      up.bind(2, p->key);
      up.bind(3, p->step);
      if (p->value == p->value) {
        up.bind(4, p->value);
      } else {
        up.bind(4);
      }
      up.exec();
      up.reset();
    }
    tx.commit();
  } catch (const std::exception& e) {
    impl_->fail(e, fmt::format("log_metrics of run {}", run));
  }
}

void Store::log_confusion_matrix(const std::string& run, const ConfusionMatrix& m) {
  const size_t K = m.labels.size();
  KILN_CHECK(m.counts.size() == K, "log_confusion_matrix: {} labels but {} rows of counts", K,
             m.counts.size());
  json::Value labels = json::Value::array(), counts = json::Value::array();
  for (const std::string& l : m.labels) labels.push_back(l);
  for (size_t i = 0; i < K; ++i) {
    KILN_CHECK(m.counts[i].size() == K, "log_confusion_matrix: row {} has {} counts, want {}", i,
               m.counts[i].size(), K);
    json::Value row = json::Value::array();
    for (int64_t c : m.counts[i]) row.push_back(c);
    counts.push_back(std::move(row));
  }
  try {
    SQLite::Transaction tx(*impl_->db, SQLite::TransactionBehavior::IMMEDIATE);
    impl_->require_run(run);
    SQLite::Statement ins(
        *impl_->db,
        "INSERT OR REPLACE INTO confusion(run_id, name, labels_json, counts_json) "
        "VALUES(?, ?, ?, ?)");
    ins.bind(1, run);
    ins.bind(2, m.name);
    ins.bind(3, labels.dump());
    ins.bind(4, counts.dump());
    ins.exec();
    tx.commit();
  } catch (const std::exception& e) {
    impl_->fail(e, fmt::format("log_confusion_matrix of run {}", run));
  }
}

DataFileInfo Store::log_data_file(const std::string& run, const std::string& role,
                                  const fs::path& file, const std::string& schema_json) {
  KILN_CHECK_AS(IOError, fs::is_regular_file(file), "log_data_file: {} is not a file",
                file.string());
  DataFileInfo d{.role = role,
                 .path = fs::absolute(file).lexically_normal().string(),
                 .sha256 = sha256_file(file),
                 .bytes = static_cast<int64_t>(fs::file_size(file)),
                 .schema_json = schema_json};
  try {
    SQLite::Transaction tx(*impl_->db, SQLite::TransactionBehavior::IMMEDIATE);
    impl_->require_run(run);
    SQLite::Statement ins(*impl_->db,
                          "INSERT INTO data_files(run_id, role, path, sha256, bytes, schema_json) "
                          "VALUES(?, ?, ?, ?, ?, ?)");
    ins.bind(1, run);
    ins.bind(2, d.role);
    ins.bind(3, d.path);
    ins.bind(4, d.sha256);
    ins.bind(5, d.bytes);
    ins.bind(6, d.schema_json);
    ins.exec();
    tx.commit();
  } catch (const std::exception& e) {
    impl_->fail(e, fmt::format("log_data_file of run {}", run));
  }
  return d;
}

std::vector<ArtifactInfo> Store::log_artifact(const std::string& run, const fs::path& path,
                                              const std::string& name) {
  KILN_CHECK_AS(IOError, fs::exists(path), "log_artifact: {} does not exist", path.string());
  const std::string base = name.empty() ? path.filename().string() : name;
  std::vector<std::pair<fs::path, std::string>> files;  // source, name within the run
  if (fs::is_directory(path)) {
    for (const auto& e : fs::recursive_directory_iterator(path)) {
      if (e.is_regular_file())
        files.emplace_back(e.path(), base + "/" + fs::relative(e.path(), path).generic_string());
    }
    std::sort(files.begin(), files.end(),
              [](const auto& a, const auto& b) { return a.second < b.second; });
  } else {
    files.emplace_back(path, base);
  }
  std::vector<ArtifactInfo> out;
  for (const auto& [src, rel] : files) {
    // Store the bytes first: a row never points at a blob that is not there.
    const std::string bytes = read_file_bytes(src);
    ArtifactInfo a{
        .path = rel, .sha256 = sha256_hex(bytes), .bytes = static_cast<int64_t>(bytes.size())};
    const fs::path blob = artifact_file(a);
    if (!fs::exists(blob)) {
      fs::create_directories(blob.parent_path());
      write_file_atomic(blob.string(), bytes);
    }
    out.push_back(a);
  }
  try {
    SQLite::Transaction tx(*impl_->db, SQLite::TransactionBehavior::IMMEDIATE);
    impl_->require_run(run);
    SQLite::Statement ins(*impl_->db,
                          "INSERT OR REPLACE INTO artifacts(run_id, path, sha256, bytes) "
                          "VALUES(?, ?, ?, ?)");
    for (const ArtifactInfo& a : out) {
      ins.bind(1, run);
      ins.bind(2, a.path);
      ins.bind(3, a.sha256);
      ins.bind(4, a.bytes);
      ins.exec();
      ins.reset();
    }
    tx.commit();
  } catch (const std::exception& e) {
    impl_->fail(e, fmt::format("log_artifact {} of run {}", path.string(), run));
  }
  return out;
}

void Store::end_run(const std::string& run, RunStatus status, int64_t end_ms) {
  try {
    SQLite::Transaction tx(*impl_->db, SQLite::TransactionBehavior::IMMEDIATE);
    impl_->require_run(run);
    SQLite::Statement up(*impl_->db, "UPDATE runs SET status = ?, end_ms = ? WHERE id = ?");
    up.bind(1, std::string(to_string(status)));
    up.bind(2, end_ms ? end_ms : now_ms());
    up.bind(3, run);
    up.exec();
    tx.commit();
  } catch (const std::exception& e) {
    impl_->fail(e, fmt::format("end_run {}", run));
  }
}

int Store::reap_dead_runs() {
  try {
    const std::string host = host_name();
    std::vector<std::string> dead;
    SQLite::Statement q(
        *impl_->db, "SELECT id, pid, proc_start FROM runs WHERE status = 'running' AND host = ?");
    q.bind(1, host);
    while (q.executeStep()) {
      const int64_t pid = q.getColumn(1).getInt64();
      if (process_start_time(pid) != q.getColumn(2).getString()) dead.push_back(q.getColumn(0));
    }
    if (dead.empty()) return 0;
    SQLite::Transaction tx(*impl_->db, SQLite::TransactionBehavior::IMMEDIATE);
    // The end time is the run's last sign of life: its last metric, else its start.
    SQLite::Statement up(*impl_->db,
                         "UPDATE runs SET status = 'killed', end_ms = COALESCE((SELECT "
                         "MAX(time_ms) FROM metrics WHERE run_id = runs.id), start_ms) WHERE id = "
                         "? AND status = 'running'");
    for (const std::string& id : dead) {
      up.bind(1, id);
      up.exec();
      up.reset();
    }
    tx.commit();
    return static_cast<int>(dead.size());
  } catch (const std::exception& e) {
    impl_->fail(e, "marking runs of exited processes as killed");
  }
}

fs::path Store::artifact_file(const ArtifactInfo& a) const {
  KILN_CHECK(a.sha256.size() == 64, "artifact '{}': '{}' is not a SHA-256", a.path, a.sha256);
  return impl_->dir / "artifacts" / a.sha256.substr(0, 2) / a.sha256.substr(2);
}

// ---------------------------------------------------------------- pending (locked) writes

fs::path Store::write_pending(const std::string& run, std::span<const MetricPoint> points,
                              std::optional<RunStatus> status, int64_t end_ms) const {
  json::Value v = json::Value::object();
  v["run"] = run;
  if (status) v["status"] = std::string(to_string(*status));
  v["end_ms"] = end_ms;
  json::Value pts = json::Value::array();
  for (const MetricPoint& p : points) {
    json::Value j = json::Value::object();
    j["key"] = p.key;
    j["value"] = p.value;
    j["step"] = p.step;
    j["epoch"] = p.epoch;
    j["time_ms"] = p.time_ms;
    pts.push_back(std::move(j));
  }
  v["points"] = std::move(pts);
  const fs::path dir = impl_->dir / "pending";
  fs::create_directories(dir);
  const fs::path file = dir / fmt::format("{}-{}.json", run, now_ms());
  write_file_atomic(file.string(), v.dump());
  return file;
}

int Store::apply_pending() {
  const fs::path dir = impl_->dir / "pending";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  int applied = 0;
  for (const fs::path& f : files) {
    const json::Value v = json::parse(read_file_bytes(f), f.string());
    const std::string run = v.at("run").as_string();
    std::vector<MetricPoint> points;
    for (const json::Value& p : v.at("points").as_array()) {
      points.push_back(MetricPoint{.key = p.at("key").as_string(),
                                   .value = p.at("value").is_null()
                                                ? std::numeric_limits<double>::quiet_NaN()
                                                : p.at("value").as_double(),
                                   .step = p.at("step").as_int(),
                                   .epoch = p.at("epoch").as_int(),
                                   .time_ms = p.at("time_ms").as_int()});
    }
    try {
      log_metrics(run, points);
      if (const json::Value* st = v.find("status"))
        end_run(run, parse_run_status(st->as_string()), v.at("end_ms").as_int());
    } catch (const DatabaseLocked&) {
      continue;  // still locked: the next open tries again
    }
    fs::remove(f);
    ++applied;
  }
  return applied;
}

}  // namespace kiln::track
