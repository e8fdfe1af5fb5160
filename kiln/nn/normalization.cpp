#include "kiln/nn/normalization.h"

#include <algorithm>

#include "kiln/autograd/grad_mode.h"
#include "kiln/nn/init.h"
#include "kiln/tensor/error.h"

namespace kiln::nn {

LayerNorm::LayerNorm(LayerNormOptions options) : Module("LayerNorm"), options_(std::move(options)) {
  const Shape& s = options_.normalized_shape();
  KILN_CHECK(!s.empty() && std::all_of(s.begin(), s.end(), [](int64_t d) { return d > 0; }),
             "LayerNorm: normalized_shape must be non-empty with positive dims, got {}", s);
  if (options_.elementwise_affine()) {
    weight = register_parameter("weight", ones(s));
    bias = register_parameter("bias", zeros(s));
  }
}

void LayerNorm::reset_parameters(Generator*) {
  if (weight.defined()) init::ones_(weight);
  if (bias.defined()) init::zeros_(bias);
}

Tensor LayerNorm::forward(const Tensor& x) {
  const Shape& s = options_.normalized_shape();
  const int64_t n = static_cast<int64_t>(s.size());
  bool ok = x.dim() >= n && std::equal(s.begin(), s.end(), x.shape().end() - n);
  KILN_CHECK_SHAPE(ok, "{}: input shape {} does not end in normalized_shape {} (x: (*, {}))",
                   where(), x.shape(), s, fmt::join(s, ", "));
  return layer_norm(x, s, weight, bias, options_.eps());
}

std::string LayerNorm::extra_repr() const {
  const Shape& s = options_.normalized_shape();
  return fmt::format("({}{}), eps={}, elementwise_affine={}", fmt::join(s, ", "),
                     s.size() == 1 ? "," : "", options_.eps(), options_.elementwise_affine());
}

BatchNorm::BatchNorm(std::string type_name, BatchNormOptions options,
                     std::vector<int64_t> allowed_dims)
    : Module(std::move(type_name)), options_(options), allowed_dims_(std::move(allowed_dims)) {
  const int64_t C = options.num_features();
  KILN_CHECK(C > 0, "{}: num_features must be positive, got {}", name(), C);
  KILN_CHECK(!options.momentum() || (*options.momentum() >= 0 && *options.momentum() <= 1),
             "{}: momentum must be in [0, 1], got {}", name(), *options.momentum());
  if (options.affine()) {
    weight = register_parameter("weight", ones({C}));
    bias = register_parameter("bias", zeros({C}));
  }
  if (options.track_running_stats()) {
    running_mean = register_buffer("running_mean", zeros({C}));
    running_var = register_buffer("running_var", ones({C}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, kInt64));
  }
}

void BatchNorm::reset_running_stats() {
  if (!options_.track_running_stats()) return;
  init::zeros_(running_mean);
  init::ones_(running_var);
  Array n = num_batches_tracked.data();
  n.fill_(0);
}

void BatchNorm::reset_parameters(Generator*) {
  reset_running_stats();
  if (weight.defined()) init::ones_(weight);
  if (bias.defined()) init::zeros_(bias);
}

Tensor BatchNorm::forward(const Tensor& x) {
  const int64_t C = options_.num_features();
  bool dims_ok = allowed_dims_.empty() ? x.dim() >= 2
                                       : std::find(allowed_dims_.begin(), allowed_dims_.end(),
                                                   x.dim()) != allowed_dims_.end();
  const char* layout = allowed_dims_.empty()       ? "(B, C, *)"
                       : allowed_dims_.size() == 1 ? "(B, C, H, W)"
                                                   : "(B, C) or (B, C, L)";
  KILN_CHECK_SHAPE(dims_ok && x.size(1) == C,
                   "{}: expected input {} with C={} at dim 1, got shape {}", where(), layout, C,
                   x.shape());
  int64_t per_channel = x.numel() / C;
  KILN_CHECK_SHAPE(!is_training() || per_channel > 1,
                   "{}: expected more than 1 value per channel when training, got input shape {}",
                   where(), x.shape());

  double factor = options_.momentum().value_or(0.0);
  const bool tracking = options_.track_running_stats();
  if (is_training() && tracking) {
    Array n = num_batches_tracked.data();
    int64_t count = n.item<int64_t>() + 1;
    n.fill_(static_cast<double>(count));
    if (!options_.momentum()) factor = 1.0 / static_cast<double>(count);
  }
  // Batch statistics in training, or whenever there are no running statistics to use.
  const bool use_batch_stats = is_training() || !tracking;
  return batch_norm(x, tracking ? running_mean : Tensor(), tracking ? running_var : Tensor(),
                    weight, bias, use_batch_stats, factor, options_.eps());
}

std::string BatchNorm::extra_repr() const {
  return fmt::format("{}, eps={}, momentum={}, affine={}, track_running_stats={}",
                     options_.num_features(), options_.eps(),
                     options_.momentum() ? fmt::format("{}", *options_.momentum()) : "None",
                     options_.affine(), options_.track_running_stats());
}

}  // namespace kiln::nn
