#include "metrics/evaluate.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "common/json_number.hpp"

namespace e2e {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int kLabelMin = std::numeric_limits<int16_t>::min();
constexpr int kLabelMax = std::numeric_limits<int16_t>::max();
constexpr std::size_t kLabelValues = 1 << 16;

std::size_t label_slot(int label) {
  return static_cast<std::size_t>(label - kLabelMin);
}

void check_tolerance(double tolerance_mm, const std::string& field) {
  if (!(tolerance_mm >= 0.0) || std::isinf(tolerance_mm)) {
    throw InputError(field + ": expected a finite tolerance >= 0 mm, got " + std::to_string(tolerance_mm));
  }
}

void check_label(int label, const std::string& field) {
  if (label < kLabelMin || label > kLabelMax) {
    throw InputError(field + ": label " + std::to_string(label) +
                     " is outside the int16 range of label maps");
  }
}

// What one structure scores: its member labels and tolerance.
struct Structure {
  std::string name;
  std::vector<int> labels;
  bool is_region = false;
  double tolerance_mm = 0.0;
};

std::vector<Structure> structures_of(const EvaluationOptions& options) {
  std::vector<Structure> structures;
  for (int label : options.classes) {
    const auto named = options.class_names.find(label);
    structures.push_back({named == options.class_names.end() ? std::to_string(label) : named->second,
                          {label},
                          false,
                          options.tolerance_for_class(label)});
  }
  for (const Region& region : options.regions) {
    structures.push_back(
        {region.name, region.labels, true, region.nsd_tolerance_mm.value_or(options.nsd_tolerance_mm)});
  }
  return structures;
}

// Bounding box of every label some structure uses, in the reference and in the prediction.
struct LabelBoxes {
  std::vector<int> slot_of_label = std::vector<int>(kLabelValues, -1);  // by label_slot(label)
  std::vector<Box> gt;
  std::vector<Box> pred;

  Box union_of(int label) const {
    const int slot = slot_of_label[label_slot(label)];
    return Box::merge(gt[slot], pred[slot]);
  }
};

void add_label_boxes(const LabelMap& map, const std::vector<int>& slot_of_label, std::vector<Box>& boxes) {
  const Shape3& s = map.shape;
  const int16_t* voxel = map.voxels.data();
  for (int64_t z = 0; z < s[0]; ++z) {
    for (int64_t y = 0; y < s[1]; ++y) {
      for (int64_t x = 0; x < s[2]; ++x, ++voxel) {
        const int slot = slot_of_label[label_slot(*voxel)];
        if (slot >= 0) boxes[slot].include(z, y, x);
      }
    }
  }
}

LabelBoxes label_boxes(const LabelMap& gt, const LabelMap& pred, const std::vector<Structure>& structures) {
  LabelBoxes boxes;
  int slots = 0;
  for (const Structure& s : structures) {
    for (int label : s.labels) {
      int& slot = boxes.slot_of_label[label_slot(label)];
      if (slot < 0) slot = slots++;
    }
  }
  boxes.gt.resize(slots);
  boxes.pred.resize(slots);
  add_label_boxes(gt, boxes.slot_of_label, boxes.gt);
  add_label_boxes(pred, boxes.slot_of_label, boxes.pred);
  return boxes;
}

// The structure's binary mask inside box.
Mask member_mask(const LabelMap& map, const std::vector<uint8_t>& member, const Box& box) {
  Mask mask(box.shape(), map.spacing);
  uint8_t* out = mask.voxels.data();
  for (int64_t z = box.lo[0]; z < box.hi[0]; ++z) {
    for (int64_t y = box.lo[1]; y < box.hi[1]; ++y) {
      const int16_t* row = map.voxels.data() + map.index(z, y, box.lo[2]);
      for (int64_t x = 0; x < box.hi[2] - box.lo[2]; ++x) *out++ = member[label_slot(row[x])];
    }
  }
  return mask;
}

bool same_spacing(const Spacing3& a, const Spacing3& b) {
  for (int d = 0; d < 3; ++d) {
    if (std::abs(a[d] - b[d]) > 1e-6 * b[d]) return false;
  }
  return true;
}

// medpy's hd95 as nnU-Net v1 calls it: undefined (NaN) when either mask is empty or fills the image.
double hd95_pooled_or_nan(const BoundaryDistances& voxels, const StructureMetrics& m, int64_t image_voxels) {
  const auto undefined = [&](int64_t count) { return count == 0 || count == image_voxels; };
  if (undefined(m.gt_voxels) || undefined(m.pred_voxels)) return kNaN;
  return hausdorff_voxels(voxels, 95.0, HausdorffVariant::pooled);
}

// NSD and HD as configured, then (when asked) the published-number variants.
void add_surface_metrics(Mask& gt_mask, Mask& pred_mask, const Structure& structure,
                         const EvaluationOptions& options, int64_t image_voxels, StructureMetrics& result) {
  const bool surfel_nsd = options.nsd_variant == NsdVariant::surfel;
  const bool needs_surfels = surfel_nsd || options.hd_variant == HausdorffVariant::surfel;
  const bool needs_voxels =
      !surfel_nsd || options.hd_variant != HausdorffVariant::surfel || options.reference_variants;
  SurfaceDistances surfels;
  BoundaryDistances voxels;
  if (needs_surfels) surfels = compute_surface_distances(gt_mask, pred_mask);
  if (needs_voxels) voxels = compute_boundary_distances(gt_mask, pred_mask);

  result.nsd = surfel_nsd ? normalized_surface_dice(surfels, structure.tolerance_mm)
                          : normalized_surface_dice_voxels(voxels, structure.tolerance_mm);
  result.hd = options.hd_variant == HausdorffVariant::surfel
                  ? robust_hausdorff(surfels, options.hd_percentile)
                  : hausdorff_voxels(voxels, options.hd_percentile, options.hd_variant);
  if (!options.reference_variants) {
    result.nsd_fixed_spacing = result.hd95_pooled = kNaN;
    return;
  }
  result.hd95_pooled = hd95_pooled_or_nan(voxels, result, image_voxels);
  if (surfel_nsd && same_spacing(gt_mask.spacing, kReferenceNsdSpacing)) {
    result.nsd_fixed_spacing = result.nsd;
    return;
  }
  gt_mask.spacing = pred_mask.spacing = kReferenceNsdSpacing;
  result.nsd_fixed_spacing =
      normalized_surface_dice(compute_surface_distances(gt_mask, pred_mask), structure.tolerance_mm);
}

StructureMetrics evaluate_structure(const LabelMap& gt, const LabelMap& pred, const Structure& structure,
                                    const LabelBoxes& boxes, const EvaluationOptions& options) {
  StructureMetrics result;
  result.name = structure.name;
  result.labels = structure.labels;
  result.is_region = structure.is_region;
  result.nsd_tolerance_mm = structure.tolerance_mm;

  Box box;
  std::vector<uint8_t> member(kLabelValues, 0);
  for (int label : structure.labels) {
    member[label_slot(label)] = 1;
    box = Box::merge(box, boxes.union_of(label));
  }
  if (box.empty()) {  // absent from both: not scored
    result.dice = result.nsd = result.hd = result.nsd_fixed_spacing = result.hd95_pooled = kNaN;
    return result;
  }
  Mask gt_mask = member_mask(gt, member, box);
  Mask pred_mask = member_mask(pred, member, box);
  const OverlapCounts counts = count_overlap(gt_mask, pred_mask);
  result.gt_voxels = counts.true_positives + counts.false_negatives;
  result.pred_voxels = counts.true_positives + counts.false_positives;
  result.dice = dice_from_counts(counts, options.dice_variant);
  add_surface_metrics(gt_mask, pred_mask, structure, options, gt.size(), result);
  return result;
}

}  // namespace

double EvaluationOptions::tolerance_for_class(int label) const {
  const auto found = nsd_tolerance_per_class.find(label);
  return found == nsd_tolerance_per_class.end() ? nsd_tolerance_mm : found->second;
}

void EvaluationOptions::validate() const {
  check_tolerance(nsd_tolerance_mm, "eval.nsd_tolerance_mm");
  for (const auto& [label, tolerance] : nsd_tolerance_per_class) {
    check_tolerance(tolerance, "eval.nsd_tolerance_per_class[" + std::to_string(label) + "]");
  }
  if (!(hd_percentile >= 0.0 && hd_percentile <= 100.0)) {
    throw InputError("eval.hd_percentile: expected a value in [0, 100], got " +
                     std::to_string(hd_percentile));
  }
  std::set<int> seen;
  for (int label : classes) {
    check_label(label, "eval.classes");
    if (!seen.insert(label).second) {
      throw InputError("eval.classes: label " + std::to_string(label) + " is listed twice");
    }
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < regions.size(); ++i) {
    const Region& region = regions[i];
    const std::string field = "eval.regions[" + std::to_string(i) + "]";
    if (region.name.empty()) throw InputError(field + ".name: expected a non-empty name");
    if (!names.insert(region.name).second) {
      throw InputError(field + ".name: region '" + region.name + "' is defined twice");
    }
    if (region.labels.empty()) throw InputError(field + ".labels: expected at least one label");
    for (int label : region.labels) check_label(label, field + ".labels");
    if (region.nsd_tolerance_mm) check_tolerance(*region.nsd_tolerance_mm, field + ".nsd_tolerance_mm");
  }
}

EvaluationOptions evaluation_options(const EvalConfig& eval, int num_classes) {
  EvaluationOptions options;
  for (int label = 1; label < num_classes; ++label) options.classes.push_back(label);
  options.nsd_tolerance_mm = eval.nsd_tolerance_mm;
  options.nsd_tolerance_per_class = eval.nsd_tolerance_per_class;
  options.hd_variant = parse_hausdorff_variant(eval.hd_variant);
  options.validate();
  return options;
}

CaseMetrics evaluate_case(const LabelMap& gt, const LabelMap& pred, const EvaluationOptions& options,
                          const std::string& case_id) {
  options.validate();
  check_same_geometry(gt, pred, case_id.empty() ? "evaluation" : case_id);
  const std::vector<Structure> structures = structures_of(options);
  const LabelBoxes boxes = label_boxes(gt, pred, structures);
  CaseMetrics result;
  result.case_id = case_id;
  for (const Structure& structure : structures) {
    result.structures.push_back(evaluate_structure(gt, pred, structure, boxes, options));
  }
  return result;
}

double nanmean(const std::vector<double>& values) {
  double sum = 0.0;
  int64_t count = 0;
  for (double v : values) {
    if (std::isnan(v)) continue;
    sum += v;
    ++count;
  }
  return count == 0 ? kNaN : sum / static_cast<double>(count);
}

namespace {

// One value per case of structure s, checking that every case has the same layout.
std::vector<double> per_case(const std::vector<CaseMetrics>& cases, std::size_t s,
                             double StructureMetrics::*metric) {
  const std::vector<StructureMetrics>& layout = cases.front().structures;
  std::vector<double> values;
  for (const CaseMetrics& c : cases) {
    if (c.structures.size() != layout.size() || c.structures[s].name != layout[s].name) {
      throw std::invalid_argument("summarize: case '" + c.case_id + "' was evaluated with other options");
    }
    values.push_back(c.structures[s].*metric);
  }
  return values;
}

// Per-structure means, then their nanmean over classes and over regions.
struct MeanOverStructures {
  double StructureMetrics::*metric;
  double StructureSummary::*structure_mean;
  double EvaluationSummary::*class_mean;
  double EvaluationSummary::*region_mean;
};

const MeanOverStructures kMeans[] = {
    {&StructureMetrics::dice, &StructureSummary::mean_dice, &EvaluationSummary::mean_dice,
     &EvaluationSummary::region_mean_dice},
    {&StructureMetrics::nsd, &StructureSummary::mean_nsd, &EvaluationSummary::mean_nsd,
     &EvaluationSummary::region_mean_nsd},
    {&StructureMetrics::hd, &StructureSummary::mean_hd, &EvaluationSummary::mean_hd,
     &EvaluationSummary::region_mean_hd},
    {&StructureMetrics::nsd_fixed_spacing, &StructureSummary::mean_nsd_fixed_spacing,
     &EvaluationSummary::mean_nsd_fixed_spacing, &EvaluationSummary::region_mean_nsd_fixed_spacing},
    {&StructureMetrics::hd95_pooled, &StructureSummary::mean_hd95_pooled,
     &EvaluationSummary::mean_hd95_pooled, &EvaluationSummary::region_mean_hd95_pooled},
};

}  // namespace

EvaluationSummary summarize(const std::vector<CaseMetrics>& cases) {
  EvaluationSummary summary;
  summary.cases = static_cast<int64_t>(cases.size());
  if (cases.empty()) {
    for (const MeanOverStructures& m : kMeans) summary.*m.class_mean = summary.*m.region_mean = kNaN;
    return summary;
  }
  const std::vector<StructureMetrics>& layout = cases.front().structures;
  for (std::size_t s = 0; s < layout.size(); ++s) {
    StructureSummary item;
    item.name = layout[s].name;
    item.labels = layout[s].labels;
    item.is_region = layout[s].is_region;
    item.nsd_tolerance_mm = layout[s].nsd_tolerance_mm;
    for (const MeanOverStructures& m : kMeans) item.*m.structure_mean = nanmean(per_case(cases, s, m.metric));
    const std::vector<double> dice = per_case(cases, s, &StructureMetrics::dice);
    item.cases_scored = std::count_if(dice.begin(), dice.end(), [](double v) { return !std::isnan(v); });
    summary.structures.push_back(item);
  }
  for (const MeanOverStructures& m : kMeans) {
    std::vector<double> classes, regions;
    for (const StructureSummary& item : summary.structures) {
      (item.is_region ? regions : classes).push_back(item.*m.structure_mean);
    }
    summary.*m.class_mean = nanmean(classes);
    summary.*m.region_mean = nanmean(regions);
  }
  return summary;
}

nlohmann::json to_json(const StructureMetrics& m) {
  return {{"name", m.name},
          {"labels", m.labels},
          {"is_region", m.is_region},
          {"gt_voxels", m.gt_voxels},
          {"pred_voxels", m.pred_voxels},
          {"dice", json_number(m.dice)},
          {"nsd", json_number(m.nsd)},
          {"nsd_tolerance_mm", m.nsd_tolerance_mm},
          {"hd", json_number(m.hd)},
          {"hd_infinite", std::isinf(m.hd)},
          {"nsd_fixed_spacing", json_number(m.nsd_fixed_spacing)},
          {"hd95_pooled", json_number(m.hd95_pooled)}};
}

nlohmann::json to_json(const CaseMetrics& metrics) {
  nlohmann::json structures = nlohmann::json::array();
  for (const StructureMetrics& m : metrics.structures) structures.push_back(to_json(m));
  return {{"case", metrics.case_id}, {"structures", structures}};
}

nlohmann::json to_json(const EvaluationSummary& summary) {
  nlohmann::json structures = nlohmann::json::array();
  for (const StructureSummary& s : summary.structures) {
    structures.push_back({{"name", s.name},
                          {"labels", s.labels},
                          {"is_region", s.is_region},
                          {"nsd_tolerance_mm", s.nsd_tolerance_mm},
                          {"mean_dice", json_number(s.mean_dice)},
                          {"mean_nsd", json_number(s.mean_nsd)},
                          {"mean_hd", json_number(s.mean_hd)},
                          {"mean_hd_infinite", std::isinf(s.mean_hd)},
                          {"mean_nsd_fixed_spacing", json_number(s.mean_nsd_fixed_spacing)},
                          {"mean_hd95_pooled", json_number(s.mean_hd95_pooled)},
                          {"cases_scored", s.cases_scored}});
  }
  return {{"cases", summary.cases},
          {"structures", structures},
          {"mean_dice", json_number(summary.mean_dice)},
          {"mean_nsd", json_number(summary.mean_nsd)},
          {"mean_hd", json_number(summary.mean_hd)},
          {"region_mean_dice", json_number(summary.region_mean_dice)},
          {"region_mean_nsd", json_number(summary.region_mean_nsd)},
          {"region_mean_hd", json_number(summary.region_mean_hd)},
          {"mean_nsd_fixed_spacing", json_number(summary.mean_nsd_fixed_spacing)},
          {"mean_hd95_pooled", json_number(summary.mean_hd95_pooled)},
          {"region_mean_nsd_fixed_spacing", json_number(summary.region_mean_nsd_fixed_spacing)},
          {"region_mean_hd95_pooled", json_number(summary.region_mean_hd95_pooled)}};
}

nlohmann::json reference_variants_json(const EvaluationOptions& options) {
  if (!options.reference_variants) return nullptr;
  return {
      {"nsd_fixed_spacing",
       {{"nsd_variant", to_string(NsdVariant::surfel)},
        {"spacing_mm", kReferenceNsdSpacing},
        {"spacing_axes", "z, y, x"},
        {"source", "E2ENet reference compute_surface_distances: spacing (3, 2, 1) whatever the image's"}}},
      {"hd95_pooled",
       {{"hd_variant", to_string(HausdorffVariant::pooled)},
        {"hd_percentile", 95.0},
        {"source", "medpy hd95 as nnU-Net v1 calls it: null when either mask is empty or full"}}}};
}

nlohmann::json evaluation_report(const EvaluationOptions& options, const std::vector<CaseMetrics>& cases) {
  nlohmann::json per_case = nlohmann::json::array();
  for (const CaseMetrics& c : cases) per_case.push_back(to_json(c));
  return {{"metric_variants",
           {{"dice_variant", to_string(options.dice_variant)},
            {"nsd_variant", to_string(options.nsd_variant)},
            {"nsd_tolerance_mm", options.nsd_tolerance_mm},
            {"hd_variant", to_string(options.hd_variant)},
            {"hd_percentile", options.hd_percentile},
            {"reference_variants", reference_variants_json(options)}}},
          {"cases", per_case},
          {"summary", to_json(summarize(cases))}};
}

}  // namespace e2e
