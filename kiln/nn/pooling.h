#pragma once
// Pooling: MaxPool1d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d and GlobalAvgPool.
// Legend: B = batch, C = channels, L = length, H/W = height/width.
#include <string>
#include <vector>

#include "kiln/nn/module.h"
#include "kiln/nn/options.h"

namespace kiln::nn {

struct MaxPool1dOptions {
  explicit MaxPool1dOptions(int64_t kernel_size) : kernel_size_(kernel_size) {}
  KILN_ARG(int64_t, kernel_size);
  /// Defaults to kernel_size (non-overlapping windows) when <= 0.
  KILN_ARG(int64_t, stride) = 0;
  /// Implicit −∞ padding on both sides (at most kernel_size / 2).
  KILN_ARG(int64_t, padding) = 0;
  /// "" (use padding()), "same" (output ⌈L / stride⌉, −∞ padding by TensorFlow's rule in
  /// padding.h) or "valid".
  KILN_ARG(std::string, padding_mode) = "";
};

/// x: (B, C, L) -> (B, C, ⌊(L + 2p − k) / s⌋ + 1), the max of each window.
class MaxPool1d : public Module {
 public:
  using Module::forward;
  explicit MaxPool1d(MaxPool1dOptions options);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  MaxPool1dOptions options_;
};

/// Options of a 2-d pooling; size setters take one value (both dims) or two.
struct Pool2dOptions {
  explicit Pool2dOptions(int64_t kernel_size) : kernel_size_(2, kernel_size) {}
  explicit Pool2dOptions(std::vector<int64_t> kernel_size);
  Pool2dOptions& stride(int64_t s) { return stride(std::vector<int64_t>{s, s}); }
  /// Defaults to kernel_size when not set.
  Pool2dOptions& stride(std::vector<int64_t> s);
  Pool2dOptions& padding(int64_t p) { return padding(std::vector<int64_t>{p, p}); }
  Pool2dOptions& padding(std::vector<int64_t> p);
  /// "same" (output ⌈in / stride⌉, TensorFlow's rule in padding.h: max pooling pads with −∞) or
  /// "valid" (no padding): padding("same").
  Pool2dOptions& padding(const char* mode) { return padding_mode(mode); }
  Pool2dOptions& padding_mode(const std::string& mode);
  /// Average pooling: whether padded positions count in the divisor (PyTorch's default true;
  /// TensorFlow's "same" leaves them out).
  Pool2dOptions& count_include_pad(bool on) {
    count_include_pad_ = on;
    return *this;
  }
  const std::vector<int64_t>& kernel_size() const { return kernel_size_; }
  /// Empty means "= kernel_size".
  const std::vector<int64_t>& stride() const { return stride_; }
  const std::vector<int64_t>& padding() const { return padding_; }
  /// "" (explicit padding()), "same" or "valid".
  const std::string& padding_mode() const { return padding_mode_; }
  bool count_include_pad() const { return count_include_pad_; }

 private:
  std::vector<int64_t> kernel_size_;
  std::vector<int64_t> stride_;
  std::vector<int64_t> padding_ = {0, 0};
  std::string padding_mode_;
  bool count_include_pad_ = true;
};
using MaxPool2dOptions = Pool2dOptions;
using AvgPool2dOptions = Pool2dOptions;

/// x: (B, C, H, W) -> (B, C, H_out, W_out), the max of each window (−∞ padding).
class MaxPool2d : public Module {
 public:
  using Module::forward;
  explicit MaxPool2d(MaxPool2dOptions options);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  MaxPool2dOptions options_;
};

/// x: (B, C, H, W) -> (B, C, H_out, W_out), the mean of each window (zero padding counted unless
/// count_include_pad(false)).
class AvgPool2d : public Module {
 public:
  using Module::forward;
  explicit AvgPool2d(AvgPool2dOptions options);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  AvgPool2dOptions options_;
};

/// x: (B, C, H, W) -> (B, C, out_h, out_w) with PyTorch's adaptive bin edges
/// (bin i spans ⌊i·H/out⌋ .. ⌈(i+1)·H/out⌉).
class AdaptiveAvgPool2d : public Module {
 public:
  using Module::forward;
  explicit AdaptiveAvgPool2d(std::vector<int64_t> output_size);
  explicit AdaptiveAvgPool2d(int64_t output_size)
      : AdaptiveAvgPool2d(std::vector<int64_t>{output_size}) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  std::vector<int64_t> output_size_;
};

struct GlobalAvgPoolOptions {
  /// Keep the reduced dims as size 1: (B, C, 1, 1) instead of (B, C).
  KILN_ARG(bool, keepdim) = false;
};

/// The mean over every dim after the channel dim (Keras' GlobalAveragePooling).
///   x: (B, C, *) -> (B, C)  (or (B, C, 1, ...) with keepdim)
class GlobalAvgPool : public Module {
 public:
  using Module::forward;
  explicit GlobalAvgPool(GlobalAvgPoolOptions options = {})
      : Module("GlobalAvgPool"), options_(options) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

 private:
  GlobalAvgPoolOptions options_;
};

}  // namespace kiln::nn
