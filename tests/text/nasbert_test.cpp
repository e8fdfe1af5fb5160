// The NAS-BERT encoder and heads: shapes, parameter counts per preset, padding invariance, a
// float64 finite-difference check of the separable-convolution sub-layer, state_dict names.
#include "kiln/text/nasbert.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>

#include "kiln/autograd/grad_mode.h"
#include "kiln/autograd/gradcheck.h"
#include "kiln/tensor/error.h"

namespace kiln::text {
namespace {

// A small 5m-shaped encoder for fast tests: same layer string, narrower.
EncoderConfig tiny_config(int64_t vocab = 100, int64_t pad = 1) {
  EncoderConfig c = EncoderConfig::preset("nasbert-5m", vocab, pad);
  c.embed_dim = 16;
  c.hidden = 24;
  c.max_positions = 32;
  return c;
}

Tensor ids_tensor(const std::vector<int64_t>& v, int64_t rows) {
  return from_vector(v, {rows, static_cast<int64_t>(v.size()) / rows});
}

// Expected parameter count of a SepConv layer (two sub-layers) at width C, kernel k:
// depthwise C·k + C, pointwise C·C + C, LayerNorm 2C, twice.
int64_t sep_conv_params(int64_t C, int64_t k) {
  return 2 * (C * k + C + C * C + C + 2 * C);
}
// MHA: in_proj 3C·C + 3C, out_proj C·C + C; LayerNorm 2C.
int64_t attention_params(int64_t C) {
  return 3 * C * C + 3 * C + C * C + C + 2 * C;
}
int64_t ffn_params(int64_t C, int64_t F) {
  return C * F + F + F * C + C + 2 * C;
}
int64_t embedding_params(int64_t V, int64_t E, int64_t P, int64_t C) {
  return V * E + P * E + 2 * E + (E != C ? E * C + C : 0);
}

TEST(NasBert, PresetFiveMillionMatchesHandCount) {
  // GPT-2's 50257 ids + <s> </s> <pad> <mask>.
  const EncoderConfig c = EncoderConfig::preset("nasbert-5m", 50261, 50259);
  EXPECT_EQ(c.embed_dim, 64);
  EXPECT_EQ(c.hidden, 192);
  EXPECT_EQ(c.heads, 3);
  EXPECT_EQ(c.max_positions, 512);
  EXPECT_EQ(c.layer_tokens(), (std::vector<std::string>{"S3", "S7", "M", "S7", "S7", "M", "S3", "M",
                                                        "S7", "S5", "M", "S3"}));
  TextClassifier model(c, 2);
  const int64_t C = 192;
  const int64_t expected = embedding_params(50261, 64, 512, C) + 3 * sep_conv_params(C, 3) +
                           4 * sep_conv_params(C, 7) + sep_conv_params(C, 5) +
                           4 * attention_params(C) + (C * 2 + 2);
  EXPECT_EQ(model.num_parameters(), expected);
  // 3.2M of embeddings + 1.2M of layers: the "5M" model.
  EXPECT_GT(expected, 4'000'000);
  EXPECT_LT(expected, 5'500'000);
}

TEST(NasBert, LargerPresetsAndBertCountAsConfigured) {
  for (const auto& [name, lo, hi] : std::vector<std::tuple<std::string, int64_t, int64_t>>{
           {"nasbert-10m", 8'000'000, 12'000'000},
           {"nasbert-30m", 25'000'000, 35'000'000},
           {"nasbert-60m", 50'000'000, 70'000'000}}) {
    // The budget with GPT-2's vocabulary, by the hand count; building a 60M-parameter model
    // would dominate the suite's time, so the module count is checked with a small vocabulary.
    const EncoderConfig c = EncoderConfig::preset(name, 50261, 50259);
    const int64_t C = c.hidden;
    const int64_t layers = 2 * sep_conv_params(C, 3) + sep_conv_params(C, 5) +
                           sep_conv_params(C, 7) + 4 * attention_params(C) +
                           4 * ffn_params(C, 4 * C);
    const int64_t expected = embedding_params(50261, c.embed_dim, 512, C) + layers;
    EXPECT_GT(expected, lo) << name;
    EXPECT_LT(expected, hi) << name;
    if (name == "nasbert-10m") {
      NasBertEncoder enc(EncoderConfig::preset(name, 1000, 1));
      EXPECT_EQ(enc.num_parameters(), embedding_params(1000, c.embed_dim, 512, C) + layers);
    }
  }
  const EncoderConfig b = EncoderConfig::preset("bert", 8192, 0);
  EXPECT_EQ(b.layers, "M F | M F | M F | M F");
  NasBertEncoder bert(b);
  EXPECT_EQ(bert.embedding_proj, nullptr);
  EXPECT_EQ(bert.num_parameters(), embedding_params(8192, 256, 512, 256) +
                                       4 * (attention_params(256) + ffn_params(256, 1024)));
}

TEST(NasBert, ShapesOfEncoderClassifierAndRegressor) {
  const EncoderConfig c = tiny_config();
  const Tensor ids = ids_tensor({0, 5, 6, 7, 2, 1, 0, 9, 8, 2, 1, 1}, 2);  // (2, 6)
  NasBertEncoder enc(c);
  EXPECT_EQ(enc.forward(ids).shape(), (Shape{2, 6, 24}));
  TextClassifier clf(c, 3);
  EXPECT_EQ(clf.forward(ids).shape(), (Shape{2, 3}));
  auto reg = make_text_regressor(c);
  EXPECT_TRUE(reg->regression());
  EXPECT_EQ(reg->forward(ids).shape(), (Shape{2}));
}

TEST(NasBert, PaddingDoesNotChangeRealTokens) {
  const EncoderConfig c = tiny_config(100, /*pad=*/1);
  TextClassifier clf(c, 3);
  clf.eval();
  NoGradGuard no_grad;
  // Row 0 alone (5 tokens), then padded to 9 in a batch with a longer row.
  const Tensor alone = ids_tensor({0, 11, 42, 17, 2}, 1);
  const Tensor batch = ids_tensor({0, 11, 42, 17, 2, 1, 1, 1, 1, 0, 5, 6, 7, 8, 9, 10, 12, 2}, 2);
  const Tensor h_alone = clf.encoder->forward(alone);  // (1, 5, C)
  const Tensor h_batch = clf.encoder->forward(batch);  // (2, 9, C)
  const std::vector<float> a = h_alone.to_vector<float>();
  const std::vector<float> b =
      narrow(select(h_batch, 0, 0), 0, 0, 5).contiguous().to_vector<float>();
  ASSERT_EQ(a.size(), b.size());
  // Masked keys get exactly zero weight; only the GEMMs' summation blocking may differ (float32
  // rounding of sums over ≤ 9 keys), hence a tolerance a few ulps of the O(1) LayerNorm outputs.
  constexpr float kTol = 1e-5f;
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], kTol) << "element " << i;
  const std::vector<float> la = clf.forward(alone).to_vector<float>();
  const std::vector<float> lb = select(clf.forward(batch), 0, 0).contiguous().to_vector<float>();
  for (size_t i = 0; i < la.size(); ++i) EXPECT_NEAR(la[i], lb[i], kTol);
  // Without the mask the pads would leak in: the test must be able to fail.
  const Tensor unmasked = ids_tensor({0, 11, 42, 17, 2, 3, 3, 3, 3}, 1);
  const std::vector<float> lu = clf.forward(unmasked).to_vector<float>();
  float diff = 0;
  for (size_t i = 0; i < la.size(); ++i) diff = std::max(diff, std::abs(la[i] - lu[i]));
  EXPECT_GT(diff, 1e-3f);
}

TEST(NasBert, AttentionMaskOverloadEqualsThePadIdMask) {
  const EncoderConfig c = tiny_config(100, /*pad=*/1);
  TextClassifier clf(c, 3);
  clf.eval();
  NoGradGuard no_grad;
  const Tensor ids =
      ids_tensor({0, 11, 42, 17, 2, 1, 1, 0, 5, 6, 7, 8, 9, 2, 0, 9, 2, 1, 1, 1, 1}, 3);
  const Tensor mask =
      ids_tensor({1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0}, 3);
  // The same masks, so the same ops on the same values: bit-identical outputs.
  EXPECT_EQ(clf.encoder->forward(ids, mask).to_vector<float>(),
            clf.encoder->forward(ids).to_vector<float>());
  EXPECT_EQ(clf.forward(ids, mask).to_vector<float>(), clf.forward(ids).to_vector<float>());
  EXPECT_EQ(clf.forward(std::vector<Tensor>{ids, mask}).to_vector<float>(),
            clf.forward(ids).to_vector<float>());
  EXPECT_EQ(clf.forward(ids, mask.to(kBool)).to_vector<float>(),
            clf.forward(ids).to_vector<float>());
  auto reg = make_text_regressor(c);
  reg->eval();
  EXPECT_EQ(reg->forward(ids, mask).shape(), (Shape{3}));
  EXPECT_EQ(reg->forward(ids, mask).to_vector<float>(), reg->forward(ids).to_vector<float>());
  // The mask is what counts, not the ids: masking row 1's last two tokens equals padding them.
  const Tensor short_mask =
      ids_tensor({1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0}, 3);
  const Tensor short_ids =
      ids_tensor({0, 11, 42, 17, 2, 1, 1, 0, 5, 6, 7, 8, 1, 1, 0, 9, 2, 1, 1, 1, 1}, 3);
  const std::vector<float> masked = clf.forward(ids, short_mask).to_vector<float>();
  EXPECT_EQ(masked, clf.forward(short_ids).to_vector<float>());
  const std::vector<float> full = clf.forward(ids).to_vector<float>();
  float diff = 0;
  for (size_t i = 3; i < 6; ++i) diff = std::max(diff, std::abs(masked[i] - full[i]));
  EXPECT_GT(diff, 1e-4f);  // row 1 changed
  // Errors name the mask.
  try {
    clf.forward(ids, ids_tensor({1, 1, 1, 1, 1, 1}, 2));
    FAIL() << "expected an error";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("attention_mask"), std::string::npos) << e.what();
  }
  EXPECT_THROW(clf.forward(ids, mask.to(kFloat32)), TypeError);
}

// The classifier computes only the first row in its last layers (NasBertEncoder::first_token).
// Its logits and every parameter gradient must equal those of the full encoder output's first
// row, for stacks ending in attention + FFN, attention alone, a convolution (nothing to skip) and
// no mixing layer at all. Float32, and the two paths run GEMMs of different row counts, so sums
// may round differently: a tolerance of a few ulps of the O(1) values.
TEST(NasBert, FirstTokenPathEqualsTheFullEncoderRow) {
  for (const char* layers : {"M F | M F", "S3 M", "M S5", "F I", "S3 M F I"}) {
    SCOPED_TRACE(layers);
    EncoderConfig c = tiny_config(100, /*pad=*/1);
    c.layers = layers;
    c.dropout = 0.0;  // train mode (the graph that trains), without random masks
    TextClassifier clf(c, 3);
    const Tensor ids = ids_tensor({0, 11, 42, 17, 2, 1, 1, 0, 5, 6, 7, 8, 9, 2}, 2);  // row 0 pads
    const Tensor w = from_vector(std::vector<float>{0.3f, -1.2f, 0.7f, 2.0f, 0.1f, -0.4f}, {2, 3});
    auto grads = [&](const Tensor& logits) {
      clf.zero_grad();
      sum(mul(logits, w)).backward();
      std::map<std::string, std::vector<float>> g;
      for (const auto& [name, p] : clf.named_parameters())
        if (p.grad().defined()) g[name] = p.grad().to_vector<float>();
      return g;
    };
    const Tensor fast = clf.forward(ids);  // (2, 3)
    const Tensor full =
        clf.classifier->forward(clf.dropout->forward(select(clf.encoder->forward(ids), 1, 0)));
    const std::vector<float> lf = fast.to_vector<float>(), ll = full.to_vector<float>();
    ASSERT_EQ(lf.size(), ll.size());
    for (size_t i = 0; i < lf.size(); ++i) EXPECT_NEAR(lf[i], ll[i], 1e-5f) << "logit " << i;
    const auto gf = grads(fast), gl = grads(full);
    ASSERT_EQ(gf.size(), gl.size());
    for (const auto& [name, a] : gl) {
      ASSERT_TRUE(gf.count(name)) << name;
      const std::vector<float>& b = gf.at(name);
      ASSERT_EQ(a.size(), b.size()) << name;
      float scale = 1e-3f;
      for (float v : a) scale = std::max(scale, std::abs(v));
      for (size_t i = 0; i < a.size(); ++i)
        ASSERT_NEAR(a[i], b[i], 1e-5f * scale) << name << " element " << i;
    }
  }
  // The encoder's own entry point: first_token(ids) == forward(ids)[:, 0].
  TextClassifier clf(tiny_config(), 2);
  clf.eval();
  NoGradGuard no_grad;
  const Tensor ids = ids_tensor({0, 11, 42, 17, 2, 1, 0, 5, 6, 7, 8, 2}, 2);
  const std::vector<float> a = clf.encoder->first_token(ids).to_vector<float>();
  const std::vector<float> b =
      select(clf.encoder->forward(ids), 1, 0).contiguous().to_vector<float>();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5f);
}

TEST(NasBert, SepConvSublayerGradMatchesFiniteDifference) {
  const int64_t B = 2, T = 5, C = 3, k = 3;
  Generator gen(7);
  auto leaf = [&](const Shape& s, double scale) {
    return mul(randn(s, kFloat64, &gen), scale).detach().requires_grad_();
  };
  // Row 1 has two pads at the end.
  const Tensor keep = from_vector(std::vector<double>{1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, {B, T, 1});
  const std::vector<Tensor> inputs = {leaf({B, T, C}, 1.0), leaf({C, 1, k}, 0.5), leaf({C}, 0.1),
                                      leaf({C, C}, 0.5),    leaf({C}, 0.1),       leaf({C}, 0.3),
                                      leaf({C}, 0.1)};
  const GradcheckResult r = gradcheck(
      [&](const std::vector<Tensor>& in) {
        return sep_conv_sublayer(in[0], keep, in[1], in[2], in[3], in[4], add(in[5], 1.0), in[6]);
      },
      inputs);
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_GT(r.checked, 0);
}

TEST(NasBert, StateDictNamesAreHierarchical) {
  TextClassifier clf(tiny_config(), 2);
  const std::vector<std::string> keys = clf.state_dict().keys();
  for (const char* name :
       {"encoder.token_embedding.weight", "encoder.position_embedding.weight",
        "encoder.embedding_norm.weight", "encoder.embedding_proj.weight",
        "encoder.layers.0.depthwise0.weight", "encoder.layers.0.pointwise1.bias",
        "encoder.layers.0.norm1.weight", "encoder.layers.2.self_attn.in_proj_weight",
        "encoder.layers.2.self_attn.out_proj.weight", "encoder.layers.2.norm.bias",
        "encoder.layers.11.depthwise1.bias", "classifier.weight", "classifier.bias"}) {
    EXPECT_NE(std::find(keys.begin(), keys.end(), name), keys.end()) << name;
  }
  EXPECT_EQ(clf.state_dict().at("encoder.layers.1.depthwise0.weight").shape(), (Shape{24, 1, 7}));
  // Every trainable parameter receives a gradient from a classification loss.
  clf.train();
  const Tensor ids = ids_tensor({0, 5, 6, 7, 2, 1, 0, 9, 8, 2, 1, 1}, 2);
  cross_entropy(clf.forward(ids), from_vector(std::vector<int64_t>{0, 1})).backward();
  for (const auto& [name, p] : clf.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
  }
}

TEST(NasBert, ErrorsNameTheProblem) {
  EncoderConfig c = tiny_config();
  c.layers = "S3 X9 M";
  try {
    NasBertEncoder enc(c);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'X9'"), std::string::npos) << e.what();
  }
  try {
    EncoderConfig::preset("nasbert-7m", 100, 1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nasbert-10m"), std::string::npos) << e.what();
  }
  c = tiny_config();
  c.heads = 5;
  EXPECT_THROW(c.validate(), Error);
  NasBertEncoder enc(tiny_config());
  EXPECT_THROW(enc.forward(zeros({2, 4}, kFloat32)), TypeError);
  EXPECT_THROW(enc.forward(zeros({2, 40}, kInt64)), ShapeError);  // beyond max_positions 32
  // The config round-trips through JSON.
  EXPECT_EQ(EncoderConfig::from_json(json::parse(tiny_config().to_json().dump())), tiny_config());
}

}  // namespace
}  // namespace kiln::text
