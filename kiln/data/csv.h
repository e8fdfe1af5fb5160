#pragma once
// Delimited text files (CSV, TSV) to and from a Table, ML.NET LoadFromTextFile-style: pick columns
// by header name or index, give each a type, get named columns back.
//
//   // Age,Name,Species          <- header (line 1)
//   // 31,"Smith, J",setosa
//   Table t = load_csv("data/train.csv",
//                      {.columns = {{.name = "Age", .type = ColumnType::Float},
//                                   {.name = "Species", .type = ColumnType::Key}}});
//   t["Age"].floats();        // (N) float, NaN where the field was empty
//   t["Species"].keys();      // (N) int64 ids, in order of first appearance
//
//   // Larger than memory: the same parse, a bounded number of rows at a time.
//   CsvReader reader("big.tsv", {.separator = '\t', .columns = specs});
//   Table chunk;
//   while (reader.next_chunk(chunk, 4096)) train_on(chunk);
//
// Format: RFC 4180 — fields separated by `separator`, records by LF or CRLF (a lone CR also ends a
// record); a field that starts with `quote` runs to the matching quote and may hold separators,
// line breaks and doubled quotes (`""` -> `"`); text after the closing quote is kept (pandas'
// leniency; lenient_quotes = false makes it an error). Tab-separated files are read without quoting
// unless allow_quoting says otherwise. UTF-8 bytes pass through untouched; a leading UTF-8
// BOM is dropped. Empty lines are skipped. Line numbers in errors are 1-based physical lines (the
// header is line 1), so a record with an embedded line break spans several: quoting errors name the
// line where the bad field starts, field-count and value errors the line where the record starts.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/data/columns.h"
#include "kiln/io/atomic_file.h"

namespace kiln::data {

/// One column to load. Selected by `index` (0-based field position) when set, else by `name` in the
/// header. The loaded column is called `name` (or the header name / "column<i>" when name is
/// empty).
struct ColumnSpec {
  std::string name = {};
  ColumnType type = ColumnType::Float;
  std::optional<size_t> index = std::nullopt;
  /// Text that stands in for an empty field. Without one: Float -> NaN, String -> "", and an empty
  /// Int or Key field is a bad row.
  std::optional<std::string> default_value = std::nullopt;
};

/// How load_csv / CsvReader read a file. Designated initializers read well:
/// `load_csv(p, {.separator = '\t', .has_header = false, .columns = {{.index = 0}}})`.
struct CsvOptions {
  char separator = ',';
  bool has_header = true;
  char quote = '"';
  /// Columns to load, in output order. Empty: every column, as strings (see infer_types).
  std::vector<ColumnSpec> columns = {};
  /// Whether a field starting with `quote` is a quoted field. Unset: yes, except in tab-separated
  /// files (separator '\t'), which have no quoting (IANA's text/tab-separated-values; ML.NET's
  /// LoadFromTextFile quotes only when asked) — so prose with quotes loads as written. When false,
  /// quote characters are ordinary data.
  std::optional<bool> allow_quoting = std::nullopt;
  /// A quoted field followed by more text before the separator, `"For this cause" he said`, reads
  /// as the quoted text plus the rest (`For this cause he said`), as pandas reads it. false: RFC
  /// 4180 strictness — such a field is a bad row ("unexpected ... after a closing quote"). An
  /// unterminated quote is an error either way.
  bool lenient_quotes = true;
  /// When true, a bad row (wrong field count, unparsable number, unterminated quote) is dropped and
  /// counted in Table::rows_skipped(); when false it throws kiln::IOError.
  bool skip_bad_rows = false;
  /// Strip spaces and tabs around fields (outside quotes). Numbers ignore surrounding spaces
  /// always.
  bool trim_whitespace = false;
  /// Stop after this many loaded (good) rows.
  std::optional<size_t> max_rows = std::nullopt;
  /// Bytes read from the file at a time. A record longer than this grows the buffer.
  size_t block_size = size_t{1} << 20;
};

/// How save_csv writes a file.
struct CsvWriteOptions {
  char separator = ',';
  bool has_header = true;
  char quote = '"';
  /// End records with CRLF (RFC 4180's wording) instead of LF.
  bool crlf = false;
  /// Quote fields that need it (a separator, quote or line break inside, blanks at the ends, an
  /// empty one-column row), doubling embedded quotes. Unset: yes, except for tab-separated files,
  /// which are written as plain text so that load_csv's default reads them back as written; a value
  /// holding a tab or a line break (or an empty value in a one-column table) then throws IOError,
  /// since plain TSV cannot hold it — set quoting = true and read with allow_quoting = true.
  std::optional<bool> quoting = std::nullopt;
};

/// Streams a delimited text file in bounded memory: the file is read `block_size` bytes at a time
/// and parsed into Tables of at most `max_rows` rows. Key columns keep one key table across chunks,
/// so a label has the same id in every chunk. Errors are kiln::IOError naming file, line and
/// column:
///   load_csv: data/train.csv line 17, column "Age": cannot parse "abc" as float
///
///   CsvReader reader("train.csv", {.columns = specs});
///   Table chunk;
///   while (reader.next_chunk(chunk, 4096)) { ... }   // chunk.num_rows() <= 4096
class CsvReader {
 public:
  /// Opens the file and reads the header (or, without a header, the first row to learn the field
  /// count), then resolves `options.columns`. Throws kiln::IOError when the file cannot be opened,
  /// a named column is missing (the message lists the header), or an index is out of range.
  explicit CsvReader(const std::filesystem::path& path, CsvOptions options = {});
  ~CsvReader();
  CsvReader(CsvReader&&) noexcept;
  CsvReader& operator=(CsvReader&&) noexcept;

  /// Replaces `chunk` with the next rows (1 .. max_rows of them). Returns false, with `chunk`
  /// holding zero rows, once the file (or options.max_rows) is exhausted. chunk.rows_skipped()
  /// counts the rows skipped while filling this chunk.
  bool next_chunk(Table& chunk, size_t max_rows = 4096);

  /// Field names of the file: the header row, or "column0", "column1", ... without one. Repeated
  /// header names get ".1", ".2" suffixes; empty ones become "column<i>".
  const std::vector<std::string>& header() const;
  /// The columns being loaded, each with its index resolved.
  const std::vector<ColumnSpec>& columns() const;
  /// Good rows returned so far, rows skipped so far and the first few skip reasons.
  size_t rows_read() const;
  size_t rows_skipped() const;
  const std::vector<std::string>& skip_reasons() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Reads a whole delimited text file into a Table (a CsvReader read in one chunk).
Table load_csv(const std::filesystem::path& path, const CsvOptions& options = {});

/// Writes `table` as RFC 4180 text: a header of column names, then one record per row. Fields that
/// hold the separator, the quote, a line break or surrounding spaces are quoted (quotes doubled).
/// Floats are written in shortest round-trip form and NaN as an empty field; Key columns as their
/// values. The file appears atomically: written to `path` + ".tmp", flushed, fsynced and renamed.
///   save_csv(t, "out.csv");   load_csv("out.csv", {.columns = same_specs}) gives t back.
void save_csv(const Table& table, const std::filesystem::path& path,
              const CsvWriteOptions& options = {});

/// The narrowest type that reads every value: Int when all parse as int64 (none empty), else Float
/// when all parse as float (empty = NaN), else String. An empty or all-empty column is String.
ColumnType infer_type(std::span<const std::string> values);
/// String columns converted to infer_type's choice; other columns unchanged.
///   Table t = infer_types(load_csv("train.csv"));
Table infer_types(const Table& table);
/// Column specs for every column of a file, types inferred from its first `sample_rows` rows (a
/// later row that does not fit then is a bad row). Uses options' separator, header and quoting.
std::vector<ColumnSpec> infer_columns(const std::filesystem::path& path, CsvOptions options = {},
                                      size_t sample_rows = 1000);

namespace detail {

/// Parses a whole field as a float: surrounding spaces ignored, leading '+' allowed, "nan"/"inf"
/// and ML.NET's "?" for missing accepted; empty gives NaN. Out-of-range values saturate to +-inf or
/// 0.
bool parse_float(std::string_view text, float& out);
/// Parses a whole field as a decimal int64 (surrounding spaces ignored, leading '+' allowed).
bool parse_int(std::string_view text, int64_t& out);

/// Backslash-escapes '\\', '\n', '\r' and '\t' so a value fits on one line of a text file.
std::string escape_text(std::string_view text);
/// Inverse of escape_text; throws kiln::IOError (prefixed by `context`) on a bad escape.
std::string unescape_text(std::string_view text, std::string_view context);

/// The atomic writer lives in kiln/io/atomic_file.h (one for every writer in Kiln).
using AtomicFile = kiln::AtomicFile;

}  // namespace detail

}  // namespace kiln::data
