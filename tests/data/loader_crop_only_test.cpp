// LoaderOptions::crop_only (device augmentation): the loader hands over sampling boxes and the draws.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "data/loader.hpp"
#include "tests/data/sampling_fixtures.hpp"

namespace e2e {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<MemoryCaseSource> two_cases() {
  return std::make_shared<MemoryCaseSource>(std::vector<std::shared_ptr<const PreprocessedCase>>{
      testing::make_case("a", {24, 40, 44}, 2, 1), testing::make_case("b", {20, 48, 40}, 2, 2)});
}

LoaderOptions crop_only_options() {
  LoaderOptions o;
  o.patch_size = {16, 32, 32};
  o.global_batch_size = 3;
  o.seed = 9;
  o.crop_only = true;
  o.augment.elastic_probability = 0.5;
  return o;
}

std::string error_of(const LoaderOptions& options) {
  try {
    validate(options);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(LoaderCropOnly, BatchHoldsTheSamplingBoxesAndTheDraws) {
  const auto source = two_cases();
  const LoaderOptions o = crop_only_options();
  Batch batch = make_batch(*source, o, 4);
  const Shape3 box = sampling_size(o.patch_size, o.augment);
  EXPECT_EQ(batch.patch, o.patch_size);
  EXPECT_EQ(batch.box, box);
  ASSERT_EQ(batch.draws.size(), 3u);
  ASSERT_EQ(batch.keys.size(), 3u);
  for (int64_t i = 0; i < 3; ++i) {
    const DrawKey& key = batch.keys[i];
    EXPECT_EQ(key.iteration, 4);
    EXPECT_EQ(key.sample, i);
    const AugmentDraw expected = draw_augmentation(o.augment, key, 2, false);
    EXPECT_EQ(batch.draws[i].rotation_deg, expected.rotation_deg);
    EXPECT_EQ(batch.draws[i].elastic_alpha, expected.elastic_alpha);
    EXPECT_EQ(batch.draws[i].gamma, expected.gamma);
    // The sample is the plain crop of its box.
    const auto c = source->load(batch.case_ids[i] == "a" ? 0 : 1);
    std::vector<float> image(2 * voxel_count(box));
    std::vector<int16_t> label(voxel_count(box));
    crop_case(*c, batch.placements[i].box_lo, {image.data(), label.data(), 2, box});
    const PatchRef sample = batch.sample(i);
    EXPECT_TRUE(std::equal(image.begin(), image.end(), sample.image));
    EXPECT_TRUE(std::equal(label.begin(), label.end(), sample.label));
  }
}

TEST(LoaderCropOnly, PlacementsAreThoseOfTheAugmentingLoader) {
  const auto source = two_cases();
  LoaderOptions o = crop_only_options();
  o.augment.elastic_probability = 0.0;
  const Batch cropped = make_batch(*source, o, 2);
  o.crop_only = false;
  const Batch augmented = make_batch(*source, o, 2);
  EXPECT_EQ(cropped.case_ids, augmented.case_ids);
  for (std::size_t i = 0; i < cropped.placements.size(); ++i) {
    EXPECT_EQ(cropped.placements[i].patch_lo, augmented.placements[i].patch_lo);
  }
  EXPECT_EQ(augmented.box, augmented.patch);
  EXPECT_TRUE(augmented.draws.empty());
}

TEST(LoaderCropOnly, ValidationBatchesStayUnaugmentedPatches) {
  LoaderOptions o = crop_only_options();
  o.validation = true;
  const Batch batch = make_batch(*two_cases(), o, 0);
  EXPECT_EQ(batch.box, o.patch_size);
  EXPECT_TRUE(batch.draws.empty());
}

TEST(LoaderCropOnly, ElasticNeedsDeviceAugmentationAndTargetsNeedTheCpuPath) {
  LoaderOptions o = crop_only_options();
  EXPECT_EQ(error_of(o), "");
  o.crop_only = false;
  EXPECT_THAT(error_of(o), HasSubstr("augment.elastic_probability: 0.5 needs device augmentation"));
  o.validation = true;
  EXPECT_EQ(error_of(o), "");
  o = crop_only_options();
  o.target_shapes = {{8, 16, 16}};
  EXPECT_THAT(error_of(o), HasSubstr("loader.target_shapes"));
  o = crop_only_options();
  o.augment.min_elastic_sigma = 0.0;
  EXPECT_THAT(error_of(o), HasSubstr("augment.min_elastic_sigma"));
}

}  // namespace
}  // namespace e2e
