#pragma once
// kiln::Model — the Keras-like training API over any nn::Module — and kiln::Sequential.
//
//   kiln::Sequential model({kiln::layers::Dense(128, "relu"), kiln::layers::Dropout(0.2),
//                           kiln::layers::Dense(10)});
//   model.compile(kiln::optimizers::Adam(1e-3), "sparse_categorical_crossentropy", {"accuracy"});
//   kiln::History h = model.fit(x_train, y_train,          // x: (N, 784) float32, y: (N) int64
//                               {.epochs = 5, .batch_size = 32, .validation_split = 0.1,
//                                .callbacks = {kiln::callbacks::EarlyStopping("val_loss", 2)}});
//   model.summary();
//   kiln::Logs test = model.evaluate(x_test, y_test);     // {"loss": ..., "accuracy": ...}
//   kiln::Tensor logits = model.predict(x_new);           // (M, 10)
//   model.save("mnist.kiln");
//   kiln::Sequential restored = kiln::load_model("mnist.kiln");
//
// A custom module gets the same API:
//   kiln::Model m(std::make_shared<MyNet>());
//   m.compile(...);
//   m.fit(...);
//
// FitOptions fields must be given in declaration order when using designated initialisers (C++
// rule): epochs, batch_size, validation_split, validation_data, callbacks, shuffle, seed,
// class_weight, initial_epoch, verbose, validation_batch_size.
//
// Semantics (Keras'): `epochs` is the index of the last epoch, so fit({.epochs = 3, .initial_epoch
// = 2}) trains one epoch; validation_split takes the LAST fraction of the rows, before shuffling;
// shuffling is per epoch from a generator seeded by (seed, epoch), and kiln::layers dropout is
// reseeded from (seed, epoch, layer) every epoch, so training resumed from a checkpoint with
// initial_epoch repeats exactly what the uninterrupted run would have done. During fit the module
// is in train() mode (dropout on, batch-norm batch statistics); validation, evaluate and predict
// run in eval() under NoGradGuard. The model is left in eval() mode after fit.
//
// Distributed (data-parallel) training: a program started by `mpirun -np N` (or srun) trains one
// model over the N processes with no change to the code — compile() notices the launcher
// (distributed::init_from_environment) and set_distributed() turns it on or off explicitly.
// batch_size stays the GLOBAL batch: each step, rank r trains on its share of the global batch
// (every N-th sample, distributed/sampler.h), the gradients are averaged with sample-count weights
// while backward runs (distributed/ddp.h), and every rank applies the same update, so N processes
// follow the single-process trajectory up to float rounding and a checkpoint resumes at any N.
// Parameters (and buffers) are broadcast from rank 0 when training starts; buffers again before
// each step (PyTorch DDP's broadcast_buffers). Epoch logs — loss, metrics, validation — are
// combined over all ranks' samples (Metric::state), so callbacks see the same values everywhere and
// stop together; batch-level logs and the live progress line are rank 0's own samples. Only rank 0
// prints, and save(), save_weights() (hence ModelCheckpoint) and CSVLogger write on rank 0 only.
// evaluate() splits its rows over the ranks too, so every rank must call it (set_distributed(false)
// first to evaluate on one rank alone); predict() runs whole on every rank. Random draws
// differ per rank: kiln::layers dropout mixes the rank into its seed, and the default generator
// (nn::Dropout, augmentation) is re-seeded per rank when distributed training starts. A rank that
// fails makes the job stop: see distributed.h for the timeout.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/distributed/ddp.h"
#include "kiln/io/json.h"
#include "kiln/nn/container.h"
#include "kiln/nn/module.h"
#include "kiln/optim/optimizer.h"
#include "kiln/optim/scheduler.h"
#include "kiln/train/callbacks.h"
#include "kiln/train/losses.h"
#include "kiln/train/metrics.h"
#include "kiln/train/optimizers.h"

namespace kiln {

class Progbar;
class Sequential;
struct SafetensorsFile;

// ---------------------------------------------------------------- data

/// One batch: x (B, ...), y (B, ...), optional per-sample weights (B).
struct Batch {
  Tensor x;
  Tensor y;
  Tensor sample_weight;
};

/// What fit / evaluate draw batches from: a data set of size() samples, any of which get_batch
/// returns stacked. The data team's DataLoader plugs in here; tensors are wrapped by
/// TensorBatchSource.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t size() const = 0;
  /// The samples at `indices` (each in [0, size())) as one batch, in that order.
  virtual Batch get_batch(const std::vector<int64_t>& indices) = 0;
};

/// Rows of x and y (and optional sample weights). Contiguous ascending indices are returned as
/// views.
class TensorBatchSource : public BatchSource {
 public:
  /// `op` names the caller in shape errors ("fit: x has 8000 rows but y has 7999").
  TensorBatchSource(Tensor x, Tensor y, Tensor sample_weight = {}, const std::string& op = "fit");
  int64_t size() const override { return x_.size(0); }
  Batch get_batch(const std::vector<int64_t>& indices) override;

 private:
  Tensor x_, y_, w_;
};

/// A BatchSource from a function: FunctionBatchSource(n, [&](const std::vector<int64_t>& idx)
/// {...}).
class FunctionBatchSource : public BatchSource {
 public:
  FunctionBatchSource(int64_t size, std::function<Batch(const std::vector<int64_t>&)> get)
      : size_(size), get_(std::move(get)) {}
  int64_t size() const override { return size_; }
  Batch get_batch(const std::vector<int64_t>& indices) override { return get_(indices); }

 private:
  int64_t size_;
  std::function<Batch(const std::vector<int64_t>&)> get_;
};

/// Validation data for fit: tensors, or a BatchSource (set one of the two).
struct ValidationData {
  Tensor x{}, y{};
  std::shared_ptr<BatchSource> source{};
  bool defined() const { return x.defined() || source != nullptr; }
};

// ---------------------------------------------------------------- options and results

struct FitOptions {
  int epochs = 1;
  int64_t batch_size = 32;
  /// Fraction in [0, 1) of the rows, taken from the END before shuffling, held out for validation.
  double validation_split = 0.0;
  /// Takes precedence over validation_split.
  ValidationData validation_data{};
  std::vector<callbacks::CallbackPtr> callbacks{};
  bool shuffle = true;
  /// Seeds the per-epoch shuffle and dropout.
  uint64_t seed = 0;
  /// class id -> weight of its samples in the loss (classes not listed weigh 1).
  std::map<int64_t, double> class_weight{};
  int initial_epoch = 0;
  /// 0 = silent, 1 = progress bar (in place on a terminal, one line per epoch otherwise), 2 = one
  /// line per epoch.
  int verbose = 1;
  /// 0 = batch_size.
  int64_t validation_batch_size = 0;
  /// Group by length (Hugging Face's group_by_length): one length per row of the data passed to
  /// fit (e.g. each text's token count). Each epoch's shuffled order is then sorted by length in
  /// runs of 50 batches, so a batch holds similar lengths and a source that pads to the batch's
  /// longest pads less (2.1× fewer padded tokens on the fortunes quotes at 64 tokens). Empty: off.
  std::vector<int64_t> sample_lengths{};
};

struct EvaluateOptions {
  int64_t batch_size = 32;
  int verbose = 1;
};

struct PredictOptions {
  int64_t batch_size = 32;
  int verbose = 0;
};

/// Per-epoch values of every log key ("loss", "accuracy", "val_loss", ...).
class History {
 public:
  /// The values of `key`, one per epoch; throws listing the keys when absent.
  const std::vector<double>& operator[](const std::string& key) const;
  bool contains(const std::string& key) const { return values_.count(key) != 0; }
  const std::map<std::string, std::vector<double>>& history() const { return values_; }
  /// The 0-based epoch index of each entry.
  const std::vector<int>& epochs() const { return epochs_; }
  size_t size() const { return epochs_.size(); }
  bool empty() const { return epochs_.empty(); }
  std::vector<std::string> keys() const;
  /// Adds an epoch's logs.
  void append(int epoch, const Logs& logs);
  /// Adds keys that appeared in `logs` after append() (set by callbacks) to the last epoch.
  void merge_last(const Logs& logs);
  json::Value to_json() const;
  static History from_json(const json::Value& v);

 private:
  std::vector<int> epochs_;
  std::map<std::string, std::vector<double>> values_;
};

/// A loss by string ("mse") or object (kiln::losses::Huber(2.0)), or nullptr for a model that
/// computes its own loss (Keras' compile(loss=None) with an overridden compute_loss).
struct LossSpec {
  LossSpec(const char* name);         // NOLINT(google-explicit-constructor)
  LossSpec(const std::string& name);  // NOLINT(google-explicit-constructor)
  LossSpec(std::nullptr_t) {}         // NOLINT(google-explicit-constructor)
  template <typename T>
  requires std::derived_from<T, losses::Loss> LossSpec(std::shared_ptr<T> l)
      : loss(std::move(l)) {}  // NOLINT(google-explicit-constructor)
  losses::LossPtr loss;
};

/// A metric by string ("accuracy") or object (kiln::metrics::AUC()).
struct MetricSpec {
  MetricSpec(const char* name);         // NOLINT(google-explicit-constructor)
  MetricSpec(const std::string& name);  // NOLINT(google-explicit-constructor)
  template <typename T>
  requires std::derived_from<T, metrics::Metric> MetricSpec(std::shared_ptr<T> m)
      : metric(std::move(m)) {}  // NOLINT(google-explicit-constructor)
  metrics::MetricPtr metric;
};

// ---------------------------------------------------------------- Model

class Model {
 public:
  /// Wraps any module; its forward(x) is the model.
  explicit Model(nn::ModulePtr module, std::string name = "model");
  virtual ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::string& name() const { return name_; }
  nn::Module& module() const { return *module_; }
  const nn::ModulePtr& module_ptr() const { return module_; }
  /// forward(x) in the current mode (with autograd).
  Tensor operator()(const Tensor& x) { return module_->forward(x); }

  // ---- building ----
  /// Creates lazily-built layers' parameters by running a batch of zeros (batch dim forced to 1,
  /// eval mode, no grad). input_shape includes the batch dim (any value, e.g. -1 as Keras' None).
  void build(const Shape& input_shape, DType dtype = kFloat32);
  bool built() const { return built_; }
  /// The shape given to build (batch dim as given), empty before.
  const Shape& input_shape() const { return input_shape_; }

  // ---- compile ----
  /// optimizer: a spec (kiln::optimizers::Adam(1e-3), "adam") or a built std::shared_ptr<optim::X>;
  /// loss: string or object, or nullptr when a subclass overrides compute_loss; metrics: strings
  /// or objects. Resolves "from_logits" from the model's last activation (see losses.h).
  void compile(optimizers::OptimizerSpec optimizer, LossSpec loss,
               std::vector<MetricSpec> metrics = {});
  bool compiled() const { return compiled_ != nullptr; }
  /// The optimiser (nullptr until the model is compiled and built).
  optim::Optimizer* optimizer() const;
  /// The LR scheduler from the optimizer spec (nullptr when none).
  optim::LRScheduler* scheduler() const;
  losses::Loss* loss() const;
  /// The compiled metrics (not the loss).
  std::vector<metrics::MetricPtr> metrics() const;
  /// The activation the model ends with ("softmax", "sigmoid", "" = none / unknown).
  virtual std::string output_activation() const;

  // ---- training and inference ----
  /// x: (N, ...) and y: (N, ...) with the same N.
  History fit(const Tensor& x, const Tensor& y, const FitOptions& options = {});
  History fit(BatchSource& data, const FitOptions& options = {});
  /// {"loss": ..., "<metric>": ...} over all of x, y.
  Logs evaluate(const Tensor& x, const Tensor& y, const EvaluateOptions& options = {});
  Logs evaluate(BatchSource& data, const EvaluateOptions& options = {});
  /// Outputs for x (N, ...) in batches, concatenated along dim 0, eval mode, no grad.
  Tensor predict(const Tensor& x, const PredictOptions& options = {});
  /// One optimisation step on one batch; returns that batch's loss and metrics.
  Logs train_on_batch(const Tensor& x, const Tensor& y, const Tensor& sample_weight = {});
  /// The loss and metrics on one batch (eval mode, no grad).
  Logs test_on_batch(const Tensor& x, const Tensor& y, const Tensor& sample_weight = {});
  /// Outputs for one batch (eval mode, no grad).
  Tensor predict_on_batch(const Tensor& x);

  /// Set by callbacks to stop fit() after the current batch / epoch.
  bool stop_training = false;
  /// Every epoch trained so far, across fit() calls and checkpoints.
  const History& history() const { return history_; }
  /// Epochs completed (the initial_epoch to resume from).
  int epoch() const { return epoch_; }
  /// The options of the fit() call in progress (callbacks read them, e.g. to log them); nullptr
  /// outside fit().
  const FitOptions* fit_options() const { return fit_options_; }

  // ---- distributed ----
  /// Turns data-parallel training on or off (default: on when started by a launcher with more
  /// than one process, see above). On needs distributed::init() (or such a launch).
  /// bucket_cap_mb: gradient megabytes per all-reduce bucket.
  void set_distributed(bool on, double bucket_cap_mb = 25.0);
  bool is_distributed() const;
  /// False on every rank but 0 of a distributed model (those do not print or write files).
  bool is_main_process() const;
  /// The gradient reducer's counters (wait time, buckets overlapped with backward); null until a
  /// distributed fit / train_on_batch has built it.
  const distributed::DdpStats* distributed_stats() const;

  // ---- inspection ----
  /// Keras' table: Layer (type) | Output Shape | Param #, then total / trainable / non-trainable
  /// counts (non-trainable = frozen parameters plus floating buffers such as BatchNorm's running
  /// statistics, as Keras counts moving_mean / moving_variance). Throws when the model is not
  /// built.
  std::string summary_string() const;
  /// Prints summary_string() to stdout.
  void summary() const;

  // ---- checkpoints (safetensors; see safetensors.h) ----
  /// Distributed: save() and save_weights() write on rank 0 only (the other ranks return at once;
  /// call distributed::barrier() before another rank reads the file).
  /// One file: weights ("model.<name>"), optimiser state ("optimizer.<key>"), and in __metadata__
  /// the architecture (Sequential of kiln::layers), input shape, compile config, epoch and history.
  /// Atomic.
  void save(const std::string& path) const;
  /// Weights only, under their plain state_dict names (loadable by PyTorch's
  /// safetensors.torch.load_file).
  void save_weights(const std::string& path) const;
  /// Loads weights from save() or save_weights() output (builds first from the file's input shape
  /// when needed). strict: missing / unexpected names are errors.
  void load_weights(const std::string& path, bool strict = true);

 protected:
  /// The loss of one batch as a 0-d tensor (Keras 3's Model.compute_loss). The default is the
  /// compiled loss of forward(batch.x) against batch.y (weighted by batch.sample_weight), with
  /// `output` set to that forward output for the compiled metrics. A model whose objective is not
  /// one output against y -- a self-supervised one such as masked-LM or ELECTRA pre-training
  /// (kiln/text/mlm.h, pretrain.h), several heads -- overrides it, compiles with loss nullptr, and
  /// leaves `output` undefined when the metrics have nothing to see. fit / train_on_batch call it
  /// in train mode with autograd; evaluate / test_on_batch in eval mode under NoGradGuard.
  virtual Tensor compute_loss(const Batch& batch, Tensor& output);
  /// Runs the build forward; Sequential records each layer's output shape.
  virtual void build_forward(const Tensor& x);
  struct SummaryRow {
    std::string layer, output_shape;
    int64_t params = 0;
  };
  virtual std::vector<SummaryRow> summary_rows() const;
  /// The architecture config for load_model (null when not serialisable).
  virtual json::Value architecture() const { return json::Value(); }
  /// "Model" or "Sequential".
  virtual std::string class_name() const { return "Model"; }
  /// Restores compile / optimiser / epoch / history from a save() file (after the weights are
  /// loaded).
  void restore_training_state(const SafetensorsFile& file, const std::string& path);
  friend Model load_model(const std::string& path, const std::function<nn::ModulePtr()>& factory);
  friend Sequential load_model(const std::string& path);

  nn::ModulePtr module_;
  std::string name_;
  bool built_ = false;
  Shape input_shape_;
  DType input_dtype_ = kFloat32;
  Shape output_shape_;

 private:
  struct Compiled;
  void ensure_built(const Tensor& x);
  void ensure_optimizer();
  Compiled& require_compiled(const char* op) const;
  /// One optimisation step on `batch`; updates the compiled metrics; returns the batch loss.
  /// Distributed: `batch` is this rank's share (possibly empty: x undefined) and `weight` its
  /// fraction of the global batch (< 0: 1 / world size).
  double train_step(const Batch& batch, double weight = -1.0);
  /// Distributed: combines the loss tracker's and metrics' states over the ranks.
  void merge_metrics_across_ranks();
  /// The loss on `batch` (eval mode, no grad); updates the compiled metrics.
  double test_step(const Batch& batch);
  /// The compiled metrics' results, keyed prefix + name.
  void metric_logs(Logs& logs, const std::string& prefix) const;
  /// The running loss and metrics, in display order.
  std::vector<std::pair<std::string, double>> running_values() const;
  /// One epoch of optimisation steps over `rows` in epoch `epoch`'s order (stops early when
  /// stop_training is set).
  void train_epoch(BatchSource& data, const std::vector<int64_t>& rows, int epoch,
                   const FitOptions& options, Progbar& bar);
  Logs run_test_batches(BatchSource& data, const std::vector<int64_t>& rows, int64_t batch_size,
                        int verbose, const std::string& prefix);
  History run_fit(BatchSource& data, const std::vector<int64_t>& train_rows, BatchSource* val,
                  const std::vector<int64_t>& val_rows, const FitOptions& options);

  std::unique_ptr<Compiled> compiled_;
  History history_;
  int epoch_ = 0;
  const FitOptions* fit_options_ = nullptr;
  std::optional<bool> distributed_;  // unset: decided by the launch environment
  double bucket_cap_mb_ = 25.0;
};

// ---------------------------------------------------------------- Sequential

/// A Model over an nn::Sequential of layers: children "0", "1", ... (so weights are "0.weight",
/// "2.bias", ... — PyTorch's nn.Sequential keys). kiln::layers layers make the architecture
/// saveable.
class Sequential : public Model {
 public:
  Sequential(std::initializer_list<nn::ModulePtr> layers = {}, std::string name = "sequential");
  explicit Sequential(std::vector<nn::ModulePtr> layers, std::string name = "sequential");
  /// Appends a layer (before the model is built).
  void add(nn::ModulePtr layer);
  size_t size() const { return seq_->size(); }
  const nn::ModulePtr& layer(size_t i) const { return (*seq_)[i]; }
  std::string output_activation() const override;

 protected:
  void build_forward(const Tensor& x) override;
  std::vector<SummaryRow> summary_rows() const override;
  json::Value architecture() const override;
  std::string class_name() const override { return "Sequential"; }

 private:
  std::shared_ptr<nn::Sequential> seq_;
  std::vector<Shape> layer_shapes_;
};

/// Rebuilds a Sequential saved by save() — layers, weights, compile state, optimiser state, epoch
/// and history — so fit({..., .initial_epoch = m.epoch()}) resumes exactly. Throws IOError for
/// unreadable files and Error when the file holds no Sequential architecture (use the factory
/// overload).
Sequential load_model(const std::string& path);
/// For custom models: `factory` builds the module, then everything else is restored as above.
Model load_model(const std::string& path, const std::function<nn::ModulePtr()>& factory);

}  // namespace kiln
