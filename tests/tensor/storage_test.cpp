// The storage block cache: freed large blocks come back for the next allocation of that size,
// stay under the byte limit, and are off under AddressSanitizer (so ASan sees every free).
#include <gtest/gtest.h>

#include <memory>

#include "kiln/tensor/memory.h"
#include "kiln/tensor/storage.h"

namespace kiln {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

TEST(StorageCache, ReusesAFreedBlockOfTheSameSize) {
  empty_storage_cache();
  void* first = nullptr;
  {
    Storage s(3 * kMiB);
    first = s.data();
    static_cast<char*>(s.data())[3 * kMiB - 1] = 1;  // the whole block is writable
  }
  if (!storage_cache_enabled()) {
    EXPECT_EQ(storage_cache_bytes(), 0u);  // ASan build: freed at once
    return;
  }
  EXPECT_EQ(storage_cache_bytes(), 3 * kMiB);
  Storage again(3 * kMiB - 100);  // rounds up to the same page-multiple size
  EXPECT_EQ(again.data(), first);
  EXPECT_EQ(storage_cache_bytes(), 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(again.data()) % 64, 0u);
}

// Blocks are cached by size class (four per power of two): a batch padded to a different length
// reuses the block an earlier, slightly larger or smaller batch freed, as long as both fall in one
// class (2.5 MiB < size <= 3 MiB here), and a request of the next class does not take it.
TEST(StorageCache, ABlockServesEverySizeOfItsClass) {
  empty_storage_cache();
  if (!storage_cache_enabled()) {  // ASan build: every block is freed at once, none is cached
    { Storage s(3 * kMiB - 300 * 1024); }
    EXPECT_EQ(storage_cache_bytes(), 0u);
    return;
  }
  void* first = nullptr;
  {
    Storage s(3 * kMiB - 300 * 1024);  // 2.71 MiB: the 3 MiB class
    first = s.data();
    static_cast<char*>(s.data())[3 * kMiB - 300 * 1024 - 1] = 1;
  }
  EXPECT_EQ(storage_cache_bytes(), 3 * kMiB);
  {
    Storage larger(3 * kMiB - 4096);  // the same class: the same block, all of it writable
    EXPECT_EQ(larger.data(), first);
    static_cast<char*>(larger.data())[3 * kMiB - 4097] = 1;
  }
  {
    Storage next_class(3 * kMiB + 1);  // 3.5 MiB class: a new block
    EXPECT_NE(next_class.data(), first);
    EXPECT_EQ(storage_cache_bytes(), 3 * kMiB);
  }
  EXPECT_EQ(storage_cache_bytes(), 3 * kMiB + 3 * kMiB + kMiB / 2);
  empty_storage_cache();
}

TEST(StorageCache, SmallBlocksAreNotCached) {
  empty_storage_cache();
  { Storage s(1000); }
  EXPECT_EQ(storage_cache_bytes(), 0u);
}

TEST(StorageCache, StaysUnderItsLimitAndEmpties) {
  if (!storage_cache_enabled()) {
    set_storage_cache_limit(4 * kMiB);  // a no-op without the cache
    { Storage s(2 * kMiB); }
    EXPECT_EQ(storage_cache_bytes(), 0u);
    return;
  }
  set_storage_cache_limit(4 * kMiB);
  {
    auto a = std::make_unique<Storage>(2 * kMiB);
    auto b = std::make_unique<Storage>(2 * kMiB);
    auto c = std::make_unique<Storage>(3 * kMiB);
    a.reset();
    b.reset();
    EXPECT_EQ(storage_cache_bytes(), 4 * kMiB);
    c.reset();  // evicts the 2 MiB blocks to make room
    EXPECT_EQ(storage_cache_bytes(), 3 * kMiB);
    { Storage big(5 * kMiB); }  // larger than the limit: freed, not cached
    EXPECT_LE(storage_cache_bytes(), 4 * kMiB);
  }
  empty_storage_cache();
  EXPECT_EQ(storage_cache_bytes(), 0u);
  set_storage_cache_limit(0);  // off
  { Storage s(2 * kMiB); }
  EXPECT_EQ(storage_cache_bytes(), 0u);
  set_storage_cache_limit(size_t{1024} * kMiB);
}

}  // namespace
}  // namespace kiln
