#include "orchestrator/status_store.hpp"

#include <cmath>

#include "db/reader.hpp"

namespace e2e {

nlohmann::json snapshot_from_summary(const StatusSummary& s) {
  const bool have_mean = std::isfinite(s.mean_epoch_seconds) && s.mean_epoch_seconds >= 0;
  nlohmann::json running = nlohmann::json::array();
  for (const JobProgress& p : s.running) {
    const double fraction =
        p.epochs_total > 0 ? static_cast<double>(p.epochs_done) / static_cast<double>(p.epochs_total) : 0.0;
    nlohmann::json job = {
        {"job", p.job.id},
        {"fold", p.job.fold},
        {"sparsity", p.job.sparsity},
        {"seed", p.job.seed},
        {"group", p.job.worker_group ? nlohmann::json(*p.job.worker_group) : nlohmann::json()},
        {"epoch", p.epochs_done},
        {"epochs", p.epochs_total},
        {"progress", fraction},
        {"eta_seconds", have_mean ? nlohmann::json(static_cast<double>(p.epochs_total - p.epochs_done) *
                                                   s.mean_epoch_seconds)
                                  : nlohmann::json()},
        {"last_heartbeat",
         p.job.heartbeat_at.empty() ? nlohmann::json() : nlohmann::json(p.job.heartbeat_at)},
        {"node", p.job.node}};
    if (s.experiment.empty()) job["experiment"] = p.job.experiment;
    running.push_back(std::move(job));
  }
  return {{"source", "store"},
          {"experiment", s.experiment.empty() ? nlohmann::json() : nlohmann::json(s.experiment)},
          {"jobs", s.jobs_by_status},
          {"running", std::move(running)},
          {"eta_seconds", s.eta_seconds ? nlohmann::json(*s.eta_seconds) : nlohmann::json()},
          {"progress", s.progress},
          {"epochs_done", s.epochs_done},
          {"epochs_total", s.epochs_total},
          {"failed_for_good", s.failed_for_good}};
}

nlohmann::json snapshot_from_store(const std::string& path, const std::optional<std::string>& experiment) {
  const StoreReader reader(path);
  nlohmann::json snapshot = snapshot_from_summary(summarize_status(reader, experiment));
  snapshot["store"] = path;
  return snapshot;
}

}  // namespace e2e
