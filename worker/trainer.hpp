// One training job (fold × sparsity × seed): SGD Nesterov with poly LR, gradient clipping, CE + Dice with
// deep supervision, DSFF topology updates on schedule, per-epoch validation batches, atomic checkpoints
// (periodic, by wall time, on a stop request) and exact resume.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/epoch_record.hpp"
#include "configs/config.hpp"
#include "model/dsff.hpp"
#include "model/e2enet.hpp"
#include "worker/communicator.hpp"
#include "worker/gradient_buckets.hpp"
#include "worker/loss_scaler.hpp"
#include "worker/progress.hpp"

namespace e2e {

struct TrainingBatch {
  torch::Tensor image;  // N×C×D×H×W float32
  torch::Tensor label;  // N×D×H×W int64, −1 = ignore
};

// Where batches come from. Batches are a pure function of their index so that a resumed job, or a job with
// another number of loader threads, sees exactly the same data.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual TrainingBatch train_batch(int64_t iteration) = 0;                  // 0-based global iteration
  virtual TrainingBatch validation_batch(int64_t epoch, int64_t index) = 0;  // no augmentation
  virtual double wait_seconds() const { return 0.0; }  // total time the trainer waited for batches
};

// A job's identity and where it writes.
struct JobSpec {
  int fold = 0;
  double sparsity = 0.8;
  uint64_t seed = 0;
  std::string out_dir = "out";
  bool resume = false;
};

// Thrown when training cannot go on (non-finite loss, …); the last good checkpoint stays in place.
class TrainingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class TrainOutcome { Finished, Stopped };

struct TrainerHooks {
  std::function<void(const EpochRecord&)> on_epoch;  // after each epoch (progress, heartbeats)
  std::function<void(const std::string& path, int64_t iteration)> on_checkpoint;
  // After each training step, on every rank (a bar, live progress to the sweep's coordinator). The trainer
  // itself draws nothing: who shows progress where is the caller's decision (worker/progress.hpp).
  std::function<void(const StepProgress&)> on_step;
};

class Trainer {
 public:
  // stop_requested: set asynchronously (SIGUSR1/SIGTERM); the trainer checkpoints and returns Stopped.
  Trainer(Config config, JobSpec job, BatchSource& batches, Communicator& comm,
          const std::atomic<bool>* stop_requested = nullptr, TrainerHooks hooks = {});

  // Trains until `stop_at_iteration` (default: the end of training) or a stop request.
  TrainOutcome run(int64_t stop_at_iteration = -1);

  E2ENet& net() { return net_; }
  Dsff& dsff() { return *dsff_; }
  int64_t iteration() const { return iteration_; }
  int64_t total_iterations() const;
  const std::vector<EpochRecord>& history() const { return history_; }
  std::string checkpoint_path() const;
  torch::Device device() const { return device_; }

  void save_checkpoint();
  void load_checkpoint(const std::string& path);
  // Collective: throws TrainingError on every rank unless all ranks hold the same DSFF topology.
  void verify_topology_across_ranks();

 private:
  double learning_rate_for(int64_t epoch) const;
  double train_step(const TrainingBatch& batch);
  void reduce_gradients();
  void maybe_update_topology();
  void synchronize_initial_state();
  EpochRecord validate(int64_t epoch);
  void finish_epoch(int64_t epoch, double epoch_seconds);
  void write_history() const;
  bool checkpoint_due(int64_t epoch_finished) const;

  Config config_;
  JobSpec job_;
  BatchSource& batches_;
  Communicator& comm_;
  const std::atomic<bool>* stop_requested_;
  TrainerHooks hooks_;
  torch::Device device_;
  E2ENet net_{nullptr};
  std::unique_ptr<Dsff> dsff_;
  std::unique_ptr<torch::optim::SGD> optimizer_;
  std::unique_ptr<GradientBuckets> gradient_buckets_;  // data-parallel jobs only
  int64_t iteration_ = 0;                              // completed optimizer steps
  int64_t topology_updates_ = 0;
  bool stop_agreed_ = false;       // some rank was asked to stop (agreed at the last step's all-reduce)
  LossScaler loss_scaler_{false};  // enabled for fp16 autocast on CUDA
  double epoch_loss_sum_ = 0;      // running sums of the current epoch (checkpointed for exact logs)
  int64_t epoch_steps_ = 0;
  double epoch_wait_start_ = 0;
  double epoch_elapsed_ = 0;
  double epoch_allreduce_seconds_ = 0;
  std::vector<EpochRecord> history_;
  std::chrono::steady_clock::time_point last_checkpoint_time_;
};

}  // namespace e2e
