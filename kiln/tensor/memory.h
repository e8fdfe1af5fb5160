#pragma once
// Storage's block cache. Freed blocks of 64 KiB and more are kept, by size, for the next
// allocation of the same size: a training step allocates the same activation and gradient sizes
// every step, and fresh pages from the OS cost a page fault (and zeroing) per 4 KiB — more than an
// elementwise kernel spends writing them. The cache holds at most KILN_CACHE_MB (default 1024) MiB
// and releases other blocks first when full; KILN_CACHE_MB=0 turns it off. It is always off in
// AddressSanitizer builds, so every free stays visible to ASan.
//
//   kiln::empty_storage_cache();                  // give cached memory back to the system
//   kiln::set_storage_cache_limit(256 << 20);     // at most 256 MiB cached (0 = off)
#include <cstddef>

namespace kiln {

/// False in AddressSanitizer builds.
bool storage_cache_enabled();
/// Bytes held in the cache (not in use by any Storage).
size_t storage_cache_bytes();
/// Returns every cached block to the system allocator.
void empty_storage_cache();
/// Sets the cache's byte limit (0 = off) and empties it.
void set_storage_cache_limit(size_t bytes);

}  // namespace kiln
