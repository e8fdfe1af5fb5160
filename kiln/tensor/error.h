#pragma once
// Errors thrown at Kiln's API boundaries. Messages name the op, what differs, the values and the
// rule:
//   matmul: inner dimensions differ: lhs [32, 784] vs rhs [256, 10] (lhs[-1] must equal rhs[-2])
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>

namespace kiln {

/// Base of every error Kiln throws (a std::runtime_error, so generic handlers catch it too).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
/// Shapes or dims that do not fit the op's rule.
class ShapeError : public Error {
 public:
  using Error::Error;
};
/// dtypes the op does not accept.
class TypeError : public Error {
 public:
  using Error::Error;
};
/// Files that are missing, truncated or corrupt.
class IOError : public Error {
 public:
  using Error::Error;
};

}  // namespace kiln

/// Throws `kind` with a fmt-formatted message when `cond` is false.
#define KILN_CHECK_AS(kind, cond, ...)      \
  do {                                      \
    if (!(cond)) [[unlikely]] {             \
      throw kind(fmt::format(__VA_ARGS__)); \
    }                                       \
  } while (0)
#define KILN_CHECK(cond, ...) KILN_CHECK_AS(::kiln::Error, cond, __VA_ARGS__)
#define KILN_CHECK_SHAPE(cond, ...) KILN_CHECK_AS(::kiln::ShapeError, cond, __VA_ARGS__)
#define KILN_CHECK_TYPE(cond, ...) KILN_CHECK_AS(::kiln::TypeError, cond, __VA_ARGS__)
