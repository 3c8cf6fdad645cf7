// Small synthetic preprocessed cases for the sampler, augmentation and loader tests.
#pragma once

#include <cmath>
#include <memory>
#include <set>
#include <string>

#include "data/case_source.hpp"
#include "data/random.hpp"

namespace e2e::testing {

// A smooth random-looking image and a label with a ball of class 1, a box of class `box_class` and an ignore
// (−1) slab at z = 0. Every foreground voxel is stored as a foreground location.
inline std::shared_ptr<PreprocessedCase> make_case(const std::string& id, const Shape3& shape,
                                                   int64_t channels = 1, uint64_t seed = 1,
                                                   int16_t box_class = 2) {
  auto c = std::make_shared<PreprocessedCase>();
  c->id = id;
  c->image = MultiVolume<float>(channels, shape);
  c->label = Volume<int16_t>(shape);
  Rng rng(seed);
  for (int64_t ch = 0; ch < channels; ++ch) {
    const double phase = rng.uniform(0.0, 6.0);
    float* image = c->image.channel(ch);
    for (int64_t i = 0; i < voxel_count(shape); ++i) {
      const int64_t z = i / (shape[1] * shape[2]), y = (i / shape[2]) % shape[1], x = i % shape[2];
      image[i] = static_cast<float>(std::sin(0.3 * z + phase) + std::cos(0.2 * y) * std::sin(0.25 * x) +
                                    0.1 * rng.uniform());
    }
  }
  std::vector<std::array<int32_t, 3>> ball, box;
  for (int64_t z = 0; z < shape[0]; ++z) {
    for (int64_t y = 0; y < shape[1]; ++y) {
      for (int64_t x = 0; x < shape[2]; ++x) {
        const double dz = z - shape[0] * 0.4, dy = y - shape[1] * 0.5, dx = x - shape[2] * 0.5;
        int16_t& l = c->label.at(z, y, x);
        if (z == 0) {
          l = -1;
        } else if (dz * dz + dy * dy + dx * dx < 0.04 * shape[1] * shape[2]) {
          l = 1;
          ball.push_back({int32_t(z), int32_t(y), int32_t(x)});
        } else if (z > shape[0] * 0.7 && y < shape[1] / 4 && x < shape[2] / 4) {
          l = box_class;
          box.push_back({int32_t(z), int32_t(y), int32_t(x)});
        }
      }
    }
  }
  c->foreground = {{1, ball}, {box_class, box}};
  return c;
}

// A case whose only foreground is one voxel of class 1 at `voxel` (stored as its foreground location).
inline std::shared_ptr<PreprocessedCase> make_single_voxel_case(const std::string& id, const Shape3& shape,
                                                                const std::array<int32_t, 3>& voxel) {
  auto c = std::make_shared<PreprocessedCase>();
  c->id = id;
  c->image = MultiVolume<float>(1, shape, {1.0, 1.0, 1.0}, 0.5f);
  c->label = Volume<int16_t>(shape);
  c->label.at(voxel[0], voxel[1], voxel[2]) = 1;
  c->image.voxels[c->label.index(voxel[0], voxel[1], voxel[2])] = 7.0f;
  c->foreground = {{1, {voxel}}};
  return c;
}

inline std::set<int16_t> label_values(const int16_t* label, int64_t n) {
  return std::set<int16_t>(label, label + n);
}

}  // namespace e2e::testing
