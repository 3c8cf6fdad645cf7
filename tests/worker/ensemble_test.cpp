// The test-set stage refuses bad input with a message naming the file or case, before writing anything:
// no test cases, a test case inside a fold, a missing fold model, an image and label of different geometry.
#include "worker/ensemble.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "data/dataset.hpp"
#include "data/folds.hpp"
#include "data/nifti.hpp"
#include "data/synthetic.hpp"

namespace e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class EnsembleInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("e2e_ensemble_test_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    SyntheticOptions synth;
    synth.cases = 6;
    synth.shape = {8, 16, 16};
    write_synthetic_dataset((root_ / "data").string(), synth, true, 1);
    config_ = parse_config(
        "experiment: t\nmodel: {num_classes: 3, levels: 3, pools: [[1, 2, 2], [2, 2, 2]]}\n"
        "training: {patch_size: [8, 16, 16]}\n"
        "data: {dataset: " +
        (root_ / "data").string() + ", test_cases: [synth_002]}\n");
    // The folds of the other five cases, as preprocessing writes them.
    fs::create_directories(root_ / "data_preprocessed");
    write_splits_json((root_ / "data_preprocessed" / "splits_final.json").string(),
                      kfold_splits({"synth_001", "synth_003", "synth_004", "synth_005", "synth_006"}, 5));
    spec_.sparsity = 0.8;
    spec_.folds = {0, 1};
    spec_.fold_dirs = {(root_ / "runs" / "fold0").string(), (root_ / "runs" / "fold1").string()};
    spec_.out_dir = (root_ / "runs" / "test").string();
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string input_error() {
    try {
      run_ensemble_job(config_, spec_, nullptr);
    } catch (const InputError& e) {
      EXPECT_FALSE(fs::exists(spec_.out_dir)) << "nothing may be written before the inputs are checked";
      return e.what();
    }
    ADD_FAILURE() << "expected InputError";
    return {};
  }

  fs::path root_;
  Config config_;
  EnsembleSpec spec_;
};

TEST_F(EnsembleInputTest, AMissingFoldModelIsNamed) {
  EXPECT_THAT(input_error(), HasSubstr((root_ / "runs" / "fold0" / "checkpoint.ckpt").string() +
                                       ": missing model of fold 0"));
}

TEST_F(EnsembleInputTest, ATestCaseInsideAFoldIsNamed) {
  write_splits_json((root_ / "data_preprocessed" / "splits_final.json").string(),
                    kfold_splits({"synth_001", "synth_002", "synth_003", "synth_004", "synth_005"}, 5));
  EXPECT_THAT(input_error(), HasSubstr("test case 'synth_002' is in fold"));
}

TEST_F(EnsembleInputTest, ALabelOnAnotherGridThanItsImageIsNamed) {
  const std::string label = (root_ / "data" / "labelsTr" / "synth_002.nii.gz").string();
  NiftiGeometry geometry;
  read_nifti_labels(label, &geometry);
  geometry.shape = {0, 0, 0};  // take the shape of the volume written
  write_nifti_labels(label, Volume<int16_t>(Shape3{4, 16, 16}), geometry);
  EXPECT_THAT(input_error(), HasSubstr(label));
}

TEST_F(EnsembleInputTest, NoTestCasesIsAnError) {
  config_.data.test_cases.clear();
  EXPECT_THAT(input_error(), HasSubstr("no held-out test cases"));
}

}  // namespace
}  // namespace e2e
