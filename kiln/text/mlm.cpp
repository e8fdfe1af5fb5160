#include "kiln/text/mlm.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdio>
#include <unordered_set>

#include "kiln/tensor/error.h"

namespace kiln::text {

namespace fs = std::filesystem;

std::vector<int64_t> special_token_ids(const Tokenizer& tok) {
  std::vector<int64_t> ids;
  for (int32_t id : {tok.cls_id(), tok.sep_id(), tok.pad_id(), tok.mask_id(), tok.unk_id()}) {
    if (id >= 0) ids.push_back(id);
  }
  for (const auto& [name, id] : tok.added_special_tokens()) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

MaskedBatch mask_tokens(const Tensor& ids, int64_t mask_id, int64_t vocab_size,
                        std::span<const int64_t> special_ids, double mask_prob, Generator& gen) {
  KILN_CHECK_SHAPE(ids.dim() == 2 && ids.dtype() == kInt64,
                   "mask_tokens: ids must be (B, T) int64, got {} {}", ids.shape(),
                   dtype_name(ids.dtype()));
  KILN_CHECK(mask_prob > 0 && mask_prob <= 1, "mask_tokens: mask_prob must lie in (0, 1], got {}",
             mask_prob);
  KILN_CHECK(mask_id >= 0 && mask_id < vocab_size,
             "mask_tokens: mask id {} is outside the vocabulary [0, {})", mask_id, vocab_size);
  const std::unordered_set<int64_t> special(special_ids.begin(), special_ids.end());
  KILN_CHECK(static_cast<int64_t>(special.size()) < vocab_size,
             "mask_tokens: every id of the vocabulary is special");
  std::vector<int64_t> v = ids.contiguous().to_vector<int64_t>();
  const uint64_t n = v.size();
  // Three uniforms per position: chosen?, which replacement?, which random id?
  const uint64_t seed = gen.seed(), base = gen.advance(3 * n + 1);
  std::vector<int64_t> positions, targets;
  int64_t first_eligible = -1;
  for (uint64_t i = 0; i < n; ++i) {
    if (special.count(v[i])) continue;
    if (first_eligible < 0) first_eligible = static_cast<int64_t>(i);
    if (Generator::uniform(seed, base + 3 * i) >= mask_prob) continue;
    positions.push_back(static_cast<int64_t>(i));
  }
  if (positions.empty() && first_eligible >= 0) positions.push_back(first_eligible);
  for (int64_t p : positions) {
    const uint64_t i = static_cast<uint64_t>(p);
    targets.push_back(v[i]);
    const double r = Generator::uniform(seed, base + 3 * i + 1);
    if (r < 0.8) {
      v[i] = mask_id;
    } else if (r < 0.9) {
      // A uniform non-special id: redraw on a special one (counters continue past the batch's).
      uint64_t c = base + 3 * i + 2;
      int64_t id = 0;
      do {
        id = static_cast<int64_t>(Generator::hash(seed, c) % static_cast<uint64_t>(vocab_size));
        c += 3 * n + 1;
      } while (special.count(id));
      v[i] = id;
    }
  }
  return {from_vector(v, ids.shape()), from_vector(positions), from_vector(targets)};
}

// ---------------------------------------------------------------- model

MaskedLanguageModel::MaskedLanguageModel(EncoderConfig config) : Module("MaskedLanguageModel") {
  const int64_t C = config.hidden, V = config.vocab_size;
  const double eps = config.layer_norm_eps;
  encoder = register_module("encoder", std::make_shared<NasBertEncoder>(std::move(config)));
  dense = register_module("dense", std::make_shared<nn::Linear>(nn::LinearOptions(C, C)));
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(nn::LayerNormOptions(C).eps(eps)));
  decoder = register_module("decoder", std::make_shared<nn::Linear>(nn::LinearOptions(C, V)));
  name_parameters();
}

Tensor MaskedLanguageModel::logits(const MaskedBatch& batch) {
  const Tensor h = encoder->forward(batch.input_ids);                    // (B, T, C)
  const Tensor flat = reshape(h, {-1, h.size(2)});                       // (B·T, C)
  const Tensor picked = index_select(flat, 0, batch.positions);          // (M, C)
  return decoder->forward(norm->forward(gelu(dense->forward(picked))));  // (M, V)
}

Tensor MaskedLanguageModel::loss(const MaskedBatch& batch) {
  return cross_entropy(logits(batch), batch.targets);
}

// ---------------------------------------------------------------- pre-training

MlmResult pretrain_mlm(EncoderConfig config, const Tokenizer& tok,
                       std::span<const std::string> texts, const MlmOptions& o) {
  KILN_CHECK(tok.mask_id() >= 0 && tok.pad_id() >= 0 && tok.cls_id() >= 0,
             "pretrain_mlm: the tokenizer needs mask, pad and cls tokens (set_special_tokens)");
  KILN_CHECK(!texts.empty(), "pretrain_mlm: no texts");
  KILN_CHECK(o.batch_size > 0 && o.epochs > 0,
             "pretrain_mlm: batch_size and epochs must be positive, got {} and {}", o.batch_size,
             o.epochs);
  config.vocab_size = tok.vocab_size();
  config.padding_id = tok.pad_id();
  KILN_CHECK(o.max_length >= 3 && o.max_length <= config.max_positions,
             "pretrain_mlm: max_length {} must lie in [3, max_positions = {}]", o.max_length,
             config.max_positions);
  std::vector<std::vector<int32_t>> rows;
  rows.reserve(texts.size());
  for (Encoding& e : tok.encode_batch(texts, {.max_length = static_cast<size_t>(o.max_length)})) {
    rows.push_back(std::move(e.ids));
  }

  auto mlm = std::make_shared<MaskedLanguageModel>(config);
  Generator init(o.seed);
  mlm->reset_parameters(&init);
  MaskedLanguageTrainer model(mlm, tok, o.mask_prob, o.seed + 1);
  const int64_t n = static_cast<int64_t>(rows.size());
  const int64_t steps = o.epochs * ((n + o.batch_size - 1) / o.batch_size);
  optimizers::OptimizerSpec spec = optimizers::AdamW(o.learning_rate, o.weight_decay);
  spec.schedule(optimizers::WarmupDecay(std::max<int64_t>(1, steps * 6 / 100), steps));
  if (o.grad_clip > 0) spec.global_clipnorm(o.grad_clip);
  model.compile(spec, nullptr);
  // x = y = the padded ids of the rows asked for; compute_loss masks them.
  FunctionBatchSource data(n, [&](const std::vector<int64_t>& idx) {
    size_t T = 1;
    for (int64_t i : idx) T = std::max(T, rows[static_cast<size_t>(i)].size());
    std::vector<int64_t> v(idx.size() * T, tok.pad_id());
    for (size_t b = 0; b < idx.size(); ++b) {
      const auto& r = rows[static_cast<size_t>(idx[b])];
      std::copy(r.begin(), r.end(), v.begin() + static_cast<std::ptrdiff_t>(b * T));
    }
    const Tensor ids = from_vector(v, {static_cast<int64_t>(idx.size()), static_cast<int64_t>(T)});
    return Batch{ids, ids, {}};
  });
  const History h = model.fit(data, {.epochs = o.epochs,
                                     .batch_size = o.batch_size,
                                     .callbacks = o.callbacks,
                                     .seed = o.seed,
                                     .verbose = o.verbose});
  MlmResult result;
  result.epoch_loss = h["loss"];
  mlm->eval();
  result.encoder = mlm->encoder;
  return result;
}

// ---------------------------------------------------------------- MaskedLanguageTrainer

MaskedLanguageTrainer::MaskedLanguageTrainer(std::shared_ptr<MaskedLanguageModel> mlm,
                                             const Tokenizer& tok, double mask_prob, uint64_t seed)
    : Model(mlm, "masked_language_model"),
      mlm_(std::move(mlm)),
      special_(special_token_ids(tok)),
      mask_id_(tok.mask_id()),
      vocab_size_(tok.vocab_size()),
      mask_prob_(mask_prob),
      gen_(seed) {
  KILN_CHECK(mask_id_ >= 0, "MaskedLanguageTrainer: the tokenizer has no mask token");
}

Tensor MaskedLanguageTrainer::compute_loss(const Batch& batch, Tensor& output) {
  (void)output;  // no output for metrics: the objective is the loss itself
  return mlm_->loss(mask_tokens(batch.x, mask_id_, vocab_size_, special_, mask_prob_, gen_));
}

void MaskedLanguageTrainer::build_forward(const Tensor& x) {
  (void)x;  // every parameter exists from construction: nothing to build
}

void save_encoder(const NasBertEncoder& encoder, const fs::path& path) {
  NamedTensorList tensors;
  for (const auto& [name, t] : encoder.state_dict()) tensors.emplace_back("encoder." + name, t);
  save_safetensors(path.string(), tensors, {{"encoder_config", encoder.config().to_json().dump()}});
}

// ---------------------------------------------------------------- Hugging Face names

nn::StateDict map_hf_encoder_names(const NamedTensorList& hf, const EncoderConfig& config) {
  std::map<std::string, Tensor> by_name;
  bool roberta = false;
  for (const auto& [name, t] : hf) {
    std::string n = name;
    for (const char* prefix : {"bert.", "roberta."}) {
      if (n.rfind(prefix, 0) == 0) {
        roberta = roberta || std::string(prefix) == "roberta.";
        n = n.substr(std::string(prefix).size());
      }
    }
    // TF-converted checkpoints spell LayerNorm parameters gamma / beta.
    if (n.size() > 6 && n.substr(n.size() - 6) == ".gamma")
      n = n.substr(0, n.size() - 6) + ".weight";
    if (n.size() > 5 && n.substr(n.size() - 5) == ".beta") n = n.substr(0, n.size() - 5) + ".bias";
    by_name[n] = t;
  }
  auto get = [&](const std::string& n) -> const Tensor& {
    auto it = by_name.find(n);
    KILN_CHECK(it != by_name.end(), "map_hf_encoder_names: the checkpoint has no '{}'", n);
    return it->second;
  };
  const std::vector<std::string> tokens = config.layer_tokens();
  KILN_CHECK(config.embed_dim == config.hidden && tokens.size() % 2 == 0,
             "map_hf_encoder_names: the Kiln encoder must be bert-shaped (layers \"M F ...\", "
             "embed_dim == hidden), got layers \"{}\" and embed_dim {} / hidden {}",
             config.layers, config.embed_dim, config.hidden);
  for (size_t i = 0; i < tokens.size(); ++i) {
    KILN_CHECK(tokens[i] == (i % 2 == 0 ? "M" : "F"),
               "map_hf_encoder_names: layer {} is '{}', but a BERT layer maps to \"M F\"", i,
               tokens[i]);
  }
  nn::StateDict out;
  out.insert("encoder.token_embedding.weight", get("embeddings.word_embeddings.weight"));
  // Positions: RoBERTa numbers them from padding_idx + 1 = 2. Token type 0 is added to every row.
  Tensor pos = get("embeddings.position_embeddings.weight");
  const int64_t offset = roberta ? 2 : 0;
  KILN_CHECK_SHAPE(pos.size(0) - offset >= config.max_positions,
                   "map_hf_encoder_names: the checkpoint has {} positions, the encoder needs {}",
                   pos.size(0) - offset, config.max_positions);
  pos = narrow(pos, 0, offset, config.max_positions);
  if (by_name.count("embeddings.token_type_embeddings.weight")) {
    pos = add(pos, select(get("embeddings.token_type_embeddings.weight"), 0, 0));
  }
  out.insert("encoder.position_embedding.weight", contiguous(pos));
  out.insert("encoder.embedding_norm.weight", get("embeddings.LayerNorm.weight"));
  out.insert("encoder.embedding_norm.bias", get("embeddings.LayerNorm.bias"));
  for (size_t i = 0; i < tokens.size() / 2; ++i) {
    const std::string hf_layer = fmt::format("encoder.layer.{}.", i);
    const std::string att = fmt::format("encoder.layers.{}.", 2 * i);
    const std::string ffn = fmt::format("encoder.layers.{}.", 2 * i + 1);
    const std::string self = hf_layer + "attention.self.";
    for (const char* what : {"weight", "bias"}) {
      const std::string w = what;
      out.insert(
          att + "self_attn.in_proj_" + w,
          cat({get(self + "query." + w), get(self + "key." + w), get(self + "value." + w)}, 0));
      out.insert(att + "self_attn.out_proj." + w, get(hf_layer + "attention.output.dense." + w));
      out.insert(att + "norm." + w, get(hf_layer + "attention.output.LayerNorm." + w));
      out.insert(ffn + "fc1." + w, get(hf_layer + "intermediate.dense." + w));
      out.insert(ffn + "fc2." + w, get(hf_layer + "output.dense." + w));
      out.insert(ffn + "norm." + w, get(hf_layer + "output.LayerNorm." + w));
    }
  }
  return out;
}

size_t load_pretrained_encoder(nn::Module& model, const fs::path& path) {
  auto enc = std::dynamic_pointer_cast<NasBertEncoder>(model.child("encoder"));
  KILN_CHECK(enc != nullptr,
             "load_pretrained_encoder: {} has no NasBertEncoder child named 'encoder'",
             model.where());
  const SafetensorsFile f = load_safetensors(path.string());
  nn::StateDict dict;
  bool kiln_names = false;
  // Kiln's names ("encoder.token_embedding.weight"); HF's may also start with "encoder." (a
  // checkpoint saved without its model prefix holds "encoder.layer.0..."), so test a Kiln-only
  // name.
  for (const auto& [name, t] : f.tensors) {
    kiln_names = kiln_names || name == "encoder.token_embedding.weight";
  }
  if (kiln_names) {
    for (const auto& [name, t] : f.tensors) {
      if (name.rfind("encoder.", 0) == 0) dict.insert(name, t);
    }
  } else {
    dict = map_hf_encoder_names(f.tensors, enc->config());
  }
  std::vector<std::string> missing;
  for (const auto& [name, t] : model.state_dict()) {
    if (name.rfind("encoder.", 0) == 0 && !dict.contains(name)) missing.push_back(name);
  }
  KILN_CHECK(missing.empty(), "load_pretrained_encoder: {} lacks {} encoder tensor(s) of {}: {}",
             path.string(), missing.size(), model.where(), fmt::join(missing, ", "));
  model.load_state_dict(dict, /*strict=*/false);
  return dict.size();
}

}  // namespace kiln::text
