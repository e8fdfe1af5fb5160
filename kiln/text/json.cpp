#include "kiln/text/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "kiln/tensor/error.h"
#include "kiln/text/unicode.h"

namespace kiln::text {

JsonValue JsonValue::boolean(bool b) {
  JsonValue v;
  v.kind_ = Kind::kBool;
  v.bool_ = b;
  return v;
}
JsonValue JsonValue::number(double x) {
  JsonValue v;
  v.kind_ = Kind::kNumber;
  v.number_ = x;
  return v;
}
JsonValue JsonValue::string(std::string s) {
  JsonValue v;
  v.kind_ = Kind::kString;
  v.string_ = std::move(s);
  return v;
}
JsonValue JsonValue::array() {
  JsonValue v;
  v.kind_ = Kind::kArray;
  return v;
}
JsonValue JsonValue::object() {
  JsonValue v;
  v.kind_ = Kind::kObject;
  return v;
}

std::string_view JsonValue::kind_name() const {
  switch (kind_) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return "bool";
    case Kind::kNumber:
      return "number";
    case Kind::kString:
      return "string";
    case Kind::kArray:
      return "array";
    case Kind::kObject:
      return "object";
  }
  return "?";
}

bool JsonValue::as_bool() const {
  KILN_CHECK(is_bool(), "json: expected a bool but the value is {}", kind_name());
  return bool_;
}
double JsonValue::as_number() const {
  KILN_CHECK(is_number(), "json: expected a number but the value is {}", kind_name());
  return number_;
}
int64_t JsonValue::as_int() const {
  const double x = as_number();
  constexpr double kMaxExact = 9007199254740992.0;  // 2^53
  KILN_CHECK(std::trunc(x) == x && std::fabs(x) <= kMaxExact,
             "json: expected an integer but the number is {} (must be integral and within ±2^53)",
             x);
  return static_cast<int64_t>(x);
}
const std::string& JsonValue::as_string() const {
  KILN_CHECK(is_string(), "json: expected a string but the value is {}", kind_name());
  return string_;
}
const JsonValue& JsonValue::at(size_t i) const {
  KILN_CHECK(i < items_.size(), "json: index {} out of range for a {} of size {}", i, kind_name(),
             items_.size());
  return items_[i];
}
const std::string& JsonValue::key(size_t i) const {
  KILN_CHECK(is_object() && i < keys_.size(), "json: member {} out of range for a {} of size {}", i,
             kind_name(), keys_.size());
  return keys_[i];
}
const JsonValue* JsonValue::find(std::string_view key) const {
  if (!is_object()) return nullptr;
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) return &items_[i];
  }
  return nullptr;
}
void JsonValue::push_back(JsonValue v) {
  KILN_CHECK(is_array(), "json: push_back needs an array but the value is {}", kind_name());
  items_.push_back(std::move(v));
}
void JsonValue::set(std::string key, JsonValue v) {
  KILN_CHECK(is_object(), "json: set needs an object but the value is {}", kind_name());
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) {
      items_[i] = std::move(v);
      return;
    }
  }
  keys_.push_back(std::move(key));
  items_.push_back(std::move(v));
}

namespace {
void dump_to(const JsonValue& v, std::string& out) {
  switch (v.kind()) {
    case JsonValue::Kind::kNull:
      out += "null";
      break;
    case JsonValue::Kind::kBool:
      out += v.as_bool() ? "true" : "false";
      break;
    case JsonValue::Kind::kNumber: {
      const double x = v.as_number();
      if (!std::isfinite(x)) {
        out += "null";  // JSON has no NaN or infinity.
      } else if (std::trunc(x) == x && std::fabs(x) < 1e15) {
        out += fmt::format("{}", static_cast<int64_t>(x));
      } else {
        out += fmt::format("{}", x);  // Shortest round-trip form.
      }
      break;
    }
    case JsonValue::Kind::kString:
      append_json_string(out, v.as_string());
      break;
    case JsonValue::Kind::kArray:
      out += '[';
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += ", ";
        dump_to(v.at(i), out);
      }
      out += ']';
      break;
    case JsonValue::Kind::kObject:
      out += '{';
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += ", ";
        append_json_string(out, v.key(i));
        out += ": ";
        dump_to(v.at(i), out);
      }
      out += '}';
      break;
  }
}
}  // namespace

std::string JsonValue::dump() const {
  std::string out;
  dump_to(*this, out);
  return out;
}

// Recursive-descent parser over a string_view; pos_ is the byte offset errors report.
class JsonParser {
 public:
  JsonParser(std::string_view text, std::string_view source) : text_(text), source_(source) {}

  JsonValue parse_document() {
    skip_whitespace();
    JsonValue v = parse_value(0);
    skip_whitespace();
    if (pos_ != text_.size()) fail("unexpected trailing characters after the top-level value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 512;

  [[noreturn]] void fail(std::string_view what) const {
    throw IOError(fmt::format("json: {}: byte {}: {}", source_, pos_, what));
  }
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }

  void skip_whitespace() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) {
      ++pos_;
    }
  }

  void expect_literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) {
      fail(fmt::format("invalid literal (expected '{}')", word));
    }
    pos_ += word.size();
  }

  JsonValue parse_value(int depth) {
    if (depth > kMaxDepth) fail(fmt::format("nesting deeper than {} levels", kMaxDepth));
    if (at_end()) fail("unexpected end of input (a value was expected)");
    switch (peek()) {
      case '{':
        return parse_object(depth);
      case '[':
        return parse_array(depth);
      case '"':
        return JsonValue::string(parse_string());
      case 't':
        expect_literal("true");
        return JsonValue::boolean(true);
      case 'f':
        expect_literal("false");
        return JsonValue::boolean(false);
      case 'n':
        expect_literal("null");
        return JsonValue();
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return parse_number();
        fail(fmt::format("unexpected character {} (a value was expected)", describe(peek())));
    }
  }

  static std::string describe(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F) return fmt::format("'{}'", c);
    return fmt::format("0x{:02X}", u);
  }

  JsonValue parse_object(int depth) {
    JsonValue obj = JsonValue::object();
    ++pos_;  // '{'
    skip_whitespace();
    if (!at_end() && peek() == '}') {
      ++pos_;
      return obj;
    }
    while (true) {
      skip_whitespace();
      if (at_end()) fail("unexpected end of input inside an object (a key or '}' was expected)");
      if (peek() != '"') fail(fmt::format("expected a string key but found {}", describe(peek())));
      std::string key = parse_string();
      skip_whitespace();
      if (at_end() || peek() != ':') fail("expected ':' after an object key");
      ++pos_;
      skip_whitespace();
      obj.keys_.push_back(std::move(key));
      obj.items_.push_back(parse_value(depth + 1));
      skip_whitespace();
      if (at_end()) fail("unexpected end of input inside an object (',' or '}' was expected)");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        return obj;
      }
      fail(fmt::format("expected ',' or '}}' in an object but found {}", describe(peek())));
    }
  }

  JsonValue parse_array(int depth) {
    JsonValue arr = JsonValue::array();
    ++pos_;  // '['
    skip_whitespace();
    if (!at_end() && peek() == ']') {
      ++pos_;
      return arr;
    }
    while (true) {
      skip_whitespace();
      arr.items_.push_back(parse_value(depth + 1));
      skip_whitespace();
      if (at_end()) fail("unexpected end of input inside an array (',' or ']' was expected)");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return arr;
      }
      fail(fmt::format("expected ',' or ']' in an array but found {}", describe(peek())));
    }
  }

  JsonValue parse_number() {
    // Validate the RFC 8259 grammar first (from_chars alone would accept "01", "1." or "+1").
    const size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (at_end()) fail("truncated number");
    if (peek() == '0') {
      ++pos_;
    } else if (peek() >= '1' && peek() <= '9') {
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
    } else {
      fail("invalid number (a digit must follow '-')");
    }
    if (!at_end() && peek() == '.') {
      ++pos_;
      if (at_end() || peek() < '0' || peek() > '9')
        fail("invalid number (a digit must follow '.')");
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (at_end() || peek() < '0' || peek() > '9') fail("invalid number (exponent has no digits)");
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
    }
    double x = 0.0;
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    const auto [ptr, ec] = std::from_chars(first, last, x);
    if (ec == std::errc::result_out_of_range) {
      pos_ = start;
      fail("number out of range for a double");
    }
    if (ec != std::errc() || ptr != last) {
      pos_ = start;
      fail("invalid number");
    }
    return JsonValue::number(x);
  }

  uint32_t parse_hex4() {
    if (pos_ + 4 > text_.size()) fail("truncated \\u escape (4 hex digits are required)");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_ + i];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        pos_ += i;
        fail("invalid hex digit in a \\u escape");
      }
    }
    pos_ += 4;
    return v;
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      // Copy the run of ordinary bytes in one go.
      const size_t run = pos_;
      while (!at_end() && peek() != '"' && peek() != '\\' &&
             static_cast<unsigned char>(peek()) >= 0x20) {
        ++pos_;
      }
      const std::string_view chunk = text_.substr(run, pos_ - run);
      if (!is_valid_utf8(chunk)) {
        for (size_t i = 0; i < chunk.size();) {
          const Utf8Char c = decode_utf8(chunk, i);
          if (!c.valid) {
            pos_ = run + i;
            fail("invalid UTF-8 in a string");
          }
          i += c.size;
        }
      }
      out.append(chunk);
      if (at_end()) fail("unterminated string (a string must end with '\"')");
      const char c = peek();
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c != '\\')
        fail(fmt::format("raw control character {} in a string (must be escaped)", describe(c)));
      ++pos_;
      if (at_end()) fail("unterminated escape sequence");
      const char e = peek();
      ++pos_;
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
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
        case 'u': {
          uint32_t cp = parse_hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) {
            pos_ -= 6;
            fail("lone low surrogate in a \\u escape (it must follow a high surrogate)");
          }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (text_.substr(pos_, 2) != "\\u") {
              pos_ -= 6;
              fail("lone high surrogate in a \\u escape (a \\uDC00-\\uDFFF escape must follow)");
            }
            pos_ += 2;
            const uint32_t lo = parse_hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) {
              pos_ -= 6;
              fail("high surrogate followed by a non-low-surrogate \\u escape");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          pos_ -= 1;
          fail(fmt::format("invalid escape \\{} in a string", describe(e)));
      }
    }
  }

  std::string_view text_;
  std::string_view source_;
  size_t pos_ = 0;
};

JsonValue parse_json(std::string_view text, std::string_view source) {
  return JsonParser(text, source).parse_document();
}

JsonValue read_json_file(const std::filesystem::path& path) {
  const std::string text = read_text_file(path, "json");
  return parse_json(text, path.string());
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
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
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

std::string read_text_file(const std::filesystem::path& path, std::string_view op) {
  std::error_code ec;
  KILN_CHECK_AS(IOError, !std::filesystem::is_directory(path, ec),
                "{}: {} is a directory (a file was expected)", op, path.string());
  std::ifstream in(path, std::ios::binary);
  KILN_CHECK_AS(IOError, in.good(), "{}: cannot open {} for reading", op, path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  KILN_CHECK_AS(IOError, !in.bad(), "{}: error while reading {}", op, path.string());
  return std::move(ss).str();
}

void write_text_file(const std::filesystem::path& path, std::string_view content,
                     std::string_view op) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  KILN_CHECK_AS(IOError, out.good(), "{}: cannot open {} for writing", op, path.string());
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  KILN_CHECK_AS(IOError, !out.fail(), "{}: error while writing {}", op, path.string());
}

}  // namespace kiln::text
