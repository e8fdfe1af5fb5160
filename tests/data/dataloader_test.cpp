// DataLoader: batching, seeded shuffles independent of thread count, collation, prefetch, errors.
#include <gtest/gtest.h>

#include <set>

#include "kiln/autograd/functions.h"
#include "kiln/data/dataloader.h"
#include "kiln/tensor/parallel.h"
#include "test_support.h"

namespace kiln::data {
namespace {

std::shared_ptr<TensorDataset> numbers(int64_t n) {
  Tensor x = arange(0, static_cast<double>(n), 1, kFloat32).reshape({n, 1});
  Tensor y = arange(0, static_cast<double>(n), 1, kInt64);
  return std::make_shared<TensorDataset>(x, y);
}

std::vector<int64_t> epoch_order(DataLoader& loader) {
  std::vector<int64_t> order;
  for (const Example& b : loader)
    for (int64_t v : b.target.to_vector<int64_t>()) order.push_back(v);
  return order;
}

TEST(DataLoader, BatchesCoverEveryItemOnceAndRespectDropLast) {
  DataLoader loader(numbers(10), {.batch_size = 4, .shuffle = true, .seed = 3});
  EXPECT_EQ(loader.size(), 3);
  std::vector<int64_t> order = epoch_order(loader);
  EXPECT_EQ(std::set<int64_t>(order.begin(), order.end()).size(), 10u);
  DataLoader dropping(numbers(10), {.batch_size = 4, .drop_last = true});
  EXPECT_EQ(dropping.size(), 2);
  int64_t batches = 0;
  for (const Example& b : dropping) {
    EXPECT_EQ(b.data.shape(), (Shape{4, 1}));
    ++batches;
  }
  EXPECT_EQ(batches, 2);
}

TEST(DataLoader, SameSeedSameOrderAtAnyThreadCountAndPrefetch) {
  kiln::testing::ScopedNumThreads threads(1);
  DataLoader a(numbers(100), {.batch_size = 7, .shuffle = true, .seed = 11, .prefetch = 0});
  std::vector<int64_t> o1 = epoch_order(a);
  threads.set(2);
  DataLoader b(numbers(100), {.batch_size = 7, .shuffle = true, .seed = 11, .prefetch = 3});
  EXPECT_EQ(epoch_order(b), o1);
  b.set_epoch(1);
  EXPECT_NE(epoch_order(b), o1) << "each epoch reshuffles";
  DataLoader c(numbers(100), {.batch_size = 7, .shuffle = true, .seed = 12});
  EXPECT_NE(epoch_order(c), o1);
}

TEST(DataLoader, PadCollateBuildsMasks) {
  auto seqs = std::make_shared<TensorDataset>(zeros({3, 1}));  // placeholder rows, mapped below
  DatasetPtr ds = map(seqs, [](Example, int64_t i) {
    Example e;
    e.data = arange(1, static_cast<double>(i + 2), 1, kInt64);  // lengths 1, 2, 3
    e.target = scalar_tensor(static_cast<double>(i), kInt64);
    return e;
  });
  DataLoader loader(ds, {.batch_size = 3, .collate = pad_collate(0)});
  auto it = loader.begin();
  const Example& b = *it;
  EXPECT_EQ(b.data.shape(), (Shape{3, 3}));
  EXPECT_EQ(b.data.to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0, 1, 2, 0, 1, 2, 3}));
  EXPECT_EQ(b.mask.to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0, 1, 1, 0, 1, 1, 1}));
  EXPECT_EQ(b.target.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2}));
}

TEST(DataLoader, CompositionAndErrors) {
  auto ds = numbers(6);
  DatasetPtr evens = filter(ds, [](const Example& e) { return e.target.item<int64_t>() % 2 == 0; });
  EXPECT_EQ(evens->size(), 3);
  DatasetPtr both = concat({evens, subset(ds, {5})});
  EXPECT_EQ(both->size(), 4);
  EXPECT_EQ(both->get(3).target.item<int64_t>(), 5);
  EXPECT_THROW(subset(ds, {6}), Error);
  EXPECT_THROW(TensorDataset(zeros({3, 2}), zeros({4})), ShapeError);
  DatasetPtr ragged = map(ds, [](Example e, int64_t i) {
    e.data = zeros({i + 1});
    return e;
  });
  DataLoader bad(ragged, {.batch_size = 2});
  EXPECT_THROW(*bad.begin(), ShapeError);
}

}  // namespace
}  // namespace kiln::data
