#pragma once
// DataLoader: batches from a Dataset, shuffled by a seed, collated, and prefetched on oneTBB
// workers so loading overlaps training. The order depends only on (seed, epoch), never on thread
// count.
//
//   data::DataLoader loader(ds, {.batch_size = 64, .shuffle = true, .seed = 1});
//   for (int epoch = 0; epoch < 5; ++epoch) {
//     loader.set_epoch(epoch);
//     for (const data::Example& batch : loader) { /* batch.data: (64, ...), batch.target: (64, ...)
//     */ }
//   }
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "kiln/data/dataset.h"
#include "kiln/tensor/parallel.h"

namespace kiln::data {

/// Turns a list of items into one batch.
using Collate = std::function<Example(const std::vector<Example>&)>;

/// Stacks items' data (and targets) along a new leading dim; all items must share a shape.
Example stack_collate(const std::vector<Example>& items);
/// For variable-length sequences (L_i, *): pads dim 0 to the longest with `pad_value`, stacks to
/// (B, L_max, *), and sets mask (B, L_max) int64 (1 = real token). Targets are stacked.
Collate pad_collate(double pad_value = 0.0);

struct DataLoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = false;
  uint64_t seed = 0;
  bool drop_last = false;
  /// Batches prepared ahead on background workers (0 = load on demand, in the calling thread).
  int prefetch = 2;
  Collate collate = stack_collate;
};

class DataLoader {
 public:
  DataLoader(DatasetPtr dataset, DataLoaderOptions options = {});
  /// Batches per epoch.
  int64_t size() const;
  /// Selects the epoch whose shuffled order the next iteration uses (order = f(seed, epoch)).
  void set_epoch(int64_t epoch) { epoch_ = epoch; }
  /// Item indices of batch b in the current epoch's order.
  std::vector<int64_t> batch_indices(int64_t b) const;
  /// Loads batch b synchronously.
  Example load_batch(int64_t b) const;

  class Iterator {
   public:
    Iterator(const DataLoader* loader, int64_t b);
    const Example& operator*();
    const Example* operator->() { return &**this; }
    Iterator& operator++();
    bool operator!=(const Iterator& o) const { return b_ != o.b_; }

   private:
    void fill();
    const DataLoader* loader_;
    int64_t b_;
    int64_t next_ = 0;  // next batch to schedule
    std::deque<std::pair<std::shared_ptr<Example>, std::shared_ptr<AsyncTask>>> pending_;
    Example current_;
    bool have_current_ = false;
  };
  Iterator begin() const { return Iterator(this, 0); }
  Iterator end() const { return Iterator(this, size()); }

  const DatasetPtr& dataset() const { return dataset_; }
  const DataLoaderOptions& options() const { return options_; }

 private:
  DatasetPtr dataset_;
  DataLoaderOptions options_;
  int64_t epoch_ = 0;
};

}  // namespace kiln::data
