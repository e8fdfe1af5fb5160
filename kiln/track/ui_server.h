#pragma once
// `kiln ui`: a small web application over a tracking directory, served by cpp-httplib (Debian's
// libcpp-httplib-dev) on 127.0.0.1 by default. Pages (report.h renders them):
//   /                      runs table (?filter=EXPR, ?experiment=NAME)
//   /run/<id>              a run's parameters, metrics, curves, confusion matrices, data, artifacts
//   /compare?runs=ID,ID    several runs side by side, curves overlaid
//   /models                the registry with stages
//   /api/runs              the runs as JSON (kiln runs list --json); /api/run/<id> one run in full
// The database is opened read-only per request, so training processes keep writing while the UI
// is up and every page shows the latest state.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace kiln::track {

struct UiOptions {
  std::string host = "127.0.0.1";
  /// 0: any free port (the one chosen is passed to on_listening).
  int port = 8080;
  /// Called once the socket listens, with the URL ("http://127.0.0.1:8080/").
  std::function<void(const std::string& url)> on_listening = nullptr;
};

/// Serves until stop_ui() is called or the process ends; throws kiln::IOError when it cannot
/// bind (naming host and port).
void serve_ui(const std::filesystem::path& tracking_dir, const UiOptions& options = {});
/// Makes serve_ui() return (safe from another thread or a signal-watching thread).
void stop_ui();

}  // namespace kiln::track
