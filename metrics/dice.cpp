#include "metrics/dice.hpp"

#include <limits>

namespace e2e {

std::string to_string(DiceVariant variant) {
  return variant == DiceVariant::monai ? "monai" : "nnunet";
}

DiceVariant parse_dice_variant(const std::string& name) {
  if (name == "nnunet") return DiceVariant::nnunet;
  if (name == "monai") return DiceVariant::monai;
  throw InputError("dice variant: expected nnunet or monai, got '" + name + "'");
}

OverlapCounts count_overlap(const Mask& gt, const Mask& pred) {
  check_same_geometry(gt, pred, "dice");
  OverlapCounts counts;
  const std::size_t n = gt.voxels.size();
  for (std::size_t i = 0; i < n; ++i) {
    const bool in_gt = gt.voxels[i] != 0;
    const bool in_pred = pred.voxels[i] != 0;
    counts.true_positives += in_gt && in_pred;
    counts.false_positives += !in_gt && in_pred;
    counts.false_negatives += in_gt && !in_pred;
  }
  return counts;
}

double dice_from_counts(const OverlapCounts& c, DiceVariant variant) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const int64_t gt_voxels = c.true_positives + c.false_negatives;
  if (variant == DiceVariant::monai && gt_voxels == 0) return nan;
  const int64_t denominator = 2 * c.true_positives + c.false_positives + c.false_negatives;
  if (denominator == 0) return nan;
  return 2.0 * static_cast<double>(c.true_positives) / static_cast<double>(denominator);
}

DiceScore dice(const Mask& gt, const Mask& pred, DiceVariant variant) {
  return {dice_from_counts(count_overlap(gt, pred), variant), variant};
}

}  // namespace e2e
