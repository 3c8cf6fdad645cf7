// The test-set stage of a sweep (paper §4.1): the fold models of one (sparsity, seed) cell, averaged on the
// held-out test cases, with nnU-Net's connected-component post-processing decided on the cell's
// cross-validation predictions. Resumable case by case: every finished case leaves its prediction and its
// metrics in the job folder (written atomically), and a rerun predicts only the cases without them.
//
// Job folder: predictions/<case>.nii.gz (final, post-processed when the decision changes anything),
// predictions_raw/<case>.nii.gz (before post-processing; only when it changes anything), cases/<case>.json,
// postprocessing.json (the decision), metrics.json (the report, split "test").
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "configs/config.hpp"

namespace e2e {

struct EnsembleSpec {
  double sparsity = 0;
  uint64_t seed = 0;
  std::vector<int> folds;
  std::vector<std::string> fold_dirs;  // each fold's job folder: checkpoint.ckpt and validation/
  std::string out_dir;
  torch::Device device = torch::kCPU;
};

struct EnsembleHooks {
  // After each case is finished (predicted and, when it has a label, scored).
  std::function<void(const std::string& case_id, std::size_t done, std::size_t total)> on_case;
};

struct EnsembleRun {
  bool stopped = false;             // a stop was requested between cases; rerun to continue
  nlohmann::json report;            // metrics.json (when not stopped)
  std::size_t cases_predicted = 0;  // by this run
  std::size_t cases_reused = 0;     // finished by an earlier run
};

// Throws InputError naming the file or case: no test cases, a test case inside a fold, a missing fold
// model or validation prediction, an image and label of different geometry. Nothing is written before the
// inputs are checked.
EnsembleRun run_ensemble_job(const Config& config, const EnsembleSpec& spec, const std::atomic<bool>* stop,
                             const EnsembleHooks& hooks = {});

}  // namespace e2e
