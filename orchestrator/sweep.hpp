// `e2e sweep`: every (fold × sparsity × seed) job of a config, across MPI ranks, resumable.
//
// Rank 0 is the coordinator (CPU only, the store's one writer); ranks 1..N−1 form worker groups of
// gpus_per_job ranks (MPI_Comm_split) that train one job at a time data-parallel. With one rank the
// coordinator runs every job in-process, through the same decisions. The messages are typed structs with one
// codec (orchestrator/sweep_protocol.hpp): READY → JOB | WAIT | STOP; STEP (a few times a second, the live
// view); EPOCH (per epoch, doubles as heartbeat); CHECKPOINT; CASE_DONE; RESULT | FAILED | PREEMPTED; and
// STOP_NOW (coordinator → leaders) when the coordinator was signalled or a group was preempted. What the
// coordinator decides is orchestrator/sweep_coordinator.hpp (no MPI, unit-tested); this file moves the bytes.
// Durability comes from the store and the checkpoints: a crashed run is rerun with the same command.
// Only the coordinator writes to the terminal: one live view of every group (orchestrator/sweep_view.hpp) on
// a terminal, timestamped log lines otherwise; every worker rank logs to its job folder's worker.log.
#pragma once

#include <string>

#include "configs/config.hpp"
#include "db/records.hpp"

namespace e2e {

struct SweepOptions {
  Config config;
  std::string db_path;
  std::string runs_dir;  // job folders: <runs_dir>/<experiment>/fold<F>_s<S>_seed<N>
  JobGrid grid;
  int gpus_per_job = 1;
  int loader_threads = 0;
  int status_port = -1;  // -1 = no status server, 0 = an ephemeral port
  std::string status_address = "127.0.0.1";
  // The coordinator's output: "auto" (a live view when its stdout reaches a terminal, else log lines),
  // "live" or "log". Worker ranks never write to the terminal: they log to their job folder (worker.log).
  std::string view = "auto";
};

// Collective over MPI_COMM_WORLD. Returns the process exit code: 0 all jobs done, 1 some failed for good,
// 3 stopped by SIGUSR1/SIGTERM (jobs preempted; rerun to continue).
int run_sweep(const SweepOptions& options);

}  // namespace e2e
