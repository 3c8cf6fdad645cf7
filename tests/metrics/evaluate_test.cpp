#include "metrics/evaluate.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "metrics_test_util.hpp"

namespace e2e {
namespace {

// Writes `label` into every voxel of map where mask is set.
void paint(LabelMap& map, const Mask& mask, int16_t label) {
  for (std::size_t i = 0; i < mask.voxels.size(); ++i) {
    if (mask.voxels[i]) map.voxels[i] = label;
  }
}

struct EvaluateTest : ::testing::Test {
  const Shape3 shape{32, 32, 32};
  const Spacing3 spacing{1.0, 1.0, 1.0};
  LabelMap gt{shape, spacing};
  LabelMap pred{shape, spacing};
  Mask gt_ball = testing::ball(shape, spacing, {16, 16, 12}, 6.0);
  Mask pred_ball = testing::ball(shape, spacing, {16, 17, 12}, 6.5);
  Mask box = testing::box_mask(shape, spacing, {2, 2, 22}, {8, 9, 30});

  void SetUp() override {
    paint(gt, gt_ball, 1);  // class 1: two different balls
    paint(pred, pred_ball, 1);
    paint(gt, box, 3);  // class 3: perfect; class 2 absent from both; class 4 only in the prediction
    paint(pred, box, 3);
    pred.at(30, 30, 30) = 4;
  }

  EvaluationOptions options() const {
    EvaluationOptions o;
    o.classes = {1, 2, 3, 4};
    o.class_names = {{1, "ball"}};
    o.regions = {{"ball_or_box", {1, 3}, std::nullopt}};
    return o;
  }
};

TEST_F(EvaluateTest, PerClassValuesEqualTheBinaryMetrics) {
  const CaseMetrics metrics = evaluate_case(gt, pred, options(), "case_0");
  ASSERT_EQ(metrics.structures.size(), 5u);
  const StructureMetrics& ball = metrics.structures[0];
  EXPECT_EQ(ball.name, "ball");
  EXPECT_EQ(ball.gt_voxels, count_nonzero(gt_ball));
  EXPECT_EQ(ball.pred_voxels, count_nonzero(pred_ball));
  EXPECT_DOUBLE_EQ(ball.dice, dice(gt_ball, pred_ball).value);
  EXPECT_DOUBLE_EQ(ball.nsd, normalized_surface_dice(gt_ball, pred_ball, 1.0).value);
  EXPECT_DOUBLE_EQ(ball.hd, hausdorff(gt_ball, pred_ball, 95.0).value);
  EXPECT_EQ(ball.nsd_tolerance_mm, 1.0);
  EXPECT_GT(ball.dice, 0.5);
  EXPECT_LT(ball.dice, 1.0);

  const StructureMetrics& absent = metrics.structures[1];
  EXPECT_EQ(absent.name, "2");
  EXPECT_TRUE(std::isnan(absent.dice));
  EXPECT_TRUE(std::isnan(absent.nsd));
  EXPECT_TRUE(std::isnan(absent.hd));

  const StructureMetrics& perfect = metrics.structures[2];
  EXPECT_EQ(perfect.dice, 1.0);
  EXPECT_EQ(perfect.nsd, 1.0);
  EXPECT_EQ(perfect.hd, 0.0);

  const StructureMetrics& false_positive = metrics.structures[3];
  EXPECT_EQ(false_positive.dice, 0.0);
  EXPECT_EQ(false_positive.nsd, 0.0);
  EXPECT_TRUE(std::isinf(false_positive.hd));
}

TEST_F(EvaluateTest, RegionsScoreTheUnionOfTheirLabels) {
  const CaseMetrics metrics = evaluate_case(gt, pred, options());
  const StructureMetrics& region = metrics.structures[4];
  EXPECT_TRUE(region.is_region);
  EXPECT_EQ(region.labels, (std::vector<int>{1, 3}));
  Mask gt_union = gt_ball, pred_union = pred_ball;
  for (std::size_t i = 0; i < box.voxels.size(); ++i) {
    gt_union.voxels[i] |= box.voxels[i];
    pred_union.voxels[i] |= box.voxels[i];
  }
  EXPECT_DOUBLE_EQ(region.dice, dice(gt_union, pred_union).value);
  EXPECT_DOUBLE_EQ(region.nsd, normalized_surface_dice(gt_union, pred_union, 1.0).value);
}

TEST_F(EvaluateTest, PerClassToleranceAndVariantsAreApplied) {
  EvaluationOptions o = options();
  o.nsd_tolerance_per_class = {{1, 3.0}};
  o.regions[0].nsd_tolerance_mm = 2.0;
  o.hd_variant = HausdorffVariant::pooled;
  o.nsd_variant = NsdVariant::monai_voxel;
  const CaseMetrics metrics = evaluate_case(gt, pred, o);
  const StructureMetrics& ball = metrics.structures[0];
  EXPECT_EQ(ball.nsd_tolerance_mm, 3.0);
  EXPECT_EQ(metrics.structures[2].nsd_tolerance_mm, 1.0);
  EXPECT_EQ(metrics.structures[4].nsd_tolerance_mm, 2.0);
  EXPECT_DOUBLE_EQ(ball.nsd, normalized_surface_dice(gt_ball, pred_ball, 3.0, NsdVariant::monai_voxel).value);
  EXPECT_DOUBLE_EQ(ball.hd, hausdorff(gt_ball, pred_ball, 95.0, HausdorffVariant::pooled).value);
}

TEST_F(EvaluateTest, SummaryUsesNanmeanOverCasesThenOverClasses) {
  EvaluationOptions o = options();
  o.classes = {1, 2, 3};
  o.regions.clear();
  const CaseMetrics first = evaluate_case(gt, pred, o, "a");
  const CaseMetrics second = evaluate_case(gt, gt, o, "b");
  const EvaluationSummary summary = summarize({first, second});
  ASSERT_EQ(summary.structures.size(), 3u);
  EXPECT_DOUBLE_EQ(summary.structures[0].mean_dice, (first.structures[0].dice + 1.0) / 2.0);
  EXPECT_EQ(summary.structures[0].cases_scored, 2);
  EXPECT_TRUE(std::isnan(summary.structures[1].mean_dice));  // class 2 is never present
  EXPECT_EQ(summary.structures[1].cases_scored, 0);
  EXPECT_DOUBLE_EQ(summary.mean_dice, (summary.structures[0].mean_dice + 1.0) / 2.0);
  EXPECT_DOUBLE_EQ(summary.mean_nsd, (summary.structures[0].mean_nsd + 1.0) / 2.0);
  EXPECT_TRUE(std::isnan(summary.region_mean_dice));
  EXPECT_EQ(summary.cases, 2);
}

TEST_F(EvaluateTest, JsonReportNamesVariantsAndToleranceAndWritesNullForMissingValues) {
  const std::vector<CaseMetrics> cases{evaluate_case(gt, pred, options(), "case_0")};
  const nlohmann::json report = evaluation_report(options(), cases);
  EXPECT_EQ(report["metric_variants"]["dice_variant"], "nnunet");
  EXPECT_EQ(report["metric_variants"]["nsd_variant"], "surfel");
  EXPECT_EQ(report["metric_variants"]["hd_variant"], "surfel");
  EXPECT_EQ(report["metric_variants"]["hd_percentile"], 95.0);
  EXPECT_EQ(report["metric_variants"]["nsd_tolerance_mm"], 1.0);
  const nlohmann::json& structures = report["cases"][0]["structures"];
  EXPECT_EQ(report["cases"][0]["case"], "case_0");
  EXPECT_EQ(structures[0]["nsd_tolerance_mm"], 1.0);
  EXPECT_TRUE(structures[1]["dice"].is_null());
  EXPECT_TRUE(structures[3]["hd"].is_null());
  EXPECT_TRUE(structures[3]["hd_infinite"].get<bool>());
  EXPECT_EQ(structures[3]["pred_voxels"], 1);
  EXPECT_EQ(structures[2]["dice"], 1.0);
  EXPECT_TRUE(report["summary"]["mean_dice"].is_number());
  // The text form is valid JSON (no NaN / Infinity tokens).
  const std::string text = report.dump();
  EXPECT_EQ(text.find("NaN"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(text), report);
}

TEST(EvaluationOptionsTest, BuiltFromTheConfigAndValidated) {
  EvalConfig eval;
  eval.nsd_tolerance_mm = 2.0;
  eval.nsd_tolerance_per_class = {{3, 5.0}};
  eval.hd_variant = "monai";
  const EvaluationOptions o = evaluation_options(eval, 4);
  EXPECT_EQ(o.classes, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(o.tolerance_for_class(1), 2.0);
  EXPECT_EQ(o.tolerance_for_class(3), 5.0);
  EXPECT_EQ(o.hd_variant, HausdorffVariant::monai);

  eval.hd_variant = "hd95";
  EXPECT_THROW(evaluation_options(eval, 4), InputError);

  EvaluationOptions bad;
  bad.classes = {1, 1};
  EXPECT_THROW(bad.validate(), InputError);
  bad.classes = {1};
  bad.regions = {{"wt", {}, std::nullopt}};
  EXPECT_THROW(bad.validate(), InputError);
  bad.regions = {{"wt", {1}, -1.0}};
  EXPECT_THROW(bad.validate(), InputError);
  bad.regions = {{"wt", {1}, std::nullopt}, {"wt", {2}, std::nullopt}};
  EXPECT_THROW(bad.validate(), InputError);
  bad.regions.clear();
  bad.nsd_tolerance_mm = std::nan("");
  EXPECT_THROW(bad.validate(), InputError);
}

TEST(EvaluateCaseTest, RejectsLabelMapsOfDifferentShape) {
  const LabelMap a({4, 4, 4}), b({4, 4, 3});
  EvaluationOptions o;
  o.classes = {1};
  try {
    evaluate_case(a, b, o, "case_7");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("case_7"), std::string::npos);
  }
}

}  // namespace
}  // namespace e2e
