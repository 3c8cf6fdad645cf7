#include "metrics/mask.hpp"

#include <gtest/gtest.h>

#include "metrics_test_util.hpp"

namespace e2e {
namespace {

TEST(MaskTest, UnionBoundingBoxCoversBothMasks) {
  Mask a({6, 7, 20}, {1, 1, 1});
  Mask b({6, 7, 20}, {1, 1, 1});
  EXPECT_TRUE(union_bounding_box(a, b).empty());
  a.at(1, 2, 17) = 1;
  b.at(4, 1, 3) = 1;
  b.at(2, 5, 9) = 1;
  const Box box = union_bounding_box(a, b);
  EXPECT_EQ(box.lo, (Int3{1, 1, 3}));
  EXPECT_EQ(box.hi, (Int3{5, 6, 18}));
}

TEST(MaskTest, CropKeepsSpacingAndVoxels) {
  const Mask mask = testing::box_mask({5, 5, 5}, {2, 1, 0.5}, {1, 2, 3}, {3, 4, 5});
  Box box;
  box.include(1, 1, 2);
  box.include(3, 3, 4);
  const Mask cropped = crop(mask, box);
  EXPECT_EQ(cropped.shape, (Shape3{3, 3, 3}));
  EXPECT_EQ(cropped.spacing, mask.spacing);
  EXPECT_EQ(count_nonzero(cropped), count_nonzero(mask));
  EXPECT_EQ(cropped.at(0, 1, 1), 1);
  EXPECT_EQ(cropped.at(2, 1, 1), 0);
}

TEST(MaskTest, GeometryCheckNamesTheCase) {
  try {
    check_same_geometry(Shape3{2, 2, 2}, Spacing3{1, 1, 1}, Shape3{2, 2, 2}, Spacing3{1, 1, 1.1}, "case_3");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("case_3"), std::string::npos);
  }
  EXPECT_NO_THROW(check_same_geometry(Shape3{2, 2, 2}, Spacing3{1, 1, 1}, Shape3{2, 2, 2},
                                      Spacing3{1, 1, 1.0000001}, "near"));
  EXPECT_THROW(
      check_same_geometry(Shape3{2, 2, 2}, Spacing3{0, 1, 1}, Shape3{2, 2, 2}, Spacing3{0, 1, 1}, "zero"),
      InputError);
}

}  // namespace
}  // namespace e2e
