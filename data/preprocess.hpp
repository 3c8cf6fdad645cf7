// nnU-Net v1 style preprocessing (reference/data.md): fingerprint → plan → per case crop to the non-zero
// region, resample to the target spacing, normalize, foreground locations → HDF5 case store + splits.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "configs/config.hpp"
#include "data/case_source.hpp"
#include "data/case_store.hpp"
#include "data/dataset.hpp"
#include "data/volume.hpp"

namespace e2e {

// ------------------------------------------------------------------------------------------ fingerprint

struct IntensityStats {
  double mean = 0.0;
  double std = 0.0;  // population standard deviation
  double median = 0.0;
  double min = 0.0;
  double max = 0.0;
  double p00_5 = 0.0;  // percentiles with numpy's linear interpolation
  double p99_5 = 0.0;
  int64_t samples = 0;
};

// Statistics of a sample (all zero for an empty one). Reorders `samples`.
IntensityStats intensity_stats(std::vector<float>& samples);

struct CaseFingerprint {
  std::string id;
  Spacing3 spacing{1.0, 1.0, 1.0};
  Shape3 original_shape{0, 0, 0};
  Shape3 cropped_shape{0, 0, 0};
};

struct Fingerprint {
  std::vector<std::string> channel_names;
  std::map<int, std::string> labels;      // value → name, as declared in dataset.json
  std::vector<IntensityStats> intensity;  // per channel, over the foreground (label > 0) of all cases
  std::vector<CaseFingerprint> cases;     // sorted by id
};

// Per case and channel a seeded random sample of 10 % of the foreground voxels (at most this many) goes
// into the fingerprint; nnU-Net v1 takes every 10th voxel.
constexpr int64_t kMaxIntensitySamplesPerCase = 100000;

// ------------------------------------------------------------------------------------------------ plan

struct Plan {
  Spacing3 target_spacing{1.0, 1.0, 1.0};
  Shape3 median_shape{0, 0, 0};  // median cropped case shape at the target spacing
  Int3 patch_size{128, 128, 128};
  int64_t batch_size = 2;
  std::vector<Int3> pools;
  std::vector<std::string> channel_names;
  std::vector<std::string> normalization;  // per channel: "ct" or "zscore"
  std::vector<bool> use_nonzero_mask;      // per channel: z-score inside the non-zero region only
  std::vector<IntensityStats> intensity;   // per channel, from the fingerprint (CT normalization)
  std::map<int, std::string> labels;       // value → name, background included
  uint64_t seed = 1234;                    // foreground location sampling

  std::vector<int> foreground_classes() const;  // label values > 0
};

// Target spacing from the cases' spacings and cropped shapes (in voxels): the per-axis median; if the
// coarsest axis is more than 3× the others and its median size × 3 is below the others' smallest, that
// axis's 10th percentile instead (but above max(others) + 1e-5 when it would fall below max(others)).
Spacing3 plan_target_spacing(const std::vector<Spacing3>& spacings, const std::vector<Shape3>& shapes);

// The plan of a fingerprint. Patch size, batch size and pools come from `config` when given (and its
// data.target_spacing overrides the spacing rule). Without a config: the default config's, with each patch
// axis capped at the median shape rounded up to a multiple of the total pool. CT channels get CT
// normalization; other channels z-score, inside the non-zero mask when cropping shrank the median case to
// under 3/4 of its voxels. Throws InputError when CT statistics are needed and no label has foreground.
Plan make_plan(const Fingerprint& fingerprint, const std::optional<Config>& config);

nlohmann::json to_json(const Fingerprint& fingerprint);
nlohmann::json to_json(const Plan& plan);
Plan plan_from_json(const nlohmann::json& json);  // throws InputError on a malformed plan

// -------------------------------------------------------------------------------------- per-case steps

// Replaces NaN and ±inf by 0 and returns how many there were.
int64_t zero_non_finite(MultiVolume<float>& image);

// Voxels non-zero in any channel, with holes (background not 6-connected to the border) filled.
Volume<uint8_t> nonzero_mask(const MultiVolume<float>& image);

// The bounding box of the mask's set voxels; the whole volume when none is set.
CropBox bounding_box(const Volume<uint8_t>& mask);

struct CroppedCase {
  std::string id;
  MultiVolume<float> image;  // cropped, non-finite values zeroed
  Volume<int16_t> label;     // cropped; −1 where it was 0 outside the non-zero mask
  CropBox crop;
  NiftiGeometry geometry;  // of the original files
};

// Zeroes non-finite voxels, crops to the non-zero region and marks the label's outside as −1. A case without
// a label gets one of 0 inside and −1 outside. Throws InputError naming `image_files` when a channel has no
// finite voxel or the whole image is zero.
CroppedCase crop_to_nonzero(RawCaseData raw, const std::vector<std::string>& image_files);

// Per channel, the intensities of a seeded random 10 % of the foreground voxels (label > 0), at most
// kMaxIntensitySamplesPerCase: the fingerprint's sample of this case.
std::vector<std::vector<float>> foreground_samples(const CroppedCase& c, uint64_t seed);

// Normalizes in place; `label` marks the non-zero region (≥ 0) at the same shape.
void normalize(MultiVolume<float>& image, const Volume<int16_t>& label, const Plan& plan);

// Per foreground class present in the label: max(min(10 000, n), ceil(1 % of n)) distinct voxel coordinates
// (z, y, x) drawn with a generator seeded by (seed, case id), sorted.
std::vector<std::pair<int, std::vector<std::array<int32_t, 3>>>> foreground_locations(
    const Volume<int16_t>& label, const std::vector<int>& classes, uint64_t seed, const std::string& case_id);

// Resample to the plan's spacing (images cubic, labels per-label linear, anisotropic rule), normalize,
// foreground locations. `meta` receives what is needed to map the result back to the original file.
PreprocessedCase preprocess_case(CroppedCase c, const Plan& plan, CaseMeta* meta = nullptr);

}  // namespace e2e
