// Seeded random numbers for every layer: the SplitMix64 mix, unbiased bounded draws, a partial Fisher–Yates
// shuffle and two engines with the same draws. Nothing here uses <random>'s distributions (which differ
// between standard libraries), so a seed gives the same numbers with any compiler; std::mt19937_64, whose
// sequence the standard fixes, works with the free functions too.
//
// Every sequence is part of a result (golden tests, reproducible sweeps, synthetic datasets): a change to any
// function here changes outputs and needs new golden numbers.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <utility>
#include <vector>

namespace e2e {

inline constexpr uint64_t kGoldenGamma =
    0x9e3779b97f4a7c15ULL;  // 2^64 / golden ratio: SplitMix64's increment

// SplitMix64 finalizer: a bijective 64-bit mix with good avalanche.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// A sequence of integers mixed into one seed.
inline uint64_t mix_seed(std::initializer_list<uint64_t> parts) {
  uint64_t state = kGoldenGamma;
  for (uint64_t part : parts) {
    state ^= part + kGoldenGamma + (state << 6) + (state >> 2);
    state = mix64(state += kGoldenGamma);
  }
  return state;
}

// [0, 1) from the top 53 bits.
inline double unit_interval(uint64_t bits) {
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

// Unbiased integer in [0, n), n > 0, by rejection (no modulo bias). `gen` is any 64-bit generator.
template <typename Generator>
uint64_t draw_below(Generator& gen, uint64_t n) {
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n: the draws below it would favour small values
  while (true) {
    const uint64_t r = gen();
    if (r >= threshold) return r % n;
  }
}

// The first `count` entries of `items` become a uniformly random subset in random order (partial
// Fisher–Yates).
template <typename T, typename Generator>
void choose_prefix(std::vector<T>& items, std::size_t count, Generator& gen) {
  for (std::size_t i = 0; i < count && i + 1 < items.size(); ++i) {
    const std::size_t j = i + draw_below(gen, items.size() - i);
    std::swap(items[i], items[j]);
  }
}

// The draws both engines offer; `Engine` provides next_u64(). Also a UniformRandomBitGenerator.
template <typename Engine>
class RandomDraws {
 public:
  using result_type = uint64_t;
  static constexpr uint64_t min() { return 0; }
  static constexpr uint64_t max() { return std::numeric_limits<uint64_t>::max(); }
  uint64_t operator()() { return engine().next_u64(); }

  double uniform() { return unit_interval(engine().next_u64()); }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  bool chance(double probability) { return uniform() < probability; }
  uint64_t below(uint64_t n) { return draw_below(*this, n); }  // [0, n); n > 0
  // Unbiased integer in [lo, hi] (inclusive); lo <= hi.
  int64_t between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
  }

  // Standard normal pair by Box–Muller (two uniform draws); normal() is the pair's first value.
  std::array<double, 2> normal_pair() {
    const double radius = std::sqrt(-2.0 * std::log(1.0 - uniform()));  // 1 − u ∈ (0, 1]
    const double angle = 6.283185307179586 * uniform();
    return {radius * std::cos(angle), radius * std::sin(angle)};
  }
  double normal() {
    const double radius = std::sqrt(-2.0 * std::log(1.0 - uniform()));
    return radius * std::cos(6.283185307179586 * uniform());
  }

 private:
  Engine& engine() { return static_cast<Engine&>(*this); }
};

// SplitMix64: one 64-bit word of state, each draw the mix of the next multiple of the golden gamma.
class SplitMix64 : public RandomDraws<SplitMix64> {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next_u64() { return mix64(state_ += kGoldenGamma); }

 private:
  uint64_t state_;
};

// xoshiro256** seeded through SplitMix64: the general-purpose engine.
class Rng : public RandomDraws<Rng> {
 public:
  explicit Rng(uint64_t seed) {
    SplitMix64 seeder(seed);
    for (auto& word : state_) word = seeder.next_u64();
  }

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

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<uint64_t, 4> state_{};
};

}  // namespace e2e
