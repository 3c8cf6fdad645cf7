#include "data/case_store.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/errors.hpp"

namespace e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class CaseStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("e2e_case_store_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

PreprocessedCase make_case(const std::string& id, int64_t channels, Shape3 shape, float offset) {
  PreprocessedCase c;
  c.id = id;
  c.image = MultiVolume<float>(channels, shape, {2.0, 1.5, 1.5});
  for (std::size_t i = 0; i < c.image.voxels.size(); ++i)
    c.image.voxels[i] = offset + 0.25f * static_cast<float>(i);
  c.label = Volume<int16_t>(shape, {2.0, 1.5, 1.5});
  for (std::size_t i = 0; i < c.label.voxels.size(); ++i) c.label.voxels[i] = static_cast<int16_t>(i % 4) - 1;
  c.foreground = {{1, {{0, 0, 2}, {1, 2, 3}}}, {2, {{0, 1, 3}}}};
  return c;
}

CaseMeta make_meta(const PreprocessedCase& c) {
  CaseMeta meta;
  meta.id = c.id;
  meta.spacing = c.image.spacing;
  meta.shape = c.image.shape;
  meta.crop = {{1, 2, 3}, {5, 12, 13}};
  meta.geometry.shape = {20, 30, 40};
  meta.geometry.spacing = {3.0, 0.8, 0.7};
  meta.geometry.qform_code = 1;
  meta.geometry.sform_code = 2;
  for (int i = 0; i < 16; ++i) {
    meta.geometry.qform[i] = 0.5 * i;
    meta.geometry.sform[i] = -1.0 * i;
  }
  meta.geometry.quatern = {0.1, 0.2, 0.3, -10, 20, 30};
  meta.geometry.qfac = -1.0;
  return meta;
}

void expect_same_case(const PreprocessedCase& a, const PreprocessedCase& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.image.channels, b.image.channels);
  EXPECT_EQ(a.image.shape, b.image.shape);
  EXPECT_EQ(a.image.spacing, b.image.spacing);
  EXPECT_EQ(a.image.voxels, b.image.voxels);
  EXPECT_EQ(a.label.shape, b.label.shape);
  EXPECT_EQ(a.label.voxels, b.label.voxels);
  EXPECT_EQ(a.foreground, b.foreground);
}

TEST_F(CaseStoreTest, RoundTripsCasesMetadataAndTexts) {
  const PreprocessedCase a = make_case("case_b", 2, {4, 5, 6}, 0.0f);
  PreprocessedCase b = make_case("case_a", 1, {3, 7, 2}, 100.0f);
  b.foreground.clear();  // a case without foreground
  {
    CaseStoreWriter writer(path("cases.h5"), {false, {2, 4, 4}});
    writer.write_case(a, make_meta(a));
    writer.write_case(b, make_meta(b));
    writer.write_text("plan.json", R"({"patch_size": [16, 32, 32]})");
    writer.write_text("empty", "");
    writer.close();
  }
  const CaseStoreReader reader(path("cases.h5"));
  EXPECT_EQ(reader.case_ids(), (std::vector<std::string>{"case_a", "case_b"}));
  expect_same_case(reader.read_case("case_b"), a);
  expect_same_case(reader.read_case("case_a"), b);
  EXPECT_EQ(reader.text("plan.json"), R"({"patch_size": [16, 32, 32]})");
  EXPECT_EQ(reader.text("empty"), "");
  EXPECT_TRUE(reader.has_text("plan.json"));
  EXPECT_FALSE(reader.has_text("splits_final.json"));

  const CaseMeta meta = reader.meta("case_b");
  const CaseMeta expected = make_meta(a);
  EXPECT_EQ(meta.spacing, expected.spacing);
  EXPECT_EQ(meta.shape, expected.shape);
  EXPECT_EQ(meta.crop.begin, expected.crop.begin);
  EXPECT_EQ(meta.crop.end, expected.crop.end);
  EXPECT_EQ(meta.geometry.shape, expected.geometry.shape);
  EXPECT_EQ(meta.geometry.spacing, expected.geometry.spacing);
  EXPECT_EQ(meta.geometry.qform_code, 1);
  EXPECT_EQ(meta.geometry.sform_code, 2);
  EXPECT_EQ(meta.geometry.qform, expected.geometry.qform);
  EXPECT_EQ(meta.geometry.sform, expected.geometry.sform);
  EXPECT_EQ(meta.geometry.quatern, expected.geometry.quatern);
  EXPECT_EQ(meta.geometry.qfac, -1.0);
}

TEST_F(CaseStoreTest, CompressionKeepsTheDataAndShrinksSmoothVolumes) {
  PreprocessedCase c = make_case("smooth", 1, {32, 64, 64}, 0.0f);
  for (std::size_t i = 0; i < c.image.voxels.size(); ++i) c.image.voxels[i] = static_cast<float>(i / 4096);
  for (bool compress : {false, true}) {
    CaseStoreWriter writer(path(compress ? "gz.h5" : "raw.h5"), {compress, {16, 32, 32}});
    writer.write_case(c, make_meta(c));
    writer.close();
  }
  expect_same_case(CaseStoreReader(path("gz.h5")).read_case("smooth"), c);
  EXPECT_LT(fs::file_size(path("gz.h5")) * 4, fs::file_size(path("raw.h5")));
}

TEST_F(CaseStoreTest, ReadsImageRegions) {
  const PreprocessedCase c = make_case("c", 2, {6, 7, 8}, 3.0f);
  {
    CaseStoreWriter writer(path("cases.h5"), {true, {3, 3, 3}});
    writer.write_case(c, make_meta(c));
    writer.close();
  }
  const CaseStoreReader reader(path("cases.h5"));
  const MultiVolume<float> region = reader.read_image_region("c", {1, 2, 3}, {4, 5, 2});
  ASSERT_EQ(region.channels, 2);
  for (int64_t ch = 0; ch < 2; ++ch)
    for (int64_t z = 0; z < 4; ++z)
      for (int64_t y = 0; y < 5; ++y)
        for (int64_t x = 0; x < 2; ++x)
          ASSERT_EQ(region.channel(ch)[(z * 5 + y) * 2 + x],
                    c.image.channel(ch)[((z + 1) * 7 + y + 2) * 8 + x + 3]);
  EXPECT_THROW(reader.read_image_region("c", {4, 0, 0}, {3, 1, 1}), std::out_of_range);
}

TEST_F(CaseStoreTest, RejectsMissingAndForeignFiles) {
  EXPECT_THAT([&] { CaseStoreReader reader(path("missing.h5")); },
              ::testing::ThrowsMessage<InputError>(HasSubstr("missing.h5")));
  std::ofstream(path("text.h5")) << "not hdf5";
  EXPECT_THAT([&] { CaseStoreReader reader(path("text.h5")); },
              ::testing::ThrowsMessage<InputError>(HasSubstr("not an HDF5 file")));
  const PreprocessedCase c = make_case("c", 1, {2, 2, 2}, 0.0f);
  {
    CaseStoreWriter writer(path("cases.h5"));
    writer.write_case(c, make_meta(c));
    EXPECT_THROW(writer.write_case(c, make_meta(c)), InputError);  // duplicate id
    writer.close();
  }
  const CaseStoreReader reader(path("cases.h5"));
  EXPECT_THAT([&] { reader.read_case("nope"); }, ::testing::ThrowsMessage<InputError>(HasSubstr("nope")));
  EXPECT_THAT([&] { reader.text("plan.json"); },
              ::testing::ThrowsMessage<InputError>(HasSubstr("plan.json")));
}

class CaseSourceTest : public CaseStoreTest {
 protected:
  void SetUp() override {
    CaseStoreTest::SetUp();
    CaseStoreWriter writer(path("cases.h5"));
    for (int i = 0; i < 4; ++i) {
      cases_.push_back(make_case("case_" + std::to_string(i), 1, {4, 8, 8}, 10.0f * i));
      writer.write_case(cases_.back(), make_meta(cases_.back()));
    }
    writer.close();
  }
  std::vector<PreprocessedCase> cases_;
};

TEST_F(CaseSourceTest, ListsAllCasesOrTheGivenOnes) {
  const Hdf5CaseSource all(dir_.string());  // a directory means <dir>/cases.h5
  EXPECT_EQ(all.size(), 4u);
  EXPECT_EQ(all.case_id(2), "case_2");
  const Hdf5CaseSource some(path("cases.h5"), {"case_3", "case_1"});
  ASSERT_EQ(some.size(), 2u);
  EXPECT_EQ(some.case_id(0), "case_3");
  expect_same_case(*some.load(1), cases_[1]);
  EXPECT_THAT([&] { Hdf5CaseSource bad(path("cases.h5"), {"case_9"}); },
              ::testing::ThrowsMessage<InputError>(HasSubstr("case_9")));
}

TEST_F(CaseSourceTest, LoadsConcurrentlyFromSeveralThreads) {
  const Hdf5CaseSource source(path("cases.h5"), {}, 1u << 20);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const std::size_t index = static_cast<std::size_t>((t + i) % 4);
        if (source.load(index)->image.voxels != cases_[index].image.voxels) ++failures[t];
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures, (std::vector<int>{0, 0, 0, 0}));
}

TEST_F(CaseSourceTest, CacheKeepsRecentCasesWithinItsBudget) {
  const std::size_t case_bytes = 4 * 8 * 8 * (sizeof(float) + sizeof(int16_t));
  const Hdf5CaseSource uncached(path("cases.h5"));
  EXPECT_NE(uncached.load(0), uncached.load(0));
  const Hdf5CaseSource cached(path("cases.h5"), {}, 2 * case_bytes);
  const auto first = cached.load(0);
  EXPECT_EQ(cached.load(0), first);
  cached.load(1);
  cached.load(2);  // evicts case 0, the least recently used
  EXPECT_NE(cached.load(0), first);
  expect_same_case(*cached.load(0), cases_[0]);
}

}  // namespace
}  // namespace e2e
