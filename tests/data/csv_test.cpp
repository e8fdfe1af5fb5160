// load_csv / CsvReader / save_csv: RFC 4180 edge cases, error messages, streaming, round trips.
#include "kiln/data/csv.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "kiln/tensor/error.h"

namespace kiln::data {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() / fmt::format("kiln_csv_test_{}_{}", ::getpid(), counter++);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  fs::path write(const std::string& name, std::string_view bytes) const {
    const fs::path p = path_ / name;
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// The message of the `E` that f() throws (a test failure when it throws none).
template <typename E = IOError, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return {};
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Bitwise equality of two tables (NaN equals NaN).
void expect_same_table(const Table& a, const Table& b) {
  ASSERT_EQ(a.column_names(), b.column_names());
  ASSERT_EQ(a.num_rows(), b.num_rows());
  for (size_t c = 0; c < a.num_columns(); ++c) {
    const Column& x = a.column(c);
    const Column& y = b.column(c);
    ASSERT_EQ(x.type(), y.type()) << x.name();
    switch (x.type()) {
      case ColumnType::Float:
        for (size_t r = 0; r < x.size(); ++r) {
          const float u = x.floats()[r], v = y.floats()[r];
          EXPECT_TRUE((std::isnan(u) && std::isnan(v)) || u == v)
              << x.name() << " row " << r << ": " << u << " vs " << v;
        }
        break;
      case ColumnType::Int:
        EXPECT_EQ(x.ints(), y.ints()) << x.name();
        break;
      case ColumnType::String:
        EXPECT_EQ(x.strings(), y.strings()) << x.name();
        break;
      case ColumnType::Key:
        EXPECT_EQ(x.keys(), y.keys()) << x.name();
        EXPECT_EQ(x.key_values(), y.key_values()) << x.name();
        break;
    }
  }
}

const std::vector<ColumnSpec> kPeopleSpecs = {{.name = "Age", .type = ColumnType::Float},
                                              {.name = "Count", .type = ColumnType::Int},
                                              {.name = "Name", .type = ColumnType::String},
                                              {.name = "Species", .type = ColumnType::Key}};

TEST(LoadCsv, TypedColumnsByName) {
  TempDir dir;
  const auto p = dir.write("people.csv",
                           "Name,Age,Species,Count\n"
                           "ann,31.5,cat,3\n"
                           "bob,-2,dog,-4\n"
                           "cy,1e3,cat,+7\n");
  const Table t = load_csv(p, {.columns = kPeopleSpecs});
  EXPECT_EQ(t.column_names(), (std::vector<std::string>{"Age", "Count", "Name", "Species"}));
  ASSERT_EQ(t.num_rows(), 3u);
  EXPECT_EQ(t["Age"].floats(), (std::vector<float>{31.5f, -2.f, 1000.f}));
  EXPECT_EQ(t["Count"].ints(), (std::vector<int64_t>{3, -4, 7}));
  EXPECT_EQ(t["Name"].strings(), (std::vector<std::string>{"ann", "bob", "cy"}));
  EXPECT_EQ(t["Species"].keys(), (std::vector<int64_t>{0, 1, 0}));
  EXPECT_EQ(t["Species"].key_values(), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(t.rows_skipped(), 0u);
}

TEST(LoadCsv, AllColumnsAsStringsWhenNoneGiven) {
  TempDir dir;
  const auto p = dir.write("a.csv", "x,y\n1,hello\n2,world\n");
  const Table t = load_csv(p);
  EXPECT_EQ(t.column_names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(t["x"].strings(), (std::vector<std::string>{"1", "2"}));
  const Table typed = infer_types(t);
  EXPECT_EQ(typed["x"].type(), ColumnType::Int);
  EXPECT_EQ(typed["y"].type(), ColumnType::String);
}

TEST(LoadCsv, QuotedSeparatorsAndDoubledQuotes) {
  TempDir dir;
  const auto p = dir.write("q.csv",
                           "name,quote\n"
                           "\"Smith, J\",\"He said \"\"hi\"\"\"\n"
                           "\"\",\"\"\"\"\n"
                           "plain,\"a,b,,c\"\n");
  const Table t = load_csv(p);
  EXPECT_EQ(t["name"].strings(), (std::vector<std::string>{"Smith, J", "", "plain"}));
  EXPECT_EQ(t["quote"].strings(), (std::vector<std::string>{"He said \"hi\"", "\"", "a,b,,c"}));
}

TEST(LoadCsv, EmbeddedNewlinesKeepLineNumbersRight) {
  TempDir dir;
  const auto p = dir.write("nl.csv",
                           "text,Age\n"                    // line 1
                           "\"two\nlines\",1\n"            // lines 2-3
                           "\"three\r\nline\nfield\",2\n"  // lines 4-6
                           "ok,abc\n");                    // line 7
  const std::string msg = error_of([&] {
    load_csv(p, {.columns = {{.name = "text", .type = ColumnType::String},
                             {.name = "Age", .type = ColumnType::Float}}});
  });
  EXPECT_EQ(msg, fmt::format("load_csv: {} line 7, column \"Age\": cannot parse \"abc\" as float",
                             p.string()));
  const Table t = load_csv(p, {.max_rows = 2});
  EXPECT_EQ(t["text"].strings(), (std::vector<std::string>{"two\nlines", "three\r\nline\nfield"}));
}

TEST(LoadCsv, CrlfEqualsLf) {
  TempDir dir;
  const auto lf = dir.write("lf.csv", "a,b\n1,x\n2,\"y\nz\"\n3,w");
  const auto crlf = dir.write("crlf.csv", "a,b\r\n1,x\r\n2,\"y\nz\"\r\n3,w\r\n");
  const CsvOptions o{.columns = {{.name = "a", .type = ColumnType::Int},
                                 {.name = "b", .type = ColumnType::String}}};
  const auto cr = dir.write("cr.csv", "a,b\r1,x\r2,\"y\nz\"\r3,w\r");  // classic Mac line ends
  expect_same_table(load_csv(lf, o), load_csv(crlf, o));
  expect_same_table(load_csv(lf, o), load_csv(cr, o));
  EXPECT_EQ(load_csv(crlf, o)["b"].strings(), (std::vector<std::string>{"x", "y\nz", "w"}));
}

TEST(LoadCsv, Utf8BomIsDroppedAndUtf8PassesThrough) {
  TempDir dir;
  const auto p = dir.write("bom.csv", "\xEF\xBB\xBFname,city\n\xC3\xA9milie,Z\xC3\xBCrich\n");
  for (size_t block : {1, 2, 3, 4, 1024}) {
    const Table t = load_csv(p, {.block_size = block});
    EXPECT_EQ(t.column_names(), (std::vector<std::string>{"name", "city"})) << block;
    EXPECT_EQ(t["city"].strings(), (std::vector<std::string>{"Z\xC3\xBCrich"}));
    EXPECT_EQ(t["name"].strings(), (std::vector<std::string>{"\xC3\xA9milie"}));
  }
}

TEST(LoadCsv, EmptyFields) {
  TempDir dir;
  const auto p = dir.write("e.csv", "f,i,s,k\n,1,,a\n2.5,,x,\n");
  const Table t =
      load_csv(p, {.columns = {{.name = "f", .type = ColumnType::Float},
                               {.name = "i", .type = ColumnType::Int, .default_value = "-1"},
                               {.name = "s", .type = ColumnType::String},
                               {.name = "k", .type = ColumnType::Key, .default_value = "none"}}});
  EXPECT_TRUE(std::isnan(t["f"].floats()[0]));
  EXPECT_EQ(t["f"].floats()[1], 2.5f);
  EXPECT_EQ(t["i"].ints(), (std::vector<int64_t>{1, -1}));
  EXPECT_EQ(t["s"].strings(), (std::vector<std::string>{"", "x"}));
  EXPECT_EQ(t["k"].key_values(), (std::vector<std::string>{"a", "none"}));

  const std::string msg =
      error_of([&] { load_csv(p, {.columns = {{.name = "i", .type = ColumnType::Int}}}); });
  EXPECT_EQ(msg, fmt::format("load_csv: {} line 3, column \"i\": empty int field (give "
                             "ColumnSpec::default_value or load it as float to read empty as NaN)",
                             p.string()));
  EXPECT_NE(error_of([&] {
              load_csv(p, {.columns = {{.name = "k", .type = ColumnType::Key}}});
            }).find("line 3, column \"k\": empty key field"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              load_csv(p,
                       {.columns = {{.name = "i", .type = ColumnType::Int, .default_value = "x"}}});
            }).find("column \"i\": default value \"x\" is not a valid int"),
            std::string::npos);
}

TEST(LoadCsv, MissingColumnListsAvailableColumns) {
  TempDir dir;
  const auto p = dir.write("m.csv", "Age,Name, Fare\n1,a,2\n");
  const std::string msg = error_of([&] { load_csv(p, {.columns = {{.name = "Agee"}}}); });
  EXPECT_EQ(msg, fmt::format("load_csv: {}: no column named \"Agee\" (available: \"Age\", "
                             "\"Name\", \" Fare\")",
                             p.string()));
  EXPECT_NE(error_of([&] {
              load_csv(p, {.columns = {{.name = "x", .index = 3}}});
            }).find("column index 3 is out of range (the file has 3 columns: Age, Name,  Fare)"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              load_csv(p, {.has_header = false, .columns = {{.name = "Age"}}});
            }).find("has no index and the file has no header"),
            std::string::npos);
}

TEST(LoadCsv, RaggedRowNamesFileAndLine) {
  TempDir dir;
  const auto p = dir.write("ragged.csv", "a,b,c\n1,2,3\n4,5\n6,7,8\n");
  EXPECT_EQ(error_of([&] { load_csv(p); }),
            fmt::format("load_csv: {} line 3: expected 3 fields but found 2 (every row must have "
                        "as many fields as the header)",
                        p.string()));
  const auto q = dir.write("long.csv", "1,2\n3,4,5\n");
  EXPECT_NE(error_of([&] { load_csv(q, {.has_header = false}); })
                .find("line 2: expected 2 fields but found 3 (every row must have as many fields "
                      "as the first row)"),
            std::string::npos);
}

TEST(LoadCsv, ParseErrorMessageMatchesTheDocumentedForm) {
  TempDir dir;
  const auto p = dir.write("train.csv", "Name,Age\nann,31\nbob,abc\n");
  EXPECT_EQ(error_of([&] { load_csv(p, {.columns = {{.name = "Age"}}}); }),
            fmt::format("load_csv: {} line 3, column \"Age\": cannot parse \"abc\" as float",
                        p.string()));
  const auto q = dir.write("int.csv", "n\n1.5\n");
  EXPECT_NE(error_of([&] {
              load_csv(q, {.columns = {{.name = "n", .type = ColumnType::Int}}});
            }).find("line 2, column \"n\": cannot parse \"1.5\" as int"),
            std::string::npos);
  const auto big = dir.write("big.csv", "n\n9223372036854775808\n");
  EXPECT_NE(error_of([&] {
              load_csv(big, {.columns = {{.name = "n", .type = ColumnType::Int}}});
            }).find("cannot parse \"9223372036854775808\" as int"),
            std::string::npos);
}

TEST(LoadCsv, UnterminatedQuoteAndJunkAfterQuote) {
  TempDir dir;
  const auto p = dir.write("u.csv", "a,b\n1,2\n3,\"open\n4,5\n");
  EXPECT_NE(error_of([&] {
              load_csv(p);
            }).find(fmt::format("{} line 3, column \"b\": unterminated quoted field", p.string())),
            std::string::npos);
  // RFC 4180 strictness on request: text after a closing quote is an error naming line and column.
  const auto q = dir.write("j.csv", "a,b\n\"x\"y,1\n2,3\n");
  EXPECT_NE(error_of([&] {
              load_csv(q, {.lenient_quotes = false});
            }).find("line 2, column \"a\": unexpected y after a closing quote"),
            std::string::npos);
  const Table t = load_csv(q, {.lenient_quotes = false, .skip_bad_rows = true});
  EXPECT_EQ(t["a"].strings(), (std::vector<std::string>{"2"}));
  EXPECT_EQ(t.rows_skipped(), 1u);
}

TEST(LoadCsv, SkipBadRowsCountsAndExplains) {
  TempDir dir;
  const auto p = dir.write("bad.csv",
                           "x,y\n"
                           "1,2\n"
                           "oops,3\n"  // line 3: bad float
                           "4\n"       // line 4: ragged
                           "5,6\n"
                           "7,\"8\n");  // line 6: unterminated
  const CsvOptions o{.columns = {{.name = "x"}, {.name = "y"}}, .skip_bad_rows = true};
  const Table t = load_csv(p, o);
  EXPECT_EQ(t["x"].floats(), (std::vector<float>{1, 5}));
  EXPECT_EQ(t["y"].floats(), (std::vector<float>{2, 6}));
  EXPECT_EQ(t.rows_skipped(), 3u);
  ASSERT_EQ(t.skip_reasons().size(), 3u);
  EXPECT_NE(t.skip_reasons()[0].find("line 3, column \"x\": cannot parse \"oops\" as float"),
            std::string::npos);
  EXPECT_NE(t.skip_reasons()[1].find("line 4: expected 2 fields but found 1"), std::string::npos);
  EXPECT_NE(t.skip_reasons()[2].find("line 6, column \"y\": unterminated"), std::string::npos);
}

TEST(LoadCsv, SkipReasonsAreCapped) {
  TempDir dir;
  std::string text = "x\n";
  for (int i = 0; i < 100; ++i) text += "bad\n1\n";
  const Table t =
      load_csv(dir.write("many.csv", text), {.columns = {{.name = "x"}}, .skip_bad_rows = true});
  EXPECT_EQ(t.num_rows(), 100u);
  EXPECT_EQ(t.rows_skipped(), 100u);
  EXPECT_EQ(t.skip_reasons().size(), 8u);
}

TEST(LoadCsv, TabSeparated) {
  TempDir dir;
  const auto p = dir.write("d.tsv", "label\ttext\nspam\tbuy now, cheap\nham\t\"tab\tinside\"\n");
  // Quoted tabs need quoting turned on: plain TSV has none, so the row has 3 fields.
  EXPECT_NE(error_of([&] {
              load_csv(p, {.separator = '\t'});
            }).find("d.tsv line 3: expected 2 fields but found 3"),
            std::string::npos);
  const Table t = load_csv(p, {.separator = '\t',
                               .columns = {{.name = "label", .type = ColumnType::Key},
                                           {.name = "text", .type = ColumnType::String}},
                               .allow_quoting = true});
  EXPECT_EQ(t["text"].strings(), (std::vector<std::string>{"buy now, cheap", "tab\tinside"}));
  EXPECT_EQ(t["label"].key_values(), (std::vector<std::string>{"spam", "ham"}));
}

TEST(LoadCsv, NoHeaderSelectsByIndex) {
  TempDir dir;
  const auto p = dir.write("nh.csv", "1,a,0.5\n2,b,1.5\n");
  const Table t = load_csv(p, {.has_header = false,
                               .columns = {{.name = "", .type = ColumnType::Float, .index = 2},
                                           {.name = "id", .type = ColumnType::Int, .index = 0}}});
  EXPECT_EQ(t.column_names(), (std::vector<std::string>{"column2", "id"}));
  EXPECT_EQ(t["column2"].floats(), (std::vector<float>{0.5f, 1.5f}));
  EXPECT_EQ(t["id"].ints(), (std::vector<int64_t>{1, 2}));
  const Table all = load_csv(p, {.has_header = false});
  EXPECT_EQ(all.column_names(), (std::vector<std::string>{"column0", "column1", "column2"}));
  EXPECT_EQ(all.num_rows(), 2u);
}

TEST(LoadCsv, HeaderSelectByIndexAndRename) {
  TempDir dir;
  const auto p = dir.write("h.csv", "a,b\n1,2\n");
  const Table t = load_csv(p, {.columns = {{.name = "second", .index = 1}, {.index = 0}}});
  EXPECT_EQ(t.column_names(), (std::vector<std::string>{"second", "a"}));
  EXPECT_EQ(t["second"].floats(), (std::vector<float>{2}));
  EXPECT_NE(error_of([&] {
              load_csv(p, {.columns = {{.name = "a"}, {.name = "a", .index = 1}}});
            }).find("two loaded columns are named \"a\""),
            std::string::npos);
}

TEST(LoadCsv, MaxRowsTrimAndNoQuoting) {
  TempDir dir;
  const auto p = dir.write("t.csv", " a , b \n 1 , \" x \" \n2,y\n3,z\n");
  const Table t = load_csv(p, {.trim_whitespace = true, .max_rows = 2});
  EXPECT_EQ(t.column_names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(t["a"].strings(), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(t["b"].strings(), (std::vector<std::string>{" x ", "y"}));  // quotes keep spaces
  const Table raw = load_csv(p, {.allow_quoting = false});
  EXPECT_EQ(raw.column_names(), (std::vector<std::string>{" a ", " b "}));
  EXPECT_EQ(raw[" b "].strings()[0], " \" x \" ");
}

TEST(LoadCsv, NumbersAcceptTheUsualSpellings) {
  TempDir dir;
  const auto p = dir.write("n.csv", "f\n+1.5\n 2 \nnan\ninf\n-inf\n?\n1e-60\n1e60\n-0\n0x10\n");
  const Table t = load_csv(p, {.columns = {{.name = "f"}}, .skip_bad_rows = true});
  const auto& f = t["f"].floats();
  ASSERT_EQ(f.size(), 9u);
  EXPECT_EQ(f[0], 1.5f);
  EXPECT_EQ(f[1], 2.f);
  EXPECT_TRUE(std::isnan(f[2]));
  EXPECT_EQ(f[3], std::numeric_limits<float>::infinity());
  EXPECT_EQ(f[4], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f[5]));  // ML.NET's missing-value mark
  EXPECT_EQ(f[6], 0.f);           // underflow flushes to zero
  EXPECT_EQ(f[7], std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::signbit(f[8]));
  EXPECT_EQ(t.rows_skipped(), 1u);  // hex is not a decimal float
}

TEST(LoadCsv, EmptyFilesBlankLinesAndMissingFinalNewline) {
  TempDir dir;
  EXPECT_NE(error_of([&] {
              load_csv(dir.write("empty.csv", ""));
            }).find("is empty (expected a header row)"),
            std::string::npos);
  EXPECT_EQ(load_csv(dir.write("empty2.csv", ""), {.has_header = false}).num_rows(), 0u);
  const Table header_only = load_csv(dir.write("h.csv", "a,b\n"), {.columns = {{.name = "b"}}});
  EXPECT_EQ(header_only.column_names(), (std::vector<std::string>{"b"}));
  EXPECT_EQ(header_only.num_rows(), 0u);
  const Table blank = load_csv(dir.write("b.csv", "\n\na,b\n\n1,2\r\n\r\n3,4"));
  EXPECT_EQ(blank["a"].strings(), (std::vector<std::string>{"1", "3"}));
  EXPECT_EQ(blank["b"].strings(), (std::vector<std::string>{"2", "4"}));
}

TEST(LoadCsv, DuplicateAndEmptyHeaderNamesAreMadeUnique) {
  TempDir dir;
  const Table t = load_csv(dir.write("d.csv", "x,x,,x\n1,2,3,4\n"));
  EXPECT_EQ(t.column_names(), (std::vector<std::string>{"x", "x.1", "column2", "x.2"}));
}

TEST(LoadCsv, MissingFileIsAnIOError) {
  EXPECT_NE(error_of([] {
              load_csv("/nonexistent/dir/train.csv");
            }).find("load_csv: cannot open /nonexistent/dir/train.csv: No such file"),
            std::string::npos);
}

// A file full of boundary cases, read whole and in every small block / chunk size: the same table.
TEST(CsvReader, SmallChunksAndBlocksEqualWholeFileLoad) {
  TempDir dir;
  std::string text = "\xEF\xBB\xBFid,label,text,score\r\n";
  for (int i = 0; i < 40; ++i) {
    const char* labels[] = {"spam", "ham", "eggs"};
    text += fmt::format("{},{},\"row {} says \"\"hi\"\",\nsee\r\nyou\",{}\r\n", i,
                        labels[i % 3 == 2 ? 2 : i % 2], i, i * 0.25);
    if (i % 7 == 0) text += "\r\n";  // blank line
  }
  text += "99,ham,last,1";  // no final newline
  const auto p = dir.write("stream.csv", text);
  const CsvOptions base{.columns = {{.name = "id", .type = ColumnType::Int},
                                    {.name = "label", .type = ColumnType::Key},
                                    {.name = "text", .type = ColumnType::String},
                                    {.name = "score", .type = ColumnType::Float}}};
  const Table whole = load_csv(p, base);
  ASSERT_EQ(whole.num_rows(), 41u);
  EXPECT_EQ(whole["text"].strings()[3], "row 3 says \"hi\",\nsee\r\nyou");
  for (size_t block : {1, 2, 3, 5, 8, 13, 64}) {
    for (size_t rows : {1, 2, 7, 100}) {
      CsvOptions o = base;
      o.block_size = block;
      CsvReader reader(p, o);
      Table all, chunk;
      size_t chunks = 0;
      while (reader.next_chunk(chunk, rows)) {
        EXPECT_LE(chunk.num_rows(), rows);
        all.append_rows(chunk);
        ++chunks;
      }
      EXPECT_EQ(chunk.num_rows(), 0u);
      EXPECT_EQ(chunks, (41 + rows - 1) / rows);
      EXPECT_EQ(reader.rows_read(), 41u);
      SCOPED_TRACE(fmt::format("block {} rows {}", block, rows));
      expect_same_table(all, whole);
    }
  }
}

TEST(CsvReader, KeyIdsAreStableAcrossChunks) {
  TempDir dir;
  const auto p = dir.write("k.csv", "y\na\nb\na\nc\nb\n");
  CsvReader reader(p, {.columns = {{.name = "y", .type = ColumnType::Key}}});
  Table chunk;
  ASSERT_TRUE(reader.next_chunk(chunk, 2));
  EXPECT_EQ(chunk["y"].keys(), (std::vector<int64_t>{0, 1}));
  ASSERT_TRUE(reader.next_chunk(chunk, 2));
  EXPECT_EQ(chunk["y"].keys(), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(chunk["y"].key_values(), (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_TRUE(reader.next_chunk(chunk, 2));
  EXPECT_EQ(chunk["y"].keys(), (std::vector<int64_t>{1}));
  EXPECT_FALSE(reader.next_chunk(chunk, 2));
  EXPECT_EQ(reader.header(), (std::vector<std::string>{"y"}));
  EXPECT_EQ(reader.columns()[0].index, std::optional<size_t>(0));
}

TEST(CsvReader, ChunksReportTheirOwnSkips) {
  TempDir dir;
  const auto p = dir.write("s.csv", "x\n1\nbad\n2\n3\nbad\nbad\n");
  CsvReader reader(p, {.columns = {{.name = "x"}}, .skip_bad_rows = true});
  Table chunk;
  ASSERT_TRUE(reader.next_chunk(chunk, 2));
  EXPECT_EQ(chunk.rows_skipped(), 1u);
  ASSERT_TRUE(reader.next_chunk(chunk, 2));  // "3", then the two bad rows and end of file
  EXPECT_EQ(chunk.num_rows(), 1u);
  EXPECT_EQ(chunk.rows_skipped(), 2u);
  EXPECT_FALSE(reader.next_chunk(chunk, 2));
  EXPECT_EQ(chunk.rows_skipped(), 0u);
  EXPECT_EQ(reader.rows_skipped(), 3u);
  EXPECT_EQ(reader.skip_reasons().size(), 3u);
}

TEST(SaveCsv, RoundTripsEveryType) {
  TempDir dir;
  Table t;
  const float inf = std::numeric_limits<float>::infinity();
  t.add_column(Column(
      "f", std::vector<float>{1.5f, std::nanf(""), -inf, 1e-30f, 0.1f, -0.f, 3.4028235e38f}));
  t.add_column(Column("i", std::vector<int64_t>{0, -1, std::numeric_limits<int64_t>::min(),
                                                std::numeric_limits<int64_t>::max(), 42, 7, 8}));
  t.add_column(Column("s", std::vector<std::string>{"plain", "a,b", "say \"hi\"", "two\nlines",
                                                    " padded ", "", "caf\xC3\xA9\r\n"}));
  t.add_column(Column::from_keys("k, label", {1, 0, 1, 2, 0, 0, 2}, {"x", "y,z", "\"q\""}));
  const CsvOptions o{.columns = {{.name = "f", .type = ColumnType::Float},
                                 {.name = "i", .type = ColumnType::Int},
                                 {.name = "s", .type = ColumnType::String},
                                 {.name = "k, label", .type = ColumnType::Key}}};
  for (const CsvWriteOptions& w : {CsvWriteOptions{}, CsvWriteOptions{.crlf = true}}) {
    const fs::path p = dir / "round.csv";
    save_csv(t, p, w);
    EXPECT_FALSE(fs::exists(dir / "round.csv.tmp"));
    const Table back = load_csv(p, o);
    // Keys come back numbered by first appearance: "y,z" first, then "x", then "\"q\"".
    EXPECT_EQ(back["k, label"].key_values(), (std::vector<std::string>{"y,z", "x", "\"q\""}));
    for (size_t r = 0; r < t.num_rows(); ++r) {
      EXPECT_EQ(back["k, label"].value_string(r), t["k, label"].value_string(r));
    }
    Table same_keys = back;
    same_keys.remove_column("k, label");
    Table expected = t;
    expected.remove_column("k, label");
    expect_same_table(same_keys, expected);
  }
  const std::string text = read_bytes(dir / "round.csv");
  EXPECT_EQ(text.substr(0, text.find('\r')), "f,i,s,\"k, label\"");
}

// Real prose: speech excerpts in a TSV (a label and a text column) quote people and use
// apostrophes. Tab-separated values have no quoting (IANA), so the text loads as written.
TEST(LoadCsv, TabSeparatedProseLoadsAsWritten) {
  TempDir dir;
  const auto p = dir.write("speeches.tsv",
                           "Label\tText\r\n"
                           "polk\t\"For this cause alone …\" by General Paredes.\r\n"
                           "lincoln\tIt's \"a new birth of freedom\", he said; \"\"\" stays.\r\n"
                           "grant\t\"Let us have peace.\"\r\n");
  const Table t = load_csv(p, {.separator = '\t'});
  EXPECT_EQ(t["Text"].strings(),
            (std::vector<std::string>{"\"For this cause alone …\" by General Paredes.",
                                      "It's \"a new birth of freedom\", he said; \"\"\" stays.",
                                      "\"Let us have peace.\""}));
  EXPECT_EQ(t["Label"].strings(), (std::vector<std::string>{"polk", "lincoln", "grant"}));
  // Quoting on request: the quoted part and the text after it form the field (pandas' reading).
  const Table q = load_csv(p, {.separator = '\t', .allow_quoting = true});
  EXPECT_EQ(q["Text"].strings()[0], "For this cause alone … by General Paredes.");
  EXPECT_EQ(q["Text"].strings()[2], "Let us have peace.");
}

TEST(LoadCsv, LenientQuotesKeepTheTextAfterTheClosingQuote) {
  TempDir dir;
  // CRLF line ends, a tab and a comma inside quoted fields, doubled quotes, an apostrophe.
  const auto p = dir.write("q.csv",
                           "a,b\r\n"
                           "\"x\" y,1\r\n"
                           "\"say \"\"hi\"\"\" there,2\r\n"
                           "\"tab\there, and comma\",3\r\n"
                           "it's fine,4\r\n");
  const Table t = load_csv(p);
  EXPECT_EQ(t["a"].strings(), (std::vector<std::string>{"x y", "say \"hi\" there",
                                                        "tab\there, and comma", "it's fine"}));
  EXPECT_EQ(t["b"].strings(), (std::vector<std::string>{"1", "2", "3", "4"}));
  // Trimming applies to the joined field's end too.
  const auto w = dir.write("w.csv", "a,b\n\"x\" y  ,1\n");
  EXPECT_EQ(load_csv(w, {.trim_whitespace = true})["a"].strings()[0], "x y");
  // A truly broken file is still an error that names line and column.
  const auto u = dir.write("u.csv", "a,b\n1,2\n\"open,3\n");
  EXPECT_NE(error_of([&] { load_csv(u); }).find("line 3, column \"a\": unterminated quoted field"),
            std::string::npos);
}

TEST(SaveCsv, TsvAndOneColumnWithEmptyValues) {
  TempDir dir;
  Table t;
  t.add_column(Column("s", std::vector<std::string>{"a", "", "b\tc", ""}));
  // Plain TSV cannot hold a tab inside a value or an empty one-column row: an error, not a file
  // that reads back differently.
  EXPECT_NE(error_of([&] {
              save_csv(t, dir / "plain.tsv", {.separator = '\t'});
            }).find("would be a blank line"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "plain.tsv"));
  // With quoting on both sides it round-trips.
  save_csv(t, dir / "one.tsv", {.separator = '\t', .quoting = true});
  EXPECT_EQ(read_bytes(dir / "one.tsv"), "s\na\n\"\"\n\"b\tc\"\n\"\"\n");
  expect_same_table(load_csv(dir / "one.tsv", {.separator = '\t', .allow_quoting = true}), t);
  // Prose with quotes round-trips through plain TSV, quotes as written.
  Table prose;
  prose.add_column(Column("text", std::vector<std::string>{"\"Go\" he said", "it's \"\"", "x"}));
  save_csv(prose, dir / "prose.tsv", {.separator = '\t'});
  EXPECT_EQ(read_bytes(dir / "prose.tsv"), "text\n\"Go\" he said\nit's \"\"\nx\n");
  expect_same_table(load_csv(dir / "prose.tsv", {.separator = '\t'}), prose);
}

TEST(SaveCsv, ReplacesAnExistingFileAtomically) {
  TempDir dir;
  const auto p = dir.write("out.csv", "old contents\n");
  Table t;
  t.add_column(Column("x", std::vector<int64_t>{1, 2}));
  save_csv(t, p);
  EXPECT_EQ(read_bytes(p), "x\n1\n2\n");
  EXPECT_FALSE(fs::exists(dir / "out.csv.tmp"));
  EXPECT_THROW(save_csv(t, dir / "no_such_dir" / "x.csv"), IOError);
}

TEST(InferColumns, PicksTheNarrowestType) {
  TempDir dir;
  const auto p = dir.write("i.csv", "a,b,c,d,e\n1,1.5,x,,1\n2,,y,,\n-3,2,3,,4\n");
  const auto specs = infer_columns(p);
  ASSERT_EQ(specs.size(), 5u);
  EXPECT_EQ(specs[0].type, ColumnType::Int);
  EXPECT_EQ(specs[1].type, ColumnType::Float);
  EXPECT_EQ(specs[2].type, ColumnType::String);
  EXPECT_EQ(specs[3].type, ColumnType::String);  // all empty
  EXPECT_EQ(specs[4].type, ColumnType::Float);   // ints with a gap read as float with NaN
  const Table t = load_csv(p, {.columns = specs});
  EXPECT_EQ(t["a"].ints(), (std::vector<int64_t>{1, 2, -3}));
  EXPECT_TRUE(std::isnan(t["e"].floats()[1]));
}

// Random bytes, CSV-ish noise and every truncation of a valid file: each load either returns a
// consistent table or throws kiln::Error — never crashes, hangs or throws anything else.
TEST(LoadCsv, FuzzNeverCrashes) {
  TempDir dir;
  uint64_t state = 12345;
  auto next = [&] {  // splitmix64, seeded
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  const std::string alphabet = "a1.-e,,,\"\"\n\n\r\t ?\xEF\xBB\xBF";
  const std::string valid =
      "\xEF\xBB\xBFid,name,score\r\n1,\"a, \"\"b\"\"\",0.5\n2,\"x\ny\",\n3,z,1e3\n";
  auto run = [&](const fs::path& p, size_t trial) {
    CsvOptions o;
    o.separator = (trial % 3 == 0) ? '\t' : ',';
    o.has_header = trial % 2 == 0;
    o.skip_bad_rows = trial % 5 < 2;
    o.trim_whitespace = trial % 7 == 0;
    o.allow_quoting = trial % 11 != 0;
    o.lenient_quotes = trial % 13 != 0;
    o.block_size = 1 + trial % 9;
    if (trial % 4 == 1) {
      o.columns = {{.name = "a", .type = ColumnType::Float, .index = 0},
                   {.name = "b", .type = ColumnType::Int, .index = 1, .default_value = "0"},
                   {.name = "c", .type = ColumnType::Key, .index = 2, .default_value = "?"}};
    }
    try {
      CsvReader reader(p, o);
      Table chunk;
      while (reader.next_chunk(chunk, 1 + trial % 4)) {
        for (const Column& c : chunk.columns()) ASSERT_EQ(c.size(), chunk.num_rows());
      }
    } catch (const Error&) {
      // A clean rejection is fine.
    }
  };
  for (size_t file = 0; file < 300; ++file) {
    std::string bytes;
    const size_t len = next() % 120;
    for (size_t i = 0; i < len; ++i) {
      bytes += file % 2 ? static_cast<char>(next() & 0xFF) : alphabet[next() % alphabet.size()];
    }
    const auto p = dir.write("fuzz.csv", bytes);
    for (size_t trial = 0; trial < 12; ++trial) run(p, file * 12 + trial);
  }
  for (size_t cut = 0; cut <= valid.size(); ++cut) {
    const auto p = dir.write("cut.csv", valid.substr(0, cut));
    for (size_t trial = 0; trial < 24; ++trial) run(p, trial);
  }
}

}  // namespace
}  // namespace kiln::data
