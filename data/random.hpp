// Deterministic random numbers for the data pipeline: the keys of the draws (the engine is
// common/random.hpp).
//
// No sample ever draws from a shared sequential generator. Each random decision of a sample comes from a
// generator keyed by (seed, domain, iteration, global sample index, stream), so a batch is a pure function of
// its key: the number of loader threads, their scheduling and the split of a global batch over data-parallel
// ranks cannot change it. The rank enters through the global sample index (rank r's local sample j is sample
// rank_slice(B, r, R).begin + j of the global batch), which is what makes the ranks' slices add up to exactly
// the batch a single rank would draw. Each augmentation has its own stream, so changing one transform's
// draws never shifts another's.
#pragma once

#include <cstdint>

#include "common/random.hpp"  // Rng: construct one as Rng(draw_seed(key, stream))

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

}  // namespace e2e
