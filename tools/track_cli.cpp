// `kiln runs`, `kiln models` and `kiln ui`: the tracking store (kiln/track) from the command line.
//
//   kiln runs list [--experiment E] [--filter "metrics.val_accuracy > 0.9"] [--json]
//   kiln runs show RUN [--json]
//   kiln runs compare RUN RUN... [--json]
//   kiln runs report RUN... --out report.html
//   kiln models register RUN --name NAME [--description TEXT] [--json]
//   kiln models promote NAME VERSION --stage none|staging|production|archived
//   kiln models get NAME [--version N | --stage STAGE] --out DIR [--json]
//   kiln models list [NAME] [--json]
//   kiln ui [--port 8080] [--host 127.0.0.1]
//
// The store is --track DIR (kiln_main.cpp), else $KILN_TRACKING_DIR, else ./kiln-runs. RUN is a
// run id or a unique prefix of one (4+ hex digits). This file is argument handling and text
// layout only.
#include <fmt/format.h>
#include <signal.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "kiln/io/atomic_file.h"
#include "kiln/io/safetensors.h"
#include "kiln/tensor/error.h"
#include "kiln/track/report.h"
#include "kiln/track/run.h"
#include "kiln/track/store.h"
#include "kiln/track/ui_server.h"

namespace kiln::tools {

namespace {

namespace fs = std::filesystem;

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Positional arguments, --name value options and bare --flags.
struct Parsed {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
  bool has(const std::string& k) const { return options.count(k) != 0; }
  std::string get(const std::string& k, const std::string& fallback = "") const {
    auto it = options.find(k);
    return it == options.end() ? fallback : it->second;
  }
};

Parsed parse(std::span<const std::string> args, std::initializer_list<std::string_view> flags,
             std::initializer_list<std::string_view> valued) {
  Parsed p;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) {
      p.positional.push_back(a);
      continue;
    }
    if (std::find(flags.begin(), flags.end(), a) != flags.end()) {
      p.options[a] = "";
    } else if (std::find(valued.begin(), valued.end(), a) != valued.end()) {
      if (i + 1 >= args.size()) throw UsageError(fmt::format("{} needs a value", a));
      p.options[a] = args[++i];
    } else {
      throw UsageError(fmt::format("unknown option '{}'", a));
    }
  }
  return p;
}

std::string need(const Parsed& p, const std::string& k) {
  if (!p.has(k)) throw UsageError(fmt::format("{} is required", k));
  return p.options.at(k);
}

track::Store open_read() {
  return track::Store(track::tracking_dir(), {.read_only = true});
}
track::Store open_write() {
  return track::Store(track::tracking_dir());
}

std::string value_text(double v) {
  if (std::isnan(v)) return "NaN";
  return fmt::format("{:.4g}", v);
}

// Per-epoch metric keys worth a column (not per-step "batch/..." ones), accuracy-like first.
std::vector<std::string> summary_keys(const std::vector<track::RunRecord>& runs, size_t max) {
  std::set<std::string> keys;
  for (const auto& r : runs)
    for (const auto& [k, v] : r.final_metrics)
      if (k.rfind("batch/", 0) != 0 && k != "learning_rate") keys.insert(k);
  std::vector<std::string> out(keys.begin(), keys.end());
  std::stable_sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return (a.find("acc") == std::string::npos) < (b.find("acc") == std::string::npos);
  });
  if (out.size() > max) out.resize(max);
  return out;
}

// A text table: columns padded to their widest cell.
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (w.size() <= i) w.push_back(0);
      w[i] = std::max(w[i], r[i].size());
    }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i)
      line += fmt::format("{:<{}}", r[i], i + 1 < r.size() ? w[i] + 2 : 0);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

int runs_list(const Parsed& p) {
  const auto runs =
      open_read().list_runs({.experiment = p.get("--experiment"), .filter = p.get("--filter")});
  if (p.has("--json")) {
    json::Value out = json::Value::array();
    for (const auto& r : runs) out.push_back(track::run_json(r, false));
    fmt::print("{}\n", out.dump());
    return 0;
  }
  if (runs.empty()) {
    fmt::print("no runs in {}\n", (track::tracking_dir() / track::Store::kDatabaseName).string());
    return 0;
  }
  const auto keys = summary_keys(runs, 5);
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head = {"RUN",    "EXPERIMENT",    "NAME",
                                   "STATUS", "STARTED (UTC)", "DURATION"};
  for (const auto& k : keys) head.push_back(k);
  rows.push_back(head);
  for (const auto& r : runs) {
    std::vector<std::string> row = {
        r.info.id,
        r.info.experiment,
        r.info.name,
        std::string(track::to_string(r.info.status)),
        track::format_time(r.info.start_ms),
        r.info.end_ms ? track::format_duration(r.info.end_ms - r.info.start_ms) : "-"};
    for (const auto& k : keys) {
      auto it = r.final_metrics.find(k);
      row.push_back(it == r.final_metrics.end() ? "" : value_text(it->second));
    }
    rows.push_back(row);
  }
  fmt::print("{}", table(rows));
  return 0;
}

int runs_show(const Parsed& p) {
  if (p.positional.size() != 1) throw UsageError("runs show takes one RUN");
  const track::RunRecord r = open_read().get_run(p.positional[0]);
  if (p.has("--json")) {
    fmt::print("{}\n", track::run_json(r, true).dump());
    return 0;
  }
  const auto& i = r.info;
  fmt::print("run         {}{}\n", i.id, i.name.empty() ? "" : "  (" + i.name + ")");
  fmt::print("experiment  {}\nstatus      {}\nstarted     {} UTC\n", i.experiment,
             track::to_string(i.status), track::format_time(i.start_ms));
  if (i.end_ms) fmt::print("duration    {}\n", track::format_duration(i.end_ms - i.start_ms));
  if (!i.git_commit.empty()) fmt::print("git commit  {}\n", i.git_commit);
  fmt::print("command     {}\n", i.command);
  if (!r.params.empty()) {
    fmt::print("\nparameters\n");
    for (const auto& [k, v] : r.params) fmt::print("  {:<28} {}\n", k, v);
  }
  if (!r.final_metrics.empty()) {
    fmt::print("\nfinal metrics\n");
    for (const auto& [k, v] : r.final_metrics) {
      const size_t n = r.history(k).size();
      fmt::print("  {:<28} {:<12} ({} point{})\n", k, value_text(v), n, n == 1 ? "" : "s");
    }
  }
  for (const auto& c : r.confusion) {
    fmt::print("\nconfusion matrix ({}; rows = true, columns = predicted)\n", c.name);
    std::vector<std::vector<std::string>> rows{{""}};
    for (const auto& l : c.labels) rows[0].push_back(l);
    for (size_t t = 0; t < c.counts.size(); ++t) {
      rows.push_back({c.labels[t]});
      for (int64_t n : c.counts[t]) rows.back().push_back(std::to_string(n));
    }
    for (const auto& line : rows) {
      std::string s = "  ";
      for (const auto& cell : line) s += fmt::format("{:>10}", cell);
      fmt::print("{}\n", s);
    }
  }
  if (!r.data.empty()) {
    fmt::print("\ndata\n");
    for (const auto& d : r.data)
      fmt::print("  {:<11} {} ({} bytes, sha256 {})\n", d.role, d.path, d.bytes,
                 d.sha256.substr(0, 16));
  }
  if (!r.artifacts.empty()) {
    fmt::print("\nartifacts\n");
    for (const auto& a : r.artifacts) fmt::print("  {:<40} {:>10} bytes\n", a.path, a.bytes);
  }
  return 0;
}

int runs_compare(const Parsed& p) {
  if (p.positional.size() < 2) throw UsageError("runs compare takes two or more RUNs");
  track::Store store = open_read();
  std::vector<track::RunRecord> runs;
  for (const auto& id : p.positional) runs.push_back(store.get_run(id));
  if (p.has("--json")) {
    json::Value out = json::Value::array();
    for (const auto& r : runs) out.push_back(track::run_json(r, false));
    fmt::print("{}\n", out.dump());
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head = {""};
  for (const auto& r : runs) head.push_back(r.info.id);
  rows.push_back(head);
  std::set<std::string> pkeys, mkeys;
  for (const auto& r : runs) {
    for (const auto& [k, v] : r.params) pkeys.insert(k);
    for (const auto& [k, v] : r.final_metrics) mkeys.insert(k);
  }
  // Differing parameters are marked with '*'.
  rows.push_back({"parameters"});
  for (const auto& k : pkeys) {
    std::vector<std::string> row = {"  " + k};
    std::set<std::string> seen;
    for (const auto& r : runs) {
      auto it = r.params.find(k);
      row.push_back(it == r.params.end() ? "-" : it->second);
      seen.insert(row.back());
    }
    if (seen.size() > 1) row[0] = "* " + k;
    rows.push_back(row);
  }
  rows.push_back({"final metrics"});
  for (const auto& k : mkeys) {
    std::vector<std::string> row = {"  " + k};
    for (const auto& r : runs) {
      auto it = r.final_metrics.find(k);
      row.push_back(it == r.final_metrics.end() ? "-" : value_text(it->second));
    }
    rows.push_back(row);
  }
  fmt::print("{}", table(rows));
  return 0;
}

int runs_report(const Parsed& p) {
  if (p.positional.empty()) throw UsageError("runs report takes one or more RUNs");
  const fs::path out = need(p, "--out");
  track::Store store = open_read();
  std::vector<track::RunRecord> runs;
  for (const auto& id : p.positional) runs.push_back(store.get_run(id));
  const std::string html = track::report_html(runs, store.list_model_versions(),
                                              {.subtitle = store.database_path().string()});
  write_file_atomic(out.string(), html);
  fmt::print("wrote {} ({} run{}, {} KiB)\n", out.string(), runs.size(),
             runs.size() == 1 ? "" : "s", html.size() / 1024);
  return 0;
}

int models_register(const Parsed& p) {
  if (p.positional.size() != 1) throw UsageError("models register takes one RUN");
  track::Store store = open_write();
  const track::ModelVersion v =
      store.register_model(need(p, "--name"), p.positional[0], p.get("--description"));
  if (p.has("--json")) {
    fmt::print("{}\n", track::model_version_json(v).dump());
  } else {
    fmt::print("registered {} version {} (run {})\n", v.name, v.version, v.run_id);
  }
  return 0;
}

int64_t parse_version(const std::string& s) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v < 1)
    throw UsageError(fmt::format("version '{}' is not a positive integer", s));
  return v;
}

int models_promote(const Parsed& p) {
  if (p.positional.size() != 2) throw UsageError("models promote takes NAME VERSION");
  track::Store store = open_write();
  const track::ModelVersion v = store.set_stage(p.positional[0], parse_version(p.positional[1]),
                                                track::parse_stage(need(p, "--stage")));
  fmt::print("{} version {} is now {}\n", v.name, v.version, track::to_string(v.stage));
  return 0;
}

int models_get(const Parsed& p) {
  if (p.positional.size() != 1) throw UsageError("models get takes one NAME");
  if (p.has("--version") && p.has("--stage"))
    throw UsageError("give --version or --stage, not both");
  track::Store store = open_read();
  std::optional<int64_t> version;
  std::optional<track::Stage> stage;
  if (p.has("--version")) version = parse_version(p.get("--version"));
  if (p.has("--stage")) stage = track::parse_stage(p.get("--stage"));
  const track::ModelVersion v = store.get_model_version(p.positional[0], version, stage);
  const auto files = store.copy_model_files(v, need(p, "--out"));
  if (p.has("--json")) {
    json::Value j = track::model_version_json(v);
    json::Value list = json::Value::array();
    for (const auto& f : files) list.push_back(f.string());
    j["files"] = std::move(list);
    fmt::print("{}\n", j.dump());
  } else {
    fmt::print("copied {} version {} ({}, run {}): {} file{} into {}\n", v.name, v.version,
               track::to_string(v.stage), v.run_id, files.size(), files.size() == 1 ? "" : "s",
               p.get("--out"));
  }
  return 0;
}

int models_list(const Parsed& p) {
  if (p.positional.size() > 1) throw UsageError("models list takes at most one NAME");
  const auto versions =
      open_read().list_model_versions(p.positional.empty() ? "" : p.positional[0]);
  if (p.has("--json")) {
    json::Value out = json::Value::array();
    for (const auto& v : versions) out.push_back(track::model_version_json(v));
    fmt::print("{}\n", out.dump());
    return 0;
  }
  if (versions.empty()) {
    fmt::print("no registered models\n");
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"MODEL", "VERSION", "STAGE", "RUN", "REGISTERED (UTC)", "DESCRIPTION"}};
  for (const auto& v : versions) {
    rows.push_back({v.name, std::to_string(v.version), std::string(track::to_string(v.stage)),
                    v.run_id, track::format_time(v.created_ms), v.description});
  }
  fmt::print("{}", table(rows));
  return 0;
}

constexpr const char* kRunsUsage =
    "usage: kiln runs list [--experiment NAME] [--filter EXPR] [--json]\n"
    "       kiln runs show RUN [--json]\n"
    "       kiln runs compare RUN RUN... [--json]\n"
    "       kiln runs report RUN... --out report.html\n"
    "\n"
    "RUN is a run id or a unique prefix of one. EXPR: clauses joined by 'and', e.g.\n"
    "  \"metrics.val_accuracy > 0.9 and params.optimizer.lr = 0.001 and status = finished\"\n"
    "(metrics.<key> is the key's final value; also params.<key>, tags.<key>, status, name,\n"
    "experiment, id; operators = != < <= > >=).\n"
    "The store: --track DIR, else $KILN_TRACKING_DIR, else ./kiln-runs.\n";

constexpr const char* kModelsUsage =
    "usage: kiln models register RUN --name NAME [--description TEXT] [--json]\n"
    "       kiln models promote NAME VERSION --stage none|staging|production|archived\n"
    "       kiln models get NAME [--version N | --stage STAGE] --out DIR [--json]\n"
    "       kiln models list [NAME] [--json]\n"
    "\n"
    "A version holds its run's artifacts (the model directory the trainer saved). Promoting a\n"
    "version to production archives the previous production version. get copies the files of\n"
    "the version asked for (default: the newest) into DIR.\n";

constexpr const char* kUiUsage =
    "usage: kiln ui [--port 8080] [--host 127.0.0.1]\n"
    "\n"
    "Serves the runs table, run pages with metric curves, the compare view and the registry\n"
    "over the tracking store (--track DIR, $KILN_TRACKING_DIR or ./kiln-runs). --port 0 picks a\n"
    "free port. Stop it with Ctrl-C.\n";

template <typename F>
int with_usage(const char* usage, const char* name, std::span<const std::string> args, F&& f) {
  if (args.empty()) {
    fmt::print(stderr, "{}", usage);
    return 2;
  }
  if (args[0] == "--help" || args[0] == "-h" ||
      std::find(args.begin(), args.end(), "--help") != args.end()) {
    fmt::print("{}", usage);
    return 0;
  }
  try {
    return f();
  } catch (const UsageError& e) {
    fmt::print(stderr, "kiln {}: {}\n{}", name, e.what(), usage);
    return 2;
  }
}

}  // namespace

int runs_main(std::span<const std::string> args) {
  return with_usage(kRunsUsage, "runs", args, [&] {
    const std::string sub = args[0];
    const auto rest = args.subspan(1);
    if (sub == "list") return runs_list(parse(rest, {"--json"}, {"--experiment", "--filter"}));
    if (sub == "show") return runs_show(parse(rest, {"--json"}, {}));
    if (sub == "compare") return runs_compare(parse(rest, {"--json"}, {}));
    if (sub == "report") return runs_report(parse(rest, {}, {"--out"}));
    throw UsageError(fmt::format("unknown subcommand '{}' (list, show, compare, report)", sub));
  });
}

int models_main(std::span<const std::string> args) {
  return with_usage(kModelsUsage, "models", args, [&] {
    const std::string sub = args[0];
    const auto rest = args.subspan(1);
    if (sub == "register")
      return models_register(parse(rest, {"--json"}, {"--name", "--description"}));
    if (sub == "promote") return models_promote(parse(rest, {}, {"--stage"}));
    if (sub == "get") return models_get(parse(rest, {"--json"}, {"--version", "--stage", "--out"}));
    if (sub == "list") return models_list(parse(rest, {"--json"}, {}));
    throw UsageError(fmt::format("unknown subcommand '{}' (register, promote, get, list)", sub));
  });
}

int ui_main(std::span<const std::string> args) {
  if (std::find(args.begin(), args.end(), "--help") != args.end()) {
    fmt::print("{}", kUiUsage);
    return 0;
  }
  Parsed p;
  try {
    p = parse(args, {}, {"--port", "--host"});
    if (!p.positional.empty()) throw UsageError("ui takes no positional arguments");
  } catch (const UsageError& e) {
    fmt::print(stderr, "kiln ui: {}\n{}", e.what(), kUiUsage);
    return 2;
  }
  int port = 8080;
  if (p.has("--port")) {
    const std::string s = p.get("--port");
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), port);
    if (ec != std::errc() || ptr != s.data() + s.size() || port < 0 || port > 65535) {
      fmt::print(stderr, "kiln ui: --port wants 0..65535, got '{}'\n{}", s, kUiUsage);
      return 2;
    }
  }
  const fs::path dir = track::tracking_dir();
  // Fail early, with the store's own message, when there is no database to show.
  open_read();
  // SIGINT / SIGTERM stop the server cleanly: a thread waits for them and calls stop_ui().
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread waiter([set] {
    int sig = 0;
    sigwait(&set, &sig);
    track::stop_ui();
  });
  // Wake the waiter whichever way serve_ui ends (a signal already did, or an error).
  struct StopWaiter {
    std::thread& t;
    ~StopWaiter() {
      pthread_kill(t.native_handle(), SIGTERM);
      t.join();
    }
  } stop_waiter{waiter};
  track::serve_ui(dir, {.host = p.get("--host", "127.0.0.1"),
                        .port = port,
                        .on_listening = [&](const std::string& url) {
                          fmt::print("kiln ui: serving {} on {}\n", dir.string(), url);
                          std::fflush(stdout);
                        }});
  return 0;
}

}  // namespace kiln::tools
