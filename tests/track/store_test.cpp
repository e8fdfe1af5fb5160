// The tracking store: what a run records reads back, filters, content-addressed artifacts, two
// processes writing at once, kill -9 of a writer, the schema upgrade from version 1, and bad
// databases (not SQLite, newer schema, locked, read-only) giving clear errors without losing a run.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <thread>

#include "kiln/tensor/error.h"
#include "kiln/track/filter.h"
#include "kiln/track/hash.h"
#include "kiln/track/run.h"
#include "kiln/track/store.h"
#include "track/track_test_util.h"

namespace kiln::track {
namespace {

namespace fs = std::filesystem;
using testing_util::RawDb;
using testing_util::scratch_dir;

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary) << s;
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Hash, Sha256MatchesTheFipsVector) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const fs::path f = scratch_dir("hash") / "abc.txt";
  write_text(f, "abc");
  EXPECT_EQ(sha256_file(f), sha256_hex("abc"));
}

TEST(Store, RecordsEverythingARunLogsAndReadsItBack) {
  const fs::path dir = scratch_dir("roundtrip");
  Store store(dir);
  EXPECT_EQ(store.schema_version(), Store::kSchemaVersion);
  const std::string id = store.create_run("mnist", {.name = "first"});
  EXPECT_EQ(id.size(), 12u);
  store.log_params(id, {{"lr", "0.001"}, {"units", "128"}});
  store.set_tags(id, {{"preset", "mlp"}});
  const std::vector<MetricPoint> points = {
      {.key = "loss", .value = 0.9, .step = 10, .epoch = 1},
      {.key = "loss", .value = 0.4, .step = 20, .epoch = 2},
      {.key = "batch/loss", .value = 1.2, .step = 1},
      {.key = "val_loss", .value = std::nan(""), .step = 20, .epoch = 2},
  };
  store.log_metrics(id, points);
  store.log_confusion_matrix(
      id, {.name = "validation", .labels = {"ham", "spam"}, .counts = {{50, 2}, {3, 45}}});
  const fs::path data = dir / "train.tsv";
  write_text(data, "Label\tText\nham\thello\n");
  const DataFileInfo d = store.log_data_file(id, "train", data, R"({"rows":1})");
  EXPECT_EQ(d.sha256, sha256_hex("Label\tText\nham\thello\n"));
  fs::create_directories(dir / "model" / "tokenizer");
  write_text(dir / "model" / "config.json", "{}");
  write_text(dir / "model" / "tokenizer" / "vocab.txt", "a\nb\n");
  EXPECT_EQ(store.log_artifact(id, dir / "model").size(), 2u);
  store.end_run(id, RunStatus::Finished);

  const RunRecord r = store.get_run(id.substr(0, 6));  // a unique prefix finds it
  EXPECT_EQ(r.info.id, id);
  EXPECT_EQ(r.info.experiment, "mnist");
  EXPECT_EQ(r.info.name, "first");
  EXPECT_EQ(r.info.status, RunStatus::Finished);
  EXPECT_GT(r.info.end_ms, 0);
  EXPECT_NE(r.info.command.find("test_track"), std::string::npos) << r.info.command;
  EXPECT_EQ(r.params.at("units"), "128");
  EXPECT_EQ(r.tags.at("preset"), "mlp");
  EXPECT_EQ(r.final_metrics.at("loss"), 0.4);
  EXPECT_TRUE(std::isnan(r.final_metrics.at("val_loss")));
  const std::vector<MetricPoint> loss = r.history("loss");
  ASSERT_EQ(loss.size(), 2u);
  EXPECT_EQ(loss[0].epoch, 1);
  EXPECT_EQ(loss[1].step, 20);
  EXPECT_EQ(r.history("batch/loss")[0].epoch, -1);
  ASSERT_EQ(r.confusion.size(), 1u);
  EXPECT_EQ(r.confusion[0].counts[1][0], 3);
  EXPECT_EQ(r.confusion[0].labels[1], "spam");
  ASSERT_EQ(r.data.size(), 1u);
  EXPECT_EQ(r.data[0].bytes, 21);
  EXPECT_EQ(r.data[0].schema_json, R"({"rows":1})");
  ASSERT_EQ(r.artifacts.size(), 2u);
  EXPECT_EQ(r.artifacts[0].path, "model/config.json");
  EXPECT_EQ(r.artifacts[1].path, "model/tokenizer/vocab.txt");
  std::ifstream blob(store.artifact_file(r.artifacts[1]), std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(blob), {}), "a\nb\n");
}

TEST(Store, ArtifactsAreStoredOncePerContent) {
  const fs::path dir = scratch_dir("dedup");
  Store store(dir);
  write_text(dir / "weights.bin", std::string(1000, 'w'));
  const std::string a = store.create_run("e"), b = store.create_run("e");
  store.log_artifact(a, dir / "weights.bin");
  store.log_artifact(b, dir / "weights.bin", "copy.bin");
  size_t blobs = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir / "artifacts"))
    blobs += e.is_regular_file();
  EXPECT_EQ(blobs, 1u);
  EXPECT_EQ(store.get_run(b).artifacts[0].path, "copy.bin");
}

TEST(Store, ListsRunsNewestFirstAndFilters) {
  Store store(scratch_dir("filter"));
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(store.create_run(i < 2 ? "a" : "b"));
    store.log_params(ids.back(), {{"lr", i == 0 ? "0.01" : "0.001"}});
    const MetricPoint p{.key = "accuracy", .value = 0.8 + 0.05 * i, .step = 1, .epoch = 1};
    store.log_metrics(ids.back(), std::span(&p, 1));
    store.end_run(ids.back(), i == 1 ? RunStatus::Failed : RunStatus::Finished);
  }
  EXPECT_EQ(store.list_runs().size(), 3u);
  EXPECT_EQ(store.list_runs()[0].info.id, ids[2]);
  EXPECT_EQ(store.list_runs({.experiment = "a"}).size(), 2u);
  auto ids_of = [&](const std::string& f) {
    std::vector<std::string> out;
    for (const RunRecord& r : store.list_runs({.filter = f})) out.push_back(r.info.id);
    return out;
  };
  EXPECT_EQ(ids_of("metrics.accuracy > 0.86"), (std::vector<std::string>{ids[2]}));
  EXPECT_EQ(ids_of("metrics.accuracy >= 0.85 AND params.lr = 0.001"),
            (std::vector<std::string>{ids[2], ids[1]}));
  EXPECT_EQ(ids_of("status = failed"), (std::vector<std::string>{ids[1]}));
  EXPECT_EQ(ids_of("params.lr != '0.01' and experiment = b"), (std::vector<std::string>{ids[2]}));
  EXPECT_TRUE(ids_of("metrics.missing < 1").empty());
  EXPECT_NE(error_of([&] {
              store.list_runs({.filter = "metrics.accuracy ~ 1"});
            }).find("has no comparison"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] { store.list_runs({.filter = "colour = red"}); }).find("unknown field 'colour'"),
      std::string::npos);
  EXPECT_NE(error_of([&] { store.get_run("zz"); }).find("not a run id"), std::string::npos);
  EXPECT_NE(error_of([&] { store.get_run("ffffffff"); }).find("no run 'ffffffff'"),
            std::string::npos);
}

TEST(Store, RegistryNumbersVersionsAndKeepsOneProductionVersion) {
  const fs::path dir = scratch_dir("registry");
  Store store(dir);
  const std::string bare = store.create_run("e");
  EXPECT_NE(error_of([&] { store.register_model("spam", bare); }).find("has no artifacts"),
            std::string::npos);
  std::vector<std::string> runs;
  for (int i = 0; i < 2; ++i) {
    runs.push_back(store.create_run("e"));
    fs::create_directories(dir / "m");
    write_text(dir / "m" / "model.onnx", fmt::format("weights {}", i));
    store.log_artifact(runs.back(), dir / "m", "model");
  }
  EXPECT_EQ(store.register_model("spam", runs[0]).version, 1);
  EXPECT_EQ(store.register_model("spam", runs[1], "bigger").version, 2);
  store.set_stage("spam", 1, Stage::Production);
  EXPECT_EQ(store.get_model_version("spam", {}, Stage::Production).version, 1);
  const ModelVersion v2 = store.set_stage("spam", 2, Stage::Production);
  EXPECT_EQ(v2.stage, Stage::Production);
  EXPECT_EQ(store.get_model_version("spam", 1).stage, Stage::Archived);
  EXPECT_EQ(store.get_model_version("spam").version, 2);
  const ModelVersion prod = store.get_model_version("spam", {}, Stage::Production);
  EXPECT_EQ(prod.run_id, runs[1]);
  const auto files = store.copy_model_files(prod, dir / "deployed");
  ASSERT_EQ(files.size(), 1u);
  std::ifstream f(dir / "deployed" / "model" / "model.onnx");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(f), {}), "weights 1");
  EXPECT_NE(error_of([&] {
              store.get_model_version("spam", {}, Stage::Staging);
            }).find("no version in stage staging (versions: 1 (archived), 2 (production))"),
            std::string::npos);
  EXPECT_NE(error_of([&] { store.set_stage("spam", 7, Stage::Staging); }).find("no version 7"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_stage("prod"); }).find("none, staging, production, archived"),
            std::string::npos);
  EXPECT_EQ(store.list_model_versions().size(), 2u);
}

// Two processes log into one database at the same time; every point of both arrives.
TEST(Store, TwoProcessesWritingAtOnceLoseNothing) {
  const fs::path dir = scratch_dir("concurrent");
  Store{dir};  // create the schema first so both children only write rows
  constexpr int kFlushes = 150, kPerFlush = 20;
  pid_t pids[2];
  for (int c = 0; c < 2; ++c) {
    pids[c] = ::fork();
    ASSERT_GE(pids[c], 0);
    if (pids[c] == 0) {
      int rc = 0;
      try {
        auto run = Run::start({.experiment = "concurrent",
                               .name = fmt::format("child{}", c),
                               .dir = dir,
                               .flush_interval_ms = 0});
        for (int i = 0; i < kFlushes; ++i) {
          for (int j = 0; j < kPerFlush; ++j)
            run->log_metric("loss", 1.0 / (1 + i * kPerFlush + j), i * kPerFlush + j);
          run->log_param(fmt::format("p{}", i % 5), fmt::format("{}", i));
        }
        run->end();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", c, e.what());
        rc = 1;
      }
      ::_exit(rc);
    }
  }
  for (pid_t p : pids) {
    int status = 0;
    ::waitpid(p, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  Store store(dir);
  const auto runs = store.list_runs();
  ASSERT_EQ(runs.size(), 2u);
  for (const RunRecord& r : runs) {
    EXPECT_EQ(r.info.status, RunStatus::Finished);
    EXPECT_EQ(store.get_run(r.info.id).history("loss").size(),
              static_cast<size_t>(kFlushes * kPerFlush));
    EXPECT_EQ(r.params.size(), 5u);
  }
  EXPECT_EQ(RawDb(store.database_path()).scalar("PRAGMA integrity_check"), "ok");
}

// Processes that open a directory with no database yet, all at once (the ranks of an mpirun job,
// two jobs started together): each creates or finds the schema and logs its run; none sees "the
// database is locked" however the creation interleaves. Several fresh directories widen the window.
TEST(Store, ProcessesCreatingOneDatabaseAtOnceAllSucceed) {
  constexpr int kDirs = 8, kProcs = 4;
  for (int d = 0; d < kDirs; ++d) {
    const fs::path dir = scratch_dir(fmt::format("create_race{}", d));
    fs::remove_all(dir);
    pid_t pids[kProcs];
    for (int c = 0; c < kProcs; ++c) {
      pids[c] = ::fork();
      ASSERT_GE(pids[c], 0);
      if (pids[c] == 0) {
        int rc = 0;
        try {
          auto run = Run::start({.experiment = "race", .dir = dir, .flush_interval_ms = 0});
          run->log_metric("loss", 1.0, 0);
          run->end();
        } catch (const std::exception& e) {
          std::fprintf(stderr, "process %d: %s\n", c, e.what());
          rc = 1;
        }
        ::_exit(rc);
      }
    }
    for (pid_t p : pids) {
      int status = 0;
      ::waitpid(p, &status, 0);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "directory " << d;
    }
    Store store(dir);
    EXPECT_EQ(store.list_runs().size(), static_cast<size_t>(kProcs));
    EXPECT_EQ(RawDb(store.database_path()).scalar("PRAGMA integrity_check"), "ok");
  }
}

// kill -9 of a process in the middle of logging: its run reads as killed with the points it had
// committed, the finished run beside it is intact, and the database passes integrity_check.
TEST(Store, KillNineOfAWriterLeavesAConsistentDatabase) {
  const fs::path dir = scratch_dir("kill9");
  Store{dir};
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    try {
      auto done = Run::start({.experiment = "k", .name = "done", .dir = dir});
      for (int i = 0; i < 100; ++i) done->log_metric("loss", 1.0 / (i + 1), i);
      done->end();
      auto run =
          Run::start({.experiment = "k", .name = "victim", .dir = dir, .flush_interval_ms = 0});
      for (int64_t i = 0;; ++i) run->log_metric("loss", 1.0 / static_cast<double>(i + 1), i);
    } catch (...) {
    }
    ::_exit(3);
  }
  // Wait until the victim has committed some points, then kill it mid-write.
  Store reader(dir, {.read_only = true});
  size_t seen = 0;
  for (int tries = 0; tries < 2000 && seen < 200; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (const RunRecord& r : reader.list_runs())
      if (r.info.name == "victim") {
        seen = reader.get_run(r.info.id).history("loss").size();
      }
  }
  ASSERT_GE(seen, 200u) << "the child never logged";
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));

  // Read-only: the dead run already reads as killed; a writable open records it.
  for (const RunRecord& r : reader.list_runs())
    if (r.info.name == "victim") {
      EXPECT_EQ(r.info.status, RunStatus::Killed);
    }
  Store store(dir);
  EXPECT_EQ(RawDb(store.database_path()).scalar("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(RawDb(store.database_path()).scalar("SELECT status FROM runs WHERE name = 'victim'"),
            "killed");
  for (const RunRecord& r : store.list_runs()) {
    const RunRecord full = store.get_run(r.info.id);
    if (r.info.name == "done") {
      EXPECT_EQ(r.info.status, RunStatus::Finished);
      EXPECT_EQ(full.history("loss").size(), 100u);
    } else {
      EXPECT_EQ(r.info.status, RunStatus::Killed);
      EXPECT_GE(full.history("loss").size(), seen);
      EXPECT_GT(r.info.end_ms, 0);
    }
  }
}

TEST(Store, UpgradesASchemaVersion1Database) {
  const fs::path dir = scratch_dir("upgrade");
  std::ifstream sql(fs::path(KILN_TEST_DATA_DIR) / "track" / "schema_v1.sql");
  {
    RawDb raw(dir / "kiln.db");
    ASSERT_EQ(raw.exec(std::string(std::istreambuf_iterator<char>(sql), {})), SQLITE_OK);
    ASSERT_EQ(raw.scalar("PRAGMA user_version"), "1");
  }
  Store store(dir);
  EXPECT_EQ(store.schema_version(), 2);
  EXPECT_EQ(RawDb(dir / "kiln.db").scalar("PRAGMA user_version"), "2");
  const RunRecord old = store.get_run("0123456789ab");
  EXPECT_EQ(old.info.status, RunStatus::Finished);  // another host's run is never reaped
  EXPECT_EQ(old.info.experiment, "legacy");
  EXPECT_EQ(old.params.at("lr"), "0.001");
  EXPECT_EQ(old.tags.at("note"), "made by schema 1");
  ASSERT_EQ(old.history("loss").size(), 3u);
  EXPECT_EQ(old.history("loss")[2].epoch, -1);  // version 1 had no epochs
  EXPECT_EQ(old.final_metrics.at("loss"), 0.25);
  EXPECT_EQ(old.final_metrics.at("accuracy"), 0.875);
  // The new tables work on the upgraded file.
  write_text(dir / "model.onnx", "onnx");
  store.log_artifact(old.info.id, dir / "model.onnx");
  EXPECT_EQ(store.register_model("legacy-model", old.info.id).version, 1);
  EXPECT_EQ(store.list_runs({.filter = "metrics.loss < 0.3"}).size(), 1u);
}

TEST(Store, NewerSchemaIsAClearError) {
  const fs::path dir = scratch_dir("newer");
  Store{dir};
  RawDb(dir / "kiln.db").exec("PRAGMA user_version = 99");
  EXPECT_NE(error_of([&] { Store s(dir); }).find("schema version 99 is newer than this Kiln's (2)"),
            std::string::npos);
}

TEST(Store, NotASqliteFileIsAClearError) {
  const fs::path dir = scratch_dir("garbage");
  write_text(dir / "kiln.db",
             std::string("this is not a database, just text\n") + std::string(200, 'x'));
  const std::string msg = error_of([&] { Store s(dir); });
  EXPECT_NE(msg.find("kiln.db"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a SQLite database"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { Store s(dir, {.read_only = true}); }).find("not a SQLite database"),
            std::string::npos);
}

// Another process holds the write lock: the run's start fails with a clear error, and points
// logged while it holds the lock stay buffered and are written once it lets go.
TEST(Store, LockedDatabaseGivesAClearErrorAndKeepsBufferedPoints) {
  const fs::path dir = scratch_dir("locked");
  auto run = Run::start({.experiment = "locked", .dir = dir, .flush_interval_ms = 0});
  {
    Store slow(dir, {.busy_timeout_ms = 100});
    RawDb holder(dir / "kiln.db");
    ASSERT_EQ(holder.exec("BEGIN EXCLUSIVE"), SQLITE_OK);
    EXPECT_THROW(slow.create_run("locked"), DatabaseLocked);
    const std::string msg = error_of([&] { slow.create_run("locked"); });
    EXPECT_NE(msg.find("locked by another process (waited 100 ms"), std::string::npos) << msg;
    const MetricPoint p{.key = "loss", .value = 1, .step = 1};
    EXPECT_NE(error_of([&] { slow.log_metrics(run->id(), std::span(&p, 1)); }).find("locked"),
              std::string::npos);
    holder.exec("COMMIT");
  }
  for (int i = 0; i < 5; ++i) run->log_metric("loss", 1.0 / (i + 1), i);
  run->end();
  EXPECT_EQ(Store(dir).get_run(run->id()).history("loss").size(), 5u);
}

TEST(Store, RunBuffersWhileLockedAndWritesAfter) {
  const fs::path dir = scratch_dir("buffered");
  // A run whose writes give up after 50 ms.
  auto run = Run::start(
      {.experiment = "buffered", .dir = dir, .flush_interval_ms = 1000000, .busy_timeout_ms = 50});
  RawDb holder(dir / "kiln.db");
  ASSERT_EQ(holder.exec("BEGIN EXCLUSIVE"), SQLITE_OK);
  for (int i = 0; i < 10; ++i) run->log_metric("loss", 1.0 / (i + 1), i);
  EXPECT_FALSE(run->flush());  // locked: kept
  holder.exec("COMMIT");
  EXPECT_TRUE(run->flush());
  run->end();
  EXPECT_EQ(Store(dir).get_run(run->id()).history("loss").size(), 10u);
}

// The lock outlasts the run: end() keeps the last points and the status in <dir>/pending/, and the
// next writable open applies them, so the run is never lost.
TEST(Store, RunEndingWhileLockedIsKeptAndAppliedAtTheNextOpen) {
  const fs::path dir = scratch_dir("pending");
  auto run = Run::start(
      {.experiment = "pending", .dir = dir, .flush_interval_ms = 1000000, .busy_timeout_ms = 50});
  run->log_metric("loss", 0.5, 1, 1);
  ASSERT_TRUE(run->flush());
  {
    RawDb holder(dir / "kiln.db");
    ASSERT_EQ(holder.exec("BEGIN EXCLUSIVE"), SQLITE_OK);
    for (int i = 2; i <= 4; ++i) run->log_metric("loss", 1.0 / i, i, i);
    run->end(RunStatus::Finished);  // no throw: kept aside
    EXPECT_TRUE(run->ended());
    ASSERT_TRUE(fs::exists(dir / "pending"));
    EXPECT_EQ(std::distance(fs::directory_iterator(dir / "pending"), fs::directory_iterator()), 1);
    holder.exec("COMMIT");
  }
  Store store(dir);
  const RunRecord r = store.get_run(run->id());
  EXPECT_EQ(r.info.status, RunStatus::Finished);
  EXPECT_EQ(r.history("loss").size(), 4u);
  EXPECT_EQ(r.final_metrics.at("loss"), 0.25);
  EXPECT_TRUE(fs::is_empty(dir / "pending"));
}

TEST(Store, ReadOnlyStoreReadsButRefusesWrites) {
  const fs::path dir = scratch_dir("readonly");
  std::string id;
  {
    Store s(dir);
    id = s.create_run("ro");
    s.end_run(id, RunStatus::Finished);
  }
  Store ro(dir, {.read_only = true});
  EXPECT_EQ(ro.list_runs().size(), 1u);
  const std::string msg = error_of([&] { ro.create_run("ro"); });
  EXPECT_NE(msg.find("the database is read-only (opened with read_only)"), std::string::npos)
      << msg;
  EXPECT_EQ(Store(dir).get_run(id).info.status, RunStatus::Finished);
  EXPECT_NE(error_of([&] {
              Store s(scratch_dir("absent"), {.read_only = true});
            }).find("no tracking database here"),
            std::string::npos);
}

TEST(Run, DestructorMarksARunFailedDuringAnException) {
  const fs::path dir = scratch_dir("unwind");
  std::string failed, finished;
  try {
    auto run = Run::start({.experiment = "u", .dir = dir});
    failed = run->id();
    throw std::runtime_error("training blew up");
  } catch (const std::runtime_error&) {
  }
  {
    auto run = Run::start({.experiment = "u", .dir = dir});
    finished = run->id();
  }
  Store s(dir);
  EXPECT_EQ(s.get_run(failed).info.status, RunStatus::Failed);
  EXPECT_EQ(s.get_run(finished).info.status, RunStatus::Finished);
}

}  // namespace
}  // namespace kiln::track
