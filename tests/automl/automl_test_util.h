#pragma once
// What the automl suites share: a fresh scratch directory and the message of a kiln::Error.
#include <filesystem>
#include <functional>
#include <string>

#include "kiln/tensor/error.h"

namespace kiln::automl::test_util {

/// An empty directory kiln_automl_<name> under the temporary directory.
inline std::filesystem::path fresh_dir(const std::string& name) {
  const std::filesystem::path d = std::filesystem::temp_directory_path() / ("kiln_automl_" + name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

/// The message of the kiln::Error `f` throws, or "(no error)".
inline std::string what(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace kiln::automl::test_util
