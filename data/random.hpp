// Deterministic random numbers for the data pipeline.
//
// No sample ever draws from a shared sequential generator. Each random decision of a sample comes from a
// generator keyed by (seed, domain, iteration, global sample index, stream), so a batch is a pure function of
// its key: the number of loader threads, their scheduling and the split of a global batch over data-parallel
// ranks cannot change it. The rank enters through the global sample index (rank r's local sample j is sample
// rank_slice(B, r, R).begin + j of the global batch), which is what makes the ranks' slices add up to exactly
// the batch a single rank would draw. Each augmentation has its own stream, so changing one transform's
// draws never shifts another's.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

namespace e2e {

// What one sample's random draws are keyed by.
struct DrawKey {
  uint64_t seed = 0;
  uint64_t domain = 0;  // 0 = training, 1 = validation: the two never share draws
  int64_t iteration = 0;
  int64_t sample = 0;  // index in the GLOBAL batch
};

// One independent stream per kind of decision.
enum class DrawStream : uint64_t {
  kCase = 1,
  kPlacement,
  kSpatial,
  kNoise,
  kNoiseValues,
  kBlur,
  kBrightness,
  kContrast,
  kLowResolution,
  kInvertedGamma,
  kGamma,
  kMirror,
  kElastic,        // device augmentation: whether and how strongly (AugmentDraw)
  kElasticValues,  // device augmentation: seed of the displacement noise
};

// SplitMix64 finalizer: a bijective 64-bit mix with good avalanche.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

inline uint64_t hash_combine(uint64_t hash, uint64_t value) {
  return mix64(hash + 0x9e3779b97f4a7c15ULL + mix64(value));
}

inline uint64_t draw_seed(const DrawKey& key, DrawStream stream) {
  uint64_t hash = mix64(key.seed);
  hash = hash_combine(hash, key.domain);
  hash = hash_combine(hash, static_cast<uint64_t>(key.iteration));
  hash = hash_combine(hash, static_cast<uint64_t>(key.sample));
  return hash_combine(hash, static_cast<uint64_t>(stream));
}

// xoshiro256** seeded through SplitMix64. Our own distributions (not <random>'s) keep the sequences identical
// across standard libraries.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& word : state_) {
      seed += 0x9e3779b97f4a7c15ULL;
      word = mix64(seed);
    }
  }
  Rng(const DrawKey& key, DrawStream stream) : Rng(draw_seed(key, stream)) {}

  uint64_t next_u64() {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  bool chance(double probability) { return uniform() < probability; }

  // Unbiased integer in [0, n); n > 0.
  uint64_t below(uint64_t n) {
    const uint64_t threshold = (0 - n) % n;
    while (true) {
      const uint64_t r = next_u64();
      if (r >= threshold) return r % n;
    }
  }
  // Unbiased integer in [lo, hi] (inclusive); lo <= hi.
  int64_t between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
  }

  // Standard normal pair by Box–Muller.
  std::array<double, 2> normal_pair() {
    const double radius = std::sqrt(-2.0 * std::log(1.0 - uniform()));  // 1 − u ∈ (0, 1]
    const double angle = 6.283185307179586 * uniform();
    return {radius * std::cos(angle), radius * std::sin(angle)};
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<uint64_t, 4> state_{};
};

}  // namespace e2e
