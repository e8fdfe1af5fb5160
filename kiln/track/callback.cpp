#include "kiln/track/callback.h"

#include <fmt/format.h>

#include "kiln/train/model.h"

namespace kiln::callbacks {

TrackingCallback::TrackingCallback(track::RunPtr run, std::map<std::string, std::string> params)
    : run_(std::move(run)), params_(std::move(params)) {
  KILN_CHECK(run_ != nullptr, "callbacks::Tracking: the run is null");
}

TrackingCallback::TrackingCallback(track::RunOptions options,
                                   std::map<std::string, std::string> params)
    : options_(std::move(options)), params_(std::move(params)), owns_run_(true) {}

void TrackingCallback::on_train_begin(Logs& logs) {
  (void)logs;
  step_ = 0;
  silent_ = !model().is_main_process();
  if (silent_) return;
  if (owns_run_ && (!run_ || run_->ended())) run_ = track::Run::start(options_);
  // compile(): optimiser and its defaults, loss, metrics; the model's size.
  std::map<std::string, std::string> p = params_;
  const Model& m = model();
  int64_t count = 0;
  for (const auto& [name, t] : m.module().named_parameters()) count += t.numel();
  p["model.name"] = m.name();
  p["model.parameters"] = fmt::format("{}", count);
  if (const optim::Optimizer* opt = m.optimizer()) {
    p["optimizer"] = opt->name();
    for (const auto& [k, v] : opt->defaults().items()) p["optimizer." + k] = fmt::format("{}", v);
  }
  if (const losses::Loss* loss = m.loss()) p["loss"] = loss->name();
  std::vector<std::string> metric_names;
  for (const auto& metric : m.metrics()) metric_names.push_back(metric->name());
  if (!metric_names.empty()) p["metrics"] = fmt::format("{}", fmt::join(metric_names, ","));
  // fit()'s options.
  if (const FitOptions* o = m.fit_options()) {
    p["fit.epochs"] = fmt::format("{}", o->epochs);
    p["fit.batch_size"] = fmt::format("{}", o->batch_size);
    p["fit.validation_split"] = fmt::format("{}", o->validation_split);
    p["fit.shuffle"] = o->shuffle ? "true" : "false";
    p["fit.seed"] = fmt::format("{}", o->seed);
    p["fit.initial_epoch"] = fmt::format("{}", o->initial_epoch);
    if (!o->class_weight.empty()) {
      std::vector<std::string> cw;
      for (const auto& [k, w] : o->class_weight) cw.push_back(fmt::format("{}:{}", k, w));
      p["fit.class_weight"] = fmt::format("{}", fmt::join(cw, ","));
    }
  }
  run_->log_params(p);
}

void TrackingCallback::on_batch_end(int64_t batch, Logs& logs) {
  (void)batch;
  ++step_;
  if (silent_) return;
  for (const auto& [k, v] : logs) run_->log_metric("batch/" + k, v, step_);
  if (const optim::Optimizer* opt = model().optimizer())
    run_->log_metric("batch/learning_rate", opt->lr(), step_);
}

void TrackingCallback::on_epoch_end(int epoch, Logs& logs) {
  if (silent_) return;
  for (const auto& [k, v] : logs) run_->log_metric(k, v, step_, epoch + 1);
  if (!logs.count("learning_rate")) {
    if (const optim::Optimizer* opt = model().optimizer())
      run_->log_metric("learning_rate", opt->lr(), step_, epoch + 1);
  }
  // An epoch's values are on disk before the next epoch starts (a kill -9 loses at most the
  // current epoch's per-batch points).
  run_->flush();
}

void TrackingCallback::on_train_end(Logs& logs) {
  (void)logs;
  if (silent_) return;
  run_->flush();
  if (owns_run_) run_->end(track::RunStatus::Finished);
}

std::shared_ptr<TrackingCallback> Tracking(track::RunPtr run,
                                           std::map<std::string, std::string> params) {
  return std::make_shared<TrackingCallback>(std::move(run), std::move(params));
}

std::shared_ptr<TrackingCallback> Tracking(track::RunOptions options,
                                           std::map<std::string, std::string> params) {
  return std::make_shared<TrackingCallback>(std::move(options), std::move(params));
}

}  // namespace kiln::callbacks

namespace kiln::track {

callbacks::CallbackPtr trainer_callback(const std::string& experiment,
                                        std::map<std::string, std::string> params) {
  if (RunPtr run = active_run()) return callbacks::Tracking(run, std::move(params));
  if (!tracking_enabled()) return nullptr;
  return callbacks::Tracking(RunOptions{.experiment = experiment}, std::move(params));
}

}  // namespace kiln::track
