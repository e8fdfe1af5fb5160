#include "kiln/nn/attention.h"

#include <limits>
#include <vector>

#include "kiln/nn/init.h"
#include "kiln/tensor/error.h"

namespace kiln::nn {

MultiheadAttention::MultiheadAttention(MultiheadAttentionOptions options)
    : Module("MultiheadAttention"), options_(options) {
  const int64_t E = options.embed_dim(), H = options.num_heads();
  KILN_CHECK(E > 0 && H > 0 && E % H == 0,
             "MultiheadAttention: embed_dim={} must be positive and divisible by num_heads={}", E,
             H);
  KILN_CHECK(options.dropout() >= 0 && options.dropout() < 1,
             "MultiheadAttention: dropout must be in [0, 1), got {}", options.dropout());
  in_proj_weight = register_parameter("in_proj_weight", zeros({3 * E, E}));
  if (options.bias()) in_proj_bias = register_parameter("in_proj_bias", zeros({3 * E}));
  out_proj = register_module("out_proj",
                             std::make_shared<Linear>(LinearOptions(E, E).bias(options.bias())));
  reset_parameters();
}

void MultiheadAttention::reset_parameters(Generator* gen) {
  out_proj->reset_parameters(gen);
  init::xavier_uniform_(in_proj_weight, 1.0, gen);
  if (in_proj_bias.defined()) init::zeros_(in_proj_bias);
  if (out_proj->bias.defined()) init::zeros_(out_proj->bias);
}

std::string MultiheadAttention::extra_repr() const {
  return fmt::format("embed_dim={}, num_heads={}, dropout={}, batch_first={}", options_.embed_dim(),
                     options_.num_heads(), options_.dropout(), options_.batch_first());
}

Tensor MultiheadAttention::forward(const Tensor& x) {
  return forward(x, x, x);
}

Tensor MultiheadAttention::forward(const std::vector<Tensor>& inputs) {
  KILN_CHECK(
      inputs.size() >= 3 && inputs.size() <= 5,
      "{}: expected inputs {{query, key, value[, key_padding_mask[, attn_mask]]}}, got {} tensors",
      where(), inputs.size());
  return forward(inputs[0], inputs[1], inputs[2], inputs.size() > 3 ? inputs[3] : Tensor(),
                 inputs.size() > 4 ? inputs[4] : Tensor());
}

namespace {
// A bool mask (true = blocked) as an additive float mask (−∞ where blocked); a float mask as is.
Tensor additive(const Tensor& mask, DType dtype) {
  if (mask.dtype() != kBool) return mask.dtype() == dtype ? mask : mask.to(dtype);
  return masked_fill(zeros(mask.shape(), dtype), mask, -std::numeric_limits<double>::infinity());
}
}  // namespace

Tensor MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                   const Tensor& key_padding_mask, const Tensor& attn_mask) {
  const int64_t E = options_.embed_dim(), H = options_.num_heads(), d = E / H;
  KILN_CHECK_SHAPE(query.defined() && key.defined() && value.defined(),
                   "{}: query, key and value must be defined", where());
  const bool unbatched = query.dim() == 2;
  KILN_CHECK_SHAPE(
      (query.dim() == 3 || unbatched) && key.dim() == query.dim() && value.dim() == query.dim(),
      "{}: query {}, key {} and value {} must all be 3-d ({}) or all 2-d (unbatched (T, E))",
      where(), query.shape(), key.shape(), value.shape(),
      options_.batch_first() ? "(B, T, E)" : "(T, B, E)");
  // Bring everything to batch-first (B, T, E).
  auto to_bte = [&](const Tensor& t) {
    if (unbatched) return t.unsqueeze(0);
    return options_.batch_first() ? t : t.transpose(0, 1);
  };
  const bool self_attention = query.impl() == key.impl() && key.impl() == value.impl();
  Tensor q_in = to_bte(query), k_in = to_bte(key), v_in = to_bte(value);
  const int64_t B = q_in.size(0), T = q_in.size(1), S = k_in.size(1);
  KILN_CHECK_SHAPE(q_in.size(2) == E && k_in.size(2) == E && v_in.size(2) == E,
                   "{}: query {}, key {} and value {} must have embed_dim={} as their last dim",
                   where(), query.shape(), key.shape(), value.shape(), E);
  KILN_CHECK_SHAPE(k_in.size(0) == B && v_in.size(0) == B && v_in.size(1) == S,
                   "{}: key {} and value {} must match each other and query {}'s batch size",
                   where(), key.shape(), value.shape(), query.shape());

  // Input projections: one GEMM for self-attention, else W_in's three row blocks separately.
  Tensor q, k, v;
  if (self_attention) {
    // One split (not three narrows): its backward writes the three gradients into one (B, T, 3E)
    // buffer instead of three zero-filled ones that are then summed.
    std::vector<Tensor> qkv = chunk(linear(q_in, in_proj_weight, in_proj_bias), 3, -1);
    q = qkv[0];  // (B, T, E) each
    k = qkv[1];
    v = qkv[2];
  } else {
    auto b = [&](int64_t i) {
      return in_proj_bias.defined() ? in_proj_bias.narrow(0, i * E, E) : Tensor();
    };
    q = linear(q_in, in_proj_weight.narrow(0, 0, E), b(0));
    k = linear(k_in, in_proj_weight.narrow(0, E, E), b(1));
    v = linear(v_in, in_proj_weight.narrow(0, 2 * E, E), b(2));
  }
  // (B, L, E) -> (B, H, L, d)
  auto heads = [&](const Tensor& t, int64_t L) { return t.reshape({B, L, H, d}).transpose(1, 2); };
  q = heads(q, T);
  k = heads(k, S);
  v = heads(v, S);

  // One additive mask broadcastable to (B, H, T, S).
  Tensor mask;
  if (attn_mask.defined()) {
    Tensor m = additive(attn_mask, q.dtype());
    const bool ok2 = m.dim() == 2 && m.size(0) == T && m.size(1) == S;
    const bool ok3 = m.dim() == 3 && m.size(0) == B * H && m.size(1) == T && m.size(2) == S;
    KILN_CHECK_SHAPE(ok2 || ok3,
                     "{}: attn_mask {} must be (T, S) = [{}, {}] or (B·H, T, S) = [{}, {}, {}]",
                     where(), attn_mask.shape(), T, S, B * H, T, S);
    mask = ok2 ? m.reshape({1, 1, T, S}) : m.reshape({B, H, T, S});
  }
  if (key_padding_mask.defined()) {
    Tensor kpm =
        unbatched && key_padding_mask.dim() == 1 ? key_padding_mask.unsqueeze(0) : key_padding_mask;
    KILN_CHECK_SHAPE(kpm.dim() == 2 && kpm.size(0) == B && kpm.size(1) == S,
                     "{}: key_padding_mask {} must be (B, S) = [{}, {}]", where(),
                     key_padding_mask.shape(), B, S);
    Tensor m = additive(kpm, q.dtype()).reshape({B, 1, 1, S});
    mask = mask.defined() ? add(mask, m) : m;
  }

  Tensor y = scaled_dot_product_attention(q, k, v, mask, options_.dropout(), is_training(),
                                          options_.generator());
  y = y.transpose(1, 2).reshape({B, T, E});  // (B, T, E)
  y = out_proj->forward(y);
  if (unbatched) return y.squeeze(0);
  return options_.batch_first() ? y : y.transpose(0, 1);
}

}  // namespace kiln::nn
