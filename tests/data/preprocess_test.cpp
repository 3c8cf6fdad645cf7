#include "data/preprocess.hpp"
#include "data/folds.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "data/nifti.hpp"
#include "data/preprocess_dataset.hpp"
#include "data/resample.hpp"

namespace e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;

// ------------------------------------------------------------------------------- steps without files

TEST(Preprocess, IntensityStatsFollowNumpy) {
  std::vector<float> samples;
  for (int i = 100; i >= 1; --i) samples.push_back(static_cast<float>(i));
  const IntensityStats s = intensity_stats(samples);
  EXPECT_DOUBLE_EQ(s.mean, 50.5);
  EXPECT_NEAR(s.std, std::sqrt((100.0 * 100.0 - 1.0) / 12.0), 1e-12);  // population std
  EXPECT_DOUBLE_EQ(s.median, 50.5);
  EXPECT_NEAR(s.p00_5, 1.495, 1e-12);  // numpy: 1 + 0.005 · 99
  EXPECT_NEAR(s.p99_5, 99.505, 1e-12);
  EXPECT_EQ(s.min, 1.0);
  EXPECT_EQ(s.max, 100.0);
  EXPECT_EQ(s.samples, 100);
}

std::vector<Spacing3> z_spacings(const std::vector<double>& z) {
  std::vector<Spacing3> out;
  for (double v : z) out.push_back({v, 1.0, 1.0});
  return out;
}

TEST(Preprocess, TargetSpacingIsTheMedianUnlessTheCoarseAxisIsFarCoarser) {
  EXPECT_EQ(plan_target_spacing({{1.0, 0.8, 0.8}, {3.0, 0.7, 0.7}, {2.0, 0.9, 0.6}},
                                {{100, 200, 200}, {50, 200, 200}, {70, 210, 190}}),
            (Spacing3{2.0, 0.8, 0.7}));
  const std::vector<double> z = {2, 4, 5, 5, 5, 5, 5, 5, 5, 5};
  const std::vector<Shape3> flat(10, Shape3{20, 200, 200});  // 20 · 3 < 200: anisotropic in voxels too
  EXPECT_NEAR(plan_target_spacing(z_spacings(z), flat)[0], 3.8, 1e-12);  // 10th percentile of z
  const std::vector<Shape3> deep(10, Shape3{100, 200, 200});             // 100 · 3 > 200: keep the median
  EXPECT_EQ(plan_target_spacing(z_spacings(z), deep)[0], 5.0);
  const std::vector<double> thin = {0.5, 0.5, 5, 5, 5, 5, 5, 5, 5, 5};  // 10th percentile below in-plane
  EXPECT_NEAR(plan_target_spacing(z_spacings(thin), flat)[0], 1.0 + 1e-5, 1e-12);
}

Fingerprint small_fingerprint(const std::string& modality, double size_reduction) {
  Fingerprint f;
  f.channel_names = {modality};
  f.labels = {{0, "background"}, {1, "organ"}};
  IntensityStats stats;
  stats.mean = 40;
  stats.std = 20;
  stats.p00_5 = -100;
  stats.p99_5 = 200;
  stats.samples = 1000;
  f.intensity = {stats};
  for (int i = 0; i < 3; ++i)
    f.cases.push_back({"case_" + std::to_string(i),
                       {2.0, 1.0, 1.0},
                       {40, 100, 100},
                       {40, static_cast<int64_t>(100 * size_reduction), 100}});
  return f;
}

TEST(Preprocess, PlanTakesPatchBatchPoolsAndSpacingFromTheConfig) {
  Config config;
  config.training.patch_size = {16, 32, 32};
  config.training.batch_size = 4;
  config.model.levels = 4;
  config.model.pools = {{1, 2, 2}, {2, 2, 2}, {2, 2, 2}};
  config.data.target_spacing = Spacing3{1.5, 1.5, 1.5};
  const Plan plan = make_plan(small_fingerprint("CT", 1.0), config);
  EXPECT_EQ(plan.patch_size, (Int3{16, 32, 32}));
  EXPECT_EQ(plan.batch_size, 4);
  EXPECT_EQ(plan.pools, config.model.pools);
  EXPECT_EQ(plan.target_spacing, (Spacing3{1.5, 1.5, 1.5}));
  EXPECT_EQ(plan.median_shape, (Shape3{53, 67, 67}));  // 40 · 2 / 1.5, 100 / 1.5
  EXPECT_EQ(plan.normalization, std::vector<std::string>{"ct"});
  EXPECT_EQ(plan.use_nonzero_mask, std::vector<bool>{false});
  EXPECT_EQ(plan.foreground_classes(), std::vector<int>{1});
}

TEST(Preprocess, PlanWithoutConfigIsNnUNetsPlan) {
  const Plan plan = make_plan(small_fingerprint("T1", 0.5), std::nullopt);
  EXPECT_EQ(plan.target_spacing, (Spacing3{2.0, 1.0, 1.0}));
  EXPECT_EQ(plan.median_shape, (Shape3{40, 50, 100}));
  // nnU-Net v1's plan: the 512 mm box clipped to the median shape, padded to 2^pools per axis.
  EXPECT_EQ(plan.patch_size, (Int3{40, 56, 112}));
  EXPECT_EQ(plan.pools.front(), (Int3{1, 2, 2}));
  EXPECT_EQ(plan.normalization, std::vector<std::string>{"zscore"});
  EXPECT_EQ(plan.use_nonzero_mask, std::vector<bool>{true});  // cropping halved the cases
  EXPECT_EQ(make_plan(small_fingerprint("T1", 0.8), std::nullopt).use_nonzero_mask, std::vector<bool>{false});
}

TEST(Preprocess, CtPlanNeedsForeground) {
  Fingerprint f = small_fingerprint("CT", 1.0);
  f.intensity[0] = IntensityStats{};
  EXPECT_THAT([&] { make_plan(f, std::nullopt); },
              ::testing::ThrowsMessage<InputError>(HasSubstr("foreground")));
}

TEST(Preprocess, PlanRoundTripsThroughJson) {
  const Plan plan = make_plan(small_fingerprint("CT", 1.0), std::nullopt);
  const Plan back = plan_from_json(json::parse(to_json(plan).dump()));
  EXPECT_EQ(back.target_spacing, plan.target_spacing);
  EXPECT_EQ(back.patch_size, plan.patch_size);
  EXPECT_EQ(back.pools, plan.pools);
  EXPECT_EQ(back.labels, plan.labels);
  EXPECT_EQ(back.intensity[0].p99_5, 200.0);
  EXPECT_THROW(plan_from_json(json::parse(R"({"target_spacing": [1, 1]})")), InputError);
}

TEST(Preprocess, NonzeroMaskFillsHolesAndCropsToItsBox) {
  MultiVolume<float> image(2, {9, 10, 11});
  // A hollow box shell in channel 1 (its inside is a hole), one voxel in channel 0.
  for (int64_t z = 2; z <= 6; ++z)
    for (int64_t y = 2; y <= 7; ++y)
      for (int64_t x = 3; x <= 8; ++x)
        if (z == 2 || z == 6 || y == 2 || y == 7 || x == 3 || x == 8)
          image.channel(1)[(z * 10 + y) * 11 + x] = 5.0f;
  image.channel(0)[(1 * 10 + 4) * 11 + 4] = -1.0f;
  const Volume<uint8_t> mask = nonzero_mask(image);
  EXPECT_EQ(mask.at(4, 4, 5), 1);  // the hole is filled
  EXPECT_EQ(mask.at(0, 0, 0), 0);
  const CropBox box = bounding_box(mask);
  EXPECT_EQ(box.begin, (Int3{1, 2, 3}));
  EXPECT_EQ(box.end, (Int3{7, 8, 9}));
}

RawCaseData raw_case(Shape3 shape) {
  RawCaseData raw;
  raw.id = "case_x";
  raw.geometry = make_nifti_geometry(shape, {2.0, 1.0, 1.0});
  raw.image = MultiVolume<float>(1, shape, raw.geometry.spacing);
  raw.label = Volume<int16_t>(shape, raw.geometry.spacing);
  return raw;
}

TEST(Preprocess, CropMarksTheOutsideOfTheNonzeroRegion) {
  RawCaseData raw = raw_case({6, 8, 8});
  for (int64_t z = 1; z < 5; ++z)
    for (int64_t y = 2; y < 6; ++y)
      for (int64_t x = 2; x < 7; ++x) raw.image.channel(0)[(z * 8 + y) * 8 + x] = y == 2 ? 0.0f : 3.0f;
  raw.image.channel(0)[(2 * 8 + 4) * 8 + 4] = std::nanf("");  // NaN becomes 0 (inside: a filled hole)
  raw.label.at(3, 4, 4) = 1;
  raw.label.at(0, 0, 0) = 2;  // outside the box: cropped away, as in nnU-Net
  const CroppedCase c = crop_to_nonzero(raw, {"img.nii.gz"});
  EXPECT_EQ(c.crop.begin, (Int3{1, 3, 2}));
  EXPECT_EQ(c.crop.end, (Int3{5, 6, 7}));
  EXPECT_EQ(c.image.shape, (Shape3{4, 3, 5}));
  EXPECT_EQ(c.image.channel(0)[(1 * 3 + 1) * 5 + 2], 0.0f);
  EXPECT_EQ(c.label.at(2, 1, 2), 1);
  EXPECT_EQ(std::count(c.label.voxels.begin(), c.label.voxels.end(), -1), 0);  // the box is all non-zero
  EXPECT_EQ(c.geometry.shape, (Shape3{6, 8, 8}));

  RawCaseData ring = raw_case({5, 5, 5});
  for (int64_t y = 0; y < 5; ++y) ring.image.channel(0)[(2 * 5 + y) * 5 + 0] = 1.0f;  // an L shape
  for (int64_t x = 0; x < 5; ++x) ring.image.channel(0)[(2 * 5 + 4) * 5 + x] = 1.0f;
  const CroppedCase l = crop_to_nonzero(ring, {"img.nii.gz"});
  EXPECT_EQ(l.label.shape, (Shape3{1, 5, 5}));
  EXPECT_EQ(std::count(l.label.voxels.begin(), l.label.voxels.end(), -1), 16);
}

TEST(Preprocess, CropRejectsNanAndZeroImagesNamingTheFile) {
  RawCaseData nan = raw_case({3, 3, 3});
  std::fill(nan.image.voxels.begin(), nan.image.voxels.end(), std::nanf(""));
  EXPECT_THAT([&] { crop_to_nonzero(nan, {"/d/imagesTr/a.nii.gz"}); },
              ::testing::ThrowsMessage<InputError>(AllOf(HasSubstr("a.nii.gz"), HasSubstr("NaN"))));
  EXPECT_THAT(
      [&] {
        crop_to_nonzero(raw_case({3, 3, 3}), {"/d/imagesTr/b.nii.gz"});
      },
      ::testing::ThrowsMessage<InputError>(AllOf(HasSubstr("b.nii.gz"), HasSubstr("every voxel is zero"))));
}

Plan one_channel_plan(const std::string& scheme, bool masked) {
  Plan plan;
  plan.channel_names = {scheme};
  plan.normalization = {scheme};
  plan.use_nonzero_mask = {masked};
  IntensityStats stats;
  stats.mean = 10;
  stats.std = 4;
  stats.p00_5 = 0;
  stats.p99_5 = 30;
  plan.intensity = {stats};
  return plan;
}

TEST(Preprocess, CtNormalizationClipsThenUsesDatasetStatistics) {
  MultiVolume<float> image(1, {1, 1, 4});
  image.voxels = {-50, 10, 22, 1000};
  const Volume<int16_t> label({1, 1, 4});
  normalize(image, label, one_channel_plan("ct", false));
  EXPECT_EQ(image.voxels, (std::vector<float>{-2.5f, 0.0f, 3.0f, 5.0f}));
}

TEST(Preprocess, ZscoreInsideTheMaskZeroesTheOutside) {
  MultiVolume<float> image(1, {1, 1, 6});
  image.voxels = {100, 1, 2, 3, 4, 100};
  Volume<int16_t> label({1, 1, 6});
  label.voxels = {-1, 0, 1, 0, 0, -1};
  normalize(image, label, one_channel_plan("zscore", true));
  const double std = std::sqrt(1.25);
  EXPECT_EQ(image.voxels[0], 0.0f);
  EXPECT_EQ(image.voxels[5], 0.0f);
  EXPECT_NEAR(image.voxels[1], -1.5 / std, 1e-6);
  EXPECT_NEAR(image.voxels[4], 1.5 / std, 1e-6);
}

TEST(Preprocess, ForegroundLocationsSampleEachClassSeeded) {
  Volume<int16_t> label({120, 100, 101});
  std::fill(label.voxels.begin(), label.voxels.begin() + 1200000, 2);  // 1 % of it is 12 000 > 10 000
  for (int64_t x = 0; x < 50; ++x) label.at(119, 99, x) = 1;
  const auto locations = foreground_locations(label, {1, 2, 3}, 7, "case_a");
  ASSERT_EQ(locations.size(), 2u);  // class 3 is absent
  EXPECT_EQ(locations[0].first, 1);
  EXPECT_EQ(locations[0].second.size(), 50u);  // fewer than 10 000: all of them
  EXPECT_EQ(locations[1].first, 2);
  const auto& voxels = locations[1].second;
  EXPECT_EQ(voxels.size(), 12000u);
  EXPECT_TRUE(std::is_sorted(voxels.begin(), voxels.end()));
  EXPECT_EQ(std::adjacent_find(voxels.begin(), voxels.end()), voxels.end());
  for (const auto& v : voxels) ASSERT_EQ(label.at(v[0], v[1], v[2]), 2);
  EXPECT_EQ(foreground_locations(label, {2}, 7, "case_a")[0].second, voxels);
  EXPECT_NE(foreground_locations(label, {2}, 7, "case_b")[0].second, voxels);
}

// ------------------------------------------------------------------------------------ whole dataset

// NIfTI stores spacings as float32.
void expect_spacing(const Spacing3& actual, const Spacing3& expected) {
  for (int a = 0; a < 3; ++a) EXPECT_NEAR(actual[a], expected[a], 1e-6) << "axis " << a;
}

// A small MSD-format CT dataset: a zero border (cropped away), a noisy body and two organs.
class PreprocessDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::temp_directory_path() /
            ("e2e_preprocess_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "raw" / "imagesTr");
    fs::create_directories(root_ / "raw" / "labelsTr");
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string raw() const { return (root_ / "raw").string(); }
  std::string out() const { return (root_ / "out").string(); }
  std::string image_file(int i) const { return raw() + "/imagesTr/" + id(i) + ".nii.gz"; }
  std::string label_file(int i) const { return raw() + "/labelsTr/" + id(i) + ".nii.gz"; }
  static std::string id(int i) { return fmt::format("case_{:03d}", i); }

  void write_dataset(int cases, Shape3 shape = {10, 20, 18}, Spacing3 spacing = {2.5, 1.0, 1.2}) {
    json training = json::array();
    for (int i = 0; i < cases; ++i) {
      write_case(i, shape, spacing);
      training.push_back(
          {{"image", "./imagesTr/" + id(i) + ".nii.gz"}, {"label", "./labelsTr/" + id(i) + ".nii.gz"}});
    }
    write_dataset_json(training);
  }

  void write_dataset_json(const json& training) const {
    const json doc = {{"name", "PreprocessTest"},
                      {"modality", {{"0", "CT"}}},
                      {"labels", {{"0", "background"}, {"1", "liver"}, {"2", "spleen"}}},
                      {"numTraining", training.size()},
                      {"training", training},
                      {"test", json::array()}};
    std::ofstream(raw() + "/dataset.json") << doc.dump(2);
  }

  static NiftiGeometry case_geometry(int i, Shape3 shape = {8, 16, 16}, Spacing3 spacing = {2.5, 1.0, 1.2}) {
    return make_nifti_geometry(shape, spacing, {-10.0 * i, 5.0, 2.0});
  }

  void write_case(int i, Shape3 shape, Spacing3 spacing) const {
    std::mt19937 rng(static_cast<unsigned>(i + 1));
    std::normal_distribution<float> noise(0.0f, 30.0f);
    const NiftiGeometry geometry = case_geometry(i, shape, spacing);
    Volume<float> image(shape);
    Volume<int16_t> label(shape);
    for (int64_t z = 0; z < shape[0]; ++z)
      for (int64_t y = 0; y < shape[1]; ++y)
        for (int64_t x = 0; x < shape[2]; ++x) {
          if (z < 1 || y < 2 || x < 2 || y >= shape[1] - 2) continue;  // zero border: cropped
          const bool liver =
              std::abs(z - shape[0] / 2) < 3 && std::abs(y - 8 - i % 3) < 4 && std::abs(x - 7) < 4;
          const bool spleen = z > 5 && y > 12 && x > 12;
          label.at(z, y, x) = liver ? 1 : spleen ? 2 : 0;
          image.at(z, y, x) = (liver ? 120.0f : spleen ? 60.0f : -20.0f) + noise(rng);
        }
    write_nifti(image_file(i), image, geometry);
    write_nifti_labels(label_file(i), label, geometry);
  }

  PreprocessOptions options(int workers = 2) const {
    PreprocessOptions o;
    o.dataset_dir = raw();
    o.out_dir = out();
    o.workers = workers;
    return o;
  }

  // Nothing a later run or a loader could mistake for a store.
  void expect_no_store() const {
    EXPECT_FALSE(fs::exists(out())) << "the run created " << out() << " and left it behind";
  }

  fs::path root_;
};

TEST_F(PreprocessDatasetTest, WritesAStoreWithPlanFingerprintAndSplits) {
  write_dataset(5);
  const PreprocessResult result = preprocess_dataset(options());
  EXPECT_FALSE(result.reused);
  EXPECT_EQ(result.cases, 5);
  expect_spacing(result.plan.target_spacing, {2.5, 1.0, 1.2});
  for (const char* name : {"cases.h5", "plan.json", "fingerprint.json", "splits_final.json"})
    EXPECT_TRUE(fs::exists(out() + "/" + name)) << name;

  const CaseStoreReader store(out() + "/cases.h5");
  ASSERT_EQ(store.case_ids(), (std::vector<std::string>{id(0), id(1), id(2), id(3), id(4)}));
  EXPECT_EQ(json::parse(store.text("plan.json")), to_json(result.plan));
  const std::vector<FoldSplit> splits = read_splits_json(out() + "/splits_final.json");
  const std::vector<FoldSplit> expected = kfold_splits(store.case_ids());
  ASSERT_EQ(splits.size(), 5u);
  for (std::size_t f = 0; f < 5; ++f) EXPECT_EQ(splits[f].val, expected[f].val);

  const json fingerprint = json::parse(std::ifstream(out() + "/fingerprint.json"));
  EXPECT_NEAR(fingerprint["foreground_intensity"][0]["mean"].get<double>(), 100.0, 15.0);

  const CaseMeta meta = store.meta(id(2));
  EXPECT_EQ(meta.crop.begin, (Int3{1, 2, 2}));
  EXPECT_EQ(meta.crop.end, (Int3{10, 18, 18}));
  EXPECT_TRUE(meta.geometry.same_grid(read_nifti_geometry(image_file(2))));
  const PreprocessedCase c = store.read_case(id(2));
  EXPECT_EQ(c.image.shape, (Shape3{9, 16, 16}));
  expect_spacing(c.image.spacing, {2.5, 1.0, 1.2});
  const std::set<int16_t> values(c.label.voxels.begin(), c.label.voxels.end());
  EXPECT_EQ(values, (std::set<int16_t>{0, 1, 2}));
  ASSERT_EQ(c.foreground.size(), 2u);
  for (const auto& [cls, voxels] : c.foreground)
    for (const auto& v : voxels) ASSERT_EQ(c.label.at(v[0], v[1], v[2]), cls);
  const auto liver = std::max_element(c.image.voxels.begin(), c.image.voxels.end());
  EXPECT_LE(
      *liver,
      (result.plan.intensity[0].p99_5 - result.plan.intensity[0].mean) / result.plan.intensity[0].std + 1e-4);
}

TEST_F(PreprocessDatasetTest, RerunReusesTheStoreUntilAnInputChanges) {
  write_dataset(3, {8, 16, 16});
  preprocess_dataset(options());
  const auto written = fs::last_write_time(out() + "/cases.h5");
  fs::remove(out() + "/plan.json");
  const PreprocessResult again = preprocess_dataset(options(1));
  EXPECT_TRUE(again.reused);
  EXPECT_EQ(fs::last_write_time(out() + "/cases.h5"), written);
  EXPECT_TRUE(fs::exists(out() + "/plan.json"));  // side files are restored from the store

  write_case(1, {8, 16, 16}, {2.0, 1.0, 1.0});  // same file name, other content
  EXPECT_FALSE(preprocess_dataset(options()).reused);
  PreprocessOptions compressed = options();
  compressed.compress = true;
  EXPECT_FALSE(preprocess_dataset(compressed).reused);
  EXPECT_TRUE(preprocess_dataset(compressed).reused);
}

TEST_F(PreprocessDatasetTest, ResultsDoNotDependOnTheNumberOfWorkers) {
  write_dataset(4, {8, 16, 16});
  preprocess_dataset(options(1));
  fs::rename(out(), root_ / "one_worker");
  preprocess_dataset(options(3));
  const CaseStoreReader a((root_ / "one_worker" / "cases.h5").string());
  const CaseStoreReader b(out() + "/cases.h5");
  EXPECT_EQ(a.text("fingerprint.json"), b.text("fingerprint.json"));
  for (const std::string& case_id : a.case_ids()) {
    const PreprocessedCase x = a.read_case(case_id), y = b.read_case(case_id);
    EXPECT_EQ(x.image.voxels, y.image.voxels) << case_id;
    EXPECT_EQ(x.foreground, y.foreground) << case_id;
  }
}

TEST_F(PreprocessDatasetTest, ImportsAGivenSplitsFile) {
  write_dataset(3, {8, 16, 16});
  const std::vector<FoldSplit> given = {{{id(0), id(1)}, {id(2)}}, {{id(2)}, {id(0), id(1)}}};
  write_splits_json(raw() + "/my_splits.json", given);
  PreprocessOptions o = options();
  o.splits_file = raw() + "/my_splits.json";
  preprocess_dataset(o);
  const std::vector<FoldSplit> stored = read_splits_json(out() + "/splits_final.json");
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[1].val, given[1].val);

  write_splits_json(raw() + "/bad_splits.json", {{{id(0), "case_999"}, {id(1)}}});
  fs::remove_all(out());
  o.splits_file = raw() + "/bad_splits.json";
  EXPECT_THAT([&] { preprocess_dataset(o); }, ::testing::ThrowsMessage<InputError>(AllOf(
                                                  HasSubstr("bad_splits.json"), HasSubstr("case_999"))));
  expect_no_store();
}

// Bad input: InputError naming the file and the problem, and no store (nor the output folder) left behind.
void expect_rejected(const PreprocessOptions& options, const std::string& file, const std::string& problem) {
  EXPECT_THAT([&] { preprocess_dataset(options); },
              ::testing::ThrowsMessage<InputError>(AllOf(HasSubstr(file), HasSubstr(problem))));
}

TEST_F(PreprocessDatasetTest, RejectsAMissingFile) {
  write_dataset(3, {8, 16, 16});
  fs::remove(label_file(1));
  expect_rejected(options(), id(1) + ".nii.gz", "not found");
  expect_no_store();
}

TEST_F(PreprocessDatasetTest, RejectsImageLabelGeometryMismatch) {
  write_dataset(3, {8, 16, 16});
  Volume<int16_t> label({8, 16, 15});
  write_nifti_labels(label_file(2), label, case_geometry(2, label.shape));
  expect_rejected(options(), "labelsTr/" + id(2), "geometry");
  expect_no_store();
}

TEST_F(PreprocessDatasetTest, RejectsUndeclaredLabelValues) {
  write_dataset(3, {8, 16, 16});
  Volume<int16_t> label({8, 16, 16});
  label.at(4, 8, 8) = 7;
  write_nifti_labels(label_file(0), label, case_geometry(0));
  expect_rejected(options(), "labelsTr/" + id(0), "7");
  expect_no_store();
}

TEST_F(PreprocessDatasetTest, RejectsNonIntegralLabelValues) {
  write_dataset(3, {8, 16, 16});
  Volume<float> label({8, 16, 16});
  label.at(4, 8, 8) = 1.5f;
  write_nifti(label_file(2), label, case_geometry(2));
  expect_rejected(options(), "labelsTr/" + id(2), "1.5");
  expect_no_store();
}

TEST_F(PreprocessDatasetTest, RejectsAnAllNanImage) {
  write_dataset(3, {8, 16, 16});
  Volume<float> image({8, 16, 16}, {1, 1, 1}, std::nanf(""));
  write_nifti(image_file(1), image, case_geometry(1));
  expect_rejected(options(), "imagesTr/" + id(1), "NaN");
  expect_no_store();
}

TEST_F(PreprocessDatasetTest, RejectsATruncatedFile) {
  write_dataset(3, {8, 16, 16});
  fs::resize_file(image_file(2), fs::file_size(image_file(2)) / 2);
  expect_rejected(options(), "imagesTr/" + id(2), "corrupt");
  expect_no_store();
}

TEST_F(PreprocessDatasetTest, RejectsAnEmptyTrainingList) {
  write_dataset_json(json::array());
  expect_rejected(options(), "dataset.json", "training");
  expect_no_store();
}

TEST_F(PreprocessDatasetTest, AFailedRerunKeepsNoHalfWrittenStore) {
  write_dataset(3, {8, 16, 16});
  preprocess_dataset(options());
  fs::resize_file(image_file(2), fs::file_size(image_file(2)) / 2);
  EXPECT_THROW(preprocess_dataset(options()), InputError);
  for (const auto& entry : fs::directory_iterator(out()))
    EXPECT_EQ(entry.path().filename().string().find(".partial-"), std::string::npos) << entry.path();
  // The previous store is still whole and still describes the previous inputs.
  EXPECT_EQ(CaseStoreReader(out() + "/cases.h5").case_ids().size(), 3u);
}

TEST_F(PreprocessDatasetTest, ALeftoverFromAKilledRunIsNeitherUsedNorKept) {
  write_dataset(3, {8, 16, 16});
  fs::create_directories(out());
  const std::string leftover = out() + "/cases.h5.partial-99999";
  std::ofstream(leftover) << "half a store";
  EXPECT_THROW(Hdf5CaseSource source(out()), InputError);  // only cases.h5 counts as a store
  preprocess_dataset(options());
  EXPECT_FALSE(fs::exists(leftover));
  EXPECT_EQ(Hdf5CaseSource(out()).size(), 3u);
}

}  // namespace
}  // namespace e2e
