#include "metrics/distance_transform.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace e2e {
namespace {

std::vector<double> brute_force(const std::vector<uint8_t>& seeds, const Shape3& s, const Spacing3& sp) {
  std::vector<double> out(seeds.size(), std::numeric_limits<double>::infinity());
  for (int64_t i = 0; i < voxel_count(s); ++i) {
    const int64_t z = i / (s[1] * s[2]), y = (i / s[2]) % s[1], x = i % s[2];
    for (int64_t j = 0; j < voxel_count(s); ++j) {
      if (!seeds[j]) continue;
      const double dz = (z - j / (s[1] * s[2])) * sp[0];
      const double dy = (y - (j / s[2]) % s[1]) * sp[1];
      const double dx = (x - j % s[2]) * sp[2];
      out[i] = std::min(out[i], dz * dz + dy * dy + dx * dx);
    }
  }
  return out;
}

TEST(DistanceTransformTest, MatchesBruteForceOnRandomSeedsWithAnisotropicSpacing) {
  const Shape3 shape{7, 9, 11};
  const Spacing3 spacing{2.5, 0.7, 1.3};
  std::mt19937 rng(7);
  for (double density : {0.01, 0.05, 0.3}) {
    std::bernoulli_distribution seed(density);
    std::vector<uint8_t> seeds(static_cast<std::size_t>(voxel_count(shape)));
    for (auto& s : seeds) s = seed(rng);
    seeds[17] = 1;
    const std::vector<double> expected = brute_force(seeds, shape, spacing);
    const std::vector<double> actual = squared_distance_to_seeds(seeds, shape, spacing);
    for (std::size_t i = 0; i < seeds.size(); ++i) {
      ASSERT_NEAR(actual[i], expected[i], 1e-9 * (1 + expected[i])) << "density " << density << " at " << i;
    }
  }
}

TEST(DistanceTransformTest, SingleSeedGivesEuclideanDistanceInMillimetres) {
  const Shape3 shape{4, 5, 6};
  std::vector<uint8_t> seeds(static_cast<std::size_t>(voxel_count(shape)), 0);
  seeds[0] = 1;
  const auto d = squared_distance_to_seeds(seeds, shape, {3.0, 2.0, 1.0});
  EXPECT_DOUBLE_EQ(d[(3 * 5 + 4) * 6 + 5], 9.0 * 9 + 8.0 * 8 + 5.0 * 5);
  EXPECT_DOUBLE_EQ(d[1], 1.0);   // one step along axis 2 (1 mm)
  EXPECT_DOUBLE_EQ(d[6], 4.0);   // one step along axis 1 (2 mm)
  EXPECT_DOUBLE_EQ(d[30], 9.0);  // one step along axis 0 (3 mm)
}

TEST(DistanceTransformTest, NoSeedsLeavesEverythingInfinite) {
  const Shape3 shape{3, 3, 3};
  const auto d = squared_distance_to_seeds(std::vector<uint8_t>(27, 0), shape, {1.0, 1.0, 1.0});
  for (double v : d) EXPECT_TRUE(std::isinf(v));
}

}  // namespace
}  // namespace e2e
