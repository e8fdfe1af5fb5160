#pragma once
// The NAS-BERT search space (Xu et al., "NAS-BERT: Task-Agnostic and Adaptive-Size BERT Compression
// with Neural Architecture Search", KDD 2021) as composable encoder layers, the encoder built from
// a config string, and the classification / regression heads the text trainers train.
//
//   EncoderConfig cfg = EncoderConfig::preset("nasbert-5m", /*vocab_size=*/50261, /*padding_id=*/
//                                             50259);
//   auto clf = std::make_shared<TextClassifier>(cfg, /*num_classes=*/2);
//   Tensor logits = clf->forward(ids);   // ids: (B, T) int64, right-padded with padding_id
//   Tensor same = clf->forward(ids, attention_mask);   // (B, T) int64, 1 = token, 0 = padding
//
// Legend: B = batch, T = tokens, E = embedding dim, C = hidden size, K = classes, k = kernel size.
//
// Layer string: whitespace-separated tokens, '|' allowed as a visual group separator (ignored):
//   M   multi-head self-attention sub-layer   x = LN(x + dropout(MHA(x)))
//   F   feed-forward sub-layer (ffn_dim)      x = LN(x + dropout(W2·dropout(GELU(W1·x))))
//   Sk  separable convolution layer, k in {3, 5, 7}: two sub-layers, each
//       x = LN(x + dropout(GELU(pointwise(depthwise_k(x)))))
//   I   identity
// Every sub-layer is post-LN, as in BERT and NAS-BERT. A "bert" encoder is the same machinery with
// layers "M F M F ..." and embed_dim == hidden (no embedding projection).
//
// Padding: sequences are right-padded with padding_id. The padding mask (ids == padding_id) is the
// key padding mask of every attention sub-layer, and padded positions are zeroed before every
// depthwise convolution, so a real token's output does not depend on how many pads follow it (the
// convolution sees the same zeros it would see from its own zero padding).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/io/json.h"
#include "kiln/nn/attention.h"
#include "kiln/nn/container.h"
#include "kiln/nn/conv.h"
#include "kiln/nn/dropout.h"
#include "kiln/nn/linear.h"
#include "kiln/nn/module.h"
#include "kiln/nn/normalization.h"

namespace kiln::text {

/// What an encoder is built from. Presets: EncoderConfig::preset(name, vocab_size, padding_id).
struct EncoderConfig {
  int64_t vocab_size = 50261;  // tokenizer ids (GPT-2's 50257 + <s> </s> <pad> <mask>)
  int64_t embed_dim = 64;      // E: token and position embedding width
  int64_t hidden = 192;        // C: width of every layer (a Linear E -> C follows when E != C)
  std::string layers = "S3 S7 M | S7 S7 M | S3 M S7 | S5 M S3";
  int64_t heads = 3;            // attention heads (C % heads == 0)
  int64_t ffn_dim = 0;          // F layers' inner width; 0 = 4·C
  int64_t max_positions = 512;  // learned position embeddings (T <= max_positions)
  double dropout = 0.1;         // every dropout: embeddings, sub-layer outputs, attention, FFN
  int64_t padding_id = 1;       // the pad token id (its embedding row is zero and gets no grad)
  double layer_norm_eps = 1e-5;

  /// Named presets:
  ///   nasbert-5m   E 64,  C 192, "S3 S7 M | S7 S7 M | S3 M S7 | S5 M S3", 3 heads, no FFN (the
  ///                ML.NET / NAS-BERT 5M architecture).
  ///   nasbert-10m  E 128, C 256, 4 heads, "S3 M F | S5 M F | S7 M F | S3 M F".
  ///   nasbert-30m  E 256, C 512, 8 heads, "S3 M F | S5 M F | S7 M F | S3 M F".
  ///   nasbert-60m  E 512, C 768, 12 heads, "S3 M F | S5 M F | S7 M F | S3 M F".
  ///   bert         E = C = 256, 4 × "M F", 4 heads, FFN 1024 (post-LN BERT; change the fields to
  ///                configure it, e.g. with EncoderConfig::bert()).
  /// The 10m/30m/60m rows are Kiln's reading of the paper's Table 10 (hidden sizes and the mix of
  /// MHA / FFN / SepConv per 12-layer stack sized to the named budget with a 50k vocabulary); the
  /// per-layer choices of the paper's searched models are not reproduced exactly.
  /// Throws kiln::Error listing the preset names when `name` is unknown.
  static EncoderConfig preset(std::string_view name, int64_t vocab_size, int64_t padding_id);
  /// A post-LN BERT encoder: num_layers × "M F", E = C = hidden.
  static EncoderConfig bert(int64_t vocab_size, int64_t padding_id, int64_t hidden = 256,
                            int64_t num_layers = 4, int64_t heads = 4, int64_t ffn_dim = 1024);
  /// The names preset() accepts.
  static std::vector<std::string> preset_names();

  /// The layer tokens ("S3", "M", ...) with '|' dropped; throws naming a bad token.
  std::vector<std::string> layer_tokens() const;
  /// Checks every field (sizes > 0, C % heads == 0, tokens valid); throws naming the field.
  void validate() const;

  json::Value to_json() const;
  /// Reads to_json() output (missing fields keep their defaults).
  static EncoderConfig from_json(const json::Value& v);
  bool operator==(const EncoderConfig&) const = default;
};

// ---------------------------------------------------------------- functional forms

/// One separable-convolution sub-layer as a function of its parameters (the module calls this; the
/// tests gradcheck it in float64):
///   h = x ⊙ keep                                   (zero the pads)
///   h = depthwise_conv1d_k(h)                       (per channel, "same" zero padding)
///   y = LN(x + dropout(GELU(h·W_pwᵀ + b_pw)))
/// x: (B, T, C)  keep: (B, T, 1) 1 = real token, 0 = pad, or undefined  dw_weight: (C, 1, k)
/// dw_bias: (C)  pw_weight: (C, C)  pw_bias: (C)  ln_weight, ln_bias: (C)  ->  (B, T, C).
Tensor sep_conv_sublayer(const Tensor& x, const Tensor& keep, const Tensor& dw_weight,
                         const Tensor& dw_bias, const Tensor& pw_weight, const Tensor& pw_bias,
                         const Tensor& ln_weight, const Tensor& ln_bias, double dropout_p = 0.0,
                         bool training = false, double eps = 1e-5, Generator* gen = nullptr);

// ---------------------------------------------------------------- layers

/// The layers of the search space share this forward.
///   x: (B, T, C)  pad_mask: (B, T) bool, true = pad, or undefined  keep: (B, T, 1) float, 1 =
///   real token, or undefined  ->  (B, T, C)
class EncoderLayer : public nn::Module {
 public:
  using Module::forward;
  explicit EncoderLayer(std::string type_name) : Module(std::move(type_name)) {}
  Tensor forward(const Tensor& x) override { return forward(x, Tensor(), Tensor()); }
  virtual Tensor forward(const Tensor& x, const Tensor& pad_mask, const Tensor& keep) = 0;
  /// True when each output position depends only on the same input position (F, I), so the layer
  /// may run on any subset of the rows.
  virtual bool position_wise() const { return false; }
  /// The first position's output alone: forward(x, pad_mask, keep) narrowed to position 0,
  ///   x: (B, T, C)  ->  (B, 1, C).
  /// The default runs the whole layer and narrows; layers override it to skip the other rows.
  virtual Tensor forward_first(const Tensor& x, const Tensor& pad_mask, const Tensor& keep);
};

/// "M": x = LN(x + dropout(MHA(x, x, x, key_padding_mask))).
/// Children: self_attn (PyTorch MultiheadAttention names), dropout, norm.
class AttentionLayer : public EncoderLayer {
 public:
  using EncoderLayer::forward;
  AttentionLayer(int64_t hidden, int64_t heads, double dropout, double eps = 1e-5);
  Tensor forward(const Tensor& x, const Tensor& pad_mask, const Tensor& keep) override;
  /// The query is position 0 alone; keys and values are every position.
  Tensor forward_first(const Tensor& x, const Tensor& pad_mask, const Tensor& keep) override;
  std::shared_ptr<nn::MultiheadAttention> self_attn;
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::LayerNorm> norm;
};

/// "F": x = LN(x + dropout(fc2(dropout(GELU(fc1(x)))))).   fc1: C -> ffn_dim, fc2: ffn_dim -> C.
class FeedForwardLayer : public EncoderLayer {
 public:
  using EncoderLayer::forward;
  FeedForwardLayer(int64_t hidden, int64_t ffn_dim, double dropout, double eps = 1e-5);
  Tensor forward(const Tensor& x, const Tensor& pad_mask, const Tensor& keep) override;
  bool position_wise() const override { return true; }
  std::shared_ptr<nn::Linear> fc1, fc2;
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::LayerNorm> norm;
};

/// "Sk": two separable-convolution sub-layers (see sep_conv_sublayer). Children per sub-layer i:
/// depthwise{i} (Conv1d C -> C, groups C, kernel k), pointwise{i} (Linear C -> C: a kernel-1
/// Conv1d), norm{i} (LayerNorm C).
class SepConvLayer : public EncoderLayer {
 public:
  using EncoderLayer::forward;
  SepConvLayer(int64_t hidden, int64_t kernel_size, double dropout, double eps = 1e-5);
  Tensor forward(const Tensor& x, const Tensor& pad_mask, const Tensor& keep) override;
  std::string extra_repr() const override;
  int64_t kernel_size() const { return kernel_size_; }
  std::shared_ptr<nn::Conv1d> depthwise[2];
  std::shared_ptr<nn::Linear> pointwise[2];
  std::shared_ptr<nn::LayerNorm> norm[2];

 private:
  int64_t kernel_size_;
  double dropout_p_;
  double eps_;
};

/// "I": y = x.
class IdentityLayer : public EncoderLayer {
 public:
  using EncoderLayer::forward;
  IdentityLayer() : EncoderLayer("IdentityLayer") {}
  Tensor forward(const Tensor& x, const Tensor&, const Tensor&) override { return x; }
  bool position_wise() const override { return true; }
};

/// Builds the layer for one token ("M", "F", "S3", "S5", "S7", "I").
std::shared_ptr<EncoderLayer> make_encoder_layer(const std::string& token,
                                                 const EncoderConfig& config);

// ---------------------------------------------------------------- encoder and heads

/// Embeddings then the configured layers:
///   h = dropout(LN(tok_emb[ids] + pos_emb[0..T−1]))          (B, T, E)
///   h = h·W_projᵀ + b_proj                                   (B, T, C), only when E != C
///   h = layer_n(...layer_0(h))                               (B, T, C)
/// Children: token_embedding (V, E), position_embedding (max_positions, E), embedding_norm,
/// embedding_proj (when E != C), dropout, layers (layers.0 ...).
class NasBertEncoder : public nn::Module {
 public:
  using Module::forward;
  explicit NasBertEncoder(EncoderConfig config);
  /// ids: (B, T) int64, right-padded with padding_id  ->  (B, T, C). The padding mask is
  /// (ids == padding_id).
  Tensor forward(const Tensor& ids) override;
  /// ids: (B, T) int64, attention_mask: (B, T) int64 (or bool), 1 = real token, 0 = padding (the
  /// Hugging Face convention)  ->  (B, T, C). Equals forward(ids) when attention_mask ==
  /// (ids != padding_id). This is the path ONNX export traces (kiln/text/onnx_export.h).
  Tensor forward(const Tensor& ids, const Tensor& attention_mask);
  /// inputs = {ids (B, T), attention_mask (B, T)}; a one-element list (or an undefined mask)
  /// means forward(ids).
  Tensor forward(const std::vector<Tensor>& inputs) override;
  /// The first ([CLS]) token's final hidden state, ids (and attention_mask) as above  ->  (B, C).
  /// Equals select(forward(ids), 1, 0) but skips work no other output needs: layers after the
  /// last position-mixing one (attention or convolution) run on the first row alone, and when that
  /// layer is attention it computes the query for the first row alone. For a post-LN BERT of L
  /// layers that is about 1/(L + 1) less work; a stack ending in a convolution saves nothing.
  Tensor first_token(const Tensor& ids);
  Tensor first_token(const Tensor& ids, const Tensor& attention_mask);
  const EncoderConfig& config() const { return config_; }

  std::shared_ptr<nn::Embedding> token_embedding, position_embedding;
  std::shared_ptr<nn::LayerNorm> embedding_norm;
  std::shared_ptr<nn::Linear> embedding_proj;  // null when E == C
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::ModuleList> layers;

 private:
  // Embeddings and layers with the padding mask given: pad_mask (B, T) bool, true = pad.
  // first_only: return (B, 1, C), the first position alone (see first_token).
  Tensor forward_with_pad_mask(const Tensor& ids, const Tensor& pad_mask, bool first_only = false);
  Tensor checked_pad_mask(const Tensor& ids, const Tensor& attention_mask);

  EncoderConfig config_;
};

/// Checks ids for the encoder: (B, T) int64, 1 <= T <= max_positions. `op` names the caller.
void check_token_ids(const Tensor& ids, const EncoderConfig& config, const char* op);

/// Encoder -> the first token's hidden state -> dropout -> Linear(C, num_outputs).
///   ids: (B, T) int64  ->  (B, K) logits (classification) or (B) scores (regression, K = 1).
/// The encoder runs through NasBertEncoder::first_token, so the last layers compute only the rows
/// the head reads; logits and gradients equal those of the full encoder output.
/// Children: encoder, dropout, classifier. A fresh head has the default Linear init.
class TextClassifier : public nn::Module {
 public:
  using Module::forward;
  /// num_classes >= 2 for classification; regression = true gives one score per row.
  TextClassifier(EncoderConfig config, int64_t num_classes, bool regression = false);
  Tensor forward(const Tensor& ids) override;
  /// ids: (B, T) int64, attention_mask: (B, T) int64 (or bool), 1 = real token, 0 = padding  ->
  /// (B, K) or (B); equals forward(ids) when attention_mask == (ids != padding_id).
  Tensor forward(const Tensor& ids, const Tensor& attention_mask);
  /// inputs = {ids, attention_mask} (see above); {ids} alone means forward(ids).
  Tensor forward(const std::vector<Tensor>& inputs) override;
  int64_t num_outputs() const { return num_outputs_; }
  bool regression() const { return regression_; }

  std::shared_ptr<NasBertEncoder> encoder;
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::Linear> classifier;

 private:
  Tensor head(const Tensor& first);  // (B, C) -> (B, K) or (B)
  int64_t num_outputs_;
  bool regression_;
};

/// The regression head for sentence similarity: TextClassifier(config, 1, regression = true).
std::shared_ptr<TextClassifier> make_text_regressor(const EncoderConfig& config);

}  // namespace kiln::text
