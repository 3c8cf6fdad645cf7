#include "data/loader.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/data/sampling_fixtures.hpp"

namespace e2e {
namespace {

using testing::label_values;
using testing::make_case;
using testing::make_single_voxel_case;

std::shared_ptr<MemoryCaseSource> three_cases(int64_t channels = 1) {
  return std::make_shared<MemoryCaseSource>(std::vector<std::shared_ptr<const PreprocessedCase>>{
      make_case("case_a", {24, 40, 44}, channels, 1), make_case("case_b", {20, 48, 40}, channels, 2),
      make_case("case_c", {28, 36, 36}, channels, 3)});
}

LoaderOptions small_options() {
  LoaderOptions o;
  o.patch_size = {16, 32, 32};
  o.global_batch_size = 3;
  o.seed = 17;
  o.target_shapes = {{8, 16, 16}, {4, 8, 8}};
  // Draw everything often so that every transform takes part in the comparisons.
  o.augment.rotation_probability = o.augment.scale_probability = 0.5;
  o.augment.noise_probability = o.augment.blur_probability = o.augment.gamma_probability = 0.5;
  o.augment.low_resolution_probability = o.augment.contrast_probability = 0.5;
  return o;
}

void expect_same_batch(const Batch& a, const Batch& b) {
  EXPECT_EQ(a.iteration, b.iteration);
  EXPECT_EQ(a.case_ids, b.case_ids);
  EXPECT_EQ(a.image, b.image);
  EXPECT_EQ(a.label, b.label);
  EXPECT_EQ(a.targets, b.targets);
}

std::vector<Batch> take(BatchLoader& loader, int n) {
  std::vector<Batch> batches;
  for (int i = 0; i < n; ++i) batches.push_back(loader.next());
  return batches;
}

TEST(Loader, BatchLayoutIsContiguousSamplesTimesChannels) {
  LoaderOptions o = small_options();
  const Batch b = make_batch(*three_cases(2), o, 0);
  const int64_t n = 16 * 32 * 32;
  EXPECT_EQ(b.size, 3);
  EXPECT_EQ(b.channels, 2);
  EXPECT_EQ(b.image.size(), static_cast<std::size_t>(3 * 2 * n));
  EXPECT_EQ(b.label.size(), static_cast<std::size_t>(3 * n));
  ASSERT_EQ(b.targets.size(), 2u);
  EXPECT_EQ(b.targets[0].size(), static_cast<std::size_t>(3 * 8 * 16 * 16));
  EXPECT_EQ(b.targets[1].size(), static_cast<std::size_t>(3 * 4 * 8 * 8));
  EXPECT_EQ(b.global_samples, (std::vector<int64_t>{0, 1, 2}));
}

TEST(Loader, SameSeedGivesTheSameBatchesWithOneAndFourThreads) {
  auto source = three_cases();
  LoaderOptions o = small_options();
  o.threads = 1;
  BatchLoader one(source, o);
  o.threads = 4;
  BatchLoader four(source, o);
  const auto a = take(one, 5);
  const auto b = take(four, 5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(a[i].iteration, i);
    expect_same_batch(a[i], b[i]);
  }
  EXPECT_NE(a[0].image, a[1].image);
}

TEST(Loader, DifferentSeedsGiveDifferentBatches) {
  auto source = three_cases();
  LoaderOptions o = small_options();
  const Batch a = make_batch(*source, o, 0);
  o.seed = 18;
  EXPECT_NE(make_batch(*source, o, 0).image, a.image);
}

TEST(Loader, RankSlicesAreDisjointAndTogetherEqualTheOneRankBatch) {
  auto source = three_cases();
  LoaderOptions o = small_options();
  o.global_batch_size = 5;
  const int64_t n = 16 * 32 * 32;
  for (int iteration = 0; iteration < 2; ++iteration) {
    const Batch whole = make_batch(*source, o, iteration);
    for (int ranks : {2, 3}) {
      std::vector<float> images;
      std::vector<int16_t> labels;
      std::vector<int64_t> samples;
      std::vector<std::vector<float>> rank_images;
      for (int r = 0; r < ranks; ++r) {
        LoaderOptions ro = o;
        ro.rank = r;
        ro.ranks = ranks;
        const Batch part = make_batch(*source, ro, iteration);
        EXPECT_EQ(part.image.size(), static_cast<std::size_t>(part.size * n));
        images.insert(images.end(), part.image.begin(), part.image.end());
        labels.insert(labels.end(), part.label.begin(), part.label.end());
        samples.insert(samples.end(), part.global_samples.begin(), part.global_samples.end());
        rank_images.push_back(part.image);
      }
      EXPECT_EQ(samples, (std::vector<int64_t>{0, 1, 2, 3, 4})) << ranks << " ranks";
      EXPECT_EQ(images, whole.image) << ranks << " ranks";
      EXPECT_EQ(labels, whole.label) << ranks << " ranks";
      for (int r = 1; r < ranks; ++r) {
        EXPECT_FALSE(std::equal(rank_images[0].begin(), rank_images[0].begin() + n, rank_images[r].begin()));
      }
    }
  }
}

TEST(Loader, ForcedSamplesContainForeground) {
  // A single foreground voxel in a large case: a uniform patch almost never holds it, a forced one always.
  auto source = std::make_shared<MemoryCaseSource>(std::vector<std::shared_ptr<const PreprocessedCase>>{
      make_single_voxel_case("sparse", {40, 96, 96}, {30, 10, 80})});
  for (bool validation : {true, false}) {
    LoaderOptions o = small_options();
    o.validation = validation;
    o.augment = no_augmentation();  // keep the centre voxel where the sampler put it
    o.augment.mirror_probability = 0.5;
    o.global_batch_size = 4;  // sample 3 forced
    int unforced_with_foreground = 0;
    for (int iteration = 0; iteration < 10; ++iteration) {
      const Batch b = make_batch(*source, o, iteration);
      const int64_t n = voxel_count(b.patch);
      for (int64_t i = 0; i < b.size; ++i) {
        const bool has_foreground = label_values(b.label.data() + i * n, n).count(1) > 0;
        EXPECT_EQ(b.placements[i].forced_foreground, i == 3);
        if (i == 3) {
          EXPECT_TRUE(has_foreground) << "iteration " << iteration;
          EXPECT_EQ(b.placements[i].foreground_class, 1);
        } else {
          unforced_with_foreground += has_foreground;
        }
      }
    }
    EXPECT_LT(unforced_with_foreground, 10);
  }
}

TEST(Loader, ValidationModeCropsWithoutAugmenting) {
  auto source = three_cases();
  LoaderOptions o = small_options();
  o.validation = true;
  o.augment.ignore_to_background = false;
  const Batch b = make_batch(*source, o, 4);
  const int64_t n = voxel_count(b.patch);
  for (int64_t i = 0; i < b.size; ++i) {
    const PatchPlacement& p = b.placements[i];
    EXPECT_EQ(p.box_lo, p.patch_lo);  // the sampling box is the patch itself
    std::vector<float> image(n);
    std::vector<int16_t> label(n);
    for (std::size_t k = 0; k < source->size(); ++k) {
      if (source->case_id(k) != b.case_ids[i]) continue;
      crop_case(*source->load(k), p.patch_lo, {image.data(), label.data(), 1, b.patch});
    }
    EXPECT_TRUE(std::equal(image.begin(), image.end(), b.image.begin() + i * n));
    EXPECT_TRUE(std::equal(label.begin(), label.end(), b.label.begin() + i * n));
  }
}

TEST(Loader, TargetsAreNearestDownsampledLabelsWithoutIgnoreValues) {
  auto source = three_cases();
  const LoaderOptions o = small_options();
  const Batch b = make_batch(*source, o, 2);
  const int64_t n = voxel_count(b.patch);
  EXPECT_EQ(label_values(b.label.data(), b.label.size()).count(-1), 0u);
  for (std::size_t k = 0; k < b.targets.size(); ++k) {
    const Shape3& shape = b.target_shapes[k];
    for (int64_t i = 0; i < b.size; ++i) {
      std::vector<int16_t> expected(voxel_count(shape));
      downsample_nearest(b.label.data() + i * n, b.patch, expected.data(), shape);
      EXPECT_TRUE(
          std::equal(expected.begin(), expected.end(), b.targets[k].begin() + i * voxel_count(shape)));
    }
  }
}

TEST(Loader, ResumesAtTheFirstIteration) {
  auto source = three_cases();
  LoaderOptions o = small_options();
  o.first_iteration = 3;
  BatchLoader loader(source, o);
  const Batch b = loader.next();
  EXPECT_EQ(b.iteration, 3);
  expect_same_batch(b, make_batch(*source, o, 3));
}

class FailingSource : public CaseSource {
 public:
  explicit FailingSource(std::shared_ptr<const CaseSource> inner) : inner_(std::move(inner)) {}
  std::size_t size() const override { return inner_->size(); }
  std::string case_id(std::size_t index) const override { return inner_->case_id(index); }
  std::shared_ptr<const PreprocessedCase> load(std::size_t index) const override {
    if (index == 1) throw std::runtime_error("disk on fire while reading case_b");
    return inner_->load(index);
  }

 private:
  std::shared_ptr<const CaseSource> inner_;
};

TEST(Loader, WorkerExceptionsReachTheConsumerWithTheirMessage) {
  auto source = std::make_shared<FailingSource>(three_cases());
  LoaderOptions o = small_options();
  o.threads = 2;
  BatchLoader loader(source, o);
  const auto next = [&] {
    for (int i = 0; i < 20; ++i) loader.next();  // case_b is drawn well before this
  };
  EXPECT_THAT(next, ::testing::ThrowsMessage<std::runtime_error>(::testing::HasSubstr("disk on fire")));
  EXPECT_THAT([&] { loader.next(); },
              ::testing::ThrowsMessage<std::runtime_error>(::testing::HasSubstr("case_b")));
}

TEST(Loader, StopsCleanlyWhenTheConsumerStopsEarly) {
  auto source = three_cases();
  LoaderOptions o = small_options();
  o.threads = 3;
  o.queue_depth = 2;
  { BatchLoader untouched(source, o); }
  {
    BatchLoader loader(source, o);
    loader.next();
  }
  SUCCEED();  // a hang or crash in the destructors fails the run
}

TEST(Loader, ReportsConsumerWaitTime) {
  auto source = three_cases();
  LoaderOptions o = small_options();
  o.threads = 2;
  BatchLoader loader(source, o);
  take(loader, 3);
  const LoaderStats stats = loader.take_stats();
  EXPECT_EQ(stats.batches, 3);
  EXPECT_GT(stats.wait_seconds, 0.0);  // the first batch cannot be ready at construction time
  EXPECT_LE(stats.wait_seconds, stats.wall_seconds);
  EXPECT_GT(stats.wait_fraction(), 0.0);
  EXPECT_LE(stats.wait_fraction(), 1.0);
  EXPECT_EQ(loader.stats().batches, 0);
}

TEST(Loader, RejectsBadOptionsNamingTheField) {
  auto source = three_cases();
  const auto expect_field = [&](LoaderOptions o, const std::string& field) {
    EXPECT_THAT([&] { BatchLoader loader(source, o); },
                ::testing::ThrowsMessage<InputError>(::testing::HasSubstr(field)));
  };
  LoaderOptions o = small_options();
  o.patch_size = {16, 0, 32};
  expect_field(o, "loader.patch_size");
  o = small_options();
  o.threads = -1;
  expect_field(o, "loader.threads");
  o = small_options();
  o.ranks = 4;  // more ranks than the 3 samples
  expect_field(o, "loader.ranks");
  o = small_options();
  o.augment.blur_probability = -0.1;
  expect_field(o, "augment.blur_probability");
  EXPECT_THROW(
      BatchLoader(std::make_shared<MemoryCaseSource>(std::vector<std::shared_ptr<const PreprocessedCase>>{}),
                  small_options()),
      InputError);
}

TEST(Loader, RejectsCasesWithDifferentChannelCounts) {
  auto source = std::make_shared<MemoryCaseSource>(std::vector<std::shared_ptr<const PreprocessedCase>>{
      make_case("one_channel", {20, 40, 40}, 1), make_case("two_channels", {20, 40, 40}, 2)});
  LoaderOptions o = small_options();
  o.global_batch_size = 8;
  EXPECT_THAT([&] { make_batch(*source, o, 0); },
              ::testing::ThrowsMessage<InputError>(::testing::HasSubstr("channels")));
}

}  // namespace
}  // namespace e2e
