// nnU-Net's connected-component post-processing: decide on a cell's cross-validation predictions whether
// keeping only the largest connected component helps, first for all foreground classes as one region, then
// class by class; apply that decision to other predictions (the held-out test set).
//
// The rule, carried over from nnU-Net v1's `determine_postprocessing` (the E2ENet reference's
// e2enet/postprocessing/connected_components.py, default arguments):
// - Dice per case and class with nnU-Net's empty rule (absent from both → NaN), means over cases skip NaN.
// - Step 1, all foreground classes as one region: kept when at least one class's mean Dice rises
//   (after > before + dice_threshold) and no class's mean Dice falls (after < before). A class whose mean is
//   NaN neither rises nor falls.
// - Step 2, only with more than one class: each class on its own, starting from the step-1 result when step 1
//   was kept (else from the raw predictions) and compared with that same starting point; a class is kept when
//   its mean Dice rises (after > before + dice_threshold).
// - Applying: step 1 first, then the kept classes. Removed voxels become background (0). Every component of
//   the largest size is kept (ties keep all of them). Connectivity: faces only (scipy.ndimage.label's
//   default structuring element in 3D).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/evaluate.hpp"

namespace e2e {

// Face-connected (6-neighbour) components of a mask's non-zero voxels.
struct ConnectedComponents {
  Volume<int32_t> labels;  // 0 outside the mask, else 1..count() in raster order of each one's first voxel
  std::vector<int64_t> sizes;  // voxels of component i + 1 at sizes[i]
  int64_t count() const { return static_cast<int64_t>(sizes.size()); }
};

ConnectedComponents connected_components(const Mask& mask);

// Of the voxels whose label is in `labels` (taken together as one region), keeps only the largest
// face-connected component(s) and sets the others to 0. Returns the number of voxels removed.
int64_t keep_largest_component(LabelMap& map, const std::vector<int>& labels);

struct PostprocessingDecision {
  std::vector<int> classes;  // the foreground classes considered; also the region of step 1
  bool foreground_as_one = false;
  std::vector<int> largest_component_classes;  // step 2: classes reduced to their largest component
  double dice_threshold = 0.0;
  // What the decision was based on (for the record; not needed to apply it): cases and mean Dice per class
  // of the raw predictions, after step 1, and after step 2 (from step 1's result when it was kept).
  int64_t cases = 0;
  std::map<int, double> mean_dice_raw;
  std::map<int, double> mean_dice_foreground_as_one;
  std::map<int, double> mean_dice_per_class;

  // True when applying it changes nothing.
  bool is_identity() const { return !foreground_as_one && largest_component_classes.empty(); }
};

// Dice per class of one CV case under the four label maps the rule compares: raw, after step 1, after step 2
// alone, after step 1 then step 2. A cell's decision needs only these, so they can be measured (and stored)
// fold by fold, when each fold's validation predictions exist, and decided on once all folds are done.
struct PostprocessingCaseDice {
  std::string case_id;
  std::vector<int> classes;
  std::vector<double> raw;  // by position in classes; NaN where the class is in neither map
  std::vector<double> foreground_as_one;
  std::vector<double> per_class;
  std::vector<double> foreground_then_per_class;
};

// Throws InputError if the maps' geometries differ or a class is not a label in 1..32767 (or is repeated).
PostprocessingCaseDice measure_postprocessing_case(const LabelMap& reference, const LabelMap& prediction,
                                                   const std::vector<int>& classes,
                                                   const std::string& case_id = "");

// Applies nnU-Net's rule to the measured cases (all with the same classes; throws InputError otherwise or
// when there are none).
PostprocessingDecision decide_postprocessing(const std::vector<PostprocessingCaseDice>& cases,
                                             double dice_threshold = 0.0);

// A CV case as label maps (not owned).
struct PostprocessingCase {
  std::string case_id;
  const LabelMap* reference = nullptr;
  const LabelMap* prediction = nullptr;
};

// measure_postprocessing_case for every case, then decide.
PostprocessingDecision decide_postprocessing(const std::vector<PostprocessingCase>& cases,
                                             const std::vector<int>& classes, double dice_threshold = 0.0);

// Step 1 (when decided) then step 2 on the prediction, in place. Returns the number of voxels set to 0.
int64_t apply_postprocessing(LabelMap& prediction, const PostprocessingDecision& decision);

// JSON with NaN as null. from_json throws InputError naming the missing or malformed field ("what" prefixes
// it, e.g. the file or the store row).
nlohmann::json to_json(const PostprocessingDecision& decision);
PostprocessingDecision postprocessing_decision_from_json(const nlohmann::json& json,
                                                         const std::string& what = "postprocessing");
nlohmann::json to_json(const PostprocessingCaseDice& measured);
PostprocessingCaseDice postprocessing_case_dice_from_json(const nlohmann::json& json,
                                                          const std::string& what = "postprocessing case");

}  // namespace e2e
