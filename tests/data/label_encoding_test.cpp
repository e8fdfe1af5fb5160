// LabelEncoder: ML.NET MapValueToKey / MapKeyToValue semantics and its saved form.
#include "kiln/data/label_encoding.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "kiln/tensor/error.h"

namespace kiln::data {
namespace {

namespace fs = std::filesystem;

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / fmt::format("kiln_label_test_{}_{}", ::getpid(), name);
}

template <typename E = Error, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return {};
}

const std::vector<std::string> kLabels{"setosa", "virginica", "setosa", "versicolor", "virginica"};

TEST(LabelEncoder, KeysInOrderOfFirstAppearance) {
  const LabelEncoder enc = LabelEncoder::fit(kLabels);
  EXPECT_EQ(enc.size(), 3u);
  EXPECT_EQ(enc.values(), (std::vector<std::string>{"setosa", "virginica", "versicolor"}));
  const std::vector<int64_t> keys = enc.transform(kLabels);
  EXPECT_EQ(keys, (std::vector<int64_t>{0, 1, 0, 2, 1}));
  EXPECT_EQ(enc.inverse_transform(keys), kLabels);
  EXPECT_EQ(enc.key("versicolor"), 2);
  EXPECT_EQ(enc.value(1), "virginica");
  EXPECT_FALSE(enc.find("rose").has_value());
}

TEST(LabelEncoder, SortedOrdering) {
  const LabelEncoder enc = LabelEncoder::fit(kLabels, KeyOrdering::ByValue);
  EXPECT_EQ(enc.values(), (std::vector<std::string>{"setosa", "versicolor", "virginica"}));
  EXPECT_EQ(enc.transform(kLabels), (std::vector<int64_t>{0, 2, 0, 1, 2}));
}

TEST(LabelEncoder, UnseenLabelAndBadKeyErrors) {
  const LabelEncoder enc = LabelEncoder::fit(kLabels);
  EXPECT_EQ(error_of([&] { enc.key("rose"); }),
            "LabelEncoder: unseen label \"rose\" (the encoder knows 3 labels: \"setosa\", "
            "\"virginica\", \"versicolor\"; fit it on data that includes every label)");
  const std::vector<std::string> with_unseen{"setosa", "rose"};
  EXPECT_NE(error_of([&] { enc.transform(with_unseen); }).find("unseen label \"rose\" at row 1"),
            std::string::npos);
  const std::vector<int64_t> bad_keys{0, 3};
  EXPECT_EQ(error_of([&] { enc.inverse_transform(bad_keys); }),
            "LabelEncoder::inverse_transform: row 1 has key 3 (the encoder has 3 labels, keys lie "
            "in [0, 3))");
  EXPECT_NE(error_of([] {
              LabelEncoder(std::vector<std::string>{"a", "a"});
            }).find("value \"a\" appears at keys 0 and 1"),
            std::string::npos);
}

TEST(LabelEncoder, ColumnTransformAndKeyColumn) {
  const Column labels("species", kLabels);
  const LabelEncoder enc = LabelEncoder::fit(labels.strings());
  const Column keys = enc.transform(labels);
  EXPECT_EQ(keys.type(), ColumnType::Key);
  EXPECT_EQ(keys.name(), "species");
  EXPECT_EQ(keys.value_string(3), "versicolor");
  EXPECT_EQ(LabelEncoder::from_key_column(keys).values(), enc.values());
}

TEST(LabelEncoder, SaveLoadRoundTripsAwkwardLabels) {
  const std::vector<std::string> labels{"plain", "tab\there",   "new\nline", "back\\slash",
                                        "",      "caf\xC3\xA9", "cr\r"};
  const LabelEncoder enc = LabelEncoder::fit(labels);
  const fs::path p = temp_file("labels.txt");
  enc.save(p);
  const LabelEncoder back = LabelEncoder::load(p);
  EXPECT_EQ(back.values(), enc.values());
  EXPECT_EQ(back.transform(labels), enc.transform(labels));
  fs::remove(p);
}

TEST(LabelEncoder, LoadRejectsOtherFiles) {
  const fs::path p = temp_file("not_labels.txt");
  std::ofstream(p) << "hello\n";
  EXPECT_NE(error_of<IOError>([&] { LabelEncoder::load(p); }).find("line 1: expected"),
            std::string::npos);
  std::ofstream(p) << "kiln-label-encoder 1\n3\na\nb\n";
  EXPECT_NE(error_of<IOError>([&] {
              LabelEncoder::load(p);
            }).find("is truncated: 3 labels announced, 2 found"),
            std::string::npos);
  std::ofstream(p) << "kiln-label-encoder 1\n1\nbad\\q\n";
  EXPECT_NE(error_of<IOError>([&] { LabelEncoder::load(p); }).find("line 3: bad escape"),
            std::string::npos);
  fs::remove(p);
  EXPECT_THROW(LabelEncoder::load(p), IOError);
}

}  // namespace
}  // namespace kiln::data
