// The model registry: named models, numbered versions pointing at runs, deployment stages.
#include <fmt/format.h>

#include "kiln/io/atomic_file.h"
#include "kiln/io/safetensors.h"
#include "kiln/tensor/error.h"
#include "kiln/track/hash.h"
#include "kiln/track/store_impl.h"

namespace kiln::track {

namespace fs = std::filesystem;

namespace {

constexpr const char* kVersionColumns =
    "name, version, run_id, stage, created_ms, updated_ms, description";

ModelVersion read_version(SQLite::Statement& q) {
  return ModelVersion{.name = q.getColumn(0).getString(),
                      .version = q.getColumn(1).getInt64(),
                      .run_id = q.getColumn(2).getString(),
                      .stage = parse_stage(q.getColumn(3).getString()),
                      .created_ms = q.getColumn(4).getInt64(),
                      .updated_ms = q.getColumn(5).getInt64(),
                      .description = q.getColumn(6).getString()};
}

void check_name(const std::string& name, const char* op) {
  KILN_CHECK(!name.empty() && name.find_first_of("/\\ \t\n") == std::string::npos,
             "{}: model name '{}' must be non-empty without spaces or slashes", op, name);
}

}  // namespace

ModelVersion Store::register_model(const std::string& name, const std::string& run,
                                   const std::string& description) {
  check_name(name, "register_model");
  const RunRecord r = get_run(run);
  KILN_CHECK(!r.artifacts.empty(),
             "register_model: run {} has no artifacts to register as '{}' (log the model's files "
             "with log_artifact, as the trainers do)",
             r.info.id, name);
  try {
    SQLite::Database& db = *impl_->db;
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement next(db,
                           "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE "
                           "name = ?");
    next.bind(1, name);
    next.executeStep();
    const int64_t version = next.getColumn(0).getInt64();
    const int64_t now = now_ms();
    SQLite::Statement ins(db,
                          "INSERT INTO model_versions(name, version, run_id, stage, created_ms, "
                          "updated_ms, description) VALUES(?, ?, ?, 'none', ?, ?, ?)");
    ins.bind(1, name);
    ins.bind(2, version);
    ins.bind(3, r.info.id);
    ins.bind(4, now);
    ins.bind(5, now);
    ins.bind(6, description);
    ins.exec();
    tx.commit();
    return ModelVersion{.name = name,
                        .version = version,
                        .run_id = r.info.id,
                        .stage = Stage::None,
                        .created_ms = now,
                        .updated_ms = now,
                        .description = description};
  } catch (const std::exception& e) {
    impl_->fail(e, fmt::format("register_model '{}'", name));
  }
}

ModelVersion Store::set_stage(const std::string& name, int64_t version, Stage stage) {
  try {
    SQLite::Database& db = *impl_->db;
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement has(db, "SELECT 1 FROM model_versions WHERE name = ? AND version = ?");
    has.bind(1, name);
    has.bind(2, version);
    KILN_CHECK(has.executeStep(), "set_stage: model '{}' has no version {}", name, version);
    const int64_t now = now_ms();
    if (stage == Stage::Production) {
      SQLite::Statement archive(db,
                                "UPDATE model_versions SET stage = 'archived', updated_ms = ? "
                                "WHERE name = ? AND stage = 'production' AND version != ?");
      archive.bind(1, now);
      archive.bind(2, name);
      archive.bind(3, version);
      archive.exec();
    }
    SQLite::Statement up(db,
                         "UPDATE model_versions SET stage = ?, updated_ms = ? WHERE name = ? "
                         "AND version = ?");
    up.bind(1, std::string(to_string(stage)));
    up.bind(2, now);
    up.bind(3, name);
    up.bind(4, version);
    up.exec();
    tx.commit();
  } catch (const std::exception& e) {
    impl_->fail(e, fmt::format("set_stage of '{}' version {}", name, version));
  }
  return get_model_version(name, version);
}

ModelVersion Store::get_model_version(const std::string& name, std::optional<int64_t> version,
                                      std::optional<Stage> stage) const {
  try {
    SQLite::Database& db = *impl_->db;
    std::string where = "name = ?";
    if (version) where += " AND version = ?";
    if (stage) where += " AND stage = ?";
    SQLite::Statement q(db, fmt::format("SELECT {} FROM model_versions WHERE {} ORDER BY version "
                                        "DESC LIMIT 1",
                                        kVersionColumns, where));
    int i = 1;
    q.bind(i++, name);
    if (version) q.bind(i++, *version);
    if (stage) q.bind(i++, std::string(to_string(*stage)));
    if (q.executeStep()) return read_version(q);
  } catch (const std::exception& e) {
    impl_->fail(e, fmt::format("get_model_version '{}'", name));
  }
  const std::vector<ModelVersion> all = list_model_versions(name);
  KILN_CHECK(!all.empty(), "{}: no registered model '{}'", database_path().string(), name);
  std::vector<std::string> have;
  for (const ModelVersion& v : all)
    have.push_back(fmt::format("{} ({})", v.version, to_string(v.stage)));
  KILN_CHECK(false, "{}: model '{}' has no version{}{} (versions: {})", database_path().string(),
             name, version ? fmt::format(" {}", *version) : "",
             stage ? fmt::format(" in stage {}", to_string(*stage)) : "", fmt::join(have, ", "));
  return {};
}

std::vector<ModelVersion> Store::list_model_versions(const std::string& name) const {
  try {
    SQLite::Statement q(*impl_->db,
                        fmt::format("SELECT {} FROM model_versions {} ORDER BY name, version",
                                    kVersionColumns, name.empty() ? "" : "WHERE name = ?"));
    if (!name.empty()) q.bind(1, name);
    std::vector<ModelVersion> out;
    while (q.executeStep()) out.push_back(read_version(q));
    return out;
  } catch (const std::exception& e) {
    impl_->fail(e, "listing registered models");
  }
}

std::vector<fs::path> Store::copy_model_files(const ModelVersion& v, const fs::path& out) const {
  const RunRecord r = get_run(v.run_id);
  std::vector<fs::path> written;
  for (const ArtifactInfo& a : r.artifacts) {
    const fs::path dest = out / fs::path(a.path).lexically_normal();
    KILN_CHECK(dest.lexically_relative(out).string().rfind("..", 0) != 0,
               "copy_model_files: artifact path '{}' leaves {}", a.path, out.string());
    const std::string bytes = read_file_bytes(artifact_file(a));
    KILN_CHECK_AS(IOError, sha256_hex(bytes) == a.sha256,
                  "copy_model_files: stored artifact {} of run {} does not match its SHA-256 {} "
                  "(the file under {} was changed)",
                  a.path, r.info.id, a.sha256, (dir() / "artifacts").string());
    fs::create_directories(dest.parent_path());
    write_file_atomic(dest.string(), bytes);
    written.push_back(dest);
  }
  return written;
}

}  // namespace kiln::track
