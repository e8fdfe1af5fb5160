#pragma once
// KILN_ARG declares one fluent option of an options struct, as PyTorch's TORCH_ARG does:
//
//   struct LinearOptions {
//     LinearOptions(int64_t in, int64_t out) : in_features_(in), out_features_(out) {}
//     KILN_ARG(int64_t, in_features);
//     KILN_ARG(bool, bias) = true;
//   };
//   LinearOptions(784, 10).bias(false).bias();   // setter returns *this; getter reads
//
// The field is `name_`; the setter and getter are both `name(...)`. The macro leaves the access at
// private, so put constructors before the first KILN_ARG (or re-open `public:`).
// It lives here, in autograd, because both nn and optim use it and neither may include the other.
#include <type_traits>
#define KILN_ARG(T, name)                                \
 public:                                                 \
  auto& name(const std::type_identity_t<T>& new_value) { \
    this->name##_ = new_value;                           \
    return *this;                                        \
  }                                                      \
  const std::type_identity_t<T>& name() const {          \
    return this->name##_;                                \
  }                                                      \
                                                         \
 private:                                                \
  T name##_
