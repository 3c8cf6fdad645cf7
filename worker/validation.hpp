// Final validation of a trained fold: sliding-window prediction of every validation case (sharded across
// the job's ranks), export to the original geometry as NIfTI, metrics per case and class (Dice, NSD, HD95
// with the configured variants and tolerances) against the raw labels, summarized into metrics.json.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "worker/communicator.hpp"
#include "worker/data_source.hpp"
#include "worker/inference.hpp"

namespace e2e {

struct ValidationOptions {
  std::string out_dir;  // predictions go to <out_dir>/validation/<case>.nii.gz
  bool mirror_tta = false;
  double step_fraction = 0.5;
  torch::Device device = torch::kCPU;
  InferencePathOptions inference;  // sparse or dense forward, compiled once for all cases
};

// nnU-Net's per-epoch pseudo-Dice over the validation batches: for each foreground class c (1..K−1) the voxel
// counts tp, fp, fn of argmax(logits) against the label (voxels labelled < 0 are ignored), summed over
// batches and ranks; Dice = 2tp / (2tp + fp + fn), NaN for a class in neither prediction nor label.
class PseudoDiceCounts {
 public:
  explicit PseudoDiceCounts(int64_t num_classes);
  void add(const torch::Tensor& logits, const torch::Tensor& label);  // N×K×D×H×W logits, N×D×H×W labels
  std::vector<double>& counts() { return counts_; }  // tp, fp, fn per foreground class (for an all-reduce)
  std::vector<double> dice() const;                  // per foreground class

 private:
  int64_t classes_;
  std::vector<double> counts_;
};

// The mean of the finite values; NaN when there is none.
double mean_of_finite(const std::vector<double>& values);

// Returns the evaluation report (on the leader; other ranks get an empty object). When the raw dataset is
// not available, the preprocessed labels at the stored spacing are the reference (said in the report).
nlohmann::json validate_fold(E2ENet& net, const Config& config, const FoldData& fold,
                             const ValidationOptions& options, Communicator& comm);

}  // namespace e2e
