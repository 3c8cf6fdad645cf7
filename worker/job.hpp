// One job end to end: data → training (resumable) → final validation → metrics.json. Used by `e2e train`
// and by the sweep's worker groups.
#pragma once

#include <atomic>
#include <nlohmann/json.hpp>

#include "worker/trainer.hpp"

namespace e2e {

struct JobRun {
  TrainOutcome outcome = TrainOutcome::Stopped;
  nlohmann::json metrics;  // metrics.json (finished jobs, leader only)
  std::vector<EpochRecord> history;
  std::string topology;  // final Topology::serialize()
  int64_t iteration = 0;
  std::string checkpoint_path;
};

struct JobOptions {
  int loader_threads = 0;      // 0 = automatic
  int preprocess_workers = 0;  // when the store has to be built first
};

// A number of metrics.json's summary ("mean_dice", "mean_nsd", …); NaN when absent or null.
double summary_number(const nlohmann::json& report, const std::string& key);

// Collective over `comm`. Throws TrainingError / InputError / ConfigError with clear messages.
JobRun run_job(const Config& config, const JobSpec& job, Communicator& comm, const std::atomic<bool>* stop,
               const TrainerHooks& hooks = {}, const JobOptions& options = {});

}  // namespace e2e
