#include "kiln/data/dataset.h"

#include <algorithm>

#include "kiln/tensor/error.h"

namespace kiln::data {

TensorDataset::TensorDataset(Tensor data, Tensor target)
    : data_(std::move(data)), target_(std::move(target)) {
  KILN_CHECK_SHAPE(data_.defined() && data_.dim() >= 1,
                   "TensorDataset: data must have at least 1 dim");
  n_ = data_.shape()[0];
  KILN_CHECK_SHAPE(
      !target_.defined() || (target_.dim() >= 1 && target_.shape()[0] == n_),
      "TensorDataset: data has {} rows but target has {} (shapes {} and {}; dim 0 must match)", n_,
      target_.defined() && target_.dim() ? target_.shape()[0] : 0, data_.shape(),
      target_.defined() ? target_.shape() : Shape{});
}

Example TensorDataset::get(int64_t i) const {
  KILN_CHECK(i >= 0 && i < n_, "TensorDataset: index {} out of range for {} items", i, n_);
  Example e{Tensor(data_.data().select(0, i)), {}, {}};
  if (target_.defined()) e.target = Tensor(target_.data().select(0, i));
  return e;
}

namespace {

class Subset : public Dataset {
 public:
  Subset(DatasetPtr ds, std::vector<int64_t> ix) : ds_(std::move(ds)), ix_(std::move(ix)) {
    for (int64_t i : ix_)
      KILN_CHECK(i >= 0 && i < ds_->size(),
                 "subset: index {} out of range for a data set of {} items", i, ds_->size());
  }
  int64_t size() const override { return static_cast<int64_t>(ix_.size()); }
  Example get(int64_t i) const override {
    KILN_CHECK(i >= 0 && i < size(), "subset: index {} out of range for {} items", i, size());
    return ds_->get(ix_[i]);
  }

 private:
  DatasetPtr ds_;
  std::vector<int64_t> ix_;
};

class Concat : public Dataset {
 public:
  explicit Concat(std::vector<DatasetPtr> parts) : parts_(std::move(parts)) {
    int64_t acc = 0;
    for (auto& p : parts_) {
      starts_.push_back(acc);
      acc += p->size();
    }
    n_ = acc;
  }
  int64_t size() const override { return n_; }
  Example get(int64_t i) const override {
    KILN_CHECK(i >= 0 && i < n_, "concat: index {} out of range for {} items", i, n_);
    size_t k = std::upper_bound(starts_.begin(), starts_.end(), i) - starts_.begin() - 1;
    return parts_[k]->get(i - starts_[k]);
  }

 private:
  std::vector<DatasetPtr> parts_;
  std::vector<int64_t> starts_;
  int64_t n_ = 0;
};

class Mapped : public Dataset {
 public:
  Mapped(DatasetPtr ds, std::function<Example(Example, int64_t)> fn)
      : ds_(std::move(ds)), fn_(std::move(fn)) {}
  int64_t size() const override { return ds_->size(); }
  Example get(int64_t i) const override { return fn_(ds_->get(i), i); }

 private:
  DatasetPtr ds_;
  std::function<Example(Example, int64_t)> fn_;
};

}  // namespace

DatasetPtr subset(DatasetPtr ds, std::vector<int64_t> indices) {
  return std::make_shared<Subset>(std::move(ds), std::move(indices));
}
DatasetPtr concat(std::vector<DatasetPtr> parts) {
  return std::make_shared<Concat>(std::move(parts));
}
DatasetPtr map(DatasetPtr ds, std::function<Example(Example, int64_t)> fn) {
  return std::make_shared<Mapped>(std::move(ds), std::move(fn));
}
DatasetPtr filter(DatasetPtr ds, const std::function<bool(const Example&)>& keep) {
  std::vector<int64_t> ix;
  for (int64_t i = 0; i < ds->size(); ++i)
    if (keep(ds->get(i))) ix.push_back(i);
  return subset(std::move(ds), std::move(ix));
}

}  // namespace kiln::data
