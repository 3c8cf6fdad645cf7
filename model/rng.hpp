// Deterministic random draws that do not depend on the standard library's distributions (which differ
// between implementations): every stream is derived from a tuple of integers.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <random>
#include <vector>

namespace e2e {

// SplitMix64 mixing of a sequence of integers into one seed.
inline uint64_t mix_seed(std::initializer_list<uint64_t> parts) {
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (uint64_t part : parts) {
    state ^= part + 0x9E3779B97F4A7C15ull + (state << 6) + (state >> 2);
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    state = z ^ (z >> 31);
  }
  return state;
}

// Uniform integer in [0, bound) by rejection (no modulo bias).
inline uint64_t uniform_below(std::mt19937_64& gen, uint64_t bound) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t value;
  do value = gen();
  while (value >= limit);
  return value % bound;
}

// The first `count` entries of `items` become a uniformly random subset (partial Fisher–Yates).
template <typename T>
void choose_prefix(std::vector<T>& items, std::size_t count, std::mt19937_64& gen) {
  for (std::size_t i = 0; i < count && i + 1 < items.size(); ++i) {
    const std::size_t j = i + uniform_below(gen, items.size() - i);
    std::swap(items[i], items[j]);
  }
}

}  // namespace e2e
