// The sweep coordinator's decisions, apart from how messages travel: which job a group gets, what a result,
// a failure or a preemption does to the store and to the other groups, when the sweep is over and with which
// exit code. orchestrator/sweep.cpp feeds it the messages MPI delivers (or, with one rank, the in-process
// job's reports) and sends what it answers. Plain C++ (store, messages, view state): unit-tested without MPI.
//
// Durability is the store's: a coordinator that dies leaves its jobs `running`; the next one's
// register_sweep() turns them `interrupted`, and they are handed out again (from their checkpoints).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "db/records.hpp"
#include "orchestrator/sweep_protocol.hpp"

namespace e2e {

class Store;
class SweepTracker;

struct SweepRegistration {
  int64_t experiment_id = 0;
  std::size_t jobs = 0;   // every job of the grid
  int64_t created = 0;    // of them, new
  int64_t recovered = 0;  // jobs a previous coordinator left running, now interrupted (resumable)
};

// At coordinator start: the experiment, its fold splits and its jobs (idempotent), and crash recovery.
SweepRegistration register_sweep(Store& store, const ExperimentInfo& experiment, const JobGrid& grid,
                                 const std::vector<SplitEntry>& splits);

struct Outgoing {
  int rank = 0;
  SweepMessage message;
};

struct SweepCoordinatorOptions {
  int64_t experiment_id = 0;
  std::string experiment;
  std::string runs_dir;      // job folders (orchestrator/run_folders.hpp)
  std::vector<int> leaders;  // each worker group's leader rank; group g is leaders[g]
};

class SweepCoordinator {
 public:
  // `clock`: seconds on one monotonic clock (the tracker's times).
  SweepCoordinator(Store& store, SweepCoordinatorOptions options, SweepTracker& tracker,
                   std::function<double()> clock);

  // A message from rank `source`; returns what to send. Throws ProtocolError for a message the coordinator
  // never receives, or a report about a job that `source` does not run (the store is left as it was).
  std::vector<Outgoing> handle(int source, const SweepMessage& message);

  // A stop was requested (SIGTERM / SIGUSR1 on the coordinator): STOP_NOW to every leader, once.
  std::vector<Outgoing> request_stop();

  // Every group got STOP: the sweep is over.
  bool finished() const { return stopped_groups_ >= options_.leaders.size(); }
  bool stopping() const { return stop_sent_; }
  // 3 stopped early (rerun to continue), else 2 some job failed on bad input, 1 some job failed for good,
  // 0 all done.
  int exit_code() const;
  // Running jobs → the rank that runs each.
  const std::map<int64_t, int>& running() const { return running_; }

 private:
  std::vector<Outgoing> on_ready(int source, const ReadyMessage& ready);
  // Outcome: ResultMessage, FailedMessage or PreemptedMessage.
  template <typename Outcome>
  std::vector<Outgoing> on_outcome(int source, const Outcome& outcome);
  void record(const ResultMessage& result);
  void record(const FailedMessage& failed);
  void record(const PreemptedMessage& preempted);
  void check_runs(int source, int64_t job, int tag) const;
  JobMessage job_message(const ClaimedJob& claim) const;
  void job_started(int group, const ClaimedJob& claim);
  void record_case_done(const CaseDoneMessage& message);
  void refresh_totals();
  std::vector<Outgoing> stop_everyone();

  Store& store_;
  SweepCoordinatorOptions options_;
  SweepTracker& tracker_;
  std::function<double()> clock_;
  std::map<int64_t, int> running_;
  std::size_t stopped_groups_ = 0;
  bool stop_sent_ = false;
  bool failed_ = false;
  bool input_failed_ = false;
};

}  // namespace e2e
