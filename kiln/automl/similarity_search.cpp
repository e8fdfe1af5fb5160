#include "kiln/automl/similarity_search.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <string_view>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/automl/leaderboard.h"
#include "kiln/automl/trainer_internal.h"
#include "kiln/data/csv.h"
#include "kiln/data/split.h"
#include "kiln/nn/activation.h"
#include "kiln/nn/linear.h"
#include "kiln/nn/loss.h"
#include "kiln/onnx/export.h"
#include "kiln/optim/adam.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/random.h"
#include "kiln/text/onnx_export.h"
#include "kiln/text/pretrain.h"

namespace kiln::automl {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kTask = "automl sentence-similarity";

// One text's parts for the set features: lowercased words, their adjacent pairs and character
// n-grams, each sorted and unique; counts before deduplication.
struct TextParts {
  std::vector<std::string> words, bigrams, chars;
  size_t num_words = 0, bytes = 0;
};

bool word_byte(unsigned char c) {
  return c >= 0x80 || std::isalnum(c);
}

void sort_unique(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

TextParts text_parts(const std::string& text, size_t max_chars, int char_n) {
  std::string t = text.substr(0, std::min(text.size(), max_chars));
  for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  TextParts p;
  p.bytes = t.size();
  for (size_t i = 0; i < t.size();) {
    if (!word_byte(static_cast<unsigned char>(t[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < t.size() && word_byte(static_cast<unsigned char>(t[j]))) ++j;
    p.words.emplace_back(t, i, j - i);
    i = j;
  }
  p.num_words = p.words.size();
  for (size_t i = 0; i + 1 < p.words.size(); ++i)
    p.bigrams.push_back(p.words[i] + ' ' + p.words[i + 1]);
  std::string s;
  s.reserve(t.size());
  for (char c : t) {
    const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (space && !s.empty() && s.back() == ' ') continue;
    s += space ? ' ' : c;
  }
  const size_t n = static_cast<size_t>(char_n);
  for (size_t i = 0; i + n <= s.size(); ++i) p.chars.push_back(s.substr(i, n));
  sort_unique(p.words);
  sort_unique(p.bigrams);
  sort_unique(p.chars);
  return p;
}

size_t intersection_size(const std::vector<std::string>& x, const std::vector<std::string>& y) {
  size_t n = 0;
  for (auto i = x.begin(), j = y.begin(); i != x.end() && j != y.end();) {
    if (*i < *j) {
      ++i;
    } else if (*j < *i) {
      ++j;
    } else {
      ++n, ++i, ++j;
    }
  }
  return n;
}

double jaccard(const std::vector<std::string>& x, const std::vector<std::string>& y) {
  const size_t both = intersection_size(x, y), either = x.size() + y.size() - both;
  return either ? static_cast<double>(both) / static_cast<double>(either) : 0.0;
}

double ratio(size_t x, size_t y) {
  const size_t hi = std::max(x, y);
  return hi ? static_cast<double>(std::min(x, y)) / static_cast<double>(hi) : 1.0;
}

// Dot product of row i of p and row i of q (indices ascending within a row).
double row_dot(const SparseRows& p, const SparseRows& q, size_t i) {
  double s = 0;
  int64_t u = p.offsets[i], v = q.offsets[i];
  while (u < p.offsets[i + 1] && v < q.offsets[i + 1]) {
    if (p.index[u] < q.index[v]) {
      ++u;
    } else if (q.index[v] < p.index[u]) {
      ++v;
    } else {
      s += static_cast<double>(p.value[u++]) * q.value[v++];
    }
  }
  return s;
}

void check_pair_options(const PairFeatureOptions& o) {
  KILN_CHECK(o.char_n >= 1 && o.char_n <= 8, "PairFeaturizer: char_n must be 1..8, got {}",
             o.char_n);
}

// net(x) with the exported names; what model.onnx computes.
class PairHead : public nn::Module {
 public:
  using nn::Module::forward;
  explicit PairHead(std::shared_ptr<nn::Sequential> net) : nn::Module("PairHead") {
    net_ = register_module("net", std::move(net));
  }
  Tensor forward(const Tensor& x) override { return net_->forward(x); }

 private:
  std::shared_ptr<nn::Sequential> net_;
};

using detail::DeadlineCallback;
using detail::DeadlinePassed;

PairFeatureOptions pair_feature_options(const Config& c) {
  PairFeatureOptions o;
  o.tfidf.word_ngrams = std::stoi(get_choice(c, "word_ngrams"));
  const std::string& ch = get_choice(c, "char_ngrams");
  if (ch == "none") {
    o.tfidf.char_max = 0;
  } else {
    o.tfidf.char_min = ch[0] - '0';
    o.tfidf.char_max = ch[2] - '0';
  }
  o.tfidf.max_features = static_cast<int64_t>(get_number(c, "max_features"));
  o.char_n = static_cast<int>(get_number(c, "char_n"));
  return o;
}

PairRegressorOptions pair_regressor_options(const Config& c, uint64_t seed) {
  return PairRegressorOptions{.learning_rate = get_number(c, "learning_rate"),
                              .l2 = get_number(c, "l2"),
                              .epochs = static_cast<int>(get_number(c, "epochs")),
                              .hidden = std::stoll(get_choice(c, "hidden")),
                              .seed = seed};
}

text::SentenceSimilarityOptions finetune_options(const Config& c,
                                                 const SentenceSimilaritySearchOptions& o,
                                                 const Deadline& dl) {
  return text::SentenceSimilarityOptions{
      .label_column = o.label_column,
      .sentence1_column = o.text_column,
      .sentence2_column = o.text2_column,
      .batch_size = std::stoll(get_choice(c, "batch_size")),
      .max_epochs = static_cast<int>(get_number(c, "epochs")),
      .learning_rate = get_number(c, "learning_rate"),
      .max_length = static_cast<int64_t>(get_number(c, "max_length")),
      .seed = o.seed,
      .verbose = 0,
      .callbacks = {std::make_shared<DeadlineCallback>(dl)}};
}

std::vector<double> as_doubles(const Tensor& t) {
  const std::vector<float> v = t.contiguous().to_vector<float>();
  return {v.begin(), v.end()};
}

// The label column as numbers: floats, ints, or text that parses as a number.
std::vector<double> numeric_labels(const data::Column& col, const std::string& name) {
  std::vector<double> y;
  const auto check = [&](bool ok, size_t row, const std::string& value) {
    KILN_CHECK(ok,
               "{}: label column '{}' is not numeric: row {} holds '{}' (a similarity label must "
               "be a number)",
               kTask, name, row + 1, value);
  };
  if (col.type() == data::ColumnType::Float) {
    const std::vector<float>& v = col.floats();
    for (size_t r = 0; r < v.size(); ++r) {
      check(std::isfinite(v[r]), r, fmt::format("{}", v[r]));
      y.push_back(v[r]);
    }
  } else if (col.type() == data::ColumnType::Int) {
    for (int64_t v : col.ints()) y.push_back(static_cast<double>(v));
  } else {
    KILN_CHECK(col.type() == data::ColumnType::String,
               "{}: label column '{}' holds category keys; a similarity label must be a number",
               kTask, name);
    const std::vector<std::string>& v = col.strings();
    for (size_t r = 0; r < v.size(); ++r) {
      float x = 0;
      check(data::detail::parse_float(v[r], x) && std::isfinite(x), r, v[r]);
      y.push_back(x);
    }
  }
  return y;
}

}  // namespace

// ---- PairFeaturizer ----

PairFeaturizer PairFeaturizer::fit(std::span<const std::string> a, std::span<const std::string> b,
                                   const PairFeatureOptions& options,
                                   const std::function<bool()>& should_stop) {
  check_pair_options(options);
  KILN_CHECK(a.size() == b.size() && !a.empty(),
             "PairFeaturizer::fit: {} first texts but {} second texts (need the same number, "
             ">= 1)",
             a.size(), b.size());
  std::vector<std::string> both(a.begin(), a.end());
  both.insert(both.end(), b.begin(), b.end());
  PairFeaturizer f;
  f.options_ = options;
  f.tfidf_ = TfidfFeaturizer::fit(both, options.tfidf, should_stop);
  return f;
}

std::vector<float> PairFeaturizer::transform(std::span<const std::string> a,
                                             std::span<const std::string> b,
                                             const std::function<bool()>& should_stop) const {
  KILN_CHECK(a.size() == b.size(),
             "PairFeaturizer::transform: {} first texts but {} second texts (need the same "
             "number)",
             a.size(), b.size());
  constexpr size_t kChunk = 64;
  std::vector<float> out;
  out.reserve(a.size() * kNumFeatures);
  for (size_t start = 0; start < a.size(); start += kChunk) {
    if (should_stop && should_stop()) break;
    const size_t n = std::min(kChunk, a.size() - start);
    const SparseRows ta = tfidf_.transform(a.subspan(start, n));
    const SparseRows tb = tfidf_.transform(b.subspan(start, n));
    for (size_t i = 0; i < n; ++i) {
      const TextParts p = text_parts(a[start + i], options_.tfidf.max_chars, options_.char_n);
      const TextParts q = text_parts(b[start + i], options_.tfidf.max_chars, options_.char_n);
      const size_t common = intersection_size(p.words, q.words);
      const size_t fewer = std::min(p.words.size(), q.words.size());
      const double f[kNumFeatures] = {
          row_dot(ta, tb, i),
          jaccard(p.words, q.words),
          jaccard(p.bigrams, q.bigrams),
          jaccard(p.chars, q.chars),
          fewer ? static_cast<double>(common) / static_cast<double>(fewer) : 0.0,
          ratio(p.num_words, q.num_words),
          ratio(p.bytes, q.bytes)};
      for (double v : f) out.push_back(static_cast<float>(v));
    }
  }
  return out;
}

json::Value PairFeaturizer::to_json() const {
  json::Value v = json::Value::object();
  v["kind"] = "kiln-pair-features";
  v["recipe"] =
      "for a pair (A, B): each text cut to tfidf.max_chars bytes and ASCII-lowercased; words = "
      "runs of [A-Za-z0-9] or bytes >= 0x80; W = the set of words, W2 = the set of adjacent word "
      "pairs joined by ' ', C = the set of byte n-grams (n = char_n) of the text with whitespace "
      "runs collapsed to ' '. features, in order: tfidf_cosine = dot product of the two texts' "
      "TF-IDF rows (tfidf: the kiln-tfidf recipe, rows of unit L2 norm), word_jaccard = |W(A) & "
      "W(B)| / |W(A) | W(B)|, bigram_jaccard and char_jaccard the same over W2 and C (0 when the "
      "union is empty), word_containment = |W(A) & W(B)| / min(|W(A)|, |W(B)|) (0 when either is "
      "empty), word_length_ratio = min / max of the word counts (with repeats; 1 when both are 0), "
      "char_length_ratio = min / max of the cut texts' byte lengths (1 when both are 0)";
  json::Value names = json::Value::array();
  for (const char* n : kPairFeatureNames) names.push_back(std::string(n));
  v["features"] = std::move(names);
  v["char_n"] = options_.char_n;
  v["tfidf"] = tfidf_.to_json();
  return v;
}

PairFeaturizer PairFeaturizer::from_json(const json::Value& v) {
  KILN_CHECK(v.is_object() && v.get_or<std::string>("kind", "") == "kiln-pair-features",
             "PairFeaturizer::from_json: not a kiln-pair-features featurizer (\"kind\" must be "
             "\"kiln-pair-features\")");
  KILN_CHECK(v.at("features").size() == kPairFeatureNames.size(),
             "PairFeaturizer::from_json: {} features listed, this Kiln computes {}",
             v.at("features").size(), kPairFeatureNames.size());
  PairFeaturizer f;
  f.tfidf_ = TfidfFeaturizer::from_json(v.at("tfidf"));
  f.options_.tfidf = f.tfidf_.options();
  f.options_.char_n = static_cast<int>(v.at("char_n").as_int());
  check_pair_options(f.options_);
  return f;
}

// ---- PairRegressionModel ----

PairRegressionModel PairRegressionModel::fit(std::span<const std::string> a,
                                             std::span<const std::string> b,
                                             std::span<const double> y,
                                             const PairFeatureOptions& features,
                                             const PairRegressorOptions& options,
                                             const std::function<bool()>& should_stop) {
  KILN_CHECK(a.size() == b.size() && a.size() == y.size() && !a.empty(),
             "PairRegressionModel::fit: {} first texts, {} second texts and {} scores (need the "
             "same number, >= 1)",
             a.size(), b.size(), y.size());
  const PairRegressorOptions& o = options;
  KILN_CHECK(
      o.epochs >= 1 && o.batch_size >= 1 && o.learning_rate > 0 && o.l2 >= 0 && o.hidden >= 0,
      "PairRegressionModel::fit: need epochs >= 1, batch_size >= 1, learning_rate > 0, "
      "l2 >= 0, hidden >= 0; got {}, {}, {}, {}, {}",
      o.epochs, o.batch_size, o.learning_rate, o.l2, o.hidden);
  PairRegressionModel m;
  m.featurizer_ = PairFeaturizer::fit(a, b, features, should_stop);
  const std::vector<float> x = m.featurizer_.transform(a, b, should_stop);
  constexpr int64_t f = PairFeaturizer::kNumFeatures;
  if (x.size() < a.size() * f || (should_stop && should_stop())) {
    m.stopped_ = true;
    return m;
  }
  // The standardised target t = (y − mean) / std; the last layer is rescaled after training.
  const double n = static_cast<double>(y.size());
  double y_mean = 0, sq = 0;
  for (double v : y) y_mean += v / n;
  for (double v : y) sq += (v - y_mean) * (v - y_mean);
  double y_std = std::sqrt(sq / n);
  if (!(y_std > 0)) y_std = 1;

  Generator gen(o.seed);
  m.net_ = std::make_shared<nn::Sequential>();
  int64_t in = f;
  if (o.hidden > 0) {
    m.net_->push_back(std::make_shared<nn::Linear>(nn::LinearOptions(f, o.hidden)));
    m.net_->push_back(std::make_shared<nn::ReLU>());
    in = o.hidden;
  }
  auto last = std::make_shared<nn::Linear>(nn::LinearOptions(in, 1));
  m.net_->push_back(last);
  m.net_->reset_parameters(&gen);
  m.net_->train();
  optim::Adam opt(m.net_->named_parameters(),
                  optim::AdamOptions(o.learning_rate).weight_decay(o.l2));
  const size_t rows = y.size(), bs = static_cast<size_t>(o.batch_size);
  for (int epoch = 0; epoch < o.epochs && !m.stopped_; ++epoch) {
    const std::vector<size_t> order = data::permutation(rows, o.seed * 7919 + epoch);
    for (size_t start = 0; start < rows; start += bs) {
      if (should_stop && should_stop()) {
        m.stopped_ = true;
        break;
      }
      const size_t nb = std::min(bs, rows - start);
      std::vector<float> xb(nb * f), tb(nb);
      for (size_t r = 0; r < nb; ++r) {
        const size_t row = order[start + r];
        std::copy_n(x.data() + row * f, f, xb.data() + r * f);
        tb[r] = static_cast<float>((y[row] - y_mean) / y_std);
      }
      const int64_t b64 = static_cast<int64_t>(nb);
      // (B, 7) -> (B, 1)
      const Tensor out = m.net_->forward(from_vector(xb, {b64, f}));
      Tensor loss = nn::functional::mse_loss(out, from_vector(tb, {b64, 1}));
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
  }
  m.net_->eval();
  detail::unstandardize_output(*last, y_std, y_mean);
  return m;
}

Tensor PairRegressionModel::predict_features(const Tensor& x) const {
  KILN_CHECK(net_ != nullptr, "PairRegressionModel::predict: the model was never trained");
  NoGradGuard no_grad;
  return net_->forward(x);
}

Tensor PairRegressionModel::predict(std::span<const std::string> a,
                                    std::span<const std::string> b) const {
  const std::vector<float> x = featurizer_.transform(a, b);
  const int64_t n = static_cast<int64_t>(a.size());
  const Tensor y = predict_features(from_vector(x, {n, PairFeaturizer::kNumFeatures}));  // (N, 1)
  return from_vector(y.contiguous().to_vector<float>(), {n});
}

void PairRegressionModel::save(const std::filesystem::path& dir, const json::Value& extra) const {
  KILN_CHECK(net_ != nullptr, "PairRegressionModel::save: the model was never trained");
  std::filesystem::create_directories(dir);
  PairHead head(net_);
  head.eval();
  onnx::ExportOptions o;
  o.input_names = {"features"};
  o.output_names = {"score"};
  o.dynamic_axes = {{"features", {{0, "batch"}}}, {"score", {{0, "batch"}}}};
  o.doc_string =
      "sentence-similarity pair-feature regressor from kiln automl: input = the featurizer.json "
      "features of a text pair (Kiln applies them), output = the predicted similarity score";
  onnx::export_model(head, {zeros({2, PairFeaturizer::kNumFeatures})},
                     (dir / "model.onnx").string(), o);
  const auto write = [&](const std::string& name, const std::string& text) {
    data::detail::AtomicFile file(dir / name, "PairRegressionModel::save");
    file.write(text);
    file.commit();
  };
  write("featurizer.json", featurizer_.to_json().dump());
  json::Value config = extra.is_object() ? extra : json::Value::object();
  config["trainer"] = "pair_features";
  config["onnx_input"] =
      fmt::format("features: (batch, {}) float32, the pair features of featurizer.json",
                  PairFeaturizer::kNumFeatures);
  config["onnx_output"] = "score: (batch, 1) float32 in the label's units";
  config["preprocessing"] =
      "model.onnx takes featurised pairs: apply featurizer.json's recipe (kiln::automl::"
      "PairFeaturizer, which Kiln applies) to each pair of texts first";
  write("config.json", config.dump());
}

// ---- the search ----

double similarity_metric(const std::string& metric, std::span<const double> truth,
                         std::span<const double> predicted) {
  KILN_CHECK(truth.size() == predicted.size() && !truth.empty(),
             "similarity_metric: {} values but {} predictions (need the same number, >= 1)",
             truth.size(), predicted.size());
  if (metric == "pearson") return metrics::pearson_correlation(predicted, truth);
  if (metric == "spearman") return metrics::spearman_correlation(predicted, truth);
  KILN_CHECK(metric == "rmse", "similarity_metric: unknown metric '{}' (pearson, spearman or rmse)",
             metric);
  double sse = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    sse += (predicted[i] - truth[i]) * (predicted[i] - truth[i]);
  }
  return std::sqrt(sse / static_cast<double>(truth.size()));
}

SearchSpace pair_features_space() {
  SearchSpace s;
  s.add(Param::log_float("learning_rate", 1e-3, 0.3, 0.03));
  s.add(Param::log_float("l2", 1e-8, 1e-2, 1e-6));
  s.add(Param::int_range("epochs", 1, 100, 5, /*log=*/true));
  s.add(Param::categorical("hidden", {"0", "16"}, "0"));
  s.add(Param::categorical("word_ngrams", {"1", "2"}, "1"));
  s.add(Param::categorical("char_ngrams", {"none", "3-4", "3-5"}, "none"));
  s.add(Param::int_range("max_features", 1000, 100000, 5000, /*log=*/true));
  s.add(Param::int_range("char_n", 2, 5, 3));
  return s;
}

SearchSpace similarity_finetune_space() {
  SearchSpace s;
  // ML.NET's SentenceSimilarity default learning rate (2e-4) is the start; one epoch and short
  // sequences keep the first trial cheap, as CFO wants.
  s.add(Param::log_float("learning_rate", 1e-5, 3e-3, 2e-4));
  s.add(Param::int_range("epochs", 1, 6, 1));
  s.add(Param::int_range("max_length", 32, 256, 64, /*log=*/true));
  s.add(Param::categorical("batch_size", {"16", "32", "64"}, "32"));
  return s;
}

double SimilaritySearchResult::metric_value(double score) const {
  return metric == "rmse" ? -score * metric_scale : score;
}

std::vector<float> SimilaritySearchResult::predict(std::span<const std::string> a,
                                                   std::span<const std::string> b) const {
  KILN_CHECK(a.size() == b.size(),
             "SimilaritySearchResult::predict: {} first texts but {} second texts", a.size(),
             b.size());
  if (pair_model) return pair_model->predict(a, b).to_vector<float>();
  KILN_CHECK(encoder_model.has_value(), "SimilaritySearchResult::predict: no model was trained");
  data::Table t;
  t.add_column(data::Column(text_column, std::vector<std::string>(a.begin(), a.end())));
  t.add_column(data::Column(text2_column, std::vector<std::string>(b.begin(), b.end())));
  return encoder_model->predict(t).contiguous().to_vector<float>();
}

SentenceSimilaritySearch::SentenceSimilaritySearch(SentenceSimilaritySearchOptions options)
    : options_(std::move(options)) {
  KILN_CHECK(
      options_.metric == "pearson" || options_.metric == "spearman" || options_.metric == "rmse",
      "{}: unknown metric '{}' (pearson, spearman or rmse)", kTask, options_.metric);
  KILN_CHECK(options_.time_budget_s > 0, "{}: the time budget must be > 0 s, got {}", kTask,
             options_.time_budget_s);
}

SimilaritySearchResult SentenceSimilaritySearch::run(const data::Table& table) const {
  const Clock::time_point t0 = Clock::now();
  const auto& o = options_;
  for (const std::string& col : {o.label_column, o.text_column, o.text2_column}) {
    KILN_CHECK(table.has_column(col), "{}: no column '{}' (columns: {})", kTask, col,
               fmt::join(table.column_names(), ", "));
  }
  KILN_CHECK(o.text_column != o.text2_column,
             "{}: the two text columns are both '{}' (a pair needs two columns)", kTask,
             o.text_column);
  KILN_CHECK(table.num_rows() > 0, "{}: the table has no rows", kTask);
  for (const std::string& col : {o.text_column, o.text2_column}) {
    KILN_CHECK(table[col].type() == data::ColumnType::String,
               "{}: text column '{}' does not hold text", kTask, col);
  }
  const std::vector<double> y = numeric_labels(table[o.label_column], o.label_column);
  const auto [lo, hi] = std::minmax_element(y.begin(), y.end());
  KILN_CHECK(*lo < *hi,
             "{}: label column '{}' is constant (every row holds {}); a similarity model needs "
             "scores that vary",
             kTask, o.label_column, *lo);
  const std::vector<std::string>& texts_a = table[o.text_column].strings();
  const std::vector<std::string>& texts_b = table[o.text2_column].strings();

  const data::SplitIndices split = data::train_test_split(y.size(), o.validation_fraction, o.seed);
  KILN_CHECK(!split.train.empty() && !split.test.empty(),
             "{}: {} rows are too few for a {:.0f} % validation split", kTask, table.num_rows(),
             o.validation_fraction * 100);
  std::vector<std::string> train_a, train_b, valid_a, valid_b;
  std::vector<double> train_y, valid_y;
  for (size_t i : split.train) {
    train_a.push_back(texts_a[i]), train_b.push_back(texts_b[i]), train_y.push_back(y[i]);
  }
  for (size_t i : split.test) {
    valid_a.push_back(texts_a[i]), valid_b.push_back(texts_b[i]), valid_y.push_back(y[i]);
  }

  SimilaritySearchResult result;
  result.metric = o.metric;
  if (o.metric == "rmse") {
    // rmse reaches the tuner in units of the label's standard deviation, so that its share rule
    // (a learner 0.01 behind gets e^-1 of the time) means the same for any label scale.
    double mean = 0, sq = 0;
    for (double v : y) mean += v / static_cast<double>(y.size());
    for (double v : y) sq += (v - mean) * (v - mean);
    result.metric_scale = std::sqrt(sq / static_cast<double>(y.size()));
  }
  const double metric_scale = result.metric_scale;
  const auto score_of = [&](std::span<const double> predicted) {
    const double m = similarity_metric(o.metric, valid_y, predicted);
    return o.metric == "rmse" ? -m / metric_scale : m;
  };

  // The best trial's own model, kept so that a refit the budget cuts costs nothing more (the
  // tuner's best is the first trial with the highest score, hence the strict >).
  std::optional<PairRegressionModel> kept_pair;
  std::optional<text::SentenceSimilarityModel> kept_encoder;
  double kept_score = -std::numeric_limits<double>::infinity();
  Learner pairs{.name = "pair_features",
                .space = pair_features_space(),
                .run = [&](const Config& c, const Deadline& dl) {
                  PairRegressionModel m = PairRegressionModel::fit(
                      train_a, train_b, train_y, pair_feature_options(c),
                      pair_regressor_options(c, o.seed), [&] { return dl.passed(); });
                  if (m.stopped() || dl.passed()) {
                    return TrialOutcome{.status = TrialStatus::Stopped};
                  }
                  const double score = score_of(as_doubles(m.predict(valid_a, valid_b)));
                  if (score > kept_score) {
                    kept_score = score;
                    kept_pair = std::move(m);
                    kept_encoder.reset();
                  }
                  return TrialOutcome{.score = score};
                }};
  // The trainer's own table: the label as float scores beside the two text columns.
  data::Table pair_table;
  {
    std::vector<float> yf(y.begin(), y.end());
    pair_table.add_column(data::Column(o.label_column, std::move(yf)));
    pair_table.add_column(data::Column(o.text_column, texts_a));
    pair_table.add_column(data::Column(o.text2_column, texts_b));
  }
  const data::Table train_table = pair_table.select_rows(split.train);
  const data::Table valid_table = pair_table.select_rows(split.test);
  Learner finetune{.name = "nasbert_finetune",
                   .space = similarity_finetune_space(),
                   .run = [&](const Config& c, const Deadline& dl) {
                     try {
                       text::SentenceSimilarityModel m =
                           text::SentenceSimilarity(finetune_options(c, o, dl)).fit(train_table);
                       if (dl.passed()) return TrialOutcome{.status = TrialStatus::Stopped};
                       const double score = score_of(as_doubles(m.predict(valid_table)));
                       if (score > kept_score) {
                         kept_score = score;
                         kept_encoder = std::move(m);
                         kept_pair.reset();
                       }
                       return TrialOutcome{.score = score};
                     } catch (const DeadlinePassed&) {
                       return TrialOutcome{.status = TrialStatus::Stopped};
                     }
                   }};
  std::vector<Learner> learners;
  std::vector<std::string> notes;
  for (const std::string& name : o.learners) {
    if (name == "pair_features") {
      learners.push_back(pairs);
    } else if (name == "nasbert_finetune") {
      if (text::shipped_encoder_dir().empty()) {
        notes.push_back(
            "nasbert_finetune: skipped, the shipped encoder models/nasbert-5m-en is not "
            "installed (set KILN_PRETRAINED_DIR)");
      } else {
        learners.push_back(finetune);
      }
    } else {
      KILN_CHECK(false, "{}: unknown learner '{}' (pair_features, nasbert_finetune)", kTask, name);
    }
  }
  KILN_CHECK(!learners.empty(), "{}: no learner to search over ({})", kTask,
             fmt::join(notes, "; "));
  const double scale = static_cast<double>(y.size()) / static_cast<double>(train_y.size());
  SearchOptions so{
      .time_budget_s = o.time_budget_s,
      .seed = o.seed,
      .max_trials = o.max_trials,
      .reserve_s =
          [&](const TrialRecord* best) { return best ? best->seconds * scale * 1.5 + 1.0 : 1.0; },
      .tracking = {.experiment = "automl-sentence-similarity",
                   .metric = o.metric,
                   .shown = [&](double score) { return result.metric_value(score); }}};
  if (o.verbose) {
    so.on_trial = [&](const TrialRecord& r) {
      fmt::print("{}", trial_line(r, 16, [&](double v) { return result.metric_value(v); }));
      std::fflush(stdout);
    };
  }
  result.search = search(learners, so);
  result.search.notes.insert(result.search.notes.begin(), notes.begin(), notes.end());
  result.budget_s = o.time_budget_s;
  result.label_column = o.label_column;
  result.text_column = o.text_column;
  result.text2_column = o.text2_column;
  KILN_CHECK(result.search.best >= 0,
             "{}: no trial finished within {} s ({} tried; the first was {}): give a larger "
             "--time",
             kTask, o.time_budget_s, result.search.trials.size(),
             result.search.trials.empty()
                 ? std::string("never started")
                 : std::string(to_string(result.search.trials.front().status)));
  const Config& best = result.search.trials[result.search.best].config;
  result.winner = result.search.trials[result.search.best].learner;
  // Refit on every pair within what is left of the budget; keep the best trial's own model when
  // the refit is cut (so the budget holds).
  const Deadline end{t0 + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(o.time_budget_s))};
  const Clock::time_point r0 = Clock::now();
  if (result.winner == "pair_features") {
    PairRegressionModel refit = PairRegressionModel::fit(
        texts_a, texts_b, y, pair_feature_options(best), pair_regressor_options(best, o.seed),
        [&] { return end.passed(); });
    result.refitted = !refit.stopped();
    if (result.refitted) {
      result.pair_model = std::move(refit);
    } else {
      KILN_CHECK(kept_pair.has_value(), "{}: the best trial's model was not kept", kTask);
      result.pair_model = std::move(*kept_pair);
    }
  } else {
    try {
      result.encoder_model =
          text::SentenceSimilarity(finetune_options(best, o, end)).fit(pair_table);
      result.refitted = true;
    } catch (const DeadlinePassed&) {
      KILN_CHECK(kept_encoder.has_value(), "{}: the best trial's model was not kept", kTask);
      result.encoder_model = std::move(*kept_encoder);
    }
  }
  result.refit_seconds = std::chrono::duration<double>(Clock::now() - r0).count();
  if (!result.refitted) {
    result.search.notes.push_back(
        "the refit on all rows was cut by the budget: the model is the best trial's own, "
        "trained on the training split");
  }
  result.total_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return result;
}

std::string SimilaritySearchResult::leaderboard_table() const {
  return leaderboard_rows(search, metric, 16,
                          [this](double score) { return metric_value(score); }) +
         leaderboard_footer(search, "", "rows", refitted, refit_seconds, total_seconds, budget_s);
}

json::Value SimilaritySearchResult::leaderboard_json() const {
  json::Value v = leaderboard_head("sentence-similarity", metric, search, refitted, refit_seconds,
                                   total_seconds, budget_s);
  add_trials_json(v, search, [this](double score) { return metric_value(score); });
  return v;
}

void SimilaritySearchResult::save(const std::filesystem::path& dir) const {
  KILN_CHECK(pair_model || encoder_model, "SimilaritySearchResult::save: no model was trained");
  json::Value extra = json::Value::object();
  extra["task"] = "sentence-similarity";
  extra["label_column"] = label_column;
  extra["text_column"] = text_column;
  extra["text2_column"] = text2_column;
  extra["metric"] = metric;
  extra["refitted_on_all_rows"] = refitted;
  if (search.best >= 0) {
    extra["hyperparameters"] = config_json(search.trials[search.best].config);
    extra["validation_metric"] = metric_value(*search.trials[search.best].score);
  }
  if (encoder_model) {
    std::filesystem::create_directories(dir);
    encoder_model->save(dir);
    text::export_onnx(*encoder_model, dir / "model.onnx");
  } else {
    pair_model->save(dir, extra);
  }
  data::detail::AtomicFile f(dir / "leaderboard.json", "automl save");
  f.write(leaderboard_json().dump());
  f.commit();
}

data::Table read_similarity_table(const std::filesystem::path& path,
                                  const std::string& label_column, const std::string& text_column,
                                  const std::string& text2_column) {
  KILN_CHECK_AS(IOError, std::filesystem::exists(path), "read_similarity_table: {}: no such file",
                path.string());
  KILN_CHECK_AS(IOError, std::filesystem::file_size(path) > 0,
                "read_similarity_table: {}: the file is empty", path.string());
  data::CsvOptions opts{.separator = path.extension() == ".tsv" ? '\t' : ','};
  opts.columns = {{.name = label_column, .type = data::ColumnType::String},
                  {.name = text_column, .type = data::ColumnType::String},
                  {.name = text2_column, .type = data::ColumnType::String}};
  data::Table t = data::load_csv(path, opts);
  KILN_CHECK(t.num_rows() > 0, "read_similarity_table: {}: no data rows after the header",
             path.string());
  return t;
}

}  // namespace kiln::automl
