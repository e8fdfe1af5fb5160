// The encoder Kiln ships (models/nasbert-5m-en): its files load with the names and shapes the
// preset defines, the weights are the ones the pre-training run wrote (checksum), they compute what
// that run recorded for a fixed sentence (probe.json, written by `kiln pretrain`, not by this
// build), and the trainers start from them by default.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "kiln/autograd/grad_mode.h"
#include "kiln/io/json.h"
#include "kiln/io/safetensors.h"
#include "kiln/text/pretrain.h"
#include "kiln/text/trainers.h"

namespace kiln::text {
namespace {

namespace fs = std::filesystem;

json::Value read_json(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return json::parse(s.str(), p.string());
}

// The shipped directory is part of the repository: its absence is a failure, not a skip.
PretrainedEncoder shipped() {
  const fs::path dir = shipped_encoder_dir();
  KILN_CHECK(!dir.empty(), "models/{} not found", kShippedEncoder);
  return load_pretrained(dir);
}

// Largest |a − b| over the encoder parameters of two modules with the same names.
double max_encoder_difference(const nn::Module& a, const nn::Module& b) {
  const nn::StateDict sa = a.state_dict(), sb = b.state_dict();
  double worst = 0;
  for (const auto& [name, t] : sa) {
    if (name.rfind("encoder.", 0) != 0 || t.dtype() != kFloat32) continue;
    const std::vector<float> x = t.contiguous().to_vector<float>();
    const std::vector<float> y = sb.at(name).contiguous().to_vector<float>();
    for (size_t i = 0; i < x.size(); ++i) {
      worst = std::max(worst, static_cast<double>(std::abs(x[i] - y[i])));
    }
  }
  return worst;
}

TEST(ShippedEncoder, IsTheNasBert5mPresetWithItsOwnTokenizer) {
  const PretrainedEncoder p = shipped();
  const EncoderConfig preset =
      EncoderConfig::preset("nasbert-5m", p.tokenizer->vocab_size(), p.tokenizer->pad_id());
  EXPECT_EQ(p.config, preset);
  EXPECT_EQ(p.tokenizer->type(), "byte_level_bpe");
  EXPECT_EQ(p.tokenizer->vocab_size(), 16384);
  // Every tensor the preset's encoder has, with its shape, and nothing else.
  const SafetensorsFile f = load_safetensors(p.weights().string());
  NasBertEncoder enc(p.config);
  const nn::StateDict want = enc.state_dict();
  EXPECT_EQ(f.tensors.size(), want.size());
  for (const auto& [name, t] : want) {
    const Tensor* got = f.find("encoder." + name);
    ASSERT_NE(got, nullptr) << name;
    EXPECT_EQ(got->shape(), t.shape()) << name;
  }
}

TEST(ShippedEncoder, ComputesWhatThePretrainingRunRecorded) {
  const PretrainedEncoder p = shipped();
  const json::Value probe = read_json(p.dir / "probe.json");
  ASSERT_EQ(probe.at("sentence").as_string(), std::string(kProbeSentence));
  auto clf = std::make_shared<TextClassifier>(p.config, 2);
  ASSERT_GT(load_pretrained_encoder(*clf, p.weights()), 0u);
  EXPECT_EQ(fmt::format("{:016x}", weights_checksum(*clf->encoder)),
            probe.at("weights_fnv1a64").as_string())
      << "the weights are not the ones the pre-training run wrote";
  const std::vector<float> got = encoder_probe(*clf->encoder, *p.tokenizer);
  const auto& want = probe.at("first_token").as_array();
  ASSERT_EQ(got.size(), want.size());
  ASSERT_EQ(static_cast<int64_t>(got.size()), p.config.hidden);
  // The run computed these with the same ops in float32, possibly at another thread count (GEMM
  // splits change the summation order): a few float32 ulps of the LayerNorm-scaled outputs.
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i].as_double(), 1e-4 * (1 + std::abs(want[i].as_double()))) << i;
  }
}

TEST(ShippedEncoder, TrainersStartFromItUnlessToldNot) {
  const PretrainedEncoder p = shipped();
  data::Table t;
  t.add_column(data::Column("Label", std::vector<std::string>{"ham", "spam", "ham", "spam", "ham",
                                                              "spam", "ham", "spam"}));
  t.add_column(data::Column(
      "Text", std::vector<std::string>{"meeting notes attached", "win a free prize now",
                                       "the build is green again", "cheap pills online",
                                       "lunch at noon?", "you have been selected",
                                       "review my patch please", "claim your reward"}));
  auto reference = std::make_shared<TextClassifier>(p.config, 2);
  load_pretrained_encoder(*reference, p.weights());
  // A learning rate far below float32's resolution of the weights: what comes out is what went in.
  TextClassificationOptions o{.label_column = "Label",
                              .sentence1_column = "Text",
                              .batch_size = 8,
                              .max_epochs = 1,
                              .learning_rate = 1e-12,
                              .max_length = 16};
  o.verbose = 0;
  const TextClassificationModel m = TextClassification(o).fit(t);
  EXPECT_EQ(tokenizer_fingerprint(m.tokenizer()), tokenizer_fingerprint(*p.tokenizer));
  EXPECT_LT(max_encoder_difference(*m.module(), *reference), 1e-6);
  o.from_scratch = true;
  const TextClassificationModel scratch = TextClassification(o).fit(t);
  EXPECT_NE(tokenizer_fingerprint(scratch.tokenizer()), tokenizer_fingerprint(*p.tokenizer));
}

}  // namespace
}  // namespace kiln::text
