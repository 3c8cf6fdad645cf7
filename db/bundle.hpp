// Result bundles: for sites that run one Slurm array task per cell instead of a coordinator. Each task writes
// a bundle folder; `e2e db import` ingests bundles into the store, so the store still has one writer.
//
// Layout of a bundle folder:
//   bundle.json   format "e2e-result-bundle" version 1: experiment (name, config, config hash, dataset
//                 fingerprint, code version), job (key, fold, sparsity, seed, status done|failed, attempts,
//                 max_attempts, node, error, checkpoint), result, case_metrics, epochs, events, masks
//   masks/final.e2et, masks/periodic_<step>.e2et   Topology::serialize() bytes, listed in bundle.json with
//                 their topology hash
// Non-finite numbers are written as the strings "nan", "inf", "-inf".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "db/records.hpp"

namespace e2e {

class Store;

struct BundleEvent {
  std::string time;
  EventKind kind = EventKind::Started;
  std::string message;
};

struct ResultBundle {
  ExperimentInfo experiment;
  int fold = 0;
  double sparsity = 0;
  uint64_t seed = 0;
  JobStatus status = JobStatus::Done;  // done or failed
  int attempts = 0;
  int max_attempts = 3;
  std::string node;
  std::string error;
  std::optional<Checkpoint> checkpoint;
  std::optional<JobResult> result;  // required when done; its final masks become masks/final.e2et
  std::vector<EpochRecord> epochs;
  std::vector<BundleEvent> events;
  std::vector<MaskSnapshot> periodic_masks;

  std::string key() const;
};

// Writes the bundle folder atomically (a sibling temp folder renamed into place; an older bundle at `dir` is
// replaced). Throws ConfigError when the bundle is incomplete (done without a result, bad status).
void write_result_bundle(const std::string& dir, const ResultBundle& bundle);

// Reads and validates a bundle folder; InputError names the file and field of the first problem.
ResultBundle read_result_bundle(const std::string& dir);

// Each path is a bundle folder or a folder of bundle folders. InputError when a path holds no bundle.
std::vector<std::string> find_bundles(const std::vector<std::string>& paths);

struct ImportOutcome {
  std::string source;
  int64_t job_id = 0;
  bool imported = false;
  std::string note;  // why it was skipped
};

// Validates every bundle first, then ingests them all in one transaction (all or nothing). Idempotent: a
// bundle already imported, or one for a job that is already done, is skipped.
std::vector<ImportOutcome> import_bundles(Store& store, const std::vector<std::string>& bundle_dirs,
                                          bool allow_config_change = false);

}  // namespace e2e
