// Cross-validation folds: K-fold splits identical to nnU-Net (sklearn KFold with numpy's legacy shuffle) and
// nnU-Net's splits_final.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace e2e {

// KFold(5, shuffle, seed 12345) over sorted case ids, identical to nnU-Net / sklearn.
struct FoldSplit {
  std::vector<std::string> train;
  std::vector<std::string> val;
};
// Validation ids of a fold are sorted ascending; training ids too. Throws InputError for fewer cases than
// folds or duplicate ids, ConfigError for folds < 2.
std::vector<FoldSplit> kfold_splits(const std::vector<std::string>& sorted_case_ids, int folds = 5,
                                    unsigned seed = 12345);
// numpy's legacy RandomState(seed).permutation(n).
std::vector<int64_t> legacy_numpy_permutation(int64_t n, unsigned seed);
// nnU-Net's splits_final.json: [{"train": [...], "val": [...]}, …].
// Reading checks the shape of the file and that no case is both training and validation in one fold (except
// a dataset of one case: its single fold trains and validates on it).
std::vector<FoldSplit> read_splits_json(const std::string& path);
void write_splits_json(const std::string& path, const std::vector<FoldSplit>& splits);  // atomic
// The same on text (the case store keeps a copy inside cases.h5); `source` names the text in errors.
std::vector<FoldSplit> parse_splits_json(const std::string& text, const std::string& source);
std::string splits_json_text(const std::vector<FoldSplit>& splits);

}  // namespace e2e
