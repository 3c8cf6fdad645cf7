// A sweep's progress from the store alone: jobs by state, epochs done against epochs planned, and an ETA from
// the measured epoch times.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "db/reader.hpp"

namespace e2e {

struct JobProgress {
  Job job;
  int64_t epochs_done = 0;
  int64_t epochs_total = 0;
};

struct StatusSummary {
  std::string experiment;                         // empty: every experiment
  std::map<std::string, int64_t> jobs_by_status;  // every status name, 0 included
  int64_t jobs = 0;
  int64_t failed_for_good = 0;
  int64_t epochs_done = 0;            // done and failed-for-good jobs count as complete
  int64_t epochs_total = 0;           // jobs × training.epochs of their experiment
  double progress = 0;                // epochs_done / epochs_total
  double mean_epoch_seconds = 0;      // NaN before the first epoch
  std::optional<double> eta_seconds;  // remaining epochs × mean epoch time / max(1, running jobs)
  std::vector<JobProgress> running;
};

StatusSummary summarize_status(const StoreReader& reader, const std::optional<std::string>& experiment = {});

std::string status_json(const StatusSummary& summary);
std::string status_text(const StatusSummary& summary);

}  // namespace e2e
