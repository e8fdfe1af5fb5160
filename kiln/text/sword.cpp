#include "kiln/text/sword.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <tuple>
#include <utility>

#include "kiln/tensor/error.h"
#include "kiln/tokenizers/unicode.h"

namespace kiln::text {

namespace fs = std::filesystem;

std::string Verse::reference() const {
  return fmt::format("{}.{}.{}", book, chapter, verse);
}

fs::path default_sword_dir() {
  return "/usr/share/sword/modules/texts/ztext";
}

namespace {

// ---- OSIS tags ----

// One tag's inside, between '<' and '>': `/name`, `name attr="v" ...` or `name .../`.
struct Tag {
  std::string_view name;
  std::string_view body;  // everything after '<' up to '>' (exclusive)
  bool closing = false;   // </name>
  bool self_closing = false;

  // The value of attribute `key` (attributes are separated by whitespace and double-quoted).
  std::optional<std::string_view> attr(std::string_view key) const {
    size_t pos = 0;
    while ((pos = body.find(key, pos)) != std::string_view::npos) {
      const size_t after = pos + key.size();
      const bool starts = pos > 0 && (body[pos - 1] == ' ' || body[pos - 1] == '\t' ||
                                      body[pos - 1] == '\n' || body[pos - 1] == '\r');
      if (starts && after + 1 < body.size() && body[after] == '=' && body[after + 1] == '"') {
        const size_t end = body.find('"', after + 2);
        if (end == std::string_view::npos) return std::nullopt;
        return body.substr(after + 2, end - after - 2);
      }
      pos = after;
    }
    return std::nullopt;
  }
};

Tag parse_tag(std::string_view body) {
  Tag t;
  t.body = body;
  size_t i = 0;
  if (!body.empty() && body[0] == '/') {
    t.closing = true;
    i = 1;
  }
  size_t j = i;
  while (j < body.size() && body[j] != ' ' && body[j] != '\t' && body[j] != '\n' &&
         body[j] != '\r' && body[j] != '/') {
    ++j;
  }
  t.name = body.substr(i, j - i);
  t.self_closing = !body.empty() && body.back() == '/';
  return t;
}

// Tags that separate words (structure and milestones); all others are inline (words stay joined).
bool is_block_tag(std::string_view name) {
  static constexpr std::string_view kBlock[] = {"div",   "l",         "lg",  "lb",   "chapter",
                                                "verse", "milestone", "p",   "list", "item",
                                                "br",    "table",     "row", "cell", "head"};
  return std::find(std::begin(kBlock), std::end(kBlock), name) != std::end(kBlock);
}

// Elements whose whole content is not verse text.
bool is_dropped_element(std::string_view name) {
  return name == "note" || name == "title" || name == "speaker";
}

// Index just past the close of the element `name` opened before `pos` (nested same-name elements
// counted); s.size() when it is never closed.
size_t skip_element(std::string_view s, size_t pos, std::string_view name) {
  int depth = 1;
  while (pos < s.size()) {
    const size_t lt = s.find('<', pos);
    if (lt == std::string_view::npos) return s.size();
    const size_t gt = s.find('>', lt);
    if (gt == std::string_view::npos) return s.size();
    const Tag t = parse_tag(s.substr(lt + 1, gt - lt - 1));
    pos = gt + 1;
    if (t.name != name) continue;
    if (t.closing) {
      if (--depth == 0) return pos;
    } else if (!t.self_closing) {
      ++depth;
    }
  }
  return s.size();
}

// Decodes the entity at s[pos] == '&' into `out`; returns the index after it. Unknown or
// malformed entities are kept literally.
size_t decode_entity(std::string_view s, size_t pos, std::string& out) {
  const size_t semi = s.find(';', pos);
  if (semi == std::string_view::npos || semi - pos > 10) {
    out += '&';
    return pos + 1;
  }
  const std::string_view name = s.substr(pos + 1, semi - pos - 1);
  static constexpr std::pair<std::string_view, char> kNamed[] = {
      {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
  for (const auto& [n, c] : kNamed) {
    if (name == n) {
      out += c;
      return semi + 1;
    }
  }
  if (name.size() >= 2 && name[0] == '#') {
    const bool hex = name[1] == 'x' || name[1] == 'X';
    const std::string_view digits = name.substr(hex ? 2 : 1);
    uint32_t cp = 0;
    const auto [end, ec] =
        std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
    if (ec == std::errc() && end == digits.data() + digits.size() && cp > 0 && cp <= 0x10FFFF &&
        !(cp >= 0xD800 && cp <= 0xDFFF)) {
      append_utf8(out, static_cast<char32_t>(cp));
      return semi + 1;
    }
  }
  out += '&';
  return pos + 1;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Punctuation that attaches to the word before it: a word break from a dropped note or a tag is
// not turned into a space before it ("God<note>…</note>, and" -> "God, and").
bool attaches_left(std::string_view s, size_t pos) {
  const char c = s[pos];
  if (c == ',' || c == '.' || c == ';' || c == ':' || c == '!' || c == '?' || c == ')') {
    return true;
  }
  // ’ (U+2019) and ” (U+201D): E2 80 99 / E2 80 9D.
  return s.substr(pos, 3) == "\xE2\x80\x99" || s.substr(pos, 3) == "\xE2\x80\x9D";
}

}  // namespace

std::string osis_to_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool pending_break = false;  // a tag or dropped element separated words here
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '<') {
      const size_t gt = s.find('>', i);
      if (gt == std::string_view::npos) break;  // a cut-off tag: nothing after it is text
      const Tag t = parse_tag(s.substr(i + 1, gt - i - 1));
      i = gt + 1;
      if (is_dropped_element(t.name)) {
        if (!t.closing && !t.self_closing) i = skip_element(s, i, t.name);
        pending_break = true;
      } else if (t.name == "div" && t.attr("type") == "book" && t.attr("eID")) {
        break;  // the book has ended; what follows is back matter
      } else if (is_block_tag(t.name)) {
        pending_break = true;
      }
      continue;
    }
    if (s.substr(i, 2) == "\xC2\xB6") {  // ¶ (U+00B6), the KJV's paragraph mark
      pending_break = true;
      i += 2;
      continue;
    }
    if (is_space(c)) {
      pending_break = true;
      ++i;
      continue;
    }
    if (pending_break && !out.empty() && !(attaches_left(s, i) && !is_space(s[i - 1]))) {
      out += ' ';
    }
    pending_break = false;
    if (c == '&') {
      i = decode_entity(s, i, out);
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

namespace {

// ---- zText files ----

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  KILN_CHECK_AS(IOError, in.good(), "read_sword_ztext: cannot open {}", p.string());
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  KILN_CHECK_AS(IOError, !in.bad(), "read_sword_ztext: error reading {}", p.string());
  return bytes;
}

uint32_t le32(const std::string& b, size_t at) {
  return static_cast<uint32_t>(static_cast<unsigned char>(b[at])) |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 1])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 2])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 3])) << 24;
}

uint16_t le16(const std::string& b, size_t at) {
  return static_cast<uint16_t>(static_cast<unsigned char>(b[at]) |
                               static_cast<unsigned char>(b[at + 1]) << 8);
}

constexpr size_t kBlockRecord = 12;  // .bzs: offset, compressed size, uncompressed size
constexpr size_t kEntryRecord = 10;  // .bzv: block, offset, size
// zlib's deflate expands at most ~1032:1; a header claiming more is corrupt (and would make us
// allocate gigabytes).
constexpr uint64_t kMaxInflateRatio = 1032;

// One testament's three files, with blocks inflated on first use.
class Testament {
 public:
  Testament(const fs::path& dir, const std::string& name)
      : bzs_path_(dir / (name + ".bzs")),
        bzv_path_(dir / (name + ".bzv")),
        bzz_path_(dir / (name + ".bzz")) {
    bzs_ = read_file(bzs_path_);
    bzv_ = read_file(bzv_path_);
    bzz_ = read_file(bzz_path_);
    KILN_CHECK_AS(IOError, bzs_.size() % kBlockRecord == 0,
                  "read_sword_ztext: {} has {} bytes, not a multiple of its {}-byte block records "
                  "(truncated or corrupt)",
                  bzs_path_.string(), bzs_.size(), kBlockRecord);
    KILN_CHECK_AS(IOError, bzv_.size() % kEntryRecord == 0,
                  "read_sword_ztext: {} has {} bytes, not a multiple of its {}-byte verse records "
                  "(truncated or corrupt)",
                  bzv_path_.string(), bzv_.size(), kEntryRecord);
    blocks_.resize(bzs_.size() / kBlockRecord);
  }

  size_t num_entries() const { return bzv_.size() / kEntryRecord; }

  // The raw OSIS bytes of index entry i (empty for a size-0 entry).
  std::string_view entry(size_t i) {
    const size_t at = i * kEntryRecord;
    const uint32_t block = le32(bzv_, at);
    const uint32_t offset = le32(bzv_, at + 4);
    const uint16_t size = le16(bzv_, at + 8);
    if (size == 0) return {};
    KILN_CHECK_AS(IOError, block < blocks_.size(),
                  "read_sword_ztext: {} entry {} names block {} but {} has only {} blocks",
                  bzv_path_.string(), i, block, bzs_path_.string(), blocks_.size());
    const std::string& text = inflated(block);
    KILN_CHECK_AS(IOError, uint64_t{offset} + size <= text.size(),
                  "read_sword_ztext: {} entry {} spans bytes [{}, {}) of block {}, which inflates "
                  "to {} bytes",
                  bzv_path_.string(), i, offset, uint64_t{offset} + size, block, text.size());
    return std::string_view(text).substr(offset, size);
  }

 private:
  const std::string& inflated(uint32_t block) {
    std::optional<std::string>& slot = blocks_[block];
    if (slot) return *slot;
    const size_t at = block * kBlockRecord;
    const uint32_t offset = le32(bzs_, at);
    const uint32_t csize = le32(bzs_, at + 4);
    const uint32_t usize = le32(bzs_, at + 8);
    KILN_CHECK_AS(IOError, uint64_t{offset} + csize <= bzz_.size(),
                  "read_sword_ztext: block {} of {} spans bytes [{}, {}) but {} has {} bytes",
                  block, bzs_path_.string(), offset, uint64_t{offset} + csize, bzz_path_.string(),
                  bzz_.size());
    KILN_CHECK_AS(IOError, usize <= uint64_t{csize} * kMaxInflateRatio + 64,
                  "read_sword_ztext: block {} of {} claims {} compressed bytes inflate to {} "
                  "(more than zlib's {}:1 maximum; corrupt)",
                  block, bzs_path_.string(), csize, usize, kMaxInflateRatio);
    std::string out(usize, '\0');
    uLongf out_len = usize;
    const int rc = uncompress(reinterpret_cast<Bytef*>(out.data()), &out_len,
                              reinterpret_cast<const Bytef*>(bzz_.data() + offset), csize);
    KILN_CHECK_AS(IOError, rc == Z_OK,
                  "read_sword_ztext: block {} of {} (bytes [{}, {})) does not inflate to the {} "
                  "bytes {} gives: zlib error {} ({})",
                  block, bzz_path_.string(), offset, uint64_t{offset} + csize, usize,
                  bzs_path_.string(), rc, zError(rc));
    KILN_CHECK_AS(IOError, out_len == usize,
                  "read_sword_ztext: block {} of {} inflates to {} bytes but {} says {}", block,
                  bzz_path_.string(), out_len, bzs_path_.string(), usize);
    slot = std::move(out);
    return *slot;
  }

  fs::path bzs_path_, bzv_path_, bzz_path_;
  std::string bzs_, bzv_, bzz_;
  std::vector<std::optional<std::string>> blocks_;
};

// Tags in an index entry that start a chapter ("Book.N") or a book.
struct EntryStarts {
  std::vector<std::string_view> chapters;  // osisID values, in order
  bool book = false;
};

EntryStarts find_starts(std::string_view s) {
  EntryStarts starts;
  size_t pos = 0;
  while ((pos = s.find('<', pos)) != std::string_view::npos) {
    const size_t gt = s.find('>', pos);
    if (gt == std::string_view::npos) break;
    const Tag t = parse_tag(s.substr(pos + 1, gt - pos - 1));
    pos = gt + 1;
    if (t.closing || !t.attr("sID")) continue;
    if (t.name == "chapter") {
      if (const auto id = t.attr("osisID")) starts.chapters.push_back(*id);
    } else if (t.name == "div" && t.attr("type") == "book") {
      starts.book = true;
    }
  }
  return starts;
}

// Walks one testament's entries: book intro -> chapter intro -> verses 1..n (see the header).
void read_testament(Testament& t, const fs::path& file, std::vector<Verse>& verses) {
  std::string book;
  int chapter = 0, verse = 0;
  for (size_t i = 0; i < t.num_entries(); ++i) {
    const std::string_view raw = t.entry(i);
    const EntryStarts starts = find_starts(raw);
    if (!starts.chapters.empty()) {
      for (const std::string_view id : starts.chapters) {
        const size_t dot = id.rfind('.');
        int n = 0;
        const std::string_view num = dot == std::string_view::npos ? "" : id.substr(dot + 1);
        const auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
        KILN_CHECK_AS(IOError, ec == std::errc() && end == num.data() + num.size() && n > 0,
                      "read_sword_ztext: {} entry {}: chapter osisID \"{}\" is not Book.N",
                      file.string(), i, id);
        const std::string_view b = id.substr(0, dot);
        const int expected = b == book ? chapter + 1 : 1;
        KILN_CHECK_AS(IOError, n == expected,
                      "read_sword_ztext: {} entry {}: chapter {} follows {}.{} (expected {}.{}; "
                      "the index does not follow book / chapter / verse order)",
                      file.string(), i, id, book.empty() ? "(start)" : book, chapter, b, expected);
        book = std::string(b);
        chapter = n;
      }
      verse = 0;
      continue;
    }
    if (starts.book) {
      chapter = 0;  // a book intro: verses wait for the first chapter
      continue;
    }
    if (chapter == 0) continue;  // module header, front matter, book intro text
    ++verse;
    std::string text = osis_to_text(raw);
    if (!text.empty()) verses.push_back({book, chapter, verse, std::move(text)});
  }
}

// ---- pairs ----

// SplitMix64 (Steele, Lea & Flood 2014): a fixed generator, so pairs are the same on every
// platform and standard library.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }

 private:
  uint64_t state_;
};

template <typename T>
void shuffle(std::vector<T>& v, SplitMix64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

}  // namespace

std::vector<Verse> read_sword_ztext(const fs::path& module_dir) {
  KILN_CHECK_AS(IOError, fs::is_directory(module_dir),
                "read_sword_ztext: {} is not a directory (install the Debian package "
                "sword-text-kjv or sword-text-web)",
                module_dir.string());
  std::vector<Verse> verses;
  bool any = false;
  for (const std::string name : {"ot", "nt"}) {
    if (!fs::exists(module_dir / (name + ".bzv"))) continue;
    any = true;
    Testament t(module_dir, name);
    read_testament(t, module_dir / (name + ".bzv"), verses);
  }
  KILN_CHECK_AS(IOError, any,
                "read_sword_ztext: {} holds neither ot.bzv nor nt.bzv (not a SWORD zText module)",
                module_dir.string());
  return verses;
}

data::Table load_bible_pairs(const fs::path& first_dir, const fs::path& second_dir,
                             const BiblePairsOptions& options) {
  return make_bible_pairs(read_sword_ztext(first_dir), read_sword_ztext(second_dir), options);
}

data::Table make_bible_pairs(const std::vector<Verse>& a, const std::vector<Verse>& b,
                             const BiblePairsOptions& o) {
  KILN_CHECK(o.negative_fraction >= 0 && o.negative_fraction < 1,
             "make_bible_pairs: negative_fraction is {} (must be in [0, 1))", o.negative_fraction);
  KILN_CHECK(o.same_chapter_negatives >= 0 && o.same_chapter_negatives <= 1,
             "make_bible_pairs: same_chapter_negatives is {} (must be in [0, 1])",
             o.same_chapter_negatives);
  std::map<std::tuple<std::string_view, int, int>, size_t> b_index;
  for (size_t j = 0; j < b.size(); ++j) b_index[{b[j].book, b[j].chapter, b[j].verse}] = j;

  // Joined verses in the first module's order: (index in a, index in b).
  std::vector<std::pair<size_t, size_t>> joined;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto it = b_index.find({a[i].book, a[i].chapter, a[i].verse});
    if (it == b_index.end()) continue;
    const double la = static_cast<double>(a[i].text.size());
    const double lb = static_cast<double>(b[it->second].text.size());
    if (o.max_length_ratio > 0 && std::max(la, lb) > o.max_length_ratio * std::min(la, lb)) {
      continue;
    }
    joined.emplace_back(i, it->second);
  }
  KILN_CHECK(
      joined.size() >= 2,
      "make_bible_pairs: the two modules share {} verses of similar length (need at least 2)",
      joined.size());
  // [chapter_begin[k], chapter_end[k]): the joined verses of joined[k]'s chapter.
  std::vector<size_t> chapter_begin(joined.size()), chapter_end(joined.size());
  for (size_t k = 0; k < joined.size();) {
    size_t e = k;
    const Verse& v = a[joined[k].first];
    while (e < joined.size() && a[joined[e].first].book == v.book &&
           a[joined[e].first].chapter == v.chapter) {
      ++e;
    }
    for (size_t m = k; m < e; ++m) chapter_begin[m] = k, chapter_end[m] = e;
    k = e;
  }

  const double f = o.negative_fraction;
  size_t n_pos = joined.size(), n_neg = 0;
  if (o.max_pairs > 0) {
    n_neg = static_cast<size_t>(std::llround(static_cast<double>(o.max_pairs) * f));
    n_pos = std::min(o.max_pairs - n_neg, joined.size());
    if (n_pos < o.max_pairs - n_neg) {
      n_neg = static_cast<size_t>(std::llround(static_cast<double>(n_pos) * f / (1 - f)));
    }
  } else {
    n_neg = static_cast<size_t>(std::llround(static_cast<double>(n_pos) * f / (1 - f)));
  }
  const size_t n_same =
      static_cast<size_t>(std::llround(static_cast<double>(n_neg) * o.same_chapter_negatives));

  SplitMix64 rng(o.seed ^ 0x5eed5eed5eed5eedull);
  std::vector<size_t> order(joined.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  shuffle(order, rng);

  struct Row {
    size_t first, second;  // indices into joined
  };
  std::vector<Row> rows;
  rows.reserve(n_pos + n_neg);
  for (size_t k = 0; k < n_pos; ++k) rows.push_back({order[k], order[k]});
  for (size_t k = 0; k < n_neg; ++k) {
    // Anchors continue through the shuffled order after the positives, wrapping around.
    const size_t anchor = order[(n_pos + k) % order.size()];
    const std::string& anchor_text = b[joined[anchor].second].text;
    size_t other = anchor;
    // A different verse whose text differs too (Num 7 repeats whole verses word for word).
    for (int tries = 0; tries < 64; ++tries) {
      const bool same_chapter =
          k < n_same && chapter_end[anchor] - chapter_begin[anchor] > 1 && tries < 32;
      const size_t cand = same_chapter ? chapter_begin[anchor] +
                                             rng.below(chapter_end[anchor] - chapter_begin[anchor])
                                       : rng.below(joined.size());
      if (cand != anchor && b[joined[cand].second].text != anchor_text) {
        other = cand;
        break;
      }
    }
    KILN_CHECK(other != anchor, "make_bible_pairs: found no different verse to pair with {}",
               a[joined[anchor].first].reference());
    rows.push_back({anchor, other});
  }
  shuffle(rows, rng);

  std::vector<std::string> s1, s2, r1, r2;
  std::vector<float> label;
  for (const Row& r : rows) {
    const Verse& va = a[joined[r.first].first];
    const Verse& vb = b[joined[r.second].second];
    s1.push_back(va.text);
    s2.push_back(vb.text);
    r1.push_back(va.reference());
    r2.push_back(vb.reference());
    label.push_back(r.first == r.second ? 1.0f : 0.0f);
  }
  data::Table t;
  t.add_column(data::Column("Sentence1", std::move(s1)));
  t.add_column(data::Column("Sentence2", std::move(s2)));
  t.add_column(data::Column("Label", std::move(label)));
  t.add_column(data::Column("Reference1", std::move(r1)));
  t.add_column(data::Column("Reference2", std::move(r2)));
  return t;
}

}  // namespace kiln::text
