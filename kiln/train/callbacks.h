#pragma once
// Training callbacks (namespace kiln::callbacks), called by Model::fit at the start and end of
// training, of each epoch and of each batch, with the logs so far ({"loss": 0.29, "accuracy": 0.91,
// "val_loss": ...}).
//
//   auto stop = kiln::callbacks::EarlyStopping("val_loss", /*patience=*/2);
//   model.fit(x, y, {.epochs = 50, .validation_split = 0.1,
//                    .callbacks = {stop, kiln::callbacks::CSVLogger("log.csv")}});
//   stop->stopped_epoch();
//
// Epochs are 0-based in the hooks (as Keras); file-name templates print {epoch} 1-based (as Keras).
// Custom callbacks derive from Callback and override any hook; model() gives the model being
// trained (set model().stop_training = true to stop after the current epoch).
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/nn/module.h"

namespace kiln {
class Model;
/// Metric name -> value; "val_" prefixes validation entries.
using Logs = std::map<std::string, double>;
}  // namespace kiln

namespace kiln::callbacks {

class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(Logs& logs) { (void)logs; }
  virtual void on_train_end(Logs& logs) { (void)logs; }
  virtual void on_epoch_begin(int epoch, Logs& logs) { (void)epoch, (void)logs; }
  /// logs: the epoch's training and validation values; callbacks may add entries (e.g.
  /// "learning_rate").
  virtual void on_epoch_end(int epoch, Logs& logs) { (void)epoch, (void)logs; }
  /// batch: index within the epoch.
  virtual void on_batch_begin(int64_t batch, Logs& logs) { (void)batch, (void)logs; }
  /// logs: the running means over the epoch so far.
  virtual void on_batch_end(int64_t batch, Logs& logs) { (void)batch, (void)logs; }

  /// Set by fit() before on_train_begin.
  void set_model(Model* model) { model_ = model; }
  /// The model being trained (throws outside fit()).
  Model& model() const;

 private:
  Model* model_ = nullptr;
};
using CallbackPtr = std::shared_ptr<Callback>;

/// "min" when lower is better for `monitor`, "max" for names with acc / auc / precision / recall /
/// f1 / r2 in them (Keras' "auto" rule, extended to Kiln's metrics).
std::string resolve_mode(const std::string& mode, const std::string& monitor);

struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  /// Epochs without improvement to wait before stopping.
  int patience = 0;
  /// Smallest change that counts as an improvement.
  double min_delta = 0.0;
  /// "auto", "min" or "max".
  std::string mode = "auto";
  /// Epochs that do not beat this value count against the patience even when they improve on the
  /// best.
  std::optional<double> baseline{};
  /// At the end of training (stopped early or not), restore the weights of the best epoch
  /// (parameters and buffers).
  bool restore_best_weights = false;
};

/// Stops training when `monitor` has not improved by min_delta for `patience` epochs (Keras
/// semantics).
class EarlyStoppingCallback : public Callback {
 public:
  explicit EarlyStoppingCallback(EarlyStoppingOptions options);
  void on_train_begin(Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;
  void on_train_end(Logs& logs) override;
  /// The epoch (0-based) training stopped at, or -1 when it ran to the end.
  int stopped_epoch() const { return stopped_epoch_; }
  int best_epoch() const { return best_epoch_; }
  double best() const { return best_; }

 private:
  bool improved(double current) const;
  EarlyStoppingOptions o_;
  std::string mode_;
  double best_ = 0.0;
  int wait_ = 0, best_epoch_ = -1, stopped_epoch_ = -1;
  nn::StateDict best_weights_;
};

struct ModelCheckpointOptions {
  /// Template: {epoch} (1-based), {epoch:02d}, or any log key with a format spec, e.g.
  /// "ckpt/model-{epoch:02d}-{val_loss:.4f}.kiln" (fmt / Python format specs).
  std::string filepath{};
  std::string monitor = "val_loss";
  /// Save only when `monitor` improves on the best so far.
  bool save_best_only = false;
  /// save_weights() (weights only) instead of save() (weights, optimiser, compile config, history).
  bool save_weights_only = false;
  std::string mode = "auto";
};

/// Saves the model at the end of each epoch (atomically: see safetensors.h).
class ModelCheckpointCallback : public Callback {
 public:
  explicit ModelCheckpointCallback(ModelCheckpointOptions options);
  void on_train_begin(Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;
  /// The files written so far.
  const std::vector<std::string>& saved() const { return saved_; }

 private:
  ModelCheckpointOptions o_;
  std::string mode_;
  std::optional<double> best_;
  std::vector<std::string> saved_;
};

/// Formats a ModelCheckpoint file template for `epoch` (0-based; printed 1-based) and `logs`.
/// Throws naming the template and the keys available when a key is unknown or a spec is malformed.
std::string format_filepath(const std::string& pattern, int epoch, const Logs& logs);

struct ReduceLROnPlateauOptions {
  std::string monitor = "val_loss";
  /// new_lr = lr · factor.
  double factor = 0.1;
  int patience = 10;
  std::string mode = "auto";
  /// An improvement must beat the best by more than this (absolute, as Keras).
  double min_delta = 1e-4;
  /// Epochs to wait after a reduction before counting again.
  int cooldown = 0;
  double min_lr = 0.0;
};

/// Keras' ReduceLROnPlateau: after `patience` epochs without improvement, multiplies every group's
/// learning rate by `factor` (not below min_lr). Adds "learning_rate" to the epoch logs.
class ReduceLROnPlateauCallback : public Callback {
 public:
  explicit ReduceLROnPlateauCallback(ReduceLROnPlateauOptions options);
  void on_train_begin(Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;

 private:
  ReduceLROnPlateauOptions o_;
  std::string mode_;
  std::optional<double> best_;
  int wait_ = 0, cooldown_counter_ = 0;
};

/// Sets every group's learning rate to schedule(epoch, current lr) at the start of each epoch.
class LearningRateSchedulerCallback : public Callback {
 public:
  explicit LearningRateSchedulerCallback(std::function<double(int epoch, double lr)> schedule);
  void on_epoch_begin(int epoch, Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;

 private:
  std::function<double(int, double)> schedule_;
};

/// Appends one CSV row per epoch: "epoch,<sorted log keys>". With append, an existing non-empty
/// file keeps its header and rows.
class CSVLoggerCallback : public Callback {
 public:
  CSVLoggerCallback(std::string path, char separator = ',', bool append = false);
  ~CSVLoggerCallback() override;
  void on_train_begin(Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;
  void on_train_end(Logs& logs) override;

 private:
  std::string path_;
  char sep_;
  bool append_;
  std::FILE* file_ = nullptr;
  std::vector<std::string> keys_;
  bool header_written_ = false;
};

/// Stops training (after the current batch) when the batch loss is NaN or infinite.
class TerminateOnNaNCallback : public Callback {
 public:
  void on_batch_end(int64_t batch, Logs& logs) override;
};

/// A callback from lambdas (any may be empty).
struct LambdaHooks {
  std::function<void(Logs&)> on_train_begin{}, on_train_end{};
  std::function<void(int, Logs&)> on_epoch_begin{}, on_epoch_end{};
  std::function<void(int64_t, Logs&)> on_batch_begin{}, on_batch_end{};
};
class LambdaCallbackImpl : public Callback {
 public:
  explicit LambdaCallbackImpl(LambdaHooks hooks) : h_(std::move(hooks)) {}
  void on_train_begin(Logs& l) override {
    if (h_.on_train_begin) h_.on_train_begin(l);
  }
  void on_train_end(Logs& l) override {
    if (h_.on_train_end) h_.on_train_end(l);
  }
  void on_epoch_begin(int e, Logs& l) override {
    if (h_.on_epoch_begin) h_.on_epoch_begin(e, l);
  }
  void on_epoch_end(int e, Logs& l) override {
    if (h_.on_epoch_end) h_.on_epoch_end(e, l);
  }
  void on_batch_begin(int64_t b, Logs& l) override {
    if (h_.on_batch_begin) h_.on_batch_begin(b, l);
  }
  void on_batch_end(int64_t b, Logs& l) override {
    if (h_.on_batch_end) h_.on_batch_end(b, l);
  }

 private:
  LambdaHooks h_;
};

// Factories (Keras' names).
std::shared_ptr<EarlyStoppingCallback> EarlyStopping(std::string monitor = "val_loss",
                                                     int patience = 0, double min_delta = 0.0,
                                                     std::string mode = "auto",
                                                     bool restore_best_weights = false);
std::shared_ptr<EarlyStoppingCallback> EarlyStopping(EarlyStoppingOptions options);
std::shared_ptr<ModelCheckpointCallback> ModelCheckpoint(std::string filepath,
                                                         std::string monitor = "val_loss",
                                                         bool save_best_only = false);
std::shared_ptr<ModelCheckpointCallback> ModelCheckpoint(ModelCheckpointOptions options);
std::shared_ptr<ReduceLROnPlateauCallback> ReduceLROnPlateau(std::string monitor = "val_loss",
                                                             double factor = 0.1, int patience = 10,
                                                             double min_lr = 0.0);
std::shared_ptr<ReduceLROnPlateauCallback> ReduceLROnPlateau(ReduceLROnPlateauOptions options);
std::shared_ptr<LearningRateSchedulerCallback> LearningRateScheduler(
    std::function<double(int epoch, double lr)> f);
std::shared_ptr<CSVLoggerCallback> CSVLogger(std::string path, char separator = ',',
                                             bool append = false);
std::shared_ptr<TerminateOnNaNCallback> TerminateOnNaN();
std::shared_ptr<LambdaCallbackImpl> LambdaCallback(LambdaHooks hooks);

}  // namespace kiln::callbacks
