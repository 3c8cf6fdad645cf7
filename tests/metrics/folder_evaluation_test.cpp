#include "metrics/folder_evaluation.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "metrics_test_util.hpp"

namespace e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A fresh folder under the temporary directory, removed at the end of the test.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("e2e_folder_eval_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  std::string str() const { return path.string(); }
};

void touch(const std::string& path) {
  std::ofstream(path) << "x";
}

LabelMap cube_map(const Shape3& shape, const Spacing3& spacing, const Int3& lo, const Int3& hi, int16_t label,
                  LabelMap map = {}) {
  if (map.voxels.empty()) map = LabelMap(shape, spacing);
  const Mask mask = testing::box_mask(shape, spacing, lo, hi);
  for (std::size_t i = 0; i < mask.voxels.size(); ++i) {
    if (mask.voxels[i]) map.voxels[i] = label;
  }
  return map;
}

// Label maps "on disk": the files exist (so pair_folders finds them) and the reader hands out these volumes.
struct FakeFolders : ::testing::Test {
  TempDir pred{"pred"};
  TempDir gt{"gt"};
  std::map<std::string, LabelMap> volumes;
  std::mutex mutex;
  int reads = 0;

  void add(const TempDir& dir, const std::string& name, const LabelMap& map) {
    touch(dir / name);
    volumes[dir / name] = map;
  }
  LabelReader reader() {
    return [this](const std::string& path) {
      std::lock_guard<std::mutex> lock(mutex);
      ++reads;
      const auto found = volumes.find(path);
      if (found == volumes.end()) throw InputError(path + ": cannot read");
      return found->second;
    };
  }
};

void expect_same(const CaseMetrics& a, const CaseMetrics& b) {
  ASSERT_EQ(a.case_id, b.case_id);
  ASSERT_EQ(a.structures.size(), b.structures.size());
  for (std::size_t s = 0; s < a.structures.size(); ++s) {
    const StructureMetrics& x = a.structures[s];
    const StructureMetrics& y = b.structures[s];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.labels, y.labels);
    EXPECT_EQ(x.is_region, y.is_region);
    EXPECT_EQ(x.gt_voxels, y.gt_voxels);
    EXPECT_EQ(x.pred_voxels, y.pred_voxels);
    EXPECT_EQ(x.nsd_tolerance_mm, y.nsd_tolerance_mm);
    for (auto [u, v] : {std::pair{x.dice, y.dice}, std::pair{x.nsd, y.nsd}, std::pair{x.hd, y.hd}}) {
      if (std::isnan(v))
        EXPECT_TRUE(std::isnan(u)) << x.name;
      else
        EXPECT_EQ(u, v) << x.name;
    }
  }
}

template <typename F>
std::string input_error_of(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an InputError";
  return "";
}

TEST(NiftiCaseId, StripsTheNiftiEndingOnly) {
  EXPECT_EQ(nifti_case_id("case_001.nii.gz"), "case_001");
  EXPECT_EQ(nifti_case_id("case_001.nii"), "case_001");
  EXPECT_EQ(nifti_case_id("a.b.nii.gz"), "a.b");
  EXPECT_EQ(nifti_case_id("plans.json"), "");
  EXPECT_EQ(nifti_case_id("case.nii.gz.bak"), "");
  EXPECT_EQ(nifti_case_id(".nii.gz"), "");
  EXPECT_EQ(nifti_case_id("x.gz"), "");
}

TEST_F(FakeFolders, PairsByCaseIdAndIgnoresOtherFiles) {
  touch(pred / "b.nii.gz");
  touch(pred / "a.nii");
  touch(pred / "plans.json");
  touch(pred / "._a.nii.gz");  // macOS debris
  fs::create_directories(pred.path / "sub.nii.gz");
  touch(gt / "a.nii.gz");
  touch(gt / "b.nii.gz");
  touch(gt / "dataset.json");
  const FolderPairs pairs = pair_folders(pred.str(), gt.str());
  ASSERT_EQ(pairs.cases.size(), 2u);
  EXPECT_EQ(pairs.cases[0].case_id, "a");
  EXPECT_EQ(pairs.cases[0].prediction, pred / "a.nii");
  EXPECT_EQ(pairs.cases[0].reference, gt / "a.nii.gz");
  EXPECT_EQ(pairs.cases[1].case_id, "b");
  EXPECT_TRUE(pairs.missing_predictions.empty());
}

TEST_F(FakeFolders, PredictionWithoutReferenceIsAnError) {
  touch(pred / "a.nii.gz");
  touch(pred / "extra_case.nii.gz");
  touch(gt / "a.nii.gz");
  const std::string message = input_error_of([&] { pair_folders(pred.str(), gt.str(), true); });
  EXPECT_THAT(message, HasSubstr("extra_case.nii.gz"));
  EXPECT_THAT(message, HasSubstr("without a reference"));
  EXPECT_THAT(message, HasSubstr(pred.str()));
}

TEST_F(FakeFolders, ReferenceWithoutPredictionIsAnErrorUnlessAllowed) {
  touch(pred / "a.nii.gz");
  touch(gt / "a.nii.gz");
  touch(gt / "missing_case.nii.gz");
  const std::string message = input_error_of([&] { pair_folders(pred.str(), gt.str()); });
  EXPECT_THAT(message, HasSubstr("missing_case.nii.gz"));
  EXPECT_THAT(message, HasSubstr("--allow-missing"));
  const FolderPairs pairs = pair_folders(pred.str(), gt.str(), true);
  ASSERT_EQ(pairs.cases.size(), 1u);
  EXPECT_EQ(pairs.missing_predictions, std::vector<std::string>{"missing_case.nii.gz"});
}

TEST_F(FakeFolders, LongListsAreShortened) {
  touch(gt / "a.nii.gz");
  for (int i = 0; i < 14; ++i) touch(pred / ("p" + std::to_string(100 + i) + ".nii.gz"));
  const std::string message = input_error_of([&] { pair_folders(pred.str(), gt.str()); });
  EXPECT_THAT(message, HasSubstr("14 prediction(s)"));
  EXPECT_THAT(message, HasSubstr("p100.nii.gz"));
  EXPECT_THAT(message, HasSubstr("(4 more)"));
}

TEST_F(FakeFolders, TwoFilesOfOneCaseAreAnError) {
  touch(pred / "a.nii");
  touch(pred / "a.nii.gz");
  touch(gt / "a.nii.gz");
  const std::string message = input_error_of([&] { pair_folders(pred.str(), gt.str()); });
  EXPECT_THAT(message, HasSubstr("a.nii and a.nii.gz"));
}

TEST_F(FakeFolders, MissingOrEmptyFoldersAreErrors) {
  touch(gt / "a.nii.gz");
  EXPECT_THAT(input_error_of([&] { pair_folders(pred.str(), gt.str()); }),
              HasSubstr(pred.str() + ": no NIfTI files"));
  EXPECT_THAT(input_error_of([&] { pair_folders(pred / "nope", gt.str()); }),
              HasSubstr(pred / "nope" + ": prediction folder not found"));
  touch(pred / "a.nii.gz");
  EXPECT_THAT(input_error_of([&] { pair_folders(pred.str(), gt / "nope"); }),
              HasSubstr(gt / "nope" + ": reference folder not found"));
}

struct FolderEvaluationTest : FakeFolders {
  const Shape3 shape{20, 22, 24};
  const Spacing3 spacing{2.0, 1.0, 0.8};
  LabelMap gt_a, pred_a, gt_b, pred_b;

  void SetUp() override {
    // case a: class 1 identical, class 2 a cube shifted by one voxel along x.
    gt_a = cube_map(shape, spacing, {4, 4, 4}, {10, 12, 12}, 1);
    gt_a = cube_map(shape, spacing, {12, 6, 6}, {18, 16, 16}, 2, gt_a);
    pred_a = cube_map(shape, spacing, {4, 4, 4}, {10, 12, 12}, 1);
    pred_a = cube_map(shape, spacing, {12, 6, 7}, {18, 16, 17}, 2, pred_a);
    // case b: class 1 shifted along z, class 2 absent from both.
    gt_b = cube_map(shape, spacing, {4, 4, 4}, {10, 12, 12}, 1);
    pred_b = cube_map(shape, spacing, {5, 4, 4}, {11, 12, 12}, 1);
    add(pred, "a.nii.gz", pred_a);
    add(gt, "a.nii.gz", gt_a);
    add(pred, "b.nii.gz", pred_b);
    add(gt, "b.nii.gz", gt_b);
  }

  EvaluationOptions options() const {
    EvaluationOptions o;
    o.classes = {1, 2};
    o.class_names = {{1, "one"}, {2, "two"}};
    o.nsd_tolerance_per_class = {{2, 2.0}};
    o.regions = {{"both", {1, 2}, std::nullopt}};
    return o;
  }
};

TEST_F(FolderEvaluationTest, MatchesEvaluateCaseOnEveryPair) {
  const FolderPairs pairs = pair_folders(pred.str(), gt.str());
  const FolderEvaluation result = evaluate_folder_pairs(pairs.cases, options(), reader(), 2);
  ASSERT_EQ(result.cases.size(), 2u);
  EXPECT_FALSE(result.classes_discovered);
  expect_same(result.cases[0], evaluate_case(gt_a, pred_a, options(), "a"));
  expect_same(result.cases[1], evaluate_case(gt_b, pred_b, options(), "b"));
  EXPECT_EQ(reads, 4);

  // Identical class: perfect scores; the shifted cube: Dice 2·|overlap| / (|a| + |b|) = 2·(6·10·9)/(2·600).
  const StructureMetrics& same = result.cases[0].structures[0];
  EXPECT_DOUBLE_EQ(same.dice, 1.0);
  EXPECT_DOUBLE_EQ(same.nsd, 1.0);
  EXPECT_DOUBLE_EQ(same.hd, 0.0);
  const StructureMetrics& shifted = result.cases[0].structures[1];
  EXPECT_DOUBLE_EQ(shifted.dice, 0.9);
  EXPECT_EQ(shifted.nsd_tolerance_mm, 2.0);
  EXPECT_DOUBLE_EQ(shifted.nsd, 1.0);  // a 0.8 mm shift is inside the 2 mm tolerance
  EXPECT_TRUE(std::isnan(result.cases[1].structures[1].dice));

  const EvaluationSummary summary = summarize(result.cases);
  EXPECT_EQ(summary.structures[1].cases_scored, 1);
  EXPECT_DOUBLE_EQ(summary.structures[1].mean_dice, 0.9);
}

TEST_F(FolderEvaluationTest, ResultsDoNotDependOnTheWorkerCount) {
  for (int i = 0; i < 9; ++i) {
    const std::string name = "c" + std::to_string(i) + ".nii";
    add(pred, name, i % 2 ? pred_a : pred_b);
    add(gt, name, i % 2 ? gt_a : gt_b);
  }
  const FolderPairs pairs = pair_folders(pred.str(), gt.str());
  ASSERT_EQ(pairs.cases.size(), 11u);
  const FolderEvaluation one = evaluate_folder_pairs(pairs.cases, options(), reader(), 1);
  std::size_t calls = 0, last_done = 0;
  const FolderEvaluation four = evaluate_folder_pairs(pairs.cases, options(), reader(), 4,
                                                      [&](std::size_t done, std::size_t total, auto&) {
                                                        ++calls;
                                                        EXPECT_EQ(total, 11u);
                                                        EXPECT_EQ(done, last_done + 1);
                                                        last_done = done;
                                                      });
  EXPECT_EQ(calls, 11u);
  for (std::size_t i = 0; i < pairs.cases.size(); ++i) {
    EXPECT_EQ(one.cases[i].case_id, pairs.cases[i].case_id);
    expect_same(four.cases[i], one.cases[i]);
  }
}

TEST_F(FolderEvaluationTest, DiscoveredLabelsGiveTheSameNumbersAsExplicitOnes) {
  const FolderPairs pairs = pair_folders(pred.str(), gt.str());
  EvaluationOptions discover = options();
  discover.classes.clear();
  const FolderEvaluation found = evaluate_folder_pairs(pairs.cases, discover, reader(), 2);
  EXPECT_TRUE(found.classes_discovered);
  EXPECT_EQ(found.options.classes, (std::vector<int>{1, 2}));
  const FolderEvaluation given = evaluate_folder_pairs(pairs.cases, options(), reader(), 2);
  for (std::size_t i = 0; i < pairs.cases.size(); ++i) expect_same(found.cases[i], given.cases[i]);
  EXPECT_EQ(found.cases[1].structures[1].name,
            "two");  // class 2 is absent from case b: NaN, named, tolerance
  EXPECT_EQ(found.cases[1].structures[1].nsd_tolerance_mm, 2.0);
  EXPECT_TRUE(found.cases[1].structures[2].is_region);
}

TEST_F(FolderEvaluationTest, GeometryMismatchNamesBothFiles) {
  add(pred, "a.nii.gz", LabelMap({20, 22, 25}, spacing));
  const FolderPairs pairs = pair_folders(pred.str(), gt.str());
  std::string message = input_error_of([&] { evaluate_folder_pairs(pairs.cases, options(), reader(), 2); });
  EXPECT_THAT(message, HasSubstr(pred / "a.nii.gz"));
  EXPECT_THAT(message, HasSubstr(gt / "a.nii.gz"));
  EXPECT_THAT(message, HasSubstr("shape"));

  add(pred, "a.nii.gz", LabelMap(shape, {2.0, 1.0, 1.0}));
  message = input_error_of([&] { evaluate_folder_pairs(pairs.cases, options(), reader(), 1); });
  EXPECT_THAT(message, HasSubstr(pred / "a.nii.gz"));
  EXPECT_THAT(message, HasSubstr("spacing"));
}

TEST_F(FolderEvaluationTest, ReaderErrorsStopTheRunAndReachTheCaller) {
  for (int i = 0; i < 6; ++i) add(gt, "c" + std::to_string(i) + ".nii.gz", gt_a);
  for (int i = 0; i < 6; ++i) touch(pred / ("c" + std::to_string(i) + ".nii.gz"));  // unreadable
  const FolderPairs pairs = pair_folders(pred.str(), gt.str());
  const std::string message =
      input_error_of([&] { evaluate_folder_pairs(pairs.cases, options(), reader(), 3); });
  EXPECT_THAT(message, HasSubstr("cannot read"));
}

TEST_F(FolderEvaluationTest, BadOptionsAreRefusedBeforeReading) {
  EvaluationOptions bad = options();
  bad.nsd_tolerance_mm = -1.0;
  const FolderPairs pairs = pair_folders(pred.str(), gt.str());
  EXPECT_THROW(evaluate_folder_pairs(pairs.cases, bad, reader(), 1), InputError);
  EXPECT_EQ(reads, 0);
}

TEST(DatasetJsonLabels, MsdAndNnUNetV1) {
  TempDir dir("dj_v1");
  std::ofstream(dir / "dataset.json")
      << R"({"name": "x", "modality": {"0": "CT"}, "labels": {"0": "background", "2": "kidney", "1": "liver"}})";
  const DatasetLabels labels = read_dataset_json_labels(dir / "dataset.json");
  EXPECT_EQ(labels.classes, (std::vector<int>{1, 2}));
  EXPECT_EQ(labels.class_names.at(1), "liver");
  EXPECT_EQ(labels.class_names.at(2), "kidney");
  EXPECT_TRUE(labels.regions.empty());
}

TEST(DatasetJsonLabels, NnUNetV2WithRegions) {
  TempDir dir("dj_v2");
  std::ofstream(dir / "dataset.json") << R"({"channel_names": {"0": "FLAIR"}, "labels": {"background": 0,
      "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": 3}, "file_ending": ".nii.gz"})";
  const DatasetLabels labels = read_dataset_json_labels(dir / "dataset.json");
  EXPECT_EQ(labels.classes, (std::vector<int>{3}));
  EXPECT_EQ(labels.class_names.at(3), "enhancing tumor");
  ASSERT_EQ(labels.regions.size(), 2u);
  EXPECT_EQ(labels.regions[0].name, "whole tumor");  // file order
  EXPECT_EQ(labels.regions[0].labels, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(labels.regions[1].name, "tumor core");
}

TEST(DatasetJsonLabels, BadFilesNameTheFileAndTheProblem) {
  TempDir dir("dj_bad");
  auto error_for = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return input_error_of([&] { read_dataset_json_labels(dir / name); });
  };
  EXPECT_THAT(input_error_of([&] { read_dataset_json_labels(dir / "none.json"); }),
              HasSubstr(dir / "none.json" + ": file not found"));
  EXPECT_THAT(error_for("a.json", "{not json"), HasSubstr(dir / "a.json" + ": not valid JSON"));
  EXPECT_THAT(error_for("b.json", R"({"name": "x"})"), HasSubstr(dir / "b.json" + ": labels: missing"));
  EXPECT_THAT(error_for("c.json", R"({"labels": {"0": "background", "liver": 1}})"), HasSubstr("mixes"));
  EXPECT_THAT(error_for("d.json", R"({"labels": {"zero": "background"}})"), HasSubstr("\"zero\""));
  EXPECT_THAT(error_for("e.json", R"({"labels": {"background": 0, "a": 1, "b": 1}})"),
              HasSubstr("label value 1 is declared twice"));
  EXPECT_THAT(error_for("f.json", R"({"labels": {"background": 0, "a": 1.5}})"), HasSubstr("\"a\""));
  EXPECT_THAT(error_for("g.json", R"({"labels": {"background": 0, "r": []}})"),
              HasSubstr("at least one label"));
}

TEST(PositiveLabels, AscendingWithoutBackgroundOrIgnore) {
  LabelMap map({2, 2, 2});
  map.voxels = {0, 5, -1, 2, 2, 0, 300, 5};
  EXPECT_EQ(positive_labels(map), (std::vector<int>{2, 5, 300}));
}

}  // namespace
}  // namespace e2e
