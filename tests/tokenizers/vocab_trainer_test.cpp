// Vocabulary training: hand-checkable merges, vocab size, determinism, round trips, file formats,
// and the time to train on ~5 MB of real e-mail.
#include "kiln/tokenizers/vocab_trainer.h"

#include <gtest/gtest.h>

#include <ctime>

#include "kiln/tensor/error.h"
#include "kiln/tokenizers/unicode.h"
#include "text/text_test_util.h"

namespace kiln::text {
namespace {

using Merges = std::vector<std::pair<std::string, std::string>>;

// The e-mails of a seeded selection, as valid UTF-8, until `bytes` are collected.
std::vector<std::string> mail_corpus(size_t bytes, uint32_t seed) {
  std::vector<std::string> out;
  size_t total = 0;
  for (const auto& f : testing::select_mail_files(6046, 0, seed)) {
    if (total >= bytes) break;
    out.push_back(sanitize_utf8(testing::read_bytes(f)));
    total += out.back().size();
  }
  return out;
}

TEST(TrainBpe, MergesTheMostFrequentPairFirst) {
  // Chunks: "ab" x1, " ab" x2, " cd" x1. Pair counts: (a,b) 3, (Ġ,ab) 2, then count-1 ties broken
  // by the smaller ids: 'c' (66) < 'Ġ' (220).
  const std::vector<std::string> corpus = {"ab ab ab cd"};
  const BpeTokenizer tok = train_bpe(corpus, {.vocab_size = 256 + 4 + 4, .min_frequency = 1});
  EXPECT_EQ(tok.merges(), (Merges{{"a", "b"}, {"Ġ", "ab"}, {"c", "d"}, {"Ġ", "cd"}}));
  EXPECT_EQ(tok.vocab_size(), 264);
  EXPECT_EQ(tok.id_to_token(0), "!");    // GPT-2's byte order
  EXPECT_EQ(tok.id_to_token(188), "Ā");  // byte 0x00
  EXPECT_EQ(tok.id_to_token(256), "ab");
  EXPECT_EQ(tok.id_to_token(260), "<s>");  // specials after the merges
  EXPECT_EQ(tok.encode_ids("ab cd", false), (std::vector<int32_t>{256, 259}));
  // min_frequency 2 stops after the two pairs seen at least twice.
  EXPECT_EQ(train_bpe(corpus, {.vocab_size = 300, .min_frequency = 2}).merges().size(), 2u);
  EXPECT_THROW(train_bpe(corpus, {.vocab_size = 100}), kiln::Error);
}

TEST(TrainBpe, RealCorpusRoundTripsAndIsDeterministic) {
  const std::vector<std::string> corpus = mail_corpus(1'000'000, 1);
  ASSERT_FALSE(corpus.empty()) << testing::kInstallHint;
  const BpeTrainerOptions options{.vocab_size = 2000, .min_frequency = 2};
  const BpeTokenizer a = train_bpe(corpus, options);
  const BpeTokenizer b = train_bpe(corpus, options);
  EXPECT_EQ(a.vocab_size(), 2000);
  EXPECT_EQ(a.merges(), b.merges());
  EXPECT_EQ(a.vocab(), b.vocab());
  EXPECT_EQ(a.encode_ids(" the", false).size(), 1u);
  // Unseen e-mails (other seed) round-trip exactly, raw bytes included, and compress.
  const std::vector<std::string> unseen = mail_corpus(300'000, 2);
  size_t bytes = 0, tokens = 0;
  for (const std::string& text : unseen) {
    const std::vector<int32_t> ids = a.encode_ids(text, false);
    ASSERT_EQ(a.decode(ids), text);
    bytes += text.size();
    tokens += ids.size();
  }
  EXPECT_LT(static_cast<double>(tokens) / static_cast<double>(bytes), 0.45);
  // GPT-2 file formats: save, then the plain GPT-2 loader and Tokenizer::load read them back.
  const auto dir = testing::scratch_dir("train_bpe");
  a.save(dir);
  const BpeTokenizer files = BpeTokenizer::from_files(dir / "encoder.json", dir / "vocab.bpe");
  const auto loaded = Tokenizer::load(dir);
  for (const std::string& text : unseen) {
    EXPECT_EQ(files.encode_ids(text, false), a.encode_ids(text, false));
    EXPECT_EQ(loaded->encode(text).ids, a.encode(text).ids);
  }
  EXPECT_EQ(loaded->pad_id(), a.pad_id());
}

TEST(TrainWordPiece, LikelihoodScorePicksTheRarestCompanions) {
  // The HF course's WordPiece example: ("hug", 10), ("pug", 5), ("pun", 12), ("bun", 4),
  // ("hugs", 5). Scores count(ab) / (count(a) count(b)): (##g, ##s) = 5 / (20 * 5) = 0.05 beats
  // all others (1/36), so "##gs" is the first merged piece.
  std::vector<std::string> corpus;
  for (const auto& [w, n] : std::vector<std::pair<std::string, int>>{
           {"hug", 10}, {"pug", 5}, {"pun", 12}, {"bun", 4}, {"hugs", 5}}) {
    for (int i = 0; i < n; ++i) corpus.push_back(w);
  }
  const WordPieceTokenizer tok = train_wordpiece(corpus, {.vocab_size = 17, .min_frequency = 1});
  // 5 specials, alphabet b h p / ##g ##n ##s ##u, then one merge.
  const std::vector<std::string> expected = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                             "b",     "h",     "p",     "##g",   "##n",
                                             "##s",   "##u",   "##gs"};
  ASSERT_GE(tok.vocab().size(), expected.size());
  EXPECT_EQ(std::vector<std::string>(tok.vocab().begin(), tok.vocab().begin() + 13), expected);
  EXPECT_EQ(tok.vocab_size(), 17);
  // Frequency scoring merges the most frequent pair first: (##u, ##n) 16 < (##u, ##g) 20.
  const WordPieceTokenizer freq = train_wordpiece(
      corpus, {.vocab_size = 13, .min_frequency = 1, .score = WordPieceScore::kFrequency});
  EXPECT_EQ(freq.vocab().back(), "##ug");
  EXPECT_THROW(train_wordpiece(corpus, {.vocab_size = 8}), kiln::Error);
  EXPECT_THROW(train_wordpiece(corpus, {.special_tokens = {"[PAD]"}}), kiln::Error);
}

TEST(TrainWordPiece, RealCorpusVocabularyWorks) {
  const std::vector<std::string> corpus = mail_corpus(1'000'000, 3);
  ASSERT_FALSE(corpus.empty()) << testing::kInstallHint;
  for (const WordPieceScore score : {WordPieceScore::kLikelihood, WordPieceScore::kFrequency}) {
    const WordPieceTrainerOptions options{.vocab_size = 3000, .score = score};
    const WordPieceTokenizer a = train_wordpiece(corpus, options);
    const WordPieceTokenizer b = train_wordpiece(corpus, options);
    EXPECT_EQ(a.vocab_size(), 3000);
    EXPECT_EQ(a.vocab(), b.vocab());
    EXPECT_EQ(a.token_to_id("[PAD]"), 0);
    EXPECT_EQ(a.unk_id(), 1);
    EXPECT_EQ(a.cls_id(), 2);
    // Unseen text: few unknown words, and the pieces re-join to the normalised words.
    size_t unk = 0, tokens = 0;
    for (const std::string& text : mail_corpus(200'000, 4)) {
      const std::vector<int32_t> ids = a.encode_ids(text);
      tokens += ids.size();
      unk += static_cast<size_t>(std::count(ids.begin(), ids.end(), a.unk_id()));
    }
    EXPECT_LT(static_cast<double>(unk) / static_cast<double>(tokens), 0.01);
    const std::string line = "Hello, this is a test of the trained vocabulary.";
    std::string joined;
    for (const std::string& w : a.basic_tokenizer().split(line))
      joined += (joined.empty() ? "" : " ") + w;
    EXPECT_EQ(a.decode(a.encode_ids(line)), joined);
    const auto dir = testing::scratch_dir("train_wordpiece");
    a.save(dir);
    EXPECT_EQ(Tokenizer::load(dir)->encode(line).ids, a.encode(line).ids);
  }
}

// ~5 MB of real e-mail reaches a full 8,192-token vocabulary with both trainers, and each trained
// tokenizer round-trips the corpus text it was trained on. (How long training takes is measured
// in benchmarks/text_bench.cpp, not asserted here.)
TEST(VocabTrainer, FiveMegabytesOfMailFillAnEightThousandTokenVocabulary) {
  const std::vector<std::string> corpus = mail_corpus(5'000'000, 5);
  size_t bytes = 0;
  for (const auto& t : corpus) bytes += t.size();
  ASSERT_GT(bytes, 4'000'000u) << testing::kInstallHint;
  const BpeTokenizer bpe = train_bpe(corpus, {.vocab_size = 8192});
  const WordPieceTokenizer wp = train_wordpiece(corpus, {.vocab_size = 8192});
  EXPECT_EQ(bpe.vocab_size(), 8192);
  EXPECT_EQ(wp.vocab_size(), 8192);
  EXPECT_EQ(bpe.decode(bpe.encode_ids(corpus[0], false)), corpus[0]);  // byte-level BPE is lossless
}

}  // namespace
}  // namespace kiln::text
