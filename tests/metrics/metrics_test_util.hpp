// Mask builders and tolerance helpers shared by the metrics tests.
#pragma once

#include <gtest/gtest.h>

#include <cmath>

#include "metrics/mask.hpp"

namespace e2e::testing {

// Voxel i is inside iff Σ((i_d − c_d)·s_d / r_d)² ≤ 1 (radii in mm).
inline Mask ellipsoid(const Shape3& shape, const Spacing3& spacing, const std::array<double, 3>& centre,
                      const std::array<double, 3>& radii_mm) {
  Mask mask(shape, spacing);
  for (int64_t z = 0; z < shape[0]; ++z) {
    for (int64_t y = 0; y < shape[1]; ++y) {
      for (int64_t x = 0; x < shape[2]; ++x) {
        const double dz = (z - centre[0]) * spacing[0] / radii_mm[0];
        const double dy = (y - centre[1]) * spacing[1] / radii_mm[1];
        const double dx = (x - centre[2]) * spacing[2] / radii_mm[2];
        mask.at(z, y, x) = dz * dz + dy * dy + dx * dx <= 1.0;
      }
    }
  }
  return mask;
}

inline Mask ball(const Shape3& shape, const Spacing3& spacing, const std::array<double, 3>& centre,
                 double radius_mm) {
  return ellipsoid(shape, spacing, centre, {radius_mm, radius_mm, radius_mm});
}

// Voxels [lo, hi) set.
inline Mask box_mask(const Shape3& shape, const Spacing3& spacing, const Int3& lo, const Int3& hi) {
  Mask mask(shape, spacing);
  for (int64_t z = lo[0]; z < hi[0]; ++z) {
    for (int64_t y = lo[1]; y < hi[1]; ++y) {
      for (int64_t x = lo[2]; x < hi[2]; ++x) mask.at(z, y, x) = 1;
    }
  }
  return mask;
}

// |actual − expected| ≤ relative·|expected| (or ≤ relative when expected is 0).
inline ::testing::AssertionResult near_relative(double actual, double expected, double relative = 1e-6) {
  const double allowed = expected == 0.0 ? relative : relative * std::abs(expected);
  if (std::abs(actual - expected) <= allowed) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "actual " << actual << " vs expected " << expected << " (relative " << relative << ")";
}

}  // namespace e2e::testing
