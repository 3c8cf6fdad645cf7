// The synthetic dataset: deterministic, every class in every case, learnable but not trivially separable,
// and written as an MSD dataset that our own reader and checks accept.
#include "data/synthetic.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "data/dataset.hpp"

namespace e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

SyntheticOptions small_options() {
  SyntheticOptions o;
  o.cases = 3;
  o.shape = {16, 40, 40};
  return o;
}

std::vector<float> channel_values(const SyntheticCase& c, int channel) {
  return {c.image.channel(channel), c.image.channel(channel) + c.image.channel_size()};
}

TEST(Synthetic, SameSeedSameDataOtherSeedOtherData) {
  const SyntheticOptions o = small_options();
  const SyntheticCase a = make_synthetic_case(o, 1);
  const SyntheticCase b = make_synthetic_case(o, 1);
  EXPECT_EQ(a.image.voxels, b.image.voxels);
  EXPECT_EQ(a.label.voxels, b.label.voxels);
  EXPECT_NE(make_synthetic_case(o, 2).label.voxels, a.label.voxels);
  SyntheticOptions other = o;
  other.seed = 1;
  EXPECT_NE(make_synthetic_case(other, 1).image.voxels, a.image.voxels);
  // A case depends on (seed, index) only, not on how many cases there are.
  SyntheticOptions more = o;
  more.cases = 50;
  EXPECT_EQ(make_synthetic_case(more, 1).image.voxels, a.image.voxels);
  EXPECT_EQ(a.id, "synth_002");
  EXPECT_EQ(make_synthetic_case(more, 1).id, "synth_002");
  EXPECT_EQ(synthetic_case_id(4, 1000), "synth_0005");
}

std::vector<int64_t> class_counts(const SyntheticCase& c, int classes) {
  std::vector<int64_t> counts(classes, 0);
  for (int16_t v : c.label.voxels) {
    EXPECT_GE(v, 0);
    EXPECT_LT(v, classes);
    if (v >= 0 && v < classes) ++counts[v];
  }
  return counts;
}

TEST(Synthetic, EveryClassOccursInEveryCase) {
  for (const Shape3& shape : {Shape3{32, 64, 64}, Shape3{8, 16, 16}}) {
    SyntheticOptions o;
    o.classes = 7;
    o.shape = shape;
    for (int64_t i = 0; i < 4; ++i) {
      const std::vector<int64_t> counts = class_counts(make_synthetic_case(o, i), o.classes);
      for (int c = 0; c < o.classes; ++c) EXPECT_GT(counts[c], 0) << "class " << c << " case " << i;
    }
  }
}

TEST(Synthetic, StructuresHaveDifferentSizes) {
  SyntheticOptions o;
  o.classes = 5;
  const std::vector<int64_t> counts = class_counts(make_synthetic_case(o, 0), o.classes);
  EXPECT_GT(counts[1], 3 * counts[2]);  // the large organ dwarfs the paired organ
  EXPECT_GT(counts[2], 5 * counts[3]);  // which dwarfs the small lesions
  EXPECT_LT(counts[3], 300);            // lesions are a few hundred voxels at most
  EXPECT_GT(counts[1], 131072 / 40);    // and the large organ more than 2.5 % of the volume
}

struct Stats {
  double mean = 0.0, sd = 0.0, median = 0.0, p05 = 0.0, p95 = 0.0;
};

Stats stats_of(std::vector<float> values) {
  std::sort(values.begin(), values.end());
  double sum = 0.0, squares = 0.0;
  for (float v : values) {
    sum += v;
    squares += static_cast<double>(v) * v;
  }
  const double n = static_cast<double>(values.size()), mean = sum / n;
  return {mean, std::sqrt(squares / n - mean * mean), values[values.size() / 2],
          values[values.size() * 5 / 100], values[values.size() * 95 / 100]};
}

// Intensities of class `label` in channel 0; background only inside the body (above `body_threshold`).
Stats class_stats(const SyntheticCase& c, int label, float body_threshold) {
  std::vector<float> values;
  for (int64_t i = 0; i < c.label.size(); ++i)
    if (c.label.voxels[i] == label && (label > 0 || c.image.voxels[i] > body_threshold))
      values.push_back(c.image.voxels[i]);
  return stats_of(values);
}

bool overlap(const Stats& a, const Stats& b) {
  return a.p05 < b.p95 && b.p05 < a.p95;
}

TEST(Synthetic, ClassIntensitiesDifferButOverlap) {
  for (const char* modality : {"CT", "MR"}) {
    SyntheticOptions o;
    o.modality = modality;
    for (int64_t i = 0; i < 2; ++i) {
      const SyntheticCase c = make_synthetic_case(o, i);
      const float body = o.modality == "CT" ? -500.0f : 0.0f;
      const Stats tissue = class_stats(c, 0, body), organ = class_stats(c, 1, body),
                  paired = class_stats(c, 2, body);
      // Distinct: the organs stand out from the typical body voxel and from each other…
      EXPECT_GT(std::fabs(organ.mean - tissue.median), 0.5 * organ.sd) << modality << " case " << i;
      EXPECT_GT(std::fabs(paired.mean - organ.mean), 0.5 * (organ.sd + paired.sd))
          << modality << " case " << i;
      // …but no single threshold separates the large organ from the rest of the body.
      EXPECT_TRUE(overlap(organ, tissue)) << modality << " case " << i;
    }
  }
}

TEST(Synthetic, MrIsZeroOutsideTheBodyAndChannelsDiffer) {
  SyntheticOptions o = small_options();
  o.modality = "MR";
  o.channels = 3;
  const SyntheticCase c = make_synthetic_case(o, 0);
  ASSERT_EQ(c.image.channels, 3);
  for (int ch = 0; ch < 3; ++ch) {
    const float* v = c.image.channel(ch);
    EXPECT_EQ(v[0], 0.0f);  // a corner
    EXPECT_EQ(v[c.image.channel_size() - 1], 0.0f);
    EXPECT_GT(*std::max_element(v, v + c.image.channel_size()), 100.0f);
  }
  EXPECT_NE(channel_values(c, 0), channel_values(c, 1));
  EXPECT_THAT(synthetic_channel_names(o), ElementsAre("T1", "T2", "FLAIR"));
}

TEST(Synthetic, SpacingIsJitteredAroundTheBase) {
  SyntheticOptions o = small_options();
  std::map<double, int> z_spacings;
  for (int64_t i = 0; i < 6; ++i) {
    const SyntheticCase c = make_synthetic_case(o, i);
    EXPECT_NEAR(c.geometry.spacing[0], 2.0, 0.2 + 1e-9);
    EXPECT_NEAR(c.geometry.spacing[1], 0.9, 0.09 + 1e-9);
    EXPECT_EQ(c.geometry.spacing[1], c.geometry.spacing[2]);
    EXPECT_EQ(c.geometry.shape, o.shape);
    ++z_spacings[c.geometry.spacing[0]];
  }
  EXPECT_GT(z_spacings.size(), 3u);
  o.spacing_jitter = 0.0;
  o.spacing = {5.0, 0.7, 0.7};
  EXPECT_EQ(make_synthetic_case(o, 0).geometry.spacing, (Spacing3{5.0, 0.7, 0.7}));
}

TEST(Synthetic, InvalidOptionsNameTheOption) {
  auto message = [](const std::function<void(SyntheticOptions&)>& change) {
    SyntheticOptions o;
    change(o);
    try {
      o.validate();
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_THAT(message([](SyntheticOptions& o) { o.classes = 1; }), HasSubstr("--classes"));
  EXPECT_THAT(message([](SyntheticOptions& o) { o.cases = 0; }), HasSubstr("--cases"));
  EXPECT_THAT(message([](SyntheticOptions& o) { o.shape = {4, 64, 64}; }), HasSubstr("--shape"));
  EXPECT_THAT(message([](SyntheticOptions& o) { o.spacing = {1.0, 0.0, 1.0}; }), HasSubstr("--spacing"));
  EXPECT_THAT(message([](SyntheticOptions& o) { o.channels = 0; }), HasSubstr("--channels"));
  EXPECT_THAT(message([](SyntheticOptions& o) { o.modality = "PET"; }),
              HasSubstr("--modality: expected CT or MR"));
  EXPECT_EQ(message([](SyntheticOptions&) {}), "accepted");
}

class SyntheticDataset : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    parent_ =
        fs::temp_directory_path() / ("e2e_synth_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(parent_);
    fs::create_directories(parent_);
    out_ = (parent_ / "synthetic").string();
  }
  void TearDown() override { fs::remove_all(parent_); }
  std::vector<std::string> parent_entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(parent_)) names.push_back(e.path().filename().string());
    return names;
  }
  fs::path parent_;
  std::string out_;
};

TEST_F(SyntheticDataset, WrittenDatasetPassesTheReaderAndItsChecks) {
  SyntheticOptions o = small_options();
  o.channels = 2;
  o.modality = "MR";
  o.classes = 4;
  write_synthetic_dataset(out_, o, false);
  EXPECT_THAT(parent_entries(), ElementsAre("synthetic"));  // no temporary folder left

  const RawDataset dataset = read_raw_dataset(out_);
  EXPECT_EQ(dataset.format, DatasetFormat::Msd);
  EXPECT_THAT(dataset.channel_names, ElementsAre("T1", "T2"));
  EXPECT_EQ(dataset.labels.size(), 4u);
  EXPECT_EQ(dataset.labels.at(3), "small_lesions");
  ASSERT_EQ(dataset.training.size(), 3u);
  for (int64_t i = 0; i < 3; ++i) {
    const RawCaseData loaded = load_raw_case(dataset, dataset.training[i]);
    const SyntheticCase expected = make_synthetic_case(o, i);
    EXPECT_EQ(loaded.id, expected.id);
    EXPECT_EQ(loaded.image.channels, 2);
    EXPECT_EQ(loaded.image.voxels, expected.image.voxels);
    EXPECT_EQ(loaded.label.voxels, expected.label.voxels);
    EXPECT_TRUE(loaded.geometry.same_grid(expected.geometry))
        << loaded.geometry.difference(expected.geometry);
  }
}

TEST_F(SyntheticDataset, RefusesANonEmptyFolderUnlessForcedAndThenReplacesIt) {
  const SyntheticOptions o = small_options();
  fs::create_directories(out_);  // an empty folder is fine
  write_synthetic_dataset(out_, o, false);
  std::ofstream(fs::path(out_) / "keep.txt") << "user file";
  try {
    write_synthetic_dataset(out_, o, false);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("not empty (use --force"));
  }
  EXPECT_TRUE(fs::exists(fs::path(out_) / "keep.txt"));

  SyntheticOptions two = o;
  two.cases = 2;
  write_synthetic_dataset(out_, two, true);
  EXPECT_FALSE(fs::exists(fs::path(out_) / "keep.txt"));
  EXPECT_EQ(read_raw_dataset(out_).training.size(), 2u);
  EXPECT_THAT(parent_entries(), ElementsAre("synthetic"));
}

TEST_F(SyntheticDataset, ForceNeverReplacesAFolderThatIsNotADataset) {
  fs::create_directories(out_);
  std::ofstream(fs::path(out_) / "thesis.tex") << "precious";
  EXPECT_THROW(write_synthetic_dataset(out_, small_options(), true), InputError);
  EXPECT_TRUE(fs::exists(fs::path(out_) / "thesis.tex"));
  std::ofstream((parent_ / "file").string()) << "x";
  EXPECT_THROW(write_synthetic_dataset((parent_ / "file").string(), small_options(), true), InputError);
}

TEST_F(SyntheticDataset, InvalidOptionsWriteNothing) {
  SyntheticOptions o = small_options();
  o.classes = 0;
  EXPECT_THROW(write_synthetic_dataset(out_, o, false), ConfigError);
  EXPECT_FALSE(fs::exists(out_));
  EXPECT_TRUE(parent_entries().empty());
}

}  // namespace
}  // namespace e2e
