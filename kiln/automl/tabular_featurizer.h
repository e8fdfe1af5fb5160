#pragma once
// The featuriser of kiln::automl's tabular learners: a table of numeric and categorical columns ->
// a dense float matrix (ML.NET's ReplaceMissingValues + IndicateMissingValues +
// NormalizeMeanVariance
// + OneHotEncoding, fitted on the training rows only).
//
//   TabularFeaturizer f = TabularFeaturizer::fit(table, train_rows, {"Status"});   // label
//   excluded std::vector<float> x = f.transform(table, test_rows);   // (rows, f.num_features())
//   row-major f.to_json();   // everything another program needs to reproduce transform
//
// Per column (every column of the table but the excluded ones), from the fit rows:
//   * missing = an empty field, "NA", "NaN", "nan" or "?" (after trimming spaces);
//   * numeric when every non-missing value parses as a float (data::detail::parse_float), else
//     categorical; a column with no non-missing value in the fit rows is dropped;
//   * numeric: feature (x − mean) / std with mean and population std of the non-missing fit values
//     (std 1 when it is 0); a missing value (or one that does not parse) becomes the mean, i.e. 0;
//     when any fit row was missing, one more feature "<name>=missing" is 1 for missing and 0 else;
//   * categorical: one feature per category seen in the fit rows (the max_categories most frequent;
//     ties by value), 1 for that category; a missing, unseen or cut category gives all zeros.
// Feature order: columns in table order; within a numeric column the value then the indicator;
// within a categorical column the categories sorted by value.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kiln/data/columns.h"
#include "kiln/io/json.h"

namespace kiln::automl {

/// Whether a field counts as missing: empty, "NA", "NaN", "nan" or "?" (surrounding spaces
/// ignored).
bool is_missing_value(std::string_view text);

/// One input column as the featuriser saw it in the fit rows.
struct TabularColumn {
  std::string name;
  bool numeric = true;
  double mean = 0, std = 1;               // numeric
  bool missing_indicator = false;         // numeric: a "<name>=missing" feature follows
  std::vector<std::string> categories{};  // categorical, sorted
};

class TabularFeaturizer {
 public:
  /// Learns the columns' kinds and statistics from `rows` of `table` (every column but `exclude`).
  /// Throws kiln::Error when rows is empty or no column gives a feature.
  static TabularFeaturizer fit(const data::Table& table, std::span<const size_t> rows,
                               const std::vector<std::string>& exclude,
                               int64_t max_categories = 100);
  /// Features of `rows` of `table`: (rows.size(), num_features()) row-major. The table must hold
  /// every fitted column (found by name; throws naming the missing one); other columns are ignored.
  std::vector<float> transform(const data::Table& table, std::span<const size_t> rows) const;
  /// transform of every row.
  std::vector<float> transform(const data::Table& table) const;
  int64_t num_features() const { return num_features_; }
  /// A name per feature: "<column>", "<column>=missing", "<column>=<category>".
  std::vector<std::string> feature_names() const;
  const std::vector<TabularColumn>& columns() const { return columns_; }
  /// {"kind": "kiln-tabular", "recipe", "num_features", "columns": [{name, type, mean, std,
  /// missing_indicator} or {name, type, categories}], "feature_names"}.
  json::Value to_json() const;
  /// Reads what to_json wrote; throws kiln::Error naming a missing or bad field.
  static TabularFeaturizer from_json(const json::Value& v);

 private:
  void count_features();

  std::vector<TabularColumn> columns_;
  int64_t num_features_ = 0;
};

}  // namespace kiln::automl
