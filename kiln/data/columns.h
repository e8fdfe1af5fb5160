#pragma once
// Named, typed columns and the Table that holds them: the in-memory form of a tabular data set, as
// ML.NET's IDataView columns are for LoadFromTextFile.
//
//   Table t = load_csv("iris.csv", {.columns = {{.name = "SepalLength", .type = ColumnType::Float},
//                                                {.name = "Species", .type = ColumnType::Key}}});
//   const std::vector<float>& x = t["SepalLength"].floats();      // (N)
//   const std::vector<int64_t>& y = t["Species"].keys();          // (N), values in [0, K)
//   const std::string& name = t["Species"].key_values()[y[0]];     // key -> original label
//   Table train = t.select_rows(split.train);
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kiln::data {

class CsvReader;

/// What a column holds. Key is ML.NET's label-as-key (MapValueToKey): each distinct string gets a
/// dense id 0..K-1 and the column keeps the strings (key_values) to map ids back.
enum class ColumnType {
  Float,   ///< std::vector<float>; missing values are NaN.
  Int,     ///< std::vector<int64_t>.
  String,  ///< std::vector<std::string>.
  Key,     ///< std::vector<int64_t> of ids in [0, key_values().size()) + the id -> string table.
};

/// "float", "int", "string" or "key" (used in error messages and saved files).
std::string_view to_string(ColumnType type);

/// One named column of equal-typed values. Cheap to move; copying copies the values.
class Column {
 public:
  using Storage = std::variant<std::vector<float>, std::vector<int64_t>, std::vector<std::string>>;

  /// An empty column of the given type (a Key column starts with no key values).
  Column(std::string name, ColumnType type);
  Column(std::string name, std::vector<float> values);
  Column(std::string name, std::vector<int64_t> values);
  Column(std::string name, std::vector<std::string> values);
  /// A Key column: keys[i] indexes key_values. Throws kiln::Error when a key is out of range or a
  /// key value repeats.
  static Column from_keys(std::string name, std::vector<int64_t> keys,
                          std::vector<std::string> key_values);

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  ColumnType type() const { return type_; }
  /// Number of rows.
  size_t size() const;

  /// The values; each throws kiln::TypeError naming the column and its type when it is another
  /// type.
  const std::vector<float>& floats() const;
  std::vector<float>& floats();
  /// Int or Key columns (for a Key column these are the key ids).
  const std::vector<int64_t>& ints() const;
  std::vector<int64_t>& ints();
  const std::vector<std::string>& strings() const;
  std::vector<std::string>& strings();
  /// Key columns only: the ids, and the string each id stands for (id -> value, ML.NET's
  /// MapKeyToValue). Keep ids below key_values().size() when editing them through ints().
  const std::vector<int64_t>& keys() const;
  const std::vector<std::string>& key_values() const;

  /// Row `row` as text: floats in shortest round-trip form ("" for NaN), ints in decimal, strings
  /// as they are, keys as their value. Throws kiln::Error when row >= size().
  std::string value_string(size_t row) const;

  /// The rows at `indices`, in that order (repeats allowed). Throws kiln::Error on an index >=
  /// size().
  Column select(std::span<const size_t> indices) const;
  /// Reserves room for `rows` values (as std::vector::reserve).
  void reserve(size_t rows);
  /// Appends `other`'s rows. Types must match; Key columns merge their key values (ids of `other`
  /// are remapped; values new to this column get the next ids).
  void append(const Column& other);

  /// The raw storage, for code that switches on the type once.
  const Storage& storage() const { return data_; }

 private:
  void check_type(ColumnType want, std::string_view accessor) const;

  std::string name_;
  ColumnType type_;
  Storage data_;
  std::vector<std::string> key_values_;  // Key only: id -> value

  friend class CsvReader;
};

/// Ordered named columns of equal length: the result of load_csv and the input of save_csv.
///
///   Table t;
///   t.add_column(Column("x", std::vector<float>{1, 2, 3}));
///   t.add_column(Column("name", std::vector<std::string>{"a", "b", "c"}));
///   Table firsts = t.select_rows(std::vector<size_t>{0, 1});   // 2 rows
class Table {
 public:
  Table() = default;

  /// Rows (every column has this many); 0 for a table without columns.
  size_t num_rows() const;
  size_t num_columns() const { return columns_.size(); }
  /// Column names in order.
  std::vector<std::string> column_names() const;
  bool has_column(std::string_view name) const;

  /// The column called `name`; throws kiln::Error listing the available names when there is none.
  const Column& column(std::string_view name) const;
  Column& column(std::string_view name);
  const Column& operator[](std::string_view name) const { return column(name); }
  Column& operator[](std::string_view name) { return column(name); }
  /// The i-th column; throws kiln::Error when i >= num_columns().
  const Column& column(size_t i) const;
  Column& column(size_t i);
  const std::vector<Column>& columns() const { return columns_; }

  /// Adds a column at the end. Throws kiln::Error when the name is taken or its length differs
  /// from num_rows() (unless the table has no columns yet).
  void add_column(Column column);
  /// Removes the column called `name` (error listing the names when there is none).
  void remove_column(std::string_view name);

  /// The rows at `indices` (in that order) of every column, e.g. the train side of a split.
  Table select_rows(std::span<const size_t> indices) const;
  /// Appends the rows of `other`, which must have the same column names and types in order.
  void append_rows(const Table& other);

  /// Rows a skip_bad_rows load dropped, and the first few reasons (file, line, column, rule).
  size_t rows_skipped() const { return rows_skipped_; }
  const std::vector<std::string>& skip_reasons() const { return skip_reasons_; }

 private:
  size_t index_of(std::string_view name, std::string_view op) const;

  std::vector<Column> columns_;
  size_t rows_skipped_ = 0;
  std::vector<std::string> skip_reasons_;

  friend class CsvReader;
};

}  // namespace kiln::data
