#pragma once
// "same" padding, one rule for every layer that offers it (Conv1d, Conv2d, MaxPool1d, MaxPool2d,
// AvgPool2d and the Keras layers built on them): TensorFlow's, which at stride 1 is also PyTorch's
// padding="same".
#include <utility>
#include <vector>

#include "kiln/autograd/tensor.h"

namespace kiln::nn {

/// Along one dim of size `in`: the output keeps ⌈in / stride⌉ positions, and the total padding
///   max((⌈in / stride⌉ − 1)·stride + (kernel − 1)·dilation + 1 − in, 0)
/// is split as {total / 2, total − total / 2}: an odd pixel goes at the end (bottom / right).
std::pair<int64_t, int64_t> same_padding(int64_t in, int64_t kernel, int64_t stride,
                                         int64_t dilation = 1);

/// same_padding over the last kernel.size() dims of `shape`, in pad()'s order (last dim first):
/// {w_begin, w_end, h_begin, h_end} for 2-d.
std::vector<int64_t> same_pads(const Shape& shape, const std::vector<int64_t>& kernel,
                               const std::vector<int64_t>& stride,
                               const std::vector<int64_t>& dilation);

}  // namespace kiln::nn
