#include "kiln/text/pretrain.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>

#include "kiln/autograd/grad_mode.h"
#include "kiln/io/atomic_file.h"
#include "kiln/io/safetensors.h"
#include "kiln/nn/loss.h"
#include "kiln/optim/adam.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"
#include "kiln/tensor/random.h"
#include "kiln/tokenizers/bpe.h"
#include "kiln/tokenizers/vocab_trainer.h"
#include "kiln/track/run.h"
#include "kiln/train/model.h"
#include "kiln/train/progress.h"

namespace kiln::text {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- corpus

std::vector<fs::path> corpus_files(const fs::path& dir) {
  KILN_CHECK_AS(IOError, fs::is_directory(dir), "corpus: {} is not a directory", dir.string());
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  KILN_CHECK_AS(IOError, !files.empty(), "corpus: {} holds no .txt files", dir.string());
  return files;
}

namespace {

// Calls fn(paragraph) for each non-empty line and end_document() at each blank line (and at the
// end of each file).
template <typename Para, typename EndDoc>
void read_corpus_file(const fs::path& file, Para&& fn, EndDoc&& end_document) {
  std::ifstream in(file, std::ios::binary);
  KILN_CHECK_AS(IOError, in.good(), "corpus: cannot read {}", file.string());
  std::string line;
  bool open_doc = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      if (open_doc) end_document();
      open_doc = false;
      continue;
    }
    fn(line);
    open_doc = true;
  }
  if (open_doc) end_document();
}

}  // namespace

std::shared_ptr<const Tokenizer> train_corpus_tokenizer(const fs::path& dir,
                                                        const CorpusTokenizerOptions& o) {
  KILN_CHECK(o.vocab_size > 256 + 4,
             "train_corpus_tokenizer: vocab_size {} leaves no room for merges (256 byte symbols "
             "and 4 special tokens come first)",
             o.vocab_size);
  const std::vector<fs::path> files = corpus_files(dir);
  uintmax_t total = 0;
  for (const auto& f : files) total += fs::file_size(f);
  // Every k-th paragraph of every file: an even sample of about sample_chars characters.
  const uint64_t k = std::max<uint64_t>(1, total / std::max<size_t>(1, o.sample_chars));
  std::vector<std::string> sample;
  uint64_t i = 0;
  for (const auto& f : files) {
    read_corpus_file(
        f,
        [&](const std::string& p) {
          if (i++ % k == 0) sample.push_back(p);
        },
        [] {});
  }
  BpeTokenizer bpe = train_bpe(sample, {.vocab_size = o.vocab_size});
  return std::make_shared<BpeTokenizer>(std::move(bpe));
}

uint64_t tokenizer_fingerprint(const Tokenizer& tok) {
  // FNV-1a over every spelling and the special ids.
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&](std::string_view s) {
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
    h = (h ^ 0xff) * 0x100000001b3ULL;
  };
  mix(tok.type());
  for (int32_t id = 0; id < tok.vocab_size(); ++id) mix(tok.id_to_token(id));
  for (int32_t id : {tok.cls_id(), tok.sep_id(), tok.pad_id(), tok.mask_id(), tok.unk_id()}) {
    mix(std::to_string(id));
  }
  return h;
}

TokenCorpus::TokenCorpus(std::vector<int32_t> ids, int64_t documents, int64_t chars)
    : ids_(std::move(ids)), documents_(documents), chars_(chars) {}

TokenCorpus TokenCorpus::build(const fs::path& dir, const Tokenizer& tok, const fs::path& cache,
                               int verbose) {
  KILN_CHECK(tok.sep_id() >= 0, "TokenCorpus::build: the tokenizer has no sep token");
  const std::vector<fs::path> files = corpus_files(dir);
  std::string listing;
  for (const auto& f : files) {
    listing += fmt::format("{}:{};", f.filename().string(), fs::file_size(f));
  }
  const std::string fingerprint = fmt::format("{:016x}", tokenizer_fingerprint(tok));
  if (!cache.empty() && fs::exists(cache)) {
    const SafetensorsFile f = load_safetensors(cache.string());
    auto meta = [&](const char* key) {
      auto it = f.metadata.find(key);
      return it == f.metadata.end() ? std::string() : it->second;
    };
    if (meta("tokenizer") == fingerprint && meta("files") == listing) {
      const Tensor& t = f.at("ids");
      TokenCorpus c(t.to_vector<int32_t>(), std::stoll(meta("documents")),
                    std::stoll(meta("chars")));
      if (verbose > 0) {
        std::printf("corpus: %lld tokens from %s (cached)\n", static_cast<long long>(c.size()),
                    cache.string().c_str());
      }
      return c;
    }
  }
  std::vector<int32_t> ids;
  int64_t documents = 0, chars = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& file : files) {
    // A file's paragraphs, tokenised in parallel; document ends are marked by a sep after the
    // document's last paragraph.
    std::vector<std::string> paras;
    std::vector<char> ends_doc;
    read_corpus_file(
        file,
        [&](const std::string& p) {
          paras.push_back(p);
          ends_doc.push_back(0);
        },
        [&] {
          if (!ends_doc.empty()) ends_doc.back() = 1;
        });
    std::vector<std::vector<int32_t>> encoded(paras.size());
    parallel_for(0, static_cast<int64_t>(paras.size()), 64, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        encoded[static_cast<size_t>(i)] =
            tok.encode_ids(paras[static_cast<size_t>(i)] + "\n", false);
      }
    });
    for (size_t i = 0; i < paras.size(); ++i) {
      chars += static_cast<int64_t>(paras[i].size()) + 1;
      ids.insert(ids.end(), encoded[i].begin(), encoded[i].end());
      if (ends_doc[i]) {
        ids.push_back(tok.sep_id());
        ++documents;
      }
    }
    if (verbose > 0) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("corpus: %-28s %12zu tokens so far (%.0f s)\n", file.filename().string().c_str(),
                  ids.size(), s);
      std::fflush(stdout);
    }
  }
  TokenCorpus c(std::move(ids), documents, chars);
  if (!cache.empty()) {
    if (cache.has_parent_path()) fs::create_directories(cache.parent_path());
    save_safetensors(cache.string(), {{"ids", from_vector(c.ids_)}},
                     {{"tokenizer", fingerprint},
                      {"files", listing},
                      {"documents", std::to_string(c.documents_)},
                      {"chars", std::to_string(c.chars_)}});
  }
  return c;
}

Tensor TokenCorpus::window_batch(int64_t step, int64_t batch_size, int64_t max_length,
                                 uint64_t seed, int32_t cls_id, int32_t sep_id) const {
  const int64_t W = max_length - 2;  // tokens between [cls] and [sep]
  KILN_CHECK(W >= 1 && batch_size >= 1,
             "TokenCorpus::window_batch: need max_length >= 3 and batch_size >= 1, got {} and {}",
             max_length, batch_size);
  KILN_CHECK(size() >= W,
             "TokenCorpus::window_batch: the corpus has {} tokens, fewer than a row's {}", size(),
             W);
  const uint64_t starts = static_cast<uint64_t>(size() - W + 1);
  std::vector<int64_t> v(static_cast<size_t>(batch_size * max_length));
  for (int64_t b = 0; b < batch_size; ++b) {
    const uint64_t o = Generator::hash(seed, static_cast<uint64_t>(step * batch_size + b)) % starts;
    int64_t* row = v.data() + b * max_length;
    row[0] = cls_id;
    for (int64_t t = 0; t < W; ++t) row[1 + t] = ids_[o + static_cast<uint64_t>(t)];
    row[max_length - 1] = sep_id;
  }
  return from_vector(v, {batch_size, max_length});
}

// ---------------------------------------------------------------- word vectors

WordVectors load_word_vectors(const fs::path& path, size_t max_words) {
  std::ifstream in(path, std::ios::binary);
  KILN_CHECK_AS(IOError, in.good(), "load_word_vectors: cannot read {}", path.string());
  WordVectors wv;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line) && (max_words == 0 || wv.vectors.size() < max_words)) {
    ++line_no;
    std::istringstream fields(line);
    std::string word;
    if (!(fields >> word)) continue;
    std::vector<float> v;
    float x = 0;
    while (fields >> x) v.push_back(x);
    KILN_CHECK_AS(IOError, !fields.bad() && fields.eof(),
                  "load_word_vectors: {} line {}: '{}' has a field that is not a number",
                  path.string(), line_no, word);
    if (wv.dim == 0) wv.dim = static_cast<int64_t>(v.size());
    KILN_CHECK_AS(IOError, static_cast<int64_t>(v.size()) == wv.dim && wv.dim > 0,
                  "load_word_vectors: {} line {}: '{}' has {} numbers, the first line had {}",
                  path.string(), line_no, word, v.size(), wv.dim);
    wv.vectors.emplace(std::move(word), std::move(v));
  }
  KILN_CHECK_AS(IOError, !wv.vectors.empty(), "load_word_vectors: {} holds no vectors",
                path.string());
  return wv;
}

int64_t init_token_embeddings(NasBertEncoder& encoder, const Tokenizer& tok,
                              const WordVectors& wv) {
  const int64_t V = tok.vocab_size(), E = encoder.config().embed_dim;
  KILN_CHECK(wv.dim == E,
             "init_token_embeddings: the word vectors have {} dimensions but the encoder's "
             "embed_dim is {} (reduce them, e.g. scripts/corpus/word_vectors.py --dim {})",
             wv.dim, E, E);
  Tensor w = encoder.token_embedding->weight;  // (V, E)
  KILN_CHECK(w.size(0) == V,
             "init_token_embeddings: the encoder has {} token rows, the tokenizer {} ids",
             w.size(0), V);
  const std::vector<int64_t> special = special_token_ids(tok);
  float* rows = w.data_ptr<float>();
  std::vector<std::pair<int64_t, const std::vector<float>*>> found;
  double old_sq = 0, new_sq = 0;
  for (int64_t id = 0; id < V; ++id) {
    if (std::binary_search(special.begin(), special.end(), id)) continue;
    const int32_t one = static_cast<int32_t>(id);
    std::string word = tok.decode(std::span<const int32_t>(&one, 1));
    const size_t b = word.find_first_not_of(" \t\n"), e = word.find_last_not_of(" \t\n");
    if (b == std::string::npos) continue;
    word = word.substr(b, e - b + 1);
    for (char& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto it = wv.vectors.find(word);
    if (it == wv.vectors.end()) continue;
    found.emplace_back(id, &it->second);
    for (int64_t k = 0; k < E; ++k) {
      old_sq += static_cast<double>(rows[id * E + k]) * rows[id * E + k];
      const double x = it->second[static_cast<size_t>(k)];
      new_sq += x * x;
    }
  }
  if (found.empty()) return 0;
  const double scale = std::sqrt(old_sq / std::max(new_sq, 1e-30));
  NoGradGuard no_grad;
  for (const auto& [id, v] : found) {
    for (int64_t k = 0; k < E; ++k) {
      rows[id * E + k] = static_cast<float>(scale * (*v)[static_cast<size_t>(k)]);
    }
  }
  w.data().bump_version();
  return static_cast<int64_t>(found.size());
}

// ---------------------------------------------------------------- ELECTRA

EncoderConfig electra_generator_config(const EncoderConfig& d, int64_t divisor) {
  KILN_CHECK(divisor >= 1, "electra_generator_config: hidden_divisor must be >= 1, got {}",
             divisor);
  EncoderConfig g = d;
  g.hidden = (d.hidden / divisor + 31) / 32 * 32;
  g.heads = std::max<int64_t>(1, g.hidden / 64);
  if (g.hidden % g.heads != 0) g.heads = 1;
  g.ffn_dim = d.ffn_dim > 0 ? std::max<int64_t>(g.hidden, d.ffn_dim / divisor) : 0;
  g.validate();
  return g;
}

ElectraModel::ElectraModel(EncoderConfig discriminator, EncoderConfig generator_config)
    : Module("ElectraModel") {
  const int64_t C = discriminator.hidden;
  generator = register_module("generator",
                              std::make_shared<MaskedLanguageModel>(std::move(generator_config)));
  encoder = register_module("encoder", std::make_shared<NasBertEncoder>(std::move(discriminator)));
  disc_dense = register_module("disc_dense", std::make_shared<nn::Linear>(nn::LinearOptions(C, C)));
  disc_classifier =
      register_module("disc_classifier", std::make_shared<nn::Linear>(nn::LinearOptions(C, 1)));
  name_parameters();
}

namespace {

// One sample per row of logits (M, V) from softmax(logits), by inverse CDF with one uniform of
// (seed, row) per row.
std::vector<int64_t> sample_rows(const Tensor& logits, uint64_t seed) {
  const Tensor l = logits.detach().contiguous();
  const int64_t M = l.size(0), V = l.size(1);
  const float* x = l.data_ptr<float>();
  std::vector<int64_t> out(static_cast<size_t>(M));
  parallel_for(0, M, 16, [&](int64_t b, int64_t e) {
    std::vector<double> p(static_cast<size_t>(V));
    for (int64_t m = b; m < e; ++m) {
      const float* row = x + m * V;
      // Subtract the row max before exp: softmax is shift-invariant and this keeps exp() <= 1.
      const float mx = *std::max_element(row, row + V);
      double total = 0;
      for (int64_t v = 0; v < V; ++v) total += (p[static_cast<size_t>(v)] = std::exp(row[v] - mx));
      const double u = Generator::uniform(seed, static_cast<uint64_t>(m)) * total;
      double acc = 0;
      int64_t pick = V - 1;
      for (int64_t v = 0; v < V; ++v) {
        acc += p[static_cast<size_t>(v)];
        if (u < acc) {
          pick = v;
          break;
        }
      }
      out[static_cast<size_t>(m)] = pick;
    }
  });
  return out;
}

}  // namespace

ElectraModel::Losses ElectraModel::losses(const Tensor& ids, const MaskedBatch& batch,
                                          double disc_weight, uint64_t sample_seed) {
  const int64_t B = ids.size(0), T = ids.size(1);
  // Generator: MLM at the masked positions.            logits: (M, V)
  const Tensor gen_logits = generator->logits(batch);
  const Tensor gen_loss = cross_entropy(gen_logits, batch.targets);
  // Replace each masked position by a sample of the generator (no gradient through sampling).
  const std::vector<int64_t> samples = sample_rows(gen_logits, sample_seed);
  std::vector<int64_t> replaced_ids = ids.contiguous().to_vector<int64_t>();
  const std::vector<int64_t> positions = batch.positions.to_vector<int64_t>();
  for (size_t i = 0; i < positions.size(); ++i) {
    replaced_ids[static_cast<size_t>(positions[i])] = samples[i];
  }
  const std::vector<int64_t> original = ids.contiguous().to_vector<int64_t>();
  const int64_t pad = encoder->config().padding_id;
  std::vector<float> label(original.size()), real(original.size());
  double n_real = 0, n_replaced = 0;
  for (size_t i = 0; i < original.size(); ++i) {
    real[i] = original[i] != pad ? 1.0f : 0.0f;
    label[i] = replaced_ids[i] != original[i] ? 1.0f : 0.0f;
    n_real += real[i];
    n_replaced += label[i];
  }
  // Discriminator: one logit per token.                (B, T)
  const Tensor h = encoder->forward(from_vector(replaced_ids, {B, T}));  // (B, T, C)
  const Tensor logit = reshape(disc_classifier->forward(gelu(disc_dense->forward(h))), {B, T});
  const Tensor real_t = from_vector(real, {B, T});
  const Tensor disc_sum = nn::functional::binary_cross_entropy_with_logits(
      logit, from_vector(label, {B, T}), real_t, {}, "sum");
  const Tensor disc_loss = div(disc_sum, std::max(1.0, n_real));
  Losses out;
  out.total = add(gen_loss, mul(disc_loss, disc_weight));
  out.generator = gen_loss.item<float>();
  out.discriminator = disc_loss.item<float>();
  const std::vector<float> lv = logit.detach().contiguous().to_vector<float>();
  double right = 0;
  for (size_t i = 0; i < lv.size(); ++i) {
    if (real[i] > 0 && (lv[i] > 0) == (label[i] > 0)) right += 1;
  }
  out.disc_accuracy = right / std::max(1.0, n_real);
  out.replaced = n_replaced / std::max(1.0, n_real);
  return out;
}

// ---------------------------------------------------------------- pre-training

namespace {

// What must match for a checkpoint to resume: everything that changes the model or the data
// stream. steps, learning_rate and warmup may change between sittings (running longer).
json::Value run_identity(const std::string& objective, const EncoderConfig& config,
                         const Tokenizer& tok, const PretrainOptions& o,
                         std::optional<uint64_t> init_checksum) {
  json::Value v = json::Value::object();
  v["objective"] = objective;
  v["encoder_config"] = config.to_json();
  v["tokenizer"] = fmt::format("{:016x}", tokenizer_fingerprint(tok));
  v["batch_size"] = o.batch_size;
  v["max_length"] = o.max_length;
  v["seed"] = static_cast<int64_t>(o.seed);
  v["mask_prob"] = o.mask_prob;
  if (objective == "electra") {
    v["disc_weight"] = o.disc_weight;
    v["generator_divisor"] = o.generator_divisor;
  }
  if (init_checksum) v["init_encoder"] = fmt::format("{:016x}", *init_checksum);
  return v;
}

double learning_rate_at(int64_t step, const PretrainOptions& o) {
  const double warm =
      o.warmup_steps > 0
          ? std::min(1.0, static_cast<double>(step + 1) / static_cast<double>(o.warmup_steps))
          : 1.0;
  const int64_t decay = std::max<int64_t>(1, o.steps - o.warmup_steps);
  const double left =
      step < o.warmup_steps
          ? 1.0
          : std::max(0.0, static_cast<double>(o.steps - step) / static_cast<double>(decay));
  return o.learning_rate * warm * left;
}

// The pre-training objective as a kiln::Model (Model::compute_loss), so each step runs through
// Model::train_on_batch -- the step fit uses: zero_grad, loss, backward, global clipping, the
// optimiser's step. x = y = the step's windows (B, T); masking, dropout and ELECTRA's samples are
// seeded from (seed, step), set before each batch, so a resumed run repeats the same steps.
class PretrainingModel : public Model {
 public:
  PretrainingModel(std::shared_ptr<ElectraModel> electra, std::shared_ptr<MaskedLanguageModel> mlm,
                   const Tokenizer& tok, const PretrainOptions& o)
      : Model(electra ? nn::ModulePtr(electra) : nn::ModulePtr(mlm), "pretraining_model"),
        electra_(std::move(electra)),
        mlm_(std::move(mlm)),
        tok_(tok),
        o_(o),
        special_(special_token_ids(tok)) {}

  void set_step(int64_t step) { step_ = step; }
  NasBertEncoder& encoder() const { return electra_ ? *electra_->encoder : *mlm_->encoder; }
  // The last batch's parts of the loss: generator (or masked-LM) loss, discriminator loss and
  // accuracy (0 for MLM).
  double generator_loss = 0, discriminator_loss = 0, disc_accuracy = 0;

 protected:
  Tensor compute_loss(const Batch& b, Tensor& output) override {
    (void)output;  // the objective is the loss itself: no output for metrics
    const uint64_t step_seed = Generator::hash(o_.seed ^ 0x5eedULL, static_cast<uint64_t>(step_));
    manual_seed(step_seed);  // dropout masks of this step
    Generator mask_gen(step_seed + 1);
    MaskedBatch batch =
        mask_tokens(b.x, tok_.mask_id(), tok_.vocab_size(), special_, o_.mask_prob, mask_gen);
    if (!electra_) {
      Tensor loss = mlm_->loss(batch);
      generator_loss = loss.item<double>();
      return loss;
    }
    // ELECTRA masks with [MASK] only: every chosen position gets mask_id.
    std::vector<int64_t> in = b.x.to_vector<int64_t>();
    for (int64_t p : batch.positions.to_vector<int64_t>())
      in[static_cast<size_t>(p)] = tok_.mask_id();
    batch.input_ids = from_vector(in, b.x.shape());
    ElectraModel::Losses l = electra_->losses(b.x, batch, o_.disc_weight, step_seed + 2);
    generator_loss = l.generator;
    discriminator_loss = l.discriminator;
    disc_accuracy = l.disc_accuracy;
    return l.total;
  }
  void build_forward(const Tensor& x) override {
    (void)x;  // every parameter exists from construction: nothing to build
  }

 private:
  std::shared_ptr<ElectraModel> electra_;
  std::shared_ptr<MaskedLanguageModel> mlm_;
  const Tokenizer& tok_;
  const PretrainOptions& o_;
  std::vector<int64_t> special_;
  int64_t step_ = 0;
};

// 1234567 -> "1,234,567".
std::string with_commas(double v) {
  const std::string digits = std::to_string(std::llabs(std::llround(v)));
  std::string out = v < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

// log.csv rows up to and including `step` (the rest belong to steps a resumed run repeats).
void truncate_log(const fs::path& path, int64_t step) {
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  std::stringstream kept;
  std::string line;
  bool header = true;
  while (std::getline(in, line)) {
    if (header || std::stoll(line.substr(0, line.find(','))) <= step) kept << line << '\n';
    header = false;
  }
  in.close();
  write_file_atomic(path, kept.str(), "pretrain");
}

}  // namespace

PretrainResult pretrain(EncoderConfig config, const Tokenizer& tok, const TokenCorpus& corpus,
                        const PretrainOptions& o) {
  const bool electra = o.objective == "electra";
  KILN_CHECK(electra || o.objective == "mlm",
             "pretrain: objective must be \"electra\" or \"mlm\", got \"{}\"", o.objective);
  KILN_CHECK(tok.mask_id() >= 0 && tok.pad_id() >= 0 && tok.cls_id() >= 0 && tok.sep_id() >= 0,
             "pretrain: the tokenizer needs cls, sep, pad and mask tokens (set_special_tokens)");
  KILN_CHECK(o.steps > 0 && o.batch_size > 0,
             "pretrain: steps and batch_size must be positive, got {} and {}", o.steps,
             o.batch_size);
  KILN_CHECK(o.learning_rate > 0 && o.warmup_steps >= 0,
             "pretrain: learning_rate must be positive and warmup_steps >= 0, got {} and {}",
             o.learning_rate, o.warmup_steps);
  config.vocab_size = tok.vocab_size();
  config.padding_id = tok.pad_id();
  KILN_CHECK(o.max_length >= 3 && o.max_length <= config.max_positions,
             "pretrain: max_length {} must lie in [3, max_positions = {}]", o.max_length,
             config.max_positions);
  config.validate();

  std::shared_ptr<nn::Module> model;
  std::shared_ptr<ElectraModel> em;
  std::shared_ptr<MaskedLanguageModel> mlm;
  if (electra) {
    em = std::make_shared<ElectraModel>(config,
                                        electra_generator_config(config, o.generator_divisor));
    model = em;
  } else {
    mlm = std::make_shared<MaskedLanguageModel>(config);
    model = mlm;
  }
  Generator init(o.seed);
  model->reset_parameters(&init);
  if (!o.word_vectors.empty()) {
    const WordVectors wv = load_word_vectors(o.word_vectors);
    const int64_t n = init_token_embeddings(electra ? *em->encoder : *mlm->encoder, tok, wv);
    if (electra && em->generator->encoder->config().embed_dim == wv.dim) {
      init_token_embeddings(*em->generator->encoder, tok, wv);
    }
    if (o.verbose > 0) {
      std::printf("pretrain: %lld of %d token embeddings start from %s\n",
                  static_cast<long long>(n), tok.vocab_size(), o.word_vectors.string().c_str());
    }
  }
  std::optional<uint64_t> init_checksum;
  if (!o.init_encoder.empty()) {
    const fs::path weights =
        fs::is_directory(o.init_encoder) ? o.init_encoder / "encoder.safetensors" : o.init_encoder;
    NasBertEncoder& target = electra ? *em->encoder : *mlm->encoder;
    load_pretrained_encoder(*model, weights);  // checks every name and shape
    init_checksum = weights_checksum(target);
    if (o.verbose > 0) {
      std::printf("pretrain: the encoder starts from %s (checksum %016llx)\n",
                  weights.string().c_str(), static_cast<unsigned long long>(*init_checksum));
    }
  }
  model->train();
  auto opt = std::make_shared<optim::AdamW>(
      optim::split_groups(model->named_parameters(), optim::is_bias_or_norm,
                          {{"weight_decay", 0.0}}),
      optim::AdamOptions(o.learning_rate).weight_decay(o.weight_decay));
  PretrainingModel trainer(em, mlm, tok, o);
  optimizers::OptimizerSpec spec(opt);
  if (o.grad_clip > 0) spec.global_clipnorm(o.grad_clip);
  trainer.compile(spec, nullptr);
  trainer.set_distributed(false);  // every process would read the same windows: not data-parallel

  const json::Value identity = run_identity(o.objective, config, tok, o, init_checksum);
  const fs::path ckpt = o.out_dir.empty() ? fs::path() : o.out_dir / "checkpoint.safetensors";
  const fs::path log_path = o.out_dir.empty() ? fs::path() : o.out_dir / "log.csv";
  PretrainResult result;
  if (!o.out_dir.empty()) fs::create_directories(o.out_dir);
  if (o.resume && !ckpt.empty() && fs::exists(ckpt)) {
    const SafetensorsFile f = load_safetensors(ckpt.string());
    const json::Value saved = json::parse(f.metadata.at("identity"));
    for (const auto& [key, value] : identity.members()) {
      const json::Value* was = saved.find(key);
      KILN_CHECK(was != nullptr && was->dump() == value.dump(),
                 "pretrain: {} was written by a run with {} = {}, this run has {} (resume needs "
                 "the same model, tokenizer and data stream; use another out_dir or delete the "
                 "checkpoint)",
                 ckpt.string(), key, was != nullptr ? was->dump() : "(none)", value.dump());
    }
    nn::StateDict weights;
    optim::StateDict optimizer;
    for (const auto& [name, t] : f.tensors) {
      if (name.rfind("model.", 0) == 0) weights.insert(name.substr(6), t);
      if (name.rfind("optimizer.", 0) == 0) optimizer.emplace_back(name.substr(10), t);
    }
    model->load_state_dict(weights);
    opt->load_state_dict(optimizer);
    result.step = std::stoll(f.metadata.at("step"));
    result.tokens_seen = std::stoll(f.metadata.at("tokens_seen"));
    result.seconds = std::stod(f.metadata.at("seconds"));
    const json::Value curve = json::parse(f.metadata.at("loss_curve"));
    for (const auto& p : curve.as_array()) {
      result.loss_curve.emplace_back(p.at(0).as_int(), p.at(1).as_double());
    }
    truncate_log(log_path, result.step);
    if (o.verbose > 0) {
      std::printf("pretrain: resumed %s at step %s of %s\n", ckpt.string().c_str(),
                  with_commas(static_cast<double>(result.step)).c_str(),
                  with_commas(static_cast<double>(o.steps)).c_str());
    }
  }
  if (!log_path.empty() && !fs::exists(log_path)) {
    std::ofstream(log_path) << "step,loss,generator_loss,discriminator_loss,disc_accuracy,lr,"
                               "tokens_seen,seconds\n";
  }

  auto save_checkpoint = [&] {
    if (ckpt.empty()) return;
    NamedTensorList tensors;
    for (const auto& [name, t] : model->state_dict()) tensors.emplace_back("model." + name, t);
    for (const auto& [name, t] : opt->state_dict()) tensors.emplace_back("optimizer." + name, t);
    json::Value curve = json::Value::array();
    for (const auto& [s, l] : result.loss_curve) {
      json::Value p = json::Value::array();
      p.push_back(s);
      p.push_back(l);
      curve.push_back(p);
    }
    save_safetensors(ckpt.string(), tensors,
                     {{"identity", identity.dump()},
                      {"step", std::to_string(result.step)},
                      {"tokens_seen", std::to_string(result.tokens_seen)},
                      {"seconds", fmt::format("{:.3f}", result.seconds)},
                      {"loss_curve", curve.dump()}});
    NasBertEncoder& enc = trainer.encoder();
    save_encoder(enc, o.out_dir / "encoder.safetensors");
    // What the shipped encoder's test replays: the checksum and the probe sentence's encoding.
    json::Value probe = json::Value::object();
    probe["sentence"] = kProbeSentence;
    probe["step"] = result.step;
    probe["weights_fnv1a64"] = fmt::format("{:016x}", weights_checksum(enc));
    json::Value first = json::Value::array();
    for (float v : encoder_probe(enc, tok)) first.push_back(static_cast<double>(v));
    probe["first_token"] = first;
    write_file_atomic((o.out_dir / "probe.json").string(), probe.dump() + "\n");
  };

  // Experiment tracking (kiln/track): the caller's active run, else a run of its own when tracking
  // is on. Each sitting is one run; "resumed_from_step" tells them apart.
  track::RunPtr run = track::active_run();
  track::RunPtr own_run;
  if (!run && track::tracking_enabled()) {
    own_run = track::Run::start({.experiment = "pretrain", .name = o.objective});
    run = own_run;
  }
  if (run) {
    std::map<std::string, std::string> params;
    for (const auto& [key, value] : identity.members()) {
      params["pretrain." + key] = value.is_string() ? value.as_string() : value.dump();
    }
    params["pretrain.steps"] = std::to_string(o.steps);
    params["pretrain.learning_rate"] = fmt::format("{}", o.learning_rate);
    params["pretrain.warmup_steps"] = std::to_string(o.warmup_steps);
    params["pretrain.weight_decay"] = fmt::format("{}", o.weight_decay);
    params["pretrain.word_vectors"] = o.word_vectors.string();
    params["pretrain.resumed_from_step"] = std::to_string(result.step);
    params["corpus.tokens"] = std::to_string(corpus.size());
    params["corpus.documents"] = std::to_string(corpus.documents());
    run->log_params(params);
  }

  const bool interactive = o.verbose > 0 && isatty(fileno(stdout));
  const auto sitting_start = std::chrono::steady_clock::now();
  const double seconds_before = result.seconds;
  const int64_t start_step = result.step;
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - sitting_start).count();
  };
  // Running sums since the last log row.
  double sum_loss = 0, sum_gen = 0, sum_disc = 0, sum_acc = 0;
  int64_t n_sum = 0, tokens_at_row = result.tokens_seen;
  double time_at_row = 0, last_draw = -1;
  std::ofstream log;
  if (!log_path.empty()) log.open(log_path, std::ios::app);

  // Keras callbacks see the steps as batches; an "epoch" is a checkpoint interval (the whole run
  // when checkpoint_every is 0), its logs the means over those steps.
  const int64_t epoch_steps = o.checkpoint_every > 0 ? o.checkpoint_every : o.steps;
  for (const auto& cb : o.callbacks) cb->set_model(&trainer);
  Logs train_logs;
  for (const auto& cb : o.callbacks) cb->on_train_begin(train_logs);
  double epoch_loss = 0, epoch_gen = 0, epoch_disc = 0, epoch_acc = 0;
  int64_t epoch_n = 0;
  const std::string gen_key = electra ? "generator_loss" : "mlm_loss";

  while (result.step < o.steps) {
    const int64_t step = result.step;
    const double lr = learning_rate_at(step, o);
    opt->set_lr(lr);
    const int epoch = static_cast<int>(step / epoch_steps);
    Logs batch_logs{{"learning_rate", lr}};
    if (step % epoch_steps == 0 || step == start_step) {
      for (const auto& cb : o.callbacks) cb->on_epoch_begin(epoch, batch_logs);
    }
    for (const auto& cb : o.callbacks) cb->on_batch_begin(step % epoch_steps, batch_logs);
    const Tensor ids =
        corpus.window_batch(step, o.batch_size, o.max_length, o.seed, tok.cls_id(), tok.sep_id());
    trainer.set_step(step);
    const double loss_value = trainer.train_on_batch(ids, ids).at("loss");
    sum_gen += trainer.generator_loss;
    sum_disc += trainer.discriminator_loss;
    sum_acc += trainer.disc_accuracy;
    epoch_loss += loss_value;
    epoch_gen += trainer.generator_loss;
    epoch_disc += trainer.discriminator_loss;
    epoch_acc += trainer.disc_accuracy;
    ++epoch_n;
    KILN_CHECK(std::isfinite(loss_value),
               "pretrain: the loss became {} at step {} (lower learning_rate or grad_clip)",
               loss_value, step);
    ++result.step;
    result.tokens_seen += o.batch_size * o.max_length;
    result.seconds = seconds_before + elapsed();
    sum_loss += loss_value;
    ++n_sum;

    const bool row = result.step % std::max<int64_t>(1, o.log_every) == 0 || result.step == o.steps;
    if (row) {
      const double now = elapsed();
      const double rate = static_cast<double>(result.tokens_seen - tokens_at_row) /
                          std::max(1e-9, now - time_at_row);
      const double n = static_cast<double>(n_sum);
      result.loss_curve.emplace_back(result.step, sum_loss / n);
      if (run) {
        run->log_metric("loss", sum_loss / n, result.step);
        run->log_metric(electra ? "generator_loss" : "mlm_loss", sum_gen / n, result.step);
        if (electra) {
          run->log_metric("discriminator_loss", sum_disc / n, result.step);
          run->log_metric("disc_accuracy", sum_acc / n, result.step);
        }
        run->log_metric("learning_rate", lr, result.step);
        run->log_metric("tokens_per_second", rate, result.step);
      }
      if (log.is_open()) {
        log << fmt::format("{},{:.5f},{:.5f},{:.5f},{:.5f},{:.6g},{},{:.1f}\n", result.step,
                           sum_loss / n, sum_gen / n, electra ? sum_disc / n : 0.0,
                           electra ? sum_acc / n : 0.0, lr, result.tokens_seen, result.seconds);
        log.flush();
      }
      if (o.verbose > 0 && (!interactive || now - last_draw > 0.25 || result.step == o.steps)) {
        const double eta = now / static_cast<double>(result.step - start_step) *
                           static_cast<double>(o.steps - result.step);
        std::string line = fmt::format(
            "step {}/{} - {} left - loss: {:.4f}", with_commas(static_cast<double>(result.step)),
            with_commas(static_cast<double>(o.steps)), Progbar::format_eta(eta), sum_loss / n);
        if (electra) {
          line += fmt::format(" - generator: {:.4f} - discriminator: {:.4f} - disc_acc: {:.4f}",
                              sum_gen / n, sum_disc / n, sum_acc / n);
        }
        line += fmt::format(" - lr: {:.2e} - {} tokens/s", lr, with_commas(rate));
        std::printf(interactive ? "\r%s\x1b[K" : "%s\n", line.c_str());
        std::fflush(stdout);
        last_draw = now;
      }
      sum_loss = sum_gen = sum_disc = sum_acc = 0;
      n_sum = 0;
      tokens_at_row = result.tokens_seen;
      time_at_row = now;
    }
    batch_logs["loss"] = loss_value;
    batch_logs[gen_key] = trainer.generator_loss;
    if (electra) {
      batch_logs["discriminator_loss"] = trainer.discriminator_loss;
      batch_logs["disc_accuracy"] = trainer.disc_accuracy;
    }
    for (const auto& cb : o.callbacks) cb->on_batch_end(step % epoch_steps, batch_logs);
    if (result.step % epoch_steps == 0 || result.step == o.steps) {
      const double n = static_cast<double>(epoch_n);
      Logs epoch_logs{{"loss", epoch_loss / n}, {gen_key, epoch_gen / n}, {"learning_rate", lr}};
      if (electra) {
        epoch_logs["discriminator_loss"] = epoch_disc / n;
        epoch_logs["disc_accuracy"] = epoch_acc / n;
      }
      for (const auto& cb : o.callbacks) cb->on_epoch_end(epoch, epoch_logs);
      epoch_loss = epoch_gen = epoch_disc = epoch_acc = 0;
      epoch_n = 0;
    }
    const bool time_up = (o.time_limit_seconds > 0 && elapsed() >= o.time_limit_seconds) ||
                         (o.sitting_steps > 0 && result.step - start_step >= o.sitting_steps) ||
                         trainer.stop_training;
    if ((o.checkpoint_every > 0 && result.step % o.checkpoint_every == 0) || time_up) {
      save_checkpoint();
    }
    if (o.snapshot_every > 0 && result.step % o.snapshot_every == 0 && !o.out_dir.empty()) {
      save_encoder(trainer.encoder(),
                   o.out_dir / fmt::format("encoder-{}.safetensors", result.step));
    }
    if (time_up) {
      if (o.verbose > 0) {
        std::printf(
            "%spretrain: %s at step %s; rerun to resume\n", interactive ? "\n" : "",
            trainer.stop_training ? "a callback stopped training" : "this sitting's limit reached",
            with_commas(static_cast<double>(result.step)).c_str());
      }
      break;
    }
  }
  if (interactive) std::printf("\n");
  if (result.step == o.steps) save_checkpoint();
  if (run && !o.out_dir.empty() && fs::exists(o.out_dir / "encoder.safetensors")) {
    run->log_artifact(o.out_dir / "encoder.safetensors");
  }
  for (const auto& cb : o.callbacks) cb->on_train_end(train_logs);
  if (own_run) own_run->end();
  model->eval();
  result.encoder = electra ? em->encoder : mlm->encoder;
  return result;
}

// ---------------------------------------------------------------- the shipped encoder

std::vector<float> encoder_probe(NasBertEncoder& encoder, const Tokenizer& tok) {
  const bool was_training = encoder.is_training();
  encoder.eval();
  NoGradGuard no_grad;
  const Encoding e = tok.encode(kProbeSentence);
  const Tensor ids = from_vector(std::vector<int64_t>(e.ids.begin(), e.ids.end()),
                                 {1, static_cast<int64_t>(e.ids.size())});
  std::vector<float> out = encoder.first_token(ids).contiguous().to_vector<float>();
  if (was_training) encoder.train();
  return out;
}

uint64_t weights_checksum(const nn::Module& module) {
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&](const unsigned char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  };
  for (const auto& [name, t] : module.state_dict()) {
    mix(reinterpret_cast<const unsigned char*>(name.data()), name.size());
    if (t.dtype() != kFloat32) continue;
    const Tensor c = t.contiguous();
    mix(reinterpret_cast<const unsigned char*>(c.data_ptr<float>()),
        static_cast<size_t>(c.numel()) * sizeof(float));
  }
  return h;
}

fs::path shipped_encoder_dir() {
  std::vector<fs::path> roots;
  if (const char* env = std::getenv("KILN_PRETRAINED_DIR")) roots.emplace_back(env);
  roots.emplace_back("models");
#ifdef KILN_SOURCE_MODELS_DIR
  roots.emplace_back(KILN_SOURCE_MODELS_DIR);
#endif
#ifdef KILN_INSTALL_MODELS_DIR
  roots.emplace_back(KILN_INSTALL_MODELS_DIR);
#endif
  for (const auto& r : roots) {
    const fs::path d = r / kShippedEncoder;
    if (fs::exists(d / "encoder.safetensors") && fs::exists(d / "tokenizer")) return d;
  }
  return {};
}

PretrainedEncoder load_pretrained(const fs::path& dir) {
  KILN_CHECK_AS(IOError, fs::exists(dir / "encoder.safetensors"),
                "load_pretrained: {} has no encoder.safetensors", dir.string());
  KILN_CHECK_AS(IOError, fs::is_directory(dir / "tokenizer"),
                "load_pretrained: {} has no tokenizer/ directory", dir.string());
  PretrainedEncoder p;
  p.dir = dir;
  const SafetensorsFile f = load_safetensors((dir / "encoder.safetensors").string());
  auto it = f.metadata.find("encoder_config");
  KILN_CHECK_AS(IOError, it != f.metadata.end(),
                "load_pretrained: {} has no encoder_config metadata (not a save_encoder file)",
                (dir / "encoder.safetensors").string());
  p.config = EncoderConfig::from_json(json::parse(it->second));
  p.tokenizer = Tokenizer::load(dir / "tokenizer");
  KILN_CHECK(p.tokenizer->vocab_size() == p.config.vocab_size,
             "load_pretrained: {}'s tokenizer has {} ids but the encoder was trained with {}",
             dir.string(), p.tokenizer->vocab_size(), p.config.vocab_size);
  return p;
}

}  // namespace kiln::text
