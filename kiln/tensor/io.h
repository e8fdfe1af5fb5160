#pragma once
// Printing arrays and NumPy .npy files.
#include <string>

#include "kiln/tensor/array.h"

namespace kiln {

/// Nested-bracket text like PyTorch's: "[[1.0000, 2.0000],\n [3.0000, 4.0000]]"; long dims are
/// summarised with "..." (first and last 3 entries) beyond 1000 elements.
std::string format_array(const Array& a, int precision = 4);

/// Writes a .npy (format 1.0, little-endian, C order) atomically (temp file + rename).
void save_npy(const Array& a, const std::string& path);
/// Reads a .npy of dtype <f4, <f8, <i8, <i4, |u1 or |b1 (C or Fortran order). Throws IOError naming
/// the file on anything malformed, truncated or unsupported.
Array load_npy(const std::string& path);

}  // namespace kiln
