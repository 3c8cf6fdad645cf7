// The device augmentation pipeline (on CPU tensors) against the CPU augmenter: same draws for the same keys,
// exact crops and mirrors, close intensity transforms, the same geometry, label rules, frequencies, seeds.
#include "worker/device_augment.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>

#include "data/loader.hpp"
#include "tests/data/sampling_fixtures.hpp"
#include "worker/data_source.hpp"

namespace e2e {
namespace {

const torch::Device kCpu(torch::kCPU);

class DeviceAugment : public ::testing::Test {
 protected:
  void SetUp() override { at::set_num_threads(1); }  // tiny tensors: OpenMP would only add overhead
};

// Samples of one case for both paths: each sample's sampling box (what the crop-only loader hands over) and
// the CPU augmenter's patch for the same key and placement.
struct Samples {
  std::shared_ptr<const PreprocessedCase> c;
  AugmentOptions options;
  Shape3 patch;
  std::vector<DrawKey> keys;
  std::vector<AugmentDraw> draws;
  std::vector<PatchPlacement> placements;
  torch::Tensor box_image, box_label;

  Samples(AugmentOptions options_, int64_t n, Shape3 patch_ = {16, 32, 32}, uint64_t seed = 5,
          std::shared_ptr<const PreprocessedCase> c_ = testing::make_case("c", {24, 40, 40}, 2, 3))
      : c(std::move(c_)), options(std::move(options_)), patch(patch_) {
    const Shape3 box = sampling_size(patch, options);
    const int64_t channels = c->image.channels;
    box_image = torch::empty({n, channels, box[0], box[1], box[2]}, torch::kFloat);
    box_label = torch::empty({n, box[0], box[1], box[2]}, torch::kInt16);
    for (int64_t i = 0; i < n; ++i) {
      const DrawKey key{seed, 0, 0, i};
      Rng rng(draw_seed(key, DrawStream::kPlacement));
      placements.push_back(place_patch(*c, patch, box, i % 2 == 1, rng));
      keys.push_back(key);
      draws.push_back(draw_augmentation(options, key, channels, is_dummy_2d(patch)));
      crop_case(*c, placements.back().box_lo,
                {box_image[i].data_ptr<float>(), box_label[i].data_ptr<int16_t>(), channels, box});
    }
  }

  TrainingBatch device(DeviceAugmenter* augmenter = nullptr) const {
    DeviceAugmenter own(options, kCpu);
    return (augmenter ? *augmenter : own).augment(box_image, box_label, patch, draws, keys);
  }

  // augment_patch's output for sample i, as tensors C×patch and patch (int64).
  std::pair<torch::Tensor, torch::Tensor> cpu(int64_t i) const {
    const int64_t channels = c->image.channels;
    torch::Tensor image = torch::empty({channels, patch[0], patch[1], patch[2]}, torch::kFloat);
    torch::Tensor label = torch::empty({patch[0], patch[1], patch[2]}, torch::kInt16);
    augment_patch(*c, placements[i].patch_lo, options, draws[i], keys[i],
                  {image.data_ptr<float>(), label.data_ptr<int16_t>(), channels, patch});
    return {image, label.to(torch::kLong)};
  }

  // The unaugmented patch of sample i.
  torch::Tensor crop(int64_t i) const { return cpu_with(no_augmentation(options), i).first; }

  std::pair<torch::Tensor, torch::Tensor> cpu_with(const AugmentOptions& o, int64_t i) const {
    Samples copy = *this;
    copy.options = o;
    copy.draws[i] = draw_augmentation(o, keys[i], c->image.channels, is_dummy_2d(patch));
    return copy.cpu(i);
  }
};

bool bitwise_equal(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  const torch::Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()) == 0;
}

AugmentOptions everything_on() {
  AugmentOptions o;
  o.rotation_probability = o.scale_probability = 1.0;
  o.noise_probability = o.blur_probability = o.blur_channel_probability = 1.0;
  o.brightness_probability = o.contrast_probability = 1.0;
  o.low_resolution_probability = o.low_resolution_channel_probability = 1.0;
  o.inverted_gamma_probability = o.gamma_probability = 1.0;
  o.elastic_probability = 1.0;
  o.min_elastic_alpha = 50.0;
  o.max_elastic_alpha = 200.0;
  return o;
}

// Only the named transform, with probability 1.
AugmentOptions only(double AugmentOptions::*probability) {
  AugmentOptions o = no_augmentation();
  o.*probability = 1.0;
  o.blur_channel_probability = o.low_resolution_channel_probability = 1.0;
  return o;
}

std::set<int64_t> values_of(const torch::Tensor& t) {
  const torch::Tensor v = std::get<0>(torch::_unique(t.to(torch::kLong)));
  return std::set<int64_t>(v.data_ptr<int64_t>(), v.data_ptr<int64_t>() + v.numel());
}

TEST_F(DeviceAugment, ShapesAndTypes) {
  const Samples s(everything_on(), 3);
  const TrainingBatch out = s.device();
  EXPECT_EQ(out.image.sizes(), (std::vector<int64_t>{3, 2, 16, 32, 32}));
  EXPECT_EQ(out.label.sizes(), (std::vector<int64_t>{3, 16, 32, 32}));
  EXPECT_EQ(out.image.scalar_type(), torch::kFloat);
  EXPECT_EQ(out.label.scalar_type(), torch::kLong);
  EXPECT_TRUE(torch::isfinite(out.image).all().item<bool>());
}

TEST_F(DeviceAugment, AllProbabilitiesZeroIsExactlyTheCpuCrop) {
  for (const bool ignore_to_background : {true, false}) {
    AugmentOptions o = no_augmentation();
    o.ignore_to_background = ignore_to_background;
    const Samples s(o, 4);
    const TrainingBatch out = s.device();
    for (int64_t i = 0; i < 4; ++i) {
      const auto [image, label] = s.cpu(i);
      EXPECT_TRUE(bitwise_equal(out.image[i], image)) << i;
      EXPECT_TRUE(bitwise_equal(out.label[i], label)) << i;
    }
  }
}

// A box larger than the patch (spatial transforms possible), but samples without a drawn one: pure crops.
TEST_F(DeviceAugment, SamplesWithoutASpatialDrawAreExactCrops) {
  AugmentOptions o = no_augmentation();
  o.rotation_probability = o.scale_probability = 0.3;
  const Samples s(o, 12);
  ASSERT_GT(s.box_image.size(3), 32);
  const TrainingBatch out = s.device();
  int crops = 0;
  for (int64_t i = 0; i < 12; ++i) {
    if (s.draws[i].rotated || s.draws[i].scaled) continue;
    ++crops;
    const auto [image, label] = s.cpu(i);
    EXPECT_TRUE(bitwise_equal(out.image[i], image)) << i;
    EXPECT_TRUE(bitwise_equal(out.label[i], label)) << i;
  }
  EXPECT_GT(crops, 0);
  EXPECT_LT(crops, 12);
}

TEST_F(DeviceAugment, MirroringIsExactlyTheCpuMirror) {
  AugmentOptions o = no_augmentation();
  o.mirror_probability = 0.5;
  const Samples s(o, 8);
  const TrainingBatch out = s.device();
  std::array<int, 3> mirrored{0, 0, 0};
  for (int64_t i = 0; i < 8; ++i) {
    const auto [image, label] = s.cpu(i);
    EXPECT_TRUE(bitwise_equal(out.image[i], image)) << i;
    EXPECT_TRUE(bitwise_equal(out.label[i], label)) << i;
    for (int d = 0; d < 3; ++d) mirrored[d] += s.draws[i].mirror[d];
  }
  for (int d = 0; d < 3; ++d) EXPECT_GT(mirrored[d], 0) << d;
}

// Rotation and scaling read the same source points as the CPU's transform: only the interpolation differs
// (trilinear vs cubic), which on this smooth image is far below what a wrong axis or centre would give.
TEST_F(DeviceAugment, SpatialTransformHasTheCpuGeometry) {
  for (const LabelInterpolation labels : {LabelInterpolation::kLinear, LabelInterpolation::kNearest}) {
    AugmentOptions o = no_augmentation();
    o.rotation_probability = o.scale_probability = 1.0;
    o.label_interpolation = labels;
    o.ignore_to_background = false;
    const Samples s(o, 4);
    const TrainingBatch out = s.device();
    for (int64_t i = 0; i < 4; ++i) {
      const auto [image, label] = s.cpu(i);
      const double diff = (out.image[i] - image).abs().mean().item<double>();
      const double unrotated = (s.crop(i) - image).abs().mean().item<double>();
      EXPECT_LT(diff, 0.05) << i;
      EXPECT_LT(diff, 0.1 * unrotated) << i;
      EXPECT_GT(out.label[i].eq(label).to(torch::kDouble).mean().item<double>(), 0.97) << i;
    }
  }
}

TEST_F(DeviceAugment, IntensityTransformsMatchTheCpu) {
  for (const auto probability :
       {&AugmentOptions::blur_probability, &AugmentOptions::brightness_probability,
        &AugmentOptions::contrast_probability, &AugmentOptions::low_resolution_probability,
        &AugmentOptions::inverted_gamma_probability, &AugmentOptions::gamma_probability}) {
    const Samples s(only(probability), 3);
    const TrainingBatch out = s.device();
    for (int64_t i = 0; i < 3; ++i) {
      const auto [image, label] = s.cpu(i);
      EXPECT_LT((out.image[i] - image).abs().max().item<double>(), 1e-5) << i;
      EXPECT_FALSE(bitwise_equal(s.crop(i), image));
      EXPECT_TRUE(bitwise_equal(out.label[i], label));
    }
  }
}

TEST_F(DeviceAugment, NoiseHasTheDrawnStd) {
  const Samples s(only(&AugmentOptions::noise_probability), 3, {16, 64, 64});
  const TrainingBatch out = s.device();
  for (int64_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(s.draws[i].noise);
    const double std = (out.image[i] - s.crop(i)).std().item<double>();
    EXPECT_NEAR(std, s.draws[i].noise_std, 0.02 * s.draws[i].noise_std) << i;
  }
}

TEST_F(DeviceAugment, LabelsOnlyTakeValuesOfTheInput) {
  for (const bool ignore_to_background : {true, false}) {
    AugmentOptions o = everything_on();
    o.mirror_probability = 0.5;
    o.max_scale = 2.0;  // reads outside the sampling box: −1 there
    o.ignore_to_background = ignore_to_background;
    const Samples s(o, 4);
    const TrainingBatch out = s.device();
    for (int64_t i = 0; i < 4; ++i) {
      std::set<int64_t> allowed = values_of(s.box_label[i]);
      allowed.insert(-1);
      if (ignore_to_background) {
        allowed.erase(-1);
        allowed.insert(0);
      }
      for (int64_t v : values_of(out.label[i])) EXPECT_TRUE(allowed.count(v)) << "sample " << i << ": " << v;
      if (!ignore_to_background) {
        EXPECT_TRUE(values_of(out.label[i]).count(-1)) << i;
      }
    }
  }
}

TEST_F(DeviceAugment, AppliedTransformFrequenciesMatchTheirProbabilities) {
  AugmentOptions o;  // moreDA
  o.elastic_probability = 0.2;
  const int64_t n = 2000, per_batch = 100;
  const auto c = testing::make_case("small", {8, 12, 12}, 1, 4);
  DeviceAugmenter augmenter(o, kCpu);
  for (int64_t first = 0; first < n; first += per_batch) {
    Samples s(o, per_batch, {6, 8, 8}, 100 + first, c);
    s.device(&augmenter);
  }
  const AppliedTransforms& a = augmenter.applied();
  ASSERT_EQ(a.samples, n);
  const auto expect_rate = [&](int64_t count, double p, const char* name) {
    const double sigma = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(static_cast<double>(count) / n, p, 4 * sigma) << name;
  };
  expect_rate(a.rotation, 0.2, "rotation");
  expect_rate(a.scaling, 0.2, "scaling");
  expect_rate(a.elastic, 0.2, "elastic");
  expect_rate(a.spatial, 1 - 0.8 * 0.8 * 0.8, "spatial");
  expect_rate(a.noise, 0.1, "noise");
  expect_rate(a.blur, 0.2 * 0.5, "blur");
  expect_rate(a.brightness, 0.15, "brightness");
  expect_rate(a.contrast, 0.15, "contrast");
  expect_rate(a.low_resolution, 0.25 * 0.5, "low resolution");
  expect_rate(a.inverted_gamma, 0.1, "inverted gamma");
  expect_rate(a.gamma, 0.3, "gamma");
  for (int d = 0; d < 3; ++d) expect_rate(a.mirror[d], 0.5, "mirror");
}

TEST_F(DeviceAugment, DeterministicUnderTheKey) {
  const Samples s(everything_on(), 2);
  const TrainingBatch a = s.device();
  const TrainingBatch b = s.device();
  EXPECT_TRUE(bitwise_equal(a.image, b.image));
  EXPECT_TRUE(bitwise_equal(a.label, b.label));
  const Samples other(everything_on(), 2, {16, 32, 32}, 6);
  EXPECT_FALSE(bitwise_equal(a.image, other.device().image));
}

// Dummy 2D: rotation, scaling and elastic deformation in-plane only, the same in every slice.
TEST_F(DeviceAugment, DummyTwoDimensionalWarpsEverySliceAlike) {
  auto flat = std::make_shared<PreprocessedCase>(*testing::make_case("flat", {6, 48, 48}, 1, 2));
  const int64_t plane = 48 * 48;
  for (int64_t z = 0; z < 6; ++z) {  // every slice a copy of slice 3, image and label
    std::copy_n(flat->image.voxels.begin() + 3 * plane, plane, flat->image.voxels.begin() + z * plane);
    std::copy_n(flat->label.voxels.begin() + 3 * plane, plane, flat->label.voxels.begin() + z * plane);
  }
  AugmentOptions o = no_augmentation();
  o.rotation_probability = o.scale_probability = o.elastic_probability = 1.0;
  o.min_elastic_alpha = 100.0;
  const Samples s(o, 2, {4, 32, 32}, 5, flat);
  ASSERT_TRUE(is_dummy_2d(s.patch));
  ASSERT_EQ(s.box_image.size(2), 4);
  const TrainingBatch out = s.device();
  for (int64_t z = 1; z < 4; ++z) {
    EXPECT_TRUE(torch::allclose(out.image.select(2, z), out.image.select(2, 0), 1e-5, 1e-5)) << z;
    EXPECT_TRUE(torch::equal(out.label.select(1, z), out.label.select(1, 0))) << z;
  }
  EXPECT_FALSE(torch::allclose(out.image[0][0][0], s.crop(0)[0][0], 1e-3, 1e-3));
}

// The wiring: a crop-only loader plus the augmenter behind LoaderBatchSource, here on the CPU.
TEST_F(DeviceAugment, LoaderBatchSourceAugmentsOnTheGivenDevice) {
  Config config;
  config.source = "test.yaml";
  config.training.patch_size = {16, 32, 32};
  config.training.batch_size = 2;
  config.training.validation_batches = 1;
  FoldData fold;
  fold.train = fold.val =
      std::make_shared<MemoryCaseSource>(std::vector<std::shared_ptr<const PreprocessedCase>>{
          testing::make_case("a", {24, 40, 40}, 1, 1), testing::make_case("b", {20, 36, 44}, 1, 2)});
  LoaderBatchSource source(config, fold, 3, 0, 1, 1, kCpu);
  const TrainingBatch first = source.train_batch(0);
  EXPECT_EQ(first.image.sizes(), (std::vector<int64_t>{2, 1, 16, 32, 32}));
  EXPECT_EQ(first.label.sizes(), (std::vector<int64_t>{2, 16, 32, 32}));
  EXPECT_EQ(first.label.scalar_type(), torch::kLong);
  source.train_batch(1);
  EXPECT_TRUE(bitwise_equal(source.train_batch(0).image, first.image));  // restarted loader, same batch
  EXPECT_EQ(source.validation_batch(0, 0).image.sizes(), first.image.sizes());

  if (!torch::cuda::is_available()) {
    config.data.augment_device = "cuda";
    try {
      LoaderBatchSource cuda(config, fold, 3, 0, 1, 1);
      FAIL() << "expected a ConfigError";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("data.augment_device"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace e2e
