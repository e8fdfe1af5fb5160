#pragma once
// Training a new vocabulary from a corpus, so a model trained from scratch needs no pretrained
// files.
//
//   std::vector<std::string> lines = ...;                       // any texts: lines, e-mails, ...
//   BpeTokenizer bpe = train_bpe(lines, {.vocab_size = 8192});
//   bpe.save("model_dir");                                      // encoder.json + vocab.bpe (GPT-2
//                                                               // formats) + tokenizer_config.json
//   WordPieceTokenizer wp = train_wordpiece(lines, {.vocab_size = 8192});
//   wp.save("model_dir");                                       // vocab.txt +
//   tokenizer_config.json
//
// Both trainers count the corpus's words once (GPT-2 pre-tokenisation chunks for BPE, BERT
// BasicTokenizer words for WordPiece), start from single characters and repeatedly merge the best
// adjacent pair into a new token. Pair counts are kept incrementally: a merge only revisits the
// words that contain the pair (an index pair -> words) and a max-heap with lazy invalidation picks
// the next pair, so a few MB of text train in seconds. Ties are broken by the pair's token ids, so
// training is deterministic.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kiln/tokenizers/bpe.h"
#include "kiln/tokenizers/wordpiece.h"

namespace kiln::text {

/// Options of train_bpe().
struct BpeTrainerOptions {
  size_t vocab_size = 8192;   // total ids: 256 byte symbols + merges + special tokens
  int64_t min_frequency = 2;  // a pair seen fewer times in the corpus is never merged
  SpecialTokens special_tokens = SpecialTokens::byte_level_bpe();  // appended after the merges
};

/// Byte-level BPE as GPT-2 trains it (Sennrich et al. 2016 on bytes): ids 0..255 are the byte
/// symbols in GPT-2's order, then one id per merge (most frequent pair first), then the special
/// tokens. The result loads with the same loader as GPT-2's files after save().
BpeTokenizer train_bpe(std::span<const std::string> corpus, const BpeTrainerOptions& options = {});

/// How WordPiece training scores a candidate pair (a, b).
enum class WordPieceScore : uint8_t {
  kLikelihood,  // count(ab) / (count(a) · count(b)): the language-model likelihood gain of merging
                // (Schuster & Nakajima 2012; the WordPiece objective described for BERT)
  kFrequency,   // count(ab): BPE with a "##" continuation prefix, as HF tokenizers'
                // WordPieceTrainer does
};

/// Options of train_wordpiece().
struct WordPieceTrainerOptions {
  size_t vocab_size = 30522;  // total ids, special tokens and alphabet included
  int64_t min_frequency = 2;  // a pair seen fewer times in the corpus is never merged
  WordPieceScore score = WordPieceScore::kLikelihood;
  size_t limit_alphabet = 1000;   // keep the most frequent characters; words with others are
                                  // skipped (encoding turns them into [UNK])
  BasicTokenizerOptions basic{};  // normalisation (also stored in the tokenizer returned)
  std::vector<std::string> special_tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  std::string continuing_subword_prefix = "##";
};

/// Trains a BERT-style WordPiece vocabulary: the special tokens (ids 0..), then every kept
/// character in both spellings ("a" word-initially, "##a" inside a word), then merged pieces in
/// merge order. The special token list must contain "[UNK]".
WordPieceTokenizer train_wordpiece(std::span<const std::string> corpus,
                                   const WordPieceTrainerOptions& options = {});

}  // namespace kiln::text
