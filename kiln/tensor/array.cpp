#include "kiln/tensor/array.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>

#include "kiln/tensor/error.h"
#include "kiln/tensor/kernels/loops.h"

namespace kiln {

Array::Array(Shape shape, DType dtype) : shape_(std::move(shape)), offset_(0), dtype_(dtype) {
  for (int64_t d : shape_)
    KILN_CHECK_SHAPE(d >= 0, "empty: negative dimension in shape {}", shape_);
  strides_ = contiguous_strides(shape_);
  numel_ = shape_numel(shape_);
  storage_ = std::make_shared<Storage>(static_cast<size_t>(numel_) * dtype_size(dtype));
}

Array::Array(std::shared_ptr<Storage> storage, Shape shape, Strides strides, int64_t offset,
             DType dtype)
    : storage_(std::move(storage)),
      shape_(std::move(shape)),
      strides_(std::move(strides)),
      offset_(offset),
      numel_(shape_numel(shape_)),
      dtype_(dtype) {}

int64_t Array::size(int64_t d) const {
  return shape_[wrap_dim(d, dim(), "size")];
}
int64_t Array::stride(int64_t d) const {
  return strides_[wrap_dim(d, dim(), "stride")];
}

bool Array::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] == 1) continue;
    if (strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

void Array::check_dtype(DType t) const {
  KILN_CHECK_TYPE(t == dtype_, "data<{}>(): array has dtype {}", dtype_name(t), dtype_);
}

template <typename T>
T Array::item() const {
  KILN_CHECK_SHAPE(numel_ == 1, "item: array has {} elements (shape {}), expected exactly 1",
                   numel_, shape_);
  T out{};
  KILN_DISPATCH_ALL(dtype_, "item",
                    [&] { out = static_cast<T>(*static_cast<const scalar_t*>(raw_data())); });
  return out;
}
template float Array::item<float>() const;
template double Array::item<double>() const;
template int64_t Array::item<int64_t>() const;
template int32_t Array::item<int32_t>() const;
template uint8_t Array::item<uint8_t>() const;
template bool Array::item<bool>() const;

double Array::at(const std::vector<int64_t>& index) const {
  KILN_CHECK_SHAPE(index.size() == shape_.size(), "at: index has {} entries, array has {} dims",
                   index.size(), shape_.size());
  int64_t off = 0;
  for (size_t d = 0; d < index.size(); ++d) {
    int64_t i = index[d] < 0 ? index[d] + shape_[d] : index[d];
    KILN_CHECK_SHAPE(i >= 0 && i < shape_[d], "at: index {} out of range for dim {} of size {}",
                     index[d], d, shape_[d]);
    off += i * strides_[d];
  }
  double out = 0;
  KILN_DISPATCH_ALL(dtype_, "at", [&] {
    out = static_cast<double>(static_cast<const scalar_t*>(storage_->data())[offset_ + off]);
  });
  return out;
}

namespace {

// Infers a -1 entry and checks the element count.
Shape infer_shape(Shape shape, int64_t numel, const char* op, const Shape& from) {
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      KILN_CHECK_SHAPE(infer < 0, "{}: only one dimension can be -1, got {}", op, shape);
      infer = static_cast<int64_t>(i);
    } else {
      KILN_CHECK_SHAPE(shape[i] >= 0, "{}: invalid size {} in shape {}", op, shape[i], shape);
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    KILN_CHECK_SHAPE(known != 0 && numel % known == 0,
                     "{}: shape {} is invalid for input of size {} (from shape {})", op, shape,
                     numel, from);
    shape[infer] = numel / known;
  } else {
    KILN_CHECK_SHAPE(
        known == numel,
        "{}: shape {} is invalid for input of size {} (from shape {}; element counts must match)",
        op, shape, numel, from);
  }
  return shape;
}

// Strides for viewing (shape, strides) as new_shape without a copy, or empty if impossible.
// (The algorithm of PyTorch's computeStride: split the old dims into contiguous chunks.)
std::optional<Strides> view_strides(const Shape& old_shape, const Strides& old_strides,
                                    const Shape& new_shape) {
  Strides ns(new_shape.size());
  if (old_shape.empty()) {
    std::fill(ns.begin(), ns.end(), 1);
    return ns;
  }
  int64_t numel = shape_numel(old_shape);
  if (numel == 0) return contiguous_strides(new_shape);
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t td = static_cast<int64_t>(old_shape.size()) - 1; td >= 0; --td) {
    tensor_numel *= old_shape[td];
    if (td == 0 ||
        (old_shape[td - 1] != 1 && old_strides[td - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        ns[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (td > 0) {
        chunk_base_stride = old_strides[td - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return ns;
}

}  // namespace

Array Array::view(Shape shape) const {
  shape = infer_shape(std::move(shape), numel_, "view", shape_);
  auto st = view_strides(shape_, strides_, shape);
  KILN_CHECK_SHAPE(
      st.has_value(),
      "view: shape {} is not compatible with the input's layout (shape {}, strides {}); use "
      "reshape(), which copies when needed",
      shape, shape_, strides_);
  return Array(storage_, std::move(shape), std::move(*st), offset_, dtype_);
}

Array Array::reshape(Shape shape) const {
  shape = infer_shape(std::move(shape), numel_, "reshape", shape_);
  if (auto st = view_strides(shape_, strides_, shape))
    return Array(storage_, shape, std::move(*st), offset_, dtype_);
  return contiguous().view(std::move(shape));
}

Array Array::transpose(int64_t d0, int64_t d1) const {
  d0 = wrap_dim(d0, dim(), "transpose");
  d1 = wrap_dim(d1, dim(), "transpose");
  Shape s = shape_;
  Strides st = strides_;
  std::swap(s[d0], s[d1]);
  std::swap(st[d0], st[d1]);
  return Array(storage_, std::move(s), std::move(st), offset_, dtype_);
}

Array Array::permute(const std::vector<int64_t>& dims) const {
  KILN_CHECK_SHAPE(static_cast<int64_t>(dims.size()) == dim(),
                   "permute: got {} dims {} for a tensor of shape {} (one entry per dim required)",
                   dims.size(), dims, shape_);
  Shape s(dims.size());
  Strides st(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    KILN_CHECK_SHAPE(!seen[d], "permute: dim {} repeated in {}", d, dims);
    seen[d] = true;
    s[i] = shape_[d];
    st[i] = strides_[d];
  }
  return Array(storage_, std::move(s), std::move(st), offset_, dtype_);
}

Array Array::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, dim(), "slice");
  KILN_CHECK_SHAPE(step > 0, "slice: step must be positive, got {}", step);
  int64_t n = shape_[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = shape_;
  Strides st = strides_;
  s[d] = (end - start + step - 1) / step;
  st[d] = strides_[d] * step;
  return Array(storage_, std::move(s), std::move(st), offset_ + start * strides_[d], dtype_);
}

Array Array::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim(), "narrow");
  if (start < 0) start += shape_[d];
  KILN_CHECK_SHAPE(start >= 0 && length >= 0 && start + length <= shape_[d],
                   "narrow: start {} + length {} exceeds dim {} of size {} (shape {})", start,
                   length, d, shape_[d], shape_);
  return slice(d, start, start + length);
}

Array Array::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim(), "select");
  int64_t n = shape_[d];
  KILN_CHECK_SHAPE(index >= -n && index < n,
                   "select: index {} out of range for dim {} of size {} (shape {})", index, d, n,
                   shape_);
  if (index < 0) index += n;
  Shape s = shape_;
  Strides st = strides_;
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  return Array(storage_, std::move(s), std::move(st), offset_ + index * strides_[d], dtype_);
}

Array Array::expand(const Shape& shape) const {
  KILN_CHECK_SHAPE(
      shape.size() >= shape_.size(),
      "expand: target {} has fewer dims than the input {} (dims can only be added in front)", shape,
      shape_);
  size_t off = shape.size() - shape_.size();
  Shape s(shape.size());
  Strides st(shape.size(), 0);
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < off) {
      KILN_CHECK_SHAPE(shape[i] >= 0, "expand: new leading dim {} must be given a size, got {}", i,
                       shape[i]);
      s[i] = shape[i];
      continue;
    }
    int64_t have = shape_[i - off];
    int64_t want = shape[i] == -1 ? have : shape[i];
    KILN_CHECK_SHAPE(
        have == want || have == 1,
        "expand: input {} cannot be expanded to {} (dim {}: size {} must equal {} or be 1)", shape_,
        shape, i, have, want);
    s[i] = want;
    st[i] = have == want ? strides_[i - off] : 0;
  }
  return Array(storage_, std::move(s), std::move(st), offset_, dtype_);
}

Array Array::squeeze() const {
  Shape s;
  Strides st;
  for (size_t i = 0; i < shape_.size(); ++i)
    if (shape_[i] != 1) {
      s.push_back(shape_[i]);
      st.push_back(strides_[i]);
    }
  return Array(storage_, std::move(s), std::move(st), offset_, dtype_);
}

Array Array::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");
  if (shape_[d] != 1) return *this;
  Shape s = shape_;
  Strides st = strides_;
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  return Array(storage_, std::move(s), std::move(st), offset_, dtype_);
}

Array Array::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape s = shape_;
  Strides st = strides_;
  int64_t stride = d < dim() ? shape_[d] * strides_[d] : 1;
  s.insert(s.begin() + d, 1);
  st.insert(st.begin() + d, stride);
  return Array(storage_, std::move(s), std::move(st), offset_, dtype_);
}

Array Array::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  start_dim = wrap_dim(start_dim, dim(), "flatten");
  end_dim = wrap_dim(end_dim, dim(), "flatten");
  KILN_CHECK_SHAPE(start_dim <= end_dim, "flatten: start_dim {} must not come after end_dim {}",
                   start_dim, end_dim);
  Shape s(shape_.begin(), shape_.begin() + start_dim);
  int64_t m = 1;
  for (int64_t i = start_dim; i <= end_dim; ++i) m *= shape_[i];
  s.push_back(m);
  s.insert(s.end(), shape_.begin() + end_dim + 1, shape_.end());
  return reshape(std::move(s));
}

Array Array::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Array Array::clone() const {
  Array out(shape_, dtype_);
  out.copy_(*this);
  return out;
}

Array Array::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Array out(shape_, dtype);
  out.copy_(*this);
  return out;
}

namespace {
template <typename D, typename S>
D convert(S v) {
  if constexpr (std::is_same_v<D, bool>)
    return v != S(0);
  else
    return static_cast<D>(v);
}
}  // namespace

void Array::copy_(const Array& src) const {
  KILN_CHECK(defined() && src.defined(), "copy_: undefined array");
  Shape bs = broadcast_shapes(shape_, src.shape_, "copy_");
  KILN_CHECK_SHAPE(bs == shape_, "copy_: source {} cannot be broadcast to destination {}",
                   src.shape_, shape_);
  bump_version();
  if (numel_ == 0) return;
  if (src.dtype_ == dtype_ && is_contiguous() && src.is_contiguous() && src.numel_ == numel_) {
    std::memcpy(raw_data(), src.raw_data(), nbytes());
    return;
  }
  auto plan = detail::make_plan<2>(shape_, {this, &src});
  KILN_DISPATCH_ALL(dtype_, "copy_", [&] {
    using D = scalar_t;
    KILN_DISPATCH_ALL(src.dtype_, "copy_", [&] {
      using S = scalar_t;
      detail::run_plan(plan, [](std::array<char*, 2> p, std::array<int64_t, 2> s, int64_t n) {
        for (int64_t i = 0; i < n; ++i)
          *reinterpret_cast<D*>(p[0] + i * s[0]) =
              convert<D>(*reinterpret_cast<const S*>(p[1] + i * s[1]));
      });
    });
  });
}

void Array::fill_(double value) const {
  bump_version();
  if (numel_ == 0) return;
  auto plan = detail::make_plan<1>(shape_, {this});
  KILN_DISPATCH_ALL(dtype_, "fill_", [&] {
    scalar_t v = convert<scalar_t>(value);
    detail::run_plan(plan, [v](std::array<char*, 1> p, std::array<int64_t, 1> s, int64_t n) {
      if (s[0] == sizeof(scalar_t))
        std::fill_n(reinterpret_cast<scalar_t*>(p[0]), n, v);
      else
        for (int64_t i = 0; i < n; ++i) *reinterpret_cast<scalar_t*>(p[0] + i * s[0]) = v;
    });
  });
}

}  // namespace kiln
