// `e2e status --db`: the store's progress summary (db/status.hpp) in the shape of the coordinator's live
// status snapshot (orchestrator/status_server.hpp), so that both sources print and export alike.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "db/status.hpp"

namespace e2e {

// Snapshot fields from the summary; besides the documented ones: "source": "store", "progress" (epochs done /
// planned over every job), "epochs_done", "epochs_total", "failed_for_good", and "node" per running job.
// A running job's ETA is its remaining epochs × the store's mean epoch time (null before the first epoch).
nlohmann::json snapshot_from_summary(const StatusSummary& summary);

// Opens the store read-only (StoreReader: InputError for a missing, foreign or corrupt file, an unknown
// experiment) and summarizes it.
nlohmann::json snapshot_from_store(const std::string& path,
                                   const std::optional<std::string>& experiment = {});

}  // namespace e2e
