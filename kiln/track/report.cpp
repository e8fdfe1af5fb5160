// The HTML pages of report.h: runs table, run page, compare view, registry, one-file report.
#include "kiln/track/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <set>

#include "kiln/track/html_util.h"

namespace kiln::track {

namespace {

constexpr const char* kBatchPrefix = "batch/";

bool is_step_key(const std::string& k) {
  return k.rfind(kBatchPrefix, 0) == 0;
}

std::string run_href(const std::string& id, const HtmlOptions& o) {
  return o.single_file ? "#run-" + id : "/run/" + id;
}

std::string status_pill(RunStatus s) {
  return fmt::format("<span class=\"pill status-{0}\">{0}</span>", to_string(s));
}

std::string stage_pill(Stage s) {
  return fmt::format("<span class=\"pill stage-{0}\">{0}</span>", to_string(s));
}

std::string fmt_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (v == std::round(v) && std::abs(v) < 1e9) return fmt::format("{:.0f}", v);
  return fmt::format("{:.4g}", v);
}

std::string run_label(const RunRecord& r) {
  return r.info.name.empty() ? r.info.id : r.info.name;
}

int64_t duration_ms(const RunInfo& i) {
  return (i.end_ms ? i.end_ms : (i.status == RunStatus::Running ? now_ms() : i.start_ms)) -
         i.start_ms;
}

// Per-epoch metric keys in a readable order: accuracy-like first, then losses, then the rest.
std::vector<std::string> epoch_keys(const std::vector<const RunRecord*>& runs) {
  std::set<std::string> keys;
  for (const RunRecord* r : runs)
    for (const auto& [k, v] : r->final_metrics)
      if (!is_step_key(k)) keys.insert(k);
  auto rank = [](const std::string& k) {
    const std::string base = k.rfind("val_", 0) == 0 ? k.substr(4) : k;
    if (base.find("acc") != std::string::npos) return 0;
    if (base == "loss") return 1;
    if (k.rfind("eval/", 0) == 0) return 2;
    if (base == "learning_rate") return 4;
    return 3;
  };
  std::vector<std::string> out(keys.begin(), keys.end());
  std::stable_sort(out.begin(), out.end(), [&](const std::string& a, const std::string& b) {
    return rank(a) != rank(b) ? rank(a) < rank(b) : a < b;
  });
  return out;
}

// The family a key is charted in: "val_loss" -> "loss"; "batch/val_x" stays apart.
std::string family(const std::string& k) {
  return k.rfind("val_", 0) == 0 ? k.substr(4) : k;
}

// A run's curves: one chart per family (train solid, validation dashed) for per-epoch keys, and
// one per per-step key.
std::string run_charts(const RunRecord& r) {
  std::map<std::string, std::vector<std::string>> families;  // family -> keys
  std::set<std::string> step_keys;
  for (const MetricPoint& p : r.metrics) {
    if (p.epoch >= 0) {
      auto& v = families[family(p.key)];
      if (std::find(v.begin(), v.end(), p.key) == v.end()) v.push_back(p.key);
    } else {
      step_keys.insert(p.key);
    }
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> ordered(families.begin(),
                                                                        families.end());
  auto rank = [](const std::string& f) {
    return f == "loss" ? 0 : f.find("acc") != std::string::npos ? 1 : f == "learning_rate" ? 3 : 2;
  };
  std::stable_sort(ordered.begin(), ordered.end(),
                   [&](const auto& a, const auto& b) { return rank(a.first) < rank(b.first); });
  std::string epochs, steps;
  for (auto& [fam, keys] : ordered) {
    std::sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) {
      return (a.rfind("val_", 0) == 0) < (b.rfind("val_", 0) == 0);
    });
    std::vector<ChartSeries> series;
    for (const std::string& k : keys) {
      ChartSeries s{.label = k,
                    .run_id = r.info.id,
                    .key = k,
                    .color = series_color(k.rfind("val_", 0) == 0 ? 1 : 0),
                    .dashed = k.rfind("val_", 0) == 0,
                    .points = {}};
      for (const MetricPoint& p : r.metrics)
        if (p.key == k && p.epoch >= 0)
          s.points.emplace_back(static_cast<double>(p.epoch), p.value);
      series.push_back(std::move(s));
    }
    epochs += svg_chart(fam, "epoch", series);
  }
  for (const std::string& k : step_keys) {
    ChartSeries s{.label = k,
                  .run_id = r.info.id,
                  .key = k,
                  .color = series_color(2),
                  .dashed = false,
                  .points = {}};
    for (const MetricPoint& p : r.metrics)
      if (p.key == k) s.points.emplace_back(static_cast<double>(p.step), p.value);
    steps += svg_chart(k, "step", {s});
  }
  std::string out;
  if (!epochs.empty())
    out += "<div class=\"card\"><h2>Metrics by epoch</h2><div class=\"charts\">" + epochs +
           "</div></div>\n";
  if (!steps.empty())
    out += "<div class=\"card\"><h2>Metrics by step</h2><div class=\"charts\">" + steps +
           "</div></div>\n";
  return out;
}

std::string kv_table(const std::map<std::string, std::string>& kv, const char* empty) {
  if (kv.empty()) return fmt::format("<p class=\"hint\">{}</p>", empty);
  std::string out =
      "<table class=\"sortable\"><thead><tr><th>name</th><th>value</th></tr></thead><tbody>";
  for (const auto& [k, v] : kv)
    out +=
        fmt::format("<tr><td>{}</td><td><code>{}</code></td></tr>", html_escape(k), html_escape(v));
  return out + "</tbody></table>";
}

std::string run_body(const RunRecord& r, const HtmlOptions& o) {
  const RunInfo& i = r.info;
  std::string out = fmt::format(
      "<section class=\"run\" id=\"run-{0}\"><h1>{1} <span class=\"id\">{0}</span> {2}</h1>\n",
      html_escape(i.id), html_escape(run_label(r)), status_pill(i.status));
  out += "<div class=\"grid\"><div class=\"card\"><h2>Run</h2><dl class=\"facts\">";
  out += fmt::format("<dt>experiment</dt><dd>{}</dd>", html_escape(i.experiment));
  out += fmt::format("<dt>started</dt><dd>{} UTC</dd>", format_time(i.start_ms));
  out += fmt::format("<dt>duration</dt><dd>{}</dd>", format_duration(duration_ms(i)));
  if (!i.git_commit.empty())
    out += fmt::format("<dt>git commit</dt><dd><code>{}</code></dd>", html_escape(i.git_commit));
  out += fmt::format("<dt>command</dt><dd><code>{}</code></dd>", html_escape(i.command));
  out += fmt::format("<dt>host</dt><dd>{} (pid {})</dd>", html_escape(i.host), i.pid);
  for (const auto& [k, v] : r.tags)
    out += fmt::format("<dt>tag {}</dt><dd>{}</dd>", html_escape(k), html_escape(v));
  out += "</dl></div>\n<div class=\"card\"><h2>Final metrics</h2>";
  if (r.final_metrics.empty()) {
    out += "<p class=\"hint\">no metrics logged</p>";
  } else {
    out += "<table><thead><tr><th>metric</th><th class=\"num\">value</th></tr></thead><tbody>";
    std::vector<const RunRecord*> one{&r};
    std::vector<std::string> keys = epoch_keys(one);
    for (const auto& [k, v] : r.final_metrics)
      if (is_step_key(k)) keys.push_back(k);
    for (const std::string& k : keys)
      out += fmt::format("<tr><td>{}</td><td class=\"num\">{}</td></tr>", html_escape(k),
                         fmt_value(r.final_metrics.at(k)));
    out += "</tbody></table>";
  }
  out += "</div></div>\n<div style=\"height:18px\"></div>\n";
  out += run_charts(r);
  out +=
      "<div class=\"card\"><h2>Parameters</h2>" + kv_table(r.params, "no parameters") + "</div>\n";
  for (const ConfusionMatrix& c : r.confusion) {
    int64_t max = 1;
    for (const auto& row : c.counts)
      for (int64_t n : row) max = std::max(max, n);
    out += fmt::format(
        "<div class=\"card\"><h2>Confusion matrix ({})</h2><table class=\"cm\" "
        "style=\"width:auto\"><thead><tr><th>true \\ predicted</th>",
        html_escape(c.name));
    for (const std::string& l : c.labels) out += "<th>" + html_escape(l) + "</th>";
    out += "</tr></thead><tbody>";
    for (size_t t = 0; t < c.counts.size(); ++t) {
      out += "<tr><th class=\"rowhead\">" + html_escape(c.labels[t]) + "</th>";
      for (size_t p = 0; p < c.counts[t].size(); ++p) {
        const double a = static_cast<double>(c.counts[t][p]) / static_cast<double>(max);
        // Diagonal cells in blue, errors in red, darker with the count.
        const char* rgb = t == p ? "78,121,167" : "225,87,89";
        out += fmt::format("<td style=\"background:rgba({},{:.2f});color:{}\">{}</td>", rgb,
                           0.08 + 0.8 * a, a > 0.55 ? "#fff" : "inherit", c.counts[t][p]);
      }
      out += "</tr>";
    }
    out += "</tbody></table></div>\n";
  }
  if (!r.data.empty()) {
    out +=
        "<div class=\"card\"><h2>Data</h2><table><thead><tr><th>role</th><th>file</th>"
        "<th class=\"num\">bytes</th><th>sha256</th><th>schema</th></tr></thead><tbody>";
    for (const DataFileInfo& d : r.data) {
      out += fmt::format(
          "<tr><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td><code "
          "title=\"{}\">{}…</code></td><td><code>{}</code></td></tr>",
          html_escape(d.role), html_escape(d.path), d.bytes, d.sha256, d.sha256.substr(0, 12),
          html_escape(d.schema_json));
    }
    out += "</tbody></table></div>\n";
  }
  if (!r.artifacts.empty()) {
    out +=
        "<div class=\"card\"><h2>Artifacts</h2><table><thead><tr><th>path</th>"
        "<th class=\"num\">bytes</th><th>sha256</th></tr></thead><tbody>";
    for (const ArtifactInfo& a : r.artifacts) {
      out += fmt::format(
          "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td><code title=\"{}\">{}…"
          "</code></td></tr>",
          html_escape(a.path), a.bytes, a.sha256, a.sha256.substr(0, 12));
    }
    out += "</tbody></table></div>\n";
  }
  (void)o;
  return out + "</section>\n";
}

std::string runs_table(const std::vector<RunRecord>& runs, const HtmlOptions& o) {
  std::vector<const RunRecord*> ptrs;
  for (const RunRecord& r : runs) ptrs.push_back(&r);
  // The learning rate is a setting more than a result: it shows on the run page, not here.
  std::vector<std::string> keys = epoch_keys(ptrs);
  std::erase(keys, std::string("learning_rate"));
  // Parameters worth a column: those whose values differ between the runs (at most 8).
  std::map<std::string, std::set<std::string>> values;
  for (const RunRecord& r : runs)
    for (const auto& [k, v] : r.params) values[k].insert(v);
  std::vector<std::string> params;
  for (const auto& [k, vs] : values) {
    size_t have = 0;
    for (const RunRecord& r : runs) have += r.params.count(k);
    if ((vs.size() > 1 || have < runs.size()) && params.size() < 5) params.push_back(k);
  }
  std::string out = "<table id=\"runs\" class=\"sortable\"><thead><tr>";
  if (!o.single_file) out += "<th class=\"nosort\"></th>";
  out += "<th>run</th><th>experiment</th><th>status</th><th>started (UTC)</th><th>duration</th>";
  for (const std::string& k : keys) out += "<th class=\"num\">" + html_escape(k) + "</th>";
  // Parameter columns show the last part of the name ("optimizer.lr" -> "lr"), the whole in a
  // tooltip.
  for (const std::string& k : params)
    out += fmt::format(
        "<th title=\"{0}\">{1}</th>", html_escape(k),
        html_escape(k.substr(k.rfind('.') == std::string::npos ? 0 : k.rfind('.') + 1)));
  out += "</tr></thead><tbody>\n";
  for (const RunRecord& r : runs) {
    out += fmt::format("<tr data-run=\"{}\">", html_escape(r.info.id));
    if (!o.single_file)
      out += fmt::format("<td><input type=\"checkbox\" class=\"pick\" value=\"{}\"></td>",
                         html_escape(r.info.id));
    out += fmt::format(
        "<td class=\"runcell\" data-v=\"{}\"><a href=\"{}\">{}</a><br><span class=\"id\">{}</span>"
        "</td><td>{}</td>"
        "<td data-v=\"{}\">{}</td><td data-v=\"{}\">{}</td><td class=\"num\" data-v=\"{}\">{}"
        "</td>",
        html_escape(run_label(r)), run_href(r.info.id, o), html_escape(run_label(r)),
        r.info.name.empty() ? "" : r.info.id, html_escape(r.info.experiment),
        to_string(r.info.status), status_pill(r.info.status), r.info.start_ms,
        format_time(r.info.start_ms), duration_ms(r.info), format_duration(duration_ms(r.info)));
    for (const std::string& k : keys) {
      auto it = r.final_metrics.find(k);
      if (it == r.final_metrics.end()) {
        out += "<td class=\"num\" data-v=\"\"></td>";
      } else {
        out += fmt::format("<td class=\"num\" data-v=\"{}\">{}</td>", it->second,
                           fmt_value(it->second));
      }
    }
    for (const std::string& k : params) {
      auto it = r.params.find(k);
      out += "<td>" + (it == r.params.end() ? "" : html_escape(it->second)) + "</td>";
    }
    out += "</tr>\n";
  }
  return out + "</tbody></table>\n";
}

// Rows of values side by side, rows whose values differ highlighted; `best` marks the best value
// (max for accuracy-like keys, min for losses) per row when set.
std::string side_by_side(
    const std::vector<const RunRecord*>& runs, const std::vector<std::string>& keys,
    const std::function<std::optional<std::string>(const RunRecord&, const std::string&)>& get,
    bool numeric, const HtmlOptions& o) {
  std::string out = "<table><thead><tr><th></th>";
  for (size_t i = 0; i < runs.size(); ++i) {
    out += fmt::format("<th><span style=\"color:{}\">&#9632;</span> <a href=\"{}\">{}</a></th>",
                       series_color(i), run_href(runs[i]->info.id, o),
                       html_escape(run_label(*runs[i])));
  }
  out += "</tr></thead><tbody>";
  for (const std::string& k : keys) {
    std::vector<std::optional<std::string>> v;
    for (const RunRecord* r : runs) v.push_back(get(*r, k));
    const bool differs = std::any_of(v.begin(), v.end(), [&](const auto& x) { return x != v[0]; });
    int best = -1;
    // Best: the highest accuracy / F1, the lowest loss; other keys (learning rate) have none.
    const bool higher = k.find("acc") != std::string::npos || k.find("f1") != std::string::npos;
    const bool lower = k.find("loss") != std::string::npos || k.find("mse") != std::string::npos;
    if (numeric && runs.size() > 1 && (higher || lower)) {
      double bv = 0;
      for (size_t i = 0; i < v.size(); ++i) {
        if (!v[i]) continue;
        const double x = std::stod(*v[i]);
        if (std::isnan(x)) continue;
        if (best < 0 || (higher ? x > bv : x < bv)) best = static_cast<int>(i), bv = x;
      }
    }
    out += fmt::format("<tr{}><td>{}</td>", differs && !numeric ? " class=\"differs\"" : "",
                       html_escape(k));
    for (size_t i = 0; i < v.size(); ++i) {
      std::string shown = v[i] ? *v[i] : "";
      if (numeric && v[i]) shown = fmt_value(std::stod(*v[i]));
      out += fmt::format("<td class=\"{}{}\">{}</td>", numeric ? "num" : "",
                         static_cast<int>(i) == best ? " best" : "", html_escape(shown));
    }
    out += "</tr>";
  }
  return out + "</tbody></table>";
}

std::string compare_body(const std::vector<RunRecord>& runs, const HtmlOptions& o) {
  std::vector<const RunRecord*> ptrs;
  for (const RunRecord& r : runs) ptrs.push_back(&r);
  std::string out = fmt::format("<section id=\"compare\"><h1>Compare {} runs</h1>\n", runs.size());
  std::set<std::string> pkeys;
  for (const RunRecord& r : runs)
    for (const auto& [k, v] : r.params) pkeys.insert(k);
  const std::vector<std::string> mkeys = epoch_keys(ptrs);
  out += "<div class=\"card\"><h2>Curves</h2><div class=\"charts\">";
  for (const std::string& k : mkeys) {
    std::vector<ChartSeries> series;
    for (size_t i = 0; i < runs.size(); ++i) {
      ChartSeries s{.label = run_label(runs[i]),
                    .run_id = runs[i].info.id,
                    .key = k,
                    .color = series_color(i),
                    .dashed = false,
                    .points = {}};
      for (const MetricPoint& p : runs[i].metrics)
        if (p.key == k && p.epoch >= 0)
          s.points.emplace_back(static_cast<double>(p.epoch), p.value);
      if (!s.points.empty()) series.push_back(std::move(s));
    }
    if (!series.empty()) out += svg_chart(k, "epoch", series);
  }
  out +=
      "</div></div>\n<div class=\"grid\"><div class=\"card\"><h2>Final metrics <span "
      "class=\"hint\">(best in green)</span></h2>";
  out += side_by_side(
      ptrs, mkeys,
      [](const RunRecord& r, const std::string& k) -> std::optional<std::string> {
        auto it = r.final_metrics.find(k);
        if (it == r.final_metrics.end()) return std::nullopt;
        return fmt::format("{}", it->second);
      },
      true, o);
  // Parameters that differ first; the identical ones folded below them.
  std::vector<std::string> differ, same;
  for (const std::string& k : pkeys) {
    std::set<std::string> seen;
    for (const RunRecord& r : runs) {
      auto it = r.params.find(k);
      seen.insert(it == r.params.end() ? std::string("\x01") : it->second);
    }
    (seen.size() > 1 ? differ : same).push_back(k);
  }
  auto param = [](const RunRecord& r, const std::string& k) -> std::optional<std::string> {
    auto it = r.params.find(k);
    if (it == r.params.end()) return std::nullopt;
    return it->second;
  };
  out += fmt::format(
      "</div><div class=\"card\"><h2>Parameters <span class=\"hint\">({} differ)"
      "</span></h2>",
      differ.size());
  out += side_by_side(ptrs, differ, param, false, o);
  if (!same.empty()) {
    out += fmt::format("<details><summary class=\"hint\">{} identical parameters</summary>",
                       same.size());
    out += side_by_side(ptrs, same, param, false, o) + "</details>";
  }
  return out + "</div></div></section>\n";
}

std::string models_body(const std::vector<ModelVersion>& versions, const HtmlOptions& o) {
  std::string out = "<section id=\"registry\"><h1>Model registry</h1>\n";
  if (versions.empty()) {
    return out +
           "<div class=\"card empty\">No registered models yet: <code>kiln models register "
           "RUN --name NAME</code></div></section>\n";
  }
  std::map<std::string, std::vector<const ModelVersion*>> by_name;
  for (const ModelVersion& v : versions) by_name[v.name].push_back(&v);
  for (const auto& [name, vs] : by_name) {
    std::string prod = "none";
    for (const ModelVersion* v : vs)
      if (v->stage == Stage::Production) prod = fmt::format("version {}", v->version);
    out += fmt::format(
        "<div class=\"card\"><h2>{} <span class=\"hint\">· {} version{} · production: {}</span>"
        "</h2><table><thead><tr><th>version</th><th>stage</th><th>run</th><th>registered "
        "(UTC)</th><th>stage changed</th><th>description</th></tr></thead><tbody>",
        html_escape(name), vs.size(), vs.size() == 1 ? "" : "s", prod);
    for (auto it = vs.rbegin(); it != vs.rend(); ++it) {
      const ModelVersion& v = **it;
      out += fmt::format(
          "<tr><td>{}</td><td>{}</td><td><a href=\"{}\"><code>{}</code></a></td><td>{}</td>"
          "<td>{}</td><td>{}</td></tr>",
          v.version, stage_pill(v.stage), run_href(v.run_id, o), v.run_id,
          format_time(v.created_ms), format_time(v.updated_ms), html_escape(v.description));
    }
    out += "</tbody></table></div>\n";
  }
  return out + "</section>\n";
}

}  // namespace

std::string runs_page(const std::vector<RunRecord>& runs, const HtmlOptions& o,
                      const std::string& filter, const std::string& error) {
  std::string body = fmt::format(
      "<section id=\"runs-table\"><h1>Runs <span class=\"hint\">{} "
      "run{}</span></h1>\n",
      runs.size(), runs.size() == 1 ? "" : "s");
  if (!o.single_file) {
    body += fmt::format(
        "<form class=\"toolbar\" method=\"get\" action=\"/\"><input type=\"text\" name=\"filter\" "
        "id=\"filter\" value=\"{}\" placeholder=\"filter: metrics.val_accuracy &gt; 0.9 and "
        "params.optimizer.lr = 0.001 and status = finished\"><button type=\"submit\">Filter"
        "</button><button type=\"button\" id=\"compare-selected\" class=\"secondary\">Compare"
        "</button></form>\n",
        html_escape(filter));
  }
  if (!error.empty()) body += "<div class=\"error\">" + html_escape(error) + "</div>\n";
  body += "<div class=\"card\" style=\"padding:0;overflow:auto\">";
  if (runs.empty()) {
    body += "<div class=\"empty\">No runs" + std::string(filter.empty() ? "" : " match") +
            ". Train with tracking on (the <code>kiln</code> CLI tracks by default).</div>";
  } else {
    body += runs_table(runs, o);
  }
  body += "</div>\n";
  if (!o.single_file)
    body +=
        "<p class=\"hint\">Click a column to sort; tick runs and press Compare to overlay "
        "their curves.</p>";
  body += "</section>\n";
  return o.single_file ? body : html_page("Runs", body, false, "runs", o.subtitle);
}

std::string run_page(const RunRecord& run, const HtmlOptions& o) {
  const std::string body = run_body(run, o);
  return o.single_file ? body : html_page(run_label(run), body, false, "runs", o.subtitle);
}

std::string compare_page(const std::vector<RunRecord>& runs, const HtmlOptions& o) {
  std::string body;
  if (runs.size() < 2) {
    body =
        "<section id=\"compare\"><h1>Compare runs</h1><div class=\"card empty\">Pick two or more "
        "runs in the runs table and press Compare (or open "
        "<code>/compare?runs=ID,ID</code>).</div></section>\n";
  } else {
    body = compare_body(runs, o);
  }
  return o.single_file ? body : html_page("Compare", body, false, "compare", o.subtitle);
}

std::string models_page(const std::vector<ModelVersion>& versions, const HtmlOptions& o) {
  const std::string body = models_body(versions, o);
  return o.single_file ? body : html_page("Registry", body, false, "models", o.subtitle);
}

std::string report_html(const std::vector<RunRecord>& runs,
                        const std::vector<ModelVersion>& versions, const HtmlOptions& options) {
  HtmlOptions o = options;
  o.single_file = true;
  std::string body = runs_page(runs, o);
  if (runs.size() > 1) body += compare_page(runs, o);
  for (const RunRecord& r : runs) body += run_page(r, o);
  std::set<std::string> ids;
  for (const RunRecord& r : runs) ids.insert(r.info.id);
  std::vector<ModelVersion> mine;
  for (const ModelVersion& v : versions)
    if (ids.count(v.run_id)) mine.push_back(v);
  body += models_page(mine, o);
  return html_page(runs.size() == 1 ? "Run report" : "Runs report", body, true, "", o.subtitle);
}

}  // namespace kiln::track
