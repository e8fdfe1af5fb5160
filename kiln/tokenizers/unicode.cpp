#include "kiln/tokenizers/unicode.h"

#include <algorithm>
#include <array>
#include <memory>

namespace kiln::text {
namespace {

struct CategoryRun {
  char32_t first;
  CharClass cls;
};
struct LowerRun {
  char32_t first;
  char32_t last;
  int32_t delta;
  int32_t stride;
};
struct StripEntry {
  char32_t cp;
  char32_t out[3];
};

#include "kiln/tokenizers/unicode_tables.inc"

// One byte per BMP code point, built once from kCategoryRanges: the hot path of every tokenizer.
const std::array<CharClass, 0x10000>& bmp_classes() {
  static const auto table = [] {
    auto t = std::make_unique<std::array<CharClass, 0x10000>>();
    const size_t n = std::size(kCategoryRanges);
    for (size_t i = 0; i < n && kCategoryRanges[i].first < 0x10000; ++i) {
      const char32_t end =
          i + 1 < n ? std::min<char32_t>(kCategoryRanges[i + 1].first, 0x10000) : char32_t{0x10000};
      std::fill(t->begin() + kCategoryRanges[i].first, t->begin() + end, kCategoryRanges[i].cls);
    }
    return t;
  }();
  return *table;
}

// Hangul syllables decompose algorithmically (Unicode §3.12): S = L V [T].
constexpr char32_t kHangulFirst = 0xAC00, kHangulLast = 0xD7A3;
constexpr char32_t kJamoL = 0x1100, kJamoV = 0x1161, kJamoT = 0x11A7;
constexpr char32_t kJamoVCount = 21, kJamoTCount = 28;

}  // namespace

Utf8Char decode_utf8(std::string_view s, size_t pos) noexcept {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t b0 = byte(pos);
  if (b0 < 0x80) return {b0, 1, true};
  // Lead byte: how many continuation bytes follow and the allowed range of the first one (the
  // narrower ranges after E0, ED, F0, F4 exclude overlong forms, surrogates and > 10FFFF).
  uint32_t need = 0;
  uint8_t lo = 0x80, hi = 0xBF;
  char32_t cp = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {kReplacementChar, 1, false};
  }
  for (uint32_t k = 1; k <= need; ++k) {
    if (pos + k >= s.size()) return {kReplacementChar, k, false};
    const uint8_t b = byte(pos + k);
    if (b < lo || b > hi) return {kReplacementChar, k, false};
    lo = 0x80;
    hi = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, need + 1, true};
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp > kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF)) cp = kReplacementChar;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_valid_utf8(std::string_view s) noexcept {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const Utf8Char c = decode_utf8(s, i);
    if (!c.valid) return false;
    i += c.size;
  }
  return true;
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const Utf8Char c = decode_utf8(s, i);
    if (c.valid) {
      out.append(s.substr(i, c.size));
    } else {
      append_utf8(out, kReplacementChar);
    }
    i += c.size;
  }
  return out;
}

CharClass char_class(char32_t cp) noexcept {
  if (cp < 0x10000) return bmp_classes()[cp];
  if (cp > kMaxCodePoint) return CharClass::kOther;
  // Last run whose first code point is <= cp.
  const auto it = std::upper_bound(std::begin(kCategoryRanges), std::end(kCategoryRanges), cp,
                                   [](char32_t c, const CategoryRun& r) { return c < r.first; });
  return std::prev(it)->cls;
}

bool is_js_whitespace(char32_t cp) noexcept {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  switch (cp) {
    case 0x00A0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
    case 0xFEFF:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

bool is_bert_whitespace(char32_t cp) noexcept {
  if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') return true;
  return char_class(cp) == CharClass::kSpaceSeparator;
}

bool is_bert_control(char32_t cp) noexcept {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  return char_class(cp) == CharClass::kOther;
}

bool is_bert_punctuation(char32_t cp) noexcept {
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
      (cp >= 123 && cp <= 126)) {
    return true;
  }
  return char_class(cp) == CharClass::kPunctuation;
}

bool is_cjk_ideograph(char32_t cp) noexcept {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

char32_t to_lower(char32_t cp) noexcept {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  if (cp == 0x0130) return 'i';
  const auto it = std::upper_bound(std::begin(kLowerRuns), std::end(kLowerRuns), cp,
                                   [](char32_t c, const LowerRun& r) { return c < r.first; });
  if (it == std::begin(kLowerRuns)) return cp;
  const LowerRun& r = *std::prev(it);
  if (cp > r.last || (cp - r.first) % static_cast<char32_t>(r.stride) != 0) return cp;
  return static_cast<char32_t>(static_cast<int64_t>(cp) + r.delta);
}

void append_lower(char32_t cp, std::u32string& out) {
  if (cp == 0x0130) {  // 'İ' -> "i" + COMBINING DOT ABOVE (SpecialCasing.txt, unconditional).
    out.push_back('i');
    out.push_back(0x0307);
    return;
  }
  out.push_back(to_lower(cp));
}

void append_stripped_accents(char32_t cp, std::u32string& out) {
  if (cp < 0xC0) {  // Nothing below U+00C0 decomposes.
    out.push_back(cp);
    return;
  }
  if (cp >= kHangulFirst && cp <= kHangulLast) {
    const char32_t s = cp - kHangulFirst;
    out.push_back(kJamoL + s / (kJamoVCount * kJamoTCount));
    out.push_back(kJamoV + (s % (kJamoVCount * kJamoTCount)) / kJamoTCount);
    if (s % kJamoTCount != 0) out.push_back(kJamoT + s % kJamoTCount);
    return;
  }
  if (char_class(cp) == CharClass::kMarkNonspacing) return;
  const auto it = std::lower_bound(std::begin(kStripAccents), std::end(kStripAccents), cp,
                                   [](const StripEntry& e, char32_t c) { return e.cp < c; });
  if (it == std::end(kStripAccents) || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  for (char32_t c : it->out) {
    if (c != 0) out.push_back(c);
  }
}

}  // namespace kiln::text
