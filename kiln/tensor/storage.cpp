#include "kiln/tensor/storage.h"

#include <cstdlib>
#include <new>

namespace kiln {
namespace {
std::atomic<size_t> g_in_use{0};
std::atomic<size_t> g_peak{0};
constexpr size_t kAlign = 64;
}  // namespace

Storage::Storage(size_t nbytes) : nbytes_(nbytes) {
  size_t rounded = (nbytes + kAlign - 1) / kAlign * kAlign;
  if (rounded == 0) rounded = kAlign;
  data_ = std::aligned_alloc(kAlign, rounded);
  if (!data_) throw std::bad_alloc();
  size_t now = g_in_use.fetch_add(nbytes, std::memory_order_relaxed) + nbytes;
  size_t peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

Storage::~Storage() {
  std::free(data_);
  g_in_use.fetch_sub(nbytes_, std::memory_order_relaxed);
}

size_t storage_bytes_in_use() { return g_in_use.load(); }
size_t storage_peak_bytes() { return g_peak.load(); }
void reset_storage_peak() { g_peak.store(g_in_use.load()); }

}  // namespace kiln
