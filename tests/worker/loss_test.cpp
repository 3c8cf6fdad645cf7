// The CE + soft Dice loss against a hand computation, per-sample Dice and batch Dice (training.batch_dice).
#include "worker/loss.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace e2e {
namespace {

// Two samples, two classes, two voxels each. The class-1 logit minus the class-0 logit is ±ln 3, so every
// softmax probability is 3/4 or 1/4:
//   sample 0: labels (1, 0), p(class 1) = (3/4, 1/4)
//   sample 1: labels (0, 0), p(class 1) = (1/4, 1/4)
// Every voxel gives its true class 3/4: cross-entropy = −ln(3/4).
// Class-1 statistics: sample 0 tp = 3/4, fp = 1/4, fn = 1/4; sample 1 tp = 0, fp = 1/2, fn = 0.
struct TwoSamples {
  torch::Tensor logits = torch::zeros({2, 2, 1, 1, 2});
  torch::Tensor target = torch::zeros({2, 1, 1, 2}, torch::kLong);
  TwoSamples() {
    const double ln3 = std::log(3.0);
    logits.index_put_({0, 1, 0, 0, 0}, ln3);
    logits.index_put_({0, 1, 0, 0, 1}, -ln3);
    logits.index_put_({1, 1, 0, 0, 0}, -ln3);
    logits.index_put_({1, 1, 0, 0, 1}, -ln3);
    target.index_put_({0, 0, 0, 0}, 1);
  }
};

constexpr double kSmooth = 1e-5;

double soft_dice(double tp, double fp, double fn) {
  return (2 * tp + kSmooth) / (2 * tp + fp + fn + kSmooth + 1e-8);
}

TEST(Loss, PerSampleDiceAveragesTheSamples) {
  const TwoSamples s;
  const double ce = -std::log(0.75);
  const double dice = (soft_dice(0.75, 0.25, 0.25) + soft_dice(0.0, 0.5, 0.0)) / 2;  // ≈ (0.75 + 0.00002) / 2
  LossOptions options;
  options.batch_dice = false;
  EXPECT_NEAR(ce_dice_loss(s.logits, s.target, options).item<double>(), ce + 1 - dice, 1e-6);
}

TEST(Loss, BatchDicePoolsTheStatisticsOfAllSamples) {
  const TwoSamples s;
  const double ce = -std::log(0.75);
  const double dice = soft_dice(0.75, 0.75, 0.25);  // = 1.5 / 2.5 ≈ 0.6
  LossOptions options;
  options.batch_dice = true;
  const double loss = ce_dice_loss(s.logits, s.target, options).item<double>();
  EXPECT_NEAR(loss, ce + 1 - dice, 1e-6);
  EXPECT_NEAR(loss, 0.2876821 + 0.4, 1e-5);
}

TEST(Loss, OptionsFollowTheTrainingConfig) {
  TrainingConfig training;
  EXPECT_FALSE(loss_options(training).batch_dice);
  training.batch_dice = true;
  EXPECT_TRUE(loss_options(training).batch_dice);
  EXPECT_DOUBLE_EQ(loss_options(training).dice_smooth, 1e-5);
}

}  // namespace
}  // namespace e2e
