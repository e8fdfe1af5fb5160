#pragma once
// Tokenizer: the interface every Kiln tokenizer implements (byte-level BPE in bpe.h, WordPiece in
// wordpiece.h), and Encoding, what it hands a model: ids, attention mask, special-token mask, type
// ids and byte offsets, with special tokens, pair encoding, truncation and padding applied here
// once for all tokenizers.
//
//   BpeTokenizer tok = BpeTokenizer::from_files("encoder.json", "vocab.bpe");   // GPT-2, 50257 ids
//   tok.set_special_tokens(SpecialTokens::byte_level_bpe());  // appends <s> </s> <pad> <mask>
//   Encoding e = tok.encode("Hello world", {.max_length = 8, .padding = Padding::kMaxLength});
//   // e.ids            = [50257, 15496, 995, 50258, 50259, 50259, 50259, 50259]
//   // e.attention_mask = [1,     1,     1,   1,     0,     0,     0,     0]
//   // e.offsets        = [{0,0}, {0,5}, {5,11}, {0,0}, ...]   (byte ranges in "Hello world")
//   tok.save("model_dir");                    // encoder.json, vocab.bpe, tokenizer_config.json
//   auto again = Tokenizer::load("model_dir"); // the same tokenizer, special tokens included
//
// Special tokens for Kiln's own models: a tokenizer loaded from pretrained files keeps the files'
// ids unchanged, and the ids of the model's special tokens (SpecialTokens: cls/bos, sep/eos, pad,
// mask) that the files lack are appended after the vocabulary, in that order: GPT-2's 50257 tokens
// (0..50256, "<|endoftext|>" = 50256) get <s> = 50257, </s> = 50258, <pad> = 50259, <mask> = 50260.
// A BERT vocab.txt already holds [CLS] [SEP] [PAD] [UNK] [MASK], so nothing is appended there.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::json {
class Value;
}  // namespace kiln::json

namespace kiln::text {

/// Byte range [start, end) of a token in the text it came from: {0, 0} for the special tokens the
/// template adds and for padding; a special token spelled in the text keeps its span. Byte-level
/// BPE tokens may start or end inside a multi-byte UTF-8 character.
struct Offset {
  size_t start = 0;
  size_t end = 0;
  bool operator==(const Offset&) const = default;
};

/// One encoded text or text pair. T = number of tokens (after truncation and padding).
struct Encoding {
  std::vector<int32_t> ids;                  // (T) token ids
  std::vector<int32_t> type_ids;             // (T) 0: first text and its specials, 1: second text
  std::vector<int32_t> attention_mask;       // (T) 1: real token, 0: padding
  std::vector<int32_t> special_tokens_mask;  // (T) 1: special token or padding, 0: text token
  std::vector<Offset> offsets;               // (T) byte range in the text type_ids names
  size_t size() const { return ids.size(); }
};

/// How a sequence (pair) longer than max_length is cut. kLongestFirst removes one token at a time
/// from the longer of the two texts (from the second on ties), as HF's "longest_first".
enum class Truncation : uint8_t { kNone, kLongestFirst, kOnlyFirst, kOnlySecond };

/// kLongest pads every encoding of a batch to the longest one; kMaxLength pads to max_length.
/// Padding goes on the right with the pad token (SpecialTokens::pad must be set).
enum class Padding : uint8_t { kNone, kLongest, kMaxLength };

/// Options of encode(), encode_pair() and the batch forms. Designated initialisers read best:
///   tok.encode(text, {.max_length = 128, .padding = Padding::kMaxLength})
struct EncodeOptions {
  bool add_special_tokens = true;  // cls/sep around the text(s), as SpecialTokens configures
  size_t max_length = 0;           // 0: no limit; else truncate (and pad) to this many tokens
  Truncation truncation = Truncation::kLongestFirst;
  Padding padding = Padding::kNone;
  bool parse_special_tokens = true;  // special tokens spelled in the text ("<|endoftext|>",
                                     // "[SEP]") become their ids instead of being tokenised
};

/// The roles special tokens play. Empty names are unused. Single text: [cls] A [sep]; pair:
/// [cls] A [sep] B [sep], or [cls] A [sep] [sep] B [sep] with pair_double_sep (RoBERTa).
struct SpecialTokens {
  std::string cls{};   // prepended (BERT "[CLS]", byte-level BPE "<s>" = bos)
  std::string sep{};   // appended after each text (BERT "[SEP]", byte-level BPE "</s>" = eos)
  std::string pad{};   // padding ("[PAD]", "<pad>")
  std::string unk{};   // unknown word (WordPiece "[UNK]"; byte-level BPE never needs one)
  std::string mask{};  // masked-LM target ("[MASK]", "<mask>")
  bool pair_double_sep = false;

  /// BERT: [CLS] [SEP] [PAD] [UNK] [MASK].
  static SpecialTokens bert();
  /// Kiln's byte-level BPE models: <s> </s> <pad> <mask> (no unk), one </s> between pair texts.
  static SpecialTokens byte_level_bpe();
  bool operator==(const SpecialTokens&) const = default;
};

/// Interface of every tokenizer. All const methods are safe to call from several threads at once.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  /// "byte_level_bpe" or "wordpiece": the type tag save() records.
  virtual std::string_view type() const = 0;
  /// Number of ids, added special tokens included (ids are 0 .. vocab_size() - 1).
  virtual int32_t vocab_size() const = 0;
  /// Id of a token spelled as in the vocabulary file ("Ġthe", "##ing", "[CLS]"), if present.
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  /// The vocabulary spelling of id; throws kiln::Error when id is out of range.
  virtual std::string id_to_token(int32_t id) const = 0;
  /// Text of ids. Byte-level BPE restores the original bytes exactly; WordPiece joins words with
  /// spaces and glues "##" continuations. skip_special_tokens drops special-token ids.
  virtual std::string decode(std::span<const int32_t> ids,
                             bool skip_special_tokens = false) const = 0;

  /// Token ids of text, with no special tokens added, no truncation and no padding.
  std::vector<int32_t> encode_ids(std::string_view text, bool parse_special_tokens = true) const;
  /// Vocabulary spellings of the tokens of text (for inspection and tests):
  ///   bert.tokenize("unaffable") -> {"una", "##ffa", "##ble"}
  std::vector<std::string> tokenize(std::string_view text) const;

  /// Encodes one text: [cls] tokens [sep], truncated/padded as options say.
  Encoding encode(std::string_view text, const EncodeOptions& options = {}) const;
  /// Encodes a pair, e.g. for sentence similarity: [cls] A [sep] B [sep]. type_ids are 0 for A,
  /// 1 for B; offsets index into the text their type_id names.
  Encoding encode_pair(std::string_view a, std::string_view b,
                       const EncodeOptions& options = {}) const;
  /// encode() of each text; Padding::kLongest pads all to the longest of the batch.
  std::vector<Encoding> encode_batch(std::span<const std::string> texts,
                                     const EncodeOptions& options = {}) const;
  /// encode_pair() of (a[i], b[i]); a and b must have the same size.
  std::vector<Encoding> encode_pair_batch(std::span<const std::string> a,
                                          std::span<const std::string> b,
                                          const EncodeOptions& options = {}) const;

  /// Registers token as special: recognised in text (unless parse_special_tokens is false), skipped
  /// by decode(..., true), marked in special_tokens_mask. Appended to the vocabulary (next free id)
  /// when absent. Returns its id.
  int32_t add_special_token(std::string_view token);
  /// Sets the roles and registers each named token with add_special_token().
  void set_special_tokens(const SpecialTokens& tokens);
  const SpecialTokens& special_tokens() const { return roles_; }
  /// Ids of the roles; -1 when the role is unset.
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }
  int32_t mask_id() const { return mask_id_; }
  bool is_special(int32_t id) const;
  /// The registered special tokens, in registration order.
  const std::vector<std::pair<std::string, int32_t>>& added_special_tokens() const {
    return specials_;
  }

  /// Writes the vocabulary files and tokenizer_config.json into dir (created if needed), so a
  /// trainer can keep the tokenizer next to the model weights.
  void save(const std::filesystem::path& dir) const;
  /// Reads a directory written by save().
  static std::unique_ptr<Tokenizer> load(const std::filesystem::path& dir);

 protected:
  Tokenizer() = default;
  Tokenizer(const Tokenizer&) = default;
  Tokenizer(Tokenizer&&) = default;
  Tokenizer& operator=(const Tokenizer&) = default;
  Tokenizer& operator=(Tokenizer&&) = default;

  /// The model step: appends the ids of text (which holds no special tokens) and their byte
  /// offsets, shifted by `offset` (the position of text in the caller's string).
  virtual void encode_segment(std::string_view text, size_t offset, std::vector<int32_t>& ids,
                              std::vector<Offset>& offsets) const = 0;
  /// Adds a token the vocabulary lacks; returns its id (= the old vocab_size()).
  virtual int32_t append_token(std::string_view token) = 0;
  /// Writes the model's files into dir and records its settings in config (a JSON object).
  virtual void save_model(const std::filesystem::path& dir, json::Value& config) const = 0;

 private:
  // Tokens of a text before specials are added: ids, offsets, and whether each is special.
  struct Segment {
    std::vector<int32_t> ids;
    std::vector<Offset> offsets;
  };
  Segment split_and_encode(std::string_view text, bool parse_special_tokens) const;
  Encoding assemble(Segment a, const Segment* b, const EncodeOptions& options) const;
  void pad_to(Encoding& e, size_t length) const;

  SpecialTokens roles_;
  int32_t cls_id_ = -1, sep_id_ = -1, pad_id_ = -1, unk_id_ = -1, mask_id_ = -1;
  std::vector<std::pair<std::string, int32_t>> specials_;  // registration order
  std::vector<size_t> match_order_;  // indices into specials_, longest name first
  std::vector<int32_t> special_ids_sorted_;
  uint8_t first_bytes_[32] = {};  // bit set of the first bytes of the special names
};

}  // namespace kiln::text
