// The sweep's live view and log summary (orchestrator/sweep_view.hpp): lines per group, the total line, job
// counts from the store's states, and the ETA from measured job times.
#include "orchestrator/sweep_view.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace e2e {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Job job_of(int64_t id, JobKind kind, JobStatus status, int attempts = 0, int max_attempts = 2) {
  Job job;
  job.id = id;
  job.kind = kind;
  job.fold = kind == JobKind::Ensemble ? -1 : static_cast<int>(id % 5);
  job.sparsity = 0.8;
  job.status = status;
  job.attempts = attempts;
  job.max_attempts = max_attempts;
  return job;
}

TEST(SweepView, FormatsDurations) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(42.4), "42s");
  EXPECT_EQ(format_duration(185), "3m05s");
  EXPECT_EQ(format_duration(2 * 3600 + 7 * 60 + 30), "2h07m");
  EXPECT_EQ(format_duration(-5), "0s");
}

TEST(SweepView, CountsJobsByWhereTheyStand) {
  const SweepTotals totals = count_jobs({
      job_of(1, JobKind::Train, JobStatus::Done),
      job_of(2, JobKind::Train, JobStatus::Running),
      job_of(3, JobKind::Train, JobStatus::Pending),
      job_of(4, JobKind::Train, JobStatus::Interrupted),
      job_of(5, JobKind::Train, JobStatus::Preempted),
      job_of(6, JobKind::Train, JobStatus::Failed, 1, 2),  // will be retried
      job_of(7, JobKind::Train, JobStatus::Failed, 2, 2),  // for good
      job_of(8, JobKind::Ensemble, JobStatus::Pending),
  });
  EXPECT_EQ(totals.done, 1);
  EXPECT_EQ(totals.running, 1);
  EXPECT_EQ(totals.pending, 5);
  EXPECT_EQ(totals.pending_train, 4);
  EXPECT_EQ(totals.pending_ensemble, 1);
  EXPECT_EQ(totals.failed, 1);
}

TEST(SweepView, OneLinePerGroupAndATotalLine) {
  SweepTracker tracker("demo", 3, 1000.0);
  tracker.job_started(0, job_of(3, JobKind::Train, JobStatus::Running), 1000.0);
  tracker.job_started(1, job_of(11, JobKind::Ensemble, JobStatus::Running), 1001.0);
  tracker.job_started(2, job_of(4, JobKind::Train, JobStatus::Running), 1002.0);
  tracker.step(3, 2, 8, 25, 50, 0.81234, 4.06);
  tracker.case_done(11, 1, 2);
  SweepTotals totals;
  totals.done = 2;
  totals.running = 3;
  totals.pending = 5;
  tracker.set_totals(totals);
  const std::vector<std::string> lines = render_view(tracker.state(1083.0));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "group 0  job 3    fold 3  s=0.8  seed 0  epoch 3/8  it 25/50  loss 0.8123  4.1 it/s");
  EXPECT_EQ(lines[1], "group 1  job 11   test ensemble  s=0.8  seed 0  case 1/2  1m22s");
  EXPECT_EQ(lines[2], "group 2  job 4    fold 4  s=0.8  seed 0  starting");
  EXPECT_THAT(lines[3], HasSubstr("demo: done 2  running 3  pending 5  failed 0  elapsed 1m23s  ETA "));
  for (const std::string& line : lines) {
    EXPECT_EQ(line.find('\r'), std::string::npos);
    EXPECT_EQ(line.find('\x1b'), std::string::npos);
  }
}

TEST(SweepView, AnEndedJobLeavesItsGroupIdle) {
  SweepTracker tracker("demo", 2, 0.0);
  tracker.job_started(1, job_of(3, JobKind::Train, JobStatus::Running), 0.0);
  tracker.job_ended(3, true, 10.0);
  tracker.step(3, 0, 8, 1, 50, 1.0, 1.0);  // a late report of an ended job is ignored
  EXPECT_THAT(render_view(tracker.state(10.0)),
              ElementsAre("group 0  idle", "group 1  idle", HasSubstr("elapsed 10s")));
}

TEST(SweepView, NoEtaBeforeAnythingWasMeasured) {
  SweepTracker tracker("demo", 2, 0.0);
  SweepTotals totals;
  totals.pending = totals.pending_train = 4;
  tracker.set_totals(totals);
  EXPECT_FALSE(tracker.eta(5.0).has_value());
  EXPECT_THAT(render_summary(tracker.state(5.0)), HasSubstr("ETA ?"));
  tracker.job_started(0, job_of(1, JobKind::Train, JobStatus::Running), 0.0);
  EXPECT_FALSE(tracker.eta(5.0).has_value());  // no step report yet
}

TEST(SweepView, EtaFromTheRunningJobsPaceBeforeAJobFinished) {
  SweepTracker tracker("demo", 1, 0.0);
  SweepTotals totals;
  totals.pending = totals.pending_train = 2;
  tracker.set_totals(totals);
  tracker.job_started(0, job_of(1, JobKind::Train, JobStatus::Running), 0.0);
  tracker.step(1, 1, 4, 50, 100, 1.0, 1.0);  // 150 of 400 iterations in 30 s: 80 s a job
  // 2 pending jobs × 80 s + the running job's remaining 50 s, on one group.
  ASSERT_TRUE(tracker.eta(30.0).has_value());
  EXPECT_NEAR(*tracker.eta(30.0), 2 * 80.0 + 50.0, 1e-9);
}

TEST(SweepView, EtaFromMeasuredJobTimesOverTheGroups) {
  SweepTracker tracker("demo", 2, 0.0);
  tracker.job_started(0, job_of(1, JobKind::Train, JobStatus::Running), 0.0);
  tracker.job_started(1, job_of(2, JobKind::Train, JobStatus::Running), 0.0);
  tracker.job_ended(1, true, 100.0);
  tracker.job_ended(2, false, 50.0);  // failed or preempted: not a measurement
  tracker.job_started(0, job_of(3, JobKind::Train, JobStatus::Running), 100.0);
  SweepTotals totals;
  totals.pending = 3;
  totals.pending_train = 2;
  totals.pending_ensemble = 1;
  tracker.set_totals(totals);
  // 2 × 100 s + 1 ensemble (a tenth of a training job, none measured yet) + 60 s left of job 3, over 2
  // groups.
  ASSERT_TRUE(tracker.eta(140.0).has_value());
  EXPECT_NEAR(*tracker.eta(140.0), (200.0 + 10.0 + 60.0) / 2, 1e-9);
}

}  // namespace
}  // namespace e2e
