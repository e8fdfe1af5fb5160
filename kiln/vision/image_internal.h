#pragma once
// Internal to kiln/vision's sources, shared by them and by nothing else. vision's public API takes
// and returns kiln::Tensor (Kiln's one public tensor type); the implementations work on the Array
// inside and convert at the boundary: `array_of(t)` in, `Tensor(a)` out (neither copies values;
// Tensor(Array) shares the Array's storage). Not a public header and not installed
// (cmake/KilnInstall.cmake excludes *_internal.h).
#include "kiln/autograd/tensor.h"

namespace kiln::vision {

/// The values of `t` (sharing its storage); an undefined Tensor gives an undefined Array, so the
/// Array-level checks report it by name instead of dereferencing nothing.
inline Array array_of(const Tensor& t) {
  return t.defined() ? t.data() : Array();
}

}  // namespace kiln::vision
