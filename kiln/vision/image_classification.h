#pragma once
// ML.NET-shaped image classification: a data::Table with a label column and an image-path column
// goes in, a trained model comes out whose transform() adds "PredictedLabel" and "Score" columns.
// Training runs on kiln::Model::fit (Keras-like) over a CNN from models.h.
//
//   data::Table images = vision::load_image_folder_table("digits/");  // Label (key), ImagePath
//   vision::ImageClassificationTrainer trainer({.height = 28, .width = 28,
//                                               .color = vision::ColorMode::Gray, .epochs = 5});
//   vision::ImageClassificationModel model = trainer.fit(images);
//   data::Table scored = model.transform(test_images);   // + PredictedLabel (key), Score (float)
//   vision::MulticlassMetrics m = vision::evaluate(scored);
//   fmt::print("accuracy {:.3f}\n{}", m.micro_accuracy, m.confusion_table());
//
// Images are decoded once (in parallel), converted to `color`, resized to (height, width) with
// bilinear interpolation and kept in memory as uint8; each training batch applies the optional
// augmentation and to_tensor (x / 255), so the network sees (B, C, height, width) float32 in [0,
// 1].
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kiln/data/columns.h"
#include "kiln/train/model.h"
#include "kiln/vision/image.h"
#include "kiln/vision/transforms.h"

namespace kiln::vision {

/// ML.NET's LoadImagesFromDirectory for ImageFolder layouts: one row per image under
/// root/<class>/ (sorted as ImageFolder), with a Key column `label_column` (class names, sorted)
/// and a String column `path_column` (full paths).
data::Table load_image_folder_table(const std::string& root,
                                    const std::string& label_column = "Label",
                                    const std::string& path_column = "ImagePath");

struct ImageClassificationOptions {
  /// Key, String or Int column holding each row's class.
  std::string label_column = "Label";
  /// String column with image paths (relative ones are resolved against image_folder).
  std::string image_path_column = "ImagePath";
  std::string image_folder = "";
  /// The size images are resized to, and their channel count (Gray -> 1, RGB -> 3).
  int64_t height = 28;
  int64_t width = 28;
  ColorMode color = ColorMode::Gray;
  /// "lenet5", "resnet" or "mobilenet" (default options of models.h for the channel and class
  /// counts), unless model_factory is set.
  std::string architecture = "lenet5";
  std::function<nn::ModulePtr(int64_t in_channels, int64_t num_classes)> model_factory = nullptr;
  /// Training-time augmentation on uint8 (height, width, C) images (before to_tensor).
  TransformPtr augmentation = nullptr;
  int epochs = 5;
  int64_t batch_size = 32;
  double learning_rate = 1e-3;
  /// Seeds weight init, shuffling and augmentation.
  uint64_t seed = 0;
  /// Fraction of rows held out as fit's validation data (a seeded stratified sample).
  double validation_fraction = 0.0;
  int verbose = 0;
  /// Extra callbacks for Model::fit (one that sets model().stop_training ends training after the
  /// current batch, as kiln automl does at its deadline).
  std::vector<callbacks::CallbackPtr> callbacks = {};
};

/// The trained classifier (ML.NET's ITransformer for the image classification trainer).
class ImageClassificationModel {
 public:
  ImageClassificationModel(std::shared_ptr<Model> model, std::vector<std::string> classes,
                           ImageClassificationOptions options, History history);
  /// `input` plus "PredictedLabel" (Key over classes()) and "Score" (float: the softmax
  /// probability of the predicted class). Reads the image-path column; the label column is not
  /// needed.
  data::Table transform(const data::Table& input) const;
  /// Softmax probabilities (N, K) for the images of `input`, K = classes().size().
  Tensor predict_proba(const data::Table& input) const;
  /// Probabilities (K) for one image file.
  Tensor predict_image(const std::string& path) const;
  const std::vector<std::string>& classes() const { return classes_; }
  Model& model() const { return *model_; }
  const History& history() const { return history_; }

 private:
  std::shared_ptr<Model> model_;
  std::vector<std::string> classes_;
  ImageClassificationOptions options_;
  History history_;
};

class ImageClassificationTrainer {
 public:
  explicit ImageClassificationTrainer(ImageClassificationOptions options = {});
  /// Decodes every image of `train`, builds the network and trains it with Adam on sparse
  /// categorical cross-entropy. Throws naming the column when a column is missing or mistyped
  /// and naming the file when an image cannot be decoded.
  ImageClassificationModel fit(const data::Table& train) const;
  const ImageClassificationOptions& options() const { return options_; }

 private:
  ImageClassificationOptions options_;
};

/// The images of a table's path column, decoded, converted and resized: a (N, height, width, C)
/// uint8 Tensor. Decoding runs in parallel; the first failing row (in row order) is reported.
Tensor load_table_images(const data::Table& table, const ImageClassificationOptions& options);

/// ML.NET's MulticlassClassificationMetrics (the parts that need no scores).
struct MulticlassMetrics {
  /// Fraction of rows predicted right.
  double micro_accuracy = 0;
  /// Mean over classes (that appear as a label) of the per-class recall.
  double macro_accuracy = 0;
  /// confusion[true][predicted] row counts, K × K.
  std::vector<std::vector<int64_t>> confusion;
  std::vector<std::string> classes;
  /// The matrix as an aligned text table with class names, rows = truth, columns = prediction.
  std::string confusion_table() const;
};

/// Compares `label_column` with `predicted_column` (both Key columns over the same key values, as
/// transform() produces from a Key label; String labels are matched by value).
MulticlassMetrics evaluate(const data::Table& scored, const std::string& label_column = "Label",
                           const std::string& predicted_column = "PredictedLabel");

}  // namespace kiln::vision
