#include "kiln/train/callbacks.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "kiln/optim/optimizer.h"
#include "kiln/tensor/error.h"
#include "kiln/train/model.h"

namespace kiln::callbacks {

Model& Callback::model() const {
  KILN_CHECK(model_ != nullptr,
             "Callback::model(): no model is set (callbacks get one when fit() starts)");
  return *model_;
}

std::string resolve_mode(const std::string& mode, const std::string& monitor) {
  KILN_CHECK(mode == "auto" || mode == "min" || mode == "max",
             "callbacks: mode must be auto, min or max, got \"{}\"", mode);
  if (mode != "auto") return mode;
  for (const char* up : {"acc", "auc", "precision", "recall", "f1", "r2"})
    if (monitor.find(up) != std::string::npos) return "max";
  return "min";
}

namespace {

// The monitored value, or nullopt with a warning naming the keys present (Keras warns and skips).
std::optional<double> monitored(const Logs& logs, const std::string& monitor, const char* who) {
  auto it = logs.find(monitor);
  if (it != logs.end()) return it->second;
  std::vector<std::string> keys;
  for (const auto& [k, v] : logs) keys.push_back(k);
  std::fprintf(
      stderr, "%s\n",
      fmt::format("{}: monitored value \"{}\" is not in the logs (available: {}); skipping", who,
                  monitor, fmt::join(keys, ", "))
          .c_str());
  return std::nullopt;
}

bool better(const std::string& mode, double current, double best, double min_delta) {
  return mode == "min" ? current < best - min_delta : current > best + min_delta;
}

nn::StateDict snapshot(const nn::Module& m) {
  nn::StateDict copy;
  for (const auto& [k, t] : m.state_dict()) copy.insert(k, Tensor(t.data().clone()));
  return copy;
}

}  // namespace

// ---------------------------------------------------------------- EarlyStopping

EarlyStoppingCallback::EarlyStoppingCallback(EarlyStoppingOptions options)
    : o_(std::move(options)), mode_(resolve_mode(o_.mode, o_.monitor)) {
  KILN_CHECK(o_.patience >= 0 && o_.min_delta >= 0,
             "EarlyStopping: patience and min_delta must be >= 0, got {} and {}", o_.patience,
             o_.min_delta);
}

bool EarlyStoppingCallback::improved(double current) const {
  return better(mode_, current, best_, o_.min_delta);
}

void EarlyStoppingCallback::on_train_begin(Logs&) {
  wait_ = 0;
  stopped_epoch_ = -1;
  best_epoch_ = -1;
  best_ = mode_ == "min" ? INFINITY : -INFINITY;
  best_weights_ = nn::StateDict();
}

// Keras' rule: every epoch counts against the patience unless it improves on the best (and beats
// the baseline, when one is set); a NaN never improves.
void EarlyStoppingCallback::on_epoch_end(int epoch, Logs& logs) {
  std::optional<double> current = monitored(logs, o_.monitor, "EarlyStopping");
  if (!current) return;
  if (o_.restore_best_weights && best_weights_.empty()) best_weights_ = snapshot(model().module());
  ++wait_;
  if (improved(*current)) {
    best_ = *current;
    best_epoch_ = epoch;
    if (o_.restore_best_weights) best_weights_ = snapshot(model().module());
    if (!o_.baseline || better(mode_, *current, *o_.baseline, o_.min_delta)) wait_ = 0;
    return;
  }
  if (wait_ >= o_.patience && epoch > 0) {
    stopped_epoch_ = epoch;
    model().stop_training = true;
  }
}

void EarlyStoppingCallback::on_train_end(Logs&) {
  if (o_.restore_best_weights && !best_weights_.empty())
    model().module().load_state_dict(best_weights_);
  if (stopped_epoch_ >= 0)
    std::printf("Epoch %d: early stopping (best %s = %.4f at epoch %d)\n", stopped_epoch_ + 1,
                o_.monitor.c_str(), best_, best_epoch_ + 1);
}

// ---------------------------------------------------------------- ModelCheckpoint

std::string format_filepath(const std::string& pattern, int epoch, const Logs& logs) {
  std::string out;
  for (size_t i = 0; i < pattern.size();) {
    char c = pattern[i];
    if (c == '{' && i + 1 < pattern.size() && pattern[i + 1] == '{') {
      out += '{';
      i += 2;
      continue;
    }
    if (c == '}' && i + 1 < pattern.size() && pattern[i + 1] == '}') {
      out += '}';
      i += 2;
      continue;
    }
    if (c != '{') {
      out += c;
      ++i;
      continue;
    }
    size_t close = pattern.find('}', i);
    KILN_CHECK(close != std::string::npos, "ModelCheckpoint: unclosed '{{' in filepath \"{}\"",
               pattern);
    std::string field = pattern.substr(i + 1, close - i - 1);
    std::string key = field, spec;
    if (size_t colon = field.find(':'); colon != std::string::npos) {
      key = field.substr(0, colon);
      spec = field.substr(colon + 1);
    }
    const std::string fmt_str = spec.empty() ? "{}" : "{:" + spec + "}";
    try {
      if (key == "epoch") {
        out += fmt::format(fmt::runtime(fmt_str), epoch + 1);
      } else {
        auto it = logs.find(key);
        if (it == logs.end()) {
          std::vector<std::string> keys{"epoch"};
          for (const auto& [k, v] : logs) keys.push_back(k);
          throw Error(fmt::format(
              "ModelCheckpoint: filepath \"{}\" names {{{}}}, which is not in the logs (available: "
              "{})",
              pattern, key, fmt::join(keys, ", ")));
        }
        out += fmt::format(fmt::runtime(fmt_str), it->second);
      }
    } catch (const fmt::format_error& e) {
      throw Error(fmt::format("ModelCheckpoint: bad format spec \"{}\" for {{{}}} in \"{}\": {}",
                              spec, key, pattern, e.what()));
    }
    i = close + 1;
  }
  return out;
}

ModelCheckpointCallback::ModelCheckpointCallback(ModelCheckpointOptions options)
    : o_(std::move(options)), mode_(resolve_mode(o_.mode, o_.monitor)) {
  KILN_CHECK(!o_.filepath.empty(), "ModelCheckpoint: filepath must not be empty");
}

void ModelCheckpointCallback::on_train_begin(Logs&) {
  best_.reset();
}

void ModelCheckpointCallback::on_epoch_end(int epoch, Logs& logs) {
  if (o_.save_best_only) {
    std::optional<double> current = monitored(logs, o_.monitor, "ModelCheckpoint");
    if (!current || std::isnan(*current)) return;
    if (best_ && !better(mode_, *current, *best_, 0.0)) return;
    best_ = *current;
  }
  const std::string path = format_filepath(o_.filepath, epoch, logs);
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  if (o_.save_weights_only) {
    model().save_weights(path);
  } else {
    model().save(path);
  }
  saved_.push_back(path);
}

// ---------------------------------------------------------------- ReduceLROnPlateau

ReduceLROnPlateauCallback::ReduceLROnPlateauCallback(ReduceLROnPlateauOptions options)
    : o_(std::move(options)), mode_(resolve_mode(o_.mode, o_.monitor)) {
  KILN_CHECK(o_.factor > 0 && o_.factor < 1, "ReduceLROnPlateau: factor must be in (0, 1), got {}",
             o_.factor);
  KILN_CHECK(o_.patience >= 0 && o_.cooldown >= 0 && o_.min_lr >= 0,
             "ReduceLROnPlateau: patience, cooldown and min_lr must be >= 0");
}

void ReduceLROnPlateauCallback::on_train_begin(Logs&) {
  best_.reset();
  wait_ = 0;
  cooldown_counter_ = 0;
}

void ReduceLROnPlateauCallback::on_epoch_end(int epoch, Logs& logs) {
  optim::Optimizer* opt = model().optimizer();
  KILN_CHECK(opt != nullptr, "ReduceLROnPlateau: the model has no optimizer (compile it first)");
  logs["learning_rate"] = opt->lr();
  std::optional<double> current = monitored(logs, o_.monitor, "ReduceLROnPlateau");
  if (!current || std::isnan(*current)) return;
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    wait_ = 0;
  }
  if (!best_ || better(mode_, *current, *best_, o_.min_delta)) {
    best_ = *current;
    wait_ = 0;
    return;
  }
  if (cooldown_counter_ > 0) return;
  if (++wait_ < o_.patience) return;
  bool reduced = false;
  for (size_t g = 0; g < opt->num_groups(); ++g) {
    const double old_lr = opt->lr(g);
    if (old_lr <= o_.min_lr) continue;
    opt->set_lr(g, std::max(old_lr * o_.factor, o_.min_lr));
    reduced = true;
  }
  if (reduced)
    std::printf("Epoch %d: ReduceLROnPlateau reducing learning rate to %g.\n", epoch + 1,
                opt->lr());
  cooldown_counter_ = o_.cooldown;
  wait_ = 0;
}

// ---------------------------------------------------------------- LearningRateScheduler

LearningRateSchedulerCallback::LearningRateSchedulerCallback(
    std::function<double(int, double)> schedule)
    : schedule_(std::move(schedule)) {
  KILN_CHECK(static_cast<bool>(schedule_), "LearningRateScheduler: the schedule function is empty");
}

void LearningRateSchedulerCallback::on_epoch_begin(int epoch, Logs&) {
  optim::Optimizer* opt = model().optimizer();
  KILN_CHECK(opt != nullptr,
             "LearningRateScheduler: the model has no optimizer (compile it first)");
  const double lr = schedule_(epoch, opt->lr());
  KILN_CHECK(std::isfinite(lr) && lr >= 0,
             "LearningRateScheduler: schedule({}, {}) returned {} (must be >= 0)", epoch, opt->lr(),
             lr);
  opt->set_lr(lr);
}

void LearningRateSchedulerCallback::on_epoch_end(int, Logs& logs) {
  logs["learning_rate"] = model().optimizer()->lr();
}

// ---------------------------------------------------------------- CSVLogger

CSVLoggerCallback::CSVLoggerCallback(std::string path, char separator, bool append)
    : path_(std::move(path)), sep_(separator), append_(append) {}

CSVLoggerCallback::~CSVLoggerCallback() {
  if (file_) std::fclose(file_);
}

void CSVLoggerCallback::on_train_begin(Logs&) {
  if (!model().is_main_process()) return;  // distributed: rank 0 logs (file_ stays null here)
  bool has_rows = false;
  if (append_) {
    std::error_code ec;
    has_rows = std::filesystem::exists(path_, ec) && std::filesystem::file_size(path_, ec) > 0;
  }
  file_ = std::fopen(path_.c_str(), append_ ? "a" : "w");
  if (!file_)
    throw IOError(
        fmt::format("CSVLogger: {}: cannot open for writing ({})", path_, std::strerror(errno)));
  header_written_ = has_rows;
  keys_.clear();
}

void CSVLoggerCallback::on_epoch_end(int epoch, Logs& logs) {
  if (!file_) return;
  if (keys_.empty())
    for (const auto& [k, v] : logs)
      keys_.push_back(k);  // std::map: sorted, as Keras sorts the keys
  if (!header_written_) {
    std::string header = "epoch";
    for (const auto& k : keys_) header += sep_ + k;
    std::fprintf(file_, "%s\n", header.c_str());
    header_written_ = true;
  }
  std::string row = fmt::format("{}", epoch);
  for (const auto& k : keys_) {
    auto it = logs.find(k);
    row += sep_;
    if (it != logs.end()) row += fmt::format("{}", it->second);
  }
  std::fprintf(file_, "%s\n", row.c_str());
  std::fflush(file_);
}

void CSVLoggerCallback::on_train_end(Logs&) {
  if (file_) std::fclose(file_);
  file_ = nullptr;
}

// ---------------------------------------------------------------- TerminateOnNaN

void TerminateOnNaNCallback::on_batch_end(int64_t batch, Logs& logs) {
  auto it = logs.find("loss");
  if (it == logs.end() || std::isfinite(it->second)) return;
  std::printf("Batch %lld: invalid loss, terminating training\n", static_cast<long long>(batch));
  model().stop_training = true;
}

// ---------------------------------------------------------------- factories

std::shared_ptr<EarlyStoppingCallback> EarlyStopping(std::string monitor, int patience,
                                                     double min_delta, std::string mode,
                                                     bool restore_best_weights) {
  EarlyStoppingOptions o;
  o.monitor = std::move(monitor);
  o.patience = patience;
  o.min_delta = min_delta;
  o.mode = std::move(mode);
  o.restore_best_weights = restore_best_weights;
  return EarlyStopping(std::move(o));
}
std::shared_ptr<EarlyStoppingCallback> EarlyStopping(EarlyStoppingOptions options) {
  return std::make_shared<EarlyStoppingCallback>(std::move(options));
}
std::shared_ptr<ModelCheckpointCallback> ModelCheckpoint(std::string filepath, std::string monitor,
                                                         bool save_best_only) {
  ModelCheckpointOptions o;
  o.filepath = std::move(filepath);
  o.monitor = std::move(monitor);
  o.save_best_only = save_best_only;
  return ModelCheckpoint(std::move(o));
}
std::shared_ptr<ModelCheckpointCallback> ModelCheckpoint(ModelCheckpointOptions options) {
  return std::make_shared<ModelCheckpointCallback>(std::move(options));
}
std::shared_ptr<ReduceLROnPlateauCallback> ReduceLROnPlateau(std::string monitor, double factor,
                                                             int patience, double min_lr) {
  ReduceLROnPlateauOptions o;
  o.monitor = std::move(monitor);
  o.factor = factor;
  o.patience = patience;
  o.min_lr = min_lr;
  return ReduceLROnPlateau(std::move(o));
}
std::shared_ptr<ReduceLROnPlateauCallback> ReduceLROnPlateau(ReduceLROnPlateauOptions options) {
  return std::make_shared<ReduceLROnPlateauCallback>(std::move(options));
}
std::shared_ptr<LearningRateSchedulerCallback> LearningRateScheduler(
    std::function<double(int, double)> f) {
  return std::make_shared<LearningRateSchedulerCallback>(std::move(f));
}
std::shared_ptr<CSVLoggerCallback> CSVLogger(std::string path, char separator, bool append) {
  return std::make_shared<CSVLoggerCallback>(std::move(path), separator, append);
}
std::shared_ptr<TerminateOnNaNCallback> TerminateOnNaN() {
  return std::make_shared<TerminateOnNaNCallback>();
}
std::shared_ptr<LambdaCallbackImpl> LambdaCallback(LambdaHooks hooks) {
  return std::make_shared<LambdaCallbackImpl>(std::move(hooks));
}

}  // namespace kiln::callbacks
