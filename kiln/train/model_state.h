#pragma once
// Internal to kiln_train (not part of the public API): the compiled state a Model holds, shared by
// model.cpp (training) and checkpoint.cpp (save / load).
#include <memory>
#include <vector>

#include "kiln/distributed/ddp.h"
#include "kiln/train/model.h"

namespace kiln {

struct Model::Compiled {
  explicit Compiled(optimizers::OptimizerSpec s) : spec(std::move(s)) {}
  optimizers::OptimizerSpec spec;
  losses::LossPtr loss;
  std::vector<metrics::MetricPtr> metrics;
  metrics::MeanMetric loss_tracker{"loss"};
  std::shared_ptr<optim::Optimizer> optimizer;  // built with the model (or given to compile)
  std::unique_ptr<optim::LRScheduler> scheduler;
  // Restored from a checkpoint, applied once the optimiser exists.
  json::Value groups;
  optim::StateDict pending_optimizer;
  optim::SchedulerState pending_scheduler;
  bool pending = false;
  // Distributed fit: the gradient reducer (built with the optimiser when the model is
  // distributed) and whether the module has buffers to broadcast from rank 0 each step.
  std::unique_ptr<distributed::DistributedDataParallel> ddp;
  bool broadcast_buffers = false;
};

}  // namespace kiln
