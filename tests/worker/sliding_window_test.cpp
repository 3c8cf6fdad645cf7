#include "worker/sliding_window.hpp"

#include <gtest/gtest.h>

namespace e2e {
namespace {

TEST(SlidingWindow, StartsFollowNnUNet) {
  EXPECT_EQ(sliding_window_starts(13, 8, 0.5), (std::vector<int64_t>{0, 2, 5}));
  EXPECT_EQ(sliding_window_starts(226, 64, 0.5), (std::vector<int64_t>{0, 27, 54, 81, 108, 135, 162}));
  EXPECT_EQ(sliding_window_starts(512, 160, 0.5), (std::vector<int64_t>{0, 70, 141, 211, 282, 352}));
  EXPECT_EQ(sliding_window_starts(64, 64, 0.5), (std::vector<int64_t>{0}));
}

TEST(SlidingWindow, GaussianImportanceVector) {
  torch::Tensor w = gaussian_importance({4, 8, 16});
  EXPECT_NEAR(w[0][4][8].item<float>(), 3.3546e-4, 1e-8);
  EXPECT_NEAR(w[1][4][8].item<float>(), 0.135335, 1e-6);
  EXPECT_FLOAT_EQ(w[2][4][8].item<float>(), 1.0f);
  EXPECT_NEAR(w[3][4][8].item<float>(), 0.135335, 1e-6);
  EXPECT_GT(w.min().item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(w.max().item<float>(), 1.0f);
}

// A voxel-wise "network": its tiled, weighted prediction must equal its prediction on the whole image.
torch::Tensor voxelwise_logits(const torch::Tensor& batch) {
  return torch::cat({batch, -batch, 0.5 * batch}, 1);
}

TEST(SlidingWindow, VoxelwiseNetworkGivesTheWholeImagePrediction) {
  torch::manual_seed(0);
  torch::Tensor image = torch::randn({1, 13, 20, 9});  // smaller than the patch along the last axis
  SlidingWindowOptions options;
  options.patch = {8, 8, 12};
  for (bool tta : {false, true}) {
    options.mirror_tta = tta;
    torch::Tensor probs = sliding_window_probabilities(voxelwise_logits, image, 3, options);
    ASSERT_EQ(probs.sizes(), (std::vector<int64_t>{3, 13, 20, 9}));
    torch::Tensor expected = torch::softmax(voxelwise_logits(image.unsqueeze(0)), 1).squeeze(0);
    EXPECT_TRUE(torch::allclose(probs, expected, 1e-5, 1e-6)) << "tta " << tta;
  }
}

TEST(SlidingWindow, MirrorTtaAveragesFlippedPredictions) {
  // A network that sees position (a ramp along depth) is not flip-equivariant: TTA must change the result
  // towards the flip-symmetric average.
  auto positional = [](const torch::Tensor& batch) {
    torch::Tensor ramp =
        torch::arange(batch.size(2), torch::kFloat32).view({1, 1, -1, 1, 1}).expand_as(batch);
    return torch::cat({ramp, torch::zeros_like(batch)}, 1);
  };
  torch::Tensor image = torch::zeros({1, 8, 8, 8});
  SlidingWindowOptions options;
  options.patch = {8, 8, 8};
  torch::Tensor plain = sliding_window_probabilities(positional, image, 2, options);
  options.mirror_tta = true;
  torch::Tensor tta = sliding_window_probabilities(positional, image, 2, options);
  EXPECT_FALSE(torch::allclose(plain, tta));
  EXPECT_TRUE(torch::allclose(tta, tta.flip({1}), 1e-6));  // symmetric along depth after TTA
}

}  // namespace
}  // namespace e2e
