// Masked-LM pre-training: BERT's 80/10/10 masking, the loss falling on real mail, encoder
// checkpoints loading into a fresh classifier (head untouched), and Hugging Face BERT / RoBERTa
// names mapped onto Kiln's encoder.
#include "kiln/text/mlm.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>

#include "kiln/autograd/grad_mode.h"
#include "kiln/tensor/error.h"
#include "kiln/text/corpus.h"
#include "kiln/text/trainers.h"
#include "kiln/tokenizers/vocab_trainer.h"
#include "text/text_test_util.h"

namespace kiln::text {
namespace {

namespace fs = std::filesystem;

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / fmt::format("kiln_mlm_{}_{}", ::getpid(), name);
}

TEST(MaskTokens, FollowsBertEightyTenTen) {
  // 64 rows of 200 ids in [10, 1000), specials 0..4 at the ends and as padding.
  const int64_t B = 64, T = 200, V = 1000, kMask = 4;
  std::vector<int64_t> v(B * T);
  Generator g(1);
  const std::vector<int64_t> r = randint(10, V, {B * T}, kInt64, &g).to_vector<int64_t>();
  for (int64_t i = 0; i < B * T; ++i) {
    const int64_t t = i % T;
    v[i] = t == 0 ? 2 : (t == T - 1 ? 3 : (t > T - 20 ? 0 : r[i]));  // cls, text, pads, sep
  }
  const Tensor ids = from_vector(v, {B, T});
  const std::vector<int64_t> special = {0, 1, 2, 3, 4};
  Generator gen(9);
  const MaskedBatch m = mask_tokens(ids, kMask, V, special, 0.15, gen);
  const std::vector<int64_t> in = m.input_ids.to_vector<int64_t>();
  const std::vector<int64_t> pos = m.positions.to_vector<int64_t>();
  const std::vector<int64_t> tgt = m.targets.to_vector<int64_t>();
  ASSERT_EQ(pos.size(), tgt.size());
  const double eligible = static_cast<double>(B * (T - 20));
  // Binomial(n = 11520, p = 0.15): sd ≈ 38 positions; 5 sd either way.
  EXPECT_NEAR(static_cast<double>(pos.size()), 0.15 * eligible, 5 * std::sqrt(eligible * 0.1275));
  int64_t masked = 0, random = 0, kept = 0;
  std::vector<bool> chosen(v.size(), false);
  for (size_t j = 0; j < pos.size(); ++j) {
    const size_t i = static_cast<size_t>(pos[j]);
    chosen[i] = true;
    EXPECT_EQ(tgt[j], v[i]);
    EXPECT_GE(v[i], 10) << "a special token was chosen";
    if (in[i] == kMask) {
      ++masked;
    } else if (in[i] == v[i]) {
      ++kept;
    } else {
      ++random;
      EXPECT_GE(in[i], 5);  // random replacements are never special
    }
  }
  for (size_t i = 0; i < v.size(); ++i) {
    if (!chosen[i]) {
      EXPECT_EQ(in[i], v[i]);
    }
  }
  const double n = static_cast<double>(pos.size());
  // Shares with a binomial sd of at most √(0.16 / 1700) ≈ 0.01: 4 sd tolerance.
  EXPECT_NEAR(masked / n, 0.8, 0.04);
  EXPECT_NEAR(random / n, 0.1, 0.04);
  EXPECT_NEAR(kept / n, 0.1, 0.04);
  // Same generator state, same masks.
  Generator again(9);
  EXPECT_EQ(mask_tokens(ids, kMask, V, special, 0.15, again).positions.to_vector<int64_t>(), pos);
}

TEST(MaskedLanguageModel, PretrainsOnMailAndLoadsIntoAFreshClassifier) {
  if (!fs::exists(testing::spam_dir())) GTEST_SKIP() << testing::kInstallHint;
  const data::Table mail = load_spam_assassin(
      testing::spam_dir(), {.groups = {"easy-ham-1"}, .max_per_group = 150, .max_bytes = 300});
  const std::vector<std::string>& texts = mail["Text"].strings();
  const auto tok = std::make_shared<BpeTokenizer>(train_bpe(texts, {.vocab_size = 400}));
  EncoderConfig c;
  c.embed_dim = 32;
  c.hidden = 32;
  c.layers = "S3 M";
  c.heads = 2;
  c.max_positions = 64;
  // pretrain_mlm trains through kiln::Model::fit: Keras callbacks see its epochs.
  std::vector<double> logged;
  const MlmResult r =
      pretrain_mlm(c, *tok, texts,
                   {.max_length = 64,
                    .batch_size = 16,
                    .epochs = 4,
                    .learning_rate = 3e-3,
                    .verbose = 0,
                    .callbacks = {callbacks::LambdaCallback(
                        {.on_epoch_end = [&](int, Logs& l) { logged.push_back(l.at("loss")); }})}});
  ASSERT_EQ(r.epoch_loss.size(), 4u);
  EXPECT_EQ(logged, r.epoch_loss);
  // A uniform guess over 400 ids costs ln 400 = 5.99 nats; the model must learn the token
  // statistics (0.5 nats better) and improve every epoch.
  EXPECT_LT(r.epoch_loss.back(), std::log(400.0) - 0.5) << fmt::format("{}", r.epoch_loss);
  for (size_t e = 1; e < r.epoch_loss.size(); ++e) {
    EXPECT_LT(r.epoch_loss[e], r.epoch_loss[e - 1]) << fmt::format("{}", r.epoch_loss);
  }

  const fs::path path = temp_file("encoder.safetensors");
  save_encoder(*r.encoder, path);
  TextClassifier clf(r.encoder->config(), 2);
  const std::vector<float> head_before = clf.classifier->weight.to_vector<float>();
  EXPECT_EQ(load_pretrained_encoder(clf, path), r.encoder->state_dict().size());
  for (const auto& [name, t] : r.encoder->state_dict()) {
    EXPECT_EQ(clf.encoder->state_dict().at(name).to_vector<float>(), t.to_vector<float>()) << name;
  }
  EXPECT_EQ(clf.classifier->weight.to_vector<float>(), head_before);  // the head stays fresh

  // A classifier with another layer string lacks names: the error lists them.
  EncoderConfig other = r.encoder->config();
  other.layers = "S3 M M";
  TextClassifier deeper(other, 2);
  try {
    load_pretrained_encoder(deeper, path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("encoder.layers.2.self_attn.in_proj_weight"),
              std::string::npos)
        << e.what();
  }
  fs::remove(path);
}

// Writes a Kiln bert encoder's weights under Hugging Face names (the inverse of the mapping, by
// hand), so loading them back must reproduce the encoder's outputs exactly.
NamedTensorList as_hf(const NasBertEncoder& enc, const std::string& prefix, bool roberta) {
  const nn::StateDict sd = enc.state_dict();
  const int64_t C = enc.config().hidden;
  NamedTensorList hf;
  auto put = [&](const std::string& name, const Tensor& t) { hf.emplace_back(prefix + name, t); };
  put("embeddings.word_embeddings.weight", sd.at("token_embedding.weight"));
  Tensor pos = sd.at("position_embedding.weight");  // (P, C)
  // Split position rows into position + token type 0 (which the loader adds back).
  Generator g(4);
  const Tensor type0 = randn({1, C}, kFloat32, &g);
  pos = sub(pos, type0);
  if (roberta) pos = cat({randn({2, C}, kFloat32, &g), pos}, 0);  // rows 0, 1 unused
  put("embeddings.position_embeddings.weight", contiguous(pos));
  put("embeddings.token_type_embeddings.weight", cat({type0, randn({1, C}, kFloat32, &g)}, 0));
  put("embeddings.LayerNorm.gamma", sd.at("embedding_norm.weight"));
  put("embeddings.LayerNorm.beta", sd.at("embedding_norm.bias"));
  const int64_t L = static_cast<int64_t>(enc.layers->size()) / 2;
  for (int64_t i = 0; i < L; ++i) {
    const std::string a = fmt::format("layers.{}.", 2 * i),
                      f = fmt::format("layers.{}.", 2 * i + 1);
    const std::string h = fmt::format("encoder.layer.{}.", i);
    for (const std::string w : {"weight", "bias"}) {
      const std::vector<Tensor> qkv = chunk(sd.at(a + "self_attn.in_proj_" + w), 3, 0);
      put(h + "attention.self.query." + w, contiguous(qkv[0]));
      put(h + "attention.self.key." + w, contiguous(qkv[1]));
      put(h + "attention.self.value." + w, contiguous(qkv[2]));
      put(h + "attention.output.dense." + w, sd.at(a + "self_attn.out_proj." + w));
      put(h + "attention.output.LayerNorm." + w, sd.at(a + "norm." + w));
      put(h + "intermediate.dense." + w, sd.at(f + "fc1." + w));
      put(h + "output.dense." + w, sd.at(f + "fc2." + w));
      put(h + "output.LayerNorm." + w, sd.at(f + "norm." + w));
    }
  }
  put("pooler.dense.weight", randn({C, C}, kFloat32, &g));  // not part of the encoder
  return hf;
}

TEST(MaskedLanguageModel, HuggingFaceBertAndRobertaNamesMapToKiln) {
  const EncoderConfig c = EncoderConfig::bert(/*vocab_size=*/120, /*padding_id=*/1, /*hidden=*/16,
                                              /*num_layers=*/2, /*heads=*/2, /*ffn_dim=*/32);
  EncoderConfig small = c;
  small.max_positions = 24;
  TextClassifier source(small, 3);
  source.eval();
  const Tensor ids = from_vector(std::vector<int64_t>{0, 5, 9, 44, 2, 1, 0, 7, 8, 2, 1, 1}, {2, 6});
  NoGradGuard no_grad;
  const std::vector<float> expected = source.encoder->forward(ids).to_vector<float>();
  for (const auto& [prefix, roberta] : std::vector<std::pair<std::string, bool>>{
           {"bert.", false}, {"roberta.", true}, {"", false}}) {
    const fs::path path = temp_file("hf.safetensors");
    save_safetensors(path.string(), as_hf(*source.encoder, prefix, roberta));
    TextClassifier target(small, 3);
    target.eval();
    EXPECT_EQ(load_pretrained_encoder(target, path), source.encoder->state_dict().size());
    const std::vector<float> got = target.encoder->forward(ids).to_vector<float>();
    ASSERT_EQ(got.size(), expected.size());
    // The position rows went through (pos − type0) + type0 in float32: a rounding of the
    // embedding sum, well below 1e-5 after LayerNorm of O(1) values.
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], expected[i], 1e-5f) << prefix << i;
    fs::remove(path);
  }
  // A NAS-BERT layer string cannot take BERT weights.
  TextClassifier nas(EncoderConfig::preset("nasbert-5m", 120, 1), 2);
  const fs::path path = temp_file("hf2.safetensors");
  save_safetensors(path.string(), as_hf(*source.encoder, "bert.", false));
  EXPECT_THROW(load_pretrained_encoder(nas, path), Error);
  fs::remove(path);
}

TEST(MaskedLanguageModel, TrainerStartsFromAPretrainedEncoder) {
  if (!fs::exists(testing::spam_dir())) GTEST_SKIP() << testing::kInstallHint;
  const data::Table mail = load_spam_assassin(
      testing::spam_dir(),
      {.groups = {"easy-ham-1", "spam-1"}, .max_per_group = 20, .max_bytes = 200});
  const auto tok =
      std::make_shared<BpeTokenizer>(train_bpe(mail["Text"].strings(), {.vocab_size = 300}));
  EncoderConfig c;
  c.embed_dim = 16;
  c.hidden = 16;
  c.layers = "S3 M";
  c.heads = 2;
  c.max_positions = 32;
  c.vocab_size = tok->vocab_size();
  c.padding_id = tok->pad_id();
  MaskedLanguageModel mlm(c);
  const fs::path path = temp_file("pre.safetensors");
  save_encoder(*mlm.encoder, path);
  TextClassificationOptions o{
      .label_column = "Label", .sentence1_column = "Text", .max_epochs = 1, .max_length = 32};
  o.encoder = c;
  o.tokenizer = tok;
  o.verbose = 0;
  o.learning_rate = 1e-12;  // effectively no update: the loaded weights must survive fit
  o.pretrained_encoder = path;
  const TextClassificationModel m = TextClassification(o).fit(mail);
  const std::vector<float> want = mlm.encoder->token_embedding->weight.to_vector<float>();
  const std::vector<float> got = m.module()->encoder->token_embedding->weight.to_vector<float>();
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(want[i], got[i], 1e-6f) << i;
  fs::remove(path);
}

}  // namespace
}  // namespace kiln::text
