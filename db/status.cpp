#include "db/status.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/json_number.hpp"

namespace e2e {

namespace {

int64_t planned_epochs(const std::string& config_json) {
  const nlohmann::json config = nlohmann::json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  if (config.is_object() && config.contains("training") && config["training"].contains("epochs") &&
      config["training"]["epochs"].is_number_integer())
    return std::max<int64_t>(0, config["training"]["epochs"].get<int64_t>());
  return 0;
}

std::string duration_text(double seconds) {
  const auto total = static_cast<int64_t>(std::llround(seconds));
  if (total >= 3600) return fmt::format("{}h{:02d}m", total / 3600, (total % 3600) / 60);
  if (total >= 60) return fmt::format("{}m{:02d}s", total / 60, total % 60);
  return fmt::format("{}s", total);
}

std::string bar(double fraction, int width = 30) {
  const int filled = static_cast<int>(std::lround(std::clamp(fraction, 0.0, 1.0) * width));
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

}  // namespace

StatusSummary summarize_status(const StoreReader& reader, const std::optional<std::string>& experiment) {
  StatusSummary s;
  if (experiment) s.experiment = *experiment;
  for (const char* name : {"pending", "running", "done", "failed", "preempted", "interrupted"})
    s.jobs_by_status[name] = 0;
  std::map<int64_t, int64_t> epochs_per_experiment;
  Database& db = reader.database();
  Transaction snapshot(db, Transaction::Kind::Deferred);
  Statement count = db.prepare("SELECT count(*) FROM epochs WHERE job_id = ?");
  for (const Job& job : reader.jobs(JobFilter{std::nullopt, experiment})) {
    auto it = epochs_per_experiment.find(job.experiment_id);
    if (it == epochs_per_experiment.end())
      it = epochs_per_experiment
               .emplace(job.experiment_id, planned_epochs(reader.experiment(job.experiment_id).config_json))
               .first;
    JobProgress progress{job, 0, it->second};
    count.reset();
    count.bind_all(job.id);
    if (count.step()) progress.epochs_done = std::min(count.int64(0), progress.epochs_total);
    const bool complete = job.status == JobStatus::Done || job.failed_for_good();
    if (complete) progress.epochs_done = progress.epochs_total;
    ++s.jobs_by_status[to_string(job.status)];
    ++s.jobs;
    s.failed_for_good += job.failed_for_good() ? 1 : 0;
    s.epochs_done += progress.epochs_done;
    s.epochs_total += progress.epochs_total;
    if (job.status == JobStatus::Running) s.running.push_back(progress);
  }
  Statement mean = db.prepare(
      "SELECT avg(seconds) FROM epochs WHERE seconds > 0 AND job_id IN (SELECT j.id FROM jobs j JOIN "
      "experiments e ON "
      "e.id = j.experiment_id WHERE ?1 IS NULL OR e.name = ?1)");
  mean.bind(1, experiment);
  s.mean_epoch_seconds = mean.step() ? mean.real(0) : std::numeric_limits<double>::quiet_NaN();
  s.progress =
      s.epochs_total ? static_cast<double>(s.epochs_done) / static_cast<double>(s.epochs_total) : 0.0;
  if (!std::isnan(s.mean_epoch_seconds)) {
    const double parallel = static_cast<double>(std::max<std::size_t>(1, s.running.size()));
    s.eta_seconds = static_cast<double>(s.epochs_total - s.epochs_done) * s.mean_epoch_seconds / parallel;
  }
  snapshot.commit();
  return s;
}

std::string status_json(const StatusSummary& s) {
  nlohmann::json running = nlohmann::json::array();
  for (const JobProgress& p : s.running)
    running.push_back({{"job", p.job.id},
                       {"experiment", p.job.experiment},
                       {"fold", p.job.fold},
                       {"sparsity", p.job.sparsity},
                       {"seed", p.job.seed},
                       {"node", p.job.node},
                       {"heartbeat_at", p.job.heartbeat_at},
                       {"epochs_done", p.epochs_done},
                       {"epochs_total", p.epochs_total}});
  const nlohmann::json out = {
      {"experiment", s.experiment.empty() ? nlohmann::json() : nlohmann::json(s.experiment)},
      {"jobs", s.jobs},
      {"jobs_by_status", s.jobs_by_status},
      {"failed_for_good", s.failed_for_good},
      {"epochs_done", s.epochs_done},
      {"epochs_total", s.epochs_total},
      {"progress", s.progress},
      {"mean_epoch_seconds", json_number(s.mean_epoch_seconds)},
      {"eta_seconds", s.eta_seconds ? nlohmann::json(*s.eta_seconds) : nlohmann::json()},
      {"running", running}};
  return out.dump(2) + "\n";
}

std::string status_text(const StatusSummary& s) {
  std::string out =
      fmt::format("{}: {} jobs", s.experiment.empty() ? "all experiments" : s.experiment, s.jobs);
  for (const auto& [status, n] : s.jobs_by_status)
    if (n) out += fmt::format(", {} {}", n, status);
  if (s.failed_for_good) out += fmt::format(" ({} failed for good)", s.failed_for_good);
  out += fmt::format("\n{} {:5.1f}%  {}/{} epochs", bar(s.progress), 100 * s.progress, s.epochs_done,
                     s.epochs_total);
  if (s.eta_seconds) out += fmt::format("  ETA {}", duration_text(*s.eta_seconds));
  out += "\n";
  for (const JobProgress& p : s.running) {
    const double fraction =
        p.epochs_total ? static_cast<double>(p.epochs_done) / static_cast<double>(p.epochs_total) : 0;
    out += fmt::format("  job {:>4} fold {} s={} seed {} {} {}/{} {}\n", p.job.id, p.job.fold, p.job.sparsity,
                       p.job.seed, bar(fraction, 20), p.epochs_done, p.epochs_total, p.job.node);
  }
  return out;
}

}  // namespace e2e
