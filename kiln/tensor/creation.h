#pragma once
// Creating arrays: constants, ranges, from C++ containers, and seeded random draws.
#include <initializer_list>
#include <vector>

#include "kiln/tensor/array.h"
#include "kiln/tensor/random.h"

namespace kiln::kernels {

Array empty(const Shape& shape, DType dtype = kFloat32);
Array zeros(const Shape& shape, DType dtype = kFloat32);
Array ones(const Shape& shape, DType dtype = kFloat32);
Array full(const Shape& shape, double value, DType dtype = kFloat32);
/// start, start+step, ... < end (like torch.arange); int64 unless a float dtype is given.
Array arange(double start, double end, double step = 1.0, DType dtype = kInt64);
/// `steps` evenly spaced values from start to end inclusive.
Array linspace(double start, double end, int64_t steps, DType dtype = kFloat32);
/// (n, m) identity (m = n when m < 0).
Array eye(int64_t n, int64_t m = -1, DType dtype = kFloat32);

/// Copies `values` into a new array of `shape` (1-D of values.size() when shape is empty).
template <typename T>
Array from_vector(const std::vector<T>& values, Shape shape = {});

/// Uniform in [low, high).
Array rand(const Shape& shape, double low = 0.0, double high = 1.0, DType dtype = kFloat32,
           Generator* gen = nullptr);
/// Normal(mean, std) by Box–Muller on counter pairs.
Array randn(const Shape& shape, double mean = 0.0, double std = 1.0, DType dtype = kFloat32,
            Generator* gen = nullptr);
/// Integers uniform in [low, high).
Array randint(int64_t low, int64_t high, const Shape& shape, DType dtype = kInt64,
              Generator* gen = nullptr);
/// 1 with probability p, else 0.
Array bernoulli(const Shape& shape, double p, DType dtype = kFloat32, Generator* gen = nullptr);
/// A random permutation of 0..n-1 (int64), seeded.
Array randperm(int64_t n, Generator* gen = nullptr);

}  // namespace kiln::kernels
