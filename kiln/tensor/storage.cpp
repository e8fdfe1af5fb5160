#include "kiln/tensor/storage.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "kiln/tensor/memory.h"

// AddressSanitizer must see every free: a reused block would hide use-after-free bugs.
#if defined(__SANITIZE_ADDRESS__)
#define KILN_STORAGE_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KILN_STORAGE_CACHE 0
#endif
#endif
#ifndef KILN_STORAGE_CACHE
#define KILN_STORAGE_CACHE 1
#endif

namespace kiln {
namespace {
std::atomic<size_t> g_in_use{0};
std::atomic<size_t> g_peak{0};
constexpr size_t kAlign = 64;
constexpr size_t kPage = 4096;

// Freed blocks of kMinCached bytes and more, kept by size class for the next allocation of it.
// A training step allocates the same activation and gradient sizes every step; without reuse each
// large block comes back from the OS as fresh pages (a page fault per 4 KiB, plus zeroing), which
// costs more than the elementwise kernel writing it. Bounded by a byte limit (KILN_CACHE_MB,
// default 1024; 0 turns the cache off); on overflow other cached blocks are released first.
class BlockCache {
 public:
  static constexpr size_t kMinCached = size_t{64} << 10;

  BlockCache() {
    const char* env = std::getenv("KILN_CACHE_MB");
    limit_ = (env ? std::stoull(env) : size_t{1024}) << 20;
  }
  void* take(size_t rounded) {
    std::lock_guard<std::mutex> lock(m_);
    auto it = free_.find(rounded);
    if (it == free_.end() || it->second.empty()) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    cached_ -= rounded;
    return p;
  }
  // Keeps `p` for reuse; false when the block does not fit under the limit even after releasing
  // every other cached block (the caller frees it).
  bool give(void* p, size_t rounded) {
    std::lock_guard<std::mutex> lock(m_);
    if (rounded > limit_) return false;
    for (auto it = free_.begin(); cached_ + rounded > limit_ && it != free_.end(); ++it) {
      while (!it->second.empty() && cached_ + rounded > limit_) {
        std::free(it->second.back());
        it->second.pop_back();
        cached_ -= it->first;
      }
    }
    free_[rounded].push_back(p);
    cached_ += rounded;
    return true;
  }
  void release_all() {
    std::lock_guard<std::mutex> lock(m_);
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    cached_ = 0;
  }
  void set_limit(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(m_);
      limit_ = bytes;
    }
    release_all();
  }
  size_t cached() {
    std::lock_guard<std::mutex> lock(m_);
    return cached_;
  }

 private:
  std::mutex m_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
  size_t limit_ = 0;
};

// Never destroyed: Storage objects held in statics may be freed after main returns.
BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache();
  return *cache;
}

// Cached blocks come in size classes, four per power of two (2^k · 1, 1.25, 1.5, 1.75): a block
// serves any request of its class, so batches whose sizes vary from step to step (text padded to
// each batch's longest row) reuse the blocks of earlier steps. Exact sizes did not: every new
// sequence length missed, took fresh pages from the OS and pushed the cache to its limit, and a
// fine-tuning step at a new length took 300–460 ms instead of ~100 ms. At most 25 % of a cached
// block is unused.
size_t size_class(size_t bytes) {
  size_t pow2 = BlockCache::kMinCached;
  while (pow2 * 2 <= bytes) pow2 *= 2;
  const size_t quarter = pow2 / 4;
  return (bytes + quarter - 1) / quarter * quarter;
}

size_t rounded_size(size_t nbytes) {
  size_t rounded = (nbytes + kAlign - 1) / kAlign * kAlign;
  if (rounded == 0) rounded = kAlign;
  if (KILN_STORAGE_CACHE && rounded >= BlockCache::kMinCached) {
    rounded = size_class((rounded + kPage - 1) / kPage * kPage);
  }
  return rounded;
}
}  // namespace

Storage::Storage(size_t nbytes) : nbytes_(nbytes) {
  const size_t rounded = rounded_size(nbytes);
  if (KILN_STORAGE_CACHE && rounded >= BlockCache::kMinCached) data_ = block_cache().take(rounded);
  if (!data_) data_ = std::aligned_alloc(kAlign, rounded);
  if (!data_ && KILN_STORAGE_CACHE) {  // out of memory: give the cached blocks back and retry
    block_cache().release_all();
    data_ = std::aligned_alloc(kAlign, rounded);
  }
  if (!data_) throw std::bad_alloc();
  size_t now = g_in_use.fetch_add(nbytes, std::memory_order_relaxed) + nbytes;
  size_t peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

Storage::~Storage() {
  const size_t rounded = rounded_size(nbytes_);
  if (!(KILN_STORAGE_CACHE && rounded >= BlockCache::kMinCached &&
        block_cache().give(data_, rounded)))
    std::free(data_);
  g_in_use.fetch_sub(nbytes_, std::memory_order_relaxed);
}

size_t storage_bytes_in_use() {
  return g_in_use.load();
}
size_t storage_peak_bytes() {
  return g_peak.load();
}
void reset_storage_peak() {
  g_peak.store(g_in_use.load());
}

bool storage_cache_enabled() {
  return KILN_STORAGE_CACHE != 0;
}
size_t storage_cache_bytes() {
  return KILN_STORAGE_CACHE ? block_cache().cached() : 0;
}
void empty_storage_cache() {
  if (KILN_STORAGE_CACHE) block_cache().release_all();
}
void set_storage_cache_limit(size_t bytes) {
  if (KILN_STORAGE_CACHE) block_cache().set_limit(bytes);
}

}  // namespace kiln
