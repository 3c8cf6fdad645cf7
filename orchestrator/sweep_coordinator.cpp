#include "orchestrator/sweep_coordinator.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <type_traits>
#include <utility>

#include "db/reader.hpp"
#include "db/store.hpp"
#include "orchestrator/job_records.hpp"
#include "orchestrator/run_folders.hpp"
#include "orchestrator/signals.hpp"
#include "orchestrator/sweep_view.hpp"

namespace e2e {

SweepRegistration register_sweep(Store& store, const ExperimentInfo& experiment, const JobGrid& grid,
                                 const std::vector<SplitEntry>& splits) {
  SweepRegistration registration;
  registration.experiment_id = store.upsert_experiment(experiment);
  store.record_splits(registration.experiment_id, splits);
  const EnumerateResult jobs = store.enumerate_jobs(registration.experiment_id, grid);
  registration.jobs = jobs.job_ids.size();
  registration.created = jobs.created;
  registration.recovered = store.recover_interrupted();
  return registration;
}

SweepCoordinator::SweepCoordinator(Store& store, SweepCoordinatorOptions options, SweepTracker& tracker,
                                   std::function<double()> clock)
    : store_(store), options_(std::move(options)), tracker_(tracker), clock_(std::move(clock)) {
  refresh_totals();
}

template <typename Outcome>
std::vector<Outgoing> SweepCoordinator::on_outcome(int source, const Outcome& outcome) {
  check_runs(source, outcome.job, tag_of<Outcome>());
  std::vector<Outgoing> out;
  // One preempted group means the allocation is going away: every group checkpoints.
  if (std::is_same_v<Outcome, PreemptedMessage> && !stop_sent_) out = stop_everyone();
  running_.erase(outcome.job);
  record(outcome);
  tracker_.job_ended(outcome.job, std::is_same_v<Outcome, ResultMessage>, clock_());
  refresh_totals();
  return out;
}

std::vector<Outgoing> SweepCoordinator::handle(int source, const SweepMessage& message) {
  if (const auto* ready = std::get_if<ReadyMessage>(&message)) return on_ready(source, *ready);
  if (const auto* step = std::get_if<StepMessage>(&message)) {  // the live view only
    check_runs(source, step->job, tag_of(message));
    tracker_.step(step->job, step->epoch, step->epochs, step->step, step->steps, step->loss,
                  step->iterations_per_second);
    return {};
  }
  if (const auto* epoch = std::get_if<EpochMessage>(&message)) {
    check_runs(source, epoch->job, tag_of(message));
    store_.record_epoch(epoch->job, epoch->epoch);  // also the job's heartbeat
    return {};
  }
  if (const auto* checkpoint = std::get_if<CheckpointMessage>(&message)) {
    check_runs(source, checkpoint->job, tag_of(message));
    store_.mark_checkpointed(checkpoint->job, checkpoint->checkpoint);
    return {};
  }
  if (const auto* done = std::get_if<CaseDoneMessage>(&message)) {
    check_runs(source, done->job, tag_of(message));
    record_case_done(*done);
    return {};
  }
  if (const auto* result = std::get_if<ResultMessage>(&message)) return on_outcome(source, *result);
  if (const auto* failed = std::get_if<FailedMessage>(&message)) return on_outcome(source, *failed);
  if (const auto* preempted = std::get_if<PreemptedMessage>(&message)) return on_outcome(source, *preempted);
  throw ProtocolError(fmt::format("coordinator: rank {} sent {}, which only the coordinator sends", source,
                                  message_name(tag_of(message))));
}

std::vector<Outgoing> SweepCoordinator::request_stop() {
  if (stop_sent_) return {};
  spdlog::warn("stop requested: telling {} worker group(s) to checkpoint", options_.leaders.size());
  return stop_everyone();
}

int SweepCoordinator::exit_code() const {
  if (stop_sent_) return kExitPreempted;
  return input_failed_ ? 2 : failed_ ? 1 : 0;
}

std::vector<Outgoing> SweepCoordinator::on_ready(int source, const ReadyMessage& ready) {
  for (const auto& [job, rank] : running_)
    if (rank == source)
      throw ProtocolError(
          fmt::format("coordinator: rank {} sent READY while job {} runs on it", source, job));
  if (stop_sent_ || ready.stopping) {
    ++stopped_groups_;
    return {{source, StopMessage{}}};
  }
  const std::optional<ClaimedJob> claim = store_.claim_next(options_.experiment_id, ready.group, ready.node);
  if (claim) {
    running_[claim->job.id] = source;
    job_started(ready.group, *claim);
    return {{source, job_message(*claim)}};
  }
  if (running_.empty()) {  // nothing runnable and nothing that could make a job runnable
    ++stopped_groups_;
    return {{source, StopMessage{}}};
  }
  return {{source, WaitMessage{}}};  // e.g. a test ensemble waits for its folds
}

void SweepCoordinator::record(const PreemptedMessage& preempted) {
  store_.mark_preempted(preempted.job, "stopped by signal; checkpoint kept");
  spdlog::warn("job {} preempted", preempted.job);
}

void SweepCoordinator::record(const FailedMessage& failed) {
  const FailureOutcome failure = store_.mark_failed(failed.job, failed.error, failed.permanent);
  spdlog::error("job {} failed (attempt {}/{}{}): {}", failed.job, failure.attempts, failure.max_attempts,
                failed.permanent     ? ", bad input: not retried"
                : failure.will_retry ? ", will retry"
                                     : ", giving up",
                failed.error);
  failed_ = failed_ || !failure.will_retry;
  input_failed_ = input_failed_ || failed.permanent;
}

void SweepCoordinator::record(const ResultMessage& done) {
  if (done.kind == JobKind::Ensemble) {
    const JobResult result = to_store_test_result(done.metrics);
    store_.record_result(done.job, result);
    spdlog::info("job {} done (test ensemble): mDice {:.4f} on {} of {} test case(s)", done.job,
                 result.summary.mean_dice, result.summary.cases_scored, result.summary.cases_total);
  } else {
    const JobResult result = to_store_result(done.metrics, done.topology, done.topology_updates);
    store_.record_result(done.job, result);
    spdlog::info("job {} done: mDice {:.4f}", done.job, result.summary.mean_dice);
  }
}

void SweepCoordinator::check_runs(int source, int64_t job, int tag) const {
  const auto it = running_.find(job);
  if (it == running_.end() || it->second != source)
    throw ProtocolError(fmt::format(
        "coordinator: rank {} sent {} for job {}, which {}", source, message_name(tag), job,
        it == running_.end() ? std::string("is not running") : fmt::format("runs on rank {}", it->second)));
}

JobMessage SweepCoordinator::job_message(const ClaimedJob& claim) const {
  const Job& job = claim.job;
  JobMessage message;
  message.job = job.id;
  message.kind = job.kind;
  message.fold = job.fold;
  message.sparsity = job.sparsity;
  message.seed = job.seed;
  message.attempt = job.attempts + 1;
  if (job.kind == JobKind::Ensemble) {
    message.out_dir = ensemble_folder(options_.runs_dir, options_.experiment, job.sparsity, job.seed);
    message.folds = job.folds;
    for (int fold : job.folds)
      message.fold_dirs.push_back(
          job_folder(options_.runs_dir, options_.experiment, fold, job.sparsity, job.seed));
  } else {
    message.out_dir = job_folder(options_.runs_dir, options_.experiment, job.fold, job.sparsity, job.seed);
  }
  return message;
}

// A claimed job, in the log and the view.
void SweepCoordinator::job_started(int group, const ClaimedJob& claim) {
  const Job& job = claim.job;
  const std::string what = job.kind == JobKind::Ensemble
                               ? fmt::format("test ensemble s={} seed {}", job.sparsity, job.seed)
                               : fmt::format("fold {} s={} seed {}", job.fold, job.sparsity, job.seed);
  spdlog::info("job {} started on group {}: {}, attempt {}{}", job.id, group, what, job.attempts + 1,
               job.checkpoint
                   ? fmt::format(", from its checkpoint at iteration {}", job.checkpoint->iteration)
                   : std::string());
  tracker_.job_started(group, job, clock_());
  refresh_totals();
}

// A finished test case of an ensemble job: an event (the job's progress) that doubles as a heartbeat.
void SweepCoordinator::record_case_done(const CaseDoneMessage& message) {
  store_.add_event(
      message.job, EventKind::Checkpointed,
      fmt::format("test case {} predicted ({}/{})", message.case_id, message.done, message.total));
  store_.heartbeat(message.job);
  tracker_.case_done(message.job, message.done, message.total);
}

// Jobs by state, from the store (after each claim and each outcome).
void SweepCoordinator::refresh_totals() {
  JobFilter filter;
  filter.experiment = options_.experiment;
  tracker_.set_totals(count_jobs(store_.reader().jobs(filter)));
}

std::vector<Outgoing> SweepCoordinator::stop_everyone() {
  stop_sent_ = true;
  std::vector<Outgoing> out;
  for (int leader : options_.leaders) out.push_back({leader, StopNowMessage{}});
  return out;
}

}  // namespace e2e
