#include "db/reader.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "configs/config.hpp"
#include "db/schema.hpp"

namespace e2e {

namespace {

constexpr const char* kJobColumns =
    "j.id, j.key, j.experiment_id, e.name, j.config_hash, j.fold, j.sparsity, j.seed, j.status, j.attempts, "
    "j.max_attempts, j.worker_group, j.node, j.created_at, j.started_at, j.finished_at, j.heartbeat_at, "
    "j.error, "
    "j.checkpoint_path, j.checkpoint_sha256, j.checkpoint_iteration, j.kind, j.folds";
constexpr const char* kJobFrom = " FROM jobs j JOIN experiments e ON e.id = j.experiment_id";

Job read_job(const Statement& row) {
  Job job;
  job.id = row.int64(0);
  job.key = row.text(1);
  job.experiment_id = row.int64(2);
  job.experiment = row.text(3);
  job.config_hash = row.text(4);
  job.fold = static_cast<int>(row.int64(5));
  job.sparsity = row.real(6);
  job.seed = static_cast<uint64_t>(row.int64(7));
  job.status = parse_job_status(row.text(8));
  job.attempts = static_cast<int>(row.int64(9));
  job.max_attempts = static_cast<int>(row.int64(10));
  if (auto group = row.optional_int64(11)) job.worker_group = static_cast<int>(*group);
  job.node = row.text(12);
  job.created_at = row.text(13);
  job.started_at = row.text(14);
  job.finished_at = row.text(15);
  job.heartbeat_at = row.text(16);
  job.error = row.text(17);
  if (!row.is_null(18)) job.checkpoint = Checkpoint{row.text(18), row.text(19), row.int64(20)};
  job.kind = parse_job_kind(row.text(21));
  const nlohmann::json folds = nlohmann::json::parse(row.text(22), nullptr, false);
  if (folds.is_array())
    for (const nlohmann::json& f : folds)
      if (f.is_number_integer()) job.folds.push_back(f.get<int>());
  return job;
}

Experiment read_experiment(const Statement& row) {
  Experiment e;
  e.id = row.int64(0);
  e.name = row.text(1);
  e.config_json = row.text(2);
  e.config_hash = row.text(3);
  e.dataset_fingerprint = row.text(4);
  e.code_version = row.text(5);
  e.created_at = row.text(6);
  e.updated_at = row.text(7);
  return e;
}

constexpr const char* kExperimentSelect =
    "SELECT id, name, config_json, config_hash, dataset_fingerprint, code_version, created_at, updated_at "
    "FROM experiments";

std::vector<double> parse_number_array(const std::string& text) {
  std::vector<double> out;
  const nlohmann::json values = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!values.is_array()) return out;
  for (const auto& v : values)
    out.push_back(v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN());
  return out;
}

ResultSummary read_result(const Statement& row, int first) {
  ResultSummary s;
  s.mean_dice = row.real(first);
  s.mean_nsd = row.real(first + 1);
  s.mean_hd95 = row.real(first + 2);
  s.params = row.int64(first + 3);
  s.flops = row.real(first + 4);
  const nlohmann::json patch = nlohmann::json::parse(row.text(first + 5), nullptr, false);
  if (patch.is_array() && patch.size() == 3)
    for (int k = 0; k < 3; ++k) s.patch[k] = patch[k].is_number_integer() ? patch[k].get<int64_t>() : 0;
  s.metrics_json = row.text(first + 6);
  s.split = parse_split(row.text(first + 7));
  s.postprocessing = row.text(first + 8);
  s.cases_total = row.int64(first + 9);
  s.cases_scored = row.int64(first + 10);
  s.ms_per_patch_dense = row.real(first + 11);
  s.ms_per_patch_sparse = row.real(first + 12);
  return s;
}

bool all_digits(const std::string& text) {
  if (text.empty() || text.size() > 18) return false;
  for (char c : text)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

StoreReader::StoreReader(const std::string& path)
    : db_(std::make_shared<Database>(path, Database::Mode::ReadOnly)) {
  check_schema(*db_, /*allow_older=*/false);
}

// ----------------------------------------------------------------------------------------------------------
// Experiments

std::vector<ExperimentSummary> StoreReader::experiments() const {
  std::vector<ExperimentSummary> out;
  Statement list = db_->prepare(std::string(kExperimentSelect) + " ORDER BY id");
  while (list.step()) out.push_back({read_experiment(list), {}, 0});
  Statement counts =
      db_->prepare("SELECT status, count(*) FROM jobs WHERE experiment_id = ? GROUP BY status");
  for (ExperimentSummary& summary : out) {
    counts.reset();
    counts.bind_all(summary.experiment.id);
    while (counts.step()) {
      summary.jobs_by_status[counts.text(0)] = counts.int64(1);
      summary.jobs += counts.int64(1);
    }
  }
  return out;
}

Experiment StoreReader::experiment(const std::string& name) const {
  Statement find = db_->prepare(std::string(kExperimentSelect) + " WHERE name = ?");
  find.bind_all(name);
  if (find.step()) return read_experiment(find);
  std::string known;
  Statement names = db_->prepare("SELECT name FROM experiments ORDER BY id");
  while (names.step()) known += (known.empty() ? "" : ", ") + names.text(0);
  throw InputError(fmt::format("no such experiment '{}' in store '{}' (experiments: {})", name, path(),
                               known.empty() ? "none yet" : known));
}

Experiment StoreReader::experiment(int64_t id) const {
  Statement find = db_->prepare(std::string(kExperimentSelect) + " WHERE id = ?");
  find.bind_all(id);
  if (!find.step()) throw InputError(fmt::format("no experiment with id {} in store '{}'", id, path()));
  return read_experiment(find);
}

std::vector<SplitEntry> StoreReader::splits(int64_t experiment_id) const {
  std::vector<SplitEntry> out;
  Statement query = db_->prepare(
      "SELECT fold, case_id, role FROM splits WHERE experiment_id = ? ORDER BY fold, role, case_id");
  query.bind_all(experiment_id);
  while (query.step()) out.push_back({static_cast<int>(query.int64(0)), query.text(1), query.text(2)});
  return out;
}

// ----------------------------------------------------------------------------------------------------------
// Jobs

std::vector<Job> StoreReader::jobs(const JobFilter& filter) const {
  int64_t experiment_id = 0;
  if (filter.experiment) experiment_id = experiment(*filter.experiment).id;
  Statement query = db_->prepare(std::string("SELECT ") + kJobColumns + kJobFrom +
                                 " WHERE (?1 = 0 OR j.experiment_id = ?1) AND (?2 IS NULL OR j.status = ?2)"
                                 " ORDER BY j.experiment_id, j.sparsity, j.fold, j.seed, j.id");
  query.bind(1, experiment_id);
  query.bind(2, filter.status ? std::optional<std::string>(to_string(*filter.status)) : std::nullopt);
  std::vector<Job> out;
  while (query.step()) out.push_back(read_job(query));
  return out;
}

Job StoreReader::job(int64_t id) const {
  Statement query = db_->prepare(std::string("SELECT ") + kJobColumns + kJobFrom + " WHERE j.id = ?");
  query.bind_all(id);
  if (!query.step()) throw InputError(fmt::format("no such job {} in store '{}'", id, path()));
  return read_job(query);
}

Job StoreReader::find_job(const std::string& id_or_key) const {
  if (all_digits(id_or_key)) return job(std::stoll(id_or_key));
  if (id_or_key.size() < 8)
    throw InputError(
        fmt::format("no such job '{}': give a job id or at least 8 digits of its key", id_or_key));
  Statement query = db_->prepare(std::string("SELECT ") + kJobColumns + kJobFrom +
                                 " WHERE substr(j.key, 1, length(?1)) = lower(?1) LIMIT 2");
  query.bind_all(id_or_key);
  if (!query.step()) throw InputError(fmt::format("no such job '{}' in store '{}'", id_or_key, path()));
  Job found = read_job(query);
  if (query.step())
    throw InputError(fmt::format("job key prefix '{}' is ambiguous; give more digits", id_or_key));
  return found;
}

std::vector<Event> StoreReader::events(int64_t job_id) const {
  std::vector<Event> out;
  Statement query =
      db_->prepare("SELECT id, job_id, time, kind, message FROM events WHERE job_id = ? ORDER BY id");
  query.bind_all(job_id);
  while (query.step())
    out.push_back(
        {query.int64(0), query.int64(1), query.text(2), parse_event_kind(query.text(3)), query.text(4)});
  return out;
}

// ----------------------------------------------------------------------------------------------------------
// Per-job records

std::vector<EpochRecord> StoreReader::epochs(int64_t job_id) const {
  std::vector<EpochRecord> out;
  Statement query = db_->prepare(
      "SELECT epoch, train_loss, val_loss, pseudo_dice, mean_pseudo_dice, learning_rate, seconds, "
      "loader_wait_fraction FROM epochs WHERE job_id = ? ORDER BY epoch");
  query.bind_all(job_id);
  while (query.step()) {
    EpochRecord e;
    e.epoch = query.int64(0);
    e.train_loss = query.real(1);
    e.val_loss = query.real(2);
    e.pseudo_dice = parse_number_array(query.text(3));
    e.mean_pseudo_dice = query.real(4);
    e.learning_rate = query.real(5);
    e.seconds = query.real(6);
    e.loader_wait_fraction = query.real(7);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<CaseMetricRow> StoreReader::case_metrics(int64_t job_id) const {
  std::vector<CaseMetricRow> out;
  Statement query = db_->prepare(
      "SELECT case_id, structure, is_region, dice, nsd, nsd_tolerance_mm, hd95, hd_variant, split, "
      "postprocessed, nsd_fixed_spacing, hd95_pooled FROM case_metrics WHERE job_id = ? "
      "ORDER BY postprocessed, case_id, position");
  query.bind_all(job_id);
  while (query.step()) {
    CaseMetricRow row{query.text(0), query.text(1), query.int64(2) != 0, query.real(3),
                      query.real(4), query.real(5), query.real(6),       query.text(7)};
    row.split = parse_split(query.text(8));
    row.postprocessed = query.int64(9) != 0;
    row.nsd_fixed_spacing = query.real(10);
    row.hd95_pooled = query.real(11);
    out.push_back(std::move(row));
  }
  return out;
}

std::optional<ResultSummary> StoreReader::result(int64_t job_id) const {
  Statement query = db_->prepare(
      "SELECT mdice, mnsd, mhd95, params, flops, patch, metrics_json, split, postprocessing, cases_total, "
      "cases_scored, ms_per_patch_dense, ms_per_patch_sparse FROM results WHERE job_id = ?");
  query.bind_all(job_id);
  if (!query.step()) return std::nullopt;
  return read_result(query, 0);
}

std::vector<MaskRecord> StoreReader::masks(int64_t job_id) const {
  std::vector<MaskRecord> out;
  Statement query = db_->prepare(
      "SELECT id, job_id, step, kind, topology_hash, active, total FROM masks WHERE job_id = ? ORDER BY "
      "kind, step");
  query.bind_all(job_id);
  while (query.step())
    out.push_back({query.int64(0), query.int64(1), query.int64(2), parse_mask_kind(query.text(3)),
                   query.text(4), query.int64(5), query.int64(6)});
  return out;
}

std::optional<MaskRecord> StoreReader::latest_masks(int64_t job_id) const {
  std::optional<MaskRecord> latest;
  for (const MaskRecord& m : masks(job_id)) {
    if (m.kind == MaskKind::Final) return m;
    if (!latest || m.step > latest->step) latest = m;
  }
  return latest;
}

Topology StoreReader::topology(int64_t mask_id) const {
  Statement query = db_->prepare("SELECT topology FROM masks WHERE id = ?");
  query.bind_all(mask_id);
  if (!query.step()) throw InputError(fmt::format("no masks with id {} in store '{}'", mask_id, path()));
  try {
    return Topology::deserialize(query.blob(0));
  } catch (const std::invalid_argument& e) {
    throw InputError(fmt::format("store '{}': masks {}: {}", path(), mask_id, e.what()));
  }
}

std::vector<JobOutcome> StoreReader::outcomes(int64_t experiment_id, Split split) const {
  std::vector<JobOutcome> out;
  Statement query = db_->prepare(
      "SELECT j.id, j.fold, j.sparsity, j.seed, r.mdice, r.mnsd, r.mhd95, r.params, r.flops, r.patch, "
      "r.metrics_json, r.split, r.postprocessing, r.cases_total, r.cases_scored, r.ms_per_patch_dense, "
      "r.ms_per_patch_sparse FROM jobs j JOIN results r ON r.job_id = j.id WHERE j.experiment_id = ? AND "
      "j.status = 'done' AND r.split = ? "
      "ORDER BY j.sparsity, j.fold, j.seed, j.id");
  query.bind_all(experiment_id, to_string(split));
  while (query.step()) {
    JobOutcome o;
    o.job_id = query.int64(0);
    o.fold = static_cast<int>(query.int64(1));
    o.sparsity = query.real(2);
    o.seed = static_cast<uint64_t>(query.int64(3));
    o.summary = read_result(query, 4);
    out.push_back(std::move(o));
  }
  // SQL avg() skips NULLs, which is where NaN (a class absent from a case) was stored. Test results keep
  // their metrics with and without post-processing: the table reports the post-processed ones.
  Statement classes = db_->prepare(
      "SELECT structure, avg(dice) FROM case_metrics WHERE job_id = ?1 AND is_region = 0 AND postprocessed = "
      "(SELECT coalesce(max(postprocessed), 0) FROM case_metrics WHERE job_id = ?1) GROUP BY structure "
      "ORDER BY min(position)");
  for (JobOutcome& o : out) {
    classes.reset();
    classes.bind_all(o.job_id);
    while (classes.step()) o.class_dice.emplace_back(classes.text(0), classes.real(1));
  }
  return out;
}

bool StoreReader::has_results(int64_t experiment_id, Split split) const {
  Statement query = db_->prepare(
      "SELECT 1 FROM jobs j JOIN results r ON r.job_id = j.id WHERE j.experiment_id = ? AND j.status = "
      "'done' "
      "AND r.split = ? LIMIT 1");
  query.bind_all(experiment_id, to_string(split));
  return query.step();
}

}  // namespace e2e
