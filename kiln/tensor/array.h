#pragma once
// Array: a strided N-d view onto shared Storage. This is the raw numeric type the kernels work on;
// it knows nothing of autograd. Users hold kiln::Tensor (autograd/tensor.h), which wraps one.
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

#include "kiln/tensor/dtype.h"
#include "kiln/tensor/shape.h"
#include "kiln/tensor/storage.h"

namespace kiln {

class Array {
 public:
  /// An undefined array (defined() == false).
  Array() = default;
  /// A new contiguous array; contents uninitialised.
  Array(Shape shape, DType dtype);
  /// A view: `storage` seen through shape/strides starting at element `offset`.
  Array(std::shared_ptr<Storage> storage, Shape shape, Strides strides, int64_t offset,
        DType dtype);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Strides& strides() const { return strides_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  /// Size of dim `d` (negative counts from the end).
  int64_t size(int64_t d) const;
  int64_t stride(int64_t d) const;
  int64_t numel() const { return numel_; }
  int64_t offset() const { return offset_; }
  DType dtype() const { return dtype_; }
  size_t itemsize() const { return dtype_size(dtype_); }
  size_t nbytes() const { return static_cast<size_t>(numel_) * itemsize(); }
  bool is_contiguous() const;

  /// Typed pointer to the first element; throws TypeError if T is not the dtype.
  template <typename T>
  T* data() const {
    check_dtype(dtype_v<T>);
    return static_cast<T*>(storage_->data()) + offset_;
  }
  void* raw_data() const {
    return static_cast<char*>(storage_->data()) + offset_ * static_cast<int64_t>(itemsize());
  }
  /// The single element of a one-element array, converted to T.
  template <typename T>
  T item() const;
  /// Element at a full index (slow; for tests and printing).
  double at(const std::vector<int64_t>& index) const;

  // ---- views: no copy; they share storage and the version counter ----
  /// Same elements, new shape; one dim may be -1. Requires a compatible layout (throws otherwise).
  Array view(Shape shape) const;
  /// view() when the layout allows, otherwise a contiguous copy.
  Array reshape(Shape shape) const;
  Array transpose(int64_t d0, int64_t d1) const;
  Array permute(const std::vector<int64_t>& dims) const;
  /// Elements start, start+step, ... < end along `dim` (end clamped, negatives wrap).
  Array slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Array narrow(int64_t dim, int64_t start, int64_t length) const;
  /// Removes `dim` by picking `index` along it.
  Array select(int64_t dim, int64_t index) const;
  /// Broadcasts size-1 dims (stride 0) and prepends new dims; -1 keeps a size.
  Array expand(const Shape& shape) const;
  Array squeeze() const;
  Array squeeze(int64_t dim) const;
  Array unsqueeze(int64_t dim) const;
  Array flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;

  // ---- copies ----
  /// This array if already contiguous, else a contiguous copy.
  Array contiguous() const;
  /// Always a new contiguous copy.
  Array clone() const;
  /// Converted to `dtype` (a copy unless already that dtype).
  Array to(DType dtype) const;

  // ---- in-place (bump the version counter) ----
  /// Copies `src` (broadcast to this shape, converted to this dtype) into this array.
  void copy_(const Array& src) const;
  void fill_(double value) const;
  void zero_() const { fill_(0.0); }

  const std::shared_ptr<Storage>& storage() const { return storage_; }
  uint64_t version() const { return storage_ ? storage_->version() : 0; }
  void bump_version() const {
    if (storage_) storage_->bump_version();
  }
  /// True when both arrays view the same storage.
  bool shares_storage(const Array& other) const { return storage_ == other.storage_; }

 private:
  void check_dtype(DType t) const;
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Strides strides_;
  int64_t offset_ = 0;
  int64_t numel_ = 0;
  DType dtype_ = DType::Float32;
};

}  // namespace kiln
