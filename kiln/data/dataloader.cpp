#include "kiln/data/dataloader.h"

#include <algorithm>

#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"

namespace kiln::data {
namespace {

// Stacks arrays of one shape S into (B, *S).
Tensor stack_rows(const std::vector<const Tensor*>& xs, const char* what) {
  const Shape& s = xs[0]->shape();
  Shape out_shape{static_cast<int64_t>(xs.size())};
  out_shape.insert(out_shape.end(), s.begin(), s.end());
  Array out(out_shape, xs[0]->dtype());
  for (size_t i = 0; i < xs.size(); ++i) {
    KILN_CHECK_SHAPE(xs[i]->shape() == s,
                     "stack_collate: {} of item {} has shape {} but item 0 has {} (use pad_collate "
                     "for sequences)",
                     what, i, xs[i]->shape(), s);
    out.select(0, static_cast<int64_t>(i)).copy_(xs[i]->data());
  }
  return Tensor(out);
}

}  // namespace

Example stack_collate(const std::vector<Example>& items) {
  KILN_CHECK(!items.empty(), "stack_collate: empty batch");
  std::vector<const Tensor*> d, t;
  for (const Example& e : items) {
    d.push_back(&e.data);
    if (e.target.defined()) t.push_back(&e.target);
  }
  Example out{stack_rows(d, "data"), {}, {}};
  if (!t.empty()) {
    KILN_CHECK(t.size() == items.size(), "stack_collate: some items have a target and some do not");
    out.target = stack_rows(t, "target");
  }
  return out;
}

Collate pad_collate(double pad_value) {
  return [pad_value](const std::vector<Example>& items) {
    KILN_CHECK(!items.empty(), "pad_collate: empty batch");
    int64_t B = static_cast<int64_t>(items.size()), L = 0;
    Shape tail(items[0].data.shape().begin() + 1, items[0].data.shape().end());
    for (const Example& e : items) {
      KILN_CHECK_SHAPE(e.data.dim() >= 1, "pad_collate: items need at least 1 dim, got {}",
                       e.data.shape());
      Shape t(e.data.shape().begin() + 1, e.data.shape().end());
      KILN_CHECK_SHAPE(t == tail,
                       "pad_collate: trailing dims differ: {} vs {} (only dim 0 may vary)",
                       e.data.shape(), items[0].data.shape());
      L = std::max(L, e.data.shape()[0]);
    }
    Shape s{B, L};
    s.insert(s.end(), tail.begin(), tail.end());
    Array out = kernels::full(s, pad_value, items[0].data.dtype());
    Array mask = kernels::zeros({B, L}, kInt64);
    for (int64_t b = 0; b < B; ++b) {
      int64_t n = items[b].data.shape()[0];
      if (n == 0) continue;
      out.select(0, b).narrow(0, 0, n).copy_(items[b].data.data());
      mask.select(0, b).narrow(0, 0, n).fill_(1);
    }
    Example ex{Tensor(out), {}, Tensor(mask)};
    std::vector<const Tensor*> t;
    for (const Example& e : items)
      if (e.target.defined()) t.push_back(&e.target);
    if (!t.empty()) ex.target = stack_rows(t, "target");
    return ex;
  };
}

DataLoader::DataLoader(DatasetPtr dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  KILN_CHECK(dataset_ != nullptr, "DataLoader: dataset is null");
  KILN_CHECK(options_.batch_size >= 1, "DataLoader: batch_size must be >= 1, got {}",
             options_.batch_size);
  KILN_CHECK(options_.prefetch >= 0, "DataLoader: prefetch must be >= 0, got {}",
             options_.prefetch);
  if (!options_.collate) options_.collate = stack_collate;
}

int64_t DataLoader::size() const {
  int64_t n = dataset_->size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> DataLoader::batch_indices(int64_t b) const {
  int64_t n = dataset_->size();
  int64_t start = b * options_.batch_size, end = std::min(n, start + options_.batch_size);
  KILN_CHECK(b >= 0 && start < n, "DataLoader: batch {} out of range ({} batches)", b, size());
  std::vector<int64_t> ix(end - start);
  if (!options_.shuffle) {
    for (int64_t i = start; i < end; ++i) ix[i - start] = i;
    return ix;
  }
  // The epoch's permutation: a counter-based Fisher–Yates seeded by (seed, epoch).
  Generator g(Generator::hash(options_.seed, static_cast<uint64_t>(epoch_)));
  Array perm = kernels::randperm(n, &g);
  std::copy(perm.data<int64_t>() + start, perm.data<int64_t>() + end, ix.begin());
  return ix;
}

Example DataLoader::load_batch(int64_t b) const {
  std::vector<int64_t> ix = batch_indices(b);
  std::vector<Example> items(ix.size());
  parallel_for(0, static_cast<int64_t>(ix.size()), 8, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) items[i] = dataset_->get(ix[i]);
  });
  return options_.collate(items);
}

DataLoader::Iterator::Iterator(const DataLoader* loader, int64_t b)
    : loader_(loader), b_(b), next_(b) {}

void DataLoader::Iterator::fill() {
  int64_t ahead = std::max(1, loader_->options_.prefetch);
  while (next_ < loader_->size() && static_cast<int64_t>(pending_.size()) < ahead) {
    auto slot = std::make_shared<Example>();
    int64_t b = next_++;
    const DataLoader* l = loader_;
    std::shared_ptr<AsyncTask> task;
    if (loader_->options_.prefetch > 0) {
      task = std::make_shared<AsyncTask>([slot, l, b] { *slot = l->load_batch(b); });
    } else {
      *slot = l->load_batch(b);
    }
    pending_.emplace_back(slot, task);
  }
}

const Example& DataLoader::Iterator::operator*() {
  if (!have_current_) {
    fill();
    KILN_CHECK(!pending_.empty(), "DataLoader: iterator dereferenced past the end");
    auto [slot, task] = pending_.front();
    pending_.pop_front();
    if (task) task->wait();
    current_ = std::move(*slot);
    have_current_ = true;
    fill();  // keep the pipeline full while the caller trains on this batch
  }
  return current_;
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  if (!have_current_) **this;  // consume the batch even if it was never read
  have_current_ = false;
  ++b_;
  return *this;
}

}  // namespace kiln::data
