// The published-number variants evaluate_case computes next to the configured metrics: the E2ENet reference's
// NSD at a fixed spacing of (3, 2, 1) mm and medpy's pooled HD95 with nnU-Net v1's empty rule.
#include <gtest/gtest.h>

#include <cmath>

#include "metrics/evaluate.hpp"

namespace e2e {
namespace {

EvaluationOptions class_one() {
  EvaluationOptions options;
  options.classes = {1};
  return options;
}

TEST(ReferenceVariants, NsdFixedSpacingIgnoresTheImageSpacingInZYXOrder) {
  // DeepMind's single-voxel vector (shared/reference/metrics.md): voxels two apart along the last axis at
  // spacing (3, 2, 1) have NSD@1mm 0.5. Here the image's own spacing is (1, 2, 3), so the true-spacing NSD
  // sees them 6 mm apart (corners ≥ 3 mm apart: NSD 0) while the fixed-spacing variant reproduces 0.5.
  // Swapped axes would give 0 for both.
  LabelMap gt(Shape3{6, 6, 8}, {1.0, 2.0, 3.0}), pred(Shape3{6, 6, 8}, {1.0, 2.0, 3.0});
  gt.at(2, 2, 2) = 1;
  pred.at(2, 2, 4) = 1;
  const StructureMetrics m = evaluate_case(gt, pred, class_one()).structures[0];
  EXPECT_EQ(m.nsd, 0.0);
  EXPECT_NEAR(m.nsd_fixed_spacing, 0.5, 1e-9);
  // Pooled HD95: each boundary voxel is 2 × 3 mm from the other one.
  EXPECT_NEAR(m.hd95_pooled, 6.0, 1e-9);
}

TEST(ReferenceVariants, NsdFixedSpacingEqualsNsdWhenTheImageHasThatSpacing) {
  LabelMap gt(Shape3{6, 6, 8}, kReferenceNsdSpacing), pred(Shape3{6, 6, 8}, kReferenceNsdSpacing);
  gt.at(2, 2, 2) = 1;
  pred.at(2, 2, 4) = 1;
  const StructureMetrics m = evaluate_case(gt, pred, class_one()).structures[0];
  EXPECT_NEAR(m.nsd, 0.5, 1e-9);
  EXPECT_EQ(m.nsd_fixed_spacing, m.nsd);
}

// A line of 4 voxels against a line of 5 along x, spacing 2.5 mm there. Thin lines are all boundary; the
// pooled distances are eight 0s (every reference voxel is predicted and vice versa) and one 2.5 mm (the extra
// voxel). numpy's linear 95th percentile of 9 values sits at index 0.95 · 8 = 7.6: 0 + 0.6 · 2.5 = 1.5 mm.
struct Lines {
  LabelMap gt{Shape3{3, 3, 8}, {1.0, 1.0, 2.5}};
  LabelMap pred{Shape3{3, 3, 8}, {1.0, 1.0, 2.5}};
  Lines() {
    for (int64_t x = 0; x < 4; ++x) gt.at(1, 1, x) = 1;
    for (int64_t x = 0; x < 5; ++x) pred.at(1, 1, x) = 1;
  }
};

TEST(ReferenceVariants, Hd95PooledInterpolatesOverBothDirectionsTogether) {
  const Lines lines;
  const StructureMetrics m = evaluate_case(lines.gt, lines.pred, class_one()).structures[0];
  EXPECT_NEAR(m.hd95_pooled, 1.5, 1e-12);
}

TEST(ReferenceVariants, Hd95PooledIsNotScoredWhenAMaskIsEmptyOrFull) {
  const Lines lines;
  const LabelMap empty(lines.gt.shape, lines.gt.spacing);
  const StructureMetrics missed = evaluate_case(lines.gt, empty, class_one()).structures[0];
  EXPECT_TRUE(std::isnan(missed.hd95_pooled));
  EXPECT_TRUE(std::isinf(missed.hd));  // the configured robust HD keeps its +inf
  EXPECT_EQ(missed.nsd_fixed_spacing, 0.0);

  LabelMap full(Shape3{2, 2, 2}, {1.0, 1.0, 1.0}, 1), one_voxel(Shape3{2, 2, 2});
  one_voxel.at(0, 0, 0) = 1;
  const StructureMetrics filled = evaluate_case(full, one_voxel, class_one()).structures[0];
  EXPECT_TRUE(std::isnan(filled.hd95_pooled));
  EXPECT_TRUE(std::isfinite(filled.hd));

  const LabelMap nothing(Shape3{2, 2, 2});
  const StructureMetrics absent = evaluate_case(nothing, nothing, class_one()).structures[0];
  EXPECT_TRUE(std::isnan(absent.nsd_fixed_spacing));
  EXPECT_TRUE(std::isnan(absent.hd95_pooled));
}

TEST(ReferenceVariants, SummaryMeansSkipUnscoredCases) {
  const Lines lines;
  const LabelMap empty(lines.gt.shape, lines.gt.spacing);
  const EvaluationSummary summary = summarize({evaluate_case(lines.gt, lines.pred, class_one(), "a"),
                                               evaluate_case(lines.gt, empty, class_one(), "b")});
  EXPECT_NEAR(summary.structures[0].mean_hd95_pooled, 1.5, 1e-12);
  EXPECT_NEAR(summary.mean_hd95_pooled, 1.5, 1e-12);
  EXPECT_TRUE(std::isinf(summary.mean_hd));
  EXPECT_DOUBLE_EQ(summary.mean_nsd_fixed_spacing,
                   summary.structures[0].mean_nsd_fixed_spacing);  // one class
  EXPECT_TRUE(std::isnan(summary.region_mean_hd95_pooled));        // no regions
}

TEST(ReferenceVariants, JsonNamesTheVariantsAndTheirParameters) {
  const Lines lines;
  const EvaluationOptions options = class_one();
  const nlohmann::json report =
      evaluation_report(options, {evaluate_case(lines.gt, lines.pred, options, "a")});
  const nlohmann::json& variants = report["metric_variants"]["reference_variants"];
  EXPECT_EQ(variants["nsd_fixed_spacing"]["spacing_mm"], nlohmann::json::array({3.0, 2.0, 1.0}));
  EXPECT_EQ(variants["hd95_pooled"]["hd_variant"], "pooled");
  EXPECT_EQ(variants["hd95_pooled"]["hd_percentile"], 95.0);
  const nlohmann::json& structure = report["cases"][0]["structures"][0];
  EXPECT_NEAR(structure["hd95_pooled"].get<double>(), 1.5, 1e-12);
  EXPECT_TRUE(structure["nsd_fixed_spacing"].is_number());
  EXPECT_NEAR(report["summary"]["mean_hd95_pooled"].get<double>(), 1.5, 1e-12);
  EXPECT_TRUE(report["summary"]["structures"][0]["mean_nsd_fixed_spacing"].is_number());
}

TEST(ReferenceVariants, CanBeTurnedOff) {
  const Lines lines;
  EvaluationOptions options = class_one();
  options.reference_variants = false;
  const StructureMetrics m = evaluate_case(lines.gt, lines.pred, options).structures[0];
  EXPECT_TRUE(std::isnan(m.nsd_fixed_spacing));
  EXPECT_TRUE(std::isnan(m.hd95_pooled));
  EXPECT_TRUE(std::isfinite(m.nsd));
  EXPECT_TRUE(evaluation_report(options, {}).at("metric_variants").at("reference_variants").is_null());
}

}  // namespace
}  // namespace e2e
