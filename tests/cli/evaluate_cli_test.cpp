// Runs `e2e evaluate` on folders of NIfTI label maps written on the fly and checks the numbers against the
// metrics library, the report, and the exit code 2 (with the file named) for missing, extra and mismatched
// files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include "run_e2e.hpp"

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/nifti.hpp"
#include "metrics/evaluate.hpp"

namespace e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

using Result = e2e_cli::CliResult;
using e2e_cli::run_e2e;

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

// Spacings that float32 pixdim stores exactly, so the files hold the same grid as the in-memory volumes.
const Shape3 kShape{16, 18, 20};
const Spacing3 kSpacing{2.0, 1.0, 0.75};

LabelMap with_cube(LabelMap map, const Int3& lo, const Int3& hi, int16_t label) {
  for (int64_t z = lo[0]; z < hi[0]; ++z)
    for (int64_t y = lo[1]; y < hi[1]; ++y)
      for (int64_t x = lo[2]; x < hi[2]; ++x) map.at(z, y, x) = label;
  return map;
}

struct EvaluateCli : ::testing::Test {
  fs::path root;
  std::string pred, gt;
  LabelMap gt_a, pred_a, gt_b, pred_b;

  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root =
        fs::temp_directory_path() / ("e2e_evaluate_cli_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(root);
    pred = (root / "pred").string();
    gt = (root / "gt").string();
    fs::create_directories(pred);
    fs::create_directories(gt);
    const LabelMap empty(kShape, kSpacing);
    // case_a: class 1 identical; class 2 a cube shifted by one voxel (0.75 mm) along x.
    gt_a = with_cube(with_cube(empty, {2, 2, 2}, {7, 9, 9}, 1), {9, 4, 6}, {14, 14, 16}, 2);
    pred_a = with_cube(with_cube(empty, {2, 2, 2}, {7, 9, 9}, 1), {9, 4, 7}, {14, 14, 17}, 2);
    // case_b: class 1 shifted along z (2 mm) and grown along y; class 2 only in the reference.
    gt_b = with_cube(with_cube(empty, {3, 3, 3}, {8, 10, 12}, 1), {10, 10, 10}, {12, 12, 12}, 2);
    pred_b = with_cube(empty, {4, 3, 3}, {9, 12, 12}, 1);
    write(pred, "case_a.nii.gz", pred_a);
    write(gt, "case_a.nii.gz", gt_a);
    write(pred, "case_b.nii", pred_b);  // endings may differ between the folders
    write(gt, "case_b.nii.gz", gt_b);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  static void write(const std::string& dir, const std::string& name, const LabelMap& map) {
    write_nifti_labels((fs::path(dir) / name).string(), map, make_nifti_geometry(map.shape, map.spacing));
  }
  std::string folders() const { return "evaluate --pred " + pred + " --gt " + gt; }
  std::string out(const std::string& name = "summary.json") const { return (root / name).string(); }
};

void expect_structure(const nlohmann::json& got, const StructureMetrics& want) {
  EXPECT_EQ(got["name"], want.name);
  EXPECT_EQ(got["gt_voxels"], want.gt_voxels);
  EXPECT_EQ(got["pred_voxels"], want.pred_voxels);
  EXPECT_EQ(got["nsd_tolerance_mm"].get<double>(), want.nsd_tolerance_mm);
  for (const char* key : {"dice", "nsd", "hd"}) {
    const double value = key == std::string("dice")  ? want.dice
                         : key == std::string("nsd") ? want.nsd
                                                     : want.hd;
    if (std::isfinite(value))
      EXPECT_DOUBLE_EQ(got[key].get<double>(), value) << want.name << " " << key;
    else
      EXPECT_TRUE(got[key].is_null()) << want.name << " " << key;
  }
}

std::string fixed(double value, int digits) {
  std::array<char, 64> text{};
  std::snprintf(text.data(), text.size(), "%.*f", digits, value);
  return text.data();
}

void expect_usage_error(const Result& r, const std::string& text) {
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr(text));
  EXPECT_THAT(r.output, Not(HasSubstr("terminate called")));
}

TEST_F(EvaluateCli, IdenticalFoldersScorePerfectly) {
  const Result r =
      run_e2e("evaluate --pred " + gt + " --gt " + gt + " --labels 1,2 --workers 2 --out " + out());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The last two columns are the published-number variants: NSD at (3, 2, 1) mm and pooled HD95.
  EXPECT_THAT(r.output, HasSubstr("| NSD (3,2,1) | HD95 pooled (mm) |"));
  EXPECT_THAT(r.output, HasSubstr("| 1 | 1 | 2 | 1.0000 | 1.0000 | 1 | 0.00 | 1.0000 | 0.00 |"));
  EXPECT_THAT(r.output, HasSubstr("| 2 | 2 | 2 | 1.0000 | 1.0000 | 1 | 0.00 | 1.0000 | 0.00 |"));
  EXPECT_THAT(r.output,
              HasSubstr("| **mean (classes)** | | | **1.0000** | **1.0000** | | **0.00** | **1.0000** | "
                        "**0.00** |"));
  const nlohmann::json report = read_json(out());
  EXPECT_EQ(report["summary"]["cases"], 2);
  EXPECT_EQ(report["summary"]["mean_dice"].get<double>(), 1.0);
  EXPECT_EQ(report["summary"]["mean_nsd"].get<double>(), 1.0);
  EXPECT_EQ(report["summary"]["mean_hd"].get<double>(), 0.0);
  EXPECT_EQ(report["summary"]["mean_nsd_fixed_spacing"].get<double>(), 1.0);
  EXPECT_EQ(report["summary"]["mean_hd95_pooled"].get<double>(), 0.0);
  EXPECT_EQ(report["metric_variants"]["reference_variants"]["nsd_fixed_spacing"]["spacing_mm"],
            nlohmann::json::array({3.0, 2.0, 1.0}));

  const Result without =
      run_e2e("evaluate --pred " + gt + " --gt " + gt + " --labels 1,2 --no-reference-variants");
  ASSERT_EQ(without.exit_code, 0) << without.output;
  EXPECT_THAT(without.output, Not(HasSubstr("NSD (3,2,1)")));
  EXPECT_THAT(without.output, HasSubstr("| 1 | 1 | 2 | 1.0000 | 1.0000 | 1 | 0.00 |\n"));
}

TEST_F(EvaluateCli, NumbersEqualTheMetricsLibrary) {
  const Result r =
      run_e2e(folders() + " --labels 1,2 --regions 'fg:1,2' --tolerance 1:2,fg:0.5 --out " + out());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EvaluationOptions options;
  options.classes = {1, 2};
  options.nsd_tolerance_per_class = {{1, 2.0}};
  options.regions = {{"fg", {1, 2}, 0.5}};
  const CaseMetrics a = evaluate_case(gt_a, pred_a, options, "case_a");
  const CaseMetrics b = evaluate_case(gt_b, pred_b, options, "case_b");
  const nlohmann::json report = read_json(out());
  ASSERT_EQ(report["cases"].size(), 2u);
  EXPECT_EQ(report["cases"][0]["case"], "case_a");
  EXPECT_EQ(report["cases"][1]["case"], "case_b");
  EXPECT_EQ(report["cases"][1]["prediction_file"], (fs::path(pred) / "case_b.nii").string());
  for (std::size_t s = 0; s < 3; ++s) {
    expect_structure(report["cases"][0]["structures"][s], a.structures[s]);
    expect_structure(report["cases"][1]["structures"][s], b.structures[s]);
  }
  // The shifted cube: Dice 2·(5·10·9) / (2·500) = 0.9; 0.75 mm from the reference, inside 1 mm.
  EXPECT_DOUBLE_EQ(a.structures[1].dice, 0.9);
  EXPECT_DOUBLE_EQ(a.structures[1].nsd, 1.0);
  EXPECT_EQ(b.structures[1].dice, 0.0);  // only in the reference
  EXPECT_TRUE(report["cases"][1]["structures"][1]["hd_infinite"].get<bool>());

  const EvaluationSummary summary = summarize({a, b});
  EXPECT_DOUBLE_EQ(report["summary"]["mean_dice"].get<double>(), summary.mean_dice);
  EXPECT_DOUBLE_EQ(report["summary"]["mean_nsd"].get<double>(), summary.mean_nsd);
  EXPECT_DOUBLE_EQ(report["summary"]["region_mean_dice"].get<double>(), summary.region_mean_dice);
  EXPECT_EQ(report["metric_variants"]["nsd_tolerance_per_class"]["1"], 2.0);
  EXPECT_EQ(report["metric_variants"]["hd_variant"], "surfel");
  // The table prints the variants, tolerances, regions and means.
  EXPECT_THAT(r.output,
              HasSubstr("Dice: nnunet · NSD: surfel (tolerance 1 mm, 1: 2 mm, fg: 0.5 mm) · HD95: surfel"));
  EXPECT_THAT(r.output, HasSubstr("| fg | 1,2 | 2 | " + fixed(summary.structures[2].mean_dice, 4) + " | " +
                                  fixed(summary.structures[2].mean_nsd, 4) + " | 0.5 | " +
                                  fixed(summary.structures[2].mean_hd, 2) + " |"));
  EXPECT_THAT(r.output, HasSubstr("| **mean (regions)** |"));
  EXPECT_FALSE(fs::exists(out() + ".tmp." + std::to_string(::getpid())));
}

TEST_F(EvaluateCli, VariantsByNameAndWorkerCountsAgree) {
  ASSERT_EQ(
      run_e2e(folders() + " --labels 1,2 --hd-variant pooled --nsd-variant monai_voxel --workers 1 --out " +
              out("one.json"))
          .exit_code,
      0);
  const Result r = run_e2e(
      folders() + " --labels 1,2 --hd-variant pooled --nsd-variant monai_voxel --workers 3 --format json",
      false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json stdout_report = nlohmann::json::parse(r.output);  // stdout holds only the JSON
  const nlohmann::json one = read_json(out("one.json"));
  EXPECT_EQ(stdout_report["cases"], one["cases"]);
  EXPECT_EQ(one["metric_variants"]["hd_variant"], "pooled");
  EXPECT_EQ(one["metric_variants"]["nsd_variant"], "monai_voxel");
  EvaluationOptions options;
  options.classes = {1, 2};
  options.hd_variant = HausdorffVariant::pooled;
  options.nsd_variant = NsdVariant::monai_voxel;
  const CaseMetrics a = evaluate_case(gt_a, pred_a, options, "case_a");
  for (std::size_t s = 0; s < 2; ++s) expect_structure(one["cases"][0]["structures"][s], a.structures[s]);
}

TEST_F(EvaluateCli, LabelsFromDatasetJsonOrFromTheFiles) {
  const std::string dataset_json = out("dataset.json");
  std::ofstream(dataset_json)
      << R"({"labels": {"background": 0, "liver": 1, "spleen": 2, "tumour": [1, 2]}})";
  Result r = run_e2e(folders() + " --dataset-json " + dataset_json + " --out " + out());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("| liver | 1 | 2 |"));
  EXPECT_THAT(r.output, HasSubstr("| spleen | 2 | 2 |"));
  EXPECT_THAT(r.output, HasSubstr("| tumour | 1,2 | 2 |"));
  const nlohmann::json declared = read_json(out());

  r = run_e2e(folders() + " --regions tumour:1,2 --out " + out("found.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("labels found in the files"));
  const nlohmann::json found = read_json(out("found.json"));
  EXPECT_TRUE(found["labels_from_files"].get<bool>());
  for (std::size_t c = 0; c < 2; ++c)
    for (std::size_t s = 0; s < 3; ++s)
      for (const char* key : {"dice", "nsd", "hd", "gt_voxels", "pred_voxels"})
        EXPECT_EQ(found["cases"][c]["structures"][s][key], declared["cases"][c]["structures"][s][key]);
}

TEST_F(EvaluateCli, MissingExtraAndMismatchedFilesExitWithCode2) {
  fs::rename(fs::path(pred) / "case_b.nii", root / "case_b.nii");
  expect_usage_error(run_e2e(folders()), "case_b.nii.gz");  // reference without a prediction
  const Result allowed = run_e2e(folders() + " --allow-missing --out " + out());
  EXPECT_EQ(allowed.exit_code, 0) << allowed.output;
  EXPECT_EQ(read_json(out())["missing_predictions"], nlohmann::json::array({"case_b.nii.gz"}));

  write(pred, "case_c.nii.gz", pred_a);  // prediction without a reference: an error even with --allow-missing
  expect_usage_error(run_e2e(folders() + " --allow-missing"), "case_c.nii.gz");
  fs::remove(fs::path(pred) / "case_c.nii.gz");

  fs::rename(root / "case_b.nii", fs::path(pred) / "case_b.nii");
  write(pred, "case_a.nii.gz", LabelMap({16, 18, 21}, kSpacing));  // shape differs
  Result r = run_e2e(folders());
  expect_usage_error(r, (fs::path(pred) / "case_a.nii.gz").string());
  EXPECT_THAT(r.output, HasSubstr((fs::path(gt) / "case_a.nii.gz").string()));

  write(pred, "case_a.nii.gz", LabelMap(kShape, {2.0, 1.0, 1.0}));  // spacing differs
  r = run_e2e(folders());
  expect_usage_error(r, "spacing");
  EXPECT_THAT(r.output, HasSubstr((fs::path(pred) / "case_a.nii.gz").string()));

  std::ofstream(fs::path(pred) / "case_a.nii.gz") << "not a nifti file";
  expect_usage_error(run_e2e(folders() + " --workers 2 --out " + out("never.json")),
                     (fs::path(pred) / "case_a.nii.gz").string());
  EXPECT_FALSE(fs::exists(out("never.json")));
}

TEST_F(EvaluateCli, BadArgumentsExitWithCode2AndNameTheFlag) {
  expect_usage_error(run_e2e("evaluate --pred " + (root / "nope").string() + " --gt " + gt),
                     (root / "nope").string() + ": prediction folder not found");
  expect_usage_error(run_e2e(folders() + " --labels 1,x"), "--labels");
  expect_usage_error(run_e2e(folders() + " --labels 1,1"), "--labels");
  expect_usage_error(run_e2e(folders() + " --regions whole"), "--regions");
  expect_usage_error(run_e2e(folders() + " --tolerance -1"), "--tolerance");
  expect_usage_error(run_e2e(folders() + " --tolerance 1:abc"), "--tolerance");
  expect_usage_error(run_e2e(folders() + " --labels 1 --tolerance 3:2"), "--tolerance: label 3");
  expect_usage_error(run_e2e(folders() + " --tolerance core:2"), "--tolerance: 'core'");
  expect_usage_error(run_e2e(folders() + " --hd-variant medpy"), "--hd-variant");
  expect_usage_error(run_e2e(folders() + " --nsd-variant dm"), "--nsd-variant");
  expect_usage_error(run_e2e(folders() + " --format csv"), "--format");
  expect_usage_error(run_e2e(folders() + " --labels 1 --dataset-json x.json"), "--dataset-json");
  expect_usage_error(run_e2e(folders() + " --dataset-json " + out("absent.json")), out("absent.json"));
  expect_usage_error(run_e2e("evaluate --gt " + gt), "--pred");
}

TEST_F(EvaluateCli, HelpExitsZero) {
  const Result r = run_e2e("evaluate --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("--allow-missing"));
  EXPECT_THAT(r.output, HasSubstr("--tolerance"));
}

}  // namespace
}  // namespace e2e
