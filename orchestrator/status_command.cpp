// e2e status: progress of a sweep, live from the coordinator's status endpoint (--url) or from the store
// (--db, opened read-only). Both print the same view: jobs by state, the ETA, a progress bar per running job.
// Exit codes: 0 ok, 1 unreachable endpoint / failed request, 2 bad usage, a malformed URL, an unusable store.
#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/errors.hpp"
#include "orchestrator/commands.hpp"
#include "orchestrator/status_client.hpp"
#include "orchestrator/status_store.hpp"

namespace e2e {

namespace {

struct StatusOptions {
  std::string url;
  std::string db;
  std::string experiment;
  std::string format = "text";
  double timeout_seconds = 5.0;
};

void run_status_command(const StatusOptions& o) {
  if (o.url.empty() == o.db.empty()) throw ConfigError("e2e status: give exactly one of --url and --db");
  if (!(std::isfinite(o.timeout_seconds) && o.timeout_seconds > 0 && o.timeout_seconds <= 3600))
    throw ConfigError("--timeout: expected seconds in (0, 3600]");
  nlohmann::json snapshot;
  if (!o.url.empty()) {
    if (!o.experiment.empty())
      throw ConfigError("--experiment: only with --db (the endpoint serves its sweep)");
    const auto timeout = std::chrono::milliseconds(std::llround(o.timeout_seconds * 1000));
    snapshot = fetch_status(o.url, timeout);
  } else {
    snapshot = snapshot_from_store(
        o.db, o.experiment.empty() ? std::nullopt : std::optional<std::string>(o.experiment));
  }
  if (o.format == "json")
    std::cout << snapshot.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  else
    std::cout << render_status_text(snapshot);
  std::cout << std::flush;
}

}  // namespace

void add_status_command(CLI::App& app) {
  auto options = std::make_shared<StatusOptions>();
  StatusOptions& o = *options;
  CLI::App* cmd = app.add_subcommand(
      "status", "Progress of a sweep: jobs by state, a progress bar per running job, the ETA");
  CLI::Option* url = cmd->add_option(
      "--url", o.url,
      "the coordinator's status endpoint, e.g. http://127.0.0.1:8787 (e2e sweep --status-port)");
  CLI::Option* db = cmd->add_option("--db", o.db, "the experiment store (opened read-only)");
  url->excludes(db);
  cmd->add_option("--experiment", o.experiment, "with --db: only this experiment");
  cmd->add_option("--format", o.format, "text or json (the snapshot as served by GET /status)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_option("--timeout", o.timeout_seconds, "seconds to wait for the endpoint")->capture_default_str();
  cmd->footer(
      "Examples:\n"
      "  e2e status --url http://127.0.0.1:8787\n"
      "  e2e status --db results/e2e.db --experiment amos --format json\n"
      "On a cluster the endpoint listens on 127.0.0.1 of the coordinator's node: reach it through an SSH "
      "tunnel\n"
      "(see slurm/README.md). Exit codes: 0 ok, 1 endpoint unreachable or failing, 2 bad usage, malformed "
      "URL\n"
      "or unusable store.");
  cmd->callback([options] { run_status_command(*options); });
}

}  // namespace e2e
