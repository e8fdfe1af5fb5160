#pragma once
// LayerNorm, BatchNorm1d and BatchNorm2d. Legend: B = batch, C = channels (features), L = length.
#include <optional>

#include "kiln/nn/module.h"
#include "kiln/nn/options.h"

namespace kiln::nn {

struct LayerNormOptions {
  explicit LayerNormOptions(Shape normalized_shape)
      : normalized_shape_(std::move(normalized_shape)) {}
  explicit LayerNormOptions(int64_t dim) : normalized_shape_({dim}) {}
  /// The trailing dims normalised over, e.g. {D}.
  KILN_ARG(Shape, normalized_shape);
  KILN_ARG(double, eps) = 1e-5;
  /// Learnable per-element "weight" (ones) and "bias" (zeros).
  KILN_ARG(bool, elementwise_affine) = true;
};

/// Ba et al. (2016): y = (x − mean) / √(var + eps) · weight + bias over the trailing dims.
///   x: (*, D...)  weight, bias: normalized_shape  y: like x
class LayerNorm : public Module {
 public:
  using Module::forward;
  explicit LayerNorm(LayerNormOptions options);
  Tensor forward(const Tensor& x) override;
  void reset_parameters(Generator* gen = nullptr) override;
  std::string extra_repr() const override;

  const LayerNormOptions& options() const { return options_; }

  Tensor weight;  // normalized_shape, or undefined
  Tensor bias;    // normalized_shape, or undefined

 private:
  LayerNormOptions options_;
};

struct BatchNormOptions {
  explicit BatchNormOptions(int64_t num_features) : num_features_(num_features) {}
  KILN_ARG(int64_t, num_features);
  KILN_ARG(double, eps) = 1e-5;
  /// running = (1 − momentum)·running + momentum·batch; nullopt = cumulative average
  /// (1/num_batches).
  KILN_ARG(std::optional<double>, momentum) = 0.1;
  /// Learnable "weight" (ones) and "bias" (zeros).
  KILN_ARG(bool, affine) = true;
  /// Keep running_mean / running_var / num_batches_tracked buffers and use them in eval mode.
  KILN_ARG(bool, track_running_stats) = true;
};

/// Ioffe & Szegedy (2015), normalising each channel over the batch (and spatial) dims. Training
/// mode uses batch statistics (biased variance) and updates the running ones (unbiased variance),
/// as PyTorch; eval mode uses the running statistics. Buffers: running_mean (C), running_var (C),
/// num_batches_tracked (int64 scalar).
class BatchNorm : public Module {
 public:
  using Module::forward;
  /// Any input (B, C, *) (Keras' BatchNormalization); BatchNorm1d / BatchNorm2d check the rank.
  explicit BatchNorm(BatchNormOptions options) : BatchNorm("BatchNorm", options, {}) {}
  Tensor forward(const Tensor& x) override;
  void reset_parameters(Generator* gen = nullptr) override;
  /// running_mean ← 0, running_var ← 1, num_batches_tracked ← 0.
  void reset_running_stats();
  std::string extra_repr() const override;

  Tensor weight, bias;                                    // (C), or undefined
  Tensor running_mean, running_var, num_batches_tracked;  // (C), (C), () int64; or undefined

 protected:
  BatchNorm(std::string type_name, BatchNormOptions options, std::vector<int64_t> allowed_dims);

 private:
  BatchNormOptions options_;
  std::vector<int64_t> allowed_dims_;
};

/// x: (B, C) or (B, C, L)
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(BatchNormOptions options) : BatchNorm("BatchNorm1d", options, {2, 3}) {}
};

/// x: (B, C, H, W)
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(BatchNormOptions options) : BatchNorm("BatchNorm2d", options, {4}) {}
};

}  // namespace kiln::nn
