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

// Where job folders live, one rule for `e2e train` and `e2e sweep`: <runs>/<experiment>/fold<F>_s<S>_seed<N>
// for a training job, <runs>/<experiment>/test_s<S>_seed<N> for a test ensemble; <runs> defaults to the
// folder "runs" next to the store (store.path or --db).
std::string default_runs_dir(const std::string& store_path);
std::string job_folder(const std::string& runs_dir, const std::string& experiment, int fold, double sparsity,
                       uint64_t seed);
std::string ensemble_folder(const std::string& runs_dir, const std::string& experiment, double sparsity,
                            uint64_t seed);

// A number of metrics.json's summary ("mean_dice", "mean_nsd", …); NaN when absent or null.
double summary_number(const nlohmann::json& report, const std::string& key);

// Collective over `comm`. Throws TrainingError / InputError / ConfigError with clear messages.
JobRun run_job(const Config& config, const JobSpec& job, Communicator& comm, const std::atomic<bool>* stop,
               const TrainerHooks& hooks = {}, const JobOptions& options = {});

}  // namespace e2e
