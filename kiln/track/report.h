#pragma once
// HTML views of the store — the runs table, a run's page, the compare view and the registry —
// rendered on the server as one string each, with metric curves drawn as inline SVG. The same
// functions serve `kiln ui` (links between pages) and `kiln runs report` (one self-contained file
// whose links are anchors). Pages load nothing from elsewhere: styles and the small sorting /
// filtering script are inline.
//
// Charts: each per-epoch metric family ("loss" with "val_loss", "accuracy" with "val_accuracy",
// "learning_rate") gets one chart against the epoch, each per-step family ("batch/loss") one
// against the step. In the SVG every series is a <polyline class="series" data-run=ID data-key=KEY>
// and each point a <circle class="pt"> inside <g class="points" data-key=KEY> — the browser test
// counts them.
#include <string>
#include <vector>

#include "kiln/io/json.h"
#include "kiln/track/store.h"

namespace kiln::track {

struct HtmlOptions {
  /// Links: false = server paths ("/run/ID"), true = anchors in one file ("#run-ID").
  bool single_file = false;
  /// Shown under the title (the database path).
  std::string subtitle = {};
};

/// A line series for svg_chart: (x, y) pairs in order.
struct ChartSeries {
  std::string label;
  std::string run_id;
  std::string key;
  std::string color;
  bool dashed = false;
  std::vector<std::pair<double, double>> points;
};

/// An SVG line chart (width x height px) with nice axis ticks, grid, legend and a tooltip per
/// point. Non-finite y values are skipped.
std::string svg_chart(const std::string& title, const std::string& x_label,
                      const std::vector<ChartSeries>& series, int width = 620, int height = 290);

/// The runs table: sortable columns (id, experiment, name, status, start, duration, final
/// metrics, params that differ between runs), a filter box and "compare selected".
/// `filter` is echoed in the box, `error` shown above the table.
std::string runs_page(const std::vector<RunRecord>& runs, const HtmlOptions& options,
                      const std::string& filter = "", const std::string& error = "");
/// One run: header facts, params, final metrics, charts, confusion matrices, data, artifacts.
std::string run_page(const RunRecord& run, const HtmlOptions& options);
/// Several runs: params and final metrics side by side (differences highlighted) and one chart
/// per metric key with a curve per run.
std::string compare_page(const std::vector<RunRecord>& runs, const HtmlOptions& options);
/// The registry: every model's versions with stage, run and dates.
std::string models_page(const std::vector<ModelVersion>& versions, const HtmlOptions& options);
/// One self-contained file: the runs table, compare view (two or more runs), each run's page and
/// the registry versions of those runs.
std::string report_html(const std::vector<RunRecord>& runs,
                        const std::vector<ModelVersion>& versions, const HtmlOptions& options);

/// The JSON form of a run (`kiln runs show --json`): info, params, tags, final metrics, and when
/// `full` the metric history, confusion matrices, data files and artifacts.
json::Value run_json(const RunRecord& run, bool full);
json::Value model_version_json(const ModelVersion& v);

/// "2026-12-04 15:13" (UTC) for a Unix time in milliseconds.
std::string format_time(int64_t ms);
/// "1 h 02 min", "3 min 05 s", "12.3 s".
std::string format_duration(int64_t ms);

}  // namespace kiln::track
