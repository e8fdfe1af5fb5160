#pragma once
// NumPy .npy files: the format PyTorch reference values (tests/golden/) and `kiln run` inputs and
// outputs use. Writes go through the one atomic writer (kiln/io/atomic_file.h).
//
//   kiln::save_npy(t, "out.npy");
//   kiln::Tensor x = kiln::load_npy("tests/golden/linear/x.npy");
#include <string>

#include "kiln/autograd/tensor.h"

namespace kiln {

/// Writes t's values (any dtype and shape; strided views are written in C order) as a .npy (format
/// 1.0, little-endian, C order) atomically (temp file + rename). Gradients are not saved.
void save_npy(const Tensor& t, const std::string& path);
/// Reads a .npy of dtype <f4, <f8, <i8, <i4, |u1 or |b1 (C or Fortran order) as a contiguous leaf
/// tensor that does not require grad. Throws IOError naming the file on anything malformed,
/// truncated or unsupported.
Tensor load_npy(const std::string& path);

}  // namespace kiln
