#include "metrics/dice.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "metrics_test_util.hpp"

namespace e2e {
namespace {

using testing::box_mask;

TEST(DiceTest, CountsOverlapAndAppliesTheFormula) {
  const Mask gt = box_mask({4, 4, 4}, {1, 1, 1}, {0, 0, 0}, {2, 4, 4});    // 32 voxels
  const Mask pred = box_mask({4, 4, 4}, {1, 1, 1}, {1, 0, 0}, {4, 4, 4});  // 48 voxels, 16 shared
  const OverlapCounts c = count_overlap(gt, pred);
  EXPECT_EQ(c.true_positives, 16);
  EXPECT_EQ(c.false_positives, 32);
  EXPECT_EQ(c.false_negatives, 16);
  EXPECT_DOUBLE_EQ(dice(gt, pred).value, 32.0 / 80.0);
}

TEST(DiceTest, ReferenceRuleForEmptyMasks) {
  const Mask empty({3, 3, 3}, {1, 1, 1});
  const Mask some = box_mask({3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {2, 2, 2});
  EXPECT_TRUE(std::isnan(dice(empty, empty).value));  // absent from both: not 1, not 0
  EXPECT_EQ(dice(empty, some).value, 0.0);            // GT empty, prediction not
  EXPECT_EQ(dice(some, empty).value, 0.0);
  EXPECT_EQ(dice(some, some).value, 1.0);
  EXPECT_EQ(dice(some, some).variant, DiceVariant::nnunet);
}

TEST(DiceTest, MonaiVariantIsNanWheneverTheReferenceIsEmpty) {
  const Mask empty({3, 3, 3}, {1, 1, 1});
  const Mask some = box_mask({3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {2, 2, 2});
  const DiceScore score = dice(empty, some, DiceVariant::monai);
  EXPECT_TRUE(std::isnan(score.value));
  EXPECT_EQ(score.variant, DiceVariant::monai);
  EXPECT_EQ(dice(some, empty, DiceVariant::monai).value, 0.0);
  EXPECT_EQ(parse_dice_variant(to_string(DiceVariant::monai)), DiceVariant::monai);
  EXPECT_THROW(parse_dice_variant("sorensen"), InputError);
}

TEST(DiceTest, RejectsMasksOfDifferentGeometry) {
  EXPECT_THROW(dice(Mask({3, 3, 3}), Mask({3, 3, 4})), InputError);
  EXPECT_THROW(dice(Mask({3, 3, 3}, {1, 1, 1}), Mask({3, 3, 3}, {1, 1, 1.5})), InputError);
  Mask short_buffer({3, 3, 3});
  short_buffer.voxels.pop_back();
  EXPECT_THROW(dice(Mask({3, 3, 3}), short_buffer), InputError);
}

}  // namespace
}  // namespace e2e
