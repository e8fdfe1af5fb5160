// The common Tokenizer layer: special-token templates, pair encoding, truncation, padding, batches.
// A small WordPiece vocabulary makes every id predictable: word "wN" has id N + 10.
#include "kiln/tokenizers/tokenizer.h"

#include <gtest/gtest.h>

#include "kiln/tensor/error.h"
#include "kiln/tokenizers/wordpiece.h"

namespace kiln::text {
namespace {

using Ids = std::vector<int32_t>;

// [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, then w0..w29 = 10..39.
WordPieceTokenizer small() {
  std::vector<std::string> vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                    "x5",    "x6",    "x7",    "x8",    "x9"};
  for (int i = 0; i < 30; ++i) vocab.push_back(fmt::format("w{}", i));
  return WordPieceTokenizer(vocab);
}

// "w<first> w<first+1> ... " with n words.
std::string words(int first, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += fmt::format("{}w{}", i ? " " : "", first + i);
  return s;
}

TEST(Encoding, SingleTextGetsClsAndSep) {
  const auto tok = small();
  const Encoding e = tok.encode("w1 w2");
  EXPECT_EQ(e.ids, (Ids{2, 11, 12, 3}));
  EXPECT_EQ(e.type_ids, (Ids{0, 0, 0, 0}));
  EXPECT_EQ(e.attention_mask, (Ids{1, 1, 1, 1}));
  EXPECT_EQ(e.special_tokens_mask, (Ids{1, 0, 0, 1}));
  EXPECT_EQ(e.offsets, (std::vector<Offset>{{0, 0}, {0, 2}, {3, 5}, {0, 0}}));
  EXPECT_EQ(tok.encode("w1 w2", {.add_special_tokens = false}).ids, (Ids{11, 12}));
  EXPECT_EQ(tok.encode("").ids, (Ids{2, 3}));
}

TEST(Encoding, PairUsesSeparatorAndTypeIds) {
  auto tok = small();
  const Encoding e = tok.encode_pair("w1 w2", "w3");
  EXPECT_EQ(e.ids, (Ids{2, 11, 12, 3, 13, 3}));
  EXPECT_EQ(e.type_ids, (Ids{0, 0, 0, 0, 1, 1}));
  EXPECT_EQ(e.special_tokens_mask, (Ids{1, 0, 0, 1, 0, 1}));
  EXPECT_EQ(e.offsets[4], (Offset{0, 2}));  // offsets of the second text index into it
  // RoBERTa's double separator.
  SpecialTokens roberta = SpecialTokens::bert();
  roberta.pair_double_sep = true;
  tok.set_special_tokens(roberta);
  EXPECT_EQ(tok.encode_pair("w1", "w3").ids, (Ids{2, 11, 3, 3, 13, 3}));
}

TEST(Encoding, TruncationLongestFirst) {
  const auto tok = small();
  // Single text: keep max_length - 2 tokens.
  EXPECT_EQ(tok.encode(words(0, 10), {.max_length = 5}).ids, (Ids{2, 10, 11, 12, 3}));
  // Pair 6 + 2 into 8 - 3 = 5: cut the longer first, from the second on ties.
  EXPECT_EQ(tok.encode_pair(words(0, 6), words(20, 2), {.max_length = 8}).ids,
            (Ids{2, 10, 11, 12, 3, 30, 31, 3}));
  EXPECT_EQ(tok.encode_pair(words(0, 4), words(20, 4), {.max_length = 8}).ids,
            (Ids{2, 10, 11, 12, 3, 30, 31, 3}));
  EXPECT_EQ(tok.encode_pair(words(0, 2), words(20, 6), {.max_length = 8}).ids,
            (Ids{2, 10, 11, 3, 30, 31, 32, 3}));
  // Only the first / only the second.
  EXPECT_EQ(tok.encode_pair(words(0, 6), words(20, 2),
                            {.max_length = 8, .truncation = Truncation::kOnlyFirst})
                .ids,
            (Ids{2, 10, 11, 12, 3, 30, 31, 3}));
  EXPECT_EQ(tok.encode_pair(words(0, 2), words(20, 6),
                            {.max_length = 8, .truncation = Truncation::kOnlySecond})
                .ids,
            (Ids{2, 10, 11, 3, 30, 31, 32, 3}));
  EXPECT_THROW(tok.encode_pair(words(0, 2), words(20, 6),
                               {.max_length = 8, .truncation = Truncation::kOnlyFirst}),
               kiln::Error);
  // No truncation: the encoding stays long.
  EXPECT_EQ(tok.encode(words(0, 10), {.max_length = 5, .truncation = Truncation::kNone}).size(),
            12u);
  // max_length must leave room for the specials.
  EXPECT_THROW(tok.encode_pair("w1", "w2", {.max_length = 2}), kiln::Error);
}

TEST(Encoding, PaddingToMaxLengthAndLongest) {
  const auto tok = small();
  const Encoding e = tok.encode("w1", {.max_length = 6, .padding = Padding::kMaxLength});
  EXPECT_EQ(e.ids, (Ids{2, 11, 3, 0, 0, 0}));
  EXPECT_EQ(e.attention_mask, (Ids{1, 1, 1, 0, 0, 0}));
  EXPECT_EQ(e.special_tokens_mask, (Ids{1, 0, 1, 1, 1, 1}));
  EXPECT_EQ(e.offsets.size(), 6u);
  const std::vector<std::string> batch = {"w1", words(0, 5), "w2 w3"};
  const auto out = tok.encode_batch(batch, {.padding = Padding::kLongest});
  ASSERT_EQ(out.size(), 3u);
  for (const auto& x : out) EXPECT_EQ(x.size(), 7u);
  EXPECT_EQ(out[0].ids, (Ids{2, 11, 3, 0, 0, 0, 0}));
  EXPECT_EQ(out[2].attention_mask, (Ids{1, 1, 1, 1, 0, 0, 0}));
  const std::vector<std::string> a = {"w1", "w2 w3"}, b = {"w4 w5 w6", "w7"};
  const auto pairs = tok.encode_pair_batch(a, b, {.padding = Padding::kLongest});
  EXPECT_EQ(pairs[0].ids, (Ids{2, 11, 3, 14, 15, 16, 3}));
  EXPECT_EQ(pairs[1].ids, (Ids{2, 12, 13, 3, 17, 3, 0}));
  EXPECT_THROW(tok.encode_pair_batch(a, std::span<const std::string>(b).first(1)), kiln::Error);
}

TEST(Encoding, PaddingWithoutPadTokenIsAnError) {
  auto tok = small();
  SpecialTokens none;
  none.cls = "[CLS]";
  none.sep = "[SEP]";
  none.unk = "[UNK]";
  WordPieceTokenizer t2 = tok;
  t2.set_special_tokens(none);
  EXPECT_EQ(t2.pad_id(), -1);
  EXPECT_THROW(t2.encode("w1", {.max_length = 8, .padding = Padding::kMaxLength}), kiln::Error);
  EXPECT_NO_THROW(t2.encode("w1", {.max_length = 3, .padding = Padding::kMaxLength}));
}

TEST(Encoding, AddedSpecialTokenIsAppendedAndRecognised) {
  auto tok = small();
  const int32_t id = tok.add_special_token("<ent>");
  EXPECT_EQ(id, 40);
  EXPECT_EQ(tok.vocab_size(), 41);
  EXPECT_EQ(tok.add_special_token("<ent>"), 40);
  EXPECT_EQ(tok.encode_ids("w1<ent>w2"), (Ids{11, 40, 12}));
  EXPECT_EQ(tok.encode_ids("w1<ent>w2", /*parse_special_tokens=*/false).size(), 5u);
  EXPECT_TRUE(tok.is_special(40));
  EXPECT_EQ(tok.decode(Ids{11, 40, 12}), "w1 <ent> w2");
  EXPECT_EQ(tok.decode(Ids{11, 40, 12}, true), "w1 w2");
  EXPECT_THROW(tok.decode(Ids{99}), kiln::Error);
}

}  // namespace
}  // namespace kiln::text
