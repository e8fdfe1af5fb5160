// Column and Table: typed access, naming errors, row selection, appends.
#include "kiln/data/columns.h"

#include <gtest/gtest.h>

#include "kiln/tensor/error.h"

namespace kiln::data {
namespace {

template <typename E = Error, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return {};
}

Table sample() {
  Table t;
  t.add_column(Column("x", std::vector<float>{0.5f, 1.5f, 2.5f}));
  t.add_column(Column("n", std::vector<int64_t>{10, 20, 30}));
  t.add_column(Column("s", std::vector<std::string>{"a", "b", "c"}));
  t.add_column(Column::from_keys("y", {1, 0, 1}, {"cat", "dog"}));
  return t;
}

TEST(Table, NamesSizesAndTypedAccess) {
  const Table t = sample();
  EXPECT_EQ(t.num_rows(), 3u);
  EXPECT_EQ(t.num_columns(), 4u);
  EXPECT_EQ(t.column_names(), (std::vector<std::string>{"x", "n", "s", "y"}));
  EXPECT_TRUE(t.has_column("s"));
  EXPECT_FALSE(t.has_column("z"));
  EXPECT_EQ(t["n"].ints()[2], 30);
  EXPECT_EQ(t["y"].ints(), (std::vector<int64_t>{1, 0, 1}));  // keys are ints too
  EXPECT_EQ(t["y"].value_string(0), "dog");
  EXPECT_EQ(t["x"].value_string(1), "1.5");
  EXPECT_EQ(t.column(size_t{2}).name(), "s");
  EXPECT_EQ(Table().num_rows(), 0u);
}

TEST(Table, MissingColumnErrorListsNames) {
  const Table t = sample();
  EXPECT_EQ(error_of([&] { (void)t["age"]; }),
            "Table::column: no column named \"age\" (available: \"x\", \"n\", \"s\", \"y\")");
  EXPECT_EQ(error_of([&] { (void)t.column(size_t{9}); }),
            "Table::column: index 9 out of range for a table of 4 columns");
}

TEST(Table, WrongTypeIsATypeError) {
  const Table t = sample();
  EXPECT_EQ(error_of<TypeError>([&] { (void)t["s"].floats(); }),
            "Column::floats: column \"s\" holds string values, not float");
  EXPECT_EQ(error_of<TypeError>([&] { (void)t["n"].keys(); }),
            "Column::keys: column \"n\" holds int values, not key");
}

TEST(Table, AddColumnChecksNamesAndLengths) {
  Table t = sample();
  EXPECT_EQ(error_of([&] {
              t.add_column(Column("x", std::vector<float>{1, 2, 3}));
            }),
            "Table::add_column: a column named \"x\" already exists (names must be unique)");
  EXPECT_EQ(error_of([&] { t.add_column(Column("z", std::vector<float>{1})); }),
            "Table::add_column: column \"z\" has 1 rows but the table has 3 (all columns must have "
            "the same length)");
  t.remove_column("x");
  EXPECT_EQ(t.column_names(), (std::vector<std::string>{"n", "s", "y"}));
}

TEST(Table, SelectRowsForSplits) {
  const Table t = sample();
  const std::vector<size_t> rows{2, 0, 2};
  const Table s = t.select_rows(rows);
  EXPECT_EQ(s["x"].floats(), (std::vector<float>{2.5f, 0.5f, 2.5f}));
  EXPECT_EQ(s["s"].strings(), (std::vector<std::string>{"c", "a", "c"}));
  EXPECT_EQ(s["y"].key_values(), t["y"].key_values());
  const std::vector<size_t> bad{0, 3};
  EXPECT_EQ(error_of([&] { t.select_rows(bad); }),
            "Table::select_rows: index 3 out of range for a table of 3 rows");
}

TEST(Table, AppendRowsMergesKeyTables) {
  Table a;
  a.add_column(Column::from_keys("y", {0, 1}, {"cat", "dog"}));
  Table b;
  b.add_column(Column::from_keys("y", {0, 1, 0}, {"bird", "cat"}));
  a.append_rows(b);
  EXPECT_EQ(a["y"].key_values(), (std::vector<std::string>{"cat", "dog", "bird"}));
  EXPECT_EQ(a["y"].keys(), (std::vector<int64_t>{0, 1, 2, 0, 2}));
  Table c;
  c.add_column(Column("y", std::vector<std::string>{"x"}));
  EXPECT_NE(error_of<TypeError>([&] { a.append_rows(c); }).find("holds key values"),
            std::string::npos);
  EXPECT_EQ(a.num_rows(), 5u);  // untouched by the failed append
}

// Regression: the merge once looked keys up through views into a vector it was growing.
TEST(Table, AppendRowsMergesManyNewKeys) {
  Table a;
  a.add_column(Column::from_keys("y", {0}, {"k0"}));
  std::vector<std::string> values;
  std::vector<int64_t> keys;
  for (int i = 99; i >= 0; --i) values.push_back(fmt::format("k{}", i));
  for (int64_t k = 0; k < 100; ++k) keys.push_back((k * 37) % 100);
  Table b;
  b.add_column(Column::from_keys("y", keys, values));
  a.append_rows(b);
  ASSERT_EQ(a.num_rows(), 101u);
  EXPECT_EQ(a["y"].key_values().size(), 100u);
  EXPECT_EQ(a["y"].value_string(0), "k0");
  for (size_t r = 0; r < 100; ++r) EXPECT_EQ(a["y"].value_string(r + 1), b["y"].value_string(r));
}

TEST(Column, FromKeysValidates) {
  EXPECT_NE(error_of([] {
              Column::from_keys("y", {0, 2}, {"a", "b"});
            }).find("row 1 has key 2 but there are 2 key values"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              Column::from_keys("y", {0}, {"a", "a"});
            }).find("key value \"a\" appears at keys 0 and 1"),
            std::string::npos);
  Column c("z", ColumnType::Key);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_TRUE(c.key_values().empty());
}

}  // namespace
}  // namespace kiln::data
