// Raw dataset reading (MSD, nnU-Net v1, v2) and per-case checks, on small datasets written by the test.
#include "data/dataset.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

namespace e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const Shape3 kShape{3, 4, 5};
const std::string kItkData = "/usr/share/doc/insighttoolkit5-examples/examples/Data/";

NiftiGeometry grid(const Spacing3& spacing = {2.0, 1.0, 1.0},
                   const std::array<double, 3>& origin = {0, 0, 0}) {
  return make_nifti_geometry(kShape, spacing, origin);
}

// Channel c of a case holds 100·c + voxel index, so the test can tell channels apart.
MultiVolume<float> image_of(int64_t channels) {
  MultiVolume<float> image(channels, kShape);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < image.channel_size(); ++i) image.channel(c)[i] = static_cast<float>(100 * c + i);
  return image;
}

Volume<int16_t> label_of(std::initializer_list<int16_t> values) {
  Volume<int16_t> label(kShape);
  std::size_t i = 0;
  for (int16_t v : values) label.voxels[i++] = v;
  return label;
}

Volume<float> channel_volume(const MultiVolume<float>& image, int64_t c) {
  Volume<float> v(image.shape);
  std::copy(image.channel(c), image.channel(c) + image.channel_size(), v.voxels.begin());
  return v;
}

class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ =
        (fs::temp_directory_path() / ("e2e_dataset_test_" + std::to_string(::getpid()) + "_" + info->name()))
            .string();
    fs::remove_all(root_);
    for (const char* folder : {"imagesTr", "labelsTr", "imagesTs"})
      fs::create_directories(fs::path(root_) / folder);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string at(const std::string& relative) const { return (fs::path(root_) / relative).string(); }
  void write_json(const std::string& text) const { std::ofstream(at("dataset.json")) << text; }
  void write_label(const std::string& relative, const Volume<int16_t>& label,
                   const NiftiGeometry& g = grid()) {
    write_nifti_labels(at(relative), label, g);
  }
  // nnU-Net layout: one 3D file per channel.
  void write_channels(const std::string& folder, const std::string& id, int64_t channels,
                      const NiftiGeometry& g = grid()) {
    const MultiVolume<float> image = image_of(channels);
    for (int64_t c = 0; c < channels; ++c)
      write_nifti(at(fmt::format("{}/{}_{:04d}.nii.gz", folder, id, c)), channel_volume(image, c), g);
  }
  void write_junk(const std::string& relative) const { std::ofstream(at(relative)) << "macOS resource fork"; }

  std::string root_;
};

std::string input_error(const std::function<void()>& action) {
  try {
    action();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected InputError";
  return {};
}

const char* kMsdJson = R"({
  "name": "BrainTiny", "modality": {"0": "FLAIR", "1": "T1w"},
  "labels": {"0": "background", "1": "edema", "2": "tumour"},
  "numTraining": 2,
  "training": [{"image": "./imagesTr/b_002.nii.gz", "label": "./labelsTr/b_002.nii.gz"},
               {"image": "./imagesTr/b_001.nii.gz", "label": "./labelsTr/b_001.nii.gz"}],
  "test": ["./imagesTs/b_101.nii.gz", "./imagesTs/b_102.nii.gz"]
})";

TEST_F(DatasetTest, ReadsMsdWithFourDimensionalMultiModalImages) {
  write_json(kMsdJson);
  for (const char* id : {"b_001", "b_002"}) {
    write_nifti(at(fmt::format("imagesTr/{}.nii.gz", id)), image_of(2), grid());
    write_label(fmt::format("labelsTr/{}.nii.gz", id), label_of({0, 1, 2, 1}));
  }
  write_nifti(at("imagesTs/b_101.nii.gz"), image_of(2), grid());  // b_102 is absent: skipped
  write_junk("imagesTr/._b_001.nii.gz");
  write_junk("labelsTr/._b_001.nii.gz");

  const RawDataset dataset = read_raw_dataset(root_);
  EXPECT_EQ(dataset.format, DatasetFormat::Msd);
  EXPECT_EQ(dataset.name, "BrainTiny");
  EXPECT_THAT(dataset.channel_names, ElementsAre("FLAIR", "T1w"));
  EXPECT_FALSE(dataset.is_ct());
  EXPECT_EQ(dataset.labels.at(2), "tumour");
  ASSERT_EQ(dataset.training.size(), 2u);
  EXPECT_EQ(dataset.training[0].id, "b_001");
  EXPECT_THAT(dataset.training[0].image_files, ElementsAre(at("imagesTr/b_001.nii.gz")));
  EXPECT_EQ(dataset.training[0].label_file, at("labelsTr/b_001.nii.gz"));
  ASSERT_EQ(dataset.test.size(), 1u);
  EXPECT_EQ(dataset.test[0].id, "b_101");

  const RawCaseData loaded = load_raw_case(dataset, dataset.training[1]);
  EXPECT_EQ(loaded.id, "b_002");
  EXPECT_EQ(loaded.image.channels, 2);
  EXPECT_EQ(loaded.image.channel(1)[7], 107.0f);
  EXPECT_EQ(loaded.label.voxels[2], 2);
  EXPECT_TRUE(loaded.geometry.same_grid(grid()));
  EXPECT_EQ(load_raw_case(dataset, dataset.test[0]).label.size(), 0);
}

// Found by fuzz_dataset (`{"name":444444}` ended the process with nlohmann's type_error); the input is in
// tests/fuzz/corpus/dataset/name_not_a_string.
TEST_F(DatasetTest, ANameThatIsNotAStringIsAnInputErrorNamingTheField) {
  write_json(R"({"name": 444444})");
  try {
    read_raw_dataset(root_);
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("dataset.json: \"name\": expected a string, got 444444"));
  }
}

TEST_F(DatasetTest, ReadsNnUNetV1PerChannelFiles) {
  write_json(
      R"({"name": "Ct", "modality": {"0": "CT", "1": "CT"}, "labels": {"0": "background", "1": "liver"},
    "training": [{"image": "./imagesTr/liver_7.nii.gz", "label": "./labelsTr/liver_7.nii.gz"}], "test": []})");
  write_channels("imagesTr", "liver_7", 2);
  write_label("labelsTr/liver_7.nii.gz", label_of({1, 0, 1}));
  const RawDataset dataset = read_raw_dataset(root_);
  EXPECT_EQ(dataset.format, DatasetFormat::NnUNetV1);
  EXPECT_TRUE(dataset.is_ct());
  ASSERT_EQ(dataset.training.size(), 1u);
  EXPECT_THAT(dataset.training[0].image_files,
              ElementsAre(at("imagesTr/liver_7_0000.nii.gz"), at("imagesTr/liver_7_0001.nii.gz")));
  const RawCaseData loaded = load_raw_case(dataset, dataset.training[0]);
  EXPECT_EQ(loaded.image.channel(0)[3], 3.0f);
  EXPECT_EQ(loaded.image.channel(1)[3], 103.0f);
}

TEST_F(DatasetTest, ReadsNnUNetV2WithRegionsAndSkipsDebris) {
  write_json(R"({"channel_names": {"0": "T2", "1": "ADC"}, "numTraining": 2, "file_ending": ".nii.gz",
    "labels": {"background": 0, "whole": [1, 2, 3], "core": [2, 3], "enhancing": 3}})");
  for (const char* id : {"p_b", "p_a"}) {
    write_channels("imagesTr", id, 2);
    write_label(fmt::format("labelsTr/{}.nii.gz", id), label_of({0, 1, 2, 3}));
  }
  write_channels("imagesTs", "p_z", 2);
  write_junk("labelsTr/._p_c.nii.gz");
  write_junk("imagesTr/._p_c_0000.nii.gz");
  write_junk("imagesTr/.DS_Store");

  const RawDataset dataset = read_raw_dataset(root_);
  EXPECT_EQ(dataset.format, DatasetFormat::NnUNetV2);
  EXPECT_THAT(dataset.channel_names, ElementsAre("T2", "ADC"));
  EXPECT_EQ(dataset.labels.size(), 2u);  // background and enhancing
  EXPECT_EQ(dataset.labels.at(3), "enhancing");
  EXPECT_THAT(dataset.regions.at("whole"), ElementsAre(1, 2, 3));
  EXPECT_THAT(dataset.declared_label_values(), ElementsAre(0, 1, 2, 3));
  ASSERT_EQ(dataset.training.size(), 2u);
  EXPECT_EQ(dataset.training[0].id, "p_a");
  EXPECT_THAT(dataset.training[0].image_files,
              ElementsAre(at("imagesTr/p_a_0000.nii.gz"), at("imagesTr/p_a_0001.nii.gz")));
  ASSERT_EQ(dataset.test.size(), 1u);
  EXPECT_EQ(dataset.test[0].id, "p_z");
  EXPECT_EQ(load_raw_case(dataset, dataset.training[1]).label.voxels[3], 3);
}

TEST_F(DatasetTest, TestSetJoinsLabelledTestImagesAndHeldOutTrainingCases) {
  write_json(R"({"channel_names": {"0": "CT"}, "numTraining": 3, "file_ending": ".nii.gz",
    "labels": {"background": 0, "liver": 1}})");
  for (const char* id : {"c_1", "c_2", "c_3"}) {
    write_channels("imagesTr", id, 1);
    write_label(fmt::format("labelsTr/{}.nii.gz", id), label_of({0, 1}));
  }
  write_channels("imagesTs", "t_1", 1);
  write_channels("imagesTs", "t_2", 1);
  fs::create_directories(at("labelsTs"));
  write_label("labelsTs/t_2.nii.gz", label_of({1}));

  RawDataset dataset = read_raw_dataset(root_);
  const std::vector<RawCase> tests = test_set(dataset, {"c_2"});
  ASSERT_EQ(tests.size(), 3u);
  EXPECT_EQ(tests[0].id, "c_2");
  EXPECT_EQ(tests[0].label_file, at("labelsTr/c_2.nii.gz"));
  EXPECT_EQ(tests[1].id, "t_1");
  EXPECT_EQ(tests[1].label_file, "");  // predicted, not scored
  EXPECT_EQ(tests[2].label_file, at("labelsTs/t_2.nii.gz"));

  const std::vector<RawCase> held_out = hold_out_training_cases(dataset, {"c_2"});
  ASSERT_EQ(held_out.size(), 1u);
  ASSERT_EQ(dataset.training.size(), 2u);
  EXPECT_EQ(dataset.training[1].id, "c_3");
  EXPECT_THAT(input_error([&] { test_set(dataset, {"c_9"}); }),
              HasSubstr("data.test_cases: 'c_9' is not a training case"));
}

TEST_F(DatasetTest, RealRotatedItkCaseLoads) {
  write_json(
      R"({"modality": {"0": "T1"}, "labels": {"0": "bg", "1": "a", "2": "b", "3": "c", "4": "d", "5": "e",
    "6": "f"}, "training": [{"image": "./imagesTr/k_1.nii.gz", "label": "./labelsTr/k_1.nii.gz"}]})");
  fs::copy_file(kItkData + "KmeansTest_T1UCharRaw.nii.gz", at("imagesTr/k_1.nii.gz"));
  fs::copy_file(kItkData + "KmeansTest_T1KmeansPrelimSegmentation.nii.gz", at("labelsTr/k_1.nii.gz"));
  const RawDataset dataset = read_raw_dataset(root_);
  const RawCaseData loaded = load_raw_case(dataset, dataset.training[0]);
  EXPECT_EQ(loaded.geometry.shape, (Shape3{62, 128, 128}));
  EXPECT_EQ(loaded.label.at(31, 64, 64), 6);
}

TEST_F(DatasetTest, GeometryMismatchNamesTheFileThatDiffers) {
  write_json(R"({"modality": {"0": "T1", "1": "T2"}, "labels": {"0": "background", "1": "x"},
    "training": [{"image": "./imagesTr/c1.nii.gz", "label": "./labelsTr/c1.nii.gz"},
                 {"image": "./imagesTr/c2.nii.gz", "label": "./labelsTr/c2.nii.gz"}]})");
  write_channels("imagesTr", "c1", 1);
  write_channels("imagesTr", "c2", 1);
  write_nifti(at("imagesTr/c1_0001.nii.gz"), channel_volume(image_of(1), 0), grid({2.5, 1.0, 1.0}));
  write_nifti(at("imagesTr/c2_0001.nii.gz"), channel_volume(image_of(1), 0), grid());
  write_label("labelsTr/c1.nii.gz", label_of({0}));
  write_label("labelsTr/c2.nii.gz", label_of({0}), grid({2.0, 1.0, 1.0}, {0.0, 0.0, 4.0}));
  const RawDataset dataset = read_raw_dataset(root_);

  const std::string channel = input_error([&] { check_case_geometry(dataset, dataset.training[0]); });
  EXPECT_THAT(channel, HasSubstr(at("imagesTr/c1_0001.nii.gz") + ": geometry differs from " +
                                 at("imagesTr/c1_0000.nii.gz")));
  EXPECT_THAT(channel, HasSubstr("spacing"));
  const std::string label = input_error([&] { load_raw_case(dataset, dataset.training[1]); });
  EXPECT_THAT(label, HasSubstr(at("labelsTr/c2.nii.gz") + ": geometry differs"));
  EXPECT_THAT(label, HasSubstr("origin"));
}

TEST_F(DatasetTest, MsdImageWithTheWrongNumberOfChannelsIsRejected) {
  write_json(kMsdJson);
  for (const char* id : {"b_001", "b_002"}) write_label(fmt::format("labelsTr/{}.nii.gz", id), label_of({0}));
  write_nifti(at("imagesTr/b_001.nii.gz"), image_of(2), grid());
  write_nifti(at("imagesTr/b_002.nii.gz"), image_of(3), grid());
  const RawDataset dataset = read_raw_dataset(root_);
  EXPECT_NO_THROW(check_case_geometry(dataset, dataset.training[0]));
  EXPECT_THAT(input_error([&] { load_raw_case(dataset, dataset.training[1]); }),
              HasSubstr(at("imagesTr/b_002.nii.gz") + ": expected a 2-channel image (2 volume(s)), found 3"));
}

TEST_F(DatasetTest, UndeclaredLabelValuesNameTheFileAndTheValues) {
  write_json(kMsdJson);
  write_nifti(at("imagesTr/b_001.nii.gz"), image_of(2), grid());
  write_nifti(at("imagesTr/b_002.nii.gz"), image_of(2), grid());
  write_label("labelsTr/b_001.nii.gz", label_of({0, 1, 2}));
  write_label("labelsTr/b_002.nii.gz", label_of({0, 7, 1, 4, 7}));
  const RawDataset dataset = read_raw_dataset(root_);
  EXPECT_NO_THROW(load_raw_case(dataset, dataset.training[0]));
  EXPECT_THAT(input_error([&] { load_raw_case(dataset, dataset.training[1]); }),
              HasSubstr(at("labelsTr/b_002.nii.gz") + ": label value(s) 4, 7 not declared in dataset.json "
                                                      "(declared: 0, 1, 2)"));
}

TEST_F(DatasetTest, MissingFilesAreNamed) {
  write_json(kMsdJson);
  write_nifti(at("imagesTr/b_001.nii.gz"), image_of(2), grid());
  write_label("labelsTr/b_001.nii.gz", label_of({0}));
  write_label("labelsTr/b_002.nii.gz", label_of({0}));
  EXPECT_THAT(input_error([&] { read_raw_dataset(root_); }),
              HasSubstr(at("imagesTr/b_002.nii.gz") + ": file not found"));
  write_nifti(at("imagesTr/b_002.nii.gz"), image_of(2), grid());
  fs::remove(at("labelsTr/b_001.nii.gz"));
  EXPECT_THAT(input_error([&] { read_raw_dataset(root_); }),
              HasSubstr(at("labelsTr/b_001.nii.gz") + ": file not found"));
  EXPECT_THAT(input_error([&] { read_raw_dataset(at("nowhere")); }), HasSubstr("dataset folder not found"));
  fs::remove(at("dataset.json"));
  EXPECT_THAT(input_error([&] { read_raw_dataset(root_); }), HasSubstr(at("dataset.json")));
}

TEST_F(DatasetTest, MissingChannelFilesAreNamed) {
  write_json(R"({"modality": {"0": "T1", "1": "T2"}, "labels": {"0": "background"},
    "training": [{"image": "./imagesTr/c1.nii.gz", "label": "./labelsTr/c1.nii.gz"}]})");
  write_channels("imagesTr", "c1", 1);
  write_label("labelsTr/c1.nii.gz", label_of({0}));
  EXPECT_THAT(input_error([&] { read_raw_dataset(root_); }),
              HasSubstr(at("imagesTr/c1_0001.nii.gz") + ": file not found (channel 1 of case c1)"));

  write_json(
      R"({"channel_names": {"0": "T1", "1": "T2"}, "labels": {"background": 0}, "file_ending": ".nii.gz"})");
  EXPECT_THAT(input_error([&] { read_raw_dataset(root_); }), HasSubstr(at("imagesTr/c1_0001.nii.gz")));
  write_channels("imagesTr", "orphan", 2);
  write_channels("imagesTr", "c1", 2);
  EXPECT_THAT(input_error([&] { read_raw_dataset(root_); }),
              HasSubstr(at("imagesTr/orphan_0000.nii.gz") + ": no label file"));
}

TEST_F(DatasetTest, EmptyTrainingListIsAnInputError) {
  write_json(R"({"modality": {"0": "CT"}, "labels": {"0": "background"}, "training": []})");
  EXPECT_THAT(input_error([&] { read_raw_dataset(root_); }), HasSubstr("no training cases"));
  write_json(R"({"channel_names": {"0": "CT"}, "labels": {"background": 0}, "file_ending": ".nii.gz"})");
  EXPECT_THAT(input_error([&] { read_raw_dataset(root_); }), HasSubstr("no training cases"));
}

TEST_F(DatasetTest, MalformedDatasetJsonNamesTheField) {
  const std::string file = at("dataset.json");
  auto message = [&](const std::string& text) {
    write_json(text);
    return input_error([&] { read_raw_dataset(root_); });
  };
  EXPECT_THAT(message("{"), HasSubstr(file + ": not valid JSON"));
  EXPECT_THAT(message(R"({"labels": {}})"), HasSubstr("\"modality\""));
  EXPECT_THAT(message(R"({"modality": {"0": "CT", "2": "MR"}, "labels": {"0": "bg"}, "training": []})"),
              HasSubstr(file + ": modality: expected keys \"0\" to \"1\""));
  EXPECT_THAT(message(R"({"modality": {"0": "CT"}, "labels": {"zero": "bg"}, "training": []})"),
              HasSubstr(file + ": labels: expected non-negative integer keys, got \"zero\""));
  EXPECT_THAT(message(R"({"modality": {"0": "CT"}, "labels": {"1": "liver"}, "training": []})"),
              HasSubstr("labels: must declare the background label 0"));
  EXPECT_THAT(message(R"({"channel_names": {"0": "CT"}, "labels": {"background": 0, "x": 1.5},
    "file_ending": ".nii.gz"})"),
              HasSubstr("labels: \"x\": expected an integer label value"));
  EXPECT_THAT(
      message(R"({"channel_names": {"0": "CT"}, "labels": {"background": 0}, "file_ending": ".nrrd"})"),
      HasSubstr("file_ending: only NIfTI"));
  EXPECT_THAT(
      message(R"({"modality": {"0": "CT"}, "labels": {"0": "bg"}, "training": [{"image": "x.nii.gz"}]})"),
      HasSubstr("training: expected {\"image\": path, \"label\": path}"));
}

}  // namespace
}  // namespace e2e
