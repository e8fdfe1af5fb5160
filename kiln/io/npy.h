#pragma once
// NumPy .npy files: the format PyTorch reference values (tests/golden/) and `kiln run` inputs and
// outputs use. Writes go through the one atomic writer (kiln/io/atomic_file.h).
//
//   kiln::save_npy(array, "out.npy");
//   kiln::Array a = kiln::load_npy("tests/golden/linear/x.npy");
#include <string>

#include "kiln/tensor/array.h"

namespace kiln {

/// Writes a .npy (format 1.0, little-endian, C order) atomically (temp file + rename).
void save_npy(const Array& a, const std::string& path);
/// Reads a .npy of dtype <f4, <f8, <i8, <i4, |u1 or |b1 (C or Fortran order). Throws IOError naming
/// the file on anything malformed, truncated or unsupported.
Array load_npy(const std::string& path);

}  // namespace kiln
