#pragma once
// TransformerEncoderLayer and TransformerEncoder (Vaswani et al., 2017), parameter-compatible with
// torch.nn. Legend: B = batch, T = tokens, E = d_model, S = T (self-attention).
#include "kiln/nn/attention.h"
#include "kiln/nn/container.h"
#include "kiln/nn/dropout.h"
#include "kiln/nn/linear.h"
#include "kiln/nn/normalization.h"

namespace kiln::nn {

struct TransformerEncoderLayerOptions {
  TransformerEncoderLayerOptions(int64_t d_model, int64_t nhead)
      : d_model_(d_model), nhead_(nhead) {}
  KILN_ARG(int64_t, d_model);
  KILN_ARG(int64_t, nhead);
  KILN_ARG(int64_t, dim_feedforward) = 2048;
  KILN_ARG(double, dropout) = 0.1;
  /// "relu" or "gelu".
  KILN_ARG(std::string, activation) = "relu";
  KILN_ARG(double, layer_norm_eps) = 1e-5;
  /// true: (B, T, E); false (PyTorch's default): (T, B, E).
  KILN_ARG(bool, batch_first) = false;
  /// Pre-LN (Xiong et al., 2020): x + SA(LN(x)); false = post-LN as in the original paper: LN(x +
  /// SA(x)).
  KILN_ARG(bool, norm_first) = false;
  /// Random source for every dropout in the layer (nullptr = the default generator).
  KILN_ARG(Generator*, generator) = nullptr;
};

/// Self-attention then a position-wise feed-forward block, each with a residual connection:
///   post-LN: x = norm1(x + SA(x));  x = norm2(x + FF(x))
///   pre-LN:  x = x + SA(norm1(x));  x = x + FF(norm2(x))
///   SA(x) = dropout1(self_attn(x, x, x, masks));  FF(x) =
///   dropout2(linear2(dropout(act(linear1(x))))) src: (T, B, E) or (B, T, E) with batch_first ->
///   same shape
/// Children as PyTorch: self_attn, linear1, dropout, linear2, norm1, norm2, dropout1, dropout2.
class TransformerEncoderLayer : public Module {
 public:
  explicit TransformerEncoderLayer(TransformerEncoderLayerOptions options);
  Tensor forward(const Tensor& src) override { return forward(src, Tensor(), Tensor()); }
  /// inputs = {src, src_mask, src_key_padding_mask} (PyTorch's order); masks may be omitted or
  /// undefined.
  Tensor forward(const std::vector<Tensor>& inputs) override;
  /// src_mask: (T, T) or (B·H, T, T), bool or additive; src_key_padding_mask: (B, T), true =
  /// padding.
  Tensor forward(const Tensor& src, const Tensor& src_mask, const Tensor& src_key_padding_mask);
  const TransformerEncoderLayerOptions& options() const { return options_; }

  std::shared_ptr<MultiheadAttention> self_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2;
  std::shared_ptr<LayerNorm> norm1, norm2;

 private:
  Tensor self_attention_block(const Tensor& x, const Tensor& mask, const Tensor& key_padding_mask);
  Tensor feed_forward_block(const Tensor& x);
  TransformerEncoderLayerOptions options_;
};

struct TransformerEncoderOptions {
  TransformerEncoderOptions(TransformerEncoderLayerOptions layer, int64_t num_layers)
      : layer_(std::move(layer)), num_layers_(num_layers) {}
  /// Every layer is built from these options (PyTorch deep-copies one layer; the result is the
  /// same).
  KILN_ARG(TransformerEncoderLayerOptions, layer);
  KILN_ARG(int64_t, num_layers);
  /// A final LayerNorm(d_model) named "norm" (usual with pre-LN layers).
  KILN_ARG(bool, final_norm) = false;
};

/// num_layers encoder layers in sequence, then the optional final norm. Children: layers.0 ...
/// layers.{N−1}, norm — PyTorch's names.
class TransformerEncoder : public Module {
 public:
  explicit TransformerEncoder(TransformerEncoderOptions options);
  Tensor forward(const Tensor& src) override { return forward(src, Tensor(), Tensor()); }
  /// inputs = {src, mask, src_key_padding_mask}.
  Tensor forward(const std::vector<Tensor>& inputs) override;
  Tensor forward(const Tensor& src, const Tensor& mask, const Tensor& src_key_padding_mask);

  std::shared_ptr<ModuleList> layers;
  std::shared_ptr<LayerNorm> norm;  // or null

 private:
  TransformerEncoderOptions options_;
};

}  // namespace kiln::nn
