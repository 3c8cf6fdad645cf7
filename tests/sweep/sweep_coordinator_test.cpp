// The sweep coordinator's decisions without MPI: the tests play the worker groups' leaders (ranks 1 and 2)
// and check what the coordinator answers and what the store then holds: claim, result, failure with
// retries, preemption, a stop signal, crash recovery, and reports that break the protocol.
#include "orchestrator/sweep_coordinator.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "db/reader.hpp"
#include "db/store.hpp"
#include "orchestrator/sweep_view.hpp"
#include "tests/db/db_fixtures.hpp"

namespace e2e {
namespace {

using nlohmann::json;
using testing::experiment_info;
using testing::grid;
using testing::TempFolder;

// A training job's metrics.json, as worker/job.cpp writes it (the fields the store reads).
json training_metrics(double mean_dice) {
  return {{"summary", {{"mean_dice", mean_dice}, {"mean_nsd", 0.6}, {"mean_hd", 4.0}}},
          {"complexity", {{"params", 1234}, {"flops", 5e8}, {"patch", {16, 32, 32}}}},
          {"cases",
           {{{"case", "case_1"},
             {"structures", {{{"name", "liver"}, {"dice", mean_dice}, {"nsd", 0.6}, {"hd", 4.0}}}}}}}};
}

class SweepCoordinatorTest : public ::testing::Test {
 protected:
  void register_grid(const JobGrid& job_grid) {
    registration = register_sweep(*store, experiment_info(), job_grid, {});
  }

  std::unique_ptr<SweepCoordinator> coordinator(std::vector<int> leaders = {1, 2}) {
    SweepCoordinatorOptions options;
    options.experiment_id = registration.experiment_id;
    options.experiment = "demo";
    options.runs_dir = "runs";
    options.leaders = std::move(leaders);
    return std::make_unique<SweepCoordinator>(*store, options, tracker, [this] { return now; });
  }

  // The coordinator's one answer to `rank`'s READY.
  static SweepMessage answer(SweepCoordinator& c, int rank, bool stopping = false) {
    const std::vector<Outgoing> out =
        c.handle(rank, ReadyMessage{rank - 1, "node" + std::to_string(rank), stopping});
    EXPECT_EQ(out.size(), 1U);
    EXPECT_EQ(out.at(0).rank, rank);
    return out.at(0).message;
  }
  static JobMessage job_for(SweepCoordinator& c, int rank) {
    const SweepMessage message = answer(c, rank);
    EXPECT_TRUE(std::holds_alternative<JobMessage>(message)) << message_name(tag_of(message));
    return std::get<JobMessage>(message);
  }

  Job job(int64_t id) const { return store->job(id); }

  TempFolder folder;
  std::unique_ptr<Store> store = std::make_unique<Store>(folder.file("store.sqlite"));
  SweepRegistration registration;
  SweepTracker tracker{"demo", 2, 0};
  double now = 0;
};

TEST_F(SweepCoordinatorTest, EachGroupClaimsADifferentJobWithItsFolder) {
  register_grid(grid({0, 1}, {0.5}));
  EXPECT_EQ(registration.jobs, 2U);
  EXPECT_EQ(registration.created, 2);
  auto c = coordinator();
  const JobMessage first = job_for(*c, 1);
  const JobMessage second = job_for(*c, 2);
  EXPECT_NE(first.job, second.job);
  EXPECT_EQ(first.kind, JobKind::Train);
  EXPECT_EQ(first.attempt, 1);
  EXPECT_EQ(first.out_dir, "runs/demo/fold" + std::to_string(first.fold) + "_s0.5_seed0");
  EXPECT_EQ(job(first.job).status, JobStatus::Running);
  EXPECT_EQ(job(first.job).node, "node1");
  EXPECT_EQ(job(second.job).worker_group, 1);
  EXPECT_EQ(c->running().at(first.job), 1);
  EXPECT_EQ(c->running().at(second.job), 2);
  const SweepViewState view = tracker.state(now);
  EXPECT_TRUE(view.groups.at(0).busy);
  EXPECT_TRUE(view.groups.at(1).busy);
  EXPECT_EQ(view.totals.running, 2);
  EXPECT_EQ(view.totals.pending, 0);
}

TEST_F(SweepCoordinatorTest, AResultIsRecordedAndTheSweepEndsWhenNothingIsLeft) {
  register_grid(grid({0}, {0.5}));
  auto c = coordinator();
  const JobMessage claimed = job_for(*c, 1);
  EXPECT_TRUE(std::holds_alternative<WaitMessage>(answer(*c, 2)));  // something still runs: wait

  EpochRecord epoch;
  epoch.epoch = 0;
  epoch.train_loss = 0.9;
  EXPECT_TRUE(c->handle(1, EpochMessage{claimed.job, epoch}).empty());
  EXPECT_TRUE(c->handle(1, StepMessage{claimed.job, 1, 2, 3, 10, 0.7, 5.0}).empty());
  EXPECT_EQ(tracker.state(now).groups.at(0).step, 3);
  const Topology topology = testing::striped_topology({"fuse.0", "fuse.1"}, 4, 6, 3);
  now = 12;
  EXPECT_TRUE(
      c->handle(1, ResultMessage{claimed.job, JobKind::Train, training_metrics(0.8), topology.serialize(), 9})
          .empty());

  const Job done = job(claimed.job);
  EXPECT_EQ(done.status, JobStatus::Done);
  const StoreReader reader = store->reader();
  ASSERT_TRUE(reader.result(claimed.job).has_value());
  EXPECT_DOUBLE_EQ(reader.result(claimed.job)->mean_dice, 0.8);
  EXPECT_EQ(reader.result(claimed.job)->params, 1234);
  EXPECT_EQ(reader.case_metrics(claimed.job).size(), 1U);
  EXPECT_EQ(reader.epochs(claimed.job).size(), 1U);
  const std::optional<MaskRecord> masks = reader.latest_masks(claimed.job);
  ASSERT_TRUE(masks.has_value());
  EXPECT_EQ(masks->step, 9);
  EXPECT_EQ(reader.topology(masks->id), topology);
  EXPECT_TRUE(c->running().empty());

  EXPECT_FALSE(c->finished());
  EXPECT_TRUE(std::holds_alternative<StopMessage>(answer(*c, 2)));
  EXPECT_TRUE(std::holds_alternative<StopMessage>(answer(*c, 1)));
  EXPECT_TRUE(c->finished());
  EXPECT_EQ(c->exit_code(), 0);
  EXPECT_EQ(tracker.state(now).totals.done, 1);
}

TEST_F(SweepCoordinatorTest, AFailedJobIsRetriedUntilItsAttemptsRunOut) {
  register_grid(grid({0}, {0.5}, /*max_attempts=*/2));
  auto c = coordinator({1});
  const JobMessage first = job_for(*c, 1);
  EXPECT_TRUE(c->handle(1, FailedMessage{first.job, "CUDA error: an illegal memory access", false}).empty());
  EXPECT_EQ(job(first.job).status, JobStatus::Failed);
  EXPECT_EQ(job(first.job).attempts, 1);
  EXPECT_EQ(c->exit_code(), 0);  // it will be retried

  const JobMessage retry = job_for(*c, 1);
  EXPECT_EQ(retry.job, first.job);
  EXPECT_EQ(retry.attempt, 2);
  c->handle(1, FailedMessage{retry.job, "CUDA error again", false});
  EXPECT_TRUE(job(first.job).failed_for_good());
  EXPECT_EQ(job(first.job).error, "CUDA error again");
  EXPECT_TRUE(std::holds_alternative<StopMessage>(answer(*c, 1)));
  EXPECT_TRUE(c->finished());
  EXPECT_EQ(c->exit_code(), 1);
  EXPECT_EQ(tracker.state(now).totals.failed, 1);
}

TEST_F(SweepCoordinatorTest, ABadInputFailureIsNotRetried) {
  register_grid(grid({0}, {0.5}, 3));
  auto c = coordinator({1});
  const JobMessage claimed = job_for(*c, 1);
  c->handle(1, FailedMessage{claimed.job, "case_3.nii.gz: not a NIfTI file", true});
  EXPECT_TRUE(job(claimed.job).failed_for_good());
  EXPECT_TRUE(std::holds_alternative<StopMessage>(answer(*c, 1)));
  EXPECT_EQ(c->exit_code(), 2);
}

// One preempted group means the allocation is going away: every group is told to checkpoint, nobody gets new
// work, and the rerun hands the jobs back from their checkpoints without using an attempt.
TEST_F(SweepCoordinatorTest, APreemptedGroupStopsEveryGroupAndTheRerunResumes) {
  register_grid(grid({0, 1, 2}, {0.5}));
  auto c = coordinator();
  const JobMessage a = job_for(*c, 1);
  const JobMessage b = job_for(*c, 2);
  c->handle(1, CheckpointMessage{a.job, {"runs/demo/a/checkpoint.pt", "sha-a", 40}});

  const std::vector<Outgoing> stop = c->handle(1, PreemptedMessage{a.job});
  ASSERT_EQ(stop.size(), 2U);
  EXPECT_EQ(stop[0].rank, 1);
  EXPECT_EQ(stop[1].rank, 2);
  EXPECT_TRUE(std::holds_alternative<StopNowMessage>(stop[0].message));
  EXPECT_EQ(job(a.job).status, JobStatus::Preempted);
  EXPECT_EQ(job(a.job).checkpoint->iteration, 40);
  EXPECT_TRUE(std::holds_alternative<StopMessage>(answer(*c, 1)));  // no new work after a stop

  EXPECT_TRUE(c->handle(2, PreemptedMessage{b.job}).empty());  // STOP_NOW went out once
  EXPECT_TRUE(std::holds_alternative<StopMessage>(answer(*c, 2)));
  EXPECT_TRUE(c->finished());
  EXPECT_EQ(c->exit_code(), 3);
  EXPECT_EQ(tracker.state(now).totals.pending, 3);  // preempted jobs count as pending

  const SweepRegistration rerun = register_sweep(*store, experiment_info(), grid({0, 1, 2}, {0.5}), {});
  EXPECT_EQ(rerun.created, 0);
  EXPECT_EQ(rerun.recovered, 0);
  auto again = coordinator();
  const JobMessage resumed = job_for(*again, 1);
  EXPECT_EQ(resumed.job, a.job);
  EXPECT_EQ(resumed.attempt, 1);  // preemption used no attempt
  EXPECT_EQ(job(a.job).checkpoint->iteration, 40);
}

TEST_F(SweepCoordinatorTest, AStopSignalSendsStopNowOnceAndHandsOutNothing) {
  register_grid(grid({0, 1}, {0.5}));
  auto c = coordinator();
  const std::vector<Outgoing> stop = c->request_stop();
  ASSERT_EQ(stop.size(), 2U);
  EXPECT_TRUE(std::holds_alternative<StopNowMessage>(stop[1].message));
  EXPECT_TRUE(c->request_stop().empty());
  EXPECT_TRUE(c->stopping());
  EXPECT_TRUE(std::holds_alternative<StopMessage>(answer(*c, 1)));
  EXPECT_TRUE(std::holds_alternative<StopMessage>(answer(*c, 2)));
  EXPECT_TRUE(c->finished());
  EXPECT_EQ(c->exit_code(), 3);
  for (const Job& j : store->reader().jobs()) EXPECT_EQ(j.status, JobStatus::Pending);
}

// A group that was signalled itself asks to stop in its READY.
TEST_F(SweepCoordinatorTest, AGroupThatAsksToStopGetsStop) {
  register_grid(grid({0}, {0.5}));
  auto c = coordinator({1});
  EXPECT_TRUE(std::holds_alternative<StopMessage>(answer(*c, 1, /*stopping=*/true)));
  EXPECT_TRUE(c->finished());
  for (const Job& j : store->reader().jobs()) EXPECT_EQ(j.status, JobStatus::Pending);
}

// kill -9 of the coordinator: its jobs stay `running` in the store. The rerun's registration turns them
// `interrupted`, and they are handed out again with their checkpoints and epochs kept.
TEST_F(SweepCoordinatorTest, ACrashedCoordinatorsJobsResumeFromTheirCheckpoints) {
  register_grid(grid({0, 1}, {0.5}));
  int64_t claimed = 0;
  {
    auto crashed = coordinator();
    claimed = job_for(*crashed, 1).job;
    EpochRecord epoch;
    epoch.epoch = 0;
    crashed->handle(1, EpochMessage{claimed, epoch});
    crashed->handle(1, CheckpointMessage{claimed, {"runs/demo/fold0/checkpoint.pt", "sha", 20}});
  }                                                              // no outcome ever arrives
  store = std::make_unique<Store>(folder.file("store.sqlite"));  // the rerun opens the store afresh
  EXPECT_EQ(job(claimed).status, JobStatus::Running);

  const SweepRegistration rerun = register_sweep(*store, experiment_info(), grid({0, 1}, {0.5}), {});
  EXPECT_EQ(rerun.recovered, 1);
  EXPECT_EQ(rerun.created, 0);
  EXPECT_EQ(job(claimed).status, JobStatus::Interrupted);

  auto c = coordinator();
  const JobMessage resumed = job_for(*c, 2);
  EXPECT_EQ(resumed.job, claimed);  // interrupted jobs go first
  EXPECT_EQ(job(claimed).checkpoint->iteration, 20);
  EXPECT_EQ(store->reader().epochs(claimed).size(), 1U);
  bool interrupted_event = false;
  for (const Event& e : store->reader().events(claimed))
    interrupted_event |= e.kind == EventKind::Interrupted;
  EXPECT_TRUE(interrupted_event);
}

TEST_F(SweepCoordinatorTest, ReportsThatBreakTheProtocolAreRefusedAndChangeNothing) {
  register_grid(grid({0, 1}, {0.5}));
  auto c = coordinator();
  const JobMessage a = job_for(*c, 1);
  const ResultMessage stolen{a.job, JobKind::Train, training_metrics(0.9), "", 0};
  EXPECT_THROW(c->handle(2, stolen), ProtocolError);                 // rank 2 does not run it
  EXPECT_THROW(c->handle(1, PreemptedMessage{999}), ProtocolError);  // no such running job
  EXPECT_THROW(c->handle(1, EpochMessage{999, {}}), ProtocolError);
  EXPECT_THROW(answer(*c, 1), ProtocolError);               // READY while its job runs
  EXPECT_THROW(c->handle(1, JobMessage{}), ProtocolError);  // only the coordinator sends JOB
  EXPECT_EQ(job(a.job).status, JobStatus::Running);
  EXPECT_FALSE(store->reader().result(a.job).has_value());
  try {
    c->handle(2, stolen);
  } catch (const ProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find("runs on rank 1"), std::string::npos) << e.what();
  }
}

// A test ensemble waits for its cell's folds, then averages them on the held-out cases.
TEST_F(SweepCoordinatorTest, AnEnsembleWaitsForItsFoldsThenRecordsATestResult) {
  JobGrid job_grid = grid({0}, {0.5});
  job_grid.test_ensembles = true;
  register_grid(job_grid);
  EXPECT_EQ(registration.jobs, 2U);
  auto c = coordinator();
  const JobMessage fold = job_for(*c, 1);
  EXPECT_EQ(fold.kind, JobKind::Train);
  EXPECT_TRUE(std::holds_alternative<WaitMessage>(answer(*c, 2)));
  c->handle(1, ResultMessage{fold.job, JobKind::Train, training_metrics(0.7), "", 0});

  const JobMessage ensemble = job_for(*c, 2);
  EXPECT_EQ(ensemble.kind, JobKind::Ensemble);
  EXPECT_EQ(ensemble.out_dir, "runs/demo/test_s0.5_seed0");
  EXPECT_EQ(ensemble.folds, std::vector<int>({0}));
  EXPECT_EQ(ensemble.fold_dirs, std::vector<std::string>({"runs/demo/fold0_s0.5_seed0"}));
  c->handle(2, CaseDoneMessage{ensemble.job, "case_9", 1, 2});
  EXPECT_EQ(tracker.state(now).groups.at(1).cases_done, 1);

  json metrics = training_metrics(0.66);
  metrics["test_cases"] = {{"total", 2}, {"scored", 1}};
  metrics["postprocessing"] = nullptr;
  c->handle(2, ResultMessage{ensemble.job, JobKind::Ensemble, metrics, "", 0});
  const std::optional<ResultSummary> result = store->reader().result(ensemble.job);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->split, Split::Test);
  EXPECT_EQ(result->cases_total, 2);
  EXPECT_EQ(result->cases_scored, 1);
  EXPECT_DOUBLE_EQ(result->mean_dice, 0.66);
  EXPECT_TRUE(std::holds_alternative<StopMessage>(answer(*c, 1)));
  EXPECT_TRUE(std::holds_alternative<StopMessage>(answer(*c, 2)));
  EXPECT_EQ(c->exit_code(), 0);
}

}  // namespace
}  // namespace e2e
