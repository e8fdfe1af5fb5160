// Pre-training (kiln/text/pretrain.h): the tokenised corpus stream and its cache, seeded windows,
// the ELECTRA generator config and losses, the loss falling on real English text, and resume
// continuing exactly the curve of the uninterrupted run.
#include "kiln/text/pretrain.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include "kiln/io/safetensors.h"
#include "kiln/tensor/error.h"
#include "kiln/train/callbacks.h"
#include "kiln/train/model.h"

namespace kiln::text {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "kiln_pretrain_XXXXXX").string();
    KILN_CHECK(::mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Real English prose every Debian system has: the licence texts in /usr/share/common-licenses,
// one document each, paragraphs (blank-line separated blocks) joined onto one line.
const char* const kLicences[] = {"GPL-3", "Apache-2.0", "LGPL-2.1"};

fs::path write_licence_corpus(const fs::path& dir) {
  const fs::path corpus = dir / "corpus";
  fs::create_directories(corpus);
  for (const char* name : kLicences) {
    std::ifstream in(fs::path("/usr/share/common-licenses") / name);
    KILN_CHECK(in.good(), "cannot read /usr/share/common-licenses/{}", name);
    std::ofstream out(corpus / (std::string(name) + ".txt"));
    std::string line, para;
    auto flush = [&] {
      if (!para.empty()) out << para << "\n";
      para.clear();
    };
    while (std::getline(in, line)) {
      const size_t b = line.find_first_not_of(" \t");
      if (b == std::string::npos) {
        flush();
        continue;
      }
      if (!para.empty()) para.push_back(' ');
      para.append(line, b, std::string::npos);
    }
    flush();
  }
  return corpus;
}

class PretrainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists("/usr/share/common-licenses/GPL-3")) return;
    dir_ = new TempDir();
    corpus_dir_ = new fs::path(write_licence_corpus(dir_->path()));
    tok_ = new std::shared_ptr<const Tokenizer>(
        train_corpus_tokenizer(*corpus_dir_, {.vocab_size = 512, .sample_chars = 100000}));
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete corpus_dir_;
    delete dir_;
    tok_ = nullptr;
    corpus_dir_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (dir_ == nullptr) GTEST_SKIP() << "no /usr/share/common-licenses (Debian base-files)";
  }
  // A two-layer encoder small enough to train in a second.
  static EncoderConfig tiny_config() {
    EncoderConfig c;
    c.embed_dim = 32;
    c.hidden = 64;
    c.layers = "S3 M";
    c.heads = 2;
    c.max_positions = 64;
    return c;
  }
  static PretrainOptions tiny_options(const std::string& objective, const fs::path& out) {
    PretrainOptions o;
    o.objective = objective;
    o.steps = 60;
    o.batch_size = 8;
    o.max_length = 32;
    o.learning_rate = 3e-3;
    o.warmup_steps = 5;
    o.log_every = 5;
    o.checkpoint_every = 0;
    o.seed = 7;
    o.out_dir = out;
    o.verbose = 0;
    return o;
  }
  static inline TempDir* dir_ = nullptr;
  static inline fs::path* corpus_dir_ = nullptr;
  static inline std::shared_ptr<const Tokenizer>* tok_ = nullptr;
};

TEST_F(PretrainTest, CorpusStreamDecodesToTheTextAndItsCacheIsReused) {
  const Tokenizer& tok = **tok_;
  TempDir out;
  const TokenCorpus c = TokenCorpus::build(*corpus_dir_, tok, out.path() / "corpus.tokens", 0);
  EXPECT_EQ(c.documents(), 3);
  // Files in name order: Apache-2.0, GPL-3, LGPL-2.1. The first document decodes to its file.
  const std::vector<int32_t>& ids = c.ids();
  const auto first_sep = std::find(ids.begin(), ids.end(), tok.sep_id());
  ASSERT_NE(first_sep, ids.end());
  std::ifstream in(*corpus_dir_ / "Apache-2.0.txt");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(tok.decode(std::vector<int32_t>(ids.begin(), first_sep)), text.str());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.sep_id()), 3);
  EXPECT_EQ(c.chars(), static_cast<int64_t>(fs::file_size(*corpus_dir_ / "Apache-2.0.txt") +
                                            fs::file_size(*corpus_dir_ / "GPL-3.txt") +
                                            fs::file_size(*corpus_dir_ / "LGPL-2.1.txt")));

  // The cache is read back when files and tokenizer are unchanged: overwrite its ids with a
  // marker and the second build returns the marker, proving it did not tokenise again.
  std::vector<int32_t> marker(ids.size(), 5);
  save_safetensors((out.path() / "corpus.tokens").string(), {{"ids", from_vector(marker)}},
                   load_safetensors((out.path() / "corpus.tokens").string()).metadata);
  EXPECT_EQ(TokenCorpus::build(*corpus_dir_, tok, out.path() / "corpus.tokens", 0).ids(), marker);
  // Another tokenizer (another vocabulary) tokenises again and replaces the cache.
  auto other = train_corpus_tokenizer(*corpus_dir_, {.vocab_size = 400, .sample_chars = 50000});
  const TokenCorpus again =
      TokenCorpus::build(*corpus_dir_, *other, out.path() / "corpus.tokens", 0);
  EXPECT_NE(again.ids(), marker);
  EXPECT_NE(tokenizer_fingerprint(*other), tokenizer_fingerprint(tok));
}

TEST_F(PretrainTest, WindowsAreSeededContiguousAndWrapped) {
  std::vector<int32_t> stream(1000);
  std::iota(stream.begin(), stream.end(), 10);  // ids 10 .. 1009: a window's values name its start
  const TokenCorpus c(stream, 1, 1000);
  const Tensor a = c.window_batch(3, 4, 16, 11, /*cls=*/1, /*sep=*/2);
  ASSERT_EQ(a.shape(), (Shape{4, 16}));
  const std::vector<int64_t> v = a.to_vector<int64_t>();
  for (int64_t b = 0; b < 4; ++b) {
    EXPECT_EQ(v[b * 16], 1);
    EXPECT_EQ(v[b * 16 + 15], 2);
    for (int64_t t = 2; t < 15; ++t) EXPECT_EQ(v[b * 16 + t], v[b * 16 + t - 1] + 1);
  }
  EXPECT_EQ(c.window_batch(3, 4, 16, 11, 1, 2).to_vector<int64_t>(), v);
  EXPECT_NE(c.window_batch(4, 4, 16, 11, 1, 2).to_vector<int64_t>(), v);
  EXPECT_NE(c.window_batch(3, 4, 16, 12, 1, 2).to_vector<int64_t>(), v);
  // A stream shorter than a row is an error naming both lengths.
  const TokenCorpus tiny(std::vector<int32_t>(5, 10), 1, 5);
  try {
    (void)tiny.window_batch(0, 1, 16, 0, 1, 2);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("5 tokens, fewer than a row's 14"), std::string::npos)
        << e.what();
  }
}

TEST(ElectraGenerator, IsAThirdAsWideWithTheSameLayers) {
  const EncoderConfig d = EncoderConfig::preset("nasbert-5m", 16384, 1);
  const EncoderConfig g = electra_generator_config(d, 3);
  EXPECT_EQ(g.hidden, 64);
  EXPECT_EQ(g.heads, 1);
  EXPECT_EQ(g.layers, d.layers);
  EXPECT_EQ(g.embed_dim, d.embed_dim);
  EXPECT_EQ(g.vocab_size, d.vocab_size);
  const EncoderConfig b = electra_generator_config(EncoderConfig::bert(1000, 1), 4);  // C 256
  EXPECT_EQ(b.hidden, 64);
  EXPECT_EQ(b.ffn_dim, 256);
}

TEST_F(PretrainTest, ElectraLabelsExactlyTheTokensTheGeneratorChanged) {
  const Tokenizer& tok = **tok_;
  EncoderConfig cfg = tiny_config();
  cfg.vocab_size = tok.vocab_size();
  cfg.padding_id = tok.pad_id();
  ElectraModel m(cfg, electra_generator_config(cfg, 2));
  Generator init(3);
  m.reset_parameters(&init);
  const TokenCorpus c = TokenCorpus::build(*corpus_dir_, tok, {}, 0);
  const Tensor ids = c.window_batch(0, 4, 32, 1, tok.cls_id(), tok.sep_id());
  Generator g(5);
  MaskedBatch batch =
      mask_tokens(ids, tok.mask_id(), tok.vocab_size(), special_token_ids(tok), 0.15, g);
  const ElectraModel::Losses l = m.losses(ids, batch, 50.0, 9);
  // An untrained generator samples near-uniformly over 512 ids, so almost every masked token is
  // replaced by another: the replaced share is about the masked share (15% of 30 of 32 tokens).
  const double masked = static_cast<double>(batch.positions.size(0)) / (4.0 * 32.0);
  EXPECT_GT(l.replaced, 0.8 * masked);
  EXPECT_LE(l.replaced, masked + 1e-12);
  // Fresh losses: generator ≈ ln V, discriminator BCE ≈ ln 2 (logits near 0).
  EXPECT_NEAR(l.generator, std::log(512.0), 1.0);
  EXPECT_NEAR(l.discriminator, std::log(2.0), 0.3);
  EXPECT_NEAR(l.total.item<float>(), l.generator + 50.0 * l.discriminator, 1e-3);
  // The same sample seed draws the same replacements.
  EXPECT_DOUBLE_EQ(m.losses(ids, batch, 50.0, 9).replaced, l.replaced);
}

class PretrainObjective : public PretrainTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(PretrainObjective, LossFallsAndResumeContinuesTheSameCurve) {
  const Tokenizer& tok = **tok_;
  const TokenCorpus c = TokenCorpus::build(*corpus_dir_, tok, {}, 0);
  TempDir straight, split;
  // One sitting of 60 steps.
  const PretrainResult a =
      pretrain(tiny_config(), tok, c, tiny_options(GetParam(), straight.path()));
  ASSERT_EQ(a.step, 60);
  ASSERT_EQ(a.loss_curve.size(), 12u);
  // The loss falls by half a nat or more: below ln V = 6.24 by enough that the model has at least
  // learnt which tokens are frequent (a fresh model's MLM loss is about ln V; ELECTRA's total adds
  // 50 · ln 2 for the untrained discriminator).
  const double first = a.loss_curve.front().second;
  const double last = (a.loss_curve[10].second + a.loss_curve[11].second) / 2;
  EXPECT_LT(last, first - 0.5) << "first " << first << " last " << last;

  // Three sittings of 20 steps (checkpoint, stop, resume) follow exactly the same curve.
  PretrainOptions o = tiny_options(GetParam(), split.path());
  o.sitting_steps = 20;
  PretrainResult b;
  for (int sitting = 0; sitting < 3; ++sitting) b = pretrain(tiny_config(), tok, c, o);
  ASSERT_EQ(b.step, 60);
  ASSERT_EQ(b.loss_curve.size(), a.loss_curve.size());
  for (size_t i = 0; i < a.loss_curve.size(); ++i) {
    EXPECT_EQ(b.loss_curve[i].first, a.loss_curve[i].first);
    // Same steps, same data, same masks and dropout at the same thread count: equal up to the
    // float32 rounding of the checkpointed state (parameters and Adam moments are stored exactly,
    // so in practice bitwise equal).
    EXPECT_NEAR(b.loss_curve[i].second, a.loss_curve[i].second, 1e-5 * a.loss_curve[i].second)
        << "row " << i;
  }
  // Both runs leave the encoder where the text trainers load it, with its config.
  const SafetensorsFile enc = load_safetensors((split.path() / "encoder.safetensors").string());
  EXPECT_NE(enc.find("encoder.token_embedding.weight"), nullptr);
  EXPECT_TRUE(enc.metadata.count("encoder_config"));
  // log.csv has one header and one row per 5 steps, no repeats from the resumed sittings.
  std::ifstream log(split.path() / "log.csv");
  std::string line;
  int rows = -1;
  while (std::getline(log, line)) ++rows;
  EXPECT_EQ(rows, 12);
}

// Continued pre-training: init_encoder loads a finished run's encoder (before any step, replacing
// the random and word-vector init), the run trains on from there, its checksum joins the identity
// (a resume from other weights is refused, one without init_encoder continues) and a wrong-shaped encoder is refused by name.
TEST_P(PretrainObjective, InitEncoderContinuesFromGivenWeights) {
  const Tokenizer& tok = **tok_;
  const TokenCorpus c = TokenCorpus::build(*corpus_dir_, tok, {}, 0);
  TempDir first, second;
  PretrainOptions o = tiny_options(GetParam(), first.path());
  o.steps = 20;
  o.log_every = 20;
  const PretrainResult a = pretrain(tiny_config(), tok, c, o);
  ASSERT_EQ(a.step, 20);
  const uint64_t trained = weights_checksum(*a.encoder);

  // A continued run of one step at a learning rate of ~1e-18 ends where it started: on the given
  // encoder's weights.
  PretrainOptions cont = tiny_options(GetParam(), second.path());
  cont.init_encoder = first.path();  // a directory: its encoder.safetensors
  cont.steps = 1;
  cont.warmup_steps = 1000000;  // lr at step 0 is learning_rate / 1e6
  cont.learning_rate = 1e-12;
  const PretrainResult b = pretrain(tiny_config(), tok, c, cont);
  const auto ea = a.encoder->state_dict();
  const auto eb = b.encoder->state_dict();
  double max_diff = 0;
  for (const auto& [name, t] : ea) {
    max_diff =
        std::max(max_diff, static_cast<double>(amax(abs(sub(t, eb.at(name)))).item<float>()));
  }
  EXPECT_LT(max_diff, 1e-6) << "the continued run did not start from the given encoder";

  // The continued run's first losses are those of a trained model, not a fresh one: below the
  // first run's first logged loss.
  TempDir third;
  PretrainOptions more = tiny_options(GetParam(), third.path());
  more.init_encoder = first.path() / "encoder.safetensors";  // a file works the same
  more.steps = 10;
  more.log_every = 10;
  const PretrainResult m = pretrain(tiny_config(), tok, c, more);
  TempDir fresh_dir;
  PretrainOptions fresh = tiny_options(GetParam(), fresh_dir.path());
  fresh.steps = 10;
  fresh.log_every = 10;
  const PretrainResult f = pretrain(tiny_config(), tok, c, fresh);
  EXPECT_LT(m.loss_curve.front().second, f.loss_curve.front().second);
  EXPECT_NE(weights_checksum(*m.encoder), trained);  // it trained on

  // Resuming `more` with other starting weights is refused, naming the field; without
  // init_encoder it resumes (the checkpoint holds the weights).
  more.steps = 20;
  more.init_encoder = fresh_dir.path();
  try {
    pretrain(tiny_config(), tok, c, more);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("init_encoder"), std::string::npos) << e.what();
  }
  more.init_encoder.clear();
  EXPECT_EQ(pretrain(tiny_config(), tok, c, more).step, 20);
  // An encoder of another shape is refused, naming what does not fit.
  EncoderConfig wider = tiny_config();
  wider.hidden = 96;
  wider.heads = 3;
  TempDir fourth;
  PretrainOptions bad = tiny_options(GetParam(), fourth.path());
  bad.init_encoder = first.path();
  EXPECT_THROW(pretrain(wider, tok, c, bad), Error);
}

INSTANTIATE_TEST_SUITE_P(Objectives, PretrainObjective, ::testing::Values("electra", "mlm"));

// Pre-training steps run through kiln::Model (compute_loss + train_on_batch), so Keras callbacks
// work there: each step is a batch, a checkpoint interval an epoch, and stop_training stops the
// sitting at a checkpoint the next sitting resumes from, on the same curve.
TEST_F(PretrainTest, CallbacksSeeEveryStepAndCanStopTheSitting) {
  const Tokenizer& tok = **tok_;
  const TokenCorpus c = TokenCorpus::build(*corpus_dir_, tok, {}, 0);
  TempDir straight, stopped;
  PretrainOptions o = tiny_options("electra", straight.path());
  o.steps = 30;
  o.checkpoint_every = 10;
  int begins = 0, ends = 0;
  std::vector<int64_t> batches;
  std::vector<int> epochs;
  std::vector<double> epoch_loss;
  o.callbacks = {callbacks::LambdaCallback(
      {.on_train_begin = [&](Logs&) { ++begins; },
       .on_train_end = [&](Logs&) { ++ends; },
       .on_epoch_end =
           [&](int e, Logs& l) {
             epochs.push_back(e);
             epoch_loss.push_back(l.at("loss"));
             EXPECT_TRUE(l.count("generator_loss") && l.count("discriminator_loss") &&
                         l.count("disc_accuracy") && l.count("learning_rate"));
           },
       .on_batch_end =
           [&](int64_t b, Logs& l) {
             batches.push_back(b);
             EXPECT_TRUE(std::isfinite(l.at("loss")) && l.count("generator_loss"));
           }})};
  const PretrainResult a = pretrain(tiny_config(), tok, c, o);
  EXPECT_EQ(a.step, 30);
  EXPECT_EQ(begins, 1);
  EXPECT_EQ(ends, 1);
  ASSERT_EQ(batches.size(), 30u);
  EXPECT_EQ(batches[0], 0);
  EXPECT_EQ(batches[9], 9);
  EXPECT_EQ(batches[10], 0);  // a new epoch (checkpoint interval) starts
  EXPECT_EQ(epochs, (std::vector<int>{0, 1, 2}));
  // An epoch's loss is the mean of its steps' losses: the log rows (every 5 steps) average to it.
  ASSERT_EQ(a.loss_curve.size(), 6u);
  EXPECT_NEAR(epoch_loss[1], (a.loss_curve[2].second + a.loss_curve[3].second) / 2,
              1e-6 * epoch_loss[1]);

  // A callback that stops after step 15 (mid-interval, at a log row): the sitting checkpoints
  // there and the next one resumes on the same curve. (model() is the kiln::Model the steps run
  // through; outside a run it throws.)
  EXPECT_THROW(callbacks::LambdaCallback({})->model(), Error);
  PretrainOptions s = tiny_options("electra", stopped.path());
  s.steps = 30;
  s.checkpoint_every = 10;
  struct StopAt : callbacks::Callback {
    int64_t at = 0, n = 0;
    void on_batch_end(int64_t, Logs&) override {
      if (++n == at) model().stop_training = true;
    }
  };
  auto stop = std::make_shared<StopAt>();
  stop->at = 15;
  s.callbacks = {stop};
  const PretrainResult first = pretrain(tiny_config(), tok, c, s);
  EXPECT_EQ(first.step, 15);
  s.callbacks = {};
  const PretrainResult second = pretrain(tiny_config(), tok, c, s);
  EXPECT_EQ(second.step, 30);
  ASSERT_EQ(second.loss_curve.size(), a.loss_curve.size());
  for (size_t i = 0; i < a.loss_curve.size(); ++i) {
    EXPECT_NEAR(second.loss_curve[i].second, a.loss_curve[i].second, 1e-5 * a.loss_curve[i].second)
        << "row " << i;
  }
}

TEST_F(PretrainTest, ResumeRefusesAnotherModelOrTokenizer) {
  const Tokenizer& tok = **tok_;
  const TokenCorpus c = TokenCorpus::build(*corpus_dir_, tok, {}, 0);
  TempDir out;
  PretrainOptions o = tiny_options("electra", out.path());
  o.sitting_steps = 2;
  pretrain(tiny_config(), tok, c, o);
  EncoderConfig wider = tiny_config();
  wider.hidden = 96;
  wider.heads = 3;
  try {
    pretrain(wider, tok, c, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("encoder_config"), std::string::npos) << e.what();
  }
  o.objective = "mlm";
  EXPECT_THROW(pretrain(tiny_config(), tok, c, o), Error);
  // Bad options are named.
  o.objective = "gpt";
  try {
    pretrain(tiny_config(), tok, c, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"electra\" or \"mlm\", got \"gpt\""), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace kiln::text
