#include "kiln/nn/padding.h"

#include <algorithm>

#include "kiln/tensor/error.h"

namespace kiln::nn {

std::pair<int64_t, int64_t> same_padding(int64_t in, int64_t kernel, int64_t stride,
                                         int64_t dilation) {
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + (kernel - 1) * dilation + 1 - in, 0);
  return {total / 2, total - total / 2};
}

std::vector<int64_t> same_pads(const Shape& shape, const std::vector<int64_t>& kernel,
                               const std::vector<int64_t>& stride,
                               const std::vector<int64_t>& dilation) {
  const size_t n = kernel.size();
  KILN_CHECK(shape.size() >= n && stride.size() == n && dilation.size() == n,
             "same_pads: {} spatial dims need as many strides and dilations and an input with at "
             "least {} dims, got stride {}, dilation {}, input {}",
             n, n, stride, dilation, shape);
  std::vector<int64_t> pads(2 * n);
  for (size_t i = 0; i < n; ++i) {
    auto [begin, end] =
        same_padding(shape[shape.size() - n + i], kernel[i], stride[i], dilation[i]);
    pads[2 * (n - 1 - i)] = begin;
    pads[2 * (n - 1 - i) + 1] = end;
  }
  return pads;
}

}  // namespace kiln::nn
