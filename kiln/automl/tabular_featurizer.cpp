#include "kiln/automl/tabular_featurizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "kiln/data/csv.h"
#include "kiln/tensor/error.h"

namespace kiln::automl {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The numeric value of a non-missing field, or NaN when it does not parse.
double numeric_value(std::string_view text) {
  float v = 0;
  if (!data::detail::parse_float(text, v)) return std::nan("");
  return v;
}

// The text of column `c` at `row` ("" for a NaN float), the form the featuriser reads.
std::string field(const data::Column& c, size_t row) {
  if (c.type() == data::ColumnType::String) return c.strings()[row];
  return c.value_string(row);
}

}  // namespace

bool is_missing_value(std::string_view text) {
  const std::string_view t = trim(text);
  return t.empty() || t == "NA" || t == "NaN" || t == "nan" || t == "?";
}

TabularFeaturizer TabularFeaturizer::fit(const data::Table& table, std::span<const size_t> rows,
                                         const std::vector<std::string>& exclude,
                                         int64_t max_categories) {
  KILN_CHECK(!rows.empty(), "TabularFeaturizer::fit: no rows to fit on");
  KILN_CHECK(max_categories >= 1, "TabularFeaturizer::fit: max_categories must be >= 1, got {}",
             max_categories);
  TabularFeaturizer f;
  for (const data::Column& col : table.columns()) {
    if (std::find(exclude.begin(), exclude.end(), col.name()) != exclude.end()) continue;
    std::vector<std::string> values;
    values.reserve(rows.size());
    size_t missing = 0;
    bool numeric = true;
    for (size_t r : rows) {
      KILN_CHECK(r < table.num_rows(), "TabularFeaturizer::fit: row {} of {}", r, table.num_rows());
      std::string v = field(col, r);
      if (is_missing_value(v)) {
        ++missing;
        continue;
      }
      if (numeric && std::isnan(numeric_value(v))) numeric = false;
      values.push_back(std::move(v));
    }
    if (values.empty()) continue;  // nothing to learn from: dropped
    TabularColumn c{.name = col.name(), .numeric = numeric};
    if (numeric) {
      double sum = 0, sq = 0;
      for (const std::string& v : values) sum += numeric_value(v);
      c.mean = sum / static_cast<double>(values.size());
      for (const std::string& v : values) {
        const double d = numeric_value(v) - c.mean;
        sq += d * d;
      }
      c.std = std::sqrt(sq / static_cast<double>(values.size()));
      if (!(c.std > 0) || !std::isfinite(c.std)) c.std = 1;
      c.missing_indicator = missing > 0;
    } else {
      std::map<std::string, int64_t> counts;
      for (const std::string& v : values) ++counts[std::string(trim(v))];
      std::vector<std::pair<std::string, int64_t>> by_count(counts.begin(), counts.end());
      // Most frequent first; std::map gave them sorted by value, so stable_sort keeps value order
      // among equal counts.
      std::stable_sort(by_count.begin(), by_count.end(),
                       [](const auto& a, const auto& b) { return a.second > b.second; });
      if (static_cast<int64_t>(by_count.size()) > max_categories) {
        by_count.resize(static_cast<size_t>(max_categories));
      }
      for (const auto& [value, n] : by_count) c.categories.push_back(value);
      std::sort(c.categories.begin(), c.categories.end());
    }
    f.columns_.push_back(std::move(c));
  }
  f.count_features();
  KILN_CHECK(f.num_features_ > 0,
             "TabularFeaturizer::fit: no feature column: every column is excluded ({}) or has "
             "only missing values in the {} fit rows",
             fmt::join(exclude, ", "), rows.size());
  return f;
}

void TabularFeaturizer::count_features() {
  num_features_ = 0;
  for (const TabularColumn& c : columns_) {
    num_features_ +=
        c.numeric ? 1 + (c.missing_indicator ? 1 : 0) : static_cast<int64_t>(c.categories.size());
  }
}

std::vector<float> TabularFeaturizer::transform(const data::Table& table,
                                                std::span<const size_t> rows) const {
  const size_t nf = static_cast<size_t>(num_features_);
  std::vector<float> out(rows.size() * nf, 0.0f);
  size_t offset = 0;  // first feature of the current column
  for (const TabularColumn& c : columns_) {
    KILN_CHECK(table.has_column(c.name),
               "TabularFeaturizer::transform: the table has no column '{}' (columns: {})", c.name,
               fmt::join(table.column_names(), ", "));
    const data::Column& col = table[c.name];
    for (size_t i = 0; i < rows.size(); ++i) {
      KILN_CHECK(rows[i] < table.num_rows(), "TabularFeaturizer::transform: row {} of {}", rows[i],
                 table.num_rows());
      const std::string v = field(col, rows[i]);
      float* x = out.data() + i * nf + offset;
      if (c.numeric) {
        const double d = is_missing_value(v) ? std::nan("") : numeric_value(v);
        if (std::isnan(d)) {
          x[0] = 0.0f;  // the training mean, standardised
          if (c.missing_indicator) x[1] = 1.0f;
        } else {
          x[0] = static_cast<float>((d - c.mean) / c.std);
        }
      } else if (!is_missing_value(v)) {
        const std::string_view t = trim(v);
        const auto it = std::lower_bound(c.categories.begin(), c.categories.end(), t);
        if (it != c.categories.end() && *it == t) x[it - c.categories.begin()] = 1.0f;
      }
    }
    offset += c.numeric ? 1 + (c.missing_indicator ? 1 : 0) : c.categories.size();
  }
  return out;
}

std::vector<float> TabularFeaturizer::transform(const data::Table& table) const {
  std::vector<size_t> all(table.num_rows());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  return transform(table, all);
}

std::vector<std::string> TabularFeaturizer::feature_names() const {
  std::vector<std::string> names;
  for (const TabularColumn& c : columns_) {
    if (c.numeric) {
      names.push_back(c.name);
      if (c.missing_indicator) names.push_back(c.name + "=missing");
    } else {
      for (const std::string& v : c.categories) names.push_back(c.name + "=" + v);
    }
  }
  return names;
}

json::Value TabularFeaturizer::to_json() const {
  json::Value v = json::Value::object();
  v["kind"] = "kiln-tabular";
  v["recipe"] =
      "missing = empty, NA, NaN, nan or ? (spaces trimmed); numeric column: (x - mean) / std, a "
      "missing or unparsable value gives 0, and when missing_indicator is true one more feature is "
      "1 for missing else 0; categorical column: one feature per entry of categories (1 when the "
      "trimmed value equals it; missing or unseen values give all zeros); features in the order "
      "of columns, as in feature_names";
  v["num_features"] = num_features_;
  json::Value cols = json::Value::array();
  for (const TabularColumn& c : columns_) {
    json::Value j = json::Value::object();
    j["name"] = c.name;
    j["type"] = c.numeric ? "numeric" : "categorical";
    if (c.numeric) {
      j["mean"] = c.mean;
      j["std"] = c.std;
      j["missing_indicator"] = c.missing_indicator;
    } else {
      json::Value cats = json::Value::array();
      for (const std::string& s : c.categories) cats.push_back(s);
      j["categories"] = std::move(cats);
    }
    cols.push_back(std::move(j));
  }
  v["columns"] = std::move(cols);
  json::Value names = json::Value::array();
  for (const std::string& n : feature_names()) names.push_back(n);
  v["feature_names"] = std::move(names);
  return v;
}

TabularFeaturizer TabularFeaturizer::from_json(const json::Value& v) {
  KILN_CHECK(v.is_object() && v.get_or<std::string>("kind", "") == "kiln-tabular",
             "TabularFeaturizer::from_json: not a kiln-tabular featurizer (\"kind\" must be "
             "\"kiln-tabular\")");
  TabularFeaturizer f;
  for (const json::Value& j : v.at("columns").as_array()) {
    TabularColumn c{.name = j.at("name").as_string()};
    const std::string& type = j.at("type").as_string();
    KILN_CHECK(type == "numeric" || type == "categorical",
               "TabularFeaturizer::from_json: column '{}' has type '{}' (numeric or categorical)",
               c.name, type);
    c.numeric = type == "numeric";
    if (c.numeric) {
      c.mean = j.at("mean").as_double();
      c.std = j.at("std").as_double();
      c.missing_indicator = j.at("missing_indicator").as_bool();
    } else {
      for (const json::Value& s : j.at("categories").as_array()) {
        c.categories.push_back(s.as_string());
      }
      KILN_CHECK(std::is_sorted(c.categories.begin(), c.categories.end()),
                 "TabularFeaturizer::from_json: column '{}': categories must be sorted", c.name);
    }
    f.columns_.push_back(std::move(c));
  }
  f.count_features();
  KILN_CHECK(f.num_features_ == v.at("num_features").as_int(),
             "TabularFeaturizer::from_json: the columns give {} features but num_features is {}",
             f.num_features_, v.at("num_features").as_int());
  return f;
}

}  // namespace kiln::automl
