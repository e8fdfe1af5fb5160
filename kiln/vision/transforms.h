#pragma once
// Image transforms (torchvision's and ML.NET's ResizeImages / ExtractPixels), composable and
// seeded.
//
// Images are kiln::Tensors in two layouts, told apart by dtype (as torchvision tells PIL images
// from tensors):
//   uint8   (H, W, C)  — what read_image returns; results are rounded and clamped to [0, 255];
//   float32 (C, H, W)  — after ToTensor; colour results are clamped to [0, 1], geometry is not.
// C is 1 or 3 for colour transforms and any count for geometric ones. Transforms are data
// preparation, not differentiable ops: they record no autograd history, and what they compute is a
// new leaf Tensor that does not require grad (a step that changes nothing may return its input).
//
//   auto tf = vision::compose({vision::random_crop(28, 28, /*padding=*/2),
//                              vision::random_horizontal_flip(0.5), vision::to_tensor(),
//                              vision::normalize_by({0.1307}, {0.3081})});
//   Tensor x = tf->apply(img, vision::sample_seed(/*seed=*/7, /*index=*/i, /*epoch=*/e));
//
// Randomness comes from an Rng seeded per sample (sample_seed(seed, index, epoch)): the same seed
// gives the same output whatever thread loads the sample and however many threads there are.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/autograd/tensor.h"

namespace kiln::vision {

/// A counter-based random stream (splitmix64 of (seed, counter)), one per sample.
class Rng {
 public:
  explicit Rng(uint64_t seed) : seed_(seed) {}
  /// Uniform in [lo, hi).
  double uniform(double lo = 0.0, double hi = 1.0);
  /// Integer uniform in [lo, hi] (inclusive).
  int64_t randint(int64_t lo, int64_t hi);
  /// True with probability p.
  bool bernoulli(double p) { return uniform() < p; }

 private:
  uint64_t seed_;
  uint64_t counter_ = 0;
};

/// The seed of sample `index` in `epoch` under a base `seed` (a hash; distinct inputs give
/// unrelated streams).
uint64_t sample_seed(uint64_t seed, int64_t index, int64_t epoch = 0);

// ---------------------------------------------------------------- functional forms

/// Bilinear resize to (out_h, out_w), as PyTorch's F.interpolate(mode="bilinear",
/// align_corners=False, antialias=False): source coordinate (dst + 0.5)·(in/out) − 0.5, clamped
/// at 0, computed in float32. uint8 (H, W, C) -> uint8 (out_h, out_w, C) rounded to nearest;
/// float32 (C, H, W) -> float32 (C, out_h, out_w).
Tensor resize(const Tensor& image, int64_t out_h, int64_t out_w);
/// The (h, w) window whose top-left corner is (top, left); parts outside the image are zero.
Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t h, int64_t w);
/// The central (h, w) window: top = round((H − h) / 2), left likewise (Python's round, half to
/// even, as torchvision). The window must fit inside the image.
Tensor center_crop(const Tensor& image, int64_t h, int64_t w);
/// Mirrors left-right.
Tensor hflip(const Tensor& image);
/// Affine warp about the image centre ((W − 1)/2, (H − 1)/2): rotation by `angle_deg`
/// (counter-clockwise, as torchvision), then scaling by `scale`, then translation by (tx, ty)
/// pixels. Output pixel p samples the input at the inverse map of p with bilinear interpolation;
/// samples outside the image read `fill`.
Tensor affine(const Tensor& image, double angle_deg, double tx = 0.0, double ty = 0.0,
              double scale = 1.0, double fill = 0.0);
/// x·factor (clamped).
Tensor adjust_brightness(const Tensor& image, double factor);
/// Blend with the mean of the grayscale image: mean + factor·(x − mean) (clamped).
Tensor adjust_contrast(const Tensor& image, double factor);
/// Blend with the grayscale image: gray + factor·(x − gray) (clamped); 1-channel images unchanged.
Tensor adjust_saturation(const Tensor& image, double factor);
/// Rotates the hue by `factor` turns, factor in [-0.5, 0.5] (torchvision's adjust_hue: RGB → HSV,
/// h = (h + factor) mod 1, HSV → RGB); 1-channel images unchanged.
Tensor adjust_hue(const Tensor& image, double factor);
/// float32 (C, H, W): (x − mean[c]) / std[c]. mean/std have C entries (or 1, used for every C).
Tensor normalize(const Tensor& image, const std::vector<double>& mean,
                 const std::vector<double>& std);
/// uint8 (H, W, C) -> float32 (C, H, W) in [0, 1] (x / 255), ML.NET's ExtractPixels.
Tensor to_tensor(const Tensor& image);

// ---------------------------------------------------------------- transform objects

/// One step of a pipeline. apply must be thread-safe (a Transform is shared by loader threads).
class Transform {
 public:
  virtual ~Transform() = default;
  /// The transformed image (a uint8 (H, W, C) or float32 (C, H, W) Tensor, see above); random
  /// choices are drawn from `rng`. Custom transforms override this.
  virtual Tensor apply(const Tensor& image, Rng& rng) const = 0;
  /// apply with a fresh Rng(seed).
  Tensor apply(const Tensor& image, uint64_t seed) const {
    Rng rng(seed);
    return apply(image, rng);
  }
  /// "RandomCrop(size=(28, 28), padding=2)".
  virtual std::string repr() const = 0;
};
using TransformPtr = std::shared_ptr<const Transform>;

/// The steps in order, all drawing from the same per-sample Rng.
TransformPtr compose(std::vector<TransformPtr> steps);
/// resize(image, h, w).
TransformPtr resize_to(int64_t h, int64_t w);
TransformPtr center_crop_to(int64_t h, int64_t w);
/// Pads every side with `padding` zeros, then takes an (h, w) window at a uniformly random offset.
TransformPtr random_crop(int64_t h, int64_t w, int64_t padding = 0);
/// hflip with probability p.
TransformPtr random_horizontal_flip(double p = 0.5);
/// Rotation by an angle uniform in [−degrees, degrees].
TransformPtr random_rotation(double degrees, double fill = 0.0);
/// Rotation uniform in [−degrees, degrees], translation uniform in ±translate·(W, H) pixels, scale
/// uniform in [scale_min, scale_max].
TransformPtr random_affine(double degrees, double translate = 0.0, double scale_min = 1.0,
                           double scale_max = 1.0, double fill = 0.0);
/// Brightness, contrast and saturation factors each uniform in [1 − v, 1 + v] (v = 0 skips it),
/// then a hue shift uniform in [−hue, hue] turns (hue in [0, 0.5]), applied in that order
/// (torchvision's ColorJitter, in a fixed order).
TransformPtr color_jitter(double brightness, double contrast = 0.0, double saturation = 0.0,
                          double hue = 0.0);
TransformPtr normalize_by(std::vector<double> mean, std::vector<double> std);
TransformPtr to_tensor();

}  // namespace kiln::vision
