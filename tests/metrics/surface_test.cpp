#include "metrics/surface.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>

#include "metrics/dice.hpp"
#include "metrics/surfel_area.hpp"
#include "metrics_test_util.hpp"

namespace e2e {
namespace {

using testing::ball;
using testing::box_mask;
using testing::near_relative;

double total_area(const std::vector<Surfel>& surfels) {
  double total = 0.0;
  for (const Surfel& s : surfels) total += s.area_mm2;
  return total;
}

// --- DeepMind's published vectors (shared/reference/metrics.md) -----------------------------------------

struct SingleVoxels : ::testing::Test {
  Mask gt = box_mask({128, 128, 128}, {3.0, 2.0, 1.0}, {50, 60, 70}, {51, 61, 71});
  Mask pred = box_mask({128, 128, 128}, {3.0, 2.0, 1.0}, {50, 60, 72}, {51, 61, 73});
};

TEST_F(SingleVoxels, MatchReferenceVectors) {
  const SurfaceDistances d = compute_surface_distances(gt, pred);
  const Directed asd = average_surface_distance(d);
  EXPECT_TRUE(near_relative(asd.gt_to_pred, 1.5));
  EXPECT_TRUE(near_relative(asd.pred_to_gt, 1.5));
  EXPECT_TRUE(near_relative(robust_hausdorff(d, 100), 2.0));
  EXPECT_TRUE(near_relative(robust_hausdorff(d, 95), 2.0));
  EXPECT_TRUE(near_relative(normalized_surface_dice(d, 1.0), 0.5));
  EXPECT_EQ(dice(gt, pred).value, 0.0);
}

TEST(SurfaceTest, TwoSlabsMatchReferenceVectors) {
  const Spacing3 spacing{2.0, 1.0, 1.0};
  const Mask gt = box_mask({100, 100, 100}, spacing, {0, 0, 0}, {50, 100, 100});
  const Mask pred = box_mask({100, 100, 100}, spacing, {0, 0, 0}, {51, 100, 100});
  const SurfaceDistances d = compute_surface_distances(gt, pred);
  const Directed asd = average_surface_distance(d);
  EXPECT_TRUE(near_relative(asd.gt_to_pred, 0.3224470727));
  EXPECT_TRUE(near_relative(asd.pred_to_gt, 0.3393962931));
  EXPECT_TRUE(near_relative(robust_hausdorff(d, 100), 2.0));
  EXPECT_TRUE(near_relative(robust_hausdorff(d, 95), 2.0));
  const Directed overlap = surface_overlap(d, 1.0);
  EXPECT_TRUE(near_relative(overlap.gt_to_pred, 0.8420663974));
  EXPECT_TRUE(near_relative(overlap.pred_to_gt, 0.8303018535));
  EXPECT_TRUE(near_relative(normalized_surface_dice(d, 1.0), 0.8361450085));
  EXPECT_TRUE(near_relative(dice(gt, pred).value, 0.9900990099));
  EXPECT_TRUE(near_relative(total_area(d.gt_to_pred), 59575.668777));
  EXPECT_EQ(d.gt_to_pred.size(), 40002u);
}

TEST(SurfaceTest, EmptyPredictionEmptyReferenceAndBothEmpty) {
  const Shape3 shape{10, 10, 10};
  const Mask one_voxel = box_mask(shape, {1, 1, 1}, {4, 4, 4}, {5, 5, 5});
  const Mask empty(shape, {1, 1, 1});

  const SurfaceDistances empty_pred = compute_surface_distances(one_voxel, empty);
  EXPECT_EQ(normalized_surface_dice(empty_pred, 1.0), 0.0);
  EXPECT_EQ(dice(one_voxel, empty).value, 0.0);
  EXPECT_TRUE(std::isinf(robust_hausdorff(empty_pred, 95)));
  EXPECT_TRUE(std::isinf(robust_hausdorff(empty_pred, 100)));
  EXPECT_TRUE(std::isinf(average_surface_distance(empty_pred).gt_to_pred));

  const SurfaceDistances empty_gt = compute_surface_distances(empty, one_voxel);
  EXPECT_EQ(normalized_surface_dice(empty_gt, 1.0), 0.0);
  EXPECT_EQ(dice(empty, one_voxel).value, 0.0);
  EXPECT_TRUE(std::isinf(robust_hausdorff(empty_gt, 95)));

  const SurfaceDistances both = compute_surface_distances(empty, empty);
  EXPECT_TRUE(std::isnan(normalized_surface_dice(both, 1.0)));
  EXPECT_TRUE(std::isnan(dice(empty, empty).value));
  EXPECT_TRUE(std::isinf(robust_hausdorff(both, 95)));

  for (const auto variant : {HausdorffVariant::pooled, HausdorffVariant::monai}) {
    EXPECT_TRUE(std::isinf(hausdorff(one_voxel, empty, 95, variant).value));
    EXPECT_TRUE(std::isinf(hausdorff(empty, one_voxel, 95, variant).value));
  }
  EXPECT_EQ(normalized_surface_dice(one_voxel, empty, 1.0, NsdVariant::monai_voxel).value, 0.0);
  EXPECT_TRUE(std::isnan(normalized_surface_dice(empty, empty, 1.0, NsdVariant::monai_voxel).value));
}

TEST(SurfaceTest, SingleVoxelSurfelArea) {
  for (const auto& [spacing, area] :
       {std::pair<Spacing3, double>{{1, 1, 1}, 1.7320508076}, std::pair<Spacing3, double>{{3, 2, 1}, 7.0}}) {
    const Mask voxel = box_mask({5, 5, 5}, spacing, {2, 2, 2}, {3, 3, 3});
    const SurfaceDistances d = compute_surface_distances(voxel, voxel);
    EXPECT_TRUE(near_relative(total_area(d.gt_to_pred), area, 1e-9));
    EXPECT_EQ(d.gt_to_pred.size(), 8u);
  }
}

TEST(SurfaceTest, CubeSurfelAreaAndCornerCount) {
  const Mask cube = box_mask({20, 20, 20}, {1, 1, 1}, {5, 5, 5}, {15, 15, 15});
  const SurfaceDistances d = compute_surface_distances(cube, cube);
  EXPECT_TRUE(near_relative(total_area(d.gt_to_pred), 564.099583175716, 1e-12));
  EXPECT_EQ(d.gt_to_pred.size(), 602u);
  EXPECT_EQ(normalized_surface_dice(d, 0.0), 1.0);
  EXPECT_EQ(robust_hausdorff(d, 100), 0.0);
}

struct Balls : ::testing::Test {
  Mask gt = ball({64, 64, 64}, {1, 1, 1}, {32, 32, 32}, 10.0);
  Mask pred = ball({64, 64, 64}, {1, 1, 1}, {32, 32, 32}, 11.0);
};

TEST_F(Balls, MatchReferenceVectors) {
  EXPECT_TRUE(near_relative(dice(gt, pred).value, 0.8557060755));
  const SurfaceDistances d = compute_surface_distances(gt, pred);
  EXPECT_TRUE(near_relative(normalized_surface_dice(d, 1.0), 0.9475800963));
  EXPECT_TRUE(near_relative(normalized_surface_dice(d, 2.0), 1.0));
  EXPECT_TRUE(near_relative(robust_hausdorff(d, 95), 1.4142135624));
  const Directed asd = average_surface_distance(d);
  EXPECT_TRUE(near_relative(asd.gt_to_pred, 0.7800889193));
  EXPECT_TRUE(near_relative(asd.pred_to_gt, 0.7722372887));
}

TEST_F(Balls, MonaiVoxelNsdIsTheNamedVariantAndLowerThanSurfels) {
  const NsdScore voxel = normalized_surface_dice(gt, pred, 1.0, NsdVariant::monai_voxel);
  EXPECT_TRUE(near_relative(voxel.value, 0.7888888889));
  EXPECT_EQ(voxel.variant, NsdVariant::monai_voxel);
  EXPECT_EQ(voxel.tolerance_mm, 1.0);
  const NsdScore surfel = normalized_surface_dice(gt, pred, 1.0);
  EXPECT_EQ(surfel.variant, NsdVariant::surfel);
  EXPECT_GT(surfel.value, voxel.value + 0.1);
}

TEST_F(Balls, OneCallFormsCarryVariantAndParameters) {
  const HausdorffScore hd = hausdorff(gt, pred, 95.0);
  EXPECT_TRUE(near_relative(hd.value, 1.4142135624));
  EXPECT_EQ(hd.variant, HausdorffVariant::surfel);
  EXPECT_EQ(hd.percentile, 95.0);
  const HausdorffScore pooled = hausdorff(gt, pred, 95.0, HausdorffVariant::pooled);
  EXPECT_EQ(pooled.variant, HausdorffVariant::pooled);
  EXPECT_EQ(to_string(pooled.variant), "pooled");
}

// --- Axis order -------------------------------------------------------------------------------------------

TEST(SurfaceTest, SwappingSpacingOrderChangesTheAnswer) {
  // Prediction shifted by two voxels along axis 2: 2 mm at spacing (3,2,1), 6 mm at (1,2,3).
  for (const auto& [spacing, shift_mm] :
       {std::pair<Spacing3, double>{{3, 2, 1}, 2.0}, std::pair<Spacing3, double>{{1, 2, 3}, 6.0}}) {
    const Mask gt = ball({40, 40, 40}, spacing, {20, 20, 20}, 15.0);
    const Mask pred = ball({40, 40, 40}, spacing, {20, 20, 22}, 15.0);
    const SurfaceDistances d = compute_surface_distances(gt, pred);
    EXPECT_TRUE(near_relative(robust_hausdorff(d, 100), shift_mm, 1e-12));
    SCOPED_TRACE(spacing[0]);
    if (spacing[0] == 3) {
      EXPECT_GT(normalized_surface_dice(d, 2.0), 0.99);
    } else {
      EXPECT_LT(normalized_surface_dice(d, 2.0), 0.9);
    }
  }
  // The same voxel arrays read with the two spacings.
  const Mask a321 = ball({40, 40, 40}, {3, 2, 1}, {20, 20, 20}, 15.0);
  Mask a123 = a321;
  a123.spacing = {1, 2, 3};
  const Mask b321 = ball({40, 40, 40}, {3, 2, 1}, {21, 19, 22}, 15.0);
  Mask b123 = b321;
  b123.spacing = {1, 2, 3};
  const SurfaceDistances d321 = compute_surface_distances(a321, b321);
  const SurfaceDistances d123 = compute_surface_distances(a123, b123);
  EXPECT_GT(std::abs(total_area(d321.gt_to_pred) - total_area(d123.gt_to_pred)), 1.0);
  EXPECT_NE(normalized_surface_dice(d321, 1.0), normalized_surface_dice(d123, 1.0));
  EXPECT_NE(average_surface_distance(d321).gt_to_pred, average_surface_distance(d123).gt_to_pred);
}

// --- Cross-checks against direct definitions on small random masks -----------------------------------------

Mask random_mask(const Shape3& shape, const Spacing3& spacing, double density, std::mt19937& rng) {
  Mask mask(shape, spacing);
  std::bernoulli_distribution inside(density);
  // A random blob in the middle, so that crops and borders are exercised.
  for (int64_t z = 1; z < shape[0] - 1; ++z) {
    for (int64_t y = 0; y < shape[1] - 2; ++y) {
      for (int64_t x = 2; x < shape[2]; ++x) mask.at(z, y, x) = inside(rng);
    }
  }
  return mask;
}

std::vector<Surfel> direct_surfels(const Mask& from, const Mask& to) {
  const Shape3 c{from.shape[0] + 1, from.shape[1] + 1, from.shape[2] + 1};
  const auto areas = surfel_area_table(from.spacing);
  const auto code_at = [&](const Mask& m, int64_t i, int64_t j, int64_t k) {
    int code = 0;
    for (int bit = 0; bit < 8; ++bit) {  // bit 7 ↔ offset (−1,−1,−1), bit 0 ↔ (0,0,0)
      const int64_t z = i - 1 + ((7 - bit) >> 2 & 1), y = j - 1 + ((7 - bit) >> 1 & 1),
                    x = k - 1 + ((7 - bit) & 1);
      if (m.contains(z, y, x) && m.at(z, y, x)) code |= 1 << bit;
    }
    return code;
  };
  std::vector<std::array<int64_t, 3>> targets;
  for (int64_t i = 0; i < c[0]; ++i)
    for (int64_t j = 0; j < c[1]; ++j)
      for (int64_t k = 0; k < c[2]; ++k) {
        const int code = code_at(to, i, j, k);
        if (code != 0 && code != 255) targets.push_back({i, j, k});
      }
  std::vector<Surfel> surfels;
  for (int64_t i = 0; i < c[0]; ++i)
    for (int64_t j = 0; j < c[1]; ++j)
      for (int64_t k = 0; k < c[2]; ++k) {
        const int code = code_at(from, i, j, k);
        if (code == 0 || code == 255) continue;
        double best = std::numeric_limits<double>::infinity();
        for (const auto& t : targets) {
          const double dz = (i - t[0]) * from.spacing[0], dy = (j - t[1]) * from.spacing[1],
                       dx = (k - t[2]) * from.spacing[2];
          best = std::min(best, std::sqrt(dz * dz + dy * dy + dx * dx));
        }
        surfels.push_back({best, areas[code]});
      }
  std::sort(surfels.begin(), surfels.end(),
            [](const Surfel& a, const Surfel& b) { return a.distance_mm < b.distance_mm; });
  return surfels;
}

void expect_same_surfels(const std::vector<Surfel>& actual, const std::vector<Surfel>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  double actual_area = 0.0, expected_area = 0.0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    EXPECT_NEAR(actual[i].distance_mm, expected[i].distance_mm, 1e-9) << i;
    actual_area += actual[i].area_mm2 * (1.0 + actual[i].distance_mm);
    expected_area += expected[i].area_mm2 * (1.0 + expected[i].distance_mm);
  }
  EXPECT_NEAR(actual_area, expected_area, 1e-9 * expected_area);
}

TEST(SurfaceTest, SurfelsMatchTheDirectDefinitionOnRandomMasks) {
  std::mt19937 rng(3);
  const Shape3 shape{6, 7, 8};
  const Spacing3 spacing{2.5, 0.75, 1.25};
  for (int trial = 0; trial < 4; ++trial) {
    const Mask gt = random_mask(shape, spacing, 0.5, rng);
    const Mask pred = random_mask(shape, spacing, 0.3, rng);
    const SurfaceDistances d = compute_surface_distances(gt, pred);
    expect_same_surfels(d.gt_to_pred, direct_surfels(gt, pred));
    expect_same_surfels(d.pred_to_gt, direct_surfels(pred, gt));
  }
}

std::vector<double> direct_boundary_distances(const Mask& from, const Mask& to) {
  const auto boundary = [](const Mask& m, int64_t z, int64_t y, int64_t x) {
    const auto in = [&](int64_t a, int64_t b, int64_t c) { return m.contains(a, b, c) && m.at(a, b, c); };
    return in(z, y, x) && !(in(z - 1, y, x) && in(z + 1, y, x) && in(z, y - 1, x) && in(z, y + 1, x) &&
                            in(z, y, x - 1) && in(z, y, x + 1));
  };
  const Shape3& s = from.shape;
  std::vector<double> distances;
  for (int64_t z = 0; z < s[0]; ++z)
    for (int64_t y = 0; y < s[1]; ++y)
      for (int64_t x = 0; x < s[2]; ++x) {
        if (!boundary(from, z, y, x)) continue;
        double best = std::numeric_limits<double>::infinity();
        for (int64_t a = 0; a < s[0]; ++a)
          for (int64_t b = 0; b < s[1]; ++b)
            for (int64_t c = 0; c < s[2]; ++c) {
              if (!boundary(to, a, b, c)) continue;
              const double dz = (z - a) * from.spacing[0], dy = (y - b) * from.spacing[1],
                           dx = (x - c) * from.spacing[2];
              best = std::min(best, std::sqrt(dz * dz + dy * dy + dx * dx));
            }
        distances.push_back(best);
      }
  std::sort(distances.begin(), distances.end());
  return distances;
}

// numpy.percentile(values, q) with the default linear method.
double numpy_percentile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const double rank = (values.size() - 1) * q / 100.0;
  const std::size_t lo = static_cast<std::size_t>(rank);
  const std::size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (rank - lo) * (values[hi] - values[lo]);
}

TEST(SurfaceTest, BoundaryVoxelVariantsMatchTheirDefinitionsOnRandomMasks) {
  std::mt19937 rng(11);
  const Shape3 shape{6, 7, 8};
  const Spacing3 spacing{1.5, 1.0, 0.5};
  for (int trial = 0; trial < 4; ++trial) {
    const Mask gt = random_mask(shape, spacing, 0.7, rng);
    const Mask pred = random_mask(shape, spacing, 0.6, rng);
    const BoundaryDistances d = compute_boundary_distances(gt, pred);
    const std::vector<double> a = direct_boundary_distances(gt, pred);
    const std::vector<double> b = direct_boundary_distances(pred, gt);
    ASSERT_EQ(d.gt_to_pred.size(), a.size());
    ASSERT_EQ(d.pred_to_gt.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(d.gt_to_pred[i], a[i], 1e-9);
    for (std::size_t i = 0; i < b.size(); ++i) EXPECT_NEAR(d.pred_to_gt[i], b[i], 1e-9);

    std::vector<double> pooled = a;
    pooled.insert(pooled.end(), b.begin(), b.end());
    EXPECT_NEAR(hausdorff(gt, pred, 95, HausdorffVariant::pooled).value, numpy_percentile(pooled, 95), 1e-9);
    EXPECT_NEAR(hausdorff(gt, pred, 95, HausdorffVariant::monai).value,
                std::max(numpy_percentile(a, 95), numpy_percentile(b, 95)), 1e-9);
    const double tolerance = 1.2;
    const auto within = [&](const std::vector<double>& v) {
      return std::count_if(v.begin(), v.end(), [&](double x) { return x <= tolerance; });
    };
    EXPECT_NEAR(normalized_surface_dice(gt, pred, tolerance, NsdVariant::monai_voxel).value,
                double(within(a) + within(b)) / double(a.size() + b.size()), 1e-12);
  }
}

TEST(SurfaceTest, RobustHausdorffTakesTheFirstSurfelReachingThePercentileWithoutInterpolation) {
  SurfaceDistances d;
  d.gt_to_pred = {{0.0, 1.0}, {1.0, 1.0}, {2.0, 1.0}, {3.0, 1.0}};
  d.pred_to_gt = {{0.0, 1.0}};
  EXPECT_EQ(robust_hausdorff(d, 50), 1.0);  // cumulative fractions 0.25, 0.5 → reaches 50 % at index 1
  EXPECT_EQ(robust_hausdorff(d, 51), 2.0);
  EXPECT_EQ(robust_hausdorff(d, 100), 3.0);
  EXPECT_EQ(robust_hausdorff(d, 0), 0.0);
}

TEST(SurfaceTest, NsdCountsDistancesEqualToTheTolerance) {
  SurfaceDistances d;
  d.gt_to_pred = {{1.0, 2.0}, {1.5, 2.0}};
  d.pred_to_gt = {{1.0, 1.0}};
  EXPECT_DOUBLE_EQ(normalized_surface_dice(d, 1.0), 3.0 / 5.0);
  EXPECT_DOUBLE_EQ(normalized_surface_dice(d, 0.999), 0.0);
}

TEST(SurfaceTest, RejectsMismatchedMasksAndBadParameters) {
  const Mask a({4, 4, 4}, {1, 1, 1});
  const Mask b({4, 4, 5}, {1, 1, 1});
  const Mask c({4, 4, 4}, {1, 1, 2});
  EXPECT_THROW(compute_surface_distances(a, b), InputError);
  EXPECT_THROW(compute_surface_distances(a, c), InputError);
  EXPECT_THROW(compute_boundary_distances(a, b), InputError);
  EXPECT_THROW(hausdorff(a, a, 101), InputError);
  EXPECT_THROW(normalized_surface_dice(a, a, -1.0), InputError);
  EXPECT_THROW(parse_nsd_variant("voxel"), InputError);
  EXPECT_THROW(parse_hausdorff_variant("hd95"), InputError);
  EXPECT_EQ(parse_hausdorff_variant("monai"), HausdorffVariant::monai);
  EXPECT_EQ(parse_nsd_variant("monai_voxel"), NsdVariant::monai_voxel);
}

}  // namespace
}  // namespace e2e
