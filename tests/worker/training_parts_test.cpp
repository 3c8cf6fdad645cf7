// The parts the trainer is built from, alone: fp16 loss scaling and the per-epoch pseudo-Dice.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "worker/loss_scaler.hpp"
#include "worker/validation.hpp"

namespace e2e {
namespace {

std::vector<torch::Tensor> parameter_with_gradient(float gradient) {
  torch::Tensor p = torch::zeros({3}, torch::requires_grad());
  p.mutable_grad() = torch::full({3}, gradient);
  return {p};
}

TEST(LossScaler, DisabledScalesNothingAndTakesEveryStep) {
  LossScaler scaler(false);
  EXPECT_EQ(scaler.scale(), 1.0);
  const torch::Tensor loss = torch::tensor(2.5);
  EXPECT_EQ(scaler.scaled(loss).item<float>(), 2.5f);
  const auto params = parameter_with_gradient(std::nanf(""));
  EXPECT_TRUE(scaler.unscale(params, 1));  // not even looked at
}

TEST(LossScaler, UnscalesSkipsOverflowsHalvesAndGrowsAfterGoodSteps) {
  LossScaler scaler(true);
  EXPECT_EQ(scaler.scale(), LossScaler::kInitialScale);
  EXPECT_EQ(scaler.scaled(torch::tensor(2.0)).item<double>(), 2.0 * LossScaler::kInitialScale);
  auto params = parameter_with_gradient(static_cast<float>(LossScaler::kInitialScale));
  EXPECT_TRUE(scaler.unscale(params, 1));
  EXPECT_FLOAT_EQ(params[0].grad()[0].item<float>(), 1.0f);
  EXPECT_EQ(scaler.good_steps(), 1);

  params = parameter_with_gradient(INFINITY);
  EXPECT_FALSE(scaler.unscale(params, 2));
  EXPECT_EQ(scaler.scale(), LossScaler::kInitialScale / 2);
  EXPECT_EQ(scaler.good_steps(), 0);

  for (int64_t i = 0; i < LossScaler::kGrowthInterval; ++i) {
    params = parameter_with_gradient(1.0f);
    ASSERT_TRUE(scaler.unscale(params, 3 + i));
  }
  EXPECT_EQ(scaler.scale(), LossScaler::kInitialScale);

  scaler.restore(1.0, 0);
  params = parameter_with_gradient(NAN);
  EXPECT_FALSE(scaler.unscale(params, 9));
  EXPECT_EQ(scaler.scale(), 1.0);  // never below 1
}

TEST(PseudoDice, CountsPerForegroundClassIgnoringNegativeLabels) {
  // 1 sample, 3 classes, 6 voxels in a 1×1×6 volume. Predicted argmax: 0 1 1 2 2 1; labels: 0 1 2 2 -1 0.
  torch::Tensor logits = torch::zeros({1, 3, 1, 1, 6});
  const int predicted[6] = {0, 1, 1, 2, 2, 1};
  for (int v = 0; v < 6; ++v) logits[0][predicted[v]][0][0][v] = 1.0;
  const torch::Tensor label = torch::tensor({0, 1, 2, 2, -1, 0}, torch::kLong).reshape({1, 1, 1, 6});
  PseudoDiceCounts dice(3);
  dice.add(logits, label);
  // class 1: tp 1 (v1), fp 2 (v2, v5), fn 0 → 2/4; class 2: tp 1 (v3), fp 0 (v4 ignored), fn 1 (v2) → 2/3.
  EXPECT_EQ(dice.counts(), (std::vector<double>{1, 2, 0, 1, 0, 1}));
  const std::vector<double> d = dice.dice();
  ASSERT_EQ(d.size(), 2u);
  EXPECT_DOUBLE_EQ(d[0], 0.5);
  EXPECT_DOUBLE_EQ(d[1], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(mean_of_finite(d), (0.5 + 2.0 / 3.0) / 2);

  dice.add(logits, label);  // counts add up over batches
  EXPECT_EQ(dice.counts()[0], 2);
}

TEST(PseudoDice, AClassInNeitherPredictionNorLabelIsNaNAndLeftOutOfTheMean) {
  torch::Tensor logits = torch::zeros({1, 3, 1, 1, 2});
  logits[0][1][0][0][0] = 1.0;  // voxel 0 → class 1, voxel 1 → class 0
  const torch::Tensor label = torch::tensor({1, 0}, torch::kLong).reshape({1, 1, 1, 2});
  PseudoDiceCounts dice(3);
  dice.add(logits, label);
  const std::vector<double> d = dice.dice();
  EXPECT_DOUBLE_EQ(d[0], 1.0);
  EXPECT_TRUE(std::isnan(d[1]));
  EXPECT_DOUBLE_EQ(mean_of_finite(d), 1.0);
  EXPECT_TRUE(std::isnan(mean_of_finite({NAN})));
}

}  // namespace
}  // namespace e2e
