#include "model/depth_shift.hpp"

#include <gtest/gtest.h>

namespace e2e {
namespace {

// Reference: voxel by voxel, group g = c / ceil(C/n) moves by g - n/2 slices with zero fill.
torch::Tensor naive_shift(const torch::Tensor& in, int n) {
  const int64_t N = in.size(0), C = in.size(1), D = in.size(2), H = in.size(3), W = in.size(4);
  const int64_t chunk = (C + n - 1) / n;
  torch::Tensor out = torch::zeros_like(in);
  auto src = in.accessor<float, 5>();
  auto dst = out.accessor<float, 5>();
  for (int64_t b = 0; b < N; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t shift = c / chunk - n / 2;
      for (int64_t d = 0; d < D; ++d) {
        const int64_t from = d - shift;
        if (from < 0 || from >= D) continue;
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) dst[b][c][d][h][w] = src[b][c][from][h][w];
      }
    }
  return out;
}

TEST(DepthShift, MatchesNaiveLoopForEveryChannelCount) {
  torch::manual_seed(1);
  for (int shift_size : {3, 5}) {
    for (int64_t channels : {1, 2, 3, 4, 5, 7, 8, 10, 11, 16, 320}) {
      torch::Tensor x = torch::randn({2, channels, 5, 3, 4});
      torch::Tensor expected = naive_shift(x, shift_size);
      torch::Tensor got = depth_shift(x, shift_size);
      ASSERT_TRUE(torch::equal(got, expected)) << "C=" << channels << " shift_size=" << shift_size;
    }
  }
}

TEST(DepthShift, ChunkSemanticsOn320And832Channels) {
  // 320 → groups 107, 107, 106: channel 106 moves by −1, 107 stays, 214 moves by +1.
  torch::Tensor x =
      torch::arange(1, 4, torch::kFloat32).view({1, 1, 3, 1, 1}).expand({1, 320, 3, 1, 1}).contiguous();
  torch::Tensor y = depth_shift(x, 3);
  EXPECT_FLOAT_EQ(y[0][106][0][0][0].item<float>(), 2.0f);  // out[0] = in[1]
  EXPECT_FLOAT_EQ(y[0][106][2][0][0].item<float>(), 0.0f);  // zero fill, no wrap
  EXPECT_FLOAT_EQ(y[0][107][0][0][0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(y[0][213][1][0][0].item<float>(), 2.0f);
  EXPECT_FLOAT_EQ(y[0][214][0][0][0].item<float>(), 0.0f);  // out[0] = in[-1] = 0
  EXPECT_FLOAT_EQ(y[0][214][1][0][0].item<float>(), 1.0f);
  torch::Tensor z = depth_shift(torch::ones({1, 832, 3, 1, 1}), 3);
  // 832 → 278, 278, 276: the first 278 channels (shift −1) lose their last slice, the last 276 their first.
  EXPECT_EQ(z.select(2, 2).sum().item<float>(), 832 - 278);
  EXPECT_EQ(z.select(2, 0).sum().item<float>(), 832 - 276);
}

TEST(DepthShift, SizeZeroOrOneIsIdentity) {
  torch::Tensor x = torch::randn({1, 6, 4, 2, 2});
  EXPECT_TRUE(torch::equal(depth_shift(x, 0), x));
  EXPECT_TRUE(torch::equal(depth_shift(x, 1), x));
}

TEST(DepthShift, ShiftLargerThanDepthZeroesMovedGroups) {
  torch::Tensor x = torch::ones({1, 5, 1, 2, 2});
  torch::Tensor y = depth_shift(x, 5);  // only the unshifted middle channel survives a depth of 1
  EXPECT_EQ(y.sum().item<float>(), 4.0f);
  EXPECT_EQ(y[0][2].sum().item<float>(), 4.0f);
}

TEST(DepthShift, GradientIsTheReverseShift) {
  torch::Tensor x = torch::randn({1, 3, 4, 2, 2}, torch::requires_grad());
  torch::Tensor w = torch::randn({1, 3, 4, 2, 2});
  (depth_shift(x, 3) * w).sum().backward();
  // d/dx of Σ w·shift(x) = shift⁻¹(w): for group 0 (shift −1) grad[d] = w[d − 1].
  torch::Tensor expected = torch::zeros_like(w);
  expected.select(1, 0).narrow(1, 1, 3).copy_(w.select(1, 0).narrow(1, 0, 3));
  expected.select(1, 1).copy_(w.select(1, 1));
  expected.select(1, 2).narrow(1, 0, 3).copy_(w.select(1, 2).narrow(1, 1, 3));
  EXPECT_TRUE(torch::allclose(x.grad(), expected));
}

}  // namespace
}  // namespace e2e
