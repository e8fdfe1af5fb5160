#pragma once
// Helpers shared by the kiln_train tests.
#include <unistd.h>

#include <filesystem>
#include <string>

namespace kiln::testing_util {

/// A path inside a per-process scratch directory under the system temp dir; the directory (and
/// everything the tests wrote there) is removed when the test binary exits.
inline std::string scratch_path(const std::string& name) {
  struct Dir {
    std::filesystem::path path;
    Dir() {
      path = std::filesystem::temp_directory_path() /
             ("kiln_train_test_" + std::to_string(::getpid()));
      std::filesystem::create_directories(path);
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static Dir dir;
  std::filesystem::path p = dir.path / name;
  std::filesystem::create_directories(p.parent_path());
  return p.string();
}

}  // namespace kiln::testing_util
