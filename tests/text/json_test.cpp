// The JSON reader: RFC 8259 grammar, \u escapes with surrogate pairs, errors with byte offsets, and
// no crash on any corruption of a real file.
#include "kiln/text/json.h"

#include <gtest/gtest.h>

#include <random>

#include "kiln/tensor/error.h"
#include "text_test_util.h"

namespace kiln::text {
namespace {

std::string error_of(std::string_view text) {
  try {
    parse_json(text, "t.json");
  } catch (const kiln::IOError& e) {
    return e.what();
  }
  return "";
}

TEST(Json, ParsesValues) {
  const JsonValue v = parse_json(
      R"( {"a": 1, "b": [true, false, null, -2.5e3, 0.5, "x"], "c": {}, "d": [], "a": 7} )");
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(v.size(), 5u);
  EXPECT_EQ(v.find("a")->as_int(), 1);  // first of duplicate keys
  const JsonValue& b = *v.find("b");
  ASSERT_EQ(b.size(), 6u);
  EXPECT_TRUE(b.at(0).as_bool());
  EXPECT_FALSE(b.at(1).as_bool());
  EXPECT_TRUE(b.at(2).is_null());
  EXPECT_DOUBLE_EQ(b.at(3).as_number(), -2500.0);
  EXPECT_EQ(b.at(3).as_int(), -2500);
  EXPECT_EQ(b.at(5).as_string(), "x");
  EXPECT_EQ(v.find("missing"), nullptr);
  EXPECT_THROW(b.at(4).as_int(), kiln::Error);  // 0.5 is not an integer
  EXPECT_THROW(b.at(5).as_number(), kiln::Error);
}

TEST(Json, DecodesEscapesAndSurrogatePairs) {
  EXPECT_EQ(parse_json(R"("a\"b\\c\/d\b\f\n\r\t")").as_string(), "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(parse_json(R"("\u0041\u00e9\u2581\uFFFD")").as_string(), "Aé▁\uFFFD");
  EXPECT_EQ(parse_json(R"("\ud83d\ude00")").as_string(), "\U0001F600");
  EXPECT_EQ(parse_json("\"raw UTF-8: ĠnaÃ¯ve 日本\"").as_string(), "raw UTF-8: ĠnaÃ¯ve 日本");
}

TEST(Json, ErrorsNameFileOffsetAndRule) {
  EXPECT_EQ(error_of(R"({"a": 1)"),
            "json: t.json: byte 7: unexpected end of input inside an object (',' or '}' was "
            "expected)");
  EXPECT_EQ(error_of(R"(["abc)"),
            "json: t.json: byte 5: unterminated string (a string must end "
            "with '\"')");
  EXPECT_NE(error_of(R"("\ud83d")").find("lone high surrogate"), std::string::npos);
  EXPECT_NE(error_of(R"("\ude00")").find("lone low surrogate"), std::string::npos);
  EXPECT_NE(error_of(R"("\ud83d\u0041")").find("non-low-surrogate"), std::string::npos);
  EXPECT_NE(error_of(R"("\u12G4")").find("hex digit"), std::string::npos);
  EXPECT_NE(error_of("\"a\x01\"").find("control character"), std::string::npos);
  EXPECT_NE(error_of("\"\xC3\x28\"").find("invalid UTF-8"), std::string::npos);
  EXPECT_NE(error_of("[1, 2,]").find("byte 6"), std::string::npos);
  EXPECT_NE(error_of("{\"a\" 1}").find("expected ':'"), std::string::npos);
  EXPECT_NE(error_of("01").find("trailing"), std::string::npos);
  EXPECT_NE(error_of("1.").find("digit must follow '.'"), std::string::npos);
  EXPECT_NE(error_of("-").find("truncated number"), std::string::npos);
  EXPECT_NE(error_of("1e999").find("out of range"), std::string::npos);
  EXPECT_NE(error_of("tru").find("invalid literal"), std::string::npos);
  EXPECT_NE(error_of("").find("unexpected end of input"), std::string::npos);
  EXPECT_NE(error_of("[] []").find("trailing"), std::string::npos);
  EXPECT_NE(error_of(std::string(100000, '[')).find("nesting deeper"), std::string::npos);
  EXPECT_THROW(read_json_file("/nonexistent/encoder.json"), kiln::IOError);
}

TEST(Json, DumpRoundTrips) {
  JsonValue o = JsonValue::object();
  o.set("name", JsonValue::string("quote \" backslash \\ newline \n tab \t ctrl \x01 é"));
  o.set("n", JsonValue::number(50257));
  o.set("x", JsonValue::number(0.25));
  JsonValue arr = JsonValue::array();
  arr.push_back(JsonValue::boolean(true));
  arr.push_back(JsonValue());
  o.set("arr", std::move(arr));
  const JsonValue back = parse_json(o.dump());
  EXPECT_EQ(back.find("name")->as_string(), o.find("name")->as_string());
  EXPECT_EQ(back.find("n")->as_int(), 50257);
  EXPECT_EQ(back.find("x")->as_number(), 0.25);
  EXPECT_TRUE(back.find("arr")->at(1).is_null());
  EXPECT_EQ(back.dump(), o.dump());
}

// Random byte corruptions and truncations of a real file: each parse either succeeds or throws
// kiln::IOError; nothing else escapes and nothing crashes (the sanitizer build checks memory).
TEST(Json, CorruptedRealFileNeverCrashes) {
  const auto path = testing::bert_vocab_json();
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << testing::kInstallHint;
    return;
  }
  const std::string original = testing::read_bytes(path).substr(0, 20000);
  std::mt19937 rng(5);
  std::uniform_int_distribution<size_t> pos(0, original.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  const std::string specials = "\"\\[]{},:u0123456789eE.-+ \x80\xFF";
  size_t ok = 0, errors = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string s = original;
    const int edits = 1 + trial % 4;
    for (int k = 0; k < edits; ++k) {
      const size_t p = pos(rng);
      s[p] = trial % 2 ? static_cast<char>(byte(rng)) : specials[byte(rng) % specials.size()];
    }
    if (trial % 3 == 0) s.resize(pos(rng));
    try {
      parse_json(s, "corrupt.json");
      ++ok;
    } catch (const kiln::IOError&) {
      ++errors;
    }
  }
  EXPECT_EQ(ok + errors, 300u);
  EXPECT_GT(errors, 200u);
}

}  // namespace
}  // namespace kiln::text
