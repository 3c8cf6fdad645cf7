// Folder evaluation, as in nnU-Net's evaluate_folder: a folder of predicted label maps is paired with a
// folder of reference label maps by case id (the file name without .nii / .nii.gz), every pair is evaluated
// with evaluate_case on a few threads, and the label set comes from the caller, from dataset.json, or from
// the files themselves. Reading the files is the caller's (a LabelReader), so this stays free of NIfTI code.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "metrics/evaluate.hpp"

namespace e2e {

struct CaseFiles {
  std::string case_id;
  std::string prediction;  // path
  std::string reference;   // path
};

struct FolderPairs {
  std::vector<CaseFiles> cases;                  // sorted by case id
  std::vector<std::string> missing_predictions;  // reference files without a prediction (allow_missing only)
};

// "case_001.nii.gz" → "case_001", "a.nii" → "a"; "" for anything else (other files are ignored).
std::string nifti_case_id(const std::string& file_name);

// Lists the NIfTI files of both folders (hidden files, other files and sub-folders are ignored) and pairs
// them by case id. Throws InputError naming the folder and the files for: a folder that does not exist,
// a folder without NIfTI files, two files with one case id (x.nii and x.nii.gz), predictions without a
// reference, and references without a prediction unless allow_missing.
FolderPairs pair_folders(const std::string& prediction_dir, const std::string& reference_dir,
                         bool allow_missing = false);

// Labels declared by a dataset.json (MSD / nnU-Net v1 {"0": "background", "1": "liver"} or nnU-Net v2
// {"background": 0, "liver": 1, "whole tumor": [1, 2, 3]}): foreground classes with their names, and v2
// regions. Only "labels" is read, so the file may sit apart from its images (as in nnU-Net's results
// folders). Throws InputError naming the file and the problem.
struct DatasetLabels {
  std::vector<int> classes;  // ascending, background (0) excluded
  std::map<int, std::string> class_names;
  std::vector<Region> regions;  // in file order
};
DatasetLabels read_dataset_json_labels(const std::string& path);

// Reads one label map (with its spacing); throws InputError naming the file when it cannot.
using LabelReader = std::function<LabelMap(const std::string& path)>;
// Called once per finished case, one call at a time, in completion order.
using CaseProgress = std::function<void(std::size_t done, std::size_t total, const CaseMetrics& metrics)>;

struct FolderEvaluation {
  EvaluationOptions options;        // as used; options.classes filled in when they were discovered
  bool classes_discovered = false;  // options.classes came from the files
  std::vector<CaseMetrics> cases;   // in the order of the pairs
};

// Evaluates every pair on `workers` threads (0: one per core; never more than there are pairs). Each pair
// must have the same shape and spacing (InputError naming both files). When options.classes is empty the
// classes are the positive label values found in any reference or prediction; a case without one of them
// scores it as absent (NaN), exactly as evaluate_case would. The first error stops the run and is rethrown
// (the one of the earliest case if several threads failed).
FolderEvaluation evaluate_folder_pairs(const std::vector<CaseFiles>& pairs, const EvaluationOptions& options,
                                       const LabelReader& read, int workers = 0,
                                       const CaseProgress& progress = {});

// The positive label values of a label map, ascending.
std::vector<int> positive_labels(const LabelMap& map);

}  // namespace e2e
