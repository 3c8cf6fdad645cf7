// Raw dataset layouts: MSD (4D multi-modal NIfTI), nnU-Net v1 and v2 (one file per channel).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace e2e {

enum class DatasetFormat { Msd, NnUNetV1, NnUNetV2 };

struct RawCase {
  std::string id;                          // "case_001"
  std::vector<std::string> image_files;    // one per channel (v1/v2) or one 4D file (MSD)
  std::string label_file;                  // empty for test cases
};

struct RawDataset {
  std::string root;
  std::string name;
  DatasetFormat format = DatasetFormat::Msd;
  std::vector<std::string> channel_names;  // index → modality ("CT", "FLAIR", …)
  std::map<int, std::string> labels;       // value → name, background included
  std::map<std::string, std::vector<int>> regions;  // nnU-Net v2 region labels (name → values)
  std::string file_ending = ".nii.gz";
  std::vector<RawCase> training;           // sorted by id
  std::vector<RawCase> test;

  bool is_ct() const { return !channel_names.empty() && channel_names[0] == "CT"; }
};

// Reads dataset.json and lists the cases (macOS debris such as ._x.nii.gz is skipped). Detects the format.
// Throws InputError naming the file and the problem (missing files, empty training list, bad JSON, …).
RawDataset read_raw_dataset(const std::string& root);

// KFold(5, shuffle, seed 12345) over sorted case ids, identical to nnU-Net / sklearn.
struct FoldSplit {
  std::vector<std::string> train;
  std::vector<std::string> val;
};
std::vector<FoldSplit> kfold_splits(const std::vector<std::string>& sorted_case_ids, int folds = 5,
                                    unsigned seed = 12345);
// nnU-Net's splits_final.json: [{"train": [...], "val": [...]}, …].
std::vector<FoldSplit> read_splits_json(const std::string& path);
void write_splits_json(const std::string& path, const std::vector<FoldSplit>& splits);

}  // namespace e2e
