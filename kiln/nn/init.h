#pragma once
// Parameter initialisers (namespace kiln::nn::init), PyTorch's torch.nn.init formulas. Each fills
// its tensor in place — outside the graph, bumping the version — and returns it. Random ones take
// an explicit Generator (nullptr = the default generator, seeded by kiln::manual_seed); Kiln's
// counter-based generator differs from PyTorch's, so values are equal in distribution, not bit for
// bit.
//
// fan_in / fan_out of a weight (out, in, k...) are in·∏k and out·∏k (Linear (out, in): in and out).
#include <memory>
#include <string>
#include <utility>

#include "kiln/autograd/tensor.h"
#include "kiln/tensor/random.h"

namespace kiln::nn::init {

/// Which fan kaiming_* scales by: fan_in preserves the forward pass's variance, fan_out the
/// backward's.
enum class FanMode { FanIn, FanOut };

/// (fan_in, fan_out) of a weight with >= 2 dims: (size(1)·receptive, size(0)·receptive), receptive
/// = the product of dims 2.. . Throws for fewer than 2 dims.
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);
/// Recommended gain for a nonlinearity: linear, conv*, sigmoid → 1; tanh → 5/3; relu → √2;
/// leaky_relu → √(2/(1+a²)) with a = `param` (0.01 when param < 0); selu → 3/4.
double calculate_gain(const std::string& nonlinearity, double param = -1.0);

/// U(a, b).
Tensor& uniform_(Tensor& t, double a = 0.0, double b = 1.0, Generator* gen = nullptr);
/// N(mean, std²).
Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
/// N(mean, std²) truncated to [a, b] (out-of-range draws are redrawn, so the law is exactly
/// truncated).
Tensor& trunc_normal_(Tensor& t, double mean = 0.0, double std = 1.0, double a = -2.0,
                      double b = 2.0, Generator* gen = nullptr);
Tensor& constant_(Tensor& t, double value);
Tensor& zeros_(Tensor& t);
Tensor& ones_(Tensor& t);
/// Glorot & Bengio (2010): U(−a, a), a = gain·√(6 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);
/// Glorot & Bengio (2010): N(0, std²), std = gain·√(2 / (fan_in + fan_out)).
Tensor& xavier_normal_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);
/// He et al. (2015): U(−b, b), b = gain·√(3 / fan), gain = calculate_gain(nonlinearity, a).
Tensor& kaiming_uniform_(Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                         const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
/// He et al. (2015): N(0, std²), std = gain / √fan.
Tensor& kaiming_normal_(Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                        const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);

/// Constructs M(args...) and leaves the default generator where it was before: the module keeps
/// its constructor's values, meant to be overwritten, and a wrapper that re-initialises it (the
/// Keras layers' glorot_uniform) draws exactly what it would have drawn alone (the use of
/// torch.nn.utils.skip_init).
template <typename M, typename... Args>
std::shared_ptr<M> skip_init(Args&&... args) {
  Generator& g = default_generator();
  const uint64_t seed = g.seed(), offset = g.advance(0);  // advance(0) reads the offset
  auto module = std::make_shared<M>(std::forward<Args>(args)...);
  g.manual_seed(seed);
  g.advance(offset);
  return module;
}

}  // namespace kiln::nn::init
