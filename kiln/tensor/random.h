#pragma once
// Counter-based random numbers: element i of a draw is a hash of (seed, offset + i), so results are
// identical at any thread count and any chunking. Each draw advances the generator's offset.
#include <cstdint>
#include <mutex>

namespace kiln {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x853c49e6748fea9bULL) : seed_(seed) {}
  void manual_seed(uint64_t seed) {
    std::lock_guard<std::mutex> l(mu_);
    seed_ = seed;
    offset_ = 0;
  }
  uint64_t seed() const { return seed_; }
  /// Reserves `n` counters and returns the first (thread-safe).
  uint64_t advance(uint64_t n) {
    std::lock_guard<std::mutex> l(mu_);
    uint64_t o = offset_;
    offset_ += n;
    return o;
  }
  /// The raw 64-bit hash for counter c (splitmix64 over seed and counter).
  static uint64_t hash(uint64_t seed, uint64_t c) {
    uint64_t z = seed + (c + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// Uniform double in [0, 1) from counter c (53 random bits).
  static double uniform(uint64_t seed, uint64_t c) { return (hash(seed, c) >> 11) * 0x1.0p-53; }

 private:
  std::mutex mu_;
  uint64_t seed_;
  uint64_t offset_ = 0;
};

/// A 64-bit mix of (seed, a, b) for derived seeds: per epoch, per layer, per rank (splitmix64's
/// finaliser). Model::fit's epoch order and DistributedSampler's share it.
inline uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b = 0) {
  uint64_t z = seed ^ (a * 0x9E3779B97F4A7C15ULL) ^ (b * 0xC2B2AE3D27D4EB4FULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// The process-wide default generator (used when none is passed).
Generator& default_generator();
/// Seeds the default generator, like torch::manual_seed.
void manual_seed(uint64_t seed);

}  // namespace kiln
