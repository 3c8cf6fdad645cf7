// Plain 3D/4D voxel buffers shared by data/, metrics and the worker (which wraps them with torch::from_blob).
// Axis order is (D, H, W) = (z, y, x) with x fastest — the same memory order as a NIfTI file's (i, j, k), so
// reading and writing never transposes. Spacings are in mm in the same (z, y, x) order.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "configs/config.hpp"

namespace e2e {

using Shape3 = Int3;                     // (D, H, W)
using Spacing3 = std::array<double, 3>;  // mm, (z, y, x)

inline int64_t voxel_count(const Shape3& s) {
  return s[0] * s[1] * s[2];
}

// A single-channel volume.
template <typename T>
struct Volume {
  Shape3 shape{0, 0, 0};
  Spacing3 spacing{1.0, 1.0, 1.0};
  std::vector<T> voxels;

  Volume() = default;
  Volume(Shape3 shape_, Spacing3 spacing_ = {1.0, 1.0, 1.0}, T fill = T{})
      : shape(shape_), spacing(spacing_), voxels(static_cast<std::size_t>(voxel_count(shape_)), fill) {}

  int64_t size() const { return static_cast<int64_t>(voxels.size()); }
  int64_t index(int64_t z, int64_t y, int64_t x) const { return (z * shape[1] + y) * shape[2] + x; }
  T& at(int64_t z, int64_t y, int64_t x) { return voxels[index(z, y, x)]; }
  const T& at(int64_t z, int64_t y, int64_t x) const { return voxels[index(z, y, x)]; }
  bool contains(int64_t z, int64_t y, int64_t x) const {
    return z >= 0 && y >= 0 && x >= 0 && z < shape[0] && y < shape[1] && x < shape[2];
  }
};

// C channels of one shape, stored channel after channel (C×D×H×W).
template <typename T>
struct MultiVolume {
  int64_t channels = 0;
  Shape3 shape{0, 0, 0};
  Spacing3 spacing{1.0, 1.0, 1.0};
  std::vector<T> voxels;

  MultiVolume() = default;
  MultiVolume(int64_t channels_, Shape3 shape_, Spacing3 spacing_ = {1.0, 1.0, 1.0}, T fill = T{})
      : channels(channels_),
        shape(shape_),
        spacing(spacing_),
        voxels(static_cast<std::size_t>(channels_ * voxel_count(shape_)), fill) {}

  int64_t channel_size() const { return voxel_count(shape); }
  T* channel(int64_t c) { return voxels.data() + c * channel_size(); }
  const T* channel(int64_t c) const { return voxels.data() + c * channel_size(); }
};

}  // namespace e2e
