// Dice coefficient of two binary masks, with the empty-mask rule named by a variant.
#pragma once

#include <cstdint>
#include <string>

#include "metrics/mask.hpp"

namespace e2e {

enum class DiceVariant {
  nnunet,  // reference (nnU-Net v1/v2, DeepMind): absent from both → NaN; GT empty, prediction not → 0
  monai,   // MONAI DiceMetric default: NaN whenever the GT is empty
};

std::string to_string(DiceVariant variant);
// "nnunet" | "monai"; throws InputError naming the accepted values otherwise.
DiceVariant parse_dice_variant(const std::string& name);

struct OverlapCounts {
  int64_t true_positives = 0;
  int64_t false_positives = 0;
  int64_t false_negatives = 0;
};

struct DiceScore {
  double value = 0.0;
  DiceVariant variant = DiceVariant::nnunet;
};

OverlapCounts count_overlap(const Mask& gt, const Mask& pred);

// 2·TP / (2·TP + FP + FN) with the variant's rule for empty masks.
double dice_from_counts(const OverlapCounts& counts, DiceVariant variant = DiceVariant::nnunet);

// Throws InputError if the masks' shapes or spacings differ.
DiceScore dice(const Mask& gt, const Mask& pred, DiceVariant variant = DiceVariant::nnunet);

}  // namespace e2e
