#include "kiln/text/nasbert.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <sstream>

#include "kiln/tensor/error.h"

namespace kiln::text {

// ---------------------------------------------------------------- config

namespace {

// The 10m / 30m / 60m stacks: each group is a SepConv layer, an attention and a feed-forward
// sub-layer, so the model keeps NAS-BERT's mix of local (convolution) and global (attention)
// mixing with BERT's FFN capacity.
constexpr const char* kMixedStack = "S3 M F | S5 M F | S7 M F | S3 M F";

bool is_sep_conv(const std::string& token) {
  return token == "S3" || token == "S5" || token == "S7";
}

}  // namespace

std::vector<std::string> EncoderConfig::preset_names() {
  return {"nasbert-5m", "nasbert-10m", "nasbert-30m", "nasbert-60m", "bert"};
}

EncoderConfig EncoderConfig::preset(std::string_view name, int64_t vocab_size, int64_t padding_id) {
  EncoderConfig c;
  c.vocab_size = vocab_size;
  c.padding_id = padding_id;
  if (name == "nasbert-5m") return c;  // the defaults
  if (name == "bert") return bert(vocab_size, padding_id);
  c.layers = kMixedStack;
  if (name == "nasbert-10m") {
    c.embed_dim = 128, c.hidden = 256, c.heads = 4;
  } else if (name == "nasbert-30m") {
    c.embed_dim = 256, c.hidden = 512, c.heads = 8;
  } else if (name == "nasbert-60m") {
    c.embed_dim = 512, c.hidden = 768, c.heads = 12;
  } else {
    KILN_CHECK(false, "EncoderConfig::preset: unknown architecture '{}' (known: {})", name,
               fmt::join(preset_names(), ", "));
  }
  return c;
}

EncoderConfig EncoderConfig::bert(int64_t vocab_size, int64_t padding_id, int64_t hidden,
                                  int64_t num_layers, int64_t heads, int64_t ffn_dim) {
  EncoderConfig c;
  c.vocab_size = vocab_size;
  c.padding_id = padding_id;
  c.embed_dim = hidden;
  c.hidden = hidden;
  c.heads = heads;
  c.ffn_dim = ffn_dim;
  c.layers.clear();
  for (int64_t i = 0; i < num_layers; ++i) c.layers += i == 0 ? "M F" : " | M F";
  return c;
}

std::vector<std::string> EncoderConfig::layer_tokens() const {
  std::istringstream in(layers);
  std::vector<std::string> tokens;
  std::string t;
  while (in >> t) {
    if (t == "|") continue;
    KILN_CHECK(
        t == "M" || t == "F" || t == "I" || is_sep_conv(t),
        "EncoderConfig: unknown layer '{}' in layers \"{}\" (expected M, F, S3, S5, S7 or I)", t,
        layers);
    tokens.push_back(t);
  }
  return tokens;
}

void EncoderConfig::validate() const {
  KILN_CHECK(vocab_size > 0, "EncoderConfig: vocab_size must be positive, got {}", vocab_size);
  KILN_CHECK(embed_dim > 0 && hidden > 0,
             "EncoderConfig: embed_dim and hidden must be positive, got {} and {}", embed_dim,
             hidden);
  KILN_CHECK(heads > 0 && hidden % heads == 0,
             "EncoderConfig: hidden {} must be a multiple of heads {}", hidden, heads);
  KILN_CHECK(ffn_dim >= 0, "EncoderConfig: ffn_dim must be >= 0 (0 = 4·hidden), got {}", ffn_dim);
  KILN_CHECK(max_positions > 0, "EncoderConfig: max_positions must be positive, got {}",
             max_positions);
  KILN_CHECK(dropout >= 0.0 && dropout < 1.0, "EncoderConfig: dropout must lie in [0, 1), got {}",
             dropout);
  KILN_CHECK(padding_id >= 0 && padding_id < vocab_size,
             "EncoderConfig: padding_id {} is outside the vocabulary [0, {})", padding_id,
             vocab_size);
  layer_tokens();
}

json::Value EncoderConfig::to_json() const {
  json::Value v = json::Value::object();
  v["vocab_size"] = vocab_size;
  v["embed_dim"] = embed_dim;
  v["hidden"] = hidden;
  v["layers"] = layers;
  v["heads"] = heads;
  v["ffn_dim"] = ffn_dim;
  v["max_positions"] = max_positions;
  v["dropout"] = dropout;
  v["padding_id"] = padding_id;
  v["layer_norm_eps"] = layer_norm_eps;
  return v;
}

EncoderConfig EncoderConfig::from_json(const json::Value& v) {
  EncoderConfig c;
  c.vocab_size = v.get_or<int64_t>("vocab_size", c.vocab_size);
  c.embed_dim = v.get_or<int64_t>("embed_dim", c.embed_dim);
  c.hidden = v.get_or<int64_t>("hidden", c.hidden);
  c.layers = v.get_or<std::string>("layers", c.layers);
  c.heads = v.get_or<int64_t>("heads", c.heads);
  c.ffn_dim = v.get_or<int64_t>("ffn_dim", c.ffn_dim);
  c.max_positions = v.get_or<int64_t>("max_positions", c.max_positions);
  c.dropout = v.get_or<double>("dropout", c.dropout);
  c.padding_id = v.get_or<int64_t>("padding_id", c.padding_id);
  c.layer_norm_eps = v.get_or<double>("layer_norm_eps", c.layer_norm_eps);
  return c;
}

// ---------------------------------------------------------------- functional form

Tensor sep_conv_sublayer(const Tensor& x, const Tensor& keep, const Tensor& dw_weight,
                         const Tensor& dw_bias, const Tensor& pw_weight, const Tensor& pw_bias,
                         const Tensor& ln_weight, const Tensor& ln_bias, double dropout_p,
                         bool training, double eps, Generator* gen) {
  KILN_CHECK_SHAPE(x.dim() == 3, "sep_conv_sublayer: x must be (B, T, C), got {}", x.shape());
  const int64_t C = x.size(2);
  KILN_CHECK_SHAPE(
      dw_weight.dim() == 3 && dw_weight.size(0) == C && dw_weight.size(1) == 1,
      "sep_conv_sublayer: depthwise weight {} does not match x {} (expected (C, 1, k))",
      dw_weight.shape(), x.shape());
  const int64_t k = dw_weight.size(2);
  KILN_CHECK_SHAPE(k % 2 == 1, "sep_conv_sublayer: kernel size must be odd, got {}", k);
  // (B, T, C) -> (B, C, T) for the convolution; pads zeroed so they look like the conv's padding.
  // The transposes are views: the depthwise kernel runs on the (B, T, C) data channels-last and
  // returns its output that way, so transposing back gives a contiguous (B, T, C) again.
  Tensor h = keep.defined() ? mul(x, keep) : x;
  h = conv1d(transpose(h, 1, 2), dw_weight, dw_bias, /*stride=*/1, /*padding=*/k / 2,
             /*dilation=*/1, /*groups=*/C);  // (B, C, T), channels-last
  h = transpose(h, 1, 2);                    // (B, T, C), contiguous
  h = gelu(linear(h, pw_weight, pw_bias));   // pointwise (kernel-1) convolution
  return dropout_add_layer_norm(x, h, dropout_p, training, gen, {C}, ln_weight, ln_bias, eps);
}

// ---------------------------------------------------------------- layers

namespace {
// norm(x + drop(h)), the post-LN residual output: one fused pass while dropout is active
// (dropout_add_layer_norm), add + layer_norm otherwise.
Tensor residual_norm(const Tensor& x, const Tensor& h, const nn::Dropout& drop,
                     const nn::LayerNorm& norm) {
  return dropout_add_layer_norm(x, h, drop.options().p(), drop.is_training(),
                                drop.options().generator(), norm.options().normalized_shape(),
                                norm.weight, norm.bias, norm.options().eps());
}
}  // namespace

Tensor EncoderLayer::forward_first(const Tensor& x, const Tensor& pad_mask, const Tensor& keep) {
  return narrow(forward(x, pad_mask, keep), 1, 0, 1);
}

AttentionLayer::AttentionLayer(int64_t hidden, int64_t heads, double p, double eps)
    : EncoderLayer("AttentionLayer") {
  self_attn = register_module(
      "self_attn", std::make_shared<nn::MultiheadAttention>(
                       nn::MultiheadAttentionOptions(hidden, heads).dropout(p).batch_first(true)));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(p));
  norm = register_module("norm",
                         std::make_shared<nn::LayerNorm>(nn::LayerNormOptions(hidden).eps(eps)));
}

Tensor AttentionLayer::forward(const Tensor& x, const Tensor& pad_mask, const Tensor&) {
  Tensor a = self_attn->forward(x, x, x, pad_mask);  // (B, T, C)
  return residual_norm(x, a, *dropout, *norm);
}

Tensor AttentionLayer::forward_first(const Tensor& x, const Tensor& pad_mask, const Tensor&) {
  Tensor x0 = narrow(x, 1, 0, 1);                     // (B, 1, C)
  Tensor a = self_attn->forward(x0, x, x, pad_mask);  // (B, 1, C)
  return residual_norm(x0, a, *dropout, *norm);
}

FeedForwardLayer::FeedForwardLayer(int64_t hidden, int64_t ffn_dim, double p, double eps)
    : EncoderLayer("FeedForwardLayer") {
  fc1 = register_module("fc1", std::make_shared<nn::Linear>(nn::LinearOptions(hidden, ffn_dim)));
  fc2 = register_module("fc2", std::make_shared<nn::Linear>(nn::LinearOptions(ffn_dim, hidden)));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(p));
  norm = register_module("norm",
                         std::make_shared<nn::LayerNorm>(nn::LayerNormOptions(hidden).eps(eps)));
}

Tensor FeedForwardLayer::forward(const Tensor& x, const Tensor&, const Tensor&) {
  Tensor h = dropout->forward(gelu(fc1->forward(x)));  // (B, T, F)
  return residual_norm(x, fc2->forward(h), *dropout, *norm);
}

SepConvLayer::SepConvLayer(int64_t hidden, int64_t kernel_size, double p, double eps)
    : EncoderLayer("SepConvLayer"), kernel_size_(kernel_size), dropout_p_(p), eps_(eps) {
  for (int i = 0; i < 2; ++i) {
    const std::string s = std::to_string(i);
    depthwise[i] = register_module(
        "depthwise" + s, std::make_shared<nn::Conv1d>(nn::Conv1dOptions(hidden, hidden, kernel_size)
                                                          .groups(hidden)
                                                          .padding(kernel_size / 2)));
    pointwise[i] = register_module("pointwise" + s,
                                   std::make_shared<nn::Linear>(nn::LinearOptions(hidden, hidden)));
    norm[i] = register_module(
        "norm" + s, std::make_shared<nn::LayerNorm>(nn::LayerNormOptions(hidden).eps(eps)));
  }
}

Tensor SepConvLayer::forward(const Tensor& x, const Tensor&, const Tensor& keep) {
  Tensor h = x;
  for (int i = 0; i < 2; ++i) {
    h = sep_conv_sublayer(h, keep, depthwise[i]->weight, depthwise[i]->bias, pointwise[i]->weight,
                          pointwise[i]->bias, norm[i]->weight, norm[i]->bias, dropout_p_,
                          is_training(), eps_);
  }
  return h;
}

std::string SepConvLayer::extra_repr() const {
  return fmt::format("kernel_size={}", kernel_size_);
}

std::shared_ptr<EncoderLayer> make_encoder_layer(const std::string& token, const EncoderConfig& c) {
  if (token == "M") {
    return std::make_shared<AttentionLayer>(c.hidden, c.heads, c.dropout, c.layer_norm_eps);
  }
  if (token == "F") {
    const int64_t f = c.ffn_dim > 0 ? c.ffn_dim : 4 * c.hidden;
    return std::make_shared<FeedForwardLayer>(c.hidden, f, c.dropout, c.layer_norm_eps);
  }
  if (token == "I") return std::make_shared<IdentityLayer>();
  KILN_CHECK(is_sep_conv(token), "make_encoder_layer: unknown layer '{}'", token);
  return std::make_shared<SepConvLayer>(c.hidden, token[1] - '0', c.dropout, c.layer_norm_eps);
}

// ---------------------------------------------------------------- encoder

void check_token_ids(const Tensor& ids, const EncoderConfig& config, const char* op) {
  KILN_CHECK_SHAPE(ids.defined() && ids.dim() == 2, "{}: token ids must be (B, T), got {}", op,
                   ids.defined() ? fmt::format("{}", ids.shape()) : std::string("undefined"));
  KILN_CHECK_TYPE(ids.dtype() == kInt64, "{}: token ids must be int64, got {}", op,
                  dtype_name(ids.dtype()));
  KILN_CHECK_SHAPE(ids.size(1) >= 1 && ids.size(1) <= config.max_positions,
                   "{}: sequence length {} must lie in [1, max_positions = {}] (ids {})", op,
                   ids.size(1), config.max_positions, ids.shape());
}

NasBertEncoder::NasBertEncoder(EncoderConfig config)
    : Module("NasBertEncoder"), config_(std::move(config)) {
  config_.validate();
  const EncoderConfig& c = config_;
  token_embedding = register_module(
      "token_embedding",
      std::make_shared<nn::Embedding>(
          nn::EmbeddingOptions(c.vocab_size, c.embed_dim).padding_idx(c.padding_id)));
  position_embedding = register_module(
      "position_embedding",
      std::make_shared<nn::Embedding>(nn::EmbeddingOptions(c.max_positions, c.embed_dim)));
  embedding_norm = register_module(
      "embedding_norm",
      std::make_shared<nn::LayerNorm>(nn::LayerNormOptions(c.embed_dim).eps(c.layer_norm_eps)));
  if (c.embed_dim != c.hidden) {
    embedding_proj = register_module(
        "embedding_proj", std::make_shared<nn::Linear>(nn::LinearOptions(c.embed_dim, c.hidden)));
  }
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.dropout));
  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  for (const std::string& t : c.layer_tokens()) layers->push_back(make_encoder_layer(t, c));
  name_parameters();
}

Tensor NasBertEncoder::forward(const Tensor& ids) {
  check_token_ids(ids, config_, "NasBertEncoder");
  return forward_with_pad_mask(ids, eq(ids, static_cast<double>(config_.padding_id)));
}

Tensor NasBertEncoder::forward(const Tensor& ids, const Tensor& attention_mask) {
  if (!attention_mask.defined()) return forward(ids);
  return forward_with_pad_mask(ids, checked_pad_mask(ids, attention_mask));
}

Tensor NasBertEncoder::first_token(const Tensor& ids) {
  check_token_ids(ids, config_, "NasBertEncoder");
  return squeeze(forward_with_pad_mask(ids, eq(ids, static_cast<double>(config_.padding_id)), true),
                 1);
}

Tensor NasBertEncoder::first_token(const Tensor& ids, const Tensor& attention_mask) {
  if (!attention_mask.defined()) return first_token(ids);
  return squeeze(forward_with_pad_mask(ids, checked_pad_mask(ids, attention_mask), true), 1);
}

// (ids == pad) from a Hugging Face attention mask (1 = token, 0 = padding), after checking both.
Tensor NasBertEncoder::checked_pad_mask(const Tensor& ids, const Tensor& attention_mask) {
  check_token_ids(ids, config_, "NasBertEncoder");
  KILN_CHECK_SHAPE(attention_mask.shape() == ids.shape(),
                   "NasBertEncoder: attention_mask {} must have the shape of the token ids {}",
                   attention_mask.shape(), ids.shape());
  KILN_CHECK_TYPE(attention_mask.dtype() == kInt64 || attention_mask.dtype() == kBool,
                  "NasBertEncoder: attention_mask must be int64 (or bool), 1 = token, 0 = "
                  "padding; got {}",
                  dtype_name(attention_mask.dtype()));
  const Tensor m =
      attention_mask.dtype() == kInt64 ? attention_mask : attention_mask.to(kInt64);  // (B, T)
  return eq(m, 0.0);
}

Tensor NasBertEncoder::forward(const std::vector<Tensor>& inputs) {
  KILN_CHECK(inputs.size() == 1 || inputs.size() == 2,
             "NasBertEncoder: forward takes {{ids}} or {{ids, attention_mask}}, got {} inputs",
             inputs.size());
  return inputs.size() == 1 ? forward(inputs[0]) : forward(inputs[0], inputs[1]);
}

Tensor NasBertEncoder::forward_with_pad_mask(const Tensor& ids, const Tensor& pad_mask,
                                             bool first_only) {
  const int64_t T = ids.size(1);
  // Positions 0..T-1: the first T rows of the table (a slice, so an ONNX export keeps T dynamic).
  Tensor pos = narrow(position_embedding->weight, 0, 0, T);  // (T, E)
  Tensor h = add(token_embedding->forward(ids), pos);        // (B, T, E)
  h = dropout->forward(embedding_norm->forward(h));
  if (embedding_proj) h = embedding_proj->forward(h);                // (B, T, C)
  Tensor keep = unsqueeze(logical_not(pad_mask), -1).to(h.dtype());  // (B, T, 1)
  // With first_only, `cut` is the last layer that mixes positions: the layers before it run on
  // every row, it produces the first row alone, and the position-wise layers after it run on
  // that row. Without a mixing layer (cut = -1) the first row is taken before the layers.
  auto layer = [&](int64_t i) -> EncoderLayer& {
    return static_cast<EncoderLayer&>(*(*layers)[static_cast<size_t>(i)]);
  };
  const int64_t n = static_cast<int64_t>(layers->size());
  int64_t cut = first_only ? n - 1 : n;  // n: no cut
  while (first_only && cut >= 0 && layer(cut).position_wise()) --cut;
  if (cut < 0) h = narrow(h, 1, 0, 1);  // (B, 1, C)
  for (int64_t i = 0; i < n; ++i)
    h = i == cut ? layer(i).forward_first(h, pad_mask, keep) : layer(i).forward(h, pad_mask, keep);
  return h;
}

// ---------------------------------------------------------------- heads

TextClassifier::TextClassifier(EncoderConfig config, int64_t num_classes, bool regression)
    : Module(regression ? "TextRegressor" : "TextClassifier"),
      num_outputs_(regression ? 1 : num_classes),
      regression_(regression) {
  KILN_CHECK(regression || num_classes >= 2,
             "TextClassifier: num_classes must be at least 2, got {}", num_classes);
  const double p = config.dropout;
  const int64_t hidden = config.hidden;
  encoder = register_module("encoder", std::make_shared<NasBertEncoder>(std::move(config)));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(p));
  classifier = register_module(
      "classifier", std::make_shared<nn::Linear>(nn::LinearOptions(hidden, num_outputs_)));
  name_parameters();
}

Tensor TextClassifier::forward(const Tensor& ids) {
  return head(encoder->first_token(ids));
}

Tensor TextClassifier::forward(const Tensor& ids, const Tensor& attention_mask) {
  return head(encoder->first_token(ids, attention_mask));
}

Tensor TextClassifier::forward(const std::vector<Tensor>& inputs) {
  KILN_CHECK(inputs.size() == 1 || inputs.size() == 2,
             "{}: forward takes {{ids}} or {{ids, attention_mask}}, got {} inputs", name(),
             inputs.size());
  return inputs.size() == 1 ? forward(inputs[0]) : forward(inputs[0], inputs[1]);
}

Tensor TextClassifier::head(const Tensor& first) {
  Tensor out = classifier->forward(dropout->forward(first));  // (B, K)
  return regression_ ? squeeze(out, 1) : out;                 // (B) for regression
}

std::shared_ptr<TextClassifier> make_text_regressor(const EncoderConfig& config) {
  return std::make_shared<TextClassifier>(config, 1, true);
}

}  // namespace kiln::text
