#include "kiln/track/ui_server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <mutex>
#include <sstream>

#include "kiln/tensor/error.h"
#include "kiln/track/html_util.h"
#include "kiln/track/report.h"
#include "kiln/track/store.h"

namespace kiln::track {

namespace fs = std::filesystem;

namespace {

std::mutex g_server_mu;
httplib::Server* g_server = nullptr;

constexpr const char* kHtml = "text/html; charset=utf-8";

// "a,b,,c" -> {"a", "b", "c"}
std::vector<std::string> split_ids(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string id;
  while (std::getline(in, id, ','))
    if (!id.empty()) out.push_back(id);
  return out;
}

std::string error_page(const std::string& message) {
  return html_page("Error",
                   "<h1>Something is wrong</h1><div class=\"error\">" + html_escape(message) +
                       "</div><p><a href=\"/\">Back to the runs</a></p>",
                   false, "", "");
}

}  // namespace

void serve_ui(const fs::path& dir, const UiOptions& options) {
  httplib::Server server;
  const HtmlOptions html{.single_file = false, .subtitle = (dir / Store::kDatabaseName).string()};
  // Each request opens the database read-only: the UI never blocks a training run's writes.
  auto open = [dir] { return Store(dir, {.read_only = true, .busy_timeout_ms = 2000}); };

  server.Get("/", [&](const httplib::Request& req, httplib::Response& res) {
    const std::string filter = req.get_param_value("filter");
    const std::string experiment = req.get_param_value("experiment");
    std::vector<RunRecord> runs;
    std::string error;
    try {
      runs = open().list_runs({.experiment = experiment, .filter = filter});
    } catch (const std::exception& e) {
      error = e.what();
      if (!filter.empty()) {
        try {
          runs = open().list_runs({.experiment = experiment});
        } catch (const std::exception&) {
        }
      }
    }
    res.set_content(runs_page(runs, html, filter, error), kHtml);
  });
  server.Get(R"(/run/([0-9a-f]+))", [&](const httplib::Request& req, httplib::Response& res) {
    res.set_content(run_page(open().get_run(req.matches[1]), html), kHtml);
  });
  server.Get("/compare", [&](const httplib::Request& req, httplib::Response& res) {
    Store store = open();
    std::vector<RunRecord> runs;
    for (const std::string& id : split_ids(req.get_param_value("runs")))
      runs.push_back(store.get_run(id));
    res.set_content(compare_page(runs, html), kHtml);
  });
  server.Get("/models", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(models_page(open().list_model_versions(), html), kHtml);
  });
  server.Get("/api/runs", [&](const httplib::Request& req, httplib::Response& res) {
    json::Value out = json::Value::array();
    for (const RunRecord& r : open().list_runs({.experiment = req.get_param_value("experiment"),
                              .filter = req.get_param_value("filter")}))
      out.push_back(run_json(r, false));
    res.set_content(out.dump(), "application/json");
  });
  server.Get(R"(/api/run/([0-9a-f]+))", [&](const httplib::Request& req, httplib::Response& res) {
    res.set_content(run_json(open().get_run(req.matches[1]), true).dump(), "application/json");
  });
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string message = "unknown error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          message = e.what();
        } catch (...) {
        }
        res.status = message.find("no run") != std::string::npos ? 404 : 500;
        res.set_content(error_page(message), kHtml);
      });

  int port = options.port;
  if (port == 0) {
    port = server.bind_to_any_port(options.host);
    KILN_CHECK_AS(IOError, port > 0, "kiln ui: cannot listen on {} (no free port)", options.host);
  } else {
    KILN_CHECK_AS(IOError, server.bind_to_port(options.host, port),
                  "kiln ui: cannot listen on {}:{} (in use? try --port 0 for a free one)",
                  options.host, port);
  }
  {
    std::lock_guard lock(g_server_mu);
    g_server = &server;
  }
  if (options.on_listening) options.on_listening(fmt::format("http://{}:{}/", options.host, port));
  server.listen_after_bind();
  std::lock_guard lock(g_server_mu);
  g_server = nullptr;
}

void stop_ui() {
  std::lock_guard lock(g_server_mu);
  if (g_server) g_server->stop();
}

}  // namespace kiln::track
