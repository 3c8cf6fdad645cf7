// Final validation of a trained fold: sliding-window prediction of every validation case (sharded across
// the job's ranks), export to the original geometry as NIfTI, metrics per case and class (Dice, NSD, HD95
// with the configured variants and tolerances) against the raw labels, summarized into metrics.json.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

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

// Returns the evaluation report (on the leader; other ranks get an empty object). When the raw dataset is
// not available, the preprocessed labels at the stored spacing are the reference (said in the report).
nlohmann::json validate_fold(E2ENet& net, const Config& config, const FoldData& fold,
                             const ValidationOptions& options, Communicator& comm);

}  // namespace e2e
