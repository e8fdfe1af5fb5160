#include "kiln/io/json.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <unordered_set>

#include "kiln/tensor/error.h"

namespace kiln::json {

// ---------------------------------------------------------------- Value

Value Value::array(std::vector<Value> items) {
  Value v;
  v.kind_ = Kind::Array;
  v.items_ = std::move(items);
  return v;
}

Value Value::object() {
  Value v;
  v.kind_ = Kind::Object;
  return v;
}

std::string_view Value::kind_name() const {
  switch (kind_) {
    case Kind::Null:
      return "null";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Double:
      return "double";
    case Kind::String:
      return "string";
    case Kind::Array:
      return "array";
    case Kind::Object:
      return "object";
  }
  return "?";
}

bool Value::as_bool() const {
  KILN_CHECK(kind_ == Kind::Bool, "json: expected a bool, got {}", kind_name());
  return bool_;
}

int64_t Value::as_int() const {
  if (kind_ == Kind::Int) return int_;
  // 2^63 as a double: the first value outside int64's range.
  constexpr double kTwo63 = 9223372036854775808.0;
  KILN_CHECK(kind_ == Kind::Double && std::trunc(double_) == double_ && double_ >= -kTwo63 &&
                 double_ < kTwo63,
             "json: expected an integer, got {}{}", kind_name(),
             kind_ == Kind::Double ? fmt::format(" {}", double_) : "");
  return static_cast<int64_t>(double_);
}

double Value::as_double() const {
  if (kind_ == Kind::Int) return static_cast<double>(int_);
  KILN_CHECK(kind_ == Kind::Double, "json: expected a number, got {}", kind_name());
  return double_;
}

const std::string& Value::as_string() const {
  KILN_CHECK(kind_ == Kind::String, "json: expected a string, got {}", kind_name());
  return string_;
}

const std::vector<Value>& Value::as_array() const {
  KILN_CHECK(kind_ == Kind::Array, "json: expected an array, got {}", kind_name());
  return items_;
}

const Value::Members& Value::members() const {
  KILN_CHECK(kind_ == Kind::Object, "json: expected an object, got {}", kind_name());
  return members_;
}

size_t Value::size() const {
  if (kind_ == Kind::Array) return items_.size();
  if (kind_ == Kind::Object) return members_.size();
  return 0;
}

const Value& Value::at(size_t i) const {
  const auto& a = as_array();
  KILN_CHECK(i < a.size(), "json: index {} is out of range for an array of {} elements", i,
             a.size());
  return a[i];
}

void Value::push_back(Value v) {
  KILN_CHECK(kind_ == Kind::Array, "json: push_back needs an array, got {}", kind_name());
  items_.push_back(std::move(v));
}

const Value* Value::find(std::string_view key) const {
  if (kind_ != Kind::Object) return nullptr;
  for (const auto& [k, v] : members_)
    if (k == key) return &v;
  return nullptr;
}

const Value& Value::at(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) {
    std::vector<std::string> keys;
    if (kind_ == Kind::Object)
      for (const auto& [k, unused] : members_) keys.push_back(quote(k));
    throw Error(fmt::format("json: no member \"{}\" in {} (members: {})", key, kind_name(),
                            fmt::join(keys, ", ")));
  }
  return *v;
}

Value& Value::operator[](std::string_view key) {
  if (kind_ == Kind::Null) kind_ = Kind::Object;
  KILN_CHECK(kind_ == Kind::Object, "json: member access needs an object, got {}", kind_name());
  for (auto& [k, v] : members_)
    if (k == key) return v;
  members_.emplace_back(std::string(key), Value());
  return members_.back().second;
}

bool operator==(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_int() && b.is_int()) return a.int_ == b.int_;
    return a.as_double() == b.as_double();
  }
  if (a.kind_ != b.kind_) return false;
  switch (a.kind_) {
    case Value::Kind::Null:
      return true;
    case Value::Kind::Bool:
      return a.bool_ == b.bool_;
    case Value::Kind::String:
      return a.string_ == b.string_;
    case Value::Kind::Array:
      return a.items_ == b.items_;
    case Value::Kind::Object:
      return a.members_ == b.members_;
    default:
      return false;
  }
}

// ---------------------------------------------------------------- dump

std::string quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char c : s) {
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
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

namespace {

void dump_to(const Value& v, std::string& out) {
  switch (v.kind()) {
    case Value::Kind::Null:
      out += "null";
      break;
    case Value::Kind::Bool:
      out += v.as_bool() ? "true" : "false";
      break;
    case Value::Kind::Int:
      out += fmt::format("{}", v.as_int());
      break;
    case Value::Kind::Double: {
      double d = v.as_double();
      if (std::isnan(d)) {
        out += "NaN";
      } else if (std::isinf(d)) {
        out += d > 0 ? "Infinity" : "-Infinity";
      } else {
        std::string s = fmt::format("{}", d);
        // Keep a double a double on the way back ("1" would read as an Int).
        if (s.find_first_of(".eE") == std::string::npos) s += ".0";
        out += s;
      }
      break;
    }
    case Value::Kind::String:
      out += quote(v.as_string());
      break;
    case Value::Kind::Array: {
      out += '[';
      bool first = true;
      for (const Value& e : v.as_array()) {
        if (!first) out += ',';
        first = false;
        dump_to(e, out);
      }
      out += ']';
      break;
    }
    case Value::Kind::Object: {
      out += '{';
      bool first = true;
      for (const auto& [k, e] : v.members()) {
        if (!first) out += ',';
        first = false;
        out += quote(k);
        out += ':';
        dump_to(e, out);
      }
      out += '}';
      break;
    }
  }
}

}  // namespace

std::string Value::dump() const {
  std::string out;
  dump_to(*this, out);
  return out;
}

// ---------------------------------------------------------------- parse

class Parser {
 public:
  Parser(std::string_view text, std::string_view source) : s_(text), source_(source) {}

  Value parse_document() {
    skip_ws();
    Value v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 128;

  [[noreturn]] void fail(std::string_view what) const {
    throw IOError(fmt::format("{}: byte {}: {}", source_, pos_, what));
  }
  std::string describe_here() const {
    if (pos_ >= s_.size()) return "the end of the text";
    unsigned char c = static_cast<unsigned char>(s_[pos_]);
    if (c >= 0x20 && c < 0x7f) return fmt::format("'{}'", static_cast<char>(c));
    return fmt::format("byte 0x{:02x}", c);
  }
  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t'))
      ++pos_;
  }
  bool consume_literal(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) != lit) return false;
    pos_ += lit.size();
    return true;
  }

  Value parse_value(int depth) {
    if (depth > kMaxDepth) fail(fmt::format("nesting deeper than {} levels", kMaxDepth));
    if (pos_ >= s_.size()) fail("expected a value, got the end of the text");
    char c = s_[pos_];
    switch (c) {
      case '{':
        return parse_object(depth);
      case '[':
        return parse_array(depth);
      case '"':
        return Value(parse_string());
      case 't':
        if (consume_literal("true")) return Value(true);
        break;
      case 'f':
        if (consume_literal("false")) return Value(false);
        break;
      case 'n':
        if (consume_literal("null")) return Value();
        break;
      case 'N':
        if (consume_literal("NaN")) return Value(std::numeric_limits<double>::quiet_NaN());
        break;
      case 'I':
        if (consume_literal("Infinity")) return Value(std::numeric_limits<double>::infinity());
        break;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
    }
    fail(fmt::format("expected a value, got {}", describe_here()));
  }

  Value parse_object(int depth) {
    ++pos_;  // '{'
    Value obj = Value::object();
    std::unordered_set<std::string> seen;  // O(1) duplicate checks: headers may hold many members
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return obj;
    }
    while (true) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"')
        fail(fmt::format("expected a member name (a string), got {}", describe_here()));
      size_t key_pos = pos_;
      std::string key = parse_string();
      if (!seen.insert(key).second) {
        pos_ = key_pos;
        fail(fmt::format("duplicate member name {}", quote(key)));
      }
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':')
        fail(fmt::format("expected ':' after a member name, got {}", describe_here()));
      ++pos_;
      skip_ws();
      Value v = parse_value(depth + 1);
      obj.members_.emplace_back(std::move(key), std::move(v));
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return obj;
      }
      fail(fmt::format("expected ',' or '}}' after an object member, got {}", describe_here()));
    }
  }

  Value parse_array(int depth) {
    ++pos_;  // '['
    Value arr = Value::array();
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return arr;
    }
    while (true) {
      skip_ws();
      arr.items_.push_back(parse_value(depth + 1));
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return arr;
      }
      fail(fmt::format("expected ',' or ']' after an array element, got {}", describe_here()));
    }
  }

  uint32_t parse_hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape (4 hex digits required)");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        --pos_;
        fail("invalid hex digit in a \\u escape");
      }
    }
    return v;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string (a string must end with '\"')");
      char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20)
        fail("raw control character in a string (escape it, e.g. \\n or \\u0001)");
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= s_.size()) fail("unterminated escape sequence");
      char e = s_[pos_++];
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
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (!consume_literal("\\u"))
              fail("a high surrogate must be followed by a \\u low surrogate");
            uint32_t lo = parse_hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("invalid low surrogate after a high surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("lone low surrogate in a \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default:
          --pos_;
          fail(fmt::format("invalid escape '\\{}'", describe_here()));
      }
    }
  }

  Value parse_number() {
    const size_t start = pos_;
    if (s_[pos_] == '-') {
      ++pos_;
      if (consume_literal("Infinity")) return Value(-std::numeric_limits<double>::infinity());
    }
    auto digits = [&] {
      size_t d = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - d;
    };
    if (pos_ >= s_.size() || !(s_[pos_] >= '0' && s_[pos_] <= '9'))
      fail(fmt::format("expected a digit, got {}", describe_here()));
    if (s_[pos_] == '0') {
      ++pos_;
      if (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9')
        fail("leading zeros are not allowed in numbers");
    } else {
      digits();
    }
    bool integral = true;
    if (pos_ < s_.size() && s_[pos_] == '.') {
      integral = false;
      ++pos_;
      if (digits() == 0) fail("expected a digit after the decimal point");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (digits() == 0) fail("expected a digit in the exponent");
    }
    const char* first = s_.data() + start;
    const char* last = s_.data() + pos_;
    if (integral) {
      int64_t i = 0;
      auto r = std::from_chars(first, last, i);
      if (r.ec == std::errc() && r.ptr == last) return Value(i);
    }
    double d = 0.0;
    auto r = std::from_chars(first, last, d);
    if (r.ec == std::errc::result_out_of_range) {
      // Overflow reads as ±infinity, underflow as 0 (the nearest representable values).
      bool neg = *first == '-';
      bool big = false;
      for (const char* p = first; p < last; ++p)
        if (*p == 'e' || *p == 'E') big = p[1] != '-';
      if (integral) big = true;
      return Value(big ? (neg ? -std::numeric_limits<double>::infinity()
                              : std::numeric_limits<double>::infinity())
                       : (neg ? -0.0 : 0.0));
    }
    if (r.ec != std::errc() || r.ptr != last) {
      pos_ = start;
      fail("malformed number");
    }
    return Value(d);
  }

  std::string_view s_;
  std::string_view source_;
  size_t pos_ = 0;
};

Value parse(std::string_view text, std::string_view source) {
  return Parser(text, source).parse_document();
}

}  // namespace kiln::json
