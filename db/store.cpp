#include "db/store.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "common/json_number.hpp"
#include "configs/config.hpp"
#include "db/reader.hpp"
#include "db/schema.hpp"

namespace e2e {

namespace {

std::string json_array(const std::vector<double>& values) {
  nlohmann::json out = nlohmann::json::array();
  for (double v : values) out.push_back(json_number(v));
  return out.dump();
}

// Event text of a claim, by the state the job was claimed from.
EventKind claim_event(JobStatus previous) {
  switch (previous) {
    case JobStatus::Failed:
      return EventKind::Retried;
    case JobStatus::Interrupted:
    case JobStatus::Preempted:
      return EventKind::Resumed;
    default:
      return EventKind::Started;
  }
}

void verify_integrity(Database& db) {
  Statement check = db.prepare("PRAGMA quick_check");
  std::string problems;
  while (check.step()) {
    const std::string line = check.text(0);
    if (line != "ok") problems += (problems.empty() ? "" : "; ") + line;
  }
  if (!problems.empty())
    throw InputError("store '" + db.path() + "': the database file is corrupt (" + problems.substr(0, 300) +
                     ")");
}

}  // namespace

StoreOptions StoreOptions::from_config(const StoreConfig& config) {
  StoreOptions options;
  options.journal = config.wal ? JournalMode::Wal : JournalMode::Rollback;
  options.busy_timeout_ms = config.busy_timeout_ms;
  return options;
}

Store::Store(const std::string& path, StoreOptions options) {
  std::error_code ec;
  const bool existed = std::filesystem::exists(path, ec) && std::filesystem::file_size(path, ec) > 0;
  db_ = std::make_shared<Database>(path, Database::Mode::ReadWriteCreate);
  // Nothing is written before the checks: a foreign, newer or corrupt file stays as it was.
  db_->exec("PRAGMA busy_timeout = " + std::to_string(std::max(0, options.busy_timeout_ms)));
  check_schema(*db_, /*allow_older=*/true);
  if (existed && options.verify_existing) verify_integrity(*db_);
  configure(options);
  migrate(*db_);
}

void Store::configure(const StoreOptions& options) {
  const std::string wanted = options.journal == JournalMode::Wal ? "wal" : "delete";
  Statement mode = db_->prepare("PRAGMA journal_mode = " + wanted);
  const std::string got = mode.step() ? mode.text(0) : "";
  if (got != wanted)
    spdlog::warn("store '{}': journal_mode {} requested, SQLite kept {}", db_->path(), wanted, got);
  // WAL + NORMAL survives a crash of the process (not of the machine) without losing a commit; the rollback
  // journal needs FULL for the same guarantee.
  db_->exec(options.journal == JournalMode::Wal ? "PRAGMA synchronous = NORMAL"
                                                : "PRAGMA synchronous = FULL");
  db_->exec("PRAGMA foreign_keys = ON");
}

StoreReader Store::reader() const {
  return StoreReader(db_);
}

Job Store::job(int64_t job_id) const {
  return reader().job(job_id);
}

// ----------------------------------------------------------------------------------------------------------
// Experiments and jobs

int64_t Store::upsert_experiment(const ExperimentInfo& info, bool allow_config_change) {
  if (info.name.empty()) throw ConfigError("experiment: the name must not be empty");
  if (info.config_hash.empty()) throw ConfigError("experiment '" + info.name + "': the config hash is empty");
  Transaction transaction(*db_);
  Statement find = db_->prepare("SELECT id, config_hash FROM experiments WHERE name = ?");
  find.bind_all(info.name);
  const std::string now = utc_now();
  if (!find.step()) {
    db_->prepare(
           "INSERT INTO experiments (name, config_json, config_hash, dataset_fingerprint, code_version, "
           "created_at, "
           "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind_all(info.name, info.config_json, info.config_hash, info.dataset_fingerprint, info.code_version,
                  now, now)
        .run();
    const int64_t id = db_->last_insert_rowid();
    transaction.commit();
    return id;
  }
  const int64_t id = find.int64(0);
  const std::string stored_hash = find.text(1);
  if (stored_hash != info.config_hash && !allow_config_change)
    throw InputError(
        fmt::format("experiment '{}' is already in store '{}' with another configuration (config hash {}…, "
                    "this one {}…); "
                    "choose another experiment name, or allow the config change explicitly",
                    info.name, db_->path(), stored_hash.substr(0, 12), info.config_hash.substr(0, 12)));
  db_->prepare(
         "UPDATE experiments SET config_json = ?, config_hash = ?, dataset_fingerprint = ?, code_version = "
         "?, "
         "updated_at = ? WHERE id = ?")
      .bind_all(info.config_json, info.config_hash, info.dataset_fingerprint, info.code_version, now, id)
      .run();
  transaction.commit();
  return id;
}

void Store::record_splits(int64_t experiment_id, const std::vector<SplitEntry>& splits) {
  Transaction transaction(*db_);
  db_->prepare("DELETE FROM splits WHERE experiment_id = ?").bind_all(experiment_id).run();
  Statement insert =
      db_->prepare("INSERT INTO splits (experiment_id, fold, case_id, role) VALUES (?, ?, ?, ?)");
  for (const SplitEntry& split : splits) {
    if (split.role != "train" && split.role != "val")
      throw ConfigError("split of case '" + split.case_id + "': role must be train or val, got '" +
                        split.role + "'");
    insert.reset();
    insert.bind_all(experiment_id, split.fold, split.case_id, split.role).run();
  }
  transaction.commit();
}

std::pair<int64_t, bool> Store::insert_training_job(const std::string& key, int64_t experiment_id,
                                                    const std::string& config_hash, int fold, double sparsity,
                                                    uint64_t seed, int max_attempts, const std::string& now) {
  db_->cached(
         "INSERT OR IGNORE INTO jobs (key, experiment_id, config_hash, fold, sparsity, seed, max_attempts, "
         "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
      .bind_all(key, experiment_id, config_hash, fold, sparsity, seed, max_attempts, now)
      .run();
  const bool created = db_->changes() > 0;
  Statement& find = db_->cached("SELECT id FROM jobs WHERE key = ?");
  find.bind_all(key);
  find.step();
  const int64_t id = find.int64(0);
  find.reset();
  return {id, created};
}

EnumerateResult Store::enumerate_jobs(int64_t experiment_id, const JobGrid& grid) {
  if (grid.max_attempts < 1)
    throw ConfigError("sweep.max_attempts: expected at least 1, got " + std::to_string(grid.max_attempts));
  Transaction transaction(*db_);
  Statement experiment = db_->prepare("SELECT name, config_hash FROM experiments WHERE id = ?");
  experiment.bind_all(experiment_id);
  if (!experiment.step()) throw StoreError("no experiment with id " + std::to_string(experiment_id));
  const std::string name = experiment.text(0);
  const std::string config_hash = experiment.text(1);
  Statement find = db_->prepare("SELECT id FROM jobs WHERE key = ?");
  EnumerateResult result;
  const std::string now = utc_now();
  for (double sparsity : grid.sparsities)
    for (int fold : grid.folds)
      for (uint64_t seed : grid.seeds) {
        const auto [id, created] =
            insert_training_job(job_key(name, fold, sparsity, seed, config_hash), experiment_id, config_hash,
                                fold, sparsity, seed, grid.max_attempts, now);
        result.created += created ? 1 : 0;
        result.job_ids.push_back(id);
      }
  if (grid.test_ensembles) {
    Statement insert_ensemble = db_->prepare(
        "INSERT OR IGNORE INTO jobs (key, experiment_id, config_hash, kind, fold, folds, sparsity, seed, "
        "max_attempts, created_at) VALUES (?, ?, ?, 'ensemble', -1, ?, ?, ?, ?, ?)");
    std::vector<int> folds = grid.folds;
    std::sort(folds.begin(), folds.end());
    for (double sparsity : grid.sparsities)
      for (uint64_t seed : grid.seeds) {
        const std::string key = ensemble_job_key(name, sparsity, seed, folds, config_hash);
        insert_ensemble.reset();
        insert_ensemble
            .bind_all(key, experiment_id, config_hash, nlohmann::json(folds).dump(), sparsity, seed,
                      grid.max_attempts, now)
            .run();
        result.created += db_->changes();
        find.reset();
        find.bind_all(key);
        find.step();
        result.job_ids.push_back(find.int64(0));
      }
  }
  transaction.commit();
  return result;
}

int64_t Store::recover_interrupted() {
  Transaction transaction(*db_);
  Statement running =
      db_->prepare("SELECT id, coalesce(heartbeat_at, started_at, '') FROM jobs WHERE status = 'running'");
  std::vector<std::pair<int64_t, std::string>> jobs;
  while (running.step()) jobs.emplace_back(running.int64(0), running.text(1));
  const std::string now = utc_now();
  for (const auto& [id, last_seen] : jobs) {
    db_->cached("UPDATE jobs SET status = 'interrupted' WHERE id = ?").bind_all(id).run();
    insert_event(id, EventKind::Interrupted,
                 "the run ended while the job was running (last heartbeat " +
                     (last_seen.empty() ? "never" : last_seen) + "); it resumes from its last checkpoint",
                 now);
  }
  transaction.commit();
  return static_cast<int64_t>(jobs.size());
}

std::optional<ClaimedJob> Store::claim_next(int64_t experiment_id, int worker_group,
                                            const std::string& node) {
  Transaction transaction(*db_);
  Statement next = db_->prepare(
      "SELECT id, status FROM jobs j WHERE (?1 = 0 OR experiment_id = ?1) AND "
      "(status IN ('pending', 'interrupted', 'preempted') OR (status = 'failed' AND attempts < "
      "max_attempts)) AND "
      // An ensemble job waits until every fold of its cell has its model.
      "(kind = 'train' OR NOT EXISTS (SELECT 1 FROM jobs t WHERE t.experiment_id = j.experiment_id AND "
      "t.kind = 'train' AND t.sparsity = j.sparsity AND t.seed = j.seed AND t.status != 'done' AND "
      "t.fold IN (SELECT value FROM json_each(j.folds)))) "
      "ORDER BY status = 'failed', id LIMIT 1");
  next.bind_all(experiment_id);
  if (!next.step()) return std::nullopt;
  const int64_t id = next.int64(0);
  const JobStatus previous = parse_job_status(next.text(1));
  const std::string now = utc_now();
  // Compare-and-set: the row must still be in the state we read.
  db_->prepare(
         "UPDATE jobs SET status = 'running', worker_group = ?, node = ?, started_at = ?, heartbeat_at = ?, "
         "finished_at = NULL WHERE id = ? AND status = ?")
      .bind_all(worker_group, node, now, now, id, to_string(previous))
      .run();
  if (db_->changes() != 1)
    throw StoreError(fmt::format("store '{}': job {} changed while being claimed", path(), id));
  ClaimedJob claimed;
  claimed.previous_status = previous;
  claimed.job = reader().job(id);
  std::string message = fmt::format("group {}{}", worker_group, node.empty() ? "" : " on " + node);
  if (claimed.job.checkpoint)
    message += fmt::format(", from checkpoint {} (iteration {})", claimed.job.checkpoint->path,
                           claimed.job.checkpoint->iteration);
  if (previous == JobStatus::Failed)
    message += fmt::format(", attempt {} of {}", claimed.job.attempts + 1, claimed.job.max_attempts);
  insert_event(id, claim_event(previous), message, now);
  Statement config = db_->prepare("SELECT config_json FROM experiments WHERE id = ?");
  config.bind_all(claimed.job.experiment_id);
  if (config.step()) claimed.config_json = config.text(0);
  Statement split =
      db_->prepare("SELECT case_id, role FROM splits WHERE experiment_id = ? AND fold = ? ORDER BY case_id");
  split.bind_all(claimed.job.experiment_id, claimed.job.fold);
  while (split.step())
    (split.text(1) == "train" ? claimed.train_cases : claimed.val_cases).push_back(split.text(0));
  transaction.commit();
  return claimed;
}

// ----------------------------------------------------------------------------------------------------------
// Transitions of a running job

JobStatus Store::status_of(int64_t job_id) {
  Statement& query = db_->cached("SELECT status FROM jobs WHERE id = ?");
  query.bind_all(job_id);
  if (!query.step()) throw StoreError(fmt::format("store '{}': no job with id {}", path(), job_id));
  const JobStatus status = parse_job_status(query.text(0));
  query.reset();  // an unfinished SELECT would keep a read transaction open
  return status;
}

void Store::transition(int64_t job_id, const char* sql_set, EventKind kind, const std::string& message) {
  Transaction transaction(*db_);
  const std::string now = utc_now();
  Statement update =
      db_->prepare(std::string("UPDATE jobs SET ") + sql_set + " WHERE id = ?2 AND status = 'running'");
  update.bind(1, now);
  update.bind(2, job_id);
  update.run();
  if (db_->changes() != 1)
    throw StoreError(fmt::format("store '{}': job {} is {}, not running; cannot mark it {}", path(), job_id,
                                 to_string(status_of(job_id)), to_string(kind)));
  insert_event(job_id, kind, message, now);
  transaction.commit();
}

void Store::mark_running(int64_t job_id, const std::string& node) {
  Statement& update =
      db_->cached("UPDATE jobs SET node = ?, heartbeat_at = ? WHERE id = ? AND status = 'running'");
  update.bind_all(node, utc_now(), job_id).run();
  if (db_->changes() != 1)
    throw StoreError(
        fmt::format("store '{}': job {} is {}, not running", path(), job_id, to_string(status_of(job_id))));
}

void Store::heartbeat(int64_t job_id) {
  Statement& update = db_->cached("UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND status = 'running'");
  update.bind_all(utc_now(), job_id).run();
  if (db_->changes() != 1)
    throw StoreError(
        fmt::format("store '{}': job {} is {}, not running", path(), job_id, to_string(status_of(job_id))));
}

void Store::mark_checkpointed(int64_t job_id, const Checkpoint& checkpoint) {
  Transaction transaction(*db_);
  const std::string now = utc_now();
  Statement update = db_->prepare(
      "UPDATE jobs SET checkpoint_path = ?, checkpoint_sha256 = ?, checkpoint_iteration = ?, heartbeat_at = "
      "? "
      "WHERE id = ? AND status = 'running'");
  update.bind_all(checkpoint.path, checkpoint.sha256, checkpoint.iteration, now, job_id).run();
  if (db_->changes() != 1)
    throw StoreError(fmt::format("store '{}': job {} is {}, not running; cannot record a checkpoint", path(),
                                 job_id, to_string(status_of(job_id))));
  insert_event(
      job_id, EventKind::Checkpointed,
      fmt::format("{} at iteration {} (sha256 {})", checkpoint.path, checkpoint.iteration, checkpoint.sha256),
      now);
  transaction.commit();
}

void Store::mark_preempted(int64_t job_id, const std::string& message) {
  transition(job_id, "status = 'preempted', finished_at = ?1", EventKind::Preempted,
             message.empty() ? "stopped by a signal; no attempt used" : message);
}

FailureOutcome Store::mark_failed(int64_t job_id, const std::string& reason, bool permanent) {
  Transaction transaction(*db_);
  const std::string now = utc_now();
  db_->prepare(
         "UPDATE jobs SET status = 'failed', attempts = CASE WHEN ? THEN max(max_attempts, attempts + 1) "
         "ELSE attempts + 1 END, error = ?, finished_at = ? WHERE id = ? AND status = 'running'")
      .bind_all(permanent ? 1 : 0, reason, now, job_id)
      .run();
  if (db_->changes() != 1)
    throw StoreError(fmt::format("store '{}': job {} is {}, not running; cannot mark it failed", path(),
                                 job_id, to_string(status_of(job_id))));
  Statement attempts = db_->prepare("SELECT attempts, max_attempts FROM jobs WHERE id = ?");
  attempts.bind_all(job_id).step();
  FailureOutcome outcome{static_cast<int>(attempts.int64(0)), static_cast<int>(attempts.int64(1)), false};
  outcome.will_retry = outcome.attempts < outcome.max_attempts;
  insert_event(job_id, EventKind::Failed,
               fmt::format("attempt {} of {}: {}{}", outcome.attempts, outcome.max_attempts, reason,
                           outcome.will_retry ? " (will retry)" : " (no attempts left: failed for good)"),
               now);
  transaction.commit();
  return outcome;
}

void Store::mark_done(int64_t job_id) {
  transition(job_id, "status = 'done', finished_at = ?1, error = NULL", EventKind::Done, "");
}

// ----------------------------------------------------------------------------------------------------------
// Per-job records

void Store::insert_event(int64_t job_id, EventKind kind, const std::string& message,
                         const std::string& time) {
  db_->cached("INSERT INTO events (job_id, time, kind, message) VALUES (?, ?, ?, ?)")
      .bind_all(job_id, time, to_string(kind), message)
      .run();
}

void Store::add_event(int64_t job_id, EventKind kind, const std::string& message) {
  insert_event(job_id, kind, message, utc_now());
}

void Store::insert_epoch(int64_t job_id, const EpochRecord& e) {
  db_->cached(
         "INSERT OR REPLACE INTO epochs (job_id, epoch, train_loss, val_loss, pseudo_dice, mean_pseudo_dice, "
         "learning_rate, seconds, loader_wait_fraction) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind_all(job_id, e.epoch, e.train_loss, e.val_loss, json_array(e.pseudo_dice), e.mean_pseudo_dice,
                e.learning_rate, e.seconds, e.loader_wait_fraction)
      .run();
}

void Store::record_epoch(int64_t job_id, const EpochRecord& epoch) {
  Transaction transaction(*db_);
  insert_epoch(job_id, epoch);
  db_->cached("UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND status = 'running'")
      .bind_all(utc_now(), job_id)
      .run();
  transaction.commit();
}

void Store::record_epochs(int64_t job_id, const std::vector<EpochRecord>& epochs) {
  Transaction transaction(*db_);
  for (const EpochRecord& epoch : epochs) insert_epoch(job_id, epoch);
  transaction.commit();
}

void Store::insert_case_metrics(int64_t job_id, const std::vector<CaseMetricRow>& rows) {
  db_->cached("DELETE FROM case_metrics WHERE job_id = ?").bind_all(job_id).run();
  // Positions keep the classes in the order the evaluation listed them (the table's column order).
  std::map<std::string, int64_t> positions;
  for (const CaseMetricRow& row : rows)
    positions.emplace(row.structure, static_cast<int64_t>(positions.size()));
  Statement& insert = db_->cached(
      "INSERT OR REPLACE INTO case_metrics (job_id, case_id, structure, position, is_region, dice, nsd, "
      "nsd_tolerance_mm, hd95, hd_variant, split, postprocessed, nsd_fixed_spacing, hd95_pooled) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (const CaseMetricRow& r : rows) {
    insert.reset();
    insert
        .bind_all(job_id, r.case_id, r.structure, positions.at(r.structure), r.is_region ? 1 : 0, r.dice,
                  r.nsd, r.nsd_tolerance_mm, r.hd95, r.hd_variant, to_string(r.split),
                  r.postprocessed ? 1 : 0, r.nsd_fixed_spacing, r.hd95_pooled)
        .run();
  }
}

void Store::record_case_metrics(int64_t job_id, const std::vector<CaseMetricRow>& rows) {
  Transaction transaction(*db_);
  insert_case_metrics(job_id, rows);
  transaction.commit();
}

void Store::insert_masks(int64_t job_id, const MaskSnapshot& masks) {
  if (masks.kind == MaskKind::Final)
    db_->cached("DELETE FROM masks WHERE job_id = ? AND kind = 'final'").bind_all(job_id).run();
  const std::string blob = masks.topology.serialize();
  db_->cached(
         "INSERT OR REPLACE INTO masks (job_id, step, kind, topology_hash, active, total, topology) "
         "VALUES (?, ?, ?, ?, ?, ?, ?)")
      .bind_all(job_id, masks.step, to_string(masks.kind), masks.topology.hash_hex(), masks.topology.active(),
                masks.topology.total(), Blob{blob})
      .run();
}

void Store::record_masks(int64_t job_id, const MaskSnapshot& masks) {
  Transaction transaction(*db_);
  insert_masks(job_id, masks);
  transaction.commit();
}

void Store::insert_result(int64_t job_id, const ResultSummary& s) {
  db_->cached(
         "INSERT OR REPLACE INTO results (job_id, mdice, mnsd, mhd95, params, flops, patch, metrics_json, "
         "created_at, split, postprocessing, cases_total, cases_scored, ms_per_patch_dense, "
         "ms_per_patch_sparse) "
         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind_all(job_id, s.mean_dice, s.mean_nsd, s.mean_hd95, s.params, s.flops,
                nlohmann::json(s.patch).dump(), s.metrics_json.empty() ? std::string("{}") : s.metrics_json,
                utc_now(), to_string(s.split), s.postprocessing, s.cases_total, s.cases_scored,
                s.ms_per_patch_dense, s.ms_per_patch_sparse)
      .run();
}

void Store::record_result(int64_t job_id, const JobResult& result) {
  Transaction transaction(*db_);
  const JobStatus status = status_of(job_id);
  if (status != JobStatus::Running && status != JobStatus::Done)
    throw StoreError(fmt::format("store '{}': job {} is {}; only a running job can record a result", path(),
                                 job_id, to_string(status)));
  insert_result(job_id, result.summary);
  insert_case_metrics(job_id, result.case_metrics);
  if (result.final_masks) insert_masks(job_id, *result.final_masks);
  if (status == JobStatus::Running) {
    const std::string now = utc_now();
    db_->cached(
           "UPDATE jobs SET status = 'done', finished_at = ?, heartbeat_at = ?, error = NULL WHERE id = ?")
        .bind_all(now, now, job_id)
        .run();
    insert_event(job_id, EventKind::Done, fmt::format("mDice {:.4f}", result.summary.mean_dice), now);
  }
  transaction.commit();
}

// ----------------------------------------------------------------------------------------------------------
// Result-bundle import

std::optional<int64_t> Store::imported_job(const std::string& bundle_sha256) {
  Statement seen = db_->prepare("SELECT job_id FROM imports WHERE bundle_sha256 = ?");
  seen.bind_all(bundle_sha256);
  if (!seen.step()) return std::nullopt;
  return seen.int64(0);
}

void Store::record_import(const std::string& bundle_sha256, int64_t job_id, const std::string& source) {
  db_->prepare("INSERT INTO imports (bundle_sha256, job_id, source, imported_at) VALUES (?, ?, ?, ?)")
      .bind_all(bundle_sha256, job_id, source, utc_now())
      .run();
}

std::optional<std::pair<int64_t, std::string>> Store::find_experiment(const std::string& name) {
  Statement find = db_->prepare("SELECT id, config_hash FROM experiments WHERE name = ?");
  find.bind_all(name);
  if (!find.step()) return std::nullopt;
  return std::make_pair(find.int64(0), find.text(1));
}

int64_t Store::add_job(int64_t experiment_id, const std::string& config_hash, int fold, double sparsity,
                       uint64_t seed, int max_attempts) {
  Transaction transaction(*db_);
  Statement experiment = db_->prepare("SELECT name FROM experiments WHERE id = ?");
  experiment.bind_all(experiment_id);
  if (!experiment.step()) throw StoreError("no experiment with id " + std::to_string(experiment_id));
  const std::string key = job_key(experiment.text(0), fold, sparsity, seed, config_hash);
  const int64_t id =
      insert_training_job(key, experiment_id, config_hash, fold, sparsity, seed, max_attempts, utc_now())
          .first;
  transaction.commit();
  return id;
}

void Store::restore_job_state(int64_t job_id, const RecordedJobState& s) {
  db_->prepare(
         "UPDATE jobs SET status = ?, attempts = ?, max_attempts = ?, node = ?, error = ?, started_at = ?, "
         "finished_at = ?, heartbeat_at = ?, checkpoint_path = ?, checkpoint_sha256 = ?, "
         "checkpoint_iteration = ? WHERE id = ?")
      .bind_all(to_string(s.status), s.attempts, s.max_attempts, s.node,
                s.error.empty() ? std::optional<std::string>() : s.error, s.started_at, s.finished_at,
                s.finished_at, s.checkpoint ? std::optional<std::string>(s.checkpoint->path) : std::nullopt,
                s.checkpoint ? std::optional<std::string>(s.checkpoint->sha256) : std::nullopt,
                s.checkpoint ? std::optional<int64_t>(s.checkpoint->iteration) : std::nullopt, job_id)
      .run();
}

void Store::add_event(int64_t job_id, EventKind kind, const std::string& message, const std::string& time) {
  insert_event(job_id, kind, message, time);
}

}  // namespace e2e
