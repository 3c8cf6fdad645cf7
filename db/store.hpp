// The experiment store's writer. The coordinator is the only writer of a store; workers never open it (they
// send their progress over MPI, or write result bundles that `e2e db import` ingests).
//
// Journal modes: WAL (the default) lets readers (`e2e db …`, `e2e status`) query while the sweep writes. WAL
// needs shared memory between processes on one host, which network filesystems (NFS, Lustre, GPFS) often do
// not provide: there, use JournalMode::Rollback (store.wal: false in the config), or keep the store on a
// node-local disk and copy it to shared storage.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "db/records.hpp"
#include "db/sqlite.hpp"

namespace e2e {

struct StoreConfig;
class StoreReader;

enum class JournalMode { Wal, Rollback };

struct StoreOptions {
  JournalMode journal = JournalMode::Wal;
  int busy_timeout_ms = 10000;
  // Run PRAGMA quick_check before the first write to an existing store, so that a corrupt file is refused
  // untouched (costs a read of the whole file).
  bool verify_existing = true;

  static StoreOptions from_config(const StoreConfig& config);
};

struct EnumerateResult {
  std::vector<int64_t> job_ids;  // every job of the grid, in (sparsity, fold, seed) order
  int64_t created = 0;           // how many were new
};

struct FailureOutcome {
  int attempts = 0;
  int max_attempts = 0;
  bool will_retry = false;
};

// One connection: use a Store from one thread at a time. Concurrent readers (status endpoints, `e2e db`) open
// their own StoreReader(path); WAL lets them read while the coordinator writes.
class Store {
 public:
  // Opens or creates the store and migrates it to the current schema. A file that is not an e2e store, is
  // corrupt, or comes from a newer schema is refused with an InputError and left byte-identical.
  explicit Store(const std::string& path, StoreOptions options = {});

  const std::string& path() const { return db_->path(); }
  Database& database() { return *db_; }
  // Queries over this connection (sees this writer's own uncommitted-free state).
  StoreReader reader() const;

  // Inserts the experiment, or returns the existing one's id. The same name with another config hash is an
  // InputError unless allow_config_change (then the stored config is replaced; old jobs keep their keys).
  int64_t upsert_experiment(const ExperimentInfo& info, bool allow_config_change = false);
  void record_splits(int64_t experiment_id, const std::vector<SplitEntry>& splits);

  // Idempotent: every (fold, sparsity, seed) gets one job, plus one ensemble job per (sparsity, seed) when
  // grid.test_ensembles; existing jobs are kept as they are.
  EnumerateResult enumerate_jobs(int64_t experiment_id, const JobGrid& grid);

  // At coordinator start: every `running` job becomes `interrupted` (with an event). Returns how many.
  int64_t recover_interrupted();

  // Hands the next runnable job to a worker group in one transaction: pending, interrupted and preempted jobs
  // first-come, then failed jobs with attempts left (a retry); an ensemble job only once every fold of its
  // cell is done. nullopt when nothing is runnable.
  // experiment_id 0 claims from every experiment.
  std::optional<ClaimedJob> claim_next(int64_t experiment_id, int worker_group, const std::string& node = "");

  // Transitions of a running job. Each throws StoreError if the job is not running.
  void mark_running(int64_t job_id, const std::string& node);  // the group leader reports its host
  void heartbeat(int64_t job_id);
  void mark_checkpointed(int64_t job_id, const Checkpoint& checkpoint);
  void mark_preempted(int64_t job_id, const std::string& message = "");  // no attempt used
  // attempts + 1; runnable again (retry) while attempts < max_attempts, else failed for good. A permanent
  // failure (bad input that no retry can fix) uses up every attempt at once.
  FailureOutcome mark_failed(int64_t job_id, const std::string& reason, bool permanent = false);
  void mark_done(int64_t job_id);

  // Re-recording an epoch replaces it (a resumed job rewrites its tail). Also a heartbeat.
  void record_epoch(int64_t job_id, const EpochRecord& epoch);
  void record_epochs(int64_t job_id, const std::vector<EpochRecord>& epochs);  // one transaction
  void record_case_metrics(int64_t job_id, const std::vector<CaseMetricRow>& rows);
  void record_masks(int64_t job_id, const MaskSnapshot& masks);
  void add_event(int64_t job_id, EventKind kind, const std::string& message = "");

  // Result, case metrics, final masks, status done and a `done` event, in one transaction. The job must be
  // running (or already done: the result is replaced).
  void record_result(int64_t job_id, const JobResult& result);

  Job job(int64_t job_id) const;

  // What a result-bundle import (db/bundle.hpp) composes, all in the importer's one transaction:
  // the job a bundle (by its SHA-256) was imported into, if any; recording that import.
  std::optional<int64_t> imported_job(const std::string& bundle_sha256);
  void record_import(const std::string& bundle_sha256, int64_t job_id, const std::string& source);
  // The experiment of that name: its id and config hash.
  std::optional<std::pair<int64_t, std::string>> find_experiment(const std::string& name);
  // The training job (fold, sparsity, seed) of the experiment under `config_hash`, with the key
  // enumerate_jobs gives it; created pending when missing.
  int64_t add_job(int64_t experiment_id, const std::string& config_hash, int fold, double sparsity,
                  uint64_t seed, int max_attempts);
  // Writes another run's state over the job row (no event; the caller copies that run's events).
  void restore_job_state(int64_t job_id, const RecordedJobState& state);
  void add_event(int64_t job_id, EventKind kind, const std::string& message, const std::string& time);

 private:
  void configure(const StoreOptions& options);
  void transition(int64_t job_id, const char* sql_set, EventKind kind, const std::string& message);
  void insert_epoch(int64_t job_id, const EpochRecord& epoch);
  void insert_case_metrics(int64_t job_id, const std::vector<CaseMetricRow>& rows);
  void insert_masks(int64_t job_id, const MaskSnapshot& masks);
  void insert_result(int64_t job_id, const ResultSummary& summary);
  void insert_event(int64_t job_id, EventKind kind, const std::string& message, const std::string& time);
  JobStatus status_of(int64_t job_id);

  std::shared_ptr<Database> db_;
  // INSERT OR IGNORE of a training job row; its id, and whether it was created.
  std::pair<int64_t, bool> insert_training_job(const std::string& key, int64_t experiment_id,
                                               const std::string& config_hash, int fold, double sparsity,
                                               uint64_t seed, int max_attempts, const std::string& now);
};

}  // namespace e2e
