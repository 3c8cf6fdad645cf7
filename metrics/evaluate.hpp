// Multi-class evaluation of a predicted label map against a reference label map: Dice, NSD and HD per class
// and per region (a set of labels, e.g. BraTS whole tumour {1, 2, 3}), and means over cases with nanmean
// semantics. Results name their variants and tolerances, and convert to JSON.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "configs/config.hpp"
#include "data/volume.hpp"
#include "metrics/dice.hpp"
#include "metrics/surface.hpp"

namespace e2e {

using LabelMap = Volume<int16_t>;

// Voxels whose label is in `labels` form the region.
struct Region {
  std::string name;
  std::vector<int> labels;
  std::optional<double> nsd_tolerance_mm;  // default: EvaluationOptions::nsd_tolerance_mm
};

struct EvaluationOptions {
  std::vector<int> classes;                // foreground labels scored one by one
  std::map<int, std::string> class_names;  // optional display names (default: the label value)
  std::vector<Region> regions;
  double nsd_tolerance_mm = 1.0;                  // for classes without their own tolerance
  std::map<int, double> nsd_tolerance_per_class;  // label → mm
  double hd_percentile = 95.0;
  DiceVariant dice_variant = DiceVariant::nnunet;
  NsdVariant nsd_variant = NsdVariant::surfel;
  HausdorffVariant hd_variant = HausdorffVariant::surfel;
  // Also compute the variants behind published numbers (StructureMetrics::nsd_fixed_spacing, hd95_pooled).
  bool reference_variants = true;

  double tolerance_for_class(int label) const;
  // Throws InputError naming the offending field (tolerances, percentile, labels, region names).
  void validate() const;
};

// The spacing (z, y, x) in mm that the E2ENet reference's NSD code uses whatever the image's spacing: its
// compute_surface_distances hard-codes (3, 2, 1) on arrays in SimpleITK's (z, y, x) order, which is ours.
inline constexpr Spacing3 kReferenceNsdSpacing{3.0, 2.0, 1.0};

// Classes 1..num_classes−1 with the configured tolerances and HD variant (eval.hd_variant).
EvaluationOptions evaluation_options(const EvalConfig& eval, int num_classes);

// Metrics of one class or region in one case.
struct StructureMetrics {
  std::string name;
  std::vector<int> labels;
  bool is_region = false;
  int64_t gt_voxels = 0;
  int64_t pred_voxels = 0;
  double dice = 0.0;
  double nsd = 0.0;
  double nsd_tolerance_mm = 0.0;
  double hd = 0.0;  // at EvaluationOptions::hd_percentile
  // Published-number variants (EvaluationOptions::reference_variants; NaN when off):
  // NSD (surfels, same tolerance) as if the spacing were kReferenceNsdSpacing, as the E2ENet code computes
  // it.
  double nsd_fixed_spacing = 0.0;
  // medpy's hd95 at the true spacing (HausdorffVariant::pooled at 95) with nnU-Net v1's rule: NaN, i.e. not
  // scored, when either mask is empty or fills the whole image (the configured `hd` is +inf there).
  double hd95_pooled = 0.0;
};

struct CaseMetrics {
  std::string case_id;
  std::vector<StructureMetrics> structures;  // classes in option order, then regions
};

// A structure absent from both label maps is not scored: Dice, NSD and HD are NaN (skipped by the means).
// Present in only one: Dice 0, NSD 0, HD +inf. Label values are compared for equality, so negative
// ("ignore") labels count as background. Throws InputError if the maps' shapes or spacings differ.
CaseMetrics evaluate_case(const LabelMap& gt, const LabelMap& pred, const EvaluationOptions& options,
                          const std::string& case_id = "");

struct StructureSummary {
  std::string name;
  std::vector<int> labels;
  bool is_region = false;
  double nsd_tolerance_mm = 0.0;
  double mean_dice = 0.0;  // nanmean over cases (NaN if no case scores it)
  double mean_nsd = 0.0;
  double mean_hd = 0.0;  // +inf if any scored case has HD +inf
  double mean_nsd_fixed_spacing = 0.0;
  double mean_hd95_pooled = 0.0;  // over the cases where it is defined (see StructureMetrics)
  int64_t cases_scored = 0;
};

struct EvaluationSummary {
  std::vector<StructureSummary> structures;
  // nanmean over the foreground classes of the per-class means (mDice, mNSD, mHD); regions have their own.
  double mean_dice = 0.0;
  double mean_nsd = 0.0;
  double mean_hd = 0.0;
  double region_mean_dice = 0.0;
  double region_mean_nsd = 0.0;
  double region_mean_hd = 0.0;
  // The same means of the published-number variants.
  double mean_nsd_fixed_spacing = 0.0;
  double mean_hd95_pooled = 0.0;
  double region_mean_nsd_fixed_spacing = 0.0;
  double region_mean_hd95_pooled = 0.0;
  int64_t cases = 0;
};

EvaluationSummary summarize(const std::vector<CaseMetrics>& cases);

// JSON: finite numbers as numbers, NaN and ±inf as null (the voxel counts tell which: HD is +inf exactly when
// one side is empty). The report holds the variants and parameters, every case, and the summary.
nlohmann::json to_json(const StructureMetrics& metrics);
nlohmann::json to_json(const CaseMetrics& metrics);
nlohmann::json to_json(const EvaluationSummary& summary);
// What the published-number variants are (spacing, percentile, empty rule); null when they are off.
nlohmann::json reference_variants_json(const EvaluationOptions& options);
nlohmann::json evaluation_report(const EvaluationOptions& options, const std::vector<CaseMetrics>& cases);

// nanmean: mean of the non-NaN values (NaN if there are none).
double nanmean(const std::vector<double>& values);

}  // namespace e2e
