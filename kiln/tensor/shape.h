#pragma once
// Shapes, strides and the broadcasting rule.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

/// Sizes of each dim, outermost first. `fmt::format("{}", shape)` prints "[32, 784]".
using Shape = std::vector<int64_t>;
/// Element (not byte) steps per dim.
using Strides = std::vector<int64_t>;

/// Product of the sizes (1 for a scalar shape []).
int64_t shape_numel(const Shape& s);
/// Row-major strides for a contiguous tensor of this shape.
Strides contiguous_strides(const Shape& s);
/// Maps a possibly negative dim into [0, ndim); throws ShapeError naming `op` when out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim, std::string_view op);
/// NumPy broadcasting: dims aligned from the right must be equal or 1. Throws naming `op`.
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op);
/// "[2, 3]".
std::string shape_str(const Shape& s);

}  // namespace kiln
