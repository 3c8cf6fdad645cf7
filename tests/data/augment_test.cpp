#include "data/augment.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "tests/data/sampling_fixtures.hpp"

namespace e2e {
namespace {

using testing::label_values;
using testing::make_case;

// A patch with its own buffers.
struct OwnedPatch {
  std::vector<float> image;
  std::vector<int16_t> label;
  PatchRef ref;
  OwnedPatch(int64_t channels, const Shape3& shape)
      : image(channels * voxel_count(shape)), label(voxel_count(shape)) {
    ref = {image.data(), label.data(), channels, shape};
  }
};

OwnedPatch cropped(const PreprocessedCase& c, const Int3& lo, const Shape3& shape) {
  OwnedPatch p(c.image.channels, shape);
  crop_case(c, lo, p.ref);
  return p;
}

double mean_of(const std::vector<float>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / v.size();
}
double std_of(const std::vector<float>& v) {
  const double m = mean_of(v);
  double s = 0.0;
  for (float x : v) s += (x - m) * (x - m);
  return std::sqrt(s / v.size());
}

AugmentOptions only_intensity() {
  AugmentOptions o;
  o.rotation_probability = o.scale_probability = o.mirror_probability = 0.0;
  o.noise_probability = o.blur_probability = o.blur_channel_probability = 1.0;
  o.brightness_probability = o.contrast_probability = 1.0;
  o.low_resolution_probability = o.low_resolution_channel_probability = 1.0;
  o.inverted_gamma_probability = o.gamma_probability = 1.0;
  o.ignore_to_background = false;
  return o;
}

const Shape3 kPatch{16, 32, 32};

TEST(Mirror, TwiceIsIdentity) {
  const auto c = make_case("c", {20, 40, 36}, 2);
  OwnedPatch p = cropped(*c, {2, 3, 1}, kPatch);
  const OwnedPatch original = p;
  mirror(p.ref, {true, true, true});
  EXPECT_NE(p.image, original.image);
  mirror(p.ref, {true, true, true});
  EXPECT_EQ(p.image, original.image);
  EXPECT_EQ(p.label, original.label);
}

TEST(Mirror, FlipsImageAndLabelTogether) {
  const auto c = make_case("c", {20, 40, 36});
  OwnedPatch p = cropped(*c, {0, 0, 0}, kPatch);
  const OwnedPatch original = p;
  mirror(p.ref, {false, true, false});
  for (int64_t z = 0; z < kPatch[0]; ++z) {
    for (int64_t x = 0; x < kPatch[2]; ++x) {
      const int64_t to = (z * kPatch[1] + 0) * kPatch[2] + x;
      const int64_t from = (z * kPatch[1] + kPatch[1] - 1) * kPatch[2] + x;
      EXPECT_EQ(p.image[to], original.image[from]);
      EXPECT_EQ(p.label[to], original.label[from]);
    }
  }
}

TEST(SpatialTransform, ZeroRotationAndUnitScaleIsTheExactCrop) {
  const auto c = make_case("c", {20, 40, 36}, 2);
  for (const Int3& lo : {Int3{2, 4, 3}, Int3{-3, 20, -5}}) {  // inside, and sticking out of the case
    const OwnedPatch expected = cropped(*c, lo, kPatch);
    for (auto interpolation : {LabelInterpolation::kLinear, LabelInterpolation::kNearest}) {
      OwnedPatch p(2, kPatch);
      spatial_transform(*c, lo, rotation_scale({0.0, 0.0, 0.0}, 1.0, false), interpolation, p.ref);
      EXPECT_EQ(p.image, expected.image);
      EXPECT_EQ(p.label, expected.label);
    }
  }
}

TEST(SpatialTransform, QuarterTurnAboutDepthPermutesTheCrop) {
  const auto c = make_case("c", {20, 40, 40});
  const Shape3 shape{8, 24, 24};
  const Int3 lo{4, 8, 8};
  const OwnedPatch crop = cropped(*c, lo, shape);
  OwnedPatch p(1, shape);
  spatial_transform(*c, lo, rotation_scale({90.0, 0.0, 0.0}, 1.0, false), LabelInterpolation::kLinear, p.ref);
  // Output (z, y, x) reads source offset R·(o − ctr): y' = ctr − (x − ctr), x' = y.
  for (int64_t z = 0; z < shape[0]; ++z) {
    for (int64_t y = 0; y < shape[1]; ++y) {
      for (int64_t x = 0; x < shape[2]; ++x) {
        const int64_t out = (z * shape[1] + y) * shape[2] + x;
        const int64_t in = (z * shape[1] + (shape[2] - 1 - x)) * shape[2] + y;
        ASSERT_NEAR(p.image[out], crop.image[in], 1e-4);
        ASSERT_EQ(p.label[out], crop.label[in]);
      }
    }
  }
}

TEST(SpatialTransform, DummyTwoDNeverMixesSlices) {
  const Affine3 m = rotation_scale({25.0, 10.0, -12.0}, 1.3, true);
  EXPECT_EQ(m[0][0], 1.0);
  EXPECT_EQ(m[0][1], 0.0);
  EXPECT_EQ(m[0][2], 0.0);
  EXPECT_EQ(m[1][0], 0.0);
  EXPECT_EQ(m[2][0], 0.0);
}

TEST(SpatialTransform, LabelsKeepTheirValueSet) {
  const auto c = make_case("c", {24, 48, 48}, 1, 3, /*box_class=*/5);
  const std::set<int16_t> allowed{-1, 0, 1, 5};
  ASSERT_EQ(label_values(c->label.voxels.data(), c->label.size()), allowed);
  Rng rng(11);
  for (int trial = 0; trial < 6; ++trial) {
    const Affine3 m = rotation_scale({rng.uniform(-30, 30), rng.uniform(-30, 30), rng.uniform(-30, 30)},
                                     rng.uniform(0.7, 1.4), false);
    for (auto interpolation : {LabelInterpolation::kLinear, LabelInterpolation::kNearest}) {
      OwnedPatch p(1, kPatch);
      spatial_transform(*c, {4, 8, 8}, m, interpolation, p.ref);
      const auto values = label_values(p.label.data(), p.label.size());
      EXPECT_TRUE(std::includes(allowed.begin(), allowed.end(), values.begin(), values.end()));
      EXPECT_TRUE(values.count(1)) << "the ball should survive a mild rotation";
    }
  }
}

TEST(AugmentPatch, IntensityTransformsNeverTouchLabels) {
  const auto c = make_case("c", {20, 40, 36}, 2);
  const Int3 lo{2, 4, 3};
  const OwnedPatch crop = cropped(*c, lo, kPatch);
  const AugmentOptions options = only_intensity();
  for (int64_t sample = 0; sample < 3; ++sample) {
    const DrawKey key{9, 0, 0, sample};
    const AugmentDraw draw = draw_augmentation(options, key, 2, false);
    ASSERT_TRUE(draw.noise && !draw.brightness.empty() && !draw.gamma.empty() &&
                !draw.inverted_gamma.empty());
    OwnedPatch p(2, kPatch);
    augment_patch(*c, lo, options, draw, key, p.ref);
    EXPECT_EQ(p.label, crop.label);
    EXPECT_NE(p.image, crop.image);
  }
}

TEST(AugmentPatch, IgnoreLabelBecomesBackgroundOnlyWhenAsked) {
  const auto c = make_case("c", {20, 40, 36});
  const Int3 lo{-2, 0, 0};  // includes the −1 slab and padding
  for (bool to_background : {true, false}) {
    AugmentOptions options = no_augmentation();
    options.ignore_to_background = to_background;
    OwnedPatch p(1, kPatch);
    const DrawKey key{};
    augment_patch(*c, lo, options, draw_augmentation(options, key, 1, false), key, p.ref);
    EXPECT_EQ(label_values(p.label.data(), p.label.size()).count(-1), to_background ? 0u : 1u);
  }
}

TEST(DrawAugmentation, SameKeySameDrawsAndProbabilitiesAreRespected) {
  const AugmentOptions options;
  int rotated = 0, scaled = 0, gamma = 0;
  for (int64_t sample = 0; sample < 2000; ++sample) {
    const DrawKey key{1, 0, 5, sample};
    const AugmentDraw a = draw_augmentation(options, key, 1, false);
    const AugmentDraw b = draw_augmentation(options, key, 1, false);
    ASSERT_EQ(a.rotation_deg, b.rotation_deg);
    ASSERT_EQ(a.scale, b.scale);
    ASSERT_EQ(a.gamma, b.gamma);
    rotated += a.rotated;
    scaled += a.scaled;
    gamma += !a.gamma.empty();
    for (double angle : a.rotation_deg) ASSERT_LE(std::abs(angle), 30.0);
    if (a.scaled) {
      ASSERT_GE(a.scale, 0.7);
      ASSERT_LE(a.scale, 1.4);
    }
  }
  EXPECT_NEAR(rotated / 2000.0, 0.2, 0.03);
  EXPECT_NEAR(scaled / 2000.0, 0.2, 0.03);
  EXPECT_NEAR(gamma / 2000.0, 0.3, 0.03);
  const AugmentDraw none = draw_augmentation(no_augmentation(), {}, 1, false);
  EXPECT_FALSE(none.rotated || none.scaled || none.noise || none.mirror[0] || !none.gamma.empty());
}

TEST(DrawAugmentation, DummyTwoDRotatesInPlaneOnly) {
  AugmentOptions options;
  options.rotation_probability = 1.0;
  const AugmentDraw d = draw_augmentation(options, {}, 1, true);
  EXPECT_NE(d.rotation_deg[0], 0.0);
  EXPECT_EQ(d.rotation_deg[1], 0.0);
  EXPECT_EQ(d.rotation_deg[2], 0.0);
}

TEST(IntensityTransforms, GammaKeepsMeanAndStdContrastKeepsRange) {
  const auto c = make_case("c", {20, 40, 36});
  OwnedPatch p = cropped(*c, {0, 0, 0}, kPatch);
  const double mean = mean_of(p.image), std = std_of(p.image);
  for (bool invert : {true, false}) {
    std::vector<float> x = p.image;
    apply_gamma(x.data(), x.size(), 1.4, invert, true);
    EXPECT_NE(x, p.image);
    EXPECT_NEAR(mean_of(x), mean, 1e-4);
    EXPECT_NEAR(std_of(x), std, 1e-4);
  }
  std::vector<float> x = p.image;
  adjust_contrast(x.data(), x.size(), 1.25);
  const auto [lo, hi] = std::minmax_element(p.image.begin(), p.image.end());
  EXPECT_GE(*std::min_element(x.begin(), x.end()), *lo);
  EXPECT_LE(*std::max_element(x.begin(), x.end()), *hi);
  EXPECT_GT(std_of(x), std);
}

TEST(IntensityTransforms, NoiseAddsTheRequestedStd) {
  std::vector<float> x(20000, 1.0f);
  Rng rng(2);
  add_gaussian_noise(x.data(), x.size(), 0.1, rng);
  EXPECT_NEAR(mean_of(x), 1.0, 0.005);
  EXPECT_NEAR(std_of(x), 0.1, 0.005);
}

TEST(IntensityTransforms, BlurAndLowResolutionKeepConstantsAndSmoothEdges) {
  const Shape3 shape{8, 16, 16};
  std::vector<float> constant(voxel_count(shape), 3.0f);
  gaussian_blur(constant.data(), shape, 1.0);
  simulate_low_resolution(constant.data(), shape, 0.5, false);
  for (float v : constant) ASSERT_NEAR(v, 3.0f, 1e-5);

  std::vector<float> impulse(voxel_count(shape), 0.0f);
  impulse[(4 * 16 + 8) * 16 + 8] = 1.0f;
  gaussian_blur(impulse.data(), shape, 0.8);
  EXPECT_LT(impulse[(4 * 16 + 8) * 16 + 8], 0.5f);
  EXPECT_NEAR(std::accumulate(impulse.begin(), impulse.end(), 0.0), 1.0, 1e-5);  // far from the border
  EXPECT_FLOAT_EQ(impulse[(4 * 16 + 8) * 16 + 7], impulse[(4 * 16 + 8) * 16 + 9]);
}

TEST(IntensityTransforms, LowResolutionOfDummyTwoDKeepsSlicesApart) {
  const Shape3 shape{4, 32, 32};
  std::vector<float> slices(voxel_count(shape));
  for (std::size_t i = 0; i < slices.size(); ++i) slices[i] = static_cast<float>(i / (32 * 32));  // z only
  std::vector<float> x = slices;
  simulate_low_resolution(x.data(), shape, 0.5, true);
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], slices[i], 1e-5);
  simulate_low_resolution(x.data(), shape, 0.5, false);
  EXPECT_GT(std::abs(x[0] - slices[0]), 1e-3);
}

TEST(DownsampleNearest, TakesTheVoxelContainingEachOutputCentre) {
  const Shape3 from{4, 8, 8}, to{2, 4, 4};
  std::vector<int16_t> label(voxel_count(from));
  std::iota(label.begin(), label.end(), 0);
  std::vector<int16_t> out(voxel_count(to));
  downsample_nearest(label.data(), from, out.data(), to);
  for (int64_t z = 0; z < 2; ++z) {
    for (int64_t y = 0; y < 4; ++y) {
      for (int64_t x = 0; x < 4; ++x) {
        EXPECT_EQ(out[(z * 4 + y) * 4 + x], label[((2 * z + 1) * 8 + 2 * y + 1) * 8 + 2 * x + 1]);
      }
    }
  }
}

TEST(AugmentOptionsValidation, NamesTheField) {
  AugmentOptions o;
  o.gamma_probability = 1.5;
  EXPECT_THAT([&] { validate(o); },
              ::testing::ThrowsMessage<InputError>(::testing::HasSubstr("gamma_probability")));
  o = {};
  o.min_scale = 1.5;
  EXPECT_THAT([&] { validate(o); }, ::testing::ThrowsMessage<InputError>(::testing::HasSubstr("min_scale")));
  EXPECT_NO_THROW(validate(AugmentOptions{}));
}

}  // namespace
}  // namespace e2e
