#pragma once
// MultiheadAttention (Vaswani et al., 2017, §3.2.2), parameter-compatible with
// torch.nn.MultiheadAttention. Legend: B = batch, T = target (query) length, S = source (key)
// length, E = embed_dim, H = heads, d = E / H.
#include "kiln/nn/linear.h"
#include "kiln/nn/module.h"
#include "kiln/nn/options.h"

namespace kiln::nn {

struct MultiheadAttentionOptions {
  MultiheadAttentionOptions(int64_t embed_dim, int64_t num_heads)
      : embed_dim_(embed_dim), num_heads_(num_heads) {}
  KILN_ARG(int64_t, embed_dim);
  KILN_ARG(int64_t, num_heads);
  /// Dropout on the attention weights (training only).
  KILN_ARG(double, dropout) = 0.0;
  /// in_proj_bias and out_proj.bias.
  KILN_ARG(bool, bias) = true;
  /// true: inputs and output are (B, T, E); false (PyTorch's default): (T, B, E).
  KILN_ARG(bool, batch_first) = false;
  /// Random source for attention dropout (nullptr = the default generator).
  KILN_ARG(Generator*, generator) = nullptr;
};

/// y = concat_h(softmax(q_h·k_hᵀ/√d + mask)·v_h)·W_oᵀ + b_o with [q; k; v] = x·W_inᵀ + b_in.
///   query: (B, T, E)  key, value: (B, S, E)  (or (T, B, E) / (S, B, E) unless batch_first; or
///   unbatched (T, E) / (S, E))  ->  y: like query. key_padding_mask: (B, S), bool (true = ignore
///   that key) or float (added to the scores). attn_mask: (T, S) or (B·H, T, S), bool (true = not
///   allowed to attend) or float (added).
/// Parameters as PyTorch: in_proj_weight (3E, E), in_proj_bias (3E), out_proj.weight (E, E),
/// out_proj.bias (E) — PyTorch state_dicts load directly. Default init as PyTorch: xavier_uniform
/// on in_proj_weight, zero biases, out_proj.weight as Linear's. Attention weights are not returned
/// (the fused scaled_dot_product_attention computes the output only). A query row whose keys are
/// all masked gives NaN, as in PyTorch.
class MultiheadAttention : public Module {
 public:
  explicit MultiheadAttention(MultiheadAttentionOptions options);
  /// Self-attention: forward(x, x, x).
  Tensor forward(const Tensor& x) override;
  /// inputs = {query, key, value, key_padding_mask, attn_mask}; the last two may be omitted or
  /// undefined.
  Tensor forward(const std::vector<Tensor>& inputs) override;
  Tensor forward(const Tensor& query, const Tensor& key, const Tensor& value,
                 const Tensor& key_padding_mask = {}, const Tensor& attn_mask = {});
  void reset_parameters(Generator* gen = nullptr) override;
  std::string extra_repr() const override;
  const MultiheadAttentionOptions& options() const { return options_; }

  Tensor in_proj_weight;             // (3E, E): rows [W_q; W_k; W_v]
  Tensor in_proj_bias;               // (3E) or undefined
  std::shared_ptr<Linear> out_proj;  // E -> E

 private:
  MultiheadAttentionOptions options_;
};

}  // namespace kiln::nn
