#include "data/sampler.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/data/sampling_fixtures.hpp"

namespace e2e {
namespace {

using testing::make_case;
using testing::make_single_voxel_case;

std::vector<int64_t> forced_samples(int64_t batch, double oversampling) {
  std::vector<int64_t> forced;
  for (int64_t i = 0; i < batch; ++i) {
    if (must_contain_foreground(i, batch, oversampling)) forced.push_back(i);
  }
  return forced;
}

TEST(ForegroundRule, ForcesTheLastThirdOfTheGlobalBatch) {
  EXPECT_THAT(forced_samples(1, 0.33), ::testing::IsEmpty());  // round(0.67) = 1
  EXPECT_THAT(forced_samples(2, 0.33), ::testing::ElementsAre(1));
  EXPECT_THAT(forced_samples(3, 0.33), ::testing::ElementsAre(2));
  EXPECT_THAT(forced_samples(4, 0.33), ::testing::ElementsAre(3));  // round(2.68) = 3
  EXPECT_THAT(forced_samples(10, 0.33), ::testing::ElementsAre(7, 8, 9));
  EXPECT_THAT(forced_samples(2, 1.0), ::testing::ElementsAre(0, 1));
  EXPECT_THAT(forced_samples(2, 0.0), ::testing::IsEmpty());
}

TEST(RankSlice, ContiguousSlicesCoverTheGlobalBatchOnce) {
  for (int64_t batch : {2, 5, 7}) {
    for (int ranks = 1; ranks <= batch; ++ranks) {
      int64_t expected_begin = 0;
      for (int r = 0; r < ranks; ++r) {
        const BatchSlice slice = rank_slice(batch, r, ranks);
        EXPECT_EQ(slice.begin, expected_begin);
        EXPECT_GE(slice.size(), batch / ranks);
        EXPECT_LE(slice.size(), batch / ranks + 1);
        expected_begin = slice.end;
      }
      EXPECT_EQ(expected_begin, batch);
    }
  }
}

TEST(RankSlice, RejectsMoreRanksThanSamplesAndBadRanks) {
  EXPECT_THROW(rank_slice(2, 0, 3), InputError);
  EXPECT_THROW(rank_slice(4, 2, 2), InputError);
  EXPECT_THROW(rank_slice(4, -1, 2), InputError);
}

TEST(EnlargedPatch, MatchesNnUNetForTheDefaultRotationAndScale) {
  EXPECT_EQ(enlarged_patch_size({128, 128, 128}, 30.0, 0.7, false), (Shape3{249, 249, 249}));
  EXPECT_EQ(enlarged_patch_size({16, 32, 32}, 0.0, 1.0, false), (Shape3{16, 32, 32}));
}

TEST(EnlargedPatch, DummyTwoDKeepsTheThroughPlaneAxis) {
  EXPECT_TRUE(is_dummy_2d({16, 128, 128}));
  EXPECT_FALSE(is_dummy_2d({64, 128, 128}));
  EXPECT_EQ(enlarged_patch_size({16, 128, 128}, 30.0, 0.7, true), (Shape3{16, 249, 249}));
}

TEST(PlacePatch, ForcedSamplesAreCentredOnStoredForegroundEvenNearTheBorder) {
  const Shape3 patch{16, 32, 32};
  const Shape3 sampling{24, 46, 46};
  for (const auto& voxel : {std::array<int32_t, 3>{20, 30, 40}, std::array<int32_t, 3>{0, 0, 0},
                            std::array<int32_t, 3>{39, 59, 79}}) {
    const auto c = make_single_voxel_case("one", {40, 60, 80}, voxel);
    for (uint64_t seed = 0; seed < 20; ++seed) {
      Rng rng(seed);
      const PatchPlacement p = place_patch(*c, patch, sampling, true, rng);
      EXPECT_EQ(p.foreground_class, 1);
      for (int d = 0; d < 3; ++d) {
        EXPECT_LE(p.patch_lo[d], voxel[d]);
        EXPECT_LT(voxel[d], p.patch_lo[d] + patch[d]);
      }
    }
  }
}

TEST(PlacePatch, PicksAmongThePresentClasses) {
  auto c = make_case("c", {16, 32, 32});
  c->foreground.push_back({3, {}});  // a class without stored voxels is never chosen
  std::set<int> chosen;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Rng rng(seed);
    chosen.insert(place_patch(*c, {8, 16, 16}, {8, 16, 16}, true, rng).foreground_class);
  }
  EXPECT_EQ(chosen, (std::set<int>{1, 2}));
}

TEST(PlacePatch, ForcedWithoutForegroundFallsBackToUniform) {
  auto c = make_case("c", {16, 32, 32});
  c->foreground.clear();
  Rng rng(3);
  const PatchPlacement p = place_patch(*c, {8, 16, 16}, {8, 16, 16}, true, rng);
  EXPECT_TRUE(p.forced_foreground);
  EXPECT_EQ(p.foreground_class, -1);
}

TEST(PlacePatch, UniformBoxSticksOutByAtMostHalfThePadding) {
  const auto c = make_case("c", {40, 60, 80});
  const Shape3 patch{16, 32, 32};
  const Shape3 sampling{25, 45, 46};
  Int3 lowest{0, 0, 0}, highest{0, 0, 0};
  for (uint64_t seed = 0; seed < 400; ++seed) {
    Rng rng(seed);
    const PatchPlacement p = place_patch(*c, patch, sampling, false, rng);
    for (int d = 0; d < 3; ++d) {
      const int64_t pad = sampling[d] - patch[d];
      const int64_t half_pad = (pad + 1) / 2;
      EXPECT_GE(p.box_lo[d], -half_pad);
      EXPECT_LE(p.box_lo[d] + sampling[d], c->label.shape[d] + half_pad);
      // The unrotated patch stays inside (one voxel out at the low end when the padding is odd, as in
      // nnU-Net).
      EXPECT_GE(p.patch_lo[d], -(pad % 2));
      EXPECT_LE(p.patch_lo[d] + patch[d], c->label.shape[d]);
      lowest[d] = std::min(lowest[d], p.box_lo[d]);
      highest[d] = std::max(highest[d], p.box_lo[d] + sampling[d] - c->label.shape[d]);
    }
  }
  for (int d = 0; d < 3; ++d) {
    EXPECT_LT(lowest[d], 0) << "axis " << d;  // the box does stick out
    EXPECT_GT(highest[d], 0) << "axis " << d;
  }
}

TEST(PlacePatch, CaseSmallerThanThePatchIsCoveredWithPadding) {
  const auto c = make_single_voxel_case("small", {6, 10, 12}, {3, 5, 6});
  const Shape3 patch{8, 16, 16};
  for (uint64_t seed = 0; seed < 10; ++seed) {
    Rng rng(seed);
    const PatchPlacement p = place_patch(*c, patch, patch, seed % 2 == 0, rng);
    for (int d = 0; d < 3; ++d) {
      EXPECT_LE(p.patch_lo[d], 0);
      EXPECT_GE(p.patch_lo[d] + patch[d], c->label.shape[d]);
    }
  }
}

TEST(CropCase, PadsImageWithZeroAndLabelWithMinusOne) {
  const auto c = make_case("c", {8, 12, 10}, 2);
  const Shape3 shape{6, 8, 8};
  const Int3 lo{-2, 7, -3};
  std::vector<float> image(2 * voxel_count(shape), 99.0f);
  std::vector<int16_t> label(voxel_count(shape), 99);
  crop_case(*c, lo, {image.data(), label.data(), 2, shape});
  for (int64_t z = 0; z < shape[0]; ++z) {
    for (int64_t y = 0; y < shape[1]; ++y) {
      for (int64_t x = 0; x < shape[2]; ++x) {
        const int64_t i = (z * shape[1] + y) * shape[2] + x;
        const int64_t sz = z + lo[0], sy = y + lo[1], sx = x + lo[2];
        const bool inside = c->label.contains(sz, sy, sx);
        EXPECT_EQ(label[i], inside ? c->label.at(sz, sy, sx) : -1);
        for (int64_t ch = 0; ch < 2; ++ch) {
          const float expected = inside ? c->image.channel(ch)[c->label.index(sz, sy, sx)] : 0.0f;
          EXPECT_EQ(image[ch * voxel_count(shape) + i], expected);
        }
      }
    }
  }
}

TEST(CheckCase, RejectsInconsistentCasesNamingThem) {
  auto c = make_case("case_007", {8, 12, 10});
  EXPECT_NO_THROW(check_case(*c));
  c->foreground[0].second.push_back({8, 0, 0});
  EXPECT_THAT([&] { check_case(*c); },
              ::testing::ThrowsMessage<InputError>(::testing::HasSubstr("case_007")));
  auto d = make_case("case_008", {8, 12, 10});
  d->image.shape = {8, 12, 11};
  EXPECT_THAT([&] { check_case(*d); },
              ::testing::ThrowsMessage<InputError>(::testing::HasSubstr("case_008")));
}

TEST(Rng, SameKeySameDrawsAndStreamsAreIndependent) {
  const DrawKey key{42, 0, 7, 3};
  Rng a(draw_seed(key, DrawStream::kSpatial)), b(draw_seed(key, DrawStream::kSpatial)),
      c(draw_seed(key, DrawStream::kNoise));
  Rng d(draw_seed(DrawKey{42, 0, 7, 4}, DrawStream::kSpatial));
  int same_as_other_stream = 0, same_as_other_sample = 0;
  for (int i = 0; i < 100; ++i) {
    const uint64_t v = a.next_u64();
    EXPECT_EQ(v, b.next_u64());
    same_as_other_stream += v == c.next_u64();
    same_as_other_sample += v == d.next_u64();
  }
  EXPECT_EQ(same_as_other_stream, 0);
  EXPECT_EQ(same_as_other_sample, 0);
}

TEST(Rng, BetweenStaysInBoundsAndReachesBothEnds) {
  Rng rng(5);
  std::set<int64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const int64_t v = rng.between(-3, 3);
    ASSERT_GE(v, -3);
    ASSERT_LE(v, 3);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 7u);
}

}  // namespace
}  // namespace e2e
