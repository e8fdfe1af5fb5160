#include "kiln/data/columns.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "kiln/tensor/error.h"

namespace kiln::data {

namespace {

// `"a", "b", "c"`: the names an error lists so the reader sees what was there (spaces included).
std::string quoted_list(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ", ";
    out += fmt::format("\"{}\"", names[i]);
  }
  return names.empty() ? std::string("none") : out;
}

template <typename T>
std::vector<T> gather(const std::vector<T>& values, std::span<const size_t> indices) {
  std::vector<T> out;
  out.reserve(indices.size());
  for (size_t i : indices) out.push_back(values[i]);
  return out;
}

}  // namespace

std::string_view to_string(ColumnType type) {
  switch (type) {
    case ColumnType::Float:
      return "float";
    case ColumnType::Int:
      return "int";
    case ColumnType::String:
      return "string";
    case ColumnType::Key:
      return "key";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------- Column

Column::Column(std::string name, ColumnType type) : name_(std::move(name)), type_(type) {
  switch (type) {
    case ColumnType::Float:
      data_ = std::vector<float>();
      break;
    case ColumnType::Int:
    case ColumnType::Key:
      data_ = std::vector<int64_t>();
      break;
    case ColumnType::String:
      data_ = std::vector<std::string>();
      break;
  }
}

Column::Column(std::string name, std::vector<float> values)
    : name_(std::move(name)), type_(ColumnType::Float), data_(std::move(values)) {}

Column::Column(std::string name, std::vector<int64_t> values)
    : name_(std::move(name)), type_(ColumnType::Int), data_(std::move(values)) {}

Column::Column(std::string name, std::vector<std::string> values)
    : name_(std::move(name)), type_(ColumnType::String), data_(std::move(values)) {}

Column Column::from_keys(std::string name, std::vector<int64_t> keys,
                         std::vector<std::string> key_values) {
  const auto k = static_cast<int64_t>(key_values.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    KILN_CHECK(keys[i] >= 0 && keys[i] < k,
               "Column::from_keys: column \"{}\" row {} has key {} but there are {} key values "
               "(keys must lie in [0, {}))",
               name, i, keys[i], k, k);
  }
  std::unordered_map<std::string_view, size_t> seen;
  for (size_t i = 0; i < key_values.size(); ++i) {
    auto [it, inserted] = seen.emplace(key_values[i], i);
    KILN_CHECK(inserted,
               "Column::from_keys: column \"{}\" key value \"{}\" appears at keys {} and {} "
               "(each key value must be distinct)",
               name, key_values[i], it->second, i);
  }
  Column c(std::move(name), std::move(keys));
  c.type_ = ColumnType::Key;
  c.key_values_ = std::move(key_values);
  return c;
}

size_t Column::size() const {
  return std::visit([](const auto& v) { return v.size(); }, data_);
}

void Column::check_type(ColumnType want, std::string_view accessor) const {
  const bool ok = type_ == want || (want == ColumnType::Int && type_ == ColumnType::Key);
  KILN_CHECK_TYPE(ok, "Column::{}: column \"{}\" holds {} values, not {}", accessor, name_,
                  to_string(type_), to_string(want));
}

const std::vector<float>& Column::floats() const {
  check_type(ColumnType::Float, "floats");
  return std::get<std::vector<float>>(data_);
}
std::vector<float>& Column::floats() {
  check_type(ColumnType::Float, "floats");
  return std::get<std::vector<float>>(data_);
}
const std::vector<int64_t>& Column::ints() const {
  check_type(ColumnType::Int, "ints");
  return std::get<std::vector<int64_t>>(data_);
}
std::vector<int64_t>& Column::ints() {
  check_type(ColumnType::Int, "ints");
  return std::get<std::vector<int64_t>>(data_);
}
const std::vector<std::string>& Column::strings() const {
  check_type(ColumnType::String, "strings");
  return std::get<std::vector<std::string>>(data_);
}
std::vector<std::string>& Column::strings() {
  check_type(ColumnType::String, "strings");
  return std::get<std::vector<std::string>>(data_);
}
const std::vector<int64_t>& Column::keys() const {
  check_type(ColumnType::Key, "keys");
  return std::get<std::vector<int64_t>>(data_);
}
const std::vector<std::string>& Column::key_values() const {
  check_type(ColumnType::Key, "key_values");
  return key_values_;
}

std::string Column::value_string(size_t row) const {
  KILN_CHECK(row < size(), "Column::value_string: row {} out of range for column \"{}\" of {} rows",
             row, name_, size());
  switch (type_) {
    case ColumnType::Float: {
      const float v = std::get<std::vector<float>>(data_)[row];
      return std::isnan(v) ? std::string() : fmt::format("{}", v);
    }
    case ColumnType::Int:
      return fmt::format("{}", std::get<std::vector<int64_t>>(data_)[row]);
    case ColumnType::String:
      return std::get<std::vector<std::string>>(data_)[row];
    case ColumnType::Key: {
      const int64_t k = std::get<std::vector<int64_t>>(data_)[row];
      KILN_CHECK(k >= 0 && static_cast<size_t>(k) < key_values_.size(),
                 "Column::value_string: column \"{}\" row {} has key {} but only {} key values",
                 name_, row, k, key_values_.size());
      return key_values_[static_cast<size_t>(k)];
    }
  }
  return {};
}

Column Column::select(std::span<const size_t> indices) const {
  const size_t n = size();
  for (size_t i : indices) {
    KILN_CHECK(i < n, "Column::select: index {} out of range for column \"{}\" of {} rows", i,
               name_, n);
  }
  Column out(name_, type_);
  std::visit([&](const auto& v) { out.data_ = gather(v, indices); }, data_);
  out.key_values_ = key_values_;
  return out;
}

void Column::reserve(size_t rows) {
  std::visit([&](auto& v) { v.reserve(rows); }, data_);
}

void Column::append(const Column& other) {
  if (&other == this) {
    const Column copy = other;
    append(copy);
    return;
  }
  KILN_CHECK_TYPE(type_ == other.type_,
                  "Column::append: column \"{}\" holds {} values but the rows to append hold {}",
                  name_, to_string(type_), to_string(other.type_));
  if (type_ != ColumnType::Key) {
    std::visit(
        [&](auto& dst) {
          const auto& src = std::get<std::decay_t<decltype(dst)>>(other.data_);
          dst.insert(dst.end(), src.begin(), src.end());
        },
        data_);
    return;
  }
  auto& dst = std::get<std::vector<int64_t>>(data_);
  const auto& src = std::get<std::vector<int64_t>>(other.data_);
  // Fast path: chunks from one CsvReader share a growing key table, so ours is a prefix of theirs.
  const bool prefix = other.key_values_.size() >= key_values_.size() &&
                      std::equal(key_values_.begin(), key_values_.end(), other.key_values_.begin());
  if (prefix) {
    key_values_ = other.key_values_;
    dst.insert(dst.end(), src.begin(), src.end());
    return;
  }
  // `ids` views the strings in key_values_, so no push_back below may reallocate it (a moved short
  // string changes address): reserve the worst case first.
  key_values_.reserve(key_values_.size() + other.key_values_.size());
  std::unordered_map<std::string_view, int64_t> ids;
  for (size_t i = 0; i < key_values_.size(); ++i) ids.emplace(key_values_[i], i);
  std::vector<int64_t> remap(other.key_values_.size());
  for (size_t i = 0; i < other.key_values_.size(); ++i) {
    auto it = ids.find(other.key_values_[i]);
    if (it != ids.end()) {
      remap[i] = it->second;
    } else {
      remap[i] = static_cast<int64_t>(key_values_.size());
      key_values_.push_back(other.key_values_[i]);
      ids.emplace(key_values_.back(), remap[i]);
    }
  }
  dst.reserve(dst.size() + src.size());
  for (int64_t k : src) dst.push_back(remap[static_cast<size_t>(k)]);
}

// ----------------------------------------------------------------------------------------- Table

size_t Table::num_rows() const {
  return columns_.empty() ? 0 : columns_.front().size();
}

std::vector<std::string> Table::column_names() const {
  std::vector<std::string> names;
  names.reserve(columns_.size());
  for (const Column& c : columns_) names.push_back(c.name());
  return names;
}

bool Table::has_column(std::string_view name) const {
  for (const Column& c : columns_) {
    if (c.name() == name) return true;
  }
  return false;
}

size_t Table::index_of(std::string_view name, std::string_view op) const {
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i].name() == name) return i;
  }
  throw Error(fmt::format("{}: no column named \"{}\" (available: {})", op, name,
                          quoted_list(column_names())));
}

const Column& Table::column(std::string_view name) const {
  return columns_[index_of(name, "Table::column")];
}
Column& Table::column(std::string_view name) {
  return columns_[index_of(name, "Table::column")];
}

const Column& Table::column(size_t i) const {
  KILN_CHECK(i < columns_.size(), "Table::column: index {} out of range for a table of {} columns",
             i, columns_.size());
  return columns_[i];
}
Column& Table::column(size_t i) {
  KILN_CHECK(i < columns_.size(), "Table::column: index {} out of range for a table of {} columns",
             i, columns_.size());
  return columns_[i];
}

void Table::add_column(Column column) {
  KILN_CHECK(!has_column(column.name()),
             "Table::add_column: a column named \"{}\" already exists (names must be unique)",
             column.name());
  KILN_CHECK(columns_.empty() || column.size() == num_rows(),
             "Table::add_column: column \"{}\" has {} rows but the table has {} (all columns must "
             "have the same length)",
             column.name(), column.size(), num_rows());
  columns_.push_back(std::move(column));
}

void Table::remove_column(std::string_view name) {
  columns_.erase(columns_.begin() +
                 static_cast<std::ptrdiff_t>(index_of(name, "Table::remove_column")));
}

Table Table::select_rows(std::span<const size_t> indices) const {
  const size_t n = num_rows();
  for (size_t i : indices) {
    KILN_CHECK(i < n, "Table::select_rows: index {} out of range for a table of {} rows", i, n);
  }
  Table out;
  out.columns_.reserve(columns_.size());
  for (const Column& c : columns_) out.columns_.push_back(c.select(indices));
  return out;
}

void Table::append_rows(const Table& other) {
  if (columns_.empty()) {
    columns_ = other.columns_;
    return;
  }
  KILN_CHECK(other.columns_.size() == columns_.size(),
             "Table::append_rows: the table has {} columns ({}) but the rows to append have {} "
             "({}) (names and types must match in order)",
             columns_.size(), quoted_list(column_names()), other.columns_.size(),
             quoted_list(other.column_names()));
  for (size_t i = 0; i < columns_.size(); ++i) {
    KILN_CHECK(columns_[i].name() == other.columns_[i].name(),
               "Table::append_rows: column {} is \"{}\" here but \"{}\" in the rows to append "
               "(names and types must match in order)",
               i, columns_[i].name(), other.columns_[i].name());
    KILN_CHECK_TYPE(columns_[i].type() == other.columns_[i].type(),
                    "Table::append_rows: column \"{}\" holds {} values but the rows to append hold "
                    "{} (names and types must match in order)",
                    columns_[i].name(), to_string(columns_[i].type()),
                    to_string(other.columns_[i].type()));
  }
  for (size_t i = 0; i < columns_.size(); ++i) columns_[i].append(other.columns_[i]);
}

}  // namespace kiln::data
