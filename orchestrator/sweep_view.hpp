// What the coordinator of `e2e sweep` shows a person: one line per worker group (job, fold, sparsity, epoch
// and iteration, loss, it/s) and a total line (done / running / pending / failed, elapsed, ETA from measured
// job times). SweepTracker gathers the state from the coordinator's events; render_view() and
// render_summary() turn it into text. Plain C++, no MPI, no terminal: the live redraw is
// worker/progress.hpp's TerminalFrame, used by orchestrator/sweep.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "db/records.hpp"

namespace e2e {

// Jobs of the sweep by where they stand. A failed job with attempts left counts as pending (it will be
// retried); interrupted and preempted jobs too (they will be resumed).
struct SweepTotals {
  int64_t done = 0;
  int64_t running = 0;
  int64_t pending = 0;
  int64_t failed = 0;            // failed for good
  int64_t pending_train = 0;     // of pending: training jobs
  int64_t pending_ensemble = 0;  // of pending: test ensembles
};

SweepTotals count_jobs(const std::vector<Job>& jobs);

// One worker group's line.
struct GroupView {
  int group = 0;
  bool busy = false;
  int64_t job = 0;
  JobKind kind = JobKind::Train;
  int fold = 0;
  double sparsity = 0;
  uint64_t seed = 0;
  double started = 0;  // seconds since the sweep started, when the job was handed out
  // The last step report of a training job (has_step false before the first one).
  bool has_step = false;
  int64_t epoch = 0;  // 0-based
  int64_t epochs = 0;
  int64_t step = 0;
  int64_t steps = 0;
  double loss = 0;
  double iterations_per_second = 0;
  // A test ensemble's cases.
  int64_t cases_done = 0;
  int64_t cases_total = 0;
};

struct SweepViewState {
  std::string experiment;
  std::vector<GroupView> groups;
  SweepTotals totals;
  double elapsed = 0;         // seconds
  std::optional<double> eta;  // seconds; none before anything was measured
};

// The live view: one line per group, then the total line. ASCII only.
std::vector<std::string> render_view(const SweepViewState& state);
// The total line alone, for logs: "done 3  running 2  pending 5  failed 0  elapsed 1m23s  ETA 4m10s".
std::string render_summary(const SweepViewState& state);
// "42s", "3m05s", "2h07m".
std::string format_duration(double seconds);

// The coordinator's view of its groups. Times are seconds on one clock (the caller's).
class SweepTracker {
 public:
  SweepTracker(std::string experiment, int groups, double now);

  void job_started(int group, const Job& job, double now);
  void step(int64_t job, int64_t epoch, int64_t epochs, int64_t step, int64_t steps, double loss,
            double iterations_per_second);
  void case_done(int64_t job, int64_t done, int64_t total);
  // The job left its group; `measured` when it finished (its time counts toward the ETA).
  void job_ended(int64_t job, bool measured, double now);
  void set_totals(const SweepTotals& totals) { totals_ = totals; }

  SweepViewState state(double now) const;
  // Remaining work over the groups: pending jobs × the mean measured time of their kind, plus what running
  // jobs still need (their mean, or their own pace from the step reports before any job finished).
  std::optional<double> eta(double now) const;

 private:
  GroupView* find(int64_t job);
  std::string experiment_;
  double start_;
  std::vector<GroupView> groups_;
  SweepTotals totals_;
  std::map<JobKind, std::pair<double, int>> measured_;  // kind → (seconds sum, jobs)
};

}  // namespace e2e
