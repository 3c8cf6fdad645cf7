#include "data/resample.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

namespace e2e {
namespace {

// a[i, j, k] = (30i + 6j + k)^1.5, shape (4, 5, 6): the reference vector of data.md.
Volume<float> power_ramp() {
  Volume<float> a({4, 5, 6});
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 5; ++j)
      for (int64_t k = 0; k < 6; ++k)
        a.at(i, j, k) = static_cast<float>(std::pow(30.0 * i + 6.0 * j + k, 1.5));
  return a;
}

void expect_column(const Volume<float>& r, const std::vector<double>& expected) {
  ASSERT_EQ(r.shape, (Shape3{6, 3, 8}));
  for (int64_t i = 0; i < 6; ++i) EXPECT_NEAR(r.at(i, 1, 3), expected[i], 1e-4);
}

TEST(Resample, CubicMatchesSkimageOrder3) {
  expect_column(resize(power_ramp(), {6, 3, 8}, Interpolation::Cubic),
                {39.314759, 149.83335, 342.889965, 567.77958, 878.52896, 1089.464364});
}

TEST(Resample, LinearMatchesSkimageOrder1) {
  expect_column(resize(power_ramp(), {6, 3, 8}, Interpolation::Linear),
                {53.097147, 173.105451, 350.626537, 580.677662, 850.351611, 1062.51278});
}

TEST(Resample, NearestRepeatsVoxelsHalfVoxelAligned) {
  Volume<float> v({1, 1, 3});
  v.voxels = {1, 2, 3};
  EXPECT_EQ(resize(v, {1, 1, 6}, Interpolation::Nearest).voxels, (std::vector<float>{1, 1, 2, 2, 3, 3}));
}

TEST(Resample, CubicOutputStaysInsideTheInputRange) {
  Volume<float> step({4, 4, 8});
  for (int64_t z = 0; z < 4; ++z)
    for (int64_t y = 0; y < 4; ++y)
      for (int64_t x = 0; x < 8; ++x) step.at(z, y, x) = x < 4 ? -5.0f : 10.0f;
  const Volume<float> up = resize(step, {7, 9, 21}, Interpolation::Cubic);
  EXPECT_EQ(*std::min_element(up.voxels.begin(), up.voxels.end()), -5.0f);
  EXPECT_EQ(*std::max_element(up.voxels.begin(), up.voxels.end()), 10.0f);
}

TEST(Resample, SameShapeIsTheIdentity) {
  const Volume<float> a = power_ramp();
  const Volume<float> b = resize(a, a.shape, Interpolation::Cubic);
  for (std::size_t i = 0; i < a.voxels.size(); ++i) EXPECT_FLOAT_EQ(a.voxels[i], b.voxels[i]);
}

TEST(Resample, ResizeScalesTheSpacing) {
  Volume<float> v({4, 10, 10}, {3.0, 1.0, 1.0});
  EXPECT_EQ(resize(v, {6, 5, 20}, Interpolation::Linear).spacing, (Spacing3{2.0, 2.0, 0.5}));
}

TEST(Resample, ResampledShapeRoundsSpacingRatioTimesShape) {
  EXPECT_EQ(resampled_shape({10, 20, 30}, {2.5, 1.0, 0.8}, {1.0, 1.5, 0.8}), (Shape3{25, 13, 30}));
  EXPECT_EQ(resampled_shape({1, 1, 1}, {1.0, 1.0, 1.0}, {5.0, 5.0, 5.0}), (Shape3{1, 1, 1}));
  EXPECT_EQ(resampled_shape({5, 7, 181}, {1.0, 1.0, 1.0}, {2.0, 2.0, 2.0}),
            (Shape3{2, 4, 90}));  // numpy.round
}

TEST(Resample, SeparateAxisFollowsTheAnisotropyRule) {
  EXPECT_EQ(separate_axis({5.0, 1.0, 1.0}, {1.0, 1.0, 1.0}), 0);
  EXPECT_EQ(separate_axis({1.0, 1.0, 1.0}, {1.0, 4.0, 1.0}), 1);   // only the target is anisotropic
  EXPECT_EQ(separate_axis({3.0, 1.0, 1.0}, {3.0, 1.0, 1.0}), -1);  // ratio must exceed 3
  EXPECT_EQ(separate_axis({5.0, 5.0, 1.0}, {1.0, 1.0, 1.0}), -1);  // two coarse axes: resample jointly
}

TEST(Resample, AnisotropicImagesUseNearestAlongTheCoarseAxis) {
  MultiVolume<float> image(1, {4, 6, 6}, {6.0, 1.0, 1.0});
  for (int64_t z = 0; z < 4; ++z)
    std::fill(image.channel(0) + z * 36, image.channel(0) + (z + 1) * 36, static_cast<float>(10 * z));
  const MultiVolume<float> out = resample_image(image, {3.0, 1.0, 1.0});
  ASSERT_EQ(out.shape, (Shape3{8, 6, 6}));
  EXPECT_EQ(out.spacing, (Spacing3{3.0, 1.0, 1.0}));
  // Each output slice is a copy of the nearest input slice: no blending between slices.
  for (int64_t z = 0; z < 8; ++z)
    for (int64_t i = 0; i < 36; ++i) ASSERT_EQ(out.channel(0)[z * 36 + i], 10.0f * (z / 2)) << z;
}

TEST(Resample, LabelTiesGoToTheLaterLabel) {
  Volume<int16_t> pair({1, 1, 2});
  pair.voxels = {1, 2};  // halving gives both masks exactly 0.5
  EXPECT_EQ(resize_labels(pair, {1, 1, 1}).voxels, (std::vector<int16_t>{2}));
  pair.voxels = {-1, 0};
  EXPECT_EQ(resize_labels(pair, {1, 1, 1}).voxels, (std::vector<int16_t>{0}));
}

Volume<int16_t> random_blobs(Shape3 shape, unsigned seed) {
  std::mt19937 rng(seed);
  Volume<int16_t> labels(shape);
  const std::vector<int16_t> values = {-1, 1, 2, 5};
  for (int b = 0; b < 12; ++b) {
    std::uniform_int_distribution<int64_t> cz(0, shape[0] - 1), cy(0, shape[1] - 1), cx(0, shape[2] - 1);
    const int64_t z0 = cz(rng), y0 = cy(rng), x0 = cx(rng), r = 1 + rng() % 4;
    const int16_t value = values[rng() % values.size()];
    for (int64_t z = 0; z < shape[0]; ++z)
      for (int64_t y = 0; y < shape[1]; ++y)
        for (int64_t x = 0; x < shape[2]; ++x)
          if ((z - z0) * (z - z0) + (y - y0) * (y - y0) + (x - x0) * (x - x0) <= r * r)
            labels.at(z, y, x) = value;
  }
  return labels;
}

// The definition: every label's mask resized linearly over the whole volume, ≥ 0.5 wins, ascending order.
Volume<int16_t> reference_label_resize(const Volume<int16_t>& labels, Shape3 new_shape, int coarse_axis) {
  const std::set<int16_t> values(labels.voxels.begin(), labels.voxels.end());
  Shape3 painted_shape = new_shape;
  if (coarse_axis >= 0) painted_shape[coarse_axis] = labels.shape[coarse_axis];
  Volume<int16_t> out(painted_shape);
  for (int16_t value : values) {
    Volume<float> mask(labels.shape);
    for (std::size_t i = 0; i < mask.voxels.size(); ++i)
      mask.voxels[i] = labels.voxels[i] == value ? 1.0f : 0.0f;
    const Volume<float> resized = resize(mask, painted_shape, Interpolation::Linear, coarse_axis);
    for (std::size_t i = 0; i < out.voxels.size(); ++i)
      if (resized.voxels[i] >= 0.5f) out.voxels[i] = value;
  }
  if (coarse_axis < 0) return out;
  Volume<float> as_float(painted_shape);
  std::copy(out.voxels.begin(), out.voxels.end(), as_float.voxels.begin());
  const Volume<float> nearest = resize(as_float, new_shape, Interpolation::Nearest);
  Volume<int16_t> result(new_shape);
  std::copy(nearest.voxels.begin(), nearest.voxels.end(), result.voxels.begin());
  return result;
}

TEST(Resample, LabelResizeMatchesTheDefinitionAndKeepsTheLabelSet) {
  const Volume<int16_t> labels = random_blobs({12, 17, 15}, 7);
  const std::set<int16_t> input_set(labels.voxels.begin(), labels.voxels.end());
  for (const Shape3& shape : {Shape3{7, 9, 8}, Shape3{20, 30, 31}, Shape3{12, 11, 23}}) {
    const Volume<int16_t> out = resize_labels(labels, shape);
    EXPECT_EQ(out.voxels, reference_label_resize(labels, shape, -1).voxels) << shape[0];
    const std::set<int16_t> output_set(out.voxels.begin(), out.voxels.end());
    EXPECT_EQ(output_set, input_set);
  }
}

TEST(Resample, AnisotropicLabelResizeMatchesTheDefinition) {
  const Volume<int16_t> labels = random_blobs({6, 16, 16}, 11);
  const Volume<int16_t> out = resize_labels(labels, {13, 10, 21}, 0);
  EXPECT_EQ(out.voxels, reference_label_resize(labels, {13, 10, 21}, 0).voxels);
}

TEST(Resample, ResampleLabelsCarriesTheTargetSpacing) {
  Volume<int16_t> labels = random_blobs({10, 10, 10}, 3);
  labels.spacing = {1.0, 1.0, 1.0};
  const Volume<int16_t> out = resample_labels(labels, {2.0, 2.0, 2.0});
  EXPECT_EQ(out.shape, (Shape3{5, 5, 5}));
  EXPECT_EQ(out.spacing, (Spacing3{2.0, 2.0, 2.0}));
}

}  // namespace
}  // namespace e2e
