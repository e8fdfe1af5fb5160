#include "kiln/nn/transformer.h"

#include "kiln/tensor/error.h"

namespace kiln::nn {

TransformerEncoderLayer::TransformerEncoderLayer(TransformerEncoderLayerOptions options)
    : Module("TransformerEncoderLayer"), options_(std::move(options)) {
  const auto& o = options_;
  KILN_CHECK(o.activation() == "relu" || o.activation() == "gelu",
             "TransformerEncoderLayer: activation must be \"relu\" or \"gelu\", got \"{}\"",
             o.activation());
  KILN_CHECK(o.dim_feedforward() > 0,
             "TransformerEncoderLayer: dim_feedforward must be positive, got {}",
             o.dim_feedforward());
  self_attn = register_module("self_attn", std::make_shared<MultiheadAttention>(
                                               MultiheadAttentionOptions(o.d_model(), o.nhead())
                                                   .dropout(o.dropout())
                                                   .batch_first(o.batch_first())
                                                   .generator(o.generator())));
  linear1 = register_module(
      "linear1", std::make_shared<Linear>(LinearOptions(o.d_model(), o.dim_feedforward())));
  dropout = register_module(
      "dropout", std::make_shared<Dropout>(DropoutOptions(o.dropout()).generator(o.generator())));
  linear2 = register_module(
      "linear2", std::make_shared<Linear>(LinearOptions(o.dim_feedforward(), o.d_model())));
  norm1 = register_module(
      "norm1", std::make_shared<LayerNorm>(LayerNormOptions(o.d_model()).eps(o.layer_norm_eps())));
  norm2 = register_module(
      "norm2", std::make_shared<LayerNorm>(LayerNormOptions(o.d_model()).eps(o.layer_norm_eps())));
  dropout1 = register_module(
      "dropout1", std::make_shared<Dropout>(DropoutOptions(o.dropout()).generator(o.generator())));
  dropout2 = register_module(
      "dropout2", std::make_shared<Dropout>(DropoutOptions(o.dropout()).generator(o.generator())));
}

Tensor TransformerEncoderLayer::forward(const std::vector<Tensor>& inputs) {
  KILN_CHECK(!inputs.empty() && inputs.size() <= 3,
             "{}: expected inputs {{src[, src_mask[, src_key_padding_mask]]}}, got {} tensors",
             where(), inputs.size());
  return forward(inputs[0], inputs.size() > 1 ? inputs[1] : Tensor(),
                 inputs.size() > 2 ? inputs[2] : Tensor());
}

Tensor TransformerEncoderLayer::self_attention_block(const Tensor& x, const Tensor& mask,
                                                     const Tensor& key_padding_mask) {
  return dropout1->forward(self_attn->forward(x, x, x, key_padding_mask, mask));
}

Tensor TransformerEncoderLayer::feed_forward_block(const Tensor& x) {
  Tensor h = linear1->forward(x);
  h = options_.activation() == "relu" ? relu(h) : gelu(h);
  return dropout2->forward(linear2->forward(dropout->forward(h)));
}

Tensor TransformerEncoderLayer::forward(const Tensor& src, const Tensor& src_mask,
                                        const Tensor& src_key_padding_mask) {
  KILN_CHECK_SHAPE(
      src.defined() && (src.dim() == 3 || src.dim() == 2) && src.size(-1) == options_.d_model(),
      "{}: src must be {} (or unbatched (T, E)) with E = d_model = {}, got shape {}", where(),
      options_.batch_first() ? "(B, T, E)" : "(T, B, E)", options_.d_model(),
      src.defined() ? shape_str(src.shape()) : "undefined");
  Tensor x = src;
  if (options_.norm_first()) {
    x = add(x, self_attention_block(norm1->forward(x), src_mask, src_key_padding_mask));
    x = add(x, feed_forward_block(norm2->forward(x)));
  } else {
    x = norm1->forward(add(x, self_attention_block(x, src_mask, src_key_padding_mask)));
    x = norm2->forward(add(x, feed_forward_block(x)));
  }
  return x;
}

TransformerEncoder::TransformerEncoder(TransformerEncoderOptions options)
    : Module("TransformerEncoder"), options_(std::move(options)) {
  KILN_CHECK(options_.num_layers() > 0, "TransformerEncoder: num_layers must be positive, got {}",
             options_.num_layers());
  layers = register_module("layers", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < options_.num_layers(); ++i)
    layers->push_back(std::make_shared<TransformerEncoderLayer>(options_.layer()));
  if (options_.final_norm())
    norm = register_module(
        "norm",
        std::make_shared<LayerNorm>(
            LayerNormOptions(options_.layer().d_model()).eps(options_.layer().layer_norm_eps())));
  name_parameters();
}

Tensor TransformerEncoder::forward(const std::vector<Tensor>& inputs) {
  KILN_CHECK(!inputs.empty() && inputs.size() <= 3,
             "{}: expected inputs {{src[, mask[, src_key_padding_mask]]}}, got {} tensors", where(),
             inputs.size());
  return forward(inputs[0], inputs.size() > 1 ? inputs[1] : Tensor(),
                 inputs.size() > 2 ? inputs[2] : Tensor());
}

Tensor TransformerEncoder::forward(const Tensor& src, const Tensor& mask,
                                   const Tensor& src_key_padding_mask) {
  Tensor x = src;
  for (const auto& layer : *layers)
    x = std::static_pointer_cast<TransformerEncoderLayer>(layer)->forward(x, mask,
                                                                          src_key_padding_mask);
  return norm ? norm->forward(x) : x;
}

}  // namespace kiln::nn
