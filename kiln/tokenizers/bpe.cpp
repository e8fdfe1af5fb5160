#include "kiln/tokenizers/bpe.h"

#include <algorithm>
#include <array>
#include <limits>
#include <mutex>
#include <queue>

#include "kiln/io/file.h"
#include "kiln/tensor/error.h"
#include "kiln/tokenizers/unicode.h"

namespace kiln::text {

// ---------------------------------------------------------------------------------------------
// Pre-tokeniser.

namespace {

// The four classes GPT-2's pattern distinguishes: \p{L}, \p{N}, \s, and everything else.
enum class PreClass : uint8_t { kLetter, kNumber, kSpace, kOther };

constexpr std::array<PreClass, 128> make_ascii_classes() {
  std::array<PreClass, 128> t{};
  for (int c = 0; c < 128; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      t[c] = PreClass::kLetter;
    } else if (c >= '0' && c <= '9') {
      t[c] = PreClass::kNumber;
    } else if (c == ' ' || (c >= 0x09 && c <= 0x0D)) {
      t[c] = PreClass::kSpace;
    } else {
      t[c] = PreClass::kOther;
    }
  }
  return t;
}
constexpr std::array<PreClass, 128> kAsciiClasses = make_ascii_classes();

struct PreChar {
  PreClass cls;
  uint32_t size;
};

inline PreChar pre_char_at(std::string_view s, size_t i) {
  const auto b = static_cast<uint8_t>(s[i]);
  if (b < 0x80) return {kAsciiClasses[b], 1};
  const Utf8Char c = decode_utf8(s, i);
  if (!c.valid) return {PreClass::kOther, c.size};  // One U+FFFD: category So.
  if (is_js_whitespace(c.cp)) return {PreClass::kSpace, c.size};
  switch (char_class(c.cp)) {
    case CharClass::kLetter:
      return {PreClass::kLetter, c.size};
    case CharClass::kNumber:
      return {PreClass::kNumber, c.size};
    default:
      return {PreClass::kOther, c.size};
  }
}

// Calls emit(start, end) for each chunk. The alternatives are tried in the pattern's order at every
// position, which is what the backtracking regex does:
//   's 't 're 've 'm 'll 'd            contractions (ASCII apostrophe, case-sensitive)
//   ' ?\p{L}+' ' ?\p{N}+' ' ?O+'        one optional U+0020, then a maximal run of one class
//   \s+(?!\S)                          whitespace not followed by non-space: the whole run at the
//                                      end of text, else the run minus its last character
//   \s+                                a single whitespace character followed by non-space
template <typename Emit>
void pre_tokenize(std::string_view text, Emit&& emit) {
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (text[i] == '\'' && i + 1 < n) {
      const char c1 = text[i + 1];
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
        emit(i, i + 2);
        i += 2;
        continue;
      }
      if (i + 2 < n) {
        const char c2 = text[i + 2];
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
          emit(i, i + 3);
          i += 3;
          continue;
        }
      }
    }
    PreChar first = pre_char_at(text, i);
    size_t run = i;  // where the same-class run starts (after an optional leading space)
    if (text[i] == ' ' && i + 1 < n) {
      const PreChar next = pre_char_at(text, i + 1);
      if (next.cls != PreClass::kSpace) {
        first = next;
        run = i + 1;
      }
    }
    if (first.cls != PreClass::kSpace) {
      size_t e = run + first.size;
      while (e < n) {
        const PreChar c = pre_char_at(text, e);
        if (c.cls != first.cls) break;
        e += c.size;
      }
      emit(i, e);
      i = e;
      continue;
    }
    // Whitespace run [i, e); `last` is where its final character starts.
    size_t e = i;
    size_t last = i;
    size_t count = 0;
    while (e < n) {
      const PreChar c = pre_char_at(text, e);
      if (c.cls != PreClass::kSpace) break;
      last = e;
      e += c.size;
      ++count;
    }
    const size_t end = (e == n || count == 1) ? e : last;
    emit(i, end);
    i = end;
  }
}

// GPT-2's bytes_to_unicode table and its inverse over U+0000..U+01FF.
struct ByteTables {
  std::array<char32_t, 256> to_unicode{};
  std::array<int16_t, 0x200> to_byte{};  // -1: not in the alphabet
  ByteTables() {
    to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_unicode[b] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      to_byte[to_unicode[b]] = static_cast<int16_t>(b);
    }
  }
};
const ByteTables& byte_tables() {
  static const ByteTables t;
  return t;
}

}  // namespace

void gpt2_pre_tokenize(std::string_view text, std::vector<Offset>& chunks) {
  pre_tokenize(text, [&](size_t s, size_t e) { chunks.push_back({s, e}); });
}

char32_t byte_to_unicode(uint8_t byte) {
  return byte_tables().to_unicode[byte];
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  const auto& t = byte_tables();
  for (const char c : bytes) append_utf8(out, t.to_unicode[static_cast<uint8_t>(c)]);
  return out;
}

std::optional<std::string> byte_level_decode(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  const auto& t = byte_tables();
  for (size_t i = 0; i < token.size();) {
    const Utf8Char c = decode_utf8(token, i);
    if (!c.valid || c.cp >= t.to_byte.size() || t.to_byte[c.cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(t.to_byte[c.cp]));
    i += c.size;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Merge table: open addressing over (left id, right id) keys, linear probing, load <= 1/2.

struct BpeTokenizer::MergeTable {
  struct Slot {
    uint64_t key = kEmpty;
    int32_t rank = 0;
    int32_t merged = 0;
  };
  static constexpr uint64_t kEmpty = std::numeric_limits<uint64_t>::max();

  std::vector<Slot> slots;
  uint64_t mask = 0;

  explicit MergeTable(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n + 1) cap <<= 1;
    slots.assign(cap, Slot{});
    mask = cap - 1;
  }
  static uint64_t key_of(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static uint64_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
  }
  // Later duplicates override earlier ranks, as GPT-2's dict(zip(merges, range(...))) does.
  void insert(int32_t a, int32_t b, int32_t rank, int32_t merged) {
    const uint64_t k = key_of(a, b);
    for (uint64_t i = hash(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == kEmpty || slots[i].key == k) {
        slots[i] = {k, rank, merged};
        return;
      }
    }
  }
  const Slot* find(int32_t a, int32_t b) const {
    const uint64_t k = key_of(a, b);
    for (uint64_t i = hash(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == k) return &slots[i];
      if (slots[i].key == kEmpty) return nullptr;
    }
  }
};

// Chunk -> ids cache shared by all threads behind a mutex: open addressing (linear probing) over
// slots that keep the full hash, with keys and ids in two flat arenas. Cleared when full.
struct BpeTokenizer::Cache {
  static constexpr size_t kMaxEntries = 1 << 16;
  static constexpr size_t kSlots = 2 * kMaxEntries;  // load factor <= 1/2
  static constexpr size_t kMaxChunkBytes = 256;      // longer chunks rarely repeat
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_offset = 0, key_size = 0;
    uint32_t ids_offset = 0, ids_size = 0;
    bool used = false;
  };

  std::mutex mutex;
  std::vector<Slot> slots;  // allocated on first insert
  std::string keys;
  std::vector<int32_t> ids;
  size_t size = 0;

  static uint64_t hash_of(std::string_view s) { return std::hash<std::string_view>{}(s); }

  // Copies the ids of key into out and returns true when cached. Caller holds the mutex.
  bool lookup(std::string_view key, uint64_t h, std::vector<int32_t>& out) const {
    if (slots.empty()) return false;
    for (size_t i = h & (kSlots - 1);; i = (i + 1) & (kSlots - 1)) {
      const Slot& s = slots[i];
      if (!s.used) return false;
      if (s.hash == h && std::string_view(keys.data() + s.key_offset, s.key_size) == key) {
        out.assign(ids.begin() + s.ids_offset, ids.begin() + s.ids_offset + s.ids_size);
        return true;
      }
    }
  }

  void insert(std::string_view key, uint64_t h, const std::vector<int32_t>& value) {
    if (slots.empty() || size >= kMaxEntries) clear_and_allocate();
    size_t i = h & (kSlots - 1);
    while (slots[i].used) {
      if (slots[i].hash == h &&
          std::string_view(keys.data() + slots[i].key_offset, slots[i].key_size) == key) {
        return;  // another thread inserted it meanwhile
      }
      i = (i + 1) & (kSlots - 1);
    }
    slots[i] = {h,
                static_cast<uint32_t>(keys.size()),
                static_cast<uint32_t>(key.size()),
                static_cast<uint32_t>(ids.size()),
                static_cast<uint32_t>(value.size()),
                true};
    keys.append(key);
    ids.insert(ids.end(), value.begin(), value.end());
    ++size;
  }

  void clear_and_allocate() {
    slots.assign(kSlots, Slot{});
    keys.clear();
    ids.clear();
    size = 0;
  }
};

// ---------------------------------------------------------------------------------------------
// Construction and files.

BpeTokenizer::BpeTokenizer(std::vector<std::string> vocab,
                           std::vector<std::pair<std::string, std::string>> merges)
    : BpeTokenizer(std::move(vocab), std::move(merges), "<memory>") {}

BpeTokenizer::BpeTokenizer(std::vector<std::string> vocab,
                           std::vector<std::pair<std::string, std::string>> merges,
                           std::string_view source)
    : vocab_(std::move(vocab)), merges_(std::move(merges)) {
  build(source);
}

BpeTokenizer::BpeTokenizer(const BpeTokenizer& other)
    : Tokenizer(other),
      vocab_(other.vocab_),
      token_bytes_(other.token_bytes_),
      token_size_(other.token_size_),
      merges_(other.merges_),
      ids_(other.ids_),
      merge_table_(std::make_unique<MergeTable>(*other.merge_table_)),
      cache_(std::make_unique<Cache>()) {
  std::copy(std::begin(other.byte_ids_), std::end(other.byte_ids_), byte_ids_);
}
BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(const BpeTokenizer& other) {
  if (this != &other) *this = BpeTokenizer(other);
  return *this;
}
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;
BpeTokenizer::~BpeTokenizer() = default;

// Indexes vocab_ and merges_; `source` names the files in errors.
void BpeTokenizer::build(std::string_view source) {
  KILN_CHECK_AS(IOError, vocab_.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()),
                "bpe: {}: vocabulary of {} tokens is too large", source, vocab_.size());
  ids_.clear();
  ids_.reserve(vocab_.size());
  token_bytes_.clear();
  token_bytes_.reserve(vocab_.size());
  token_size_.clear();
  token_size_.reserve(vocab_.size());
  for (size_t id = 0; id < vocab_.size(); ++id) {
    const auto [it, inserted] = ids_.emplace(vocab_[id], static_cast<int32_t>(id));
    KILN_CHECK_AS(IOError, inserted,
                  "bpe: {}: token \"{}\" has ids {} and {} (tokens must be unique)", source,
                  vocab_[id], it->second, id);
    // Byte-level spellings decode to their bytes; anything else (an added "<my token>") is literal.
    std::optional<std::string> bytes = byte_level_decode(vocab_[id]);
    token_bytes_.push_back(bytes ? std::move(*bytes) : vocab_[id]);
    token_size_.push_back(static_cast<uint32_t>(token_bytes_.back().size()));
  }
  for (int b = 0; b < 256; ++b) {
    std::string spelling;
    append_utf8(spelling, byte_to_unicode(static_cast<uint8_t>(b)));
    const auto it = ids_.find(spelling);
    KILN_CHECK_AS(IOError, it != ids_.end(),
                  "bpe: {}: the vocabulary lacks the symbol \"{}\" for byte 0x{:02X} (byte-level "
                  "BPE needs all 256 byte symbols)",
                  source, spelling, b);
    byte_ids_[b] = it->second;
  }
  merge_table_ = std::make_unique<MergeTable>(merges_.size());
  for (size_t r = 0; r < merges_.size(); ++r) {
    const auto& [left, right] = merges_[r];
    const auto l = ids_.find(left);
    const auto rt = ids_.find(right);
    const auto m = ids_.find(left + right);
    KILN_CHECK_AS(IOError, l != ids_.end() && rt != ids_.end() && m != ids_.end(),
                  "bpe: {}: merge {} (\"{}\" \"{}\") uses or makes a token the vocabulary lacks: "
                  "\"{}\" (both sides and their concatenation must be tokens)",
                  source, r, left, right,
                  l == ids_.end() ? left : (rt == ids_.end() ? right : left + right));
    merge_table_->insert(l->second, rt->second, static_cast<int32_t>(r), m->second);
  }
  cache_ = std::make_unique<Cache>();
  if (const auto eot = ids_.find(std::string_view("<|endoftext|>")); eot != ids_.end()) {
    add_special_token("<|endoftext|>");
  }
}

namespace {

std::vector<std::string> read_encoder_json(const std::filesystem::path& path) {
  const json::Value encoder = io::read_json_file(path);
  KILN_CHECK_AS(IOError, encoder.is_object(),
                "bpe: {}: expected a JSON object of token -> id but found a {}", path.string(),
                encoder.kind_name());
  std::vector<std::string> vocab(encoder.size());
  std::vector<bool> seen(encoder.size(), false);
  for (const auto& [token, v] : encoder.members()) {
    KILN_CHECK_AS(IOError, v.is_number(), "bpe: {}: the id of token \"{}\" is a {}, not a number",
                  path.string(), token, v.kind_name());
    const double x = v.as_double();
    KILN_CHECK_AS(IOError, x >= 0 && x < static_cast<double>(encoder.size()) && x == std::floor(x),
                  "bpe: {}: token \"{}\" has id {} but ids must be integers 0..{} (one per token)",
                  path.string(), token, x, encoder.size() - 1);
    const auto id = static_cast<size_t>(x);
    KILN_CHECK_AS(IOError, !seen[id],
                  "bpe: {}: id {} is used by \"{}\" and \"{}\" (ids must be unique)", path.string(),
                  id, vocab[id], token);
    seen[id] = true;
    vocab[id] = token;
  }
  return vocab;
}

std::vector<std::pair<std::string, std::string>> read_merges(const std::filesystem::path& path) {
  const std::string text = io::read_text_file(path, "bpe");
  std::vector<std::pair<std::string, std::string>> merges;
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_no == 1 && line.starts_with("#version")) continue;
    // Split on spaces and tabs; blank lines are skipped.
    std::vector<std::string_view> parts;
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      const size_t s = i;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
      if (i > s) parts.push_back(line.substr(s, i - s));
    }
    if (parts.empty()) continue;
    KILN_CHECK_AS(IOError, parts.size() == 2,
                  "bpe: {}: line {}: expected two space-separated tokens but found {}",
                  path.string(), line_no, parts.size());
    KILN_CHECK_AS(IOError, is_valid_utf8(line), "bpe: {}: line {}: invalid UTF-8", path.string(),
                  line_no);
    merges.emplace_back(std::string(parts[0]), std::string(parts[1]));
  }
  return merges;
}

}  // namespace

BpeTokenizer BpeTokenizer::from_files(const std::filesystem::path& encoder_json,
                                      const std::filesystem::path& vocab_bpe) {
  return BpeTokenizer(read_encoder_json(encoder_json), read_merges(vocab_bpe),
                      fmt::format("{} + {}", encoder_json.string(), vocab_bpe.string()));
}

BpeTokenizer BpeTokenizer::load_model(const std::filesystem::path& dir, const json::Value& config) {
  (void)config;
  return from_files(dir / kEncoderFile, dir / kMergesFile);
}

void BpeTokenizer::save_files(const std::filesystem::path& encoder_json,
                              const std::filesystem::path& vocab_bpe) const {
  std::string enc = "{";
  for (size_t id = 0; id < vocab_.size(); ++id) {
    if (id) enc += ", ";
    enc += json::quote(vocab_[id]);
    enc += fmt::format(": {}", id);
  }
  enc += "}";
  io::write_text_file(encoder_json, enc, "bpe save");
  std::string merges = "#version: 0.2\n";
  for (const auto& [l, r] : merges_) {
    merges += l;
    merges += ' ';
    merges += r;
    merges += '\n';
  }
  io::write_text_file(vocab_bpe, merges, "bpe save");
}

void BpeTokenizer::save_model(const std::filesystem::path& dir, json::Value& config) const {
  save_files(dir / kEncoderFile, dir / kMergesFile);
  json::Value files = json::Value::array();
  files.push_back(json::Value(std::string(kEncoderFile)));
  files.push_back(json::Value(std::string(kMergesFile)));
  config["files"] = (std::move(files));
}

int32_t BpeTokenizer::append_token(std::string_view token) {
  const auto id = static_cast<int32_t>(vocab_.size());
  vocab_.emplace_back(token);
  token_bytes_.emplace_back(token);  // added tokens decode to their own text
  token_size_.push_back(static_cast<uint32_t>(token.size()));
  ids_.emplace(std::string(token), id);
  return id;
}

// ---------------------------------------------------------------------------------------------
// Lookup and decode.

std::optional<int32_t> BpeTokenizer::token_to_id(std::string_view token) const {
  const auto it = ids_.find(token);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::string BpeTokenizer::id_to_token(int32_t id) const {
  KILN_CHECK(id >= 0 && id < vocab_size(), "bpe: id {} is out of range [0, {})", id, vocab_size());
  return vocab_[static_cast<size_t>(id)];
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string out;
  for (const int32_t id : ids) {
    KILN_CHECK(id >= 0 && id < vocab_size(), "bpe decode: id {} is out of range [0, {})", id,
               vocab_size());
    if (skip_special_tokens && is_special(id)) continue;
    out += token_bytes_[static_cast<size_t>(id)];
  }
  return out;
}

void BpeTokenizer::clear_cache() const {
  std::lock_guard lock(cache_->mutex);
  cache_->slots.clear();
  cache_->keys.clear();
  cache_->ids.clear();
  cache_->size = 0;
}

// ---------------------------------------------------------------------------------------------
// Merging.

namespace {
// Chunks up to this many symbols use the reference loop (faster when n is small).
constexpr size_t kHeapMergeMinSymbols = 24;
}  // namespace

// Applies the merges to `symbols` (ids of one chunk) in GPT-2's order: repeatedly take the ranked
// pair with the lowest rank and merge all its non-overlapping occurrences left to right.
void BpeTokenizer::merge_symbols(std::vector<int32_t>& symbols, bool reference) const {
  const MergeTable& table = *merge_table_;
  if (symbols.size() < 2) return;
  if (reference || symbols.size() <= kHeapMergeMinSymbols) {
    // GPT-2's loop: rescan all pairs for the lowest rank, then rewrite the word.
    std::vector<int32_t> next;
    next.reserve(symbols.size());
    while (symbols.size() >= 2) {
      const MergeTable::Slot* best = nullptr;
      for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        const MergeTable::Slot* s = table.find(symbols[i], symbols[i + 1]);
        if (s != nullptr && (best == nullptr || s->rank < best->rank)) best = s;
      }
      if (best == nullptr) break;
      const auto first = static_cast<int32_t>(best->key >> 32);
      const auto second = static_cast<int32_t>(best->key & 0xFFFFFFFFu);
      next.clear();
      for (size_t i = 0; i < symbols.size();) {
        if (i + 1 < symbols.size() && symbols[i] == first && symbols[i + 1] == second) {
          next.push_back(best->merged);
          i += 2;
        } else {
          next.push_back(symbols[i]);
          ++i;
        }
      }
      symbols.swap(next);
    }
    return;
  }

  // Heap version for long chunks: a doubly linked list of symbols and a min-heap of (rank, left
  // position). All entries of the lowest rank are taken as one batch and merged left to right; the
  // pairs the batch creates are pushed only after it, so the order of merges equals GPT-2's.
  const size_t n = symbols.size();
  std::vector<int32_t> prev(n), next(n);
  std::vector<uint8_t> alive(n, 1);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  using Entry = std::pair<int32_t, int32_t>;  // (rank, left position)
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
  const auto push_pair = [&](int32_t left) {
    if (left < 0 || next[left] < 0) return;
    if (const MergeTable::Slot* s = table.find(symbols[left], symbols[next[left]])) {
      heap.emplace(s->rank, left);
    }
  };
  for (size_t i = 0; i + 1 < n; ++i) push_pair(static_cast<int32_t>(i));
  std::vector<int32_t> batch, merged_at;
  while (!heap.empty()) {
    const int32_t rank = heap.top().first;
    batch.clear();
    while (!heap.empty() && heap.top().first == rank) {
      batch.push_back(heap.top().second);
      heap.pop();
    }
    merged_at.clear();
    for (const int32_t pos : batch) {  // ascending positions = left to right
      if (!alive[pos] || next[pos] < 0) continue;
      const int32_t right = next[pos];
      const MergeTable::Slot* s = table.find(symbols[pos], symbols[right]);
      if (s == nullptr || s->rank != rank) continue;  // stale: the pair changed since the push
      symbols[pos] = s->merged;
      alive[right] = 0;
      next[pos] = next[right];
      if (next[right] >= 0) prev[next[right]] = pos;
      merged_at.push_back(pos);
    }
    for (const int32_t pos : merged_at) {
      if (!alive[pos]) continue;
      push_pair(prev[pos]);
      push_pair(pos);
    }
  }
  size_t w = 0;
  for (int32_t i = 0; i >= 0; i = next[i]) symbols[w++] = symbols[i];
  symbols.resize(w);
}

std::vector<int32_t> BpeTokenizer::merge_chunk(std::string_view bytes, bool reference) const {
  std::vector<int32_t> symbols;
  symbols.reserve(bytes.size());
  for (const char c : bytes) symbols.push_back(byte_ids_[static_cast<uint8_t>(c)]);
  merge_symbols(symbols, reference);
  return symbols;
}

void BpeTokenizer::encode_segment(std::string_view text, size_t offset, std::vector<int32_t>& ids,
                                  std::vector<Offset>& offsets) const {
  std::vector<int32_t> symbols;
  pre_tokenize(text, [&](size_t s, size_t e) {
    const std::string_view chunk = text.substr(s, e - s);
    size_t pos = offset + s;
    const auto emit = [&](int32_t id) {
      const size_t len = token_size_[static_cast<size_t>(id)];
      ids.push_back(id);
      offsets.push_back({pos, pos + len});
      pos += len;
    };
    if (chunk.size() == 1) {
      emit(byte_ids_[static_cast<uint8_t>(chunk[0])]);
      return;
    }
    const bool cacheable = chunk.size() <= Cache::kMaxChunkBytes;
    const uint64_t h = cacheable ? Cache::hash_of(chunk) : 0;
    if (cacheable) {
      bool hit;
      {
        std::lock_guard lock(cache_->mutex);
        hit = cache_->lookup(chunk, h, symbols);
      }
      if (hit) {
        for (const int32_t id : symbols) emit(id);
        return;
      }
    }
    symbols.clear();
    for (const char c : chunk) symbols.push_back(byte_ids_[static_cast<uint8_t>(c)]);
    merge_symbols(symbols, /*reference=*/false);
    for (const int32_t id : symbols) emit(id);
    if (cacheable) {
      std::lock_guard lock(cache_->mutex);
      cache_->insert(chunk, h, symbols);
    }
  });
}

}  // namespace kiln::text
