// ImageClassificationTrainer / ImageClassificationModel: table in, trained CNN out.
// Legend: N = rows, B = batch, C = channels, H/W = the configured height/width, K = classes.
#include "kiln/vision/image_classification.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <set>

#include "kiln/autograd/functions.h"
#include "kiln/data/split.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"
#include "kiln/track/callback.h"
#include "kiln/vision/datasets.h"
#include "kiln/vision/models.h"

namespace kiln::vision {

namespace fs = std::filesystem;

namespace {

struct Labels {
  std::vector<int64_t> ids;          // (N) in [0, K)
  std::vector<std::string> classes;  // (K)
};

// Class ids of a Key, String or Int label column (String / Int classes sorted by value).
Labels read_labels(const data::Column& col) {
  Labels out;
  switch (col.type()) {
    case data::ColumnType::Key:
      out.ids = col.keys();
      out.classes = col.key_values();
      return out;
    case data::ColumnType::String: {
      const auto& v = col.strings();
      std::set<std::string> uniq(v.begin(), v.end());
      out.classes.assign(uniq.begin(), uniq.end());
      for (const auto& s : v)
        out.ids.push_back(std::lower_bound(out.classes.begin(), out.classes.end(), s) -
                          out.classes.begin());
      return out;
    }
    case data::ColumnType::Int: {
      const auto& v = col.ints();
      std::set<int64_t> uniq(v.begin(), v.end());
      std::vector<int64_t> sorted(uniq.begin(), uniq.end());
      for (int64_t k : sorted) out.classes.push_back(std::to_string(k));
      for (int64_t k : v)
        out.ids.push_back(std::lower_bound(sorted.begin(), sorted.end(), k) - sorted.begin());
      return out;
    }
    case data::ColumnType::Float:
      break;
  }
  throw TypeError(fmt::format(
      "ImageClassificationTrainer: label column '{}' is float; use a key, string or int column",
      col.name()));
}

std::string resolve_path(const std::string& folder, const std::string& path) {
  if (folder.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(folder) / path).string();
}

// uint8 (n, H, W, C) rows -> float32 (n, C, H, W) in [0, 1], optionally augmenting each sample.
Tensor to_batch(const Array& images, const std::vector<int64_t>& rows, const TransformPtr& augment,
                uint64_t seed, int64_t pass) {
  const int64_t h = images.size(1), w = images.size(2), c = images.size(3);
  Array x({static_cast<int64_t>(rows.size()), c, h, w}, kFloat32);
  for (size_t i = 0; i < rows.size(); ++i) {
    Tensor img(images.select(0, rows[i]));  // (H, W, C) uint8
    if (augment) img = augment->apply(img, sample_seed(seed, rows[i], pass));
    x.select(0, static_cast<int64_t>(i)).copy_(to_tensor(img).data());
  }
  return Tensor(x);
}

std::vector<int64_t> iota(int64_t begin, int64_t end) {
  std::vector<int64_t> v(static_cast<size_t>(end - begin));
  for (int64_t i = begin; i < end; ++i) v[i - begin] = i;
  return v;
}

nn::ModulePtr build_network(const ImageClassificationOptions& o, int64_t c, int64_t k) {
  if (o.model_factory) return o.model_factory(c, k);
  if (o.architecture == "lenet5") {
    KILN_CHECK_SHAPE(o.height == o.width,
                     "ImageClassificationTrainer: lenet5 needs square images, got {}x{}", o.height,
                     o.width);
    return lenet5({.in_channels = c, .num_classes = k, .image_size = o.height});
  }
  if (o.architecture == "resnet") return resnet({.in_channels = c, .num_classes = k});
  if (o.architecture == "mobilenet") return mobilenet({.in_channels = c, .num_classes = k});
  throw Error(fmt::format(
      "ImageClassificationTrainer: unknown architecture '{}' (expected lenet5, resnet or "
      "mobilenet, or set model_factory)",
      o.architecture));
}

}  // namespace

data::Table load_image_folder_table(const std::string& root, const std::string& label_column,
                                    const std::string& path_column) {
  ImageFolder folder(root);
  data::Table t;
  t.add_column(data::Column::from_keys(label_column, folder.labels(), folder.classes()));
  t.add_column(data::Column(path_column, folder.paths()));
  return t;
}

Tensor load_table_images(const data::Table& table, const ImageClassificationOptions& o) {
  KILN_CHECK(o.height > 0 && o.width > 0, "load_table_images: height and width must be > 0");
  const data::Column& col = table.column(o.image_path_column);
  const std::vector<std::string>& paths = col.strings();
  const auto n = static_cast<int64_t>(paths.size());
  KILN_CHECK(n > 0, "load_table_images: column '{}' has no rows", o.image_path_column);
  KILN_CHECK(o.color != ColorMode::Keep,
             "load_table_images: color must be Gray or RGB (every image needs the same channels)");
  const int64_t c = o.color == ColorMode::RGB ? 3 : 1;
  Array out({n, o.height, o.width, c}, kUInt8);
  std::vector<std::string> errors(static_cast<size_t>(n));
  std::atomic<bool> failed{false};
  // Decoding does not touch BLAS, so it may run on the oneTBB pool; each row writes its own slot.
  parallel_for(0, n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      try {
        Tensor img = read_image(resolve_path(o.image_folder, paths[i]), o.color);
        if (img.size(0) != o.height || img.size(1) != o.width) img = resize(img, o.height, o.width);
        out.select(0, i).copy_(img.data());
      } catch (const std::exception& ex) {
        errors[i] = fmt::format("row {}: {}", i, ex.what());
        failed = true;
      }
    }
  });
  if (failed)
    for (const auto& e : errors)
      if (!e.empty()) throw IOError("load_table_images: " + e);
  return Tensor(std::move(out));
}

// ---------------------------------------------------------------- trainer

ImageClassificationTrainer::ImageClassificationTrainer(ImageClassificationOptions options)
    : options_(std::move(options)) {
  KILN_CHECK(options_.epochs >= 1 && options_.batch_size >= 1 && options_.learning_rate > 0,
             "ImageClassificationTrainer: need epochs >= 1, batch_size >= 1, learning_rate > 0");
  KILN_CHECK(options_.validation_fraction >= 0 && options_.validation_fraction < 1,
             "ImageClassificationTrainer: validation_fraction must be in [0, 1), got {}",
             options_.validation_fraction);
}

ImageClassificationModel ImageClassificationTrainer::fit(const data::Table& train) const {
  const ImageClassificationOptions& o = options_;
  Labels labels = read_labels(train.column(o.label_column));
  KILN_CHECK(labels.classes.size() >= 2,
             "ImageClassificationTrainer: label column '{}' has {} class(es); need at least 2",
             o.label_column, labels.classes.size());
  const Array images = load_table_images(train, o).data();  // (N, H, W, C)
  const int64_t n = images.size(0), c = images.size(3);
  const auto k = static_cast<int64_t>(labels.classes.size());
  Array y({n}, kInt64);
  std::copy(labels.ids.begin(), labels.ids.end(), y.data<int64_t>());

  nn::ModulePtr net = build_network(o, c, k);
  Generator gen(o.seed);
  net->reset_parameters(&gen);
  auto model = std::make_shared<Model>(net, "image_classification");
  model->compile(optimizers::Adam(o.learning_rate), "sparse_categorical_crossentropy",
                 {"accuracy"});

  // Held-out rows: a seeded stratified sample (tables from ImageFolder are sorted by class, so
  // the last rows would all be one class).
  std::vector<int64_t> train_rows, val_rows;
  if (o.validation_fraction > 0) {
    data::SplitIndices split = data::stratified_split(labels.ids, o.validation_fraction, o.seed);
    train_rows.assign(split.train.begin(), split.train.end());
    val_rows.assign(split.test.begin(), split.test.end());
  } else {
    train_rows = iota(0, n);
  }
  KILN_CHECK(!train_rows.empty(), "ImageClassificationTrainer: no training rows left");
  // Each training batch call is one augmentation "pass": together with the row it seeds the draw.
  auto pass = std::make_shared<int64_t>(0);
  auto source = [&](const std::vector<int64_t>& table_rows, bool train_mode) {
    return std::make_shared<FunctionBatchSource>(
        static_cast<int64_t>(table_rows.size()),
        [&, train_mode, pass](const std::vector<int64_t>& idx) {
          std::vector<int64_t> rows, ys;
          for (int64_t i : idx) {
            rows.push_back(table_rows[i]);
            ys.push_back(y.data<int64_t>()[table_rows[i]]);
          }
          Tensor x = train_mode ? to_batch(images, rows, o.augmentation, o.seed, (*pass)++)
                                : to_batch(images, rows, nullptr, 0, 0);
          return Batch{x, Tensor(kernels::from_vector(ys)), {}};
        });
  };
  std::shared_ptr<BatchSource> train_source = source(train_rows, true);
  FitOptions fit{.epochs = o.epochs,
                 .batch_size = o.batch_size,
                 .shuffle = true,
                 .seed = o.seed,
                 .verbose = o.verbose};
  if (!val_rows.empty()) fit.validation_data = ValidationData{.source = source(val_rows, false)};
  fit.callbacks = o.callbacks;
  // Experiment tracking (kiln/track/callback.h): the active run, or a new one when tracking is on.
  if (auto cb = track::trainer_callback(
          "ImageClassification",
          {{"architecture", o.architecture},
           {"height", fmt::format("{}", o.height)},
           {"width", fmt::format("{}", o.width)},
           {"validation_fraction", fmt::format("{}", o.validation_fraction)}}))
    fit.callbacks.push_back(cb);
  History history = model->fit(*train_source, fit);
  return ImageClassificationModel(model, labels.classes, o, history);
}

// ---------------------------------------------------------------- model

ImageClassificationModel::ImageClassificationModel(std::shared_ptr<Model> model,
                                                   std::vector<std::string> classes,
                                                   ImageClassificationOptions options,
                                                   History history)
    : model_(std::move(model)),
      classes_(std::move(classes)),
      options_(std::move(options)),
      history_(std::move(history)) {}

Tensor ImageClassificationModel::predict_proba(const data::Table& input) const {
  const Array images = load_table_images(input, options_).data();       // (N, H, W, C)
  Tensor x = to_batch(images, iota(0, images.size(0)), nullptr, 0, 0);  // (N, C, H, W)
  Tensor logits = model_->predict(x, {.batch_size = std::max<int64_t>(options_.batch_size, 64)});
  return softmax(logits, -1);  // (N, K)
}

Tensor ImageClassificationModel::predict_image(const std::string& path) const {
  data::Table t;
  t.add_column(data::Column(options_.image_path_column, std::vector<std::string>{path}));
  return Tensor(predict_proba(t).data().select(0, 0));
}

data::Table ImageClassificationModel::transform(const data::Table& input) const {
  Tensor proba = predict_proba(input);
  Array p = proba.data().contiguous();
  const int64_t n = p.size(0), k = p.size(1);
  std::vector<int64_t> predicted(static_cast<size_t>(n));
  std::vector<float> score(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* row = p.data<float>() + i * k;
    const int64_t best = std::max_element(row, row + k) - row;
    predicted[i] = best;
    score[i] = row[best];
  }
  data::Table out = input;
  if (out.has_column("PredictedLabel")) out.remove_column("PredictedLabel");
  if (out.has_column("Score")) out.remove_column("Score");
  out.add_column(data::Column::from_keys("PredictedLabel", predicted, classes_));
  out.add_column(data::Column("Score", score));
  return out;
}

// ---------------------------------------------------------------- metrics

MulticlassMetrics evaluate(const data::Table& scored, const std::string& label_column,
                           const std::string& predicted_column) {
  const data::Column& pred = scored.column(predicted_column);
  const data::Column& truth = scored.column(label_column);
  KILN_CHECK_TYPE(pred.type() == data::ColumnType::Key,
                  "evaluate: column '{}' must be a key column (from transform()), got {}",
                  predicted_column, data::to_string(pred.type()));
  MulticlassMetrics m;
  m.classes = pred.key_values();
  const auto k = m.classes.size();
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < k; ++i) index[m.classes[i]] = i;
  m.confusion.assign(k, std::vector<int64_t>(k, 0));
  const size_t n = scored.num_rows();
  KILN_CHECK(n > 0, "evaluate: the table has no rows");
  int64_t right = 0;
  for (size_t r = 0; r < n; ++r) {
    const std::string t = truth.value_string(r);
    auto it = index.find(t);
    KILN_CHECK(it != index.end(),
               "evaluate: row {}: label '{}' is not one of the model's {} classes", r, t, k);
    const auto p = static_cast<size_t>(pred.keys()[r]);
    ++m.confusion[it->second][p];
    right += it->second == p;
  }
  m.micro_accuracy = static_cast<double>(right) / static_cast<double>(n);
  double recall_sum = 0;
  int present = 0;
  for (size_t i = 0; i < k; ++i) {
    int64_t total = 0;
    for (int64_t v : m.confusion[i]) total += v;
    if (total == 0) continue;
    recall_sum += static_cast<double>(m.confusion[i][i]) / static_cast<double>(total);
    ++present;
  }
  m.macro_accuracy = present ? recall_sum / present : 0.0;
  return m;
}

std::string MulticlassMetrics::confusion_table() const {
  size_t width = 5;
  for (const auto& c : classes) width = std::max(width, c.size());
  for (const auto& row : confusion)
    for (int64_t v : row) width = std::max(width, std::to_string(v).size());
  std::string s = fmt::format("{:>{}} |", "truth", width);
  for (const auto& c : classes) s += fmt::format(" {:>{}}", c, width);
  s += fmt::format(" | recall\n{}\n", std::string(s.size() + 8, '-'));
  for (size_t i = 0; i < classes.size(); ++i) {
    s += fmt::format("{:>{}} |", classes[i], width);
    int64_t total = 0;
    for (int64_t v : confusion[i]) {
      s += fmt::format(" {:>{}}", v, width);
      total += v;
    }
    s += total ? fmt::format(" | {:.3f}\n", static_cast<double>(confusion[i][i]) / total)
               : std::string(" |\n");
  }
  return s;
}

}  // namespace kiln::vision
