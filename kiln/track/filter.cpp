#include "kiln/track/filter.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <optional>

#include "kiln/tensor/error.h"
#include "kiln/track/store.h"

namespace kiln::track {

namespace {

constexpr const char* kRule =
    "(clauses look like: metrics.accuracy > 0.9 and params.lr = 0.001 and status = finished)";

std::optional<double> as_number(std::string_view s) {
  double v = 0;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || p != end || s.empty()) return std::nullopt;
  return v;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Splits `text` on the word "and" outside quotes.
std::vector<std::string> split_clauses(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote) {
      if (c == quote) quote = 0;
      cur.push_back(c);
      continue;
    }
    if (c == '\'' || c == '"') quote = c;
    const bool word_start = i == 0 || std::isspace(static_cast<unsigned char>(text[i - 1]));
    if (word_start && i + 3 < text.size() && lower(text.substr(i, 3)) == "and" &&
        std::isspace(static_cast<unsigned char>(text[i + 3]))) {
      out.push_back(cur);
      cur.clear();
      i += 2;
      continue;
    }
    cur.push_back(c);
  }
  KILN_CHECK(quote == 0, "runs filter: unclosed quote in '{}' {}", text, kRule);
  out.push_back(cur);
  return out;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

}  // namespace

RunFilter RunFilter::parse(std::string_view text) {
  RunFilter f;
  if (trim(text).empty()) return f;
  for (const std::string& raw : split_clauses(text)) {
    const std::string c = trim(raw);
    KILN_CHECK(!c.empty(), "runs filter: empty clause in '{}' {}", text, kRule);
    const size_t op_at = c.find_first_of("=!<>");
    KILN_CHECK(op_at != std::string::npos && op_at > 0,
               "runs filter: clause '{}' has no comparison (=, !=, <, <=, >, >=) {}", c, kRule);
    size_t op_end = op_at + 1;
    if (op_end < c.size() && c[op_end] == '=') ++op_end;
    Clause cl;
    cl.op = c.substr(op_at, op_end - op_at);
    if (cl.op == "==") cl.op = "=";
    KILN_CHECK(cl.op != "!", "runs filter: clause '{}': '!' must be '!=' {}", c, kRule);
    const std::string field = trim(c.substr(0, op_at));
    std::string value = trim(c.substr(op_end));
    KILN_CHECK(!value.empty(), "runs filter: clause '{}' has no value {}", c, kRule);
    if (value.size() >= 2 && (value[0] == '\'' || value[0] == '"') && value.back() == value[0]) {
      value = value.substr(1, value.size() - 2);
    }
    cl.value = value;
    const size_t dot = field.find('.');
    const std::string scope = lower(field.substr(0, dot));
    if (dot != std::string::npos && (scope == "metrics" || scope == "metric" || scope == "params" ||
                                     scope == "param" || scope == "tags" || scope == "tag")) {
      cl.scope = scope.back() == 's' ? scope : scope + "s";
      cl.key = field.substr(dot + 1);
      KILN_CHECK(!cl.key.empty(), "runs filter: clause '{}' names no key after '{}.' {}", c, scope,
                 kRule);
    } else {
      const std::string attr = lower(dot == std::string::npos ? field : field.substr(dot + 1));
      KILN_CHECK(attr == "status" || attr == "name" || attr == "experiment" || attr == "id",
                 "runs filter: unknown field '{}' in '{}' (use metrics.<key>, params.<key>, "
                 "tags.<key>, status, name, experiment or id) {}",
                 field, c, kRule);
      cl.scope = "attributes";
      cl.key = attr;
    }
    if (cl.scope == "metrics") {
      KILN_CHECK(as_number(cl.value).has_value(),
                 "runs filter: clause '{}' compares a metric with '{}', which is not a number", c,
                 cl.value);
    }
    f.clauses_.push_back(std::move(cl));
  }
  return f;
}

bool RunFilter::matches(const RunRecord& run) const {
  for (const Clause& c : clauses_) {
    std::optional<std::string> text;
    std::optional<double> number;
    if (c.scope == "metrics") {
      auto it = run.final_metrics.find(c.key);
      if (it == run.final_metrics.end()) return false;
      number = it->second;
    } else if (c.scope == "params" || c.scope == "tags") {
      const auto& m = c.scope == "params" ? run.params : run.tags;
      auto it = m.find(c.key);
      if (it == m.end()) return false;
      text = it->second;
      number = as_number(it->second);
    } else if (c.key == "status") {
      text = std::string(to_string(run.info.status));
    } else if (c.key == "name") {
      text = run.info.name;
    } else if (c.key == "experiment") {
      text = run.info.experiment;
    } else {
      text = run.info.id;
    }
    const std::optional<double> rhs = as_number(c.value);
    int cmp = 0;
    if (number && rhs) {
      if (*number != *number) return false;  // NaN matches nothing
      cmp = *number < *rhs ? -1 : (*number > *rhs ? 1 : 0);
    } else if (text) {
      cmp = text->compare(c.value);
      cmp = cmp < 0 ? -1 : (cmp > 0 ? 1 : 0);
    } else {
      return false;
    }
    const bool ok = c.op == "="    ? cmp == 0
                    : c.op == "!=" ? cmp != 0
                    : c.op == "<"  ? cmp < 0
                    : c.op == "<=" ? cmp <= 0
                    : c.op == ">"  ? cmp > 0
                                   : cmp >= 0;
    if (!ok) return false;
  }
  return true;
}

}  // namespace kiln::track
