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
