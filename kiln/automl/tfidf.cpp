#include "kiln/automl/tfidf.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <numbers>
#include <unordered_map>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/data/csv.h"
#include "kiln/data/split.h"
#include "kiln/io/file.h"
#include "kiln/io/safetensors.h"
#include "kiln/onnx/export.h"
#include "kiln/optim/adam.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"

namespace kiln::automl {
namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL, kFnvPrime = 0x100000001b3ULL;

uint64_t fnv1a(char prefix, std::string_view bytes) {
  uint64_t h = kFnvOffset;
  h = (h ^ static_cast<unsigned char>(prefix)) * kFnvPrime;
  for (char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * kFnvPrime;
  return h;
}

bool word_byte(unsigned char c) {
  return c >= 0x80 || std::isalnum(c);
}

// Calls emit(bucket) for every n-gram of `text` (steps 1-4 of the header's recipe).
template <typename Emit>
void for_each_gram(const std::string& text, const TfidfOptions& o, Emit&& emit) {
  std::string t = text.substr(0, std::min(text.size(), o.max_chars));
  for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto bucket = [&](char prefix, std::string_view g) {
    emit(static_cast<int64_t>(fnv1a(prefix, g) % static_cast<uint64_t>(o.hash_buckets)));
  };
  if (o.word_ngrams > 0) {
    std::vector<std::string_view> words;
    for (size_t i = 0; i < t.size();) {
      if (!word_byte(static_cast<unsigned char>(t[i]))) {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < t.size() && word_byte(static_cast<unsigned char>(t[j]))) ++j;
      words.emplace_back(t.data() + i, j - i);
      i = j;
    }
    std::string gram;
    for (size_t i = 0; i < words.size(); ++i) {
      gram.assign(words[i]);
      bucket('w', gram);
      for (int n = 2; n <= o.word_ngrams && i + n <= words.size(); ++n) {
        gram += ' ';
        gram += words[i + n - 1];
        bucket('w', gram);
      }
    }
  }
  if (o.char_max > 0) {
    std::string s;
    s.reserve(t.size());
    for (char c : t) {
      const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
      if (space && !s.empty() && s.back() == ' ') continue;
      s += space ? ' ' : c;
    }
    for (int n = o.char_min; n <= o.char_max; ++n) {
      for (size_t i = 0; i + static_cast<size_t>(n) <= s.size(); ++i) {
        bucket('c', std::string_view(s).substr(i, static_cast<size_t>(n)));
      }
    }
  }
}

void check_options(const TfidfOptions& o) {
  KILN_CHECK(o.word_ngrams >= 0 && o.word_ngrams <= 3,
             "TfidfFeaturizer: word_ngrams must be 0..3, got {}", o.word_ngrams);
  KILN_CHECK(o.char_max == 0 || (o.char_min >= 1 && o.char_min <= o.char_max && o.char_max <= 8),
             "TfidfFeaturizer: need 1 <= char_min <= char_max <= 8 (or char_max 0), got {}..{}",
             o.char_min, o.char_max);
  KILN_CHECK(o.word_ngrams > 0 || o.char_max > 0,
             "TfidfFeaturizer: neither word nor character n-grams are enabled");
  KILN_CHECK(o.max_features >= 1 && o.hash_buckets >= 1 && o.max_chars >= 1,
             "TfidfFeaturizer: max_features {}, hash_buckets {} and max_chars {} must be >= 1",
             o.max_features, o.hash_buckets, o.max_chars);
}

// softmax(linear(x)) as a module, for the ONNX export.
class LinearSoftmax : public nn::Module {
 public:
  using nn::Module::forward;
  explicit LinearSoftmax(std::shared_ptr<nn::Linear> linear) : nn::Module("LinearSoftmax") {
    linear_ = register_module("linear", std::move(linear));
  }
  Tensor forward(const Tensor& x) override { return softmax(linear_->forward(x), -1); }

 private:
  std::shared_ptr<nn::Linear> linear_;
};

}  // namespace

Tensor SparseRows::dense(std::span<const size_t> which) const {
  std::vector<float> out(which.size() * static_cast<size_t>(cols), 0.0f);
  for (size_t r = 0; r < which.size(); ++r) {
    KILN_CHECK(which[r] < rows(), "SparseRows::dense: row {} of {}", which[r], rows());
    for (int64_t k = offsets[which[r]]; k < offsets[which[r] + 1]; ++k) {
      out[r * static_cast<size_t>(cols) + static_cast<size_t>(index[k])] = value[k];
    }
  }
  return from_vector(out, {static_cast<int64_t>(which.size()), cols});
}

TfidfFeaturizer TfidfFeaturizer::fit(std::span<const std::string> texts,
                                     const TfidfOptions& options,
                                     const std::function<bool()>& should_stop) {
  check_options(options);
  KILN_CHECK(!texts.empty(), "TfidfFeaturizer::fit: no texts");
  std::unordered_map<int64_t, int64_t> df;
  std::vector<int64_t> seen;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (should_stop && i % 64 == 0 && should_stop()) return TfidfFeaturizer{};
    const std::string& text = texts[i];
    seen.clear();
    for_each_gram(text, options, [&](int64_t b) { seen.push_back(b); });
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int64_t b : seen) ++df[b];
  }
  std::vector<std::pair<int64_t, int64_t>> by_df(df.begin(), df.end());  // (bucket, df)
  std::sort(by_df.begin(), by_df.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (static_cast<int64_t>(by_df.size()) > options.max_features) {
    by_df.resize(static_cast<size_t>(options.max_features));
  }
  std::sort(by_df.begin(), by_df.end());
  TfidfFeaturizer f;
  f.options_ = options;
  const double n = static_cast<double>(texts.size());
  for (const auto& [b, d] : by_df) {
    f.buckets_.push_back(b);
    f.idf_.push_back(
        static_cast<float>(std::log((1.0 + n) / (1.0 + static_cast<double>(d))) + 1.0));
  }
  return f;
}

SparseRows TfidfFeaturizer::transform(std::span<const std::string> texts,
                                      const std::function<bool()>& should_stop) const {
  SparseRows out;
  out.cols = num_features();
  std::vector<int64_t> grams;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (should_stop && i % 64 == 0 && should_stop()) break;
    const std::string& text = texts[i];
    grams.clear();
    for_each_gram(text, options_, [&](int64_t b) {
      const auto it = std::lower_bound(buckets_.begin(), buckets_.end(), b);
      if (it != buckets_.end() && *it == b) grams.push_back(it - buckets_.begin());
    });
    std::sort(grams.begin(), grams.end());
    const size_t start = out.value.size();
    double norm = 0;
    for (size_t i = 0; i < grams.size();) {
      size_t j = i;
      while (j < grams.size() && grams[j] == grams[i]) ++j;
      const float v = static_cast<float>(j - i) * idf_[static_cast<size_t>(grams[i])];
      out.index.push_back(static_cast<int32_t>(grams[i]));
      out.value.push_back(v);
      norm += static_cast<double>(v) * v;
      i = j;
    }
    if (norm > 0) {
      const float inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (size_t k = start; k < out.value.size(); ++k) out.value[k] *= inv;
    }
    out.offsets.push_back(static_cast<int64_t>(out.value.size()));
  }
  return out;
}

json::Value TfidfFeaturizer::to_json() const {
  json::Value v = json::Value::object();
  v["kind"] = "kiln-tfidf";
  v["recipe"] =
      "text[:max_chars], ASCII-lowercased; words = runs of [A-Za-z0-9] or bytes >= 0x80; word "
      "n-grams 1..word_ngrams joined by ' ', hashed as 'w'+gram; byte n-grams char_min..char_max "
      "of the text with whitespace runs collapsed to ' ', hashed as 'c'+gram; hash = FNV-1a 64 "
      "(offset 0xcbf29ce484222325, prime 0x100000001b3) over prefix+gram, bucket = hash mod "
      "hash_buckets; feature i counts the grams in buckets[i]; value = count * idf[i], each row "
      "scaled to unit L2 norm";
  v["word_ngrams"] = options_.word_ngrams;
  v["char_min"] = options_.char_min;
  v["char_max"] = options_.char_max;
  v["max_chars"] = static_cast<int64_t>(options_.max_chars);
  v["hash_buckets"] = options_.hash_buckets;
  v["max_features"] = options_.max_features;
  json::Value buckets = json::Value::array(), idf = json::Value::array();
  for (int64_t b : buckets_) buckets.push_back(b);
  for (float x : idf_) idf.push_back(static_cast<double>(x));
  v["buckets"] = std::move(buckets);
  v["idf"] = std::move(idf);
  return v;
}

TfidfFeaturizer TfidfFeaturizer::from_json(const json::Value& v) {
  KILN_CHECK(v.is_object() && v.get_or<std::string>("kind", "") == "kiln-tfidf",
             "TfidfFeaturizer::from_json: not a kiln-tfidf featurizer (\"kind\" must be "
             "\"kiln-tfidf\")");
  TfidfFeaturizer f;
  f.options_.word_ngrams = static_cast<int>(v.at("word_ngrams").as_int());
  f.options_.char_min = static_cast<int>(v.at("char_min").as_int());
  f.options_.char_max = static_cast<int>(v.at("char_max").as_int());
  f.options_.max_chars = static_cast<size_t>(v.at("max_chars").as_int());
  f.options_.hash_buckets = v.at("hash_buckets").as_int();
  f.options_.max_features = v.at("max_features").as_int();
  check_options(f.options_);
  for (const json::Value& b : v.at("buckets").as_array()) f.buckets_.push_back(b.as_int());
  for (const json::Value& x : v.at("idf").as_array()) {
    f.idf_.push_back(static_cast<float>(x.as_double()));
  }
  KILN_CHECK(f.buckets_.size() == f.idf_.size(),
             "TfidfFeaturizer::from_json: {} buckets but {} idf values", f.buckets_.size(),
             f.idf_.size());
  KILN_CHECK(std::is_sorted(f.buckets_.begin(), f.buckets_.end()),
             "TfidfFeaturizer::from_json: buckets must be ascending");
  return f;
}

namespace {
// z (k) = b + Σ over row's entries of value · w[index, :], w (F, k) row-major.
void score_row(const SparseRows& x, size_t row, const float* w, const float* b, size_t k,
               float* z) {
  std::copy(b, b + k, z);
  for (int64_t e = x.offsets[row]; e < x.offsets[row + 1]; ++e) {
    const float v = x.value[static_cast<size_t>(e)];
    const float* wf = w + static_cast<size_t>(x.index[static_cast<size_t>(e)]) * k;
    for (size_t c = 0; c < k; ++c) z[c] += v * wf[c];
  }
}
}  // namespace

double detail::linear_loss_grad(const SparseRows& x, std::span<const size_t> rows,
                                std::span<const int64_t> labels, const float* w, const float* b,
                                int64_t k, LinearLoss loss, float* gw, float* gb) {
  const size_t nb = rows.size(), kk = static_cast<size_t>(k);
  KILN_CHECK(nb > 0 && k >= 1, "linear_loss_grad: need rows and k >= 1, got {} rows, k = {}", nb,
             k);
  for (size_t row : rows) {
    KILN_CHECK(row < x.rows() && row < labels.size(),
               "linear_loss_grad: row {} but the data has {} rows and {} labels", row, x.rows(),
               labels.size());
    KILN_CHECK(labels[row] >= 0 && labels[row] < k,
               "linear_loss_grad: label {} of row {} is not in [0, {})", labels[row], row, k);
  }
  // z: (B, K) scores, turned in place into d loss / d z; per-row losses summed in order below.
  std::vector<float> z(nb * kk);
  std::vector<double> row_loss(nb);
  const float inv_b = 1.0f / static_cast<float>(nb);
  parallel_for(0, static_cast<int64_t>(nb), 64, [&](int64_t r0, int64_t r1) {
    for (auto r = static_cast<size_t>(r0); r < static_cast<size_t>(r1); ++r) {
      const size_t row = rows[r];
      const int64_t y = labels[row];
      float* zr = z.data() + r * kk;
      score_row(x, row, w, b, kk, zr);
      double l = 0;
      if (loss == LinearLoss::Logistic) {
        const float mx = *std::max_element(zr, zr + kk);
        double sum = 0;
        for (size_t c = 0; c < kk; ++c) sum += std::exp(static_cast<double>(zr[c] - mx));
        const double log_sum = std::log(sum);
        l = log_sum - static_cast<double>(zr[y] - mx);
        for (size_t c = 0; c < kk; ++c) {
          const double p = std::exp(static_cast<double>(zr[c] - mx) - log_sum);
          zr[c] = static_cast<float>(p - (static_cast<int64_t>(c) == y ? 1.0 : 0.0)) * inv_b;
        }
      } else {
        for (size_t c = 0; c < kk; ++c) {
          const float s = static_cast<int64_t>(c) == y ? 1.0f : -1.0f;
          const float margin = std::max(0.0f, 1.0f - s * zr[c]);
          l += static_cast<double>(margin) * margin;
          zr[c] = -2.0f * s * margin * inv_b;
        }
      }
      row_loss[r] = l;
    }
  });
  std::fill(gw, gw + static_cast<size_t>(x.cols) * kk, 0.0f);
  std::fill(gb, gb + k, 0.0f);
  double total = 0;
  for (size_t r = 0; r < nb; ++r) {
    const size_t row = rows[r];
    const float* gr = z.data() + r * kk;
    for (int64_t e = x.offsets[row]; e < x.offsets[row + 1]; ++e) {
      const float v = x.value[static_cast<size_t>(e)];
      float* gf = gw + static_cast<size_t>(x.index[static_cast<size_t>(e)]) * kk;
      for (size_t c = 0; c < kk; ++c) gf[c] += v * gr[c];
    }
    for (size_t c = 0; c < kk; ++c) gb[c] += gr[c];
    total += row_loss[r];
  }
  return total / static_cast<double>(nb);
}

TfidfLinearModel TfidfLinearModel::fit(std::span<const std::string> texts,
                                       std::span<const int64_t> labels,
                                       std::vector<std::string> label_names,
                                       const TfidfOptions& features,
                                       const LinearTextOptions& options,
                                       const std::function<bool()>& should_stop) {
  const int64_t k = static_cast<int64_t>(label_names.size());
  KILN_CHECK(k >= 2, "TfidfLinearModel::fit: need at least 2 classes, got {}", k);
  KILN_CHECK(texts.size() == labels.size() && !texts.empty(),
             "TfidfLinearModel::fit: {} texts but {} labels (need the same number, >= 1)",
             texts.size(), labels.size());
  KILN_CHECK(options.epochs >= 1 && options.batch_size >= 0 && options.learning_rate > 0 &&
                 options.l2 >= 0,
             "TfidfLinearModel::fit: need epochs >= 1, batch_size >= 0 (0: all rows), "
             "learning_rate > 0, l2 >= 0; got {}, {}, {}, {}",
             options.epochs, options.batch_size, options.learning_rate, options.l2);
  TfidfLinearModel m;
  m.labels_ = std::move(label_names);
  m.featurizer_ = TfidfFeaturizer::fit(texts, features, should_stop);
  const SparseRows x = m.featurizer_.transform(texts, should_stop);
  if (x.rows() < texts.size() || (should_stop && should_stop())) {
    m.stopped_ = true;
    return m;
  }
  KILN_CHECK(x.cols > 0, "TfidfLinearModel::fit: the {} texts hold no word or character n-grams",
             texts.size());
  // Trained as w = Wᵀ (F, K), so each feature's K weights are contiguous for the sparse passes;
  // zeros to start (the problem is convex).
  const int64_t f = x.cols;
  Tensor wt = zeros({f, k}).requires_grad_();
  Tensor bias = zeros({k}).requires_grad_();
  Tensor gw = zeros({f, k}), gb = zeros({k});
  optim::Adam opt({{"weight_t", wt}, {"bias", bias}},
                  optim::AdamOptions(options.learning_rate).weight_decay(options.l2));
  const size_t n = texts.size();
  const size_t bs = options.batch_size == 0 ? n : static_cast<size_t>(options.batch_size);
  // The step size anneals to zero on a half cosine over all steps (Loshchilov & Hutter's SGDR
  // without restarts), so the last iterate settles instead of hovering at a constant step's
  // noise level.
  const int64_t steps_per_epoch = static_cast<int64_t>((n + bs - 1) / bs);
  const double total_steps = static_cast<double>(steps_per_epoch) * options.epochs;
  int64_t step = 0;
  for (int epoch = 0; epoch < options.epochs && !m.stopped_; ++epoch) {
    const std::vector<size_t> order = data::permutation(n, options.seed * 7919 + epoch);
    for (size_t start = 0; start < n; start += bs) {
      if (should_stop && should_stop()) {
        m.stopped_ = true;
        break;
      }
      const std::span<const size_t> rows(order.data() + start, std::min(bs, n - start));
      detail::linear_loss_grad(x, rows, labels, wt.data_ptr<float>(), bias.data_ptr<float>(), k,
                               options.loss, gw.data_ptr<float>(), gb.data_ptr<float>());
      wt.set_grad(gw);
      bias.set_grad(gb);
      opt.set_lr(options.learning_rate * 0.5 *
                 (1.0 + std::cos(std::numbers::pi * static_cast<double>(step) / total_steps)));
      opt.step();
      ++step;
    }
  }
  m.linear_ = std::make_shared<nn::Linear>(nn::LinearOptions(f, k));
  {
    NoGradGuard no_grad;
    m.linear_->weight.copy_(wt.detach().transpose(0, 1));
    m.linear_->bias.copy_(bias.detach());
  }
  m.linear_->eval();
  return m;
}

Tensor TfidfLinearModel::predict_proba_features(const Tensor& x) const {
  NoGradGuard no_grad;
  return softmax(linear_->forward(x), -1);
}

Tensor TfidfLinearModel::predict_proba(std::span<const std::string> texts) const {
  // Sparse rows against the transposed weight (F, K): no dense (N, F) array.
  const SparseRows x = featurizer_.transform(texts);
  const Tensor wt = linear_->weight.detach().transpose(0, 1).contiguous();
  const Tensor b = linear_->bias.detach().contiguous();
  const int64_t k = wt.size(1);
  const auto n = static_cast<int64_t>(x.rows());
  std::vector<float> z(static_cast<size_t>(n * k));
  parallel_for(0, n, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      score_row(x, static_cast<size_t>(r), wt.data_ptr<float>(), b.data_ptr<float>(),
                static_cast<size_t>(k), z.data() + r * k);
    }
  });
  NoGradGuard no_grad;
  return softmax(from_vector(z, {n, k}), -1);
}

void TfidfLinearModel::save(const std::filesystem::path& dir, const json::Value& extra) const {
  std::filesystem::create_directories(dir);
  LinearSoftmax head(linear_);
  onnx::ExportOptions o;
  o.input_names = {"features"};
  o.output_names = {"probabilities"};
  o.dynamic_axes = {{"features", {{0, "batch"}}}, {"probabilities", {{0, "batch"}}}};
  o.doc_string =
      "TF-IDF linear text classifier from kiln automl: input = the featurizer.json features of a "
      "text (Kiln applies them), output = class probabilities in config.json's label order";
  onnx::export_model(head, {zeros({2, featurizer_.num_features()})}, (dir / "model.onnx").string(),
                     o);
  const auto write = [&](const std::string& name, const std::string& text) {
    data::detail::AtomicFile f(dir / name, "TfidfLinearModel::save");
    f.write(text);
    f.commit();
  };
  save_safetensors((dir / "model.safetensors").string(),
                   {{"weight", linear_->weight}, {"bias", linear_->bias}},
                   {{"format", "kiln-tfidf-linear"}});
  write("featurizer.json", featurizer_.to_json().dump());
  json::Value config = extra.is_object() ? extra : json::Value::object();
  config["trainer"] = "tfidf_linear";
  json::Value labels = json::Value::array();
  for (const std::string& l : labels_) labels.push_back(l);
  config["labels"] = std::move(labels);
  config["onnx_input"] = "features: (batch, " + std::to_string(featurizer_.num_features()) +
                         ") float32, the TF-IDF features of featurizer.json";
  config["onnx_output"] = "probabilities: (batch, K) float32 in labels order";
  config["preprocessing"] =
      "model.onnx takes featurised text: apply featurizer.json's recipe (kiln::automl::"
      "TfidfFeaturizer, which Kiln applies) to each text first";
  write("config.json", config.dump());
}

TfidfLinearModel TfidfLinearModel::load(const std::filesystem::path& dir) {
  TfidfLinearModel m;
  m.featurizer_ = TfidfFeaturizer::from_json(io::read_json_file(dir / "featurizer.json"));
  const json::Value config = io::read_json_file(dir / "config.json");
  KILN_CHECK(config.find("labels") != nullptr,
             "TfidfLinearModel::load: {} has no \"labels\" (is it a tfidf_linear model?)",
             (dir / "config.json").string());
  for (const json::Value& l : config.at("labels").as_array()) m.labels_.push_back(l.as_string());
  const SafetensorsFile weights = load_safetensors((dir / "model.safetensors").string());
  const Tensor& w = weights.at("weight");
  const Tensor& b = weights.at("bias");
  const auto k = static_cast<int64_t>(m.labels_.size());
  const int64_t f = m.featurizer_.num_features();
  KILN_CHECK(w.dim() == 2 && w.size(0) == k && w.size(1) == f && b.dim() == 1 && b.size(0) == k,
             "TfidfLinearModel::load: {}: weight {} and bias {} do not match {} labels and {} "
             "features (need weight [{}, {}] and bias [{}])",
             (dir / "model.safetensors").string(), w.shape(), b.shape(), k, f, k, f, k);
  m.linear_ = std::make_shared<nn::Linear>(nn::LinearOptions(f, k));
  {
    NoGradGuard no_grad;
    m.linear_->weight.copy_(w);
    m.linear_->bias.copy_(b);
  }
  m.linear_->eval();
  return m;
}

}  // namespace kiln::automl
