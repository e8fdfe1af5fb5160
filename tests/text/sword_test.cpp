// The SWORD zText reader on the real Debian modules (sword-text-kjv, sword-text-web): verse
// counts, known verse texts, markup stripping, the KJV/WEB pair table, and clear errors on
// truncated or corrupted copies of the files.
#include "kiln/text/sword.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>

#include "kiln/tensor/error.h"

namespace kiln::text {
namespace {

namespace fs = std::filesystem;

fs::path kjv_dir() {
  return default_sword_dir() / "engKJV2006eb";
}
fs::path web_dir() {
  return default_sword_dir() / "engWEB2015eb";
}

// Each module read once (about 0.2 s each in Release).
const std::vector<Verse>& kjv() {
  static const std::vector<Verse> v = read_sword_ztext(kjv_dir());
  return v;
}
const std::vector<Verse>& web() {
  static const std::vector<Verse> v = read_sword_ztext(web_dir());
  return v;
}

std::map<std::string, std::string> by_reference(const std::vector<Verse>& verses) {
  std::map<std::string, std::string> m;
  for (const Verse& v : verses) m[v.reference()] = v.text;
  return m;
}
const std::map<std::string, std::string>& kjv_map() {
  static const auto m = by_reference(kjv());
  return m;
}
const std::map<std::string, std::string>& web_map() {
  static const auto m = by_reference(web());
  return m;
}

void expect_clean(const std::vector<Verse>& verses) {
  for (const Verse& v : verses) {
    ASSERT_FALSE(v.text.empty()) << v.reference();
    ASSERT_EQ(v.text.find('<'), std::string::npos) << v.reference() << ": " << v.text;
    ASSERT_EQ(v.text.find('>'), std::string::npos) << v.reference() << ": " << v.text;
    ASSERT_EQ(v.text.find("  "), std::string::npos) << v.reference() << ": " << v.text;
    ASSERT_EQ(v.text.find("\xC2\xB6"), std::string::npos) << v.reference() << ": " << v.text;
    ASSERT_NE(v.text.front(), ' ') << v.reference();
    ASSERT_NE(v.text.back(), ' ') << v.reference();
  }
}

TEST(SwordZText, ReadsEveryKjvVerseInOrder) {
  const std::vector<Verse>& v = kjv();
  // The KJV canon: 66 books, 1,189 chapters, 31,102 verses (none empty in this module).
  ASSERT_EQ(v.size(), 31102u);
  std::vector<std::string> books;
  std::set<std::pair<std::string, int>> chapters;
  for (size_t i = 0; i < v.size(); ++i) {
    if (books.empty() || books.back() != v[i].book) books.push_back(v[i].book);
    chapters.insert({v[i].book, v[i].chapter});
    if (i > 0 && v[i].book == v[i - 1].book && v[i].chapter == v[i - 1].chapter) {
      ASSERT_EQ(v[i].verse, v[i - 1].verse + 1) << v[i].reference();
    } else {
      ASSERT_EQ(v[i].verse, 1) << v[i].reference();
    }
  }
  EXPECT_EQ(books.size(), 66u);
  EXPECT_EQ(chapters.size(), 1189u);
  EXPECT_EQ(books.front(), "Gen");
  EXPECT_EQ(books[38], "Mal");
  EXPECT_EQ(books[39], "Matt");
  EXPECT_EQ(books.back(), "Rev");
  // Chapter counts of a few books (Psalms 150, Isaiah 66, Jude 1).
  auto chapters_of = [&](const std::string& b) {
    int n = 0;
    for (const auto& c : chapters) n += c.first == b;
    return n;
  };
  EXPECT_EQ(chapters_of("Ps"), 150);
  EXPECT_EQ(chapters_of("Isa"), 66);
  EXPECT_EQ(chapters_of("Jude"), 1);
  expect_clean(v);
}

TEST(SwordZText, KjvVerseTextsAreExact) {
  const auto& m = kjv_map();
  EXPECT_EQ(m.at("Gen.1.1"), "In the beginning God created the heaven and the earth.");
  EXPECT_EQ(m.at("John.3.16"),
            "For God so loved the world, that he gave his only begotten Son, that whosoever "
            "believeth in him should not perish, but have everlasting life.");
  EXPECT_EQ(m.at("Ps.23.1"), "The LORD is my shepherd; I shall not want.");
  // <transChange> (words the translators added) is kept; the footnote after "thee." is dropped.
  EXPECT_EQ(m.at("Isa.49.15"),
            "Can a woman forget her sucking child, that she should not have compassion on the "
            "son of her womb? yea, they may forget, yet will I not forget thee.");
  EXPECT_EQ(m.at("Rev.22.21"), "The grace of our Lord Jesus Christ be with you all. Amen.");
  // The colophon after the last verse of an epistle is a <title>: dropped.
  EXPECT_EQ(m.at("1Cor.16.24"), "My love be with you all in Christ Jesus. Amen.");
}

TEST(SwordZText, ReadsTheWebWithDeuterocanonAndDropsBackMatter) {
  const std::vector<Verse>& v = web();
  expect_clean(v);
  const auto& m = web_map();
  // Gen 1:1 carries a footnote between "God" and "created": dropped, words kept apart.
  EXPECT_EQ(m.at("Gen.1.1"), "In the beginning, God created the heavens and the earth.");
  EXPECT_EQ(m.at("John.3.16").rfind("For God so loved the world", 0), 0u) << m.at("John.3.16");
  EXPECT_EQ(m.at("Ps.23.1"), "Yahweh is my shepherd; I shall lack nothing.");
  // The glossary after the last verse (past the book's closing tag) is not verse text.
  EXPECT_EQ(m.at("Rev.22.21"), "The grace of the Lord Jesus Christ be with all the saints. Amen.");
  // <speaker> headings in the Song of Songs are dropped like titles.
  EXPECT_EQ(m.at("Song.1.2"),
            "Let him kiss me with the kisses of his mouth; for your love is better than wine.");
  EXPECT_TRUE(m.count("Tob.1.1"));     // deuterocanon (NRSVA versification)
  EXPECT_FALSE(m.count("Acts.8.37"));  // in the KJV, left empty in the WEB
  // Every KJV verse is in the WEB except 7 the WEB leaves empty (Luke 17:36, Acts 8:37, 15:34,
  // 24:7, Rom 16:25-27).
  size_t missing = 0;
  for (const auto& [ref, text] : kjv_map()) missing += !m.count(ref);
  EXPECT_EQ(missing, 7u);
  // 37,497 non-empty entries, less 39 that hold only a footnote ("verse omitted by the best
  // authorities": Sirach, Luke 17:36, Acts 8:37, 15:34, 24:7, Rom 16:25).
  EXPECT_EQ(v.size(), 37458u);
}

TEST(OsisToText, KeepsWordsDropsNotesTitlesAndTags) {
  EXPECT_EQ(osis_to_text("In the <w lemma=\"strong:H7225\">beginning</w> <w>God</w>. "),
            "In the beginning God.");
  EXPECT_EQ(osis_to_text("<w>God</w><note placement=\"foot\"><reference>1:1</reference>A "
                         "<note>nested</note> note.</note><w>created</w>"),
            "God created");
  EXPECT_EQ(osis_to_text("<w>Yahweh</w><note>n</note>, and"), "Yahweh, and");
  EXPECT_EQ(osis_to_text("<title type=\"psalm\">A Psalm of David.</title>The LORD"), "The LORD");
  EXPECT_EQ(osis_to_text("<q marker=\"\" who=\"Jesus\">Follow <transChange type=\"added\">"
                         "thou</transChange> me</q>"),
            "Follow thou me");
  EXPECT_EQ(osis_to_text("line one,<l eID=\"x\"/><l sID=\"y\"/>line two"), "line one, line two");
  EXPECT_EQ(osis_to_text("a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#8217; &#x41; &bogus;"),
            "a & b <c> \"d\" 'e' \xE2\x80\x99 A &bogus;");
  EXPECT_EQ(osis_to_text("\xC2\xB6 For  God\n\tso"), "For God so");
  EXPECT_EQ(osis_to_text("Amen. <div eID=\"b\" osisID=\"Rev\" type=\"book\"/> Glossary"), "Amen.");
  EXPECT_EQ(osis_to_text("text <w>cut"), "text cut");
  EXPECT_EQ(osis_to_text("text <w lemma=\"cut off"), "text");
  EXPECT_EQ(osis_to_text("<note>never closed"), "");
}

TEST(BiblePairs, JoinsTheSameVerseAndPairsNegativesWithOtherVerses) {
  const data::Table t = make_bible_pairs(kjv(), web(), {.max_pairs = 2000, .seed = 3});
  ASSERT_EQ(t.num_rows(), 2000u);
  ASSERT_EQ(t.column_names(), (std::vector<std::string>{"Sentence1", "Sentence2", "Label",
                                                        "Reference1", "Reference2"}));
  const auto& s1 = t["Sentence1"].strings();
  const auto& s2 = t["Sentence2"].strings();
  const auto& r1 = t["Reference1"].strings();
  const auto& r2 = t["Reference2"].strings();
  const auto& y = t["Label"].floats();
  size_t positives = 0, same_chapter = 0;
  std::set<std::string> positive_refs;
  for (size_t i = 0; i < t.num_rows(); ++i) {
    ASSERT_EQ(s1[i], kjv_map().at(r1[i])) << r1[i];
    ASSERT_EQ(s2[i], web_map().at(r2[i])) << r2[i];
    if (y[i] == 1.0f) {
      ++positives;
      ASSERT_EQ(r1[i], r2[i]);
      positive_refs.insert(r1[i]);
    } else {
      ASSERT_EQ(y[i], 0.0f);
      ASSERT_NE(r1[i], r2[i]);
      ASSERT_NE(s2[i], web_map().at(r1[i])) << r1[i] << " vs " << r2[i];
      same_chapter += r1[i].substr(0, r1[i].rfind('.')) == r2[i].substr(0, r2[i].rfind('.'));
    }
  }
  EXPECT_EQ(positives, 1000u);
  EXPECT_EQ(positive_refs.size(), 1000u);  // no verse twice
  // Half the negatives (500) are asked to come from the anchor's chapter; a one-verse chapter
  // falls back to anywhere, and a random verse lands in the same chapter about 1 time in 1000.
  EXPECT_GE(same_chapter, 490u);
  EXPECT_LE(same_chapter, 510u);
  // Rows are shuffled: positives are not all first.
  size_t first_half = 0;
  for (size_t i = 0; i < 1000; ++i) first_half += y[i] == 1.0f;
  EXPECT_GT(first_half, 400u);
  EXPECT_LT(first_half, 600u);
}

TEST(BiblePairs, DeterministicForASeedAndDropsVariantVerses) {
  const BiblePairsOptions o{.max_pairs = 300, .negative_fraction = 0.25, .seed = 9};
  const data::Table a = load_bible_pairs(kjv_dir(), web_dir(), o);  // reads the files again
  const data::Table b = make_bible_pairs(kjv(), web(), o);
  EXPECT_EQ(a["Reference1"].strings(), b["Reference1"].strings());
  EXPECT_EQ(a["Reference2"].strings(), b["Reference2"].strings());
  EXPECT_EQ(a["Label"].floats(), b["Label"].floats());
  size_t neg = 0;
  for (float y : a["Label"].floats()) neg += y == 0.0f;
  EXPECT_EQ(neg, 75u);
  const data::Table c =
      make_bible_pairs(kjv(), web(), {.max_pairs = 300, .negative_fraction = 0.25});
  EXPECT_NE(a["Reference1"].strings(), c["Reference1"].strings());

  // Every joined verse: the 31,095 shared references less those more than 3x apart in length.
  const data::Table all = make_bible_pairs(kjv(), web(), {.negative_fraction = 0});
  std::set<std::string> refs(all["Reference1"].strings().begin(),
                             all["Reference1"].strings().end());
  EXPECT_EQ(refs.size(), all.num_rows());
  EXPECT_FALSE(refs.count("1John.5.7"));  // the Comma Johanneum: the WEB omits it
  EXPECT_FALSE(refs.count("Rom.14.23"));  // the WEB's carries the doxology (KJV Rom 16:25-27)
  EXPECT_TRUE(refs.count("John.3.16"));
  EXPECT_EQ(all.num_rows(), 31093u);  // 31,095 less those two (checked with a Python reader)
  EXPECT_THROW(make_bible_pairs(kjv(), web(), {.negative_fraction = 1.0}), Error);
  EXPECT_THROW(make_bible_pairs(kjv(), {}), Error);  // nothing to join
}

// ---- corrupt files: small copies of the KJV's New Testament in a temp dir ----

class SwordCorrupt : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("kiln_sword_{}", ::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (const char* f : {"nt.bzs", "nt.bzv", "nt.bzz"}) fs::copy_file(kjv_dir() / f, dir_ / f);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string read(const std::string& f) const {
    std::ifstream in(dir_ / f, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  void write(const std::string& f, const std::string& bytes) const {
    std::ofstream(dir_ / f, std::ios::binary | std::ios::trunc) << bytes;
  }
  static void put32(std::string& b, size_t at, uint32_t v) {
    for (int k = 0; k < 4; ++k) b[at + k] = static_cast<char>((v >> (8 * k)) & 0xFF);
  }
  // read_sword_ztext must throw IOError whose message contains `what`.
  void expect_io_error(const std::string& what) const {
    try {
      read_sword_ztext(dir_);
      ADD_FAILURE() << "no error; expected one mentioning \"" << what << "\"";
    } catch (const IOError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  }
  fs::path dir_;
};

TEST_F(SwordCorrupt, IntactCopyReadsTheNewTestament) {
  const std::vector<Verse> v = read_sword_ztext(dir_);
  EXPECT_EQ(v.size(), 7957u);  // the KJV New Testament
  EXPECT_EQ(v.front().reference(), "Matt.1.1");
}

TEST_F(SwordCorrupt, TruncatedRecordFiles) {
  std::string bzv = read("nt.bzv");
  write("nt.bzv", bzv.substr(0, bzv.size() - 3));
  expect_io_error("not a multiple of its 10-byte verse records");
  write("nt.bzv", bzv);
  const std::string bzs = read("nt.bzs");
  write("nt.bzs", bzs.substr(0, bzs.size() - 5));
  expect_io_error("not a multiple of its 12-byte block records");
}

TEST_F(SwordCorrupt, BlockNumberOutOfRange) {
  std::string bzv = read("nt.bzv");
  put32(bzv, 10 * 5, 999);  // entry 5 (Matt 1:2) names block 999
  write("nt.bzv", bzv);
  expect_io_error("names block 999 but");
}

TEST_F(SwordCorrupt, EntryPastTheInflatedBlock) {
  std::string bzv = read("nt.bzv");
  put32(bzv, 10 * 5 + 4, 0x7FFFFFF0u);  // entry 5's offset far past its block
  write("nt.bzv", bzv);
  expect_io_error("which inflates to");
}

TEST_F(SwordCorrupt, GarbledCompressedBytes) {
  std::string bzz = read("nt.bzz");
  // Block 1 (Matthew) starts at byte 1110; garble 100 bytes inside its deflate stream.
  for (size_t i = 2000; i < 2100; ++i) bzz[i] = static_cast<char>(i * 37);
  write("nt.bzz", bzz);
  expect_io_error("zlib error");
}

TEST_F(SwordCorrupt, TruncatedCompressedFile) {
  const std::string bzz = read("nt.bzz");
  write("nt.bzz", bzz.substr(0, 1000));
  expect_io_error("but " + (dir_ / "nt.bzz").string() + " has 1000 bytes");
}

TEST_F(SwordCorrupt, WrongInflatedSize) {
  std::string bzs = read("nt.bzs");
  const std::string good = bzs;
  const uint32_t usize = static_cast<uint32_t>(static_cast<unsigned char>(bzs[8])) |
                         static_cast<uint32_t>(static_cast<unsigned char>(bzs[9])) << 8 |
                         static_cast<uint32_t>(static_cast<unsigned char>(bzs[10])) << 16 |
                         static_cast<uint32_t>(static_cast<unsigned char>(bzs[11])) << 24;
  put32(bzs, 8, usize + 7);  // block 0 claims 7 bytes more than it inflates to
  write("nt.bzs", bzs);
  expect_io_error("inflates to");
  put32(bzs, 8, usize - 7);  // and 7 fewer: zlib runs out of room
  write("nt.bzs", bzs);
  expect_io_error("zlib error");
  bzs = good;
  put32(bzs, 8, 0xFFFFFFF0u);  // an absurd size is refused before allocating it
  write("nt.bzs", bzs);
  expect_io_error("maximum; corrupt");
}

TEST_F(SwordCorrupt, MissingDirectoryOrFiles) {
  try {
    read_sword_ztext(dir_ / "nope");
    ADD_FAILURE() << "no error";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("is not a directory"), std::string::npos) << e.what();
  }
  fs::remove(dir_ / "nt.bzz");
  expect_io_error("cannot open " + (dir_ / "nt.bzz").string());
  fs::remove(dir_ / "nt.bzv");
  expect_io_error("holds neither ot.bzv nor nt.bzv");
}

}  // namespace
}  // namespace kiln::text
