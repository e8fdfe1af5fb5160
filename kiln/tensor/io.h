#pragma once
// Printing arrays. (NumPy .npy files are read and written by kiln/io/npy.h.)
#include <string>

#include "kiln/tensor/array.h"

namespace kiln {

/// Nested-bracket text like PyTorch's: "[[1.0000, 2.0000],\n [3.0000, 4.0000]]"; long dims are
/// summarised with "..." (first and last 3 entries) beyond 1000 elements.
std::string format_array(const Array& a, int precision = 4);

}  // namespace kiln
