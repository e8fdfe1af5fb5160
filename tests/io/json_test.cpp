// kiln::json: the parser / emitter Kiln uses for safetensors headers, configs and tokenizer files.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kiln/io/json.h"
#include "kiln/tensor/error.h"

namespace kiln::json {
namespace {

TEST(Json, ParsesEveryKind) {
  Value v = parse(
      R"( {"a": 1, "b": -2.5e1, "c": "x\"y\u00e9\ud83d\ude00", "d": [true, false, null], "e": {}} )");
  EXPECT_EQ(v.at("a").as_int(), 1);
  EXPECT_TRUE(v.at("a").is_int());
  EXPECT_DOUBLE_EQ(v.at("b").as_double(), -25.0);
  EXPECT_EQ(v.at("c").as_string(), "x\"y\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_TRUE(v.at("d").at(0).as_bool());
  EXPECT_TRUE(v.at("d").at(2).is_null());
  EXPECT_EQ(v.at("e").size(), 0u);
}

TEST(Json, KeepsInt64Exact) {
  Value v = parse("[9223372036854775807, -9223372036854775808, 9223372036854775808]");
  EXPECT_EQ(v.at(0).as_int(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(v.at(1).as_int(), std::numeric_limits<int64_t>::min());
  EXPECT_FALSE(v.at(2).is_int());  // too big: a double
}

TEST(Json, RoundTripsThroughDump) {
  Value v = Value::object();
  v["units"] = 128;
  v["rate"] = 0.1;
  v["one"] = 1.0;
  v["name"] = "tab\there";
  v["list"] = Value::array({1, 2.5, "s", nullptr, true});
  v["nan"] = std::numeric_limits<double>::quiet_NaN();
  v["inf"] = -std::numeric_limits<double>::infinity();
  const std::string text = v.dump();
  EXPECT_EQ(text.substr(0, 40), R"({"units":128,"rate":0.1,"one":1.0,"name")");
  Value back = parse(text);
  EXPECT_EQ(back.at("units").as_int(), 128);
  EXPECT_TRUE(back.at("one").kind() == Value::Kind::Double);
  EXPECT_EQ(back.at("name").as_string(), "tab\there");
  EXPECT_TRUE(std::isnan(back.at("nan").as_double()));
  EXPECT_EQ(back.at("inf").as_double(), -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(back.at("list") == v.at("list"));
}

TEST(Json, RejectsMalformedTextWithOffset) {
  const char* bad[] = {
      "",         "{",     "[1,]", "{\"a\":1,}",  "{\"a\" 1}",         "01", "1.", "\"\\x\"",
      "\"a\nb\"", "[1] x", "tru",  "\"\\ud800\"", "{\"a\":1,\"a\":2}", "-",  "1e"};
  for (const char* text : bad) {
    try {
      parse(text, "cfg");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const IOError& e) {
      EXPECT_NE(std::string(e.what()).find("cfg: byte "), std::string::npos) << e.what();
    }
  }
}

// Closed, otherwise valid documents: only the depth limit (128 levels) can reject them.
std::string nested_arrays(int depth) {
  return std::string(static_cast<size_t>(depth), '[') + "1" +
         std::string(static_cast<size_t>(depth), ']');
}

TEST(Json, LimitsNesting) {
  Value v = parse(nested_arrays(128));
  for (int i = 0; i < 127; ++i) v = v.as_array().at(0);
  EXPECT_EQ(v.as_array().at(0).as_int(), 1) << "128 levels are within the limit";
  for (int depth : {129, 1000}) {
    try {
      parse(nested_arrays(depth), "deep");
      ADD_FAILURE() << depth << " levels of nesting were accepted";
    } catch (const IOError& e) {
      EXPECT_NE(std::string(e.what()).find("nesting deeper than 128 levels"), std::string::npos)
          << e.what();
    }
  }
}

TEST(Json, AccessorsNameTheProblem) {
  Value v = parse(R"({"a": "s"})");
  try {
    v.at("b");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no member \"b\""), std::string::npos) << e.what();
  }
  EXPECT_THROW(v.at("a").as_int(), Error);
  EXPECT_EQ(v.get_or<int64_t>("missing", 7), 7);
}

}  // namespace
}  // namespace kiln::json
