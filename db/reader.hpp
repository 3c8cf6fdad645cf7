// Read-only queries over the experiment store. StoreReader(path) opens the file with SQLITE_OPEN_READONLY:
// it never creates, migrates or writes a file. Every filter value is a bound parameter.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "db/records.hpp"
#include "db/sqlite.hpp"

namespace e2e {

struct ExperimentSummary {
  Experiment experiment;
  std::map<std::string, int64_t> jobs_by_status;  // status name → count
  int64_t jobs = 0;
};

struct JobFilter {
  std::optional<JobStatus> status;
  std::optional<std::string> experiment;  // an unknown name is an InputError ("no such experiment")
};

struct MaskRecord {
  int64_t id = 0;
  int64_t job_id = 0;
  int64_t step = 0;
  MaskKind kind = MaskKind::Final;
  std::string topology_hash;
  int64_t active = 0;
  int64_t total = 0;
};

// One finished job's numbers, the input of the report table.
struct JobOutcome {
  int64_t job_id = 0;
  int fold = 0;  // -1: a test-set ensemble of several folds
  double sparsity = 0;
  uint64_t seed = 0;
  ResultSummary summary;
  std::vector<std::pair<std::string, double>> class_dice;  // per class: mean over cases (NaN skipped)
};

class StoreReader {
 public:
  // Throws InputError naming the file when it is missing, not SQLite, corrupt, not an e2e store, or from
  // another schema version. The file is left byte-identical.
  explicit StoreReader(const std::string& path);
  explicit StoreReader(std::shared_ptr<Database> db) : db_(std::move(db)) {}

  const std::string& path() const { return db_->path(); }
  Database& database() const { return *db_; }

  std::vector<ExperimentSummary> experiments() const;
  Experiment experiment(const std::string& name) const;  // InputError "no such experiment"
  Experiment experiment(int64_t id) const;

  std::vector<Job> jobs(const JobFilter& filter = {}) const;
  Job job(int64_t id) const;
  // A job id ("12") or a unique prefix (8+ hex digits) of its key.
  Job find_job(const std::string& id_or_key) const;

  std::vector<Event> events(int64_t job_id) const;
  std::vector<EpochRecord> epochs(int64_t job_id) const;
  std::vector<CaseMetricRow> case_metrics(int64_t job_id) const;
  std::optional<ResultSummary> result(int64_t job_id) const;
  std::vector<MaskRecord> masks(int64_t job_id) const;
  Topology topology(int64_t mask_id) const;
  // The job's final masks, else its latest periodic ones; nullopt when it has none.
  std::optional<MaskRecord> latest_masks(int64_t job_id) const;
  std::vector<SplitEntry> splits(int64_t experiment_id) const;

  // Every done job of the experiment that has a result, in (sparsity, fold, seed) order.
  std::vector<JobOutcome> outcomes(int64_t experiment_id, Split split = Split::Cv) const;
  // Whether any finished job of the experiment has a result on `split`.
  bool has_results(int64_t experiment_id, Split split) const;

 private:
  std::shared_ptr<Database> db_;
};

}  // namespace e2e
