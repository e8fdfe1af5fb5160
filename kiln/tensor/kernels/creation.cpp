#include "kiln/tensor/creation.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"

namespace kiln {

Generator& default_generator() {
  static Generator g;
  return g;
}
void manual_seed(uint64_t seed) {
  default_generator().manual_seed(seed);
}

namespace kernels {

Array empty(const Shape& shape, DType dtype) {
  return Array(shape, dtype);
}
Array zeros(const Shape& shape, DType dtype) {
  return full(shape, 0.0, dtype);
}
Array ones(const Shape& shape, DType dtype) {
  return full(shape, 1.0, dtype);
}
Array full(const Shape& shape, double value, DType dtype) {
  Array a(shape, dtype);
  a.fill_(value);
  return a;
}

Array arange(double start, double end, double step, DType dtype) {
  KILN_CHECK(step != 0, "arange: step must be non-zero");
  KILN_CHECK((end - start) / step >= 0, "arange: range [{}, {}) with step {} has the wrong sign",
             start, end, step);
  int64_t n = static_cast<int64_t>(std::ceil((end - start) / step));
  Array a({n}, dtype);
  KILN_DISPATCH_NUMERIC(dtype, "arange", [&] {
    scalar_t* p = a.data<scalar_t>();
    for (int64_t i = 0; i < n; ++i)
      p[i] = static_cast<scalar_t>(start + static_cast<double>(i) * step);
  });
  return a;
}

Array linspace(double start, double end, int64_t steps, DType dtype) {
  KILN_CHECK(steps >= 0, "linspace: steps must be >= 0, got {}", steps);
  Array a({steps}, dtype);
  double step = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;
  KILN_DISPATCH_NUMERIC(dtype, "linspace", [&] {
    scalar_t* p = a.data<scalar_t>();
    // Fill from both ends, as PyTorch does, so the last value is exactly `end`.
    int64_t half = steps / 2;
    for (int64_t i = 0; i < steps; ++i)
      p[i] = static_cast<scalar_t>(i < half ? start + step * static_cast<double>(i)
                                            : end - step * static_cast<double>(steps - 1 - i));
  });
  return a;
}

Array eye(int64_t n, int64_t m, DType dtype) {
  if (m < 0) m = n;
  Array a = zeros({n, m}, dtype);
  KILN_DISPATCH_ALL(dtype, "eye", [&] {
    scalar_t* p = a.data<scalar_t>();
    for (int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = scalar_t(1);
  });
  return a;
}

template <typename T>
Array from_vector(const std::vector<T>& values, Shape shape) {
  if (shape.empty()) shape = {static_cast<int64_t>(values.size())};
  KILN_CHECK_SHAPE(shape_numel(shape) == static_cast<int64_t>(values.size()),
                   "from_vector: {} values do not fill shape {} ({} elements)", values.size(),
                   shape, shape_numel(shape));
  Array a(shape, dtype_v<T>);
  std::copy(values.begin(), values.end(), a.data<T>());
  return a;
}
template Array from_vector(const std::vector<float>&, Shape);
template Array from_vector(const std::vector<double>&, Shape);
template Array from_vector(const std::vector<int64_t>&, Shape);
template Array from_vector(const std::vector<int32_t>&, Shape);
template Array from_vector(const std::vector<uint8_t>&, Shape);
template <>
Array from_vector(const std::vector<bool>& values, Shape shape) {
  if (shape.empty()) shape = {static_cast<int64_t>(values.size())};
  KILN_CHECK_SHAPE(shape_numel(shape) == static_cast<int64_t>(values.size()),
                   "from_vector: {} values do not fill shape {}", values.size(), shape);
  Array a(shape, kBool);
  bool* p = a.data<bool>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return a;
}

namespace {
// Fills `a` with f(counter_base + i) for each element i, in parallel.
template <typename F>
void fill_counter(Array& a, uint64_t base, uint64_t seed, F f) {
  KILN_DISPATCH_NUMERIC(a.dtype(), "random", [&] {
    scalar_t* p = a.data<scalar_t>();
    parallel_for(0, a.numel(), kGrainSize / 8, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i)
        p[i] = static_cast<scalar_t>(f(seed, base + static_cast<uint64_t>(i)));
    });
  });
}
}  // namespace

Array rand(const Shape& shape, double low, double high, DType dtype, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  Array a(shape, dtype);
  uint64_t base = g.advance(static_cast<uint64_t>(a.numel()));
  fill_counter(a, base, g.seed(), [low, high](uint64_t s, uint64_t c) {
    return low + (high - low) * Generator::uniform(s, c);
  });
  return a;
}

Array randn(const Shape& shape, double mean, double std, DType dtype, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  Array a(shape, dtype);
  uint64_t base = g.advance(2 * static_cast<uint64_t>(a.numel()));
  fill_counter(a, 0, g.seed(), [base, mean, std](uint64_t s, uint64_t i) {
    // Box–Muller on the pair (2i, 2i+1); u1 is kept away from 0 so log() is finite.
    double u1 = 1.0 - Generator::uniform(s, base + 2 * i);
    double u2 = Generator::uniform(s, base + 2 * i + 1);
    return mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  });
  return a;
}

Array randint(int64_t low, int64_t high, const Shape& shape, DType dtype, Generator* gen) {
  KILN_CHECK(high > low, "randint: high {} must exceed low {}", high, low);
  Generator& g = gen ? *gen : default_generator();
  Array a(shape, dtype);
  uint64_t base = g.advance(static_cast<uint64_t>(a.numel()));
  uint64_t range = static_cast<uint64_t>(high - low);
  fill_counter(a, base, g.seed(), [low, range](uint64_t s, uint64_t c) {
    // 128-bit multiply maps the hash onto [0, range) with negligible bias.
    return low + static_cast<int64_t>(
                     (static_cast<unsigned __int128>(Generator::hash(s, c)) * range) >> 64);
  });
  return a;
}

Array bernoulli(const Shape& shape, double p, DType dtype, Generator* gen) {
  KILN_CHECK(p >= 0 && p <= 1, "bernoulli: p must be in [0, 1], got {}", p);
  Generator& g = gen ? *gen : default_generator();
  Array a(shape, dtype);
  uint64_t base = g.advance(static_cast<uint64_t>(a.numel()));
  fill_counter(a, base, g.seed(),
               [p](uint64_t s, uint64_t c) { return Generator::uniform(s, c) < p ? 1.0 : 0.0; });
  return a;
}

Array randperm(int64_t n, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  Array a = arange(0, static_cast<double>(n), 1, kInt64);
  int64_t* p = a.data<int64_t>();
  uint64_t base = g.advance(static_cast<uint64_t>(n));
  // Fisher–Yates with counter-based draws.
  for (int64_t i = n - 1; i > 0; --i) {
    uint64_t r = Generator::hash(g.seed(), base + static_cast<uint64_t>(i));
    int64_t j = static_cast<int64_t>(
        (static_cast<unsigned __int128>(r) * static_cast<uint64_t>(i + 1)) >> 64);
    std::swap(p[i], p[j]);
  }
  return a;
}

}  // namespace kernels
}  // namespace kiln
