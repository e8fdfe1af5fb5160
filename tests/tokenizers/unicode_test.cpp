// UTF-8 decoding (WHATWG replacement of maximal subparts) and the character classes.
#include "kiln/tokenizers/unicode.h"

#include <gtest/gtest.h>

namespace kiln::text {
namespace {

TEST(Utf8, DecodesValidSequences) {
  const std::string s = "a\u00E9\u20AC\U0001F600";
  Utf8Char c = decode_utf8(s, 0);
  EXPECT_EQ(c.cp, U'a');
  EXPECT_EQ(c.size, 1u);
  c = decode_utf8(s, 1);
  EXPECT_EQ(c.cp, U'\u00E9');
  EXPECT_EQ(c.size, 2u);
  c = decode_utf8(s, 3);
  EXPECT_EQ(c.cp, U'\u20AC');
  EXPECT_EQ(c.size, 3u);
  c = decode_utf8(s, 6);
  EXPECT_EQ(c.cp, U'\U0001F600');
  EXPECT_EQ(c.size, 4u);
  EXPECT_TRUE(c.valid);
  EXPECT_TRUE(is_valid_utf8(s));
}

TEST(Utf8, InvalidInputReplacesMaximalSubparts) {
  // Expected strings follow the WHATWG Encoding Standard (and Node's TextDecoder).
  const std::string r = "\uFFFD";
  EXPECT_EQ(sanitize_utf8("caf\xE9!"), "caf" + r + "!");
  EXPECT_EQ(sanitize_utf8("\xE2\x82"), r);  // truncated 3-byte sequence: one
  EXPECT_EQ(sanitize_utf8("\xE2\x82x"), r + "x");
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x98"), r);                  // truncated 4-byte sequence: one
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), r + r);                  // overlong: two
  EXPECT_EQ(sanitize_utf8("\xE0\x80\xAF"), r + r + r);          // overlong 3-byte: three
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), r + r + r);          // surrogate: three
  EXPECT_EQ(sanitize_utf8("\xF4\x90\x80\x80"), r + r + r + r);  // > U+10FFFF
  EXPECT_EQ(sanitize_utf8("\x80\xBF"), r + r);                  // stray continuation bytes
  EXPECT_EQ(sanitize_utf8("\xFF"), r);
  EXPECT_EQ(sanitize_utf8("ok \u00E9"), "ok \u00E9");
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));
  std::string out;
  append_utf8(out, 0xD800);
  EXPECT_EQ(out, r);
}

TEST(CharClass, CategoriesOfCommonScripts) {
  for (char32_t c :
       {U'a', U'Z', U'\u00E9', U'\u0142', U'\u03A9', U'\u0436', U'\u05D0', U'\u0627', U'\u0915',
        U'\u0E01', U'\u3042', U'\u30AB', U'\u4E2D', U'\uAC00', U'\U00020000'}) {
    EXPECT_EQ(char_class(c), CharClass::kLetter) << std::hex << static_cast<uint32_t>(c);
  }
  for (char32_t c : {U'0', U'\u00B2', U'\u00BD', U'\u0663', U'\u2160', U'\uFF11'}) {
    EXPECT_EQ(char_class(c), CharClass::kNumber) << std::hex << static_cast<uint32_t>(c);
  }
  EXPECT_EQ(char_class(U'\u0301'), CharClass::kMarkNonspacing);
  EXPECT_EQ(char_class(U','), CharClass::kPunctuation);
  EXPECT_EQ(char_class(U'\u3002'), CharClass::kPunctuation);
  EXPECT_EQ(char_class(U'$'), CharClass::kSymbol);
  EXPECT_EQ(char_class(U'\U0001F600'), CharClass::kSymbol);
  EXPECT_EQ(char_class(U'\u3000'), CharClass::kSpaceSeparator);
  EXPECT_EQ(char_class(U'\u2028'), CharClass::kLineSeparator);
  EXPECT_EQ(char_class(U'\u200B'), CharClass::kOther);
  EXPECT_EQ(char_class(0x110000), CharClass::kOther);
  EXPECT_TRUE(is_js_whitespace(U'\uFEFF'));
  EXPECT_FALSE(is_js_whitespace(U'\u0085'));
  EXPECT_TRUE(is_bert_punctuation(U'$'));
  EXPECT_TRUE(is_bert_punctuation(U'\u00BF'));
  EXPECT_FALSE(is_bert_punctuation(U'\u00A3'));  // '£' is Sc and not ASCII
  EXPECT_TRUE(is_bert_control(U'\u200B'));
  EXPECT_FALSE(is_bert_control(U'\t'));
  EXPECT_TRUE(is_cjk_ideograph(U'\u4E2D'));
  EXPECT_FALSE(is_cjk_ideograph(U'\u3042'));
}

TEST(CaseAndAccents, LowerAndStrip) {
  EXPECT_EQ(to_lower(U'A'), U'a');
  EXPECT_EQ(to_lower(U'\u00C9'), U'\u00E9');
  EXPECT_EQ(to_lower(U'\u0100'), U'\u0101');
  EXPECT_EQ(to_lower(U'\u0101'), U'\u0101');
  EXPECT_EQ(to_lower(U'\u03A9'), U'\u03C9');
  EXPECT_EQ(to_lower(U'\u0416'), U'\u0436');
  EXPECT_EQ(to_lower(U'\u1E9E'), U'\u00DF');
  EXPECT_EQ(to_lower(U'\U00010400'), U'\U00010428');
  std::u32string s;
  append_lower(U'\u0130', s);
  EXPECT_EQ(s, U"i\u0307");
  const auto strip = [](char32_t c) {
    std::u32string out;
    append_stripped_accents(c, out);
    return out;
  };
  EXPECT_EQ(strip(U'\u00E9'), U"e");
  EXPECT_EQ(strip(U'\u00C5'), U"A");
  EXPECT_EQ(strip(U'\u0107'), U"c");
  EXPECT_EQ(strip(U'\u1EC7'), U"e");       // Vietnamese ệ: two marks
  EXPECT_EQ(strip(U'\u0439'), U"\u0438");  // Cyrillic й -> и, as BERT uncased
  EXPECT_EQ(strip(U'\u0301'), U"");
  EXPECT_EQ(strip(U'\u00E6'), U"\u00E6");  // æ has no decomposition
  EXPECT_EQ(strip(U'\uFB03'), U"\uFB03");  // compatibility ligature: NFD keeps it
  EXPECT_EQ(strip(U'\u212B'), U"A");       // ANGSTROM SIGN
  EXPECT_EQ(strip(U'\uAC01'), U"\u1100\u1161\u11A8");
}

}  // namespace
}  // namespace kiln::text
