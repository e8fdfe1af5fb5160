// ImageClassificationTrainer end to end on real digits written as PNG files, plus the metrics and
// the table checks (kiln/vision/image_classification.h).
#include "kiln/vision/image_classification.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "kiln/vision/datasets.h"
#include "vision/digits_fixture.h"

namespace fs = std::filesystem;
using namespace kiln::vision;
using kiln::data::Column;
using kiln::data::Table;

namespace {

// rows [begin, end) of the seeded npm-digits split, written as root/<digit>/<i>.png.
void write_digit_folder(const fs::path& root, const ImageSet& set, int64_t begin, int64_t end) {
  fs::remove_all(root);
  for (int d = 0; d < 10; ++d) fs::create_directories(root / std::to_string(d));
  for (int64_t i = begin; i < end; ++i) {
    const int64_t label = set.labels.data_ptr<int64_t>()[i];
    write_png((root / std::to_string(label) / (std::to_string(i) + ".png")).string(),
              set.images.select(0, i).contiguous());
  }
}

}  // namespace

TEST(ImageClassification, TrainsOnPngFolderAndScoresATable) {
  ImageSet set = digits_as_images(kiln::testing::digits_split().train);
  fs::path dir = fs::temp_directory_path() / "kiln_test_vision_ic";
  write_digit_folder(dir / "train", set, 0, 500);
  write_digit_folder(dir / "test", set, 500, 700);

  Table train = load_image_folder_table((dir / "train").string());
  ASSERT_EQ(train.num_rows(), 500u);
  EXPECT_EQ(train["Label"].key_values().size(), 10u);
  ImageClassificationTrainer trainer({.epochs = 10,
                                      .batch_size = 32,
                                      .learning_rate = 2e-3,
                                      .seed = 4,
                                      .validation_fraction = 0.1});
  ImageClassificationModel model = trainer.fit(train);
  EXPECT_EQ(model.classes(), train["Label"].key_values());
  ASSERT_TRUE(model.history().contains("val_loss"));
  EXPECT_LT(model.history()["loss"].back(), 0.8);

  Table test = load_image_folder_table((dir / "test").string());
  Table scored = model.transform(test);
  ASSERT_TRUE(scored.has_column("PredictedLabel"));
  ASSERT_TRUE(scored.has_column("Score"));
  EXPECT_EQ(scored["PredictedLabel"].type(), kiln::data::ColumnType::Key);
  for (float s : scored["Score"].floats()) {
    EXPECT_GE(s, 0.1f);  // the top of 10 probabilities is at least 1/10
    EXPECT_LE(s, 1.0f);
  }
  MulticlassMetrics m = evaluate(scored);
  // 200 held-out digits after 10 epochs on 450: far above chance (0.1).
  EXPECT_GT(m.micro_accuracy, 0.7);
  int64_t total = 0;
  for (const auto& row : m.confusion)
    for (int64_t v : row) total += v;
  EXPECT_EQ(total, 200);
  // predict_image agrees with the table path.
  kiln::Tensor p = model.predict_image(test["ImagePath"].strings()[0]);
  ASSERT_EQ(p.shape(), (kiln::Shape{10}));
  auto probs = p.to_vector<float>();
  EXPECT_EQ(std::max_element(probs.begin(), probs.end()) - probs.begin(),
            scored["PredictedLabel"].keys()[0]);
}

TEST(ImageClassification, MetricsFromAHandMadeTable) {
  Table t;
  t.add_column(Column("Label", std::vector<std::string>{"cat", "cat", "dog", "dog", "dog"}));
  t.add_column(Column::from_keys("PredictedLabel", {0, 1, 1, 1, 0}, {"cat", "dog"}));
  MulticlassMetrics m = evaluate(t);
  EXPECT_DOUBLE_EQ(m.micro_accuracy, 3.0 / 5.0);
  EXPECT_DOUBLE_EQ(m.macro_accuracy, (1.0 / 2.0 + 2.0 / 3.0) / 2.0);
  EXPECT_EQ(m.confusion, (std::vector<std::vector<int64_t>>{{1, 1}, {1, 2}}));
  EXPECT_NE(m.confusion_table().find("0.667"), std::string::npos) << m.confusion_table();
  t.add_column(Column("Other", std::vector<std::string>{"cat", "cat", "cow", "dog", "dog"}));
  EXPECT_THROW(evaluate(t, "Other"), kiln::Error);
}

TEST(ImageClassification, BadTablesNameTheProblem) {
  Table t;
  t.add_column(Column("Label", std::vector<float>{0, 1}));
  t.add_column(Column("ImagePath", std::vector<std::string>{"a.png", "b.png"}));
  EXPECT_THROW(ImageClassificationTrainer().fit(t), kiln::TypeError);
  Table u;
  u.add_column(Column("Label", std::vector<std::string>{"x", "y"}));
  u.add_column(Column("ImagePath", std::vector<std::string>{"/nonexistent/a.png", "b.png"}));
  try {
    ImageClassificationTrainer().fit(u);
    FAIL() << "expected IOError";
  } catch (const kiln::IOError& e) {
    EXPECT_NE(std::string(e.what()).find("row 0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("/nonexistent/a.png"), std::string::npos) << e.what();
  }
  Table v;
  v.add_column(Column("Label", std::vector<std::string>{"x", "y"}));
  EXPECT_THROW(ImageClassificationTrainer().fit(v), kiln::Error);  // no ImagePath column
}
