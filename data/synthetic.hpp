// Synthetic organ-like 3D segmentation data (the embedded default dataset): a torso-like body with fat, soft
// tissue and unlabelled bone (spine, ribs), labelled organs of different sizes and shapes, texture, noise, a
// smooth bias field and anisotropic, per-case jittered spacing. Deterministic from the seed: case i depends
// only on (seed, i), so cases can be generated in any order or in parallel.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/nifti.hpp"
#include "data/volume.hpp"

namespace e2e {

struct SyntheticOptions {
  int64_t cases = 10;
  int classes =
      3;  // including background: 1 = large organ, 2 = paired organ, 3 = small lesions, 4 = vessel, …
  Shape3 shape{32, 64, 64};
  Spacing3 spacing{2.0, 0.9, 0.9};  // (z, y, x) mm before the per-case jitter
  double spacing_jitter = 0.1;      // each case scales z and in-plane spacing by U(1 - j, 1 + j)
  int channels = 1;                 // > 1 gives different tissue contrasts per channel (one 4D file per case)
  std::string modality = "CT";  // CT (Hounsfield-like, air -1000) or MR (arbitrary units, 0 outside the body)
  uint64_t seed = 0;

  // Throws ConfigError naming the option ("--classes: expected 2 to 32, got 1").
  void validate() const;
};

struct SyntheticCase {
  std::string id;
  MultiVolume<float> image;
  Volume<int16_t> label;
  NiftiGeometry geometry;
};

std::string synthetic_case_id(int64_t index, int64_t cases);  // "synth_001"
std::vector<std::string> synthetic_channel_names(const SyntheticOptions& options);
std::vector<std::string> synthetic_class_names(int classes);  // "background", "large_organ", …

// Case `index` (0-based) of the dataset the options describe.
SyntheticCase make_synthetic_case(const SyntheticOptions& options, int64_t index);

// Writes an MSD-format dataset (dataset.json, imagesTr/, labelsTr/; one 4D image per case when channels > 1)
// into a temporary folder next to `out_dir` and renames it into place. An existing non-empty `out_dir` is an
// InputError unless `force` is set, and even then it must be a dataset folder (hold a dataset.json).
// `threads` <= 0 uses up to 2 threads. `progress(done, total)` is called after each case (from one thread at
// a time).
using SyntheticProgress = std::function<void(int64_t done, int64_t total)>;
void write_synthetic_dataset(const std::string& out_dir, const SyntheticOptions& options, bool force,
                             int threads = 0, const SyntheticProgress& progress = {});

}  // namespace e2e
