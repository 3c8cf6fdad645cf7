// nnU-Net's connected-component post-processing on hand-made label maps; every expected Dice is a fraction
// worked out by hand from the voxel counts in the comments.
#include "metrics/postprocess.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace e2e {
namespace {

constexpr Shape3 kShape{12, 12, 12};

// Writes label into the voxels [lo, hi).
void paint(LabelMap& map, const Int3& lo, const Int3& hi, int16_t label) {
  for (int64_t z = lo[0]; z < hi[0]; ++z) {
    for (int64_t y = lo[1]; y < hi[1]; ++y) {
      for (int64_t x = lo[2]; x < hi[2]; ++x) map.at(z, y, x) = label;
    }
  }
}

int64_t count_label(const LabelMap& map, int16_t label) {
  return std::count(map.voxels.begin(), map.voxels.end(), label);
}

TEST(ConnectedComponents, FacesConnectEdgesAndCornersDoNot) {
  Mask mask(kShape);
  mask.at(0, 0, 0) = mask.at(0, 0, 1) = 1;  // face neighbours: one component of 2
  mask.at(0, 1, 2) = 1;                     // touches (0, 0, 1) along an edge only: its own component
  mask.at(1, 2, 3) = 1;                     // touches (0, 1, 2) at a corner only: its own component
  const ConnectedComponents components = connected_components(mask);
  ASSERT_EQ(components.count(), 3);
  EXPECT_EQ(components.sizes, (std::vector<int64_t>{2, 1, 1}));
  EXPECT_EQ(components.labels.at(0, 0, 0), 1);
  EXPECT_EQ(components.labels.at(0, 0, 1), 1);
  EXPECT_EQ(components.labels.at(0, 1, 2), 2);
  EXPECT_EQ(components.labels.at(1, 2, 3), 3);
  EXPECT_EQ(components.labels.at(5, 5, 5), 0);
}

TEST(ConnectedComponents, BranchesThatMeetLaterAreOneComponentNumberedInRasterOrder) {
  // A U open towards low y: its two arms start as separate provisional labels and join at y = 4. A single
  // voxel at (0, 0, 9) comes later in raster order than the U's first voxel (0, 0, 2), so it is number 2.
  Mask mask(kShape);
  for (int64_t y = 0; y <= 4; ++y) mask.at(0, y, 2) = mask.at(0, y, 6) = 1;
  for (int64_t x = 2; x <= 6; ++x) mask.at(0, 4, x) = 1;
  mask.at(0, 0, 9) = 1;
  mask.at(3, 3, 3) = 1;  // a later slice: number 3
  const ConnectedComponents components = connected_components(mask);
  ASSERT_EQ(components.count(), 3);
  EXPECT_EQ(components.sizes, (std::vector<int64_t>{13, 1, 1}));  // 5 + 5 + 3 between the arms
  EXPECT_EQ(components.labels.at(0, 0, 6), 1);
  EXPECT_EQ(components.labels.at(0, 0, 9), 2);
  EXPECT_EQ(components.labels.at(3, 3, 3), 3);
}

TEST(KeepLargestComponent, RemovesSmallerComponentsOfTheRegionOnly) {
  LabelMap map(kShape);
  paint(map, {0, 0, 0}, {3, 3, 3}, 1);     // 27 voxels
  paint(map, {8, 8, 8}, {10, 10, 10}, 1);  // 8 voxels, far away
  paint(map, {0, 0, 3}, {1, 1, 4}, 2);     // class 2 touching class 1: joins it as a region {1, 2}
  paint(map, {6, 0, 0}, {7, 1, 1}, 2);     // a lone class-2 voxel
  LabelMap per_class = map;

  EXPECT_EQ(keep_largest_component(per_class, {1}), 8);
  EXPECT_EQ(count_label(per_class, 1), 27);
  EXPECT_EQ(count_label(per_class, 2), 2);  // untouched

  EXPECT_EQ(keep_largest_component(map, {1, 2}), 9);  // the region: 27 + 1 kept; 8 + 1 removed
  EXPECT_EQ(count_label(map, 1), 27);
  EXPECT_EQ(count_label(map, 2), 1);
  EXPECT_EQ(map.at(6, 0, 0), 0);
}

TEST(KeepLargestComponent, KeepsEveryComponentOfTheLargestSize) {
  // nnU-Net removes only components whose size differs from the maximum: a tie keeps both.
  LabelMap map(kShape);
  paint(map, {0, 0, 0}, {2, 2, 2}, 1);
  paint(map, {5, 5, 5}, {7, 7, 7}, 1);
  map.at(10, 10, 10) = 1;
  EXPECT_EQ(keep_largest_component(map, {1}), 1);
  EXPECT_EQ(count_label(map, 1), 16);
}

TEST(KeepLargestComponent, RejectsBackgroundAsALabel) {
  LabelMap map(kShape);
  EXPECT_THROW(keep_largest_component(map, {0}), InputError);
}

// Class 1: a 4×4×4 organ (64 voxels) predicted exactly plus a spurious 2-voxel island.
// Class 2: two true components, 3×3×3 (27) and 2×2×2 (8), predicted exactly.
struct IslandAndTwoComponents {
  LabelMap reference{kShape};
  LabelMap prediction{kShape};
  IslandAndTwoComponents() {
    for (LabelMap* map : {&reference, &prediction}) {
      paint(*map, {0, 0, 0}, {4, 4, 4}, 1);
      paint(*map, {8, 0, 0}, {11, 3, 3}, 2);
      paint(*map, {0, 8, 8}, {2, 10, 10}, 2);
    }
    paint(prediction, {10, 10, 10}, {11, 11, 12}, 1);
  }
};

TEST(Postprocessing, ASpuriousIslandGainsAndTwoTrueComponentsDoNot) {
  const IslandAndTwoComponents c;
  const PostprocessingCaseDice measured = measure_postprocessing_case(c.reference, c.prediction, {1, 2}, "a");
  // Raw: class 1 2·64/(64 + 66) = 128/130; class 2 perfect.
  EXPECT_DOUBLE_EQ(measured.raw[0], 128.0 / 130.0);
  EXPECT_DOUBLE_EQ(measured.raw[1], 1.0);
  // All foreground as one keeps only the 64-voxel organ: class 2 loses everything.
  EXPECT_DOUBLE_EQ(measured.foreground_as_one[0], 1.0);
  EXPECT_DOUBLE_EQ(measured.foreground_as_one[1], 0.0);
  // Per class: class 1 loses its island; class 2 keeps 27 of 35 voxels: 2·27/(35 + 27) = 54/62.
  EXPECT_DOUBLE_EQ(measured.per_class[0], 1.0);
  EXPECT_DOUBLE_EQ(measured.per_class[1], 54.0 / 62.0);

  const PostprocessingDecision decision = decide_postprocessing({measured});
  EXPECT_FALSE(decision.foreground_as_one);  // class 1 rises, but class 2 falls
  EXPECT_EQ(decision.largest_component_classes, (std::vector<int>{1}));
  EXPECT_DOUBLE_EQ(decision.mean_dice_per_class.at(2), 54.0 / 62.0);

  LabelMap test_prediction = c.prediction;
  EXPECT_EQ(apply_postprocessing(test_prediction, decision), 2);
  EXPECT_EQ(test_prediction.voxels, c.reference.voxels);
}

TEST(Postprocessing, ForegroundAsOneIsKeptWhenOneClassRisesAndNoneFalls) {
  // Two touching organs (classes 1 and 2 form one component) and a class-2 island elsewhere; class 3 is in
  // neither map (its NaN Dice neither rises nor falls).
  LabelMap reference(kShape);
  paint(reference, {0, 0, 0}, {4, 4, 4}, 1);
  paint(reference, {0, 0, 4}, {4, 4, 6}, 2);  // 32 voxels
  LabelMap prediction = reference;
  prediction.at(10, 10, 10) = 2;
  const PostprocessingDecision decision = decide_postprocessing({{"a", &reference, &prediction}}, {1, 2, 3});
  EXPECT_TRUE(decision.foreground_as_one);
  EXPECT_DOUBLE_EQ(decision.mean_dice_raw.at(2), 64.0 / 65.0);
  EXPECT_DOUBLE_EQ(decision.mean_dice_foreground_as_one.at(2), 1.0);
  EXPECT_TRUE(std::isnan(decision.mean_dice_raw.at(3)));
  // Step 2 starts from step 1's result, where nothing is left to gain.
  EXPECT_TRUE(decision.largest_component_classes.empty());
  LabelMap applied = prediction;
  EXPECT_EQ(apply_postprocessing(applied, decision), 1);
  EXPECT_EQ(applied.voxels, reference.voxels);
}

TEST(Postprocessing, TheMeanOverCasesDecidesNotOneCase) {
  // Case a: the island of class 1 (raw 128/130 → 1). Case b: class 1 truly has two components, 64 and 8
  // voxels, predicted exactly (1 → 2·64/(72 + 64) = 128/136). Means: 0.99231 before, 0.97059 after.
  LabelMap reference_a(kShape), prediction_a(kShape), reference_b(kShape), prediction_b(kShape);
  paint(reference_a, {0, 0, 0}, {4, 4, 4}, 1);
  prediction_a = reference_a;
  paint(prediction_a, {10, 10, 10}, {11, 11, 12}, 1);
  paint(reference_b, {0, 0, 0}, {4, 4, 4}, 1);
  paint(reference_b, {8, 8, 8}, {10, 10, 10}, 1);
  prediction_b = reference_b;
  const PostprocessingDecision decision =
      decide_postprocessing({{"a", &reference_a, &prediction_a}, {"b", &reference_b, &prediction_b}}, {1});
  EXPECT_DOUBLE_EQ(decision.mean_dice_raw.at(1), (128.0 / 130.0 + 1.0) / 2.0);
  EXPECT_DOUBLE_EQ(decision.mean_dice_foreground_as_one.at(1), (1.0 + 128.0 / 136.0) / 2.0);
  EXPECT_FALSE(decision.foreground_as_one);
  EXPECT_TRUE(decision.largest_component_classes.empty());  // one class: no second step
  EXPECT_TRUE(decision.mean_dice_per_class.empty());
  EXPECT_TRUE(decision.is_identity());
}

TEST(Postprocessing, AGainBelowTheThresholdIsNotEnough) {
  LabelMap reference(kShape);
  paint(reference, {0, 0, 0}, {4, 4, 4}, 1);
  LabelMap prediction = reference;
  paint(prediction, {10, 10, 10}, {11, 11, 12}, 1);  // gain 1 − 128/130 = 0.01538
  const std::vector<PostprocessingCaseDice> measured = {
      measure_postprocessing_case(reference, prediction, {1})};
  EXPECT_TRUE(decide_postprocessing(measured, 0.0).foreground_as_one);
  EXPECT_FALSE(decide_postprocessing(measured, 0.02).foreground_as_one);
}

TEST(Postprocessing, EmptyReferencesAreSkippedByTheMeans) {
  // Case a: class 1 with an island (gain). Case b: no class 1 in the reference, two predicted blobs: Dice 0
  // before and after, which the mean counts. Case c: class 1 in neither map: NaN, skipped.
  LabelMap reference_a(kShape), prediction_a(kShape), reference_b(kShape), prediction_b(kShape);
  LabelMap reference_c(kShape), prediction_c(kShape);
  paint(reference_a, {0, 0, 0}, {4, 4, 4}, 1);
  prediction_a = reference_a;
  paint(prediction_a, {10, 10, 10}, {11, 11, 12}, 1);
  paint(prediction_b, {0, 0, 0}, {2, 2, 2}, 1);
  prediction_b.at(9, 9, 9) = 1;
  const PostprocessingDecision decision = decide_postprocessing({{"a", &reference_a, &prediction_a},
                                                                 {"b", &reference_b, &prediction_b},
                                                                 {"c", &reference_c, &prediction_c}},
                                                                {1});
  EXPECT_DOUBLE_EQ(decision.mean_dice_raw.at(1), (128.0 / 130.0 + 0.0) / 2.0);
  EXPECT_DOUBLE_EQ(decision.mean_dice_foreground_as_one.at(1), 0.5);
  EXPECT_TRUE(decision.foreground_as_one);
  EXPECT_EQ(decision.cases, 3);
}

TEST(Postprocessing, DecisionRoundTripsThroughJson) {
  const IslandAndTwoComponents c;
  const PostprocessingDecision decision = decide_postprocessing({{"a", &c.reference, &c.prediction}}, {1, 2});
  const nlohmann::json json = to_json(decision);
  EXPECT_EQ(json["largest_component_classes"], nlohmann::json::array({1}));
  const PostprocessingDecision back = postprocessing_decision_from_json(nlohmann::json::parse(json.dump()));
  EXPECT_EQ(back.classes, decision.classes);
  EXPECT_EQ(back.foreground_as_one, decision.foreground_as_one);
  EXPECT_EQ(back.largest_component_classes, decision.largest_component_classes);
  EXPECT_EQ(back.cases, 1);
  EXPECT_DOUBLE_EQ(back.mean_dice_raw.at(1), 128.0 / 130.0);
}

TEST(Postprocessing, MalformedDecisionJsonNamesTheField) {
  const auto message = [](const std::string& text) {
    try {
      postprocessing_decision_from_json(nlohmann::json::parse(text), "cell 0.8/0");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message(R"({"classes": [1, 2], "foreground_as_one": false})"),
            "cell 0.8/0.largest_component_classes: missing");
  EXPECT_NE(message(R"({"classes": [1], "foreground_as_one": true, "largest_component_classes": [2]})")
                .find("largest_component_classes: label 2 is not one of the classes"),
            std::string::npos);
  EXPECT_NE(message(R"({"classes": [0], "foreground_as_one": true, "largest_component_classes": []})")
                .find("cell 0.8/0.classes: expected foreground labels"),
            std::string::npos);
  EXPECT_NE(message(R"({"classes": [1], "foreground_as_one": "yes", "largest_component_classes": []})")
                .find("foreground_as_one: expected true or false"),
            std::string::npos);
}

TEST(Postprocessing, MeasuredCaseRoundTripsThroughJsonWithNaN) {
  const IslandAndTwoComponents c;
  const PostprocessingCaseDice measured =
      measure_postprocessing_case(c.reference, c.prediction, {1, 2, 3}, "a");
  const nlohmann::json json = to_json(measured);
  EXPECT_TRUE(json["dice"]["raw"][2].is_null());  // class 3 is in neither map
  const PostprocessingCaseDice back = postprocessing_case_dice_from_json(nlohmann::json::parse(json.dump()));
  EXPECT_EQ(back.case_id, "a");
  EXPECT_DOUBLE_EQ(back.per_class[1], 54.0 / 62.0);
  EXPECT_TRUE(std::isnan(back.raw[2]));
  EXPECT_EQ(decide_postprocessing({back}).largest_component_classes, (std::vector<int>{1}));
}

TEST(Postprocessing, RejectsMismatchedInput) {
  const IslandAndTwoComponents c;
  LabelMap other(Shape3{12, 12, 11});
  EXPECT_THROW(measure_postprocessing_case(c.reference, other, {1}, "a"), InputError);
  EXPECT_THROW(measure_postprocessing_case(c.reference, c.prediction, {1, 1}, "a"), InputError);
  EXPECT_THROW(decide_postprocessing(std::vector<PostprocessingCaseDice>{}), InputError);
  const PostprocessingCaseDice one = measure_postprocessing_case(c.reference, c.prediction, {1}, "a");
  const PostprocessingCaseDice two = measure_postprocessing_case(c.reference, c.prediction, {1, 2}, "b");
  EXPECT_THROW(decide_postprocessing({one, two}), InputError);
}

}  // namespace
}  // namespace e2e
