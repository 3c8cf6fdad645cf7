#include "metrics/surfel_area.hpp"

#include <gtest/gtest.h>

#include <bitset>
#include <numeric>
#include <set>

#include "metrics_test_util.hpp"

namespace e2e {
namespace {

using testing::near_relative;

double table_sum(const std::array<double, 256>& table) {
  return std::accumulate(table.begin(), table.end(), 0.0);
}

TEST(SurfelAreaTest, TriangleTableCutsExactlyTheEdgesBetweenInsideAndOutsideCorners) {
  for (int index = 0; index < 256; ++index) {
    const std::string& edges = marching_cubes_triangles(index);
    ASSERT_EQ(edges.size() % 3, 0u) << "case " << index;
    std::set<int> used;
    for (char c : edges) used.insert(c <= '9' ? c - '0' : c - 'a' + 10);
    std::set<int> cut;
    for (int edge = 0; edge < 12; ++edge) {
      const auto [a, b] = marching_cubes_edge(edge);
      if (((index >> a) & 1) != ((index >> b) & 1)) cut.insert(edge);
    }
    EXPECT_EQ(used, cut) << "case " << index;
  }
}

TEST(SurfelAreaTest, EdgesJoinCornersOneStepApart) {
  for (int edge = 0; edge < 12; ++edge) {
    const auto [a, b] = marching_cubes_edge(edge);
    const auto p = marching_cubes_corner(a);
    const auto q = marching_cubes_corner(b);
    EXPECT_EQ(std::abs(p[0] - q[0]) + std::abs(p[1] - q[1]) + std::abs(p[2] - q[2]), 1) << "edge " << edge;
  }
}

TEST(SurfelAreaTest, IsotropicChecksumsMatchTheReference) {
  const auto table = surfel_area_table({1.0, 1.0, 1.0});
  EXPECT_TRUE(near_relative(table_sum(table), 241.3431397055, 1e-10));
  EXPECT_TRUE(near_relative(table[1], 0.2165063509, 1e-9));
  EXPECT_TRUE(near_relative(table[3], 0.7071067812, 1e-9));
  EXPECT_TRUE(near_relative(table[15], 1.0, 1e-12));
  EXPECT_TRUE(near_relative(table[60], 1.4142135624, 1e-9));
  EXPECT_TRUE(near_relative(table[105], 0.8660254038, 1e-9));
}

TEST(SurfelAreaTest, AnisotropicChecksumsMatchTheReference) {
  const auto table = surfel_area_table({3.0, 2.0, 1.0});
  EXPECT_TRUE(near_relative(table_sum(table), 950.4895895094, 1e-10));
  EXPECT_TRUE(near_relative(table[1], 0.875, 1e-12));
  EXPECT_TRUE(near_relative(table[3], 1.8027756377, 1e-9));
  EXPECT_TRUE(near_relative(table[15], 2.0, 1e-12));
  EXPECT_TRUE(near_relative(table[60], 3.6055512755, 1e-9));
  EXPECT_TRUE(near_relative(table[105], 3.5, 1e-12));
}

TEST(SurfelAreaTest, FlatCodesDependOnTheirOrientationUnderAnisotropicSpacing) {
  // Code 15: the four corners with axis-0 offset 1 are inside, so the surfel is a plane normal to axis 0
  // with area s1·s2; code 51 (axis-1 offset 1) is normal to axis 1 with area s0·s2.
  const auto table = surfel_area_table({3.0, 2.0, 1.0});
  EXPECT_DOUBLE_EQ(table[15], 2.0 * 1.0);
  EXPECT_DOUBLE_EQ(table[51], 3.0 * 1.0);
  EXPECT_DOUBLE_EQ(table[85], 3.0 * 2.0);
}

TEST(SurfelAreaTest, EmptyAndFullNeighbourhoodsHaveNoSurfaceAndComplementsMatch) {
  const auto table = surfel_area_table({1.5, 0.8, 2.0});
  EXPECT_EQ(table[0], 0.0);
  EXPECT_EQ(table[255], 0.0);
  for (int code = 1; code < 255; ++code) {
    EXPECT_GT(table[code], 0.0) << code;
    EXPECT_DOUBLE_EQ(table[code], table[255 - code]) << code;
  }
}

}  // namespace
}  // namespace e2e
