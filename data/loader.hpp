// Threaded training/validation batch loader.
//
// Batch `iteration` is a pure function of (options, iteration): make_batch draws everything from keys
// (seed, iteration, global sample index) (see random.hpp), so BatchLoader with 1 or 4 threads delivers the
// same sequence, and the ranks of a data-parallel group together draw exactly the single-rank global batch.
// Workers produce whole batches; at most max(queue_depth, threads) batches exist at once (ready or in
// progress), and next() hands them out in iteration order.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data/augment.hpp"
#include "data/case_source.hpp"
#include "data/sampler.hpp"

namespace e2e {

struct LoaderOptions {
  Shape3 patch_size{128, 128, 128};
  int64_t global_batch_size = 2;  // over all ranks; the foreground rule applies to it
  int rank = 0;
  int ranks = 1;
  double foreground_oversampling = 0.33;
  uint64_t seed = 0;
  int64_t first_iteration = 0;  // where next() starts (resume)
  // Validation: no augmentation, the sampling box is the patch itself, draws keyed apart from training.
  // Foreground oversampling, −1 → 0 (augment.ignore_to_background) and targets still apply.
  bool validation = false;
  AugmentOptions augment;
  // Device augmentation (training only): the loader crops each sample's sampling box without augmenting it
  // and carries the draws; worker/device_augment.hpp applies them on the training device. No targets then.
  // Without it, augment.elastic_probability must be 0 (the CPU augmenter has no elastic deformation).
  bool crop_only = false;
  std::vector<Shape3> target_shapes;  // deep-supervision output shapes, e.g. patch / 2, patch / 4, …
  int threads = 1;                    // 0 = one per hardware thread
  int queue_depth = 4;
};

// Throws InputError naming the field (loader.patch_size, loader.threads, …, augment.*).
void validate(const LoaderOptions& options);

// The samples of one rank for one iteration, in contiguous buffers ready for torch::from_blob.
struct Batch {
  int64_t iteration = 0;
  int64_t size = 0;  // samples on this rank
  int64_t channels = 0;
  Shape3 patch{0, 0, 0};                      // the final patch
  Shape3 box{0, 0, 0};                        // what image/label hold: the patch, or crop_only's sampling box
  std::vector<float> image;                   // size × channels × box
  std::vector<int16_t> label;                 // size × box
  std::vector<Shape3> target_shapes;          // as in LoaderOptions
  std::vector<std::vector<int16_t>> targets;  // per target shape: size × d × h × w (nearest from label)
  std::vector<std::string> case_ids;          // per sample
  std::vector<int64_t> global_samples;        // index of each sample in the global batch
  std::vector<PatchPlacement> placements;     // where each sample came from
  std::vector<DrawKey> keys;                  // crop_only: each sample's key and augmentation draws
  std::vector<AugmentDraw> draws;

  PatchRef sample(int64_t i) {
    const int64_t n = voxel_count(box);
    return {image.data() + i * channels * n, label.data() + i * n, channels, box};
  }
};

// Builds this rank's batch for `iteration` (what the workers run). Throws InputError for bad options or
// cases.
Batch make_batch(const CaseSource& source, const LoaderOptions& options, int64_t iteration);

// Time the consumer spent blocked in next(), for the training log.
struct LoaderStats {
  double wait_seconds = 0.0;
  double wall_seconds = 0.0;  // since the loader started or the stats were last taken
  int64_t batches = 0;
  double wait_fraction() const { return wall_seconds > 0.0 ? wait_seconds / wall_seconds : 0.0; }
};

class BatchLoader {
 public:
  // Validates the options (InputError) and starts the workers.
  BatchLoader(std::shared_ptr<const CaseSource> source, LoaderOptions options);
  // Stops the workers (each finishes at most its current sample) and joins them; never waits for the queue.
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next batch in iteration order. Blocks until it is ready. If producing it threw, rethrows that
  // exception (same type and message), and so does every later call.
  Batch next();

  LoaderStats stats() const;
  LoaderStats take_stats();  // returns the stats and starts a new period (e.g. per epoch)

 private:
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };
  void work();

  std::shared_ptr<const CaseSource> source_;
  LoaderOptions options_;
  int64_t window_ = 1;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mutex_;
  std::condition_variable batch_ready_;
  std::condition_variable window_open_;
  std::map<int64_t, Slot> finished_;
  int64_t next_claim_ = 0;
  int64_t next_delivery_ = 0;
  bool worker_failed_ = false;
  std::exception_ptr delivered_error_;

  double wait_seconds_ = 0.0;
  int64_t batches_ = 0;
  double period_start_ = 0.0;  // seconds on the steady clock

  std::vector<std::thread> workers_;
};

}  // namespace e2e
