// Model: compile, fit, evaluate, predict and the *_on_batch steps. Checkpoints live in
// checkpoint.cpp, Sequential and summary() in sequential.cpp.
#include "kiln/train/model.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "kiln/autograd/grad_mode.h"
#include "kiln/distributed/distributed.h"
#include "kiln/distributed/sampler.h"
#include "kiln/nn/activation.h"
#include "kiln/optim/clip_grad.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/index.h"
#include "kiln/train/layers.h"
#include "kiln/train/model_state.h"
#include "kiln/train/progress.h"

namespace kiln {

// ---------------------------------------------------------------- data sources

TensorBatchSource::TensorBatchSource(Tensor x, Tensor y, Tensor sample_weight,
                                     const std::string& op)
    : x_(std::move(x)), y_(std::move(y)), w_(std::move(sample_weight)) {
  KILN_CHECK_SHAPE(x_.defined() && y_.defined() && x_.dim() >= 1 && y_.dim() >= 1,
                   "{}: x and y must be defined tensors with a batch dim", op);
  KILN_CHECK_SHAPE(x_.size(0) == y_.size(0),
                   "{}: x has {} rows but y has {} (x {} vs y {}; one target per sample)", op,
                   x_.size(0), y_.size(0), x_.shape(), y_.shape());
  KILN_CHECK_SHAPE(!w_.defined() || w_.numel() == x_.size(0),
                   "{}: sample_weight has {} entries but x has {} rows", op,
                   w_.defined() ? w_.numel() : 0, x_.size(0));
}

Batch TensorBatchSource::get_batch(const std::vector<int64_t>& idx) {
  KILN_CHECK(!idx.empty(), "TensorBatchSource: empty batch");
  const int64_t n = size();
  for (int64_t i : idx)
    KILN_CHECK(i >= 0 && i < n, "TensorBatchSource: index {} is out of range for {} rows", i, n);
  bool contiguous = true;
  for (size_t i = 1; i < idx.size() && contiguous; ++i) contiguous = idx[i] == idx[i - 1] + 1;
  auto rows = [&](const Tensor& t) -> Tensor {
    if (!t.defined()) return t;
    if (contiguous) return Tensor(t.data().slice(0, idx.front(), idx.back() + 1));
    return Tensor(kernels::index_select(t.data(), 0, kernels::from_vector(idx)));
  };
  return Batch{rows(x_), rows(y_), rows(w_)};
}

// ---------------------------------------------------------------- History

const std::vector<double>& History::operator[](const std::string& key) const {
  auto it = values_.find(key);
  KILN_CHECK(it != values_.end(), "History: no key \"{}\" (keys: {})", key,
             fmt::join(keys(), ", "));
  return it->second;
}

std::vector<std::string> History::keys() const {
  std::vector<std::string> k;
  for (const auto& [name, v] : values_) k.push_back(name);
  return k;
}

void History::append(int epoch, const Logs& logs) {
  epochs_.push_back(epoch);
  for (const auto& [k, v] : logs) values_[k].push_back(v);
}

void History::merge_last(const Logs& logs) {
  if (epochs_.empty()) return;
  for (const auto& [k, v] : logs) {
    auto& vec = values_[k];
    if (vec.size() < epochs_.size()) vec.push_back(v);
  }
}

json::Value History::to_json() const {
  json::Value v = json::Value::object();
  json::Value e = json::Value::array();
  for (int x : epochs_) e.push_back(x);
  v["epoch"] = std::move(e);
  json::Value h = json::Value::object();
  for (const auto& [k, vals] : values_) {
    json::Value a = json::Value::array();
    for (double x : vals) a.push_back(x);
    h[k] = std::move(a);
  }
  v["history"] = std::move(h);
  return v;
}

History History::from_json(const json::Value& v) {
  History h;
  if (v.is_null()) return h;
  for (const json::Value& e : v.at("epoch").as_array())
    h.epochs_.push_back(static_cast<int>(e.as_int()));
  for (const auto& [k, vals] : v.at("history").members())
    for (const json::Value& x : vals.as_array()) h.values_[k].push_back(x.as_double());
  return h;
}

// ---------------------------------------------------------------- specs

LossSpec::LossSpec(const char* name) : loss(losses::get(name)) {}
LossSpec::LossSpec(const std::string& name) : loss(losses::get(name)) {}
MetricSpec::MetricSpec(const char* name) : metric(metrics::get(name)) {}
MetricSpec::MetricSpec(const std::string& name) : metric(metrics::get(name)) {}

// ---------------------------------------------------------------- Model

Model::Model(nn::ModulePtr module, std::string name)
    : module_(std::move(module)), name_(std::move(name)) {
  KILN_CHECK(module_ != nullptr, "Model: the module is null");
}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

Model::Compiled& Model::require_compiled(const char* op) const {
  KILN_CHECK(compiled_ != nullptr,
             "{}: model '{}' is not compiled (call compile(optimizer, loss, metrics) first)", op,
             name_);
  return *compiled_;
}

optim::Optimizer* Model::optimizer() const {
  return compiled_ ? compiled_->optimizer.get() : nullptr;
}
optim::LRScheduler* Model::scheduler() const {
  return compiled_ ? compiled_->scheduler.get() : nullptr;
}
losses::Loss* Model::loss() const {
  return compiled_ ? compiled_->loss.get() : nullptr;
}
std::vector<metrics::MetricPtr> Model::metrics() const {
  return compiled_ ? compiled_->metrics : std::vector<metrics::MetricPtr>{};
}

namespace {

// The activation a module ends with: a kiln layer's, nn::Softmax / Sigmoid / LogSoftmax, or the
// last child of an nn::Sequential.
std::string activation_of(const nn::Module& m) {
  if (const auto* l = dynamic_cast<const layers::Layer*>(&m)) return l->output_activation();
  if (dynamic_cast<const nn::Softmax*>(&m)) return "softmax";
  if (dynamic_cast<const nn::Sigmoid*>(&m)) return "sigmoid";
  if (dynamic_cast<const nn::LogSoftmax*>(&m)) return "log_softmax";
  if (const auto* s = dynamic_cast<const nn::Sequential*>(&m))
    return s->empty() ? "" : activation_of(*(*s)[s->size() - 1]);
  return "";
}

// Per-sample weights (B) from class_weight: labels are y's integer ids (B) / (B, 1), the argmax of
// one-hot rows (B, K), or rounded binary targets.
Tensor class_sample_weights(const Tensor& y, const std::map<int64_t, double>& cw) {
  const int64_t B = y.size(0);
  std::vector<int64_t> labels;
  if (y.dim() >= 2 && y.size(-1) > 1 && is_floating(y.dtype())) {
    KILN_CHECK_SHAPE(y.dim() == 2, "fit: class_weight needs (B, K) one-hot targets, got y {}",
                     y.shape());
    labels = argmax(y, 1).to_vector<int64_t>();
  } else {
    KILN_CHECK_SHAPE(y.numel() == B, "fit: class_weight needs one class label per sample, got y {}",
                     y.shape());
    for (double v : y.to_vector<double>()) labels.push_back(static_cast<int64_t>(std::llround(v)));
  }
  std::vector<float> w(static_cast<size_t>(B));
  for (int64_t i = 0; i < B; ++i) {
    auto it = cw.find(labels[static_cast<size_t>(i)]);
    w[static_cast<size_t>(i)] = it == cw.end() ? 1.0f : static_cast<float>(it->second);
  }
  return from_vector(w, {B});
}

std::vector<int64_t> iota_rows(int64_t begin, int64_t end) {
  std::vector<int64_t> r(static_cast<size_t>(std::max<int64_t>(end - begin, 0)));
  std::iota(r.begin(), r.end(), begin);
  return r;
}

bool stdout_is_terminal() {
  return ::isatty(::fileno(stdout)) != 0;
}

}  // namespace

std::string Model::output_activation() const {
  return activation_of(*module_);
}

void Model::build(const Shape& input_shape, DType dtype) {
  KILN_CHECK_SHAPE(!input_shape.empty(),
                   "build: model '{}': input_shape must include the batch dim, got []", name_);
  if (built_) {
    const bool same =
        input_shape.size() == input_shape_.size() &&
        std::equal(input_shape.begin() + 1, input_shape.end(), input_shape_.begin() + 1);
    KILN_CHECK_SHAPE(
        same,
        "build: model '{}' was built for inputs {} but got {} (only the batch dim may differ)",
        name_, input_shape_, input_shape);
    return;
  }
  Shape s = input_shape;
  s[0] = 1;
  for (size_t i = 1; i < s.size(); ++i)
    KILN_CHECK_SHAPE(
        s[i] >= 0,
        "build: model '{}': input_shape {} has an unknown dim {} (only the batch dim may be -1)",
        name_, input_shape, i);
  NoGradGuard no_grad;
  const bool was_training = module_->is_training();
  input_dtype_ = dtype;  // build_forward may refine it (Sequential: the first layer's input dtype)
  module_->eval();
  try {
    build_forward(Tensor(kernels::zeros(s, dtype)));
  } catch (...) {
    module_->train(was_training);
    throw;
  }
  module_->train(was_training);
  input_shape_ = input_shape;
  built_ = true;
}

void Model::build_forward(const Tensor& x) {
  output_shape_ = module_->forward(x).shape();
}

void Model::ensure_built(const Tensor& x) {
  if (built_) return;
  Shape s = x.shape();
  if (!s.empty()) s[0] = -1;
  build(s, x.dtype());
}

void Model::compile(optimizers::OptimizerSpec optimizer, LossSpec loss,
                    std::vector<MetricSpec> metrics) {
  auto c = std::make_unique<Compiled>(std::move(optimizer));
  c->loss = std::move(loss.loss);  // null: compute_loss is overridden (checked there)
  if (c->loss) c->loss->resolve_output(output_activation());
  for (auto& m : metrics) {
    KILN_CHECK(m.metric != nullptr, "compile: model '{}': a metric is null", name_);
    for (const auto& other : c->metrics)
      KILN_CHECK(other->name() != m.metric->name(),
                 "compile: model '{}': metric \"{}\" is listed twice", name_, m.metric->name());
    KILN_CHECK(m.metric->name() != "loss",
               "compile: model '{}': a metric may not be named \"loss\"", name_);
    if (c->loss) m.metric->set_from_logits(c->loss->from_logits());
    c->metrics.push_back(std::move(m.metric));
  }
  c->optimizer = c->spec.instance();
  compiled_ = std::move(c);
  // Under mpirun / srun, MPI starts here, so rank() is valid from compile() on.
  (void)is_distributed();
}

void Model::set_distributed(bool on, double bucket_cap_mb) {
  KILN_CHECK(!on || distributed::is_initialized(),
             "set_distributed: model '{}': distributed training needs MPI started "
             "(kiln::distributed::init(), and the program run with mpirun -np N)",
             name_);
  KILN_CHECK(bucket_cap_mb > 0, "set_distributed: bucket_cap_mb must be positive, got {}",
             bucket_cap_mb);
  distributed_ = on;
  bucket_cap_mb_ = bucket_cap_mb;
  if (compiled_) compiled_->ddp.reset();  // rebuilt by the next fit with these settings
}

bool Model::is_distributed() const {
  return distributed_ ? *distributed_ : distributed::init_from_environment();
}

bool Model::is_main_process() const {
  return !is_distributed() || distributed::rank() == 0;
}

const distributed::DdpStats* Model::distributed_stats() const {
  return compiled_ && compiled_->ddp ? &compiled_->ddp->stats() : nullptr;
}

void Model::ensure_optimizer() {
  Compiled& c = require_compiled("fit");
  if (!c.optimizer) {
    optim::NamedParameters trainable;
    for (auto& [n, p] : module_->named_parameters())
      if (p.requires_grad()) trainable.emplace_back(n, p);
    KILN_CHECK(!trainable.empty(),
               "fit: model '{}' has no trainable parameters (is every layer frozen?)", name_);
    c.optimizer = c.spec.build(trainable, c.groups);
  }
  if (c.spec.schedule().defined() && !c.scheduler)
    c.scheduler = c.spec.schedule().build(*c.optimizer);
  if (is_distributed() && !c.ddp) {
    // Every rank starts from rank 0's weights, whatever its own initialisation drew.
    distributed::broadcast_parameters(*module_);
    optim::NamedParameters trainable;
    for (auto& [n, p] : module_->named_parameters())
      if (p.requires_grad()) trainable.emplace_back(n, p);
    c.ddp = std::make_unique<distributed::DistributedDataParallel>(
        trainable, distributed::DistributedDataParallelOptions{.bucket_cap_mb = bucket_cap_mb_});
    c.broadcast_buffers = !module_->named_buffers().empty();
    // Random draws from here on (nn::Dropout's masks, augmentation in a BatchSource) should differ
    // between ranks, whose shares differ: give each rank its own default-generator stream.
    Generator& g = default_generator();
    g.manual_seed(mix_seed(g.seed(), g.advance(0), static_cast<uint64_t>(distributed::rank()) + 1));
  }
  if (c.pending) {
    c.pending = false;
    c.optimizer->load_state_dict(c.pending_optimizer);
    if (c.scheduler && !c.pending_scheduler.empty())
      c.scheduler->load_state_dict(c.pending_scheduler);
    c.pending_optimizer.clear();
    c.pending_scheduler.clear();
  }
}

double Model::train_step(const Batch& b, double weight) {
  Compiled& c = *compiled_;
  // Distributed: a rank's share of a small last batch may be empty (x undefined); the rank still
  // joins the gradient all-reduce, with weight 0, and steps.
  const bool local = b.x.defined();
  if (c.ddp) {
    if (c.broadcast_buffers) distributed::broadcast_buffers(*module_);
    c.ddp->prepare_for_backward(weight);
  }
  Tensor out, loss;
  c.optimizer->zero_grad();
  if (local) {
    loss = compute_loss(b, out);
    loss.backward();  // distributed: the hooks start gradient all-reduces as buckets fill
  }
  if (c.ddp) c.ddp->finish_gradient_synchronization();  // every rank: the global batch's gradient
  const auto& spec = c.spec;
  if (spec.clipvalue() || spec.clipnorm() || spec.global_clipnorm()) {
    std::vector<Tensor> params;
    for (const auto& g : c.optimizer->param_groups())
      for (const auto& [n, p] : g.params) params.push_back(p);
    if (spec.clipvalue()) optim::clip_grad_value_(params, *spec.clipvalue());
    if (spec.clipnorm())
      for (const Tensor& p : params)
        optim::clip_grad_norm_(std::vector<Tensor>{p}, *spec.clipnorm());
    if (spec.global_clipnorm()) optim::clip_grad_norm_(params, *spec.global_clipnorm());
  }
  c.optimizer->step();
  if (c.scheduler && spec.schedule().per_batch()) c.scheduler->step();
  if (!local) return 0.0;
  const double value = loss.item<double>();
  if (!c.metrics.empty() && out.defined()) {
    NoGradGuard no_grad;
    Tensor o = out.detach();
    for (auto& m : c.metrics) m->update(o, b.y);
  }
  return value;
}

double Model::test_step(const Batch& b) {
  Compiled& c = *compiled_;
  NoGradGuard no_grad;
  Tensor out;
  const double value = compute_loss(b, out).item<double>();
  if (out.defined())
    for (auto& m : c.metrics) m->update(out, b.y);
  return value;
}

Tensor Model::compute_loss(const Batch& b, Tensor& output) {
  const Compiled& c = *compiled_;
  KILN_CHECK(c.loss != nullptr,
             "fit: model '{}' was compiled without a loss (nullptr); give compile() one or "
             "override Model::compute_loss",
             name_);
  output = module_->forward(b.x);
  return (*c.loss)(output, b.y, b.sample_weight);
}

void Model::metric_logs(Logs& logs, const std::string& prefix) const {
  for (const auto& m : compiled_->metrics) logs[prefix + m->name()] = m->result();
}

Logs Model::train_on_batch(const Tensor& x, const Tensor& y, const Tensor& sample_weight) {
  Compiled& c = require_compiled("train_on_batch");
  KILN_CHECK_SHAPE(x.dim() >= 1 && y.dim() >= 1 && x.size(0) == y.size(0),
                   "train_on_batch: x has {} rows but y has {} (x {} vs y {})",
                   x.dim() ? x.size(0) : 0, y.dim() ? y.size(0) : 0, x.shape(), y.shape());
  ensure_built(x);
  ensure_optimizer();
  for (auto& m : c.metrics) m->reset();
  module_->train();
  Logs logs;
  logs["loss"] = train_step(Batch{x, y, sample_weight});
  metric_logs(logs, "");
  return logs;
}

Logs Model::test_on_batch(const Tensor& x, const Tensor& y, const Tensor& sample_weight) {
  Compiled& c = require_compiled("test_on_batch");
  ensure_built(x);
  for (auto& m : c.metrics) m->reset();
  module_->eval();
  Logs logs;
  logs["loss"] = test_step(Batch{x, y, sample_weight});
  metric_logs(logs, "");
  return logs;
}

Tensor Model::predict_on_batch(const Tensor& x) {
  ensure_built(x);
  NoGradGuard no_grad;
  module_->eval();
  return module_->forward(x);
}

Tensor Model::predict(const Tensor& x, const PredictOptions& o) {
  KILN_CHECK(o.batch_size > 0, "predict: batch_size must be positive, got {}", o.batch_size);
  KILN_CHECK_SHAPE(x.dim() >= 1 && x.size(0) > 0, "predict: x must have at least one row, got {}",
                   x.shape());
  ensure_built(x);
  NoGradGuard no_grad;
  module_->eval();
  const int64_t n = x.size(0), steps = (n + o.batch_size - 1) / o.batch_size;
  Progbar bar(steps, is_main_process() ? o.verbose : 0, stdout, stdout_is_terminal());
  std::vector<Tensor> outs;
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t b = s * o.batch_size, e = std::min(n, b + o.batch_size);
    outs.push_back(module_->forward(x.slice(0, b, e)));
    bar.update(s + 1, {}, s + 1 == steps);
  }
  return outs.size() == 1 ? outs[0] : cat(outs, 0);
}

Logs Model::run_test_batches(BatchSource& data, const std::vector<int64_t>& rows,
                             int64_t batch_size, int verbose, const std::string& prefix) {
  Compiled& c = *compiled_;
  KILN_CHECK(batch_size > 0, "evaluate: batch_size must be positive, got {}", batch_size);
  KILN_CHECK(!rows.empty(), "evaluate: model '{}': no samples to evaluate", name_);
  module_->eval();
  c.loss_tracker.reset();
  for (auto& m : c.metrics) m->reset();
  // Distributed: rank r evaluates every world_size-th row; the states are combined below.
  const bool dist = is_distributed();
  std::vector<int64_t> mine;
  if (dist) {
    for (size_t i = static_cast<size_t>(distributed::rank()); i < rows.size();
         i += static_cast<size_t>(distributed::world_size()))
      mine.push_back(rows[i]);
    if (!is_main_process()) verbose = 0;
  }
  const std::vector<int64_t>& my_rows = dist ? mine : rows;
  const int64_t n = static_cast<int64_t>(my_rows.size()), steps = (n + batch_size - 1) / batch_size;
  Progbar bar(steps, verbose, stdout, stdout_is_terminal());
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t b = s * batch_size, e = std::min(n, b + batch_size);
    Batch batch = data.get_batch(std::vector<int64_t>(my_rows.begin() + b, my_rows.begin() + e));
    c.loss_tracker.update_value(test_step(batch), static_cast<double>(e - b));
    if (verbose) bar.update(s + 1, running_values(), s + 1 == steps && !dist);
  }
  if (dist) {
    merge_metrics_across_ranks();
    if (verbose) bar.update(steps, running_values(), true);  // the final line: all ranks' rows
  }
  Logs logs;
  logs[prefix + "loss"] = c.loss_tracker.result();
  metric_logs(logs, prefix);
  return logs;
}

void Model::merge_metrics_across_ranks() {
  Compiled& c = *compiled_;
  std::vector<metrics::Metric*> all{&c.loss_tracker};
  for (auto& m : c.metrics) all.push_back(m.get());
  for (metrics::Metric* m : all) {
    const std::vector<std::vector<double>> states = distributed::all_gather(m->state());
    m->reset();
    for (const auto& st : states) m->merge_state(st);  // rank order: the same result everywhere
  }
}

Logs Model::evaluate(const Tensor& x, const Tensor& y, const EvaluateOptions& o) {
  TensorBatchSource src(x, y, {}, "evaluate");
  return evaluate(src, o);
}

Logs Model::evaluate(BatchSource& data, const EvaluateOptions& o) {
  require_compiled("evaluate");
  KILN_CHECK(data.size() > 0, "evaluate: model '{}': the data is empty", name_);
  if (!built_) ensure_built(data.get_batch({0}).x);
  return run_test_batches(data, iota_rows(0, data.size()), o.batch_size, o.verbose, "");
}

History Model::fit(const Tensor& x, const Tensor& y, const FitOptions& o) {
  TensorBatchSource src(x, y);
  return fit(src, o);
}

History Model::fit(BatchSource& data, const FitOptions& o) {
  require_compiled("fit");
  KILN_CHECK(o.validation_split >= 0.0 && o.validation_split < 1.0,
             "fit: validation_split must be in [0, 1), got {}", o.validation_split);
  const int64_t n = data.size();
  std::unique_ptr<BatchSource> val_owned;
  BatchSource* val = nullptr;
  std::vector<int64_t> train_rows, val_rows;
  if (o.validation_data.defined()) {
    const ValidationData& vd = o.validation_data;
    if (vd.source) {
      val = vd.source.get();
    } else {
      val_owned = std::make_unique<TensorBatchSource>(vd.x, vd.y, Tensor(), "fit: validation_data");
      val = val_owned.get();
    }
    train_rows = iota_rows(0, n);
    val_rows = iota_rows(0, val->size());
  } else if (o.validation_split > 0.0) {
    // Keras: the last fraction of the rows, before any shuffling.
    const int64_t split_at =
        static_cast<int64_t>(static_cast<double>(n) * (1.0 - o.validation_split));
    KILN_CHECK(split_at > 0 && split_at < n,
               "fit: validation_split={} of {} samples leaves {} for training and {} for "
               "validation (both must be "
               "non-empty)",
               o.validation_split, n, split_at, n - split_at);
    train_rows = iota_rows(0, split_at);
    val_rows = iota_rows(split_at, n);
    val = &data;
  } else {
    train_rows = iota_rows(0, n);
  }
  return run_fit(data, train_rows, val, val_rows, o);
}

std::vector<std::pair<std::string, double>> Model::running_values() const {
  std::vector<std::pair<std::string, double>> v{{"loss", compiled_->loss_tracker.result()}};
  for (const auto& m : compiled_->metrics) v.emplace_back(m->name(), m->result());
  return v;
}

// The epoch's order is `rows` permuted by a generator seeded from (seed, epoch), so a run resumed
// at any epoch sees the same order as an uninterrupted one; DistributedSampler draws it and, when
// distributed, hands this rank every world_size-th sample of each global batch.
void Model::train_epoch(BatchSource& data, const std::vector<int64_t>& rows, int epoch,
                        const FitOptions& o, Progbar& bar) {
  Compiled& c = *compiled_;
  const bool dist = c.ddp != nullptr;
  std::vector<int64_t> lengths;  // per position of `rows`
  if (!o.sample_lengths.empty()) {
    KILN_CHECK(static_cast<int64_t>(o.sample_lengths.size()) == data.size(),
               "fit: sample_lengths has {} entries but the data has {} rows (need one per row)",
               o.sample_lengths.size(), data.size());
    lengths.reserve(rows.size());
    for (int64_t r : rows) lengths.push_back(o.sample_lengths[static_cast<size_t>(r)]);
  }
  distributed::DistributedSampler sampler(static_cast<int64_t>(rows.size()),
                                          {.batch_size = o.batch_size,
                                           .shuffle = o.shuffle,
                                           .seed = o.seed,
                                           .rank = dist ? distributed::rank() : 0,
                                           .world_size = dist ? distributed::world_size() : 1,
                                           .lengths = std::move(lengths)});
  sampler.set_epoch(epoch);
  const int64_t steps = sampler.num_batches();
  module_->train();
  for (int64_t s = 0; s < steps && !stop_training; ++s) {
    std::vector<int64_t> idx = sampler.batch_indices(s);
    for (int64_t& i : idx) i = rows[static_cast<size_t>(i)];
    const auto local = static_cast<int64_t>(idx.size());
    Batch batch;
    if (local > 0) {
      batch = data.get_batch(idx);
      if (!o.class_weight.empty()) {
        Tensor w = class_sample_weights(batch.y, o.class_weight);
        batch.sample_weight = batch.sample_weight.defined() ? batch.sample_weight * w : w;
      }
    }
    Logs batch_logs;
    for (const auto& cb : o.callbacks) cb->on_batch_begin(s, batch_logs);
    const double loss = train_step(
        batch, static_cast<double>(local) / static_cast<double>(sampler.global_batch_size(s)));
    if (local > 0) c.loss_tracker.update_value(loss, static_cast<double>(local));
    if (!o.callbacks.empty()) {
      if (local > 0) batch_logs["loss"] = loss;
      metric_logs(batch_logs, "");
      for (const auto& cb : o.callbacks) cb->on_batch_end(s, batch_logs);
      // A batch callback saw this rank's samples only: stop everywhere when any rank stops.
      if (dist) stop_training = distributed::all_reduce_max(stop_training ? 1 : 0) != 0;
    }
    if (bar.wants_update(s + 1)) bar.update(s + 1, running_values(), false);
  }
}

History Model::run_fit(BatchSource& data, const std::vector<int64_t>& train_rows, BatchSource* val,
                       const std::vector<int64_t>& val_rows, const FitOptions& o) {
  Compiled& c = *compiled_;
  KILN_CHECK(o.batch_size > 0, "fit: batch_size must be positive, got {}", o.batch_size);
  KILN_CHECK(o.epochs >= 0 && o.initial_epoch >= 0,
             "fit: epochs ({}) and initial_epoch ({}) must be >= 0", o.epochs, o.initial_epoch);
  KILN_CHECK(o.verbose >= 0 && o.verbose <= 2, "fit: verbose must be 0, 1 or 2, got {}", o.verbose);
  const int64_t n = static_cast<int64_t>(train_rows.size());
  KILN_CHECK(n > 0, "fit: model '{}': no training samples", name_);
  if (!built_) ensure_built(data.get_batch({train_rows[0]}).x);
  ensure_optimizer();
  const int64_t steps = (n + o.batch_size - 1) / o.batch_size;
  const int64_t val_batch = o.validation_batch_size > 0 ? o.validation_batch_size : o.batch_size;
  const bool terminal = stdout_is_terminal();
  const bool dist = c.ddp != nullptr;
  const int verbose = is_main_process() ? o.verbose : 0;

  // Dropout layers get a seed per (fit seed, epoch, position in the module tree).
  std::vector<layers::Layer*> seeded;
  for (const auto& [path, m] : module_->named_modules())
    if (auto* l = dynamic_cast<layers::Layer*>(m.get())) seeded.push_back(l);

  History history;
  Logs logs;
  stop_training = false;
  struct FitOptionsScope {  // fit_options() is set for the callbacks, also when fit throws
    const FitOptions*& slot;
    ~FitOptionsScope() { slot = nullptr; }
  } fit_scope{fit_options_};
  fit_options_ = &o;
  for (const auto& cb : o.callbacks) {
    KILN_CHECK(cb != nullptr, "fit: a callback is null");
    cb->set_model(this);
  }
  for (const auto& cb : o.callbacks) cb->on_train_begin(logs);
  for (int epoch = o.initial_epoch; epoch < o.epochs && !stop_training; ++epoch) {
    for (size_t i = 0; i < seeded.size(); ++i) {
      uint64_t seed = mix_seed(o.seed, static_cast<uint64_t>(epoch), i + 1);
      // Distributed: each rank's share gets its own masks, not a copy of rank 0's.
      if (dist) seed = mix_seed(seed, static_cast<uint64_t>(distributed::rank()) + 1);
      seeded[i]->reseed(seed);
    }
    c.loss_tracker.reset();
    for (auto& m : c.metrics) m->reset();
    logs.clear();
    for (const auto& cb : o.callbacks) cb->on_epoch_begin(epoch, logs);
    if (verbose) std::printf("Epoch %d/%d\n", epoch + 1, o.epochs);
    Progbar bar(steps, verbose, stdout, terminal);
    train_epoch(data, train_rows, epoch, o, bar);
    if (dist) merge_metrics_across_ranks();

    logs["loss"] = c.loss_tracker.result();
    metric_logs(logs, "");
    std::vector<std::pair<std::string, double>> shown = running_values();
    if (val != nullptr) {
      Logs v = run_test_batches(*val, val_rows, val_batch, 0, "val_");
      logs.insert(v.begin(), v.end());
      // Keras' order on the line: loss, then the compiled metrics.
      shown.emplace_back("val_loss", v.at("val_loss"));
      for (const auto& m : c.metrics)
        shown.emplace_back("val_" + m->name(), v.at("val_" + m->name()));
    }
    if (c.scheduler && !c.spec.schedule().per_batch()) c.scheduler->step();
    epoch_ = epoch + 1;
    bar.update(steps, shown, true);
    history.append(epoch, logs);
    history_.append(epoch, logs);
    for (const auto& cb : o.callbacks) {
      // Keys added by earlier callbacks reach checkpoints saved by later ones.
      history_.merge_last(logs);
      cb->on_epoch_end(epoch, logs);
    }
    history.merge_last(logs);
    history_.merge_last(logs);
    // Callbacks saw the same logs everywhere; a custom one may still differ: stop together.
    if (dist) stop_training = distributed::all_reduce_max(stop_training ? 1 : 0) != 0;
  }
  module_->eval();
  for (const auto& cb : o.callbacks) cb->on_train_end(logs);
  for (const auto& cb : o.callbacks) cb->set_model(nullptr);
  return history;
}

}  // namespace kiln
