// Plain values read from and written to the experiment store.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "common/epoch_record.hpp"
#include "model/topology.hpp"

namespace e2e {

enum class JobStatus { Pending, Running, Done, Failed, Preempted, Interrupted };
enum class EventKind { Started, Checkpointed, Preempted, Retried, Failed, Resumed, Interrupted, Done };
enum class MaskKind { Final, Periodic };
// Train: one fold of one (sparsity, seed) cell. Ensemble: the cell's fold models averaged on the held-out
// test set, runnable once every fold of the cell is done.
enum class JobKind { Train, Ensemble };

std::string to_string(JobStatus status);
std::string to_string(EventKind kind);
std::string to_string(MaskKind kind);
std::string to_string(JobKind kind);
// Throw ConfigError naming `what` and listing the accepted values.
JobStatus parse_job_status(const std::string& text, const std::string& what = "status");
EventKind parse_event_kind(const std::string& text, const std::string& what = "event kind");
MaskKind parse_mask_kind(const std::string& text, const std::string& what = "mask kind");
JobKind parse_job_kind(const std::string& text, const std::string& what = "job kind");

// UTC, millisecond precision: "2024-05-01T12:34:56.789Z" (sorts as text).
std::string utc_now();

struct ExperimentInfo {
  std::string name;
  std::string config_json;
  std::string config_hash;
  std::string dataset_fingerprint;
  std::string code_version;
};

struct Experiment : ExperimentInfo {
  int64_t id = 0;
  std::string created_at;
  std::string updated_at;
};

struct SplitEntry {
  int fold = 0;
  std::string case_id;
  std::string role;  // train | val
};

// The cells of a sweep: every (fold, sparsity, seed).
struct JobGrid {
  std::vector<int> folds;
  std::vector<double> sparsities;
  std::vector<uint64_t> seeds;
  int max_attempts = 3;
  // One ensemble job per (sparsity, seed) over `folds`, when the experiment has held-out test cases.
  bool test_ensembles = false;
};

// SHA-256 of (experiment, fold, sparsity, seed, config hash): the job's identity across relaunches.
std::string job_key(const std::string& experiment, int fold, double sparsity, uint64_t seed,
                    const std::string& config_hash);
// The ensemble job of a (sparsity, seed) cell over `folds` (another fold set is another job).
std::string ensemble_job_key(const std::string& experiment, double sparsity, uint64_t seed,
                             const std::vector<int>& folds, const std::string& config_hash);

struct Checkpoint {
  std::string path;
  std::string sha256;
  int64_t iteration = 0;
};

// A job's state as recorded by another store or run (a result bundle's job): what Store::restore_job_state
// writes over a job row.
struct RecordedJobState {
  JobStatus status = JobStatus::Done;
  int attempts = 0;
  int max_attempts = 3;
  std::string node;
  std::string error;  // empty: none
  std::string started_at, finished_at;
  std::optional<Checkpoint> checkpoint;
};

struct Job {
  int64_t id = 0;
  std::string key;
  int64_t experiment_id = 0;
  std::string experiment;
  std::string config_hash;
  JobKind kind = JobKind::Train;
  int fold = 0;            // -1 for ensemble jobs
  std::vector<int> folds;  // ensemble jobs: the folds whose models are averaged
  double sparsity = 0;
  uint64_t seed = 0;
  JobStatus status = JobStatus::Pending;
  int attempts = 0;
  int max_attempts = 1;
  std::optional<int> worker_group;
  std::string node;
  std::string created_at;
  std::string started_at;
  std::string finished_at;
  std::string heartbeat_at;
  std::string error;
  std::optional<Checkpoint> checkpoint;

  // A failed job with attempts left is retried; without, it has failed for good.
  bool failed_for_good() const { return status == JobStatus::Failed && attempts >= max_attempts; }
};

// What a worker group needs to run a claimed job.
struct ClaimedJob {
  Job job;
  std::string config_json;
  JobStatus previous_status = JobStatus::Pending;
  std::vector<std::string> train_cases;  // the fold's split, when the coordinator recorded splits
  std::vector<std::string> val_cases;
  bool resume() const { return job.checkpoint.has_value(); }
};

struct Event {
  int64_t id = 0;
  int64_t job_id = 0;
  std::string time;
  EventKind kind = EventKind::Started;
  std::string message;
};

// Which cases a result scores: a fold's validation cases (cv) or the held-out test set (test).
enum class Split { Cv, Test };
std::string to_string(Split split);
Split parse_split(const std::string& text, const std::string& what = "split");

// One class (or region) of one case. NaN = not scored (absent from both maps); HD95 may be +inf.
struct CaseMetricRow {
  std::string case_id;
  std::string structure;
  bool is_region = false;
  double dice = 0;
  double nsd = 0;
  double nsd_tolerance_mm = 0;
  double hd95 = 0;
  std::string hd_variant;
  Split split = Split::Cv;
  bool postprocessed = false;  // test cases are stored with and without the cell's post-processing
  // Variants for reproducing published numbers (NaN when not computed): NSD as the reference computes it
  // (fixed spacing (3, 2, 1)) and medpy's pooled HD95.
  double nsd_fixed_spacing = std::numeric_limits<double>::quiet_NaN();
  double hd95_pooled = std::numeric_limits<double>::quiet_NaN();
};

struct ResultSummary {
  double mean_dice = 0;  // fractions in [0, 1], as the metrics produce them
  double mean_nsd = 0;
  double mean_hd95 = 0;
  int64_t params = 0;
  double flops = 0;
  std::array<int64_t, 3> patch{0, 0, 0};
  std::string metrics_json = "{}";  // the full evaluation report, free-form
  Split split = Split::Cv;
  // Test results: the cell's post-processing decision (JSON, "" = none decided) and how many of the test
  // cases had a reference label to score.
  std::string postprocessing;
  int64_t cases_total = 0;
  int64_t cases_scored = 0;
  // Measured inference time per sliding-window patch (NaN = not measured).
  double ms_per_patch_dense = std::numeric_limits<double>::quiet_NaN();
  double ms_per_patch_sparse = std::numeric_limits<double>::quiet_NaN();
};

struct MaskSnapshot {
  int64_t step = 0;  // topology update index (or iteration) at which the masks were taken
  MaskKind kind = MaskKind::Final;
  Topology topology;
};

// A finished job: written in one transaction, which also marks the job done.
struct JobResult {
  ResultSummary summary;
  std::vector<CaseMetricRow> case_metrics;
  std::optional<MaskSnapshot> final_masks;
};

}  // namespace e2e
