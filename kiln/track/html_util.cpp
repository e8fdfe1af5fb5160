#include "kiln/track/html_util.h"

#include <fmt/format.h>

namespace kiln::track {

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

const char* series_color(size_t i) {
  static constexpr const char* kColors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
                                            "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac"};
  return kColors[i % std::size(kColors)];
}

namespace {

constexpr const char* kStyle = R"css(
:root { --bg:#f4f6f9; --card:#fff; --ink:#1d2330; --muted:#6b7385; --line:#e3e7ee;
        --accent:#4e79a7; --bar:#1c2230; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif; }
header.top { background:var(--bar); color:#fff; padding:0 28px; display:flex; align-items:center;
             gap:28px; height:52px; }
header.top .brand { font-weight:700; font-size:17px; letter-spacing:.3px; }
header.top .brand span { color:#f28e2b; }
header.top nav a { color:#c9d1e0; text-decoration:none; margin-right:18px; padding:15px 2px;
                   border-bottom:3px solid transparent; }
header.top nav a.active, header.top nav a:hover { color:#fff; border-bottom-color:#f28e2b; }
header.top .sub { margin-left:auto; color:#8d97ab; font-size:12px; font-family:ui-monospace,monospace; }
main { padding:22px 28px 40px; max-width:1500px; margin:0 auto; }
h1 { font-size:22px; margin:4px 0 14px; font-weight:650; }
h2 { font-size:16px; margin:0 0 10px; font-weight:620; }
h1 .id, td .id { font-family:ui-monospace,"DejaVu Sans Mono",monospace; color:var(--muted);
                 font-weight:400; font-size:.85em; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px;
        padding:16px 18px; margin-bottom:18px; box-shadow:0 1px 2px rgba(20,30,50,.04); }
.grid { display:grid; grid-template-columns:repeat(auto-fit,minmax(340px,1fr)); gap:18px; }
.grid > .card { margin-bottom:0; }
.charts { display:flex; flex-wrap:wrap; gap:14px; }
.charts svg { background:#fff; border:1px solid var(--line); border-radius:8px; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; text-transform:uppercase; letter-spacing:.4px; color:var(--muted);
     font-weight:600; background:#fafbfd; position:sticky; top:0; }
table.sortable th { cursor:pointer; user-select:none; white-space:nowrap; }
table.sortable th:hover { color:var(--ink); }
th.asc::after { content:" \25B2"; font-size:9px; } th.desc::after { content:" \25BC"; font-size:9px; }
tbody tr:hover { background:#f3f7fc; }
td.num { text-align:right; font-variant-numeric:tabular-nums; font-family:ui-monospace,"DejaVu Sans Mono",monospace; }
th.num { text-align:right; }
td.best { font-weight:700; color:#2d7d3a; }
td code { word-break:break-all; }
td.runcell { white-space:nowrap; } #runs td { white-space:nowrap; }
details { margin-top:10px; } summary { cursor:pointer; padding:4px 0; }
tr.differs td { background:#fff8e6; }
a { color:var(--accent); text-decoration:none; } a:hover { text-decoration:underline; }
.pill { display:inline-block; padding:1px 9px; border-radius:999px; font-size:12px; font-weight:600; }
.status-finished, .stage-production { background:#e3f4e6; color:#22753a; }
.status-running, .stage-staging { background:#e3eefb; color:#2c5d99; }
.status-failed { background:#fde5e5; color:#b3261e; }
.status-killed { background:#fdf0dc; color:#9a5b00; }
.stage-none { background:#eef0f4; color:#596172; }
.stage-archived { background:#eceae7; color:#7a6f63; }
.toolbar { display:flex; gap:10px; align-items:center; margin-bottom:12px; flex-wrap:wrap; }
.toolbar input[type=text] { flex:1; min-width:260px; padding:8px 11px; border:1px solid #cfd5df;
                            border-radius:7px; font:13px ui-monospace,"DejaVu Sans Mono",monospace; }
button, .button { background:var(--accent); color:#fff; border:0; border-radius:7px;
                  padding:8px 14px; font:inherit; font-weight:600; cursor:pointer; }
button.secondary { background:#e8ecf2; color:var(--ink); }
button:disabled { opacity:.45; cursor:default; }
.error { background:#fde5e5; color:#8c1d18; border:1px solid #f3b8b5; padding:9px 12px;
         border-radius:7px; margin-bottom:12px; }
.hint { color:var(--muted); font-size:12px; }
.facts { display:grid; grid-template-columns:max-content 1fr; gap:6px 18px; }
.facts dt { color:var(--muted); } .facts dd { margin:0; word-break:break-all; }
code { font-family:ui-monospace,"DejaVu Sans Mono",monospace; font-size:12.5px;
       background:#f1f3f7; padding:1px 5px; border-radius:4px; }
table.cm td { text-align:center; min-width:54px; font-family:ui-monospace,monospace; }
table.cm th.rowhead { text-align:right; text-transform:none; }
svg .chart-title { font-weight:650; font-size:13px; fill:var(--ink); }
svg .axis { font-size:11px; fill:#6b7385; } svg .axis-label { font-size:11px; fill:#6b7385; }
svg .grid { stroke:#edf0f5; } svg .tick { stroke:#b8c0cc; }
svg .frame { fill:none; stroke:#d5dbe4; } svg .legend text { font-size:11.5px; fill:#39404f; }
svg circle.pt { stroke:#fff; stroke-width:1.2; } svg circle.pt:hover { r:5.5; }
section.run { scroll-margin-top:12px; }
.empty { color:var(--muted); padding:26px; text-align:center; }
)css";

// Sorting by a column (numbers as numbers, "" last), a quick text search, and "compare selected".
constexpr const char* kScript = R"js(
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    if (th.classList.contains('nosort')) return;
    th.addEventListener('click', function () {
      var desc = th.classList.contains('asc');
      table.querySelectorAll('th').forEach(function (h) { h.classList.remove('asc', 'desc'); });
      th.classList.add(desc ? 'desc' : 'asc');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(r) { var c = r.cells[col]; return c ? (c.dataset.v !== undefined ? c.dataset.v : c.textContent.trim()) : ''; }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === '' || y === '') return (x === '') - (y === '');
        var nx = Number(x), ny = Number(y);
        var r = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return desc ? -r : r;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
var search = document.getElementById('quick');
if (search) search.addEventListener('input', function () {
  var q = search.value.toLowerCase();
  document.querySelectorAll('#runs tbody tr').forEach(function (r) {
    r.style.display = r.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
  });
});
var compare = document.getElementById('compare-selected');
if (compare) {
  var boxes = document.querySelectorAll('#runs input.pick');
  function update() {
    var n = document.querySelectorAll('#runs input.pick:checked').length;
    compare.disabled = n < 2;
    compare.textContent = n < 2 ? 'Compare (select 2+)' : 'Compare ' + n + ' runs';
  }
  boxes.forEach(function (b) { b.addEventListener('change', update); });
  compare.addEventListener('click', function () {
    var ids = Array.prototype.map.call(document.querySelectorAll('#runs input.pick:checked'),
                                       function (b) { return b.value; });
    window.location.href = '/compare?runs=' + ids.join(',');
  });
  update();
}
)js";

}  // namespace

std::string html_page(const std::string& title, const std::string& body, bool single_file,
                      const std::string& active_tab, const std::string& subtitle) {
  std::string nav;
  if (single_file) {
    nav =
        "<nav><a href=\"#runs-table\">Runs</a><a href=\"#compare\">Compare</a>"
        "<a href=\"#registry\">Registry</a></nav>";
  } else {
    for (const auto& [tab, href, label] : {std::tuple{"runs", "/", "Runs"},
                                           {"compare", "/compare", "Compare"},
                                           {"models", "/models", "Registry"}}) {
      nav += fmt::format("<a href=\"{}\"{}>{}</a>", href,
                         active_tab == tab ? " class=\"active\"" : "", label);
    }
    nav = "<nav>" + nav + "</nav>";
  }
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>{0} · Kiln</title><style>{1}</style></head>\n<body>\n"
      "<header class=\"top\"><div class=\"brand\">Kiln <span>runs</span></div>{2}"
      "<div class=\"sub\">{3}</div></header>\n<main>\n{4}</main>\n<script>{5}</script>\n"
      "</body></html>\n",
      html_escape(title), kStyle, nav, html_escape(subtitle), body, kScript);
}

}  // namespace kiln::track
