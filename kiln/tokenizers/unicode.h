#pragma once
// UTF-8 decoding and the Unicode character classes Kiln's tokenizers need (no ICU, no regex
// library).
//
// Code points are classified by general category into the groups of CharClass. The tables cover all
// of Unicode (0..10FFFF) and are generated from Node.js's regular-expression engine by
// tests/tokenizers/gen_unicode_tables.js (kiln/tokenizers/unicode_tables.inc, Unicode 17.0), so the GPT-2
// pre-tokenizer classifies every code point exactly as the JS reference gpt-3-encoder does. For
// orientation, the letter (\p{L}) ranges include ASCII A-Z a-z, Latin-1 C0-FF (less D7, F7), Latin
// Extended-A/B 100-24F, IPA 250-2AF, Greek 370-3FF, Cyrillic 400-52F, Armenian, Hebrew 5D0-5EA,
// Arabic 620-64A, Devanagari and the other Indic scripts, Thai, Hangul AC00-D7A3, kana 3041-30FF,
// CJK ideographs 3400-4DBF and 4E00-9FFF (plus the astral extensions B-H); numbers (\p{N}) include
// ASCII 0-9, superscripts B2 B3 B9, fractions BC-BE, Arabic-Indic 660-669, fullwidth FF10-FF19,
// Roman numerals 2160-2182 and circled digits 2460-249B.
//
// Invalid UTF-8 is never an error here: decode_utf8() reports it and callers treat each maximal
// invalid subpart as one U+FFFD (WHATWG Encoding Standard, the same rule Node's TextDecoder
// applies).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::text {

/// General-category groups. Every code point is in exactly one.
enum class CharClass : uint8_t {
  kLetter,          // L  (Lu Ll Lt Lm Lo)
  kMarkNonspacing,  // Mn (combining accents: U+0300..036F, ...)
  kMarkOther,       // Mc Me
  kNumber,          // N  (Nd Nl No)
  kPunctuation,     // P  (Pc Pd Ps Pe Pi Pf Po)
  kSymbol,          // S  (Sm Sc Sk So)
  kSpaceSeparator,  // Zs (U+0020, U+00A0, U+3000, ...)
  kLineSeparator,   // Zl Zp (U+2028, U+2029)
  kOther,           // C  (Cc Cf Cs Co Cn: controls, format, surrogates, private use, unassigned)
};

inline constexpr char32_t kReplacementChar = 0xFFFD;
inline constexpr char32_t kMaxCodePoint = 0x10FFFF;

/// One decoded character: its code point (U+FFFD when invalid), how many bytes it spans (>= 1) and
/// whether those bytes were valid UTF-8.
struct Utf8Char {
  char32_t cp = 0;
  uint32_t size = 1;
  bool valid = true;
};

/// Decodes the character starting at s[pos] (pos < s.size()). Invalid input yields
/// {U+FFFD, length of the maximal invalid subpart, false}: overlong forms, surrogates (ED A0..BF),
/// code points above 10FFFF, stray continuation bytes and truncated sequences are all invalid.
///   decode_utf8("\xC3\xA9", 0) -> {U+00E9, 2, true}      decode_utf8("\xE2\x82", 0) -> {FFFD, 2,
///   false}
Utf8Char decode_utf8(std::string_view s, size_t pos) noexcept;

/// Appends the UTF-8 encoding of cp (a surrogate or cp > 10FFFF is written as U+FFFD).
void append_utf8(std::string& out, char32_t cp);

/// True when s is well-formed UTF-8.
bool is_valid_utf8(std::string_view s) noexcept;

/// Replaces every maximal invalid subpart with U+FFFD, exactly as the WHATWG UTF-8 decoder (Node's
/// TextDecoder, Buffer.toString) does. Valid input is returned unchanged.
///   sanitize_utf8("caf\xE9!") -> "caf\uFFFD!"
std::string sanitize_utf8(std::string_view s);

/// The general-category group of cp (CharClass::kOther for cp > 10FFFF).
CharClass char_class(char32_t cp) noexcept;

inline bool is_letter(char32_t cp) noexcept {
  return char_class(cp) == CharClass::kLetter;
}
inline bool is_number(char32_t cp) noexcept {
  return char_class(cp) == CharClass::kNumber;
}

/// ECMAScript's \s: TAB LF VT FF CR, U+0020, U+00A0, U+1680, U+2000..200A, U+2028, U+2029, U+202F,
/// U+205F, U+3000, U+FEFF. (Python's \s differs only at U+001C..001F and U+0085.)
bool is_js_whitespace(char32_t cp) noexcept;

/// BERT's _is_whitespace: space, TAB, LF, CR, or category Zs.
bool is_bert_whitespace(char32_t cp) noexcept;

/// BERT's _is_control: any category C (controls, format, unassigned, private use) except TAB LF CR.
bool is_bert_control(char32_t cp) noexcept;

/// BERT's _is_punctuation: every non-alphanumeric printable ASCII character (so $ + < = > ^ ` | ~
/// count too) or category P.
bool is_bert_punctuation(char32_t cp) noexcept;

/// BERT's _is_chinese_char: the CJK Unified Ideographs blocks 4E00-9FFF, 3400-4DBF, 20000-2A6DF,
/// 2A700-2B73F, 2B740-2B81F, 2B820-2CEAF, and the compatibility ideographs F900-FAFF, 2F800-2FA1F.
/// (Hangul, kana and CJK punctuation are not in these ranges.)
bool is_cjk_ideograph(char32_t cp) noexcept;

/// Appends the lower case of cp (Unicode full mapping, locale-independent, as Python's str.lower
/// and JS's toLowerCase: U+0130 'İ' lowers to "i\u0307"; U+03A3 'Σ' always lowers to 'σ' here, the
/// final sigma rule is applied by BasicTokenizer).
void append_lower(char32_t cp, std::u32string& out);

/// Simple one-to-one lower case (U+0130 -> 'i').
char32_t to_lower(char32_t cp) noexcept;

/// Appends NFD(cp) without its non-spacing marks (BERT's _run_strip_accents for one code point):
///   'é' -> "e", 'Å' -> "A", 'ﬃ' -> "ﬃ" (compatibility forms are kept), U+0301 -> "" (dropped),
///   Hangul '한' -> its conjoining jamo.
void append_stripped_accents(char32_t cp, std::u32string& out);

}  // namespace kiln::text
