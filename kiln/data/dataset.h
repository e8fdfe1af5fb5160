#pragma once
// Map-style data sets (LibTorch's Dataset: size + get(i)) and their composition.
//
//   auto ds = std::make_shared<data::TensorDataset>(images, labels);      // rows along dim 0
//   auto train = data::subset(ds, split.train);                           // by index
//   auto aug = data::map(train, [](data::Example e) { e.data = e.data * 2.0; return e; });
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "kiln/autograd/tensor.h"

namespace kiln::data {

/// One item, or one batch after collation. `target` and `mask` may be undefined.
struct Example {
  Tensor data;
  Tensor target;
  Tensor mask;  // set by pad_collate: 1 for real positions, 0 for padding, (B, L) int64
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  /// Item i in [0, size()). Must be safe to call from several threads at once.
  virtual Example get(int64_t i) const = 0;
};
using DatasetPtr = std::shared_ptr<const Dataset>;

/// Rows of `data` (N, *) with rows of `target` (N, *) (target may be undefined).
class TensorDataset : public Dataset {
 public:
  TensorDataset(Tensor data, Tensor target = {});
  int64_t size() const override { return n_; }
  Example get(int64_t i) const override;

 private:
  Tensor data_, target_;
  int64_t n_;
};

/// Items ds[indices[k]].
DatasetPtr subset(DatasetPtr ds, std::vector<int64_t> indices);
/// ds followed by more data sets.
DatasetPtr concat(std::vector<DatasetPtr> parts);
/// fn applied to each item when it is read (fn must be thread-safe; draw randomness from the
/// index).
DatasetPtr map(DatasetPtr ds, std::function<Example(Example, int64_t index)> fn);
/// The items for which keep(item) is true (evaluated once, eagerly, in order).
DatasetPtr filter(DatasetPtr ds, const std::function<bool(const Example&)>& keep);

}  // namespace kiln::data
