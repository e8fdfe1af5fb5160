#pragma once
// Conv1d and Conv2d. Legend: B = batch, C = channels, L = length, H/W = height/width, k = kernel
// size.
#include <string>
#include <vector>

#include "kiln/nn/module.h"

namespace kiln::nn {

/// Options of an N-d convolution (N = 1 or 2). Size setters take one value (used for every spatial
/// dim) or N values.
template <size_t N>
struct ConvOptions {
  ConvOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(N, kernel_size) {}
  ConvOptions(int64_t in_channels, int64_t out_channels, std::vector<int64_t> kernel_size)
      : in_channels_(in_channels),
        out_channels_(out_channels),
        kernel_size_(expand(kernel_size, "kernel_size")) {}

  ConvOptions& stride(int64_t s) { return stride(std::vector<int64_t>(N, s)); }
  ConvOptions& stride(std::vector<int64_t> s) {
    stride_ = expand(s, "stride");
    return *this;
  }
  /// Zero padding on both sides of each spatial dim.
  ConvOptions& padding(int64_t p) { return padding(std::vector<int64_t>(N, p)); }
  ConvOptions& padding(std::vector<int64_t> p) {
    padding_ = expand(p, "padding");
    padding_mode_.clear();
    return *this;
  }
  /// "same" (output size ⌈in / stride⌉, TensorFlow's rule in padding.h, any stride; at stride 1
  /// PyTorch's: an odd total pads one more on the right) or "valid" (no padding):
  /// padding("same").
  ConvOptions& padding(const char* mode) { return padding_mode(mode); }
  /// The same from a std::string (a separate name: padding({1, 0}) must not read as a string).
  ConvOptions& padding_mode(const std::string& mode);
  ConvOptions& dilation(int64_t d) { return dilation(std::vector<int64_t>(N, d)); }
  ConvOptions& dilation(std::vector<int64_t> d) {
    dilation_ = expand(d, "dilation");
    return *this;
  }
  ConvOptions& groups(int64_t g) {
    groups_ = g;
    return *this;
  }
  ConvOptions& bias(bool b) {
    bias_ = b;
    return *this;
  }
  /// Sets in_channels (a lazy wrapper such as layers::Conv2D fills it in from its first input).
  ConvOptions& in_channels(int64_t c) {
    in_channels_ = c;
    return *this;
  }

  int64_t in_channels() const { return in_channels_; }
  int64_t out_channels() const { return out_channels_; }
  const std::vector<int64_t>& kernel_size() const { return kernel_size_; }
  const std::vector<int64_t>& stride() const { return stride_; }
  const std::vector<int64_t>& padding() const { return padding_; }
  /// "" (explicit padding()), "same" or "valid".
  const std::string& padding_mode() const { return padding_mode_; }
  const std::vector<int64_t>& dilation() const { return dilation_; }
  int64_t groups() const { return groups_; }
  bool bias() const { return bias_; }

 private:
  static std::vector<int64_t> expand(const std::vector<int64_t>& v, const char* what);
  int64_t in_channels_, out_channels_;
  std::vector<int64_t> kernel_size_;
  std::vector<int64_t> stride_ = std::vector<int64_t>(N, 1);
  std::vector<int64_t> padding_ = std::vector<int64_t>(N, 0);
  std::string padding_mode_;
  std::vector<int64_t> dilation_ = std::vector<int64_t>(N, 1);
  int64_t groups_ = 1;
  bool bias_ = true;
};
using Conv1dOptions = ConvOptions<1>;
using Conv2dOptions = ConvOptions<2>;

/// Shared parameters and init of Conv1d / Conv2d: "weight" (C_out, C_in/groups, k...) and "bias"
/// (C_out). Default init as PyTorch: weight ~ kaiming_uniform(a=√5), bias ~ U(−1/√fan_in,
/// 1/√fan_in) with fan_in = C_in/groups · ∏k.
template <size_t N>
class ConvNd : public Module {
 public:
  void reset_parameters(Generator* gen = nullptr) override;
  std::string extra_repr() const override;
  const ConvOptions<N>& options() const { return options_; }

  Tensor weight;  // (C_out, C_in/groups, k...)
  Tensor bias;    // (C_out) or undefined

 protected:
  ConvNd(std::string type_name, ConvOptions<N> options);
  /// Checks x: (B, C_in, spatial...) and applies "same" padding: returns the input to convolve
  /// (padded at the end where the total "same" padding is odd) and the symmetric padding to pass
  /// to the op.
  std::pair<Tensor, std::vector<int64_t>> prepare(const Tensor& x) const;
  ConvOptions<N> options_;
};

/// x: (B, C_in, L)  ->  y: (B, C_out, L_out),  L_out = ⌊(L + 2p − d(k−1) − 1) / s⌋ + 1
class Conv1d : public ConvNd<1> {
 public:
  using Module::forward;
  explicit Conv1d(Conv1dOptions options) : ConvNd<1>("Conv1d", std::move(options)) {}
  Tensor forward(const Tensor& x) override;
};

/// x: (B, C_in, H, W)  ->  y: (B, C_out, H_out, W_out), each spatial dim as Conv1d's L_out.
class Conv2d : public ConvNd<2> {
 public:
  using Module::forward;
  explicit Conv2d(Conv2dOptions options) : ConvNd<2>("Conv2d", std::move(options)) {}
  Tensor forward(const Tensor& x) override;
};

}  // namespace kiln::nn
