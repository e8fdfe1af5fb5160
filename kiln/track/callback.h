#pragma once
// callbacks::Tracking — records a fit() in a tracking run (kiln/track/run.h): the compile and fit
// options as parameters, every epoch's logs ("loss", "val_loss", "accuracy", ..., and the learning
// rate) by epoch, and every batch's running values as "batch/<key>" by global step.
//
//   auto run = kiln::track::Run::start({.experiment = "mnist"});
//   model.fit(x, y, {.epochs = 5, .callbacks = {kiln::callbacks::Tracking(run)}});
//   run->log_artifact("mnist.kiln");
//   run->end();
//
// or let the callback own its run (started at on_train_begin, ended at on_train_end):
//   model.fit(x, y, {.callbacks = {kiln::callbacks::Tracking({.experiment = "mnist"})}});
//
// Under mpirun (a distributed fit), rank 0 alone records: the other ranks' callbacks neither start
// a run nor log, so one job makes one run, as Keras callbacks do under Horovod.
//
// It lives in kiln/track (above kiln/train) and plugs into train's Callback interface.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "kiln/track/run.h"
#include "kiln/train/callbacks.h"

namespace kiln::callbacks {

class TrackingCallback : public Callback {
 public:
  /// Logs into `run` and leaves it open (the caller ends it); `params` are logged at the start.
  explicit TrackingCallback(track::RunPtr run, std::map<std::string, std::string> params = {});
  /// Starts a run with `options` at on_train_begin and ends it at on_train_end.
  explicit TrackingCallback(track::RunOptions options,
                            std::map<std::string, std::string> params = {});
  void on_train_begin(Logs& logs) override;
  void on_batch_end(int64_t batch, Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;
  void on_train_end(Logs& logs) override;
  /// The run (nullptr before on_train_begin when the callback starts its own).
  const track::RunPtr& run() const { return run_; }
  /// Optimisation steps seen (the x of "batch/..." points).
  int64_t step() const { return step_; }

 private:
  track::RunPtr run_;
  track::RunOptions options_;
  std::map<std::string, std::string> params_;
  bool owns_run_ = false;
  bool silent_ = false;  // a distributed fit's rank other than 0
  int64_t step_ = 0;
};

std::shared_ptr<TrackingCallback> Tracking(track::RunPtr run,
                                           std::map<std::string, std::string> params = {});
std::shared_ptr<TrackingCallback> Tracking(track::RunOptions options,
                                           std::map<std::string, std::string> params = {});

}  // namespace kiln::callbacks

namespace kiln::track {

/// The trainers' hook: a Tracking callback on the active run (left open for the caller), or on a
/// new run in `experiment` (ended when training ends) when tracking_enabled(); nullptr when
/// neither. `params` are the trainer's options.
callbacks::CallbackPtr trainer_callback(const std::string& experiment,
                                        std::map<std::string, std::string> params);

}  // namespace kiln::track
