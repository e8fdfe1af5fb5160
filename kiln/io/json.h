#pragma once
// A small JSON value, parser and emitter for every JSON file Kiln reads or writes: safetensors
// headers, layer / compile configs, the training history stored in checkpoints, tokenizer files
// (encoder.json, vocab.json) and tracking records. No JSON library is a dependency.
//
//   json::Value cfg = json::Value::object();
//   cfg["units"] = 128;
//   cfg["activation"] = "relu";
//   std::string text = cfg.dump();                  // {"units":128,"activation":"relu"}
//   json::Value back = json::parse(text, "config");  // back.at("units").as_int() == 128
//
// Parsing is strict RFC 8259 (no trailing commas, no comments, raw control characters in strings
// rejected, \uXXXX escapes and surrogate pairs decoded to UTF-8, nesting limited to 128 levels)
// with one extension, Python's: the bare tokens NaN, Infinity and -Infinity, which dump() writes
// for non-finite doubles (a training history may hold a NaN loss). Malformed text throws
// kiln::IOError naming the source and the byte offset:
//   config: byte 17: expected ',' or '}' after an object member, got 'x'
// Integers without a fraction or exponent that fit in int64 stay exact (kind Int); other numbers
// are doubles. Objects keep members in insertion order; a duplicate key is a parse error.
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::json {

class Value {
 public:
  enum class Kind : uint8_t { Null, Bool, Int, Double, String, Array, Object };
  using Members = std::vector<std::pair<std::string, Value>>;

  Value() = default;
  Value(std::nullptr_t) {}  // NOLINT(google-explicit-constructor)
  template <typename T>
  requires std::integral<T> Value(T v) {  // NOLINT(google-explicit-constructor)
    if constexpr (std::same_as<T, bool>) {
      kind_ = Kind::Bool;
      bool_ = v;
    } else {
      kind_ = Kind::Int;
      int_ = static_cast<int64_t>(v);
    }
  }
  template <typename T>
  requires std::floating_point<T> Value(T v)
      : kind_(Kind::Double), double_(static_cast<double>(v)) {}         // NOLINT
  Value(const char* s) : kind_(Kind::String), string_(s) {}             // NOLINT
  Value(std::string s) : kind_(Kind::String), string_(std::move(s)) {}  // NOLINT
  Value(std::string_view s) : kind_(Kind::String), string_(s) {}        // NOLINT
  static Value array(std::vector<Value> items = {});
  static Value object();

  Kind kind() const { return kind_; }
  /// "null", "bool", "int", "double", "string", "array" or "object".
  std::string_view kind_name() const;
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Double; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_object() const { return kind_ == Kind::Object; }

  /// Typed accessors: throw kiln::Error naming the kind found when it differs. as_int() accepts a
  /// double that holds an integer exactly; as_double() accepts an Int.
  bool as_bool() const;
  int64_t as_int() const;
  double as_double() const;
  const std::string& as_string() const;
  const std::vector<Value>& as_array() const;
  const Members& members() const;

  /// Elements of an array / members of an object (0 otherwise).
  size_t size() const;
  /// i-th array element (throws when out of range).
  const Value& at(size_t i) const;
  /// Appends to an array.
  void push_back(Value v);
  /// The member `key` of an object, or nullptr.
  const Value* find(std::string_view key) const;
  /// The member `key`; throws naming the key and the keys present when absent.
  const Value& at(std::string_view key) const;
  /// The member `key`, inserted as null when absent (a null Value becomes an object first).
  Value& operator[](std::string_view key);
  /// Member `key` if present, else `fallback` (converted).
  template <typename T>
  T get_or(std::string_view key, T fallback) const;

  /// Compact text (objects in member order); doubles in the shortest form that reads back equal.
  std::string dump() const;

  friend bool operator==(const Value& a, const Value& b);

 private:
  friend class Parser;
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  int64_t int_ = 0;
  double double_ = 0.0;
  std::string string_;
  std::vector<Value> items_;  // array elements
  Members members_;           // object members
};

/// Parses `text`; `source` names it in error messages (a file name or "config").
Value parse(std::string_view text, std::string_view source = "json");

/// `s` as a quoted JSON string with escapes.
std::string quote(std::string_view s);

template <typename T>
T Value::get_or(std::string_view key, T fallback) const {
  const Value* v = find(key);
  if (v == nullptr || v->is_null()) return fallback;
  if constexpr (std::same_as<T, bool>) {
    return v->as_bool();
  } else if constexpr (std::integral<T>) {
    return static_cast<T>(v->as_int());
  } else if constexpr (std::floating_point<T>) {
    return static_cast<T>(v->as_double());
  } else {
    return T(v->as_string());
  }
}

}  // namespace kiln::json
