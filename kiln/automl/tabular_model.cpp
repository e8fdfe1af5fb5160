// TabularModel (tabular.h): the network of a tabular learner, its training loop and its export.
#include <fmt/format.h>

#include <cmath>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/automl/tabular.h"
#include "kiln/automl/trainer_internal.h"
#include "kiln/data/csv.h"
#include "kiln/data/split.h"
#include "kiln/nn/activation.h"
#include "kiln/nn/dropout.h"
#include "kiln/nn/linear.h"
#include "kiln/nn/loss.h"
#include "kiln/onnx/export.h"
#include "kiln/optim/adam.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/random.h"

namespace kiln::automl {
namespace {

// The mean over the members of softmax(net(x)) for classification, of net(x) for regression:
// what model.onnx computes.
class TabularHead : public nn::Module {
 public:
  using nn::Module::forward;
  TabularHead(const std::vector<std::shared_ptr<nn::Sequential>>& nets, bool softmax_out)
      : nn::Module("TabularHead"), softmax_(softmax_out) {
    for (size_t i = 0; i < nets.size(); ++i) {
      nets_.push_back(register_module(nets.size() == 1 ? "net" : fmt::format("net{}", i), nets[i]));
    }
  }
  Tensor forward(const Tensor& x) override {
    Tensor sum;
    for (const auto& net : nets_) {
      const Tensor y = net->forward(x);
      const Tensor out = softmax_ ? softmax(y, -1) : y;
      sum = sum.defined() ? sum + out : out;
    }
    return nets_.size() == 1 ? sum : sum * (1.0 / static_cast<double>(nets_.size()));
  }

 private:
  std::vector<std::shared_ptr<nn::Sequential>> nets_;
  bool softmax_;
};

// The rows `which` of x (N·F row-major) as a (B, F) tensor.
Tensor gather_rows(std::span<const float> x, int64_t f, std::span<const size_t> which) {
  std::vector<float> out(which.size() * static_cast<size_t>(f));
  for (size_t r = 0; r < which.size(); ++r) {
    std::copy_n(x.data() + which[r] * static_cast<size_t>(f), f,
                out.data() + r * static_cast<size_t>(f));
  }
  return from_vector(out, {static_cast<int64_t>(which.size()), f});
}

}  // namespace

std::string_view to_string(TabularTask task) {
  return task == TabularTask::Classification ? "classification" : "regression";
}

TabularModel TabularModel::fit(TabularFeaturizer featurizer, std::span<const float> x,
                               std::span<const double> y, TabularTask task,
                               std::vector<std::string> labels, const TabularNetOptions& options,
                               const std::function<bool()>& should_stop) {
  const bool classify = task == TabularTask::Classification;
  const int64_t f = featurizer.num_features(), n = static_cast<int64_t>(y.size());
  const int64_t k = classify ? static_cast<int64_t>(labels.size()) : 1;
  KILN_CHECK(!classify || k >= 2, "TabularModel::fit: classification needs >= 2 labels, got {}", k);
  KILN_CHECK(n >= 1 && static_cast<int64_t>(x.size()) == n * f,
             "TabularModel::fit: {} targets and {} feature values, but {} features per row (need "
             "targets >= 1 and values = targets x features)",
             n, x.size(), f);
  const TabularNetOptions& o = options;
  KILN_CHECK(o.depth >= 0 && o.depth <= 2 && (o.depth == 0 || o.hidden >= 1) && o.dropout >= 0 &&
                 o.dropout < 1 && o.learning_rate > 0 && o.weight_decay >= 0 && o.epochs >= 1 &&
                 o.batch_size >= 1,
             "TabularModel::fit: need depth 0..2, hidden >= 1, dropout in [0, 1), learning_rate "
             "> 0, weight_decay >= 0, epochs >= 1, batch_size >= 1; got {}, {}, {}, {}, {}, {}, {}",
             o.depth, o.hidden, o.dropout, o.learning_rate, o.weight_decay, o.epochs, o.batch_size);
  TabularModel m;
  m.featurizer_ = std::move(featurizer);
  m.task_ = task;
  m.labels_ = std::move(labels);
  // Regression fits the standardised target t = (y − mean) / std; the last layer is rescaled after.
  double y_mean = 0, y_std = 1;
  if (!classify) {
    for (double v : y) y_mean += v;
    y_mean /= static_cast<double>(n);
    double sq = 0;
    for (double v : y) sq += (v - y_mean) * (v - y_mean);
    y_std = std::sqrt(sq / static_cast<double>(n));
    if (!(y_std > 0)) y_std = 1;
  }
  m.gens_ = {std::make_shared<Generator>(o.seed)};
  Generator& gen = *m.gens_[0];
  const auto net = std::make_shared<nn::Sequential>();
  m.nets_ = {net};
  int64_t in = f;
  for (int d = 0; d < o.depth; ++d) {
    net->push_back(std::make_shared<nn::Linear>(nn::LinearOptions(in, o.hidden)));
    net->push_back(std::make_shared<nn::ReLU>());
    if (o.dropout > 0) {
      net->push_back(std::make_shared<nn::Dropout>(nn::DropoutOptions(o.dropout).generator(&gen)));
    }
    in = o.hidden;
  }
  auto last = std::make_shared<nn::Linear>(nn::LinearOptions(in, k));
  net->push_back(last);
  net->reset_parameters(&gen);
  net->train();
  const optim::AdamOptions adam = optim::AdamOptions(o.learning_rate).weight_decay(o.weight_decay);
  std::unique_ptr<optim::Optimizer> opt;
  if (o.depth == 0) {
    opt = std::make_unique<optim::Adam>(net->named_parameters(), adam);
  } else {
    opt = std::make_unique<optim::AdamW>(net->named_parameters(), adam);
  }
  const size_t bs = static_cast<size_t>(o.batch_size), rows = static_cast<size_t>(n);
  for (int epoch = 0; epoch < o.epochs && !m.stopped_; ++epoch) {
    const std::vector<size_t> order = data::permutation(rows, o.seed * 7919 + epoch);
    for (size_t start = 0; start < rows; start += bs) {
      if (should_stop && should_stop()) {
        m.stopped_ = true;
        break;
      }
      const std::span<const size_t> batch(order.data() + start, std::min(bs, rows - start));
      const Tensor out = net->forward(gather_rows(x, f, batch));  // (B, K)
      Tensor loss;
      if (classify) {
        std::vector<int64_t> t;
        for (size_t r : batch) t.push_back(static_cast<int64_t>(y[r]));
        loss = cross_entropy(out, from_vector(t, {static_cast<int64_t>(t.size())}));
      } else {
        std::vector<float> t;
        for (size_t r : batch) t.push_back(static_cast<float>((y[r] - y_mean) / y_std));
        loss = nn::functional::mse_loss(out, from_vector(t, {static_cast<int64_t>(t.size()), 1}));
      }
      opt->zero_grad();
      loss.backward();
      opt->step();
    }
  }
  net->eval();
  if (!classify) detail::unstandardize_output(*last, y_std, y_mean);
  return m;
}

Tensor TabularModel::predict_features(const Tensor& x) const {
  KILN_CHECK(!nets_.empty(), "TabularModel::predict: the model was never trained");
  NoGradGuard no_grad;
  TabularHead head(nets_, task_ == TabularTask::Classification);
  return head.forward(x);
}

TabularModel TabularModel::average(std::vector<TabularModel> members) {
  KILN_CHECK(!members.empty(), "TabularModel::average: no members to average");
  TabularModel m = std::move(members.front());
  KILN_CHECK(!m.nets_.empty(), "TabularModel::average: member 0 was never trained");
  for (size_t i = 1; i < members.size(); ++i) {
    TabularModel& e = members[i];
    KILN_CHECK(!e.nets_.empty() && e.task_ == m.task_ && e.labels_ == m.labels_ &&
                   e.featurizer_.num_features() == m.featurizer_.num_features(),
               "TabularModel::average: member {} does not match member 0 (need trained models of "
               "the same task, labels and features; got {} {} labels {} features vs {} {} labels "
               "{} features)",
               i, to_string(e.task_), e.labels_.size(), e.featurizer_.num_features(),
               to_string(m.task_), m.labels_.size(), m.featurizer_.num_features());
    m.nets_.insert(m.nets_.end(), e.nets_.begin(), e.nets_.end());
    m.gens_.insert(m.gens_.end(), e.gens_.begin(), e.gens_.end());
    m.stopped_ = m.stopped_ || e.stopped_;
  }
  return m;
}

Tensor TabularModel::predict(const data::Table& table) const {
  const std::vector<float> x = featurizer_.transform(table);
  return predict_features(
      from_vector(x, {static_cast<int64_t>(table.num_rows()), featurizer_.num_features()}));
}

void TabularModel::save(const std::filesystem::path& dir, const json::Value& extra) const {
  KILN_CHECK(!nets_.empty(), "TabularModel::save: the model was never trained");
  std::filesystem::create_directories(dir);
  const bool classify = task_ == TabularTask::Classification;
  const std::string output = classify ? "probabilities" : "prediction";
  TabularHead head(nets_, classify);
  head.eval();
  onnx::ExportOptions o;
  o.input_names = {"features"};
  o.output_names = {output};
  o.dynamic_axes = {{"features", {{0, "batch"}}}, {output, {{0, "batch"}}}};
  o.doc_string = fmt::format(
      "tabular {} from kiln automl: input = the featurizer.json features of a row (Kiln applies "
      "them), output = {}",
      to_string(task_),
      classify ? "class probabilities in config.json's label order" : "the predicted value");
  onnx::export_model(head, {zeros({2, featurizer_.num_features()})}, (dir / "model.onnx").string(),
                     o);
  const auto write = [&](const std::string& name, const std::string& text) {
    data::detail::AtomicFile file(dir / name, "TabularModel::save");
    file.write(text);
    file.commit();
  };
  write("featurizer.json", featurizer_.to_json().dump());
  json::Value config = extra.is_object() ? extra : json::Value::object();
  config["task"] = std::string(to_string(task_));
  json::Value labels = json::Value::array();
  for (const std::string& l : labels_) labels.push_back(l);
  if (classify) config["labels"] = std::move(labels);
  config["onnx_input"] = fmt::format(
      "features: (batch, {}) float32, the features of featurizer.json", featurizer_.num_features());
  config["onnx_output"] = classify ? "probabilities: (batch, K) float32 in labels order"
                                   : "prediction: (batch, 1) float32 in the label's units";
  config["preprocessing"] =
      "model.onnx takes featurised rows: apply featurizer.json's recipe (kiln::automl::"
      "TabularFeaturizer, which Kiln applies) to each row first";
  write("config.json", config.dump());
}

}  // namespace kiln::automl
