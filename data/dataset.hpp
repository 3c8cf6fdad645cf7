// Raw dataset layouts: MSD (4D multi-modal NIfTI), nnU-Net v1 and v2 (one file per channel).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "data/nifti.hpp"

namespace e2e {

enum class DatasetFormat { Msd, NnUNetV1, NnUNetV2 };

struct RawCase {
  std::string id;                        // "case_001"
  std::vector<std::string> image_files;  // one per channel (v1/v2) or one 4D file (MSD)
  std::string label_file;                // empty for test cases
};

struct RawDataset {
  std::string root;
  std::string name;
  DatasetFormat format = DatasetFormat::Msd;
  std::vector<std::string> channel_names;           // index → modality ("CT", "FLAIR", …)
  std::map<int, std::string> labels;                // value → name, background included
  std::map<std::string, std::vector<int>> regions;  // nnU-Net v2 region labels (name → values)
  std::string file_ending = ".nii.gz";
  std::vector<RawCase> training;  // sorted by id
  std::vector<RawCase> test;

  bool is_ct() const { return !channel_names.empty() && channel_names[0] == "CT"; }
  int64_t channel_count() const { return static_cast<int64_t>(channel_names.size()); }
  // Every label value dataset.json allows: the keys of `labels` and the members of all regions.
  std::set<int> declared_label_values() const;
};

std::string to_string(DatasetFormat format);  // "MSD", "nnU-Net v1", "nnU-Net v2"

// Reads dataset.json and lists the cases (macOS debris such as ._x.nii.gz is skipped). Detects the format.
// Throws InputError naming the file and the problem (missing files, empty training list, bad JSON, …).
RawDataset read_raw_dataset(const std::string& root);

// data.test_cases: moves the named training cases out of `dataset.training` (they never enter a fold, the
// fingerprint or the plan) and returns them. Throws InputError naming the dataset and the id when one is
// not a training case.
std::vector<RawCase> hold_out_training_cases(RawDataset& dataset, const std::vector<std::string>& ids);

// The held-out test set of a sweep, sorted by id: the dataset's own test images (labelled when labelsTs/
// holds {case}{ending}) and the training cases named in `held_out_ids` (with their labels). A case without
// a label is predicted but not scored. Throws InputError for an id in both or not a training case.
std::vector<RawCase> test_set(const RawDataset& dataset, const std::vector<std::string>& held_out_ids);

// One raw case read into memory and checked.
struct RawCaseData {
  std::string id;
  MultiVolume<float> image;  // channel_count() channels, in dataset.json order
  Volume<int16_t> label;     // shape 0x0x0 for test cases
  NiftiGeometry geometry;    // shared by every file of the case
};

// Header-only checks of one case: each file has the expected number of volumes (MSD: one 4D file with
// channel_count() volumes; nnU-Net: 3D files) and all channels and the label share one grid. Throws
// InputError naming the file that differs. Returns the case's geometry.
NiftiGeometry check_case_geometry(const RawDataset& dataset, const RawCase& raw_case);

// Reads a case: the checks above, plus label values declared in dataset.json.
RawCaseData load_raw_case(const RawDataset& dataset, const RawCase& raw_case);

// Throws InputError naming `file` and the undeclared values when `label` holds a value dataset.json does not
// declare.
void check_declared_labels(const Volume<int16_t>& label, const RawDataset& dataset, const std::string& file);

}  // namespace e2e
