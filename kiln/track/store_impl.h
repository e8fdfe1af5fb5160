#pragma once
// Private to kiln/track's .cpp files: the Store's state (includes SQLiteCpp; never include this
// from a public header).
#include <SQLiteCpp/SQLiteCpp.h>

#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "kiln/track/store.h"

namespace kiln::track {

struct Store::Impl {
  std::filesystem::path dir;
  StoreOptions options;
  std::unique_ptr<SQLite::Database> db;
  int schema_version = 0;

  std::filesystem::path database_path() const;
  /// Rethrows `e` as kiln::IOError naming the database, what was being done and the rule.
  [[noreturn]] void fail(const std::exception& e, std::string_view doing) const;
  /// Throws kiln::Error when `run` is not in the database.
  void require_run(const std::string& run) const;
  /// INSERT OR REPLACE of (run, key, value) rows into params or tags, one transaction.
  void put_pairs(const char* table, const std::string& run,
                 const std::map<std::string, std::string>& kv, const char* doing);
};

/// Field 22 of /proc/<pid>/stat: the process's start time in clock ticks ("" when no such process).
std::string process_start_time(int64_t pid);

}  // namespace kiln::track
