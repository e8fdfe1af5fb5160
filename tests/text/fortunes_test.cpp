// load_fortunes / split_fortunes on the real files of Debian's `fortunes` package (installed by
// scripts/install_deps.sh; Debian 12 ships 1:1.99.1-7.3) and on small synthetic files for the edge
// cases.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "kiln/tensor/error.h"
#include "kiln/text/fortunes.h"

namespace kiln::text {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = kDefaultFortunesDir;

std::map<std::string, size_t> counts_by_label(const data::Table& t) {
  std::map<std::string, size_t> n;
  for (const std::string& l : t["Label"].strings()) ++n[l];
  return n;
}

/// strfile(1)'s own count of a topic: the big-endian uint32 `str_numstr` at offset 4 of
/// <topic>.dat.
uint32_t strfile_count(const std::string& topic) {
  std::ifstream in(kDir / (topic + ".dat"), std::ios::binary);
  unsigned char b[8] = {};
  in.read(reinterpret_cast<char*>(b), 8);
  EXPECT_TRUE(in.good()) << "cannot read " << (kDir / (topic + ".dat"));
  return (uint32_t{b[4]} << 24) | (uint32_t{b[5]} << 16) | (uint32_t{b[6]} << 8) | uint32_t{b[7]};
}

class FortunesFiles : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { all_ = new data::Table(load_fortunes()); }
  static void TearDownTestSuite() {
    delete all_;
    all_ = nullptr;
  }
  static data::Table* all_;
};
data::Table* FortunesFiles::all_ = nullptr;

// Counts checked by hand: `grep -c '^%$' FILE` counts separators; computers and people do not end
// with "%" (one more entry than separators); knghtbrd holds one "%\n%" (one fewer); tao starts
// with "%\n%" and paradoxum with "%" (two and one fewer); pratchett has 1 separator, no final one.
TEST_F(FortunesFiles, EntryCountsMatchHandCounts) {
  const auto n = counts_by_label(*all_);
  EXPECT_EQ(n.at("science"), 625u);
  EXPECT_EQ(n.at("computers"), 1051u);
  EXPECT_EQ(n.at("people"), 1251u);
  EXPECT_EQ(n.at("knghtbrd"), 540u);
  EXPECT_EQ(n.at("tao"), 82u);
  EXPECT_EQ(n.at("paradoxum"), 72u);
  EXPECT_EQ(n.at("pratchett"), 2u);
  EXPECT_EQ(n.size(), 43u);
  EXPECT_EQ(all_->num_rows(), 15217u);
}

TEST_F(FortunesFiles, EveryTopicMatchesStrfileIndex) {
  for (const auto& [topic, count] : counts_by_label(*all_)) {
    EXPECT_EQ(count, strfile_count(topic)) << topic;
  }
}

TEST_F(FortunesFiles, KnownQuotesAndNoSeparatorsLeak) {
  const auto& labels = (*all_)["Label"].strings();
  const auto& texts = (*all_)["Text"].strings();
  std::vector<std::string> science, pratchett;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (labels[i] == "science") science.push_back(texts[i]);
    if (labels[i] == "pratchett") pratchett.push_back(texts[i]);
    EXPECT_FALSE(texts[i].empty()) << labels[i] << " row " << i;
    EXPECT_EQ(texts[i].rfind("%\n", 0), std::string::npos) << labels[i] << " row " << i;
    EXPECT_EQ(texts[i].find("\n%\n"), std::string::npos) << labels[i] << " row " << i;
    EXPECT_NE(texts[i].back(), '%') << labels[i] << " row " << i;
    EXPECT_EQ(texts[i].find('\b'), std::string::npos) << labels[i] << " row " << i;
  }
  ASSERT_EQ(science.size(), 625u);
  EXPECT_EQ(science[0], "1 + 1 = 3, for large values of 1.");
  ASSERT_EQ(pratchett.size(), 2u);
  EXPECT_EQ(pratchett[0],
            "He hated being thought of as one of those people that wore stupid\n"
            "ornamental armour. It was gilt by association.\n"
            "\t\t-- Terry Pratchett, \"Night Watch\"");
  // The Lem quote underlines "does" with "____\b\b\b\b": the overstriking resolves to the word.
  bool lem = false;
  for (const std::string& s : science) {
    if (s.find("Cerebron") != std::string::npos) {
      lem = true;
      EXPECT_NE(s.find("wholly unconcerned\nwith what does exist."), std::string::npos) << s;
    }
  }
  EXPECT_TRUE(lem);
}

TEST(Fortunes, MinPerTopicDropsOrMergesSmallTopics) {
  const data::Table big = load_fortunes(kDir, {.min_per_topic = 600});
  const std::map<std::string, size_t> want = {
      {"computers", 1051},    {"cookie", 1133},     {"definitions", 1203},
      {"miscellaneous", 651}, {"people", 1251},     {"politics", 703},
      {"science", 625},       {"songs-poems", 720}, {"work", 630}};
  EXPECT_EQ(counts_by_label(big), want);

  const data::Table merged = load_fortunes(kDir, {.topics = {"magic", "pratchett", "science"},
                                                  .min_per_topic = 100,
                                                  .small_topics_label = "other"});
  const std::map<std::string, size_t> want_merged = {{"other", 32}, {"science", 625}};
  EXPECT_EQ(counts_by_label(merged), want_merged);

  const data::Table capped =
      load_fortunes(kDir, {.topics = {"tao", "zippy"}, .max_per_topic = 10, .max_bytes = 20});
  const std::map<std::string, size_t> want_capped = {{"tao", 10}, {"zippy", 10}};
  EXPECT_EQ(counts_by_label(capped), want_capped);
  for (const std::string& s : capped["Text"].strings()) EXPECT_LE(s.size(), 20u);
  EXPECT_EQ(capped["Text"].strings()[0], "The Way\n\nThe Way tha");
}

TEST(Fortunes, MissingDirectoryOrTopicIsAnIOError) {
  try {
    load_fortunes("/nonexistent/kiln/fortunes");
    FAIL() << "no error";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/kiln/fortunes"), std::string::npos)
        << e.what();
  }
  try {
    load_fortunes(kDir, {.topics = {"science", "no-such-topic"}});
    FAIL() << "no error";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-topic"), std::string::npos) << e.what();
  }
}

TEST(Fortunes, SplitHandlesEdgeCases) {
  // Leading and doubled separators, CRLF, a bell, overstriking and a last entry without "%".
  const std::vector<std::string> want = {"one", "two\nlines", "bold x", "last"};
  EXPECT_EQ(split_fortunes("%\n%\n  one  \n%\r\ntwo\r\nlines\n%\n%\n \n%\nb\bbo\bold\a x\n%\nlast"),
            want);
  EXPECT_TRUE(split_fortunes("").empty());
  EXPECT_TRUE(split_fortunes("%\n%\n").empty());
  // "%" inside a line or followed by text is not a separator.
  EXPECT_EQ(split_fortunes("100% sure\n%DCL-MEM-BAD\n%\nx\n"),
            (std::vector<std::string>{"100% sure\n%DCL-MEM-BAD", "x"}));
  // Latin-1 bytes (not valid UTF-8) become UTF-8; a cut never splits a character.
  EXPECT_EQ(split_fortunes("caf\xE9\n%\n"), (std::vector<std::string>{"caf\xC3\xA9"}));
  EXPECT_EQ(split_fortunes("caf\xC3\xA9", 4), (std::vector<std::string>{"caf"}));
  // A backspace after a two-byte character removes all of it.
  EXPECT_EQ(split_fortunes("\xC3\xA9\be"), (std::vector<std::string>{"e"}));
}

TEST(Fortunes, ReadsATopicDirectoryIgnoringIndexFilesAndSubdirectories) {
  const fs::path d = fs::temp_directory_path() / fmt::format("kiln_fortunes_{}", ::getpid());
  fs::remove_all(d);
  fs::create_directories(d / "off");
  auto write = [&](const fs::path& p, const std::string& s) {
    std::ofstream(p, std::ios::binary) << s;
  };
  write(d / "b", "b1\n%\nb2\n%\n");
  write(d / "a", "a1\n%\n");
  write(d / "a.dat", "binary index");
  write(d / "a.u8", "a1\n%\n");
  write(d / "off" / "c", "c1\n%\n");
  const data::Table t = load_fortunes(d);
  fs::remove_all(d);
  EXPECT_EQ(t["Label"].strings(), (std::vector<std::string>{"a", "b", "b"}));
  EXPECT_EQ(t["Text"].strings(), (std::vector<std::string>{"a1", "b1", "b2"}));
}

}  // namespace
}  // namespace kiln::text
