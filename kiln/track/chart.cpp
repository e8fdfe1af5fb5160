// SVG line charts, time formatting and the JSON form of runs (report.h).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>

#include "kiln/track/html_util.h"
#include "kiln/track/report.h"

namespace kiln::track {

namespace {

// About `target` ticks on [lo, hi] at 1, 2 or 5 x 10^k (Heckbert's "nice numbers").
// With `integral`, steps are whole numbers (epochs and steps have no halves).
std::vector<double> nice_ticks(double lo, double hi, int target, bool integral = false) {
  const double span = hi - lo;
  const double raw = span / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  double step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
  if (integral) step = std::max(1.0, std::round(step));
  std::vector<double> out;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
    out.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return out;
}

std::string tick_label(double v) {
  if (v == 0) return "0";
  const double a = std::abs(v);
  if (a >= 1e5 || a < 1e-3) return fmt::format("{:.1e}", v);
  if (v == std::round(v)) return fmt::format("{:.0f}", v);
  return fmt::format("{:.4g}", v);
}

}  // namespace

std::string svg_chart(const std::string& title, const std::string& x_label,
                      const std::vector<ChartSeries>& series, int width, int height) {
  // Plot area inside margins: left for y labels, bottom for x labels, top for title and legend.
  const double ml = 56, mr = 16, mt = 40, mb = 36;
  const double pw = width - ml - mr, ph = height - mt - mb;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const ChartSeries& s : series) {
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  }
  std::string out = fmt::format(
      "<svg class=\"chart\" data-title=\"{0}\" viewBox=\"0 0 {1} {2}\" width=\"{1}\" "
      "height=\"{2}\" role=\"img\" aria-label=\"{0}\" xmlns=\"http://www.w3.org/2000/svg\">\n"
      "<text class=\"chart-title\" x=\"{3}\" y=\"18\">{0}</text>\n",
      html_escape(title), width, height, ml);
  if (!std::isfinite(x0)) {
    out += fmt::format("<text class=\"axis\" x=\"{}\" y=\"{}\">no values</text></svg>\n",
                       ml + pw / 2 - 30, mt + ph / 2);
    return out;
  }
  if (x1 == x0) x0 -= 1, x1 += 1;
  if (y1 == y0) {
    const double pad = y0 == 0 ? 1 : std::abs(y0) * 0.1;
    y0 -= pad, y1 += pad;
  } else {
    const double pad = (y1 - y0) * 0.06;  // keep points off the frame
    y0 -= pad, y1 += pad;
  }
  auto sx = [&](double x) { return ml + (x - x0) / (x1 - x0) * pw; };
  auto sy = [&](double y) { return mt + ph - (y - y0) / (y1 - y0) * ph; };

  for (double t : nice_ticks(y0, y1, 5)) {
    out += fmt::format(
        "<line class=\"grid\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/>"
        "<text class=\"axis\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
        ml, sy(t), ml + pw, sy(t), ml - 6, sy(t) + 4, tick_label(t));
  }
  std::vector<double> xt = nice_ticks(x0, x1, 6, /*integral=*/true);
  for (double t : xt) {
    out += fmt::format(
        "<line class=\"tick\" x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\"/>"
        "<text class=\"axis\" x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4}</text>\n",
        sx(t), mt + ph, mt + ph + 4, mt + ph + 17, tick_label(t));
  }
  out += fmt::format(
      "<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>\n"
      "<text class=\"axis-label\" x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
      ml, mt, pw, ph, ml + pw / 2, height - 4, html_escape(x_label));

  // Legend across the top right, then the series.
  double lx = ml + pw;
  for (auto it = series.rbegin(); it != series.rend(); ++it) {
    const double w = 26 + 6.6 * static_cast<double>(it->label.size());
    lx -= w;
    out += fmt::format(
        "<g class=\"legend\"><line x1=\"{:.1f}\" y1=\"30\" x2=\"{:.1f}\" y2=\"30\" stroke=\"{}\" "
        "stroke-width=\"2.5\"{}/><text x=\"{:.1f}\" y=\"34\">{}</text></g>\n",
        lx, lx + 16, it->color, it->dashed ? " stroke-dasharray=\"5 3\"" : "", lx + 20,
        html_escape(it->label));
  }
  for (const ChartSeries& s : series) {
    std::string pts;
    for (const auto& [x, y] : s.points)
      if (std::isfinite(y)) pts += fmt::format("{:.1f},{:.1f} ", sx(x), sy(y));
    out += fmt::format(
        "<polyline class=\"series\" data-run=\"{}\" data-key=\"{}\" fill=\"none\" stroke=\"{}\" "
        "stroke-width=\"2\"{} points=\"{}\"/>\n",
        html_escape(s.run_id), html_escape(s.key), s.color,
        s.dashed ? " stroke-dasharray=\"6 4\"" : "", pts);
    // Points (with a tooltip) only where they stay apart: long per-step series are lines only.
    if (s.points.size() <= 200) {
      out += fmt::format("<g class=\"points\" data-run=\"{}\" data-key=\"{}\" fill=\"{}\">",
                         html_escape(s.run_id), html_escape(s.key), s.color);
      for (const auto& [x, y] : s.points) {
        if (!std::isfinite(y)) continue;
        out += fmt::format(
            "<circle class=\"pt\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\"><title>{} {}: "
            "{}={:.6g}</title></circle>",
            sx(x), sy(y), html_escape(x_label), tick_label(x), html_escape(s.label), y);
      }
      out += "</g>\n";
    }
  }
  out += "</svg>\n";
  return out;
}

std::string format_time(int64_t ms) {
  if (ms <= 0) return "";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

std::string format_duration(int64_t ms) {
  if (ms < 0) return "";
  if (ms < 60'000) return fmt::format("{:.1f} s", static_cast<double>(ms) / 1000);
  const int64_t s = ms / 1000;
  if (s < 3600) return fmt::format("{} min {:02} s", s / 60, s % 60);
  return fmt::format("{} h {:02} min", s / 3600, (s / 60) % 60);
}

json::Value run_json(const RunRecord& r, bool full) {
  json::Value v = json::Value::object();
  v["id"] = r.info.id;
  v["experiment"] = r.info.experiment;
  v["name"] = r.info.name;
  v["status"] = std::string(to_string(r.info.status));
  v["start_time"] = format_time(r.info.start_ms);
  v["start_ms"] = r.info.start_ms;
  v["end_ms"] = r.info.end_ms ? json::Value(r.info.end_ms) : json::Value();
  v["git_commit"] = r.info.git_commit;
  v["command"] = r.info.command;
  v["host"] = r.info.host;
  json::Value params = json::Value::object(), tags = json::Value::object(),
              metrics = json::Value::object();
  for (const auto& [k, x] : r.params) params[k] = x;
  for (const auto& [k, x] : r.tags) tags[k] = x;
  for (const auto& [k, x] : r.final_metrics) metrics[k] = x;
  v["params"] = std::move(params);
  v["tags"] = std::move(tags);
  v["metrics"] = std::move(metrics);
  if (!full) return v;
  json::Value history = json::Value::object();
  for (const MetricPoint& p : r.metrics) {
    json::Value pt = json::Value::object();
    pt["step"] = p.step;
    if (p.epoch >= 0) pt["epoch"] = p.epoch;
    pt["value"] = p.value;
    pt["time_ms"] = p.time_ms;
    if (!history.find(p.key)) history[p.key] = json::Value::array();
    history[p.key].push_back(std::move(pt));
  }
  v["history"] = std::move(history);
  json::Value cms = json::Value::array();
  for (const ConfusionMatrix& c : r.confusion) {
    json::Value m = json::Value::object(), labels = json::Value::array(),
                counts = json::Value::array();
    for (const std::string& l : c.labels) labels.push_back(l);
    for (const auto& row : c.counts) {
      json::Value jr = json::Value::array();
      for (int64_t n : row) jr.push_back(n);
      counts.push_back(std::move(jr));
    }
    m["name"] = c.name;
    m["labels"] = std::move(labels);
    m["counts"] = std::move(counts);
    cms.push_back(std::move(m));
  }
  v["confusion_matrices"] = std::move(cms);
  json::Value data = json::Value::array();
  for (const DataFileInfo& d : r.data) {
    json::Value j = json::Value::object();
    j["role"] = d.role;
    j["path"] = d.path;
    j["sha256"] = d.sha256;
    j["bytes"] = d.bytes;
    j["schema"] = d.schema_json.empty() ? json::Value() : json::parse(d.schema_json, "schema");
    data.push_back(std::move(j));
  }
  v["data"] = std::move(data);
  json::Value arts = json::Value::array();
  for (const ArtifactInfo& a : r.artifacts) {
    json::Value j = json::Value::object();
    j["path"] = a.path;
    j["sha256"] = a.sha256;
    j["bytes"] = a.bytes;
    arts.push_back(std::move(j));
  }
  v["artifacts"] = std::move(arts);
  return v;
}

json::Value model_version_json(const ModelVersion& m) {
  json::Value v = json::Value::object();
  v["name"] = m.name;
  v["version"] = m.version;
  v["stage"] = std::string(to_string(m.stage));
  v["run_id"] = m.run_id;
  v["created"] = format_time(m.created_ms);
  v["updated"] = format_time(m.updated_ms);
  v["description"] = m.description;
  return v;
}

}  // namespace kiln::track
