// The worker's view of the data: a fold of a preprocessed store turned into training/validation batches
// (the threaded loader, tensors via from_blob) and the raw dataset for final validation.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/case_store.hpp"
#include "data/loader.hpp"
#include "data/preprocess.hpp"
#include "worker/device_augment.hpp"
#include "worker/trainer.hpp"

namespace e2e {

// Where a config's preprocessed store lives: data.preprocessed, else "<data.dataset>_preprocessed".
std::string preprocessed_dir(const Config& config);

// Makes sure the store exists (runs preprocessing when it does not; a complete store is reused without
// re-reading the raw data). Throws InputError/ConfigError naming what is missing.
std::string ensure_preprocessed(const Config& config, int workers = 0);

struct FoldData {
  std::string store_dir;
  Plan plan;
  std::vector<std::string> train_ids;
  std::vector<std::string> val_ids;
  std::shared_ptr<const CaseSource> train;
  std::shared_ptr<const CaseSource> val;
};

// Opens fold `fold` of the store (splits_final.json) and checks that the model config fits the plan
// (input channels, classes). Throws InputError/ConfigError with the field named.
FoldData open_fold(const Config& config, const std::string& store_dir, int fold);

// Training batches from the threaded loader (restartable at any iteration, per-rank slice of the global
// batch), validation batches built directly (no augmentation). Deterministic in (seed, iteration).
// data.augment_device cuda: the loader only crops, and a DeviceAugmenter augments each training batch on this
// rank's GPU (the trainer's device), returning device tensors. ConfigError naming data.augment_device when no
// CUDA device is available. `augment_on` forces device augmentation on that device (tests, benchmarks).
class LoaderBatchSource : public BatchSource {
 public:
  LoaderBatchSource(const Config& config, const FoldData& fold, uint64_t seed, int rank, int ranks,
                    int threads, std::optional<torch::Device> augment_on = std::nullopt);
  TrainingBatch train_batch(int64_t iteration) override;
  TrainingBatch validation_batch(int64_t epoch, int64_t index) override;
  double wait_seconds() const override;

 private:
  LoaderOptions train_options_;
  LoaderOptions validation_options_;
  int64_t validation_batches_;
  std::shared_ptr<const CaseSource> train_;
  std::shared_ptr<const CaseSource> val_;
  std::unique_ptr<BatchLoader> loader_;
  std::unique_ptr<DeviceAugmenter> augmenter_;
  int64_t next_iteration_ = -1;
  double waited_before_ = 0;
};

TrainingBatch to_tensors(Batch& batch);

}  // namespace e2e
