#include "kiln/data/csv.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <utility>

#include "kiln/tensor/error.h"

namespace kiln::data {

namespace {

constexpr size_t kMaxSkipReasons = 8;  // reasons kept per reader and per chunk
constexpr size_t kMaxShownValue = 48;  // bytes of a bad value quoted in an error

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// A bad value as an error shows it: cut to kMaxShownValue bytes, line breaks escaped.
std::string shown(std::string_view value) {
  std::string out = detail::escape_text(value.substr(0, std::min(value.size(), kMaxShownValue)));
  if (value.size() > kMaxShownValue) out += "...";
  return out;
}

// Hash that lets unordered_map<std::string, ...> look up a string_view without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Id table of one Key column, shared by every chunk of a reader (ids in order of first appearance).
struct KeyTable {
  std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>> ids;
  std::vector<std::string> values;

  int64_t id(std::string_view value) {
    auto it = ids.find(value);
    if (it != ids.end()) return it->second;
    const auto id = static_cast<int64_t>(values.size());
    values.emplace_back(value);
    ids.emplace(values.back(), id);
    return id;
  }
};

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

enum class Parse { Record, End, Incomplete, Malformed };

// Where a field's bytes are: the read buffer, or `scratch` when doubled quotes had to be undone.
struct FieldRef {
  size_t begin, size;
  bool in_scratch;
};

}  // namespace

// ------------------------------------------------------------------------------ parse helpers

namespace detail {

bool parse_float(std::string_view text, float& out) {
  std::string_view s = trim(text);
  if (s.empty() || s == "?") {
    out = std::numeric_limits<float>::quiet_NaN();
    return true;
  }
  if (s.front() == '+') {
    s.remove_prefix(1);
    if (s.empty() || s.front() == '-' || s.front() == '+') return false;
  }
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, out);
  if (ptr != end) return false;
  if (ec == std::errc::result_out_of_range) {
    // Saturate as strtof would: overflow -> +-inf, underflow -> 0 (from_chars leaves `out` unset).
    const std::string copy(s);
    out = std::strtof(copy.c_str(), nullptr);
    return true;
  }
  return ec == std::errc();
}

bool parse_int(std::string_view text, int64_t& out) {
  std::string_view s = trim(text);
  if (!s.empty() && s.front() == '+') {
    s.remove_prefix(1);
    if (!s.empty() && s.front() == '-') return false;
  }
  if (s.empty()) return false;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, out);
  return ec == std::errc() && ptr == end;
}

std::string escape_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string unescape_text(std::string_view text, std::string_view context) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out += text[i];
      continue;
    }
    const char c = i + 1 < text.size() ? text[++i] : '\0';
    switch (c) {
      case '\\':
        out += '\\';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      default:
        throw IOError(
            fmt::format("{}: bad escape in \"{}\" (only \\\\, \\n, \\r and \\t are valid)", context,
                        shown(text)));
    }
  }
  return out;
}

}  // namespace detail

// ---------------------------------------------------------------------------------- CsvReader

struct CsvReader::State {
  // Resolved output column: where it comes from and how an empty field is filled.
  struct Slot {
    ColumnSpec spec;  // index always set
    float float_default = std::numeric_limits<float>::quiet_NaN();
    int64_t int_default = 0;
    bool has_default = false;
    KeyTable keys = {};
  };

  std::string path;  // as given, for messages
  CsvOptions opt;
  std::unique_ptr<std::FILE, FileCloser> file;

  // Read buffer: bytes [begin, end) of `buf` are read but not yet parsed.
  std::vector<char> buf;
  size_t begin = 0, end = 0;
  bool eof = false;
  size_t file_size = 0;          // 0 when unknown (a pipe)
  size_t bytes_read = 0;         // from the file so far
  size_t line = 1;               // physical line of the byte at `begin`
  std::array<bool, 256> stop{};  // bytes that end an unquoted field

  // The record just parsed.
  std::vector<FieldRef> refs;
  std::string scratch;
  std::vector<std::string_view> fields;
  size_t record_line = 0;
  std::string error;  // why the last record was Malformed

  // Schema.
  std::vector<std::string> header;
  size_t expected = 0;  // fields per record, once known
  bool expected_known = false;
  std::vector<ColumnSpec> specs;
  std::vector<Slot> slots;
  std::vector<std::string> pending;  // header-less files: the first record, read to count fields
  bool has_pending = false;
  size_t pending_line = 0;

  // Per-row scratch for the two-phase convert (validate everything, then append).
  std::vector<float> row_floats;
  std::vector<int64_t> row_ints;

  size_t rows_read = 0, rows_skipped = 0;
  std::vector<std::string> reasons;
  size_t carry_skipped = 0;  // skipped before the first chunk (header-less first row)
  std::vector<std::string> carry_reasons;

  std::string where(size_t at_line) const { return fmt::format("{} line {}", path, at_line); }
  std::string field_name(size_t i) const {
    return i < header.size() ? header[i] : fmt::format("column{}", i);
  }

  // Moves unparsed bytes to the front, grows the buffer when a record fills it, reads more.
  void refill() {
    if (begin > 0) {
      std::memmove(buf.data(), buf.data() + begin, end - begin);
      end -= begin;
      begin = 0;
    }
    if (end == buf.size()) buf.resize(buf.size() * 2);
    const size_t n = std::fread(buf.data() + end, 1, buf.size() - end, file.get());
    KILN_CHECK_AS(IOError, !std::ferror(file.get()), "load_csv: error reading {}: {}", path,
                  std::strerror(errno));
    end += n;
    bytes_read += n;
    if (n == 0) eof = true;
  }

  // File bytes parsed so far.
  size_t consumed() const { return bytes_read - (end - begin); }

  Parse next_record() {
    for (;;) {
      const Parse r = try_parse();
      if (r != Parse::Incomplete) return r;
      refill();
    }
  }

  // Malformed record: the rest of the physical line is dropped (or everything, at end of file).
  Parse malformed(const char* p, const char* e, size_t newlines, std::string why) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(e - p)));
    if (!nl && !eof) return Parse::Incomplete;
    error = std::move(why);
    if (nl) {
      begin = static_cast<size_t>(nl + 1 - buf.data());
      line += newlines + 1;
    } else {
      line += newlines + static_cast<size_t>(std::count(p, e, '\n'));
      begin = end;
    }
    return Parse::Malformed;
  }

  // One record from [begin, end). Incomplete means "read more and call again": nothing was consumed
  // except blank lines, so the record is re-parsed from its start.
  Parse try_parse() {
    refs.clear();
    scratch.clear();
    const char* base = buf.data();
    const char* e = base + end;
    const char* p = base + begin;
    for (;;) {  // blank lines
      if (p == e) return eof ? Parse::End : Parse::Incomplete;
      if (*p == '\n') {
        ++p, ++line, ++begin;
      } else if (*p == '\r') {
        if (p + 1 == e && !eof) return Parse::Incomplete;
        const size_t n = (p + 1 < e && p[1] == '\n') ? 2 : 1;
        p += n, begin += n, ++line;
      } else {
        break;
      }
    }
    record_line = line;
    const char sep = opt.separator, q = opt.quote;
    const bool trim_fields = opt.trim_whitespace;
    size_t newlines = 0;  // line breaks inside quoted fields so far
    for (;;) {
      if (trim_fields) {
        while (p < e && is_blank(*p) && *p != sep) ++p;
      }
      if (*opt.allow_quoting && p < e && *p == q) {
        const char* open = p++;
        const size_t scratch_begin = scratch.size();
        const char* segment = p;
        bool escaped = false;
        for (;;) {
          const char* c = static_cast<const char*>(std::memchr(p, q, static_cast<size_t>(e - p)));
          if (!c && !eof) return Parse::Incomplete;
          if (!c) {
            return malformed(e, e, newlines + static_cast<size_t>(std::count(open, e, '\n')),
                             fmt::format("{}, column \"{}\": unterminated quoted field (a field "
                                         "that opens with {} must close with one; double it to "
                                         "embed it)",
                                         where(line + newlines), field_name(refs.size()), q));
          }
          if (c + 1 == e && !eof) return Parse::Incomplete;  // maybe a doubled quote
          if (c + 1 < e && c[1] == q) {
            scratch.append(segment, c + 1);
            p = segment = c + 2;
            escaped = true;
            continue;
          }
          newlines += static_cast<size_t>(std::count(open, c, '\n'));
          if (escaped) {
            scratch.append(segment, c);
            refs.push_back({scratch_begin, scratch.size() - scratch_begin, true});
          } else {
            refs.push_back(
                {static_cast<size_t>(open + 1 - base), static_cast<size_t>(c - open - 1), false});
          }
          p = c + 1;
          break;
        }
        const char* after_quote = p;
        if (trim_fields) {
          while (p < e && is_blank(*p) && *p != sep) ++p;
        }
        if (p == e && !eof) return Parse::Incomplete;
        if (p < e && *p != sep && *p != '\n' && *p != '\r' && opt.lenient_quotes) {
          // pandas' reading of `"quoted" more`: the quoted text, then the rest up to the separator
          // or line end, as one field (in scratch).
          const char* rest = after_quote;
          while (p < e && !stop[static_cast<unsigned char>(*p)]) ++p;
          if (p == e && !eof) return Parse::Incomplete;
          const char* t = p;
          if (trim_fields) {
            while (t > rest && is_blank(t[-1]) && t[-1] != sep) --t;
          }
          FieldRef quoted = refs.back();
          refs.pop_back();
          const size_t joined = scratch.size();
          if (quoted.in_scratch) {
            const std::string copy = scratch.substr(quoted.begin, quoted.size);
            scratch += copy;
          } else {
            scratch.append(base + quoted.begin, quoted.size);
          }
          scratch.append(rest, t);
          refs.push_back({joined, scratch.size() - joined, true});
        } else if (p < e && *p != sep && *p != '\n' && *p != '\r') {
          return malformed(p, e, newlines,
                           fmt::format("{}, column \"{}\": unexpected {} after a closing quote "
                                       "(a quoted field must end at a separator or line end; "
                                       "double a quote to embed it)",
                                       where(line + newlines), field_name(refs.size() - 1),
                                       shown(std::string_view(p, 1))));
        }
      } else {
        const char* s = p;
        while (p < e && !stop[static_cast<unsigned char>(*p)]) ++p;
        if (p == e && !eof) return Parse::Incomplete;
        const char* t = p;
        if (trim_fields) {
          while (t > s && is_blank(t[-1]) && t[-1] != sep) --t;
        }
        refs.push_back({static_cast<size_t>(s - base), static_cast<size_t>(t - s), false});
      }
      if (p == e) {  // end of file without a final line break
        begin = end;
        line += newlines;
        break;
      }
      if (*p == sep) {
        ++p;
        continue;
      }
      if (*p == '\r') {
        if (p + 1 == e && !eof) return Parse::Incomplete;
        if (p + 1 < e && p[1] == '\n') ++p;
      }
      ++p;
      begin = static_cast<size_t>(p - base);
      line += newlines + 1;
      break;
    }
    fields.clear();
    for (const FieldRef& r : refs) {
      fields.emplace_back((r.in_scratch ? scratch.data() : base) + r.begin, r.size);
    }
    return Parse::Record;
  }

  // A bad row: thrown, or counted and remembered.
  void bad_row(std::string why, size_t& chunk_skipped, std::vector<std::string>& chunk_reasons) {
    if (!opt.skip_bad_rows) throw IOError("load_csv: " + why);
    ++rows_skipped;
    ++chunk_skipped;
    if (reasons.size() < kMaxSkipReasons) reasons.push_back(why);
    if (chunk_reasons.size() < kMaxSkipReasons) chunk_reasons.push_back(std::move(why));
  }

  // Phase 1: check the field count and parse every number; returns the reason when the row is bad.
  std::optional<std::string> validate(std::span<const std::string_view> f, size_t at_line) {
    if (f.size() != expected) {
      return fmt::format(
          "{}: expected {} fields but found {} (every row must have as many fields "
          "as the {})",
          where(at_line), expected, f.size(), opt.has_header ? "header" : "first row");
    }
    for (size_t i = 0; i < slots.size(); ++i) {
      const Slot& s = slots[i];
      const std::string_view v = f[*s.spec.index];
      const bool empty = v.empty();
      switch (s.spec.type) {
        case ColumnType::Float:
          if (empty && s.has_default) {
            row_floats[i] = s.float_default;
          } else if (!detail::parse_float(v, row_floats[i])) {
            return fmt::format("{}, column \"{}\": cannot parse \"{}\" as float", where(at_line),
                               s.spec.name, shown(v));
          }
          break;
        case ColumnType::Int:
          if (empty && s.has_default) {
            row_ints[i] = s.int_default;
          } else if (empty) {
            return fmt::format(
                "{}, column \"{}\": empty int field (give ColumnSpec::default_value "
                "or load it as float to read empty as NaN)",
                where(at_line), s.spec.name);
          } else if (!detail::parse_int(v, row_ints[i])) {
            return fmt::format("{}, column \"{}\": cannot parse \"{}\" as int", where(at_line),
                               s.spec.name, shown(v));
          }
          break;
        case ColumnType::Key:
          if (empty && !s.has_default) {
            return fmt::format(
                "{}, column \"{}\": empty key field (give ColumnSpec::default_value "
                "to map empty fields to a label)",
                where(at_line), s.spec.name);
          }
          break;
        case ColumnType::String:
          break;
      }
    }
    return std::nullopt;
  }

  // Phase 2: append a validated row.
  void append(std::span<const std::string_view> f, std::vector<Column>& cols) {
    for (size_t i = 0; i < slots.size(); ++i) {
      Slot& s = slots[i];
      const std::string_view v = f[*s.spec.index];
      auto& data = cols[i].data_;
      switch (s.spec.type) {
        case ColumnType::Float:
          std::get<std::vector<float>>(data).push_back(row_floats[i]);
          break;
        case ColumnType::Int:
          std::get<std::vector<int64_t>>(data).push_back(row_ints[i]);
          break;
        case ColumnType::Key:
          std::get<std::vector<int64_t>>(data).push_back(
              s.keys.id(v.empty() ? std::string_view(*s.spec.default_value) : v));
          break;
        case ColumnType::String:
          std::get<std::vector<std::string>>(data).emplace_back(v);
          break;
      }
    }
  }

  void read_header();
  void resolve_columns();
};

void CsvReader::State::read_header() {
  const std::string kind = opt.has_header ? "header" : "first row";
  for (;;) {
    const Parse r = next_record();
    if (r == Parse::End) {
      KILN_CHECK_AS(IOError, !opt.has_header, "load_csv: {} is empty (expected a header row)",
                    path);
      return;  // header-less and empty: zero rows
    }
    if (r == Parse::Malformed) {
      KILN_CHECK_AS(IOError, !opt.has_header, "load_csv: bad header: {}", error);
      bad_row(error, carry_skipped, carry_reasons);  // reported with the first chunk
      continue;
    }
    break;
  }
  expected = fields.size();
  expected_known = true;
  if (!opt.has_header) {
    pending.assign(fields.begin(), fields.end());
    has_pending = true;
    pending_line = record_line;
    for (size_t i = 0; i < expected; ++i) header.push_back(fmt::format("column{}", i));
    return;
  }
  std::unordered_map<std::string, size_t> seen;
  for (size_t i = 0; i < expected; ++i) {
    std::string name(opt.trim_whitespace ? trim(fields[i]) : fields[i]);
    if (name.empty()) name = fmt::format("column{}", i);
    std::string unique = name;
    for (size_t k = 1; seen.count(unique); ++k) unique = fmt::format("{}.{}", name, k);
    seen.emplace(unique, i);
    header.push_back(std::move(unique));
  }
}

void CsvReader::State::resolve_columns() {
  specs = opt.columns;
  if (specs.empty()) {
    for (size_t i = 0; i < header.size(); ++i) {
      specs.push_back({.name = header[i], .type = ColumnType::String, .index = i});
    }
  }
  for (ColumnSpec& spec : specs) {
    if (spec.index) {
      KILN_CHECK_AS(IOError, !expected_known || *spec.index < expected,
                    "load_csv: {}: column index {} is out of range (the file has {} columns: {})",
                    path, *spec.index, expected, fmt::join(header, ", "));
      if (spec.name.empty()) spec.name = field_name(*spec.index);
      continue;
    }
    KILN_CHECK_AS(IOError, opt.has_header,
                  "load_csv: {}: column \"{}\" has no index and the file has no header (set "
                  "ColumnSpec::index when has_header is false)",
                  path, spec.name);
    auto it = std::find(header.begin(), header.end(), spec.name);
    if (it == header.end()) {
      std::vector<std::string> quoted;
      for (const std::string& h : header) quoted.push_back(fmt::format("\"{}\"", h));
      throw IOError(fmt::format("load_csv: {}: no column named \"{}\" (available: {})", path,
                                spec.name, fmt::join(quoted, ", ")));
    }
    spec.index = static_cast<size_t>(it - header.begin());
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      KILN_CHECK_AS(IOError, specs[i].name != specs[j].name,
                    "load_csv: {}: two loaded columns are named \"{}\" (output names must be "
                    "unique)",
                    path, specs[i].name);
    }
    Slot slot{.spec = specs[i]};
    if (const auto& d = slot.spec.default_value) {
      slot.has_default = true;
      const bool ok = slot.spec.type == ColumnType::Float
                          ? detail::parse_float(*d, slot.float_default)
                      : slot.spec.type == ColumnType::Int ? detail::parse_int(*d, slot.int_default)
                                                          : true;
      KILN_CHECK_AS(IOError, ok,
                    "load_csv: {}: column \"{}\": default value \"{}\" is not a valid {}", path,
                    slot.spec.name, shown(*d), to_string(slot.spec.type));
    }
    slots.push_back(std::move(slot));
  }
  row_floats.resize(slots.size());
  row_ints.resize(slots.size());
}

CsvReader::CsvReader(const std::filesystem::path& path, CsvOptions options)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.path = path.string();
  s.opt = std::move(options);
  if (!s.opt.allow_quoting) s.opt.allow_quoting = s.opt.separator != '\t';
  KILN_CHECK_AS(IOError, s.opt.separator != s.opt.quote || !*s.opt.allow_quoting,
                "load_csv: {}: separator and quote are both '{}' (they must differ)", s.path,
                s.opt.quote);
  KILN_CHECK_AS(IOError, s.opt.separator != '\n' && s.opt.separator != '\r',
                "load_csv: {}: the separator cannot be a line break", s.path);
  s.file.reset(std::fopen(s.path.c_str(), "rb"));
  KILN_CHECK_AS(IOError, s.file != nullptr, "load_csv: cannot open {}: {}", s.path,
                std::strerror(errno));
  std::error_code size_error;
  const auto size = std::filesystem::file_size(path, size_error);
  s.file_size = size_error ? 0 : static_cast<size_t>(size);
  s.stop[static_cast<unsigned char>(s.opt.separator)] = true;
  s.stop['\n'] = s.stop['\r'] = true;
  s.buf.resize(std::max<size_t>(s.opt.block_size, 4));
  while (s.end < 3 && !s.eof) s.refill();
  if (s.end >= 3 && std::memcmp(s.buf.data(), "\xEF\xBB\xBF", 3) == 0) s.begin = 3;
  s.read_header();
  s.resolve_columns();
}

CsvReader::~CsvReader() = default;
CsvReader::CsvReader(CsvReader&&) noexcept = default;
CsvReader& CsvReader::operator=(CsvReader&&) noexcept = default;

namespace {

constexpr size_t kRowsBeforeEstimate = 1024;  // rows read before sizing columns from the file size

void reserve(std::vector<Column>& cols, size_t rows) {
  for (Column& c : cols) c.reserve(rows);
}

}  // namespace

bool CsvReader::next_chunk(Table& chunk, size_t max_rows) {
  KILN_CHECK(max_rows > 0, "CsvReader::next_chunk: max_rows must be positive");
  State& s = *state_;
  std::vector<Column> cols;
  for (const State::Slot& slot : s.slots) cols.emplace_back(slot.spec.name, slot.spec.type);
  size_t rows = 0, skipped = std::exchange(s.carry_skipped, 0);
  std::vector<std::string> reasons = std::exchange(s.carry_reasons, {});
  const size_t limit = s.opt.max_rows.value_or(std::numeric_limits<size_t>::max());
  const size_t wanted = std::min(max_rows, limit - s.rows_read);
  reserve(cols, std::min<size_t>(wanted, kRowsBeforeEstimate));
  const size_t start_bytes = s.consumed();
  while (rows < max_rows && s.rows_read < limit) {
    if (rows == kRowsBeforeEstimate && wanted > rows && s.file_size > 0) {
      // Size the columns once from the bytes per row seen so far, instead of growing them by
      // doubling: growth copies every value again and, for big tables, faults in fresh pages.
      const double per_row = static_cast<double>(s.consumed() - start_bytes) / rows;
      const double left = static_cast<double>(s.file_size - std::min(s.file_size, s.consumed()));
      const auto estimate = static_cast<size_t>(1.05 * left / std::max(per_row, 1.0)) + rows + 16;
      reserve(cols, std::min(wanted, estimate));
    }
    std::vector<std::string_view> pending_views;
    std::span<const std::string_view> fields;
    size_t at_line = 0;
    if (s.has_pending) {
      s.has_pending = false;
      pending_views.assign(s.pending.begin(), s.pending.end());
      fields = pending_views;
      at_line = s.pending_line;
    } else {
      const Parse r = s.next_record();
      if (r == Parse::End) break;
      if (r == Parse::Malformed) {
        s.bad_row(s.error, skipped, reasons);
        continue;
      }
      fields = s.fields;
      at_line = s.record_line;
    }
    if (auto why = s.validate(fields, at_line)) {
      s.bad_row(std::move(*why), skipped, reasons);
      continue;
    }
    s.append(fields, cols);
    ++rows;
    ++s.rows_read;
  }
  for (size_t i = 0; i < cols.size(); ++i) {
    if (cols[i].type() == ColumnType::Key) cols[i].key_values_ = s.slots[i].keys.values;
  }
  chunk.columns_ = std::move(cols);
  chunk.rows_skipped_ = skipped;
  chunk.skip_reasons_ = std::move(reasons);
  return rows > 0;
}

const std::vector<std::string>& CsvReader::header() const {
  return state_->header;
}
const std::vector<ColumnSpec>& CsvReader::columns() const {
  return state_->specs;
}
size_t CsvReader::rows_read() const {
  return state_->rows_read;
}
size_t CsvReader::rows_skipped() const {
  return state_->rows_skipped;
}
const std::vector<std::string>& CsvReader::skip_reasons() const {
  return state_->reasons;
}

Table load_csv(const std::filesystem::path& path, const CsvOptions& options) {
  CsvReader reader(path, options);
  Table table;
  reader.next_chunk(table, std::numeric_limits<size_t>::max());
  return table;
}

// ------------------------------------------------------------------------------------ writing

namespace {

// Appends `value`, quoted when a reader would otherwise split, trim or drop it. Without quoting,
// a value no reader could get back is an error.
void append_field(std::string& out, std::string_view value, const CsvWriteOptions& o,
                  bool quote_empty) {
  if (!*o.quoting) {
    KILN_CHECK_AS(
        IOError,
        value.find_first_of(std::string{o.separator, '\n', '\r'}) == std::string_view::npos &&
            !(value.empty() && quote_empty),
        "save_csv: the value \"{}\" {} without quoting (set quoting = true, and "
        "allow_quoting = true to read it back)",
        shown(value),
        value.empty() ? "would be a blank line, which readers skip,"
                      : "holds the separator or a line break, which cannot be written");
    out.append(value);
    return;
  }
  const bool needs_quotes = (value.empty() && quote_empty) ||
                            value.find_first_of(std::string{o.separator, o.quote, '\n', '\r'}) !=
                                std::string_view::npos ||
                            (!value.empty() && (is_blank(value.front()) || is_blank(value.back())));
  if (!needs_quotes) {
    out.append(value);
    return;
  }
  out += o.quote;
  for (char c : value) {
    if (c == o.quote) out += o.quote;
    out += c;
  }
  out += o.quote;
}

}  // namespace

void save_csv(const Table& table, const std::filesystem::path& path,
              const CsvWriteOptions& write_options) {
  CsvWriteOptions options = write_options;
  if (!options.quoting) options.quoting = options.separator != '\t';
  KILN_CHECK(options.separator != options.quote || !*options.quoting,
             "save_csv: separator and quote are both '{}' (they must differ)", options.quote);
  KILN_CHECK(options.separator != '\n' && options.separator != '\r',
             "save_csv: the separator cannot be a line break");
  detail::AtomicFile file(path, "save_csv");
  const std::string_view eol = options.crlf ? "\r\n" : "\n";
  // A one-column row that is empty would be a blank line, which readers skip: write "" instead.
  const bool quote_empty = table.num_columns() == 1;
  std::string line;
  if (options.has_header && table.num_columns() > 0) {
    for (size_t c = 0; c < table.num_columns(); ++c) {
      if (c > 0) line += options.separator;
      append_field(line, table.column(c).name(), options, quote_empty);
    }
    line += eol;
    file.write(line);
  }
  fmt::memory_buffer number;
  for (size_t r = 0; r < table.num_rows(); ++r) {
    line.clear();
    for (size_t c = 0; c < table.num_columns(); ++c) {
      if (c > 0) line += options.separator;
      const Column& col = table.column(c);
      number.clear();
      switch (col.type()) {
        case ColumnType::Float: {
          const float v = col.floats()[r];
          if (!std::isnan(v)) fmt::format_to(std::back_inserter(number), "{}", v);
          append_field(line, std::string_view(number.data(), number.size()), options, quote_empty);
          break;
        }
        case ColumnType::Int:
          fmt::format_to(std::back_inserter(line), "{}", col.ints()[r]);
          break;
        case ColumnType::String:
          append_field(line, col.strings()[r], options, quote_empty);
          break;
        case ColumnType::Key:
          append_field(line, col.value_string(r), options, quote_empty);
          break;
      }
    }
    line += eol;
    file.write(line);
  }
  file.commit();
}

// ---------------------------------------------------------------------------------- inference

ColumnType infer_type(std::span<const std::string> values) {
  bool all_int = true, any_value = false;
  for (const std::string& v : values) {
    if (trim(v).empty()) {
      all_int = false;
      continue;
    }
    any_value = true;
    int64_t i = 0;
    float f = 0;
    if (all_int && !detail::parse_int(v, i)) all_int = false;
    if (!all_int && !detail::parse_float(v, f)) return ColumnType::String;
  }
  if (!any_value) return ColumnType::String;
  return all_int ? ColumnType::Int : ColumnType::Float;
}

Table infer_types(const Table& table) {
  Table out;
  for (const Column& col : table.columns()) {
    if (col.type() != ColumnType::String) {
      out.add_column(col);
      continue;
    }
    const auto& text = col.strings();
    switch (infer_type(text)) {
      case ColumnType::Int: {
        std::vector<int64_t> v(text.size());
        for (size_t i = 0; i < text.size(); ++i) detail::parse_int(text[i], v[i]);
        out.add_column(Column(col.name(), std::move(v)));
        break;
      }
      case ColumnType::Float: {
        std::vector<float> v(text.size());
        for (size_t i = 0; i < text.size(); ++i) detail::parse_float(text[i], v[i]);
        out.add_column(Column(col.name(), std::move(v)));
        break;
      }
      default:
        out.add_column(col);
    }
  }
  return out;
}

std::vector<ColumnSpec> infer_columns(const std::filesystem::path& path, CsvOptions options,
                                      size_t sample_rows) {
  options.columns.clear();
  options.max_rows = sample_rows;
  const Table sample = load_csv(path, options);
  std::vector<ColumnSpec> specs;
  for (size_t i = 0; i < sample.num_columns(); ++i) {
    const Column& col = sample.column(i);
    specs.push_back({.name = col.name(), .type = infer_type(col.strings()), .index = i});
  }
  return specs;
}

}  // namespace kiln::data
