#pragma once
// Element types and PyTorch's type-promotion rules.
#include <cstdint>
#include <string_view>

#include "kiln/tensor/error.h"

namespace kiln {

enum class DType : uint8_t { Bool, UInt8, Int32, Int64, Float32, Float64 };

constexpr DType kFloat32 = DType::Float32;
constexpr DType kFloat64 = DType::Float64;
constexpr DType kInt64 = DType::Int64;
constexpr DType kInt32 = DType::Int32;
constexpr DType kUInt8 = DType::UInt8;
constexpr DType kBool = DType::Bool;

/// Bytes per element.
size_t dtype_size(DType t);
/// "float32", "int64", ... (the names PyTorch and NumPy print).
std::string_view dtype_name(DType t);
constexpr bool is_floating(DType t) {
  return t == DType::Float32 || t == DType::Float64;
}
constexpr bool is_integral(DType t, bool include_bool = false) {
  return t == DType::UInt8 || t == DType::Int32 || t == DType::Int64 ||
         (include_bool && t == DType::Bool);
}

/// PyTorch's promotion for two tensor operands: bool < uint8 < int32 < int64 < float32 < float64.
DType promote_types(DType a, DType b);

template <typename T>
struct dtype_of;
template <>
struct dtype_of<bool> {
  static constexpr DType value = DType::Bool;
};
template <>
struct dtype_of<uint8_t> {
  static constexpr DType value = DType::UInt8;
};
template <>
struct dtype_of<int32_t> {
  static constexpr DType value = DType::Int32;
};
template <>
struct dtype_of<int64_t> {
  static constexpr DType value = DType::Int64;
};
template <>
struct dtype_of<float> {
  static constexpr DType value = DType::Float32;
};
template <>
struct dtype_of<double> {
  static constexpr DType value = DType::Float64;
};
template <typename T>
constexpr DType dtype_v = dtype_of<T>::value;

}  // namespace kiln

template <>
struct fmt::formatter<kiln::DType> : fmt::formatter<std::string_view> {
  auto format(kiln::DType t, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(kiln::dtype_name(t), ctx);
  }
};

// Dispatch on a DType: the body sees `scalar_t` as the C++ element type.
#define KILN_DTYPE_CASE(enum_v, type, ...) \
  case enum_v: {                           \
    using scalar_t = type;                 \
    __VA_ARGS__();                         \
    break;                                 \
  }
/// All six dtypes.
#define KILN_DISPATCH_ALL(dt, op_name, ...)                      \
  switch (dt) {                                                  \
    KILN_DTYPE_CASE(::kiln::DType::Float32, float, __VA_ARGS__)  \
    KILN_DTYPE_CASE(::kiln::DType::Float64, double, __VA_ARGS__) \
    KILN_DTYPE_CASE(::kiln::DType::Int64, int64_t, __VA_ARGS__)  \
    KILN_DTYPE_CASE(::kiln::DType::Int32, int32_t, __VA_ARGS__)  \
    KILN_DTYPE_CASE(::kiln::DType::UInt8, uint8_t, __VA_ARGS__)  \
    KILN_DTYPE_CASE(::kiln::DType::Bool, bool, __VA_ARGS__)      \
  }
/// Numeric dtypes (bool excluded).
#define KILN_DISPATCH_NUMERIC(dt, op_name, ...)                                             \
  switch (dt) {                                                                             \
    KILN_DTYPE_CASE(::kiln::DType::Float32, float, __VA_ARGS__)                             \
    KILN_DTYPE_CASE(::kiln::DType::Float64, double, __VA_ARGS__)                            \
    KILN_DTYPE_CASE(::kiln::DType::Int64, int64_t, __VA_ARGS__)                             \
    KILN_DTYPE_CASE(::kiln::DType::Int32, int32_t, __VA_ARGS__)                             \
    KILN_DTYPE_CASE(::kiln::DType::UInt8, uint8_t, __VA_ARGS__)                             \
    default:                                                                                \
      throw ::kiln::TypeError(                                                              \
          fmt::format("{}: dtype {} is not supported (numeric dtypes only)", op_name, dt)); \
  }
/// float32 and float64 only.
#define KILN_DISPATCH_FLOATING(dt, op_name, ...)                                        \
  switch (dt) {                                                                         \
    KILN_DTYPE_CASE(::kiln::DType::Float32, float, __VA_ARGS__)                         \
    KILN_DTYPE_CASE(::kiln::DType::Float64, double, __VA_ARGS__)                        \
    default:                                                                            \
      throw ::kiln::TypeError(fmt::format(                                              \
          "{}: dtype {} is not supported (float32 or float64 required)", op_name, dt)); \
  }
