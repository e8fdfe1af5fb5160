#pragma once
// Ref-counted, 64-byte-aligned memory shared by an array and all its views.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace kiln {

class Storage {
 public:
  /// Allocates `nbytes` (rounded up to 64) aligned to 64 bytes; contents uninitialised.
  explicit Storage(size_t nbytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  /// Bumped by every in-place write; autograd compares it with the value it saved.
  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  std::atomic<uint64_t> version_{0};
};

/// Bytes currently held by all Storage objects, and the high-water mark (for memory benchmarks).
size_t storage_bytes_in_use();
size_t storage_peak_bytes();
void reset_storage_peak();

}  // namespace kiln
