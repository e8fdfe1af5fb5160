#pragma once
// Masked-LM pre-training of the NAS-BERT / BERT encoder from raw text (Devlin et al., "BERT",
// §3.1: 15% of the tokens are chosen; of those 80% become [mask], 10% a random token, 10% stay),
// encoder checkpoints, and loading pretrained encoder weights by name — Kiln's own checkpoints or
// Hugging Face BERT / RoBERTa safetensors, mapped to Kiln's names. The classification head is never
// loaded: it starts fresh, as ML.NET does.
//
//   auto tok = load_text_tokenizer();                                   // GPT-2 BPE
//   EncoderConfig cfg = EncoderConfig::preset("nasbert-5m", tok->vocab_size(), tok->pad_id());
//   MlmResult r = pretrain_mlm(cfg, *tok, texts, {.epochs = 2});   // kiln::Model::fit inside
//   save_encoder(*r.encoder, "encoder.safetensors");
//   TextClassificationOptions o{...};  o.pretrained_encoder = "encoder.safetensors";
//
// Legend: B = batch, T = tokens, C = hidden, V = vocabulary, M = masked positions in a batch.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kiln/io/safetensors.h"
#include "kiln/nn/module.h"
#include "kiln/text/nasbert.h"
#include "kiln/tokenizers/tokenizer.h"
#include "kiln/train/model.h"

namespace kiln::text {

/// A batch prepared for masked-LM training.
struct MaskedBatch {
  Tensor input_ids;  // (B, T) int64: the ids with the chosen positions replaced
  Tensor positions;  // (M) int64: flat indices b·T + t of the chosen positions
  Tensor targets;    // (M) int64: the original ids there
};

/// The special ids masking never chooses (cls, sep, pad, mask, unk and the tokenizer's other
/// registered special tokens).
std::vector<int64_t> special_token_ids(const Tokenizer& tok);

/// BERT's masking of ids (B, T) int64: each position whose id is not in `special_ids` is chosen
/// with probability `mask_prob`; a chosen position becomes mask_id (80%), a uniform random id in
/// [0, vocab_size) that is not special (10%) or stays (10%). At least one position is chosen when
/// any is eligible. Deterministic for a given generator state.
MaskedBatch mask_tokens(const Tensor& ids, int64_t mask_id, int64_t vocab_size,
                        std::span<const int64_t> special_ids, double mask_prob, Generator& gen);

/// Encoder + BERT's LM head: h = LN(GELU(dense(encoder(ids)))), logits = decoder(h) (C -> V),
/// computed at the masked positions only (B·T·V logits would not fit in memory for GPT-2's V).
/// Children: encoder, dense, norm, decoder.
class MaskedLanguageModel : public nn::Module {
 public:
  using Module::forward;
  explicit MaskedLanguageModel(EncoderConfig config);
  /// Logits (M, V) at batch.positions.
  Tensor logits(const MaskedBatch& batch);
  /// Mean cross-entropy of the logits against batch.targets (a 0-d tensor).
  Tensor loss(const MaskedBatch& batch);

  std::shared_ptr<NasBertEncoder> encoder;
  std::shared_ptr<nn::Linear> dense, decoder;
  std::shared_ptr<nn::LayerNorm> norm;
};

/// A kiln::Model whose loss is the masked-LM objective: x (B, T) int64 ids (y is not read) are
/// masked afresh at every step by mask_tokens (a generator seeded once) and the loss is
/// MaskedLanguageModel::loss. Compile it with loss nullptr; fit, callbacks, the progress bar,
/// checkpoints (save / load_model with a factory) and evaluate then work as for any model.
///
///   MaskedLanguageTrainer m(std::make_shared<MaskedLanguageModel>(cfg), *tok, 0.15, /*seed=*/1);
///   m.compile(optimizers::AdamW(5e-4), nullptr);
///   m.fit(ids, ids, {.epochs = 2, .callbacks = {callbacks::CSVLogger("mlm.csv")}});
class MaskedLanguageTrainer : public Model {
 public:
  MaskedLanguageTrainer(std::shared_ptr<MaskedLanguageModel> mlm, const Tokenizer& tok,
                        double mask_prob = 0.15, uint64_t seed = 0);
  MaskedLanguageModel& mlm() const { return *mlm_; }

 protected:
  Tensor compute_loss(const Batch& batch, Tensor& output) override;
  void build_forward(const Tensor& x) override;

 private:
  std::shared_ptr<MaskedLanguageModel> mlm_;
  std::vector<int64_t> special_;
  int64_t mask_id_, vocab_size_;
  double mask_prob_;
  Generator gen_;
};

struct MlmOptions {
  int64_t max_length = 128;  // tokens per row, specials included
  int64_t batch_size = 32;
  int epochs = 1;
  double learning_rate = 5e-4;  // AdamW, linear warm-up over the first 6% of steps, then decay
  double weight_decay = 0.01;
  double mask_prob = 0.15;
  double grad_clip = 1.0;  // global gradient norm; 0 = off
  uint64_t seed = 0;       // initialisation, shuffling, masking and dropout
  int verbose = 1;         // Model::fit's: 0 silent, 1 progress bar, 2 one line per epoch
  std::vector<callbacks::CallbackPtr> callbacks = {};  // Keras callbacks, as for fit
};

struct MlmResult {
  std::shared_ptr<NasBertEncoder> encoder;  // the pre-trained encoder (eval mode)
  std::vector<double> epoch_loss;           // mean masked-LM loss of each epoch
};

/// Pre-trains a fresh encoder built from `config` (vocab and pad ids taken from `tok`) on `texts`
/// with MaskedLanguageTrainer and kiln::Model::fit (each text one row, shuffled per epoch). The
/// tokenizer needs cls, sep, pad and mask roles.
MlmResult pretrain_mlm(EncoderConfig config, const Tokenizer& tok,
                       std::span<const std::string> texts, const MlmOptions& options = {});

/// Writes the encoder's weights as "encoder.<state_dict name>" (the names TextClassifier uses) and
/// its config as metadata "encoder_config" (JSON).
void save_encoder(const NasBertEncoder& encoder, const std::filesystem::path& path);

/// Hugging Face BERT / RoBERTa names ("bert.encoder.layer.0.attention.self.query.weight",
/// "roberta.embeddings.word_embeddings.weight", with or without the model prefix) mapped to a Kiln
/// bert-shaped encoder ("M F" per layer, embed_dim == hidden): q/k/v are concatenated into
/// in_proj_weight / in_proj_bias, token-type embedding 0 is folded into the position embeddings,
/// RoBERTa's positions skip their first padding_idx + 1 = 2 rows. Names returned are
/// "encoder.<name>"; tensors a Kiln encoder lacks (pooler, MLM heads) are dropped. Set
/// config.layer_norm_eps = 1e-12 for BERT's checkpoints.
nn::StateDict map_hf_encoder_names(const NamedTensorList& hf, const EncoderConfig& config);

/// Loads the encoder weights of `path` (a save_encoder() file, a TextClassifier's weights, or a
/// Hugging Face BERT / RoBERTa safetensors file) into model.encoder by name; the head is left as
/// it is. Every encoder parameter must be present with its shape; throws naming the missing ones.
/// Returns the number of tensors loaded.
size_t load_pretrained_encoder(nn::Module& model, const std::filesystem::path& path);

}  // namespace kiln::text
