// Preprocessing of a real MR brain: the Colin27 T1 (mricron-data) with its hand-traced AAL atlas collapsed
// to left cerebrum, right cerebrum and cerebellum, as a one-case MSD dataset, preprocessed at 2 mm.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/nifti.hpp"
#include "data/preprocess.hpp"
#include "data/preprocess_dataset.hpp"
#include "data/resample.hpp"

namespace e2e {
namespace {

namespace fs = std::filesystem;

const std::string kTemplates = "/usr/share/mricron/templates/";

// AAL regions: odd 1–90 left cerebrum, even 1–90 right cerebrum, 91–116 cerebellum and vermis.
int16_t collapse_aal(int16_t region) {
  if (region >= 1 && region <= 90) return region % 2 == 1 ? 1 : 2;
  if (region >= 91 && region <= 116) return 3;
  return 0;
}

double dice(const Volume<int16_t>& a, const Volume<int16_t>& b, int16_t cls) {
  int64_t both = 0, in_a = 0, in_b = 0;
  for (std::size_t i = 0; i < a.voxels.size(); ++i) {
    const bool x = a.voxels[i] == cls, y = b.voxels[i] == cls;
    both += x && y;
    in_a += x;
    in_b += y;
  }
  return 2.0 * static_cast<double>(both) / static_cast<double>(in_a + in_b);
}

Volume<int16_t> crop(const Volume<int16_t>& v, const CropBox& box) {
  Volume<int16_t> out(box.shape());
  for (int64_t z = 0; z < out.shape[0]; ++z)
    for (int64_t y = 0; y < out.shape[1]; ++y)
      for (int64_t x = 0; x < out.shape[2]; ++x)
        out.at(z, y, x) = v.at(z + box.begin[0], y + box.begin[1], x + box.begin[2]);
  return out;
}

class RealDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"ch2.nii.gz", "aal.nii.gz"})
      if (!fs::exists(kTemplates + name))
        GTEST_FAIL() << "test data missing (scripts/setup installs mricron-data)";
    root_ = fs::temp_directory_path() / ("e2e_real_data_test_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "raw" / "imagesTr");
    fs::create_directories(root_ / "raw" / "labelsTr");
  }
  void TearDown() override { fs::remove_all(root_); }

  // Returns the collapsed 1 mm labels as written.
  Volume<int16_t> write_colin_dataset() const {
    fs::copy_file(kTemplates + "ch2.nii.gz", root_ / "raw" / "imagesTr" / "colin_001.nii.gz");
    NiftiGeometry geometry;
    Volume<int16_t> labels = read_nifti_labels(kTemplates + "aal.nii.gz", &geometry);
    for (int16_t& v : labels.voxels) v = collapse_aal(v);
    write_nifti_labels((root_ / "raw" / "labelsTr" / "colin_001.nii.gz").string(), labels, geometry);
    const nlohmann::json doc = {
        {"name", "Colin27"},
        {"modality", {{"0", "T1"}}},
        {"labels",
         {{"0", "background"}, {"1", "left cerebrum"}, {"2", "right cerebrum"}, {"3", "cerebellum"}}},
        {"numTraining", 1},
        {"training", {{{"image", "./imagesTr/colin_001.nii.gz"}, {"label", "./labelsTr/colin_001.nii.gz"}}}},
        {"test", nlohmann::json::array()}};
    std::ofstream((root_ / "raw" / "dataset.json").string()) << doc.dump(2);
    return labels;
  }

  fs::path root_;
};

TEST_F(RealDataTest, ColinBrainAtTwoMillimetres) {
  const Volume<int16_t> original = write_colin_dataset();
  Config config;
  config.data.target_spacing = Spacing3{2.0, 2.0, 2.0};
  PreprocessOptions options;
  options.dataset_dir = (root_ / "raw").string();
  options.out_dir = (root_ / "out").string();
  options.config = config;
  options.workers = 2;
  const PreprocessResult result = preprocess_dataset(options);

  const CaseStoreReader store(result.store_path);
  ASSERT_EQ(store.case_ids(), std::vector<std::string>{"colin_001"});
  const CaseMeta meta = store.meta("colin_001");
  const PreprocessedCase c = store.read_case("colin_001");
  EXPECT_EQ(meta.geometry.shape, (Shape3{181, 217, 181}));
  EXPECT_EQ(c.image.spacing, (Spacing3{2.0, 2.0, 2.0}));
  EXPECT_EQ(c.image.shape, resampled_shape(meta.crop.shape(), {1.0, 1.0, 1.0}, {2.0, 2.0, 2.0}));
  EXPECT_LT(voxel_count(meta.crop.shape()),
            voxel_count(meta.geometry.shape));  // the zero background is cropped

  // z-score over the region the plan normalizes: the non-zero mask (label ≥ 0) when cropping shrank the
  // case below 3/4 of its voxels, else everything.
  const bool masked = result.plan.use_nonzero_mask[0];
  double sum = 0.0, squares = 0.0;
  int64_t count = 0;
  for (std::size_t i = 0; i < c.image.voxels.size(); ++i)
    if (!masked || c.label.voxels[i] >= 0) {
      sum += c.image.voxels[i];
      squares += static_cast<double>(c.image.voxels[i]) * c.image.voxels[i];
      ++count;
    }
  const double mean = sum / static_cast<double>(count);
  EXPECT_NEAR(mean, 0.0, 1e-3);
  EXPECT_NEAR(std::sqrt(squares / static_cast<double>(count) - mean * mean), 1.0, 1e-3);

  // Back to 1 mm, the 2 mm labels still cover the traced regions.
  Volume<int16_t> back = resize_labels(c.label, meta.crop.shape());
  for (int16_t& v : back.voxels) v = std::max<int16_t>(v, 0);
  const Volume<int16_t> truth = crop(original, meta.crop);
  for (int16_t cls : {1, 2, 3}) EXPECT_GE(dice(back, truth, cls), 0.95) << "class " << cls;
  EXPECT_EQ(c.foreground.size(), 3u);
}

}  // namespace
}  // namespace e2e
