// The coordinator's writer: experiments, idempotent job keys, claims, failure handling and per-job records.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <thread>

#include "configs/config.hpp"
#include "db/reader.hpp"
#include "db_fixtures.hpp"

namespace e2e {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempFolder;

class StoreTest : public ::testing::Test {
 protected:
  TempFolder dir;
  std::string path = dir.file("e2e.db");
  Store store{path};

  int64_t experiment_with_jobs(std::vector<int> folds, std::vector<double> sparsities, int max_attempts = 3) {
    const int64_t id = store.upsert_experiment(testing::experiment_info());
    store.enumerate_jobs(id, testing::grid(std::move(folds), std::move(sparsities), max_attempts));
    return id;
  }

  std::vector<EventKind> event_kinds(int64_t job_id) {
    std::vector<EventKind> kinds;
    for (const Event& e : store.reader().events(job_id)) kinds.push_back(e.kind);
    return kinds;
  }
};

TEST_F(StoreTest, ExperimentUpsertIsIdempotentAndGuardsTheConfig) {
  const int64_t id = store.upsert_experiment(testing::experiment_info("demo", "hash-a"));
  EXPECT_EQ(store.upsert_experiment(testing::experiment_info("demo", "hash-a")), id);
  try {
    store.upsert_experiment(testing::experiment_info("demo", "hash-b"));
    FAIL() << "a changed config must be refused";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("demo"));
    EXPECT_THAT(e.what(), HasSubstr("another configuration"));
  }
  EXPECT_EQ(store.reader().experiment("demo").config_hash, "hash-a");
  EXPECT_EQ(store.upsert_experiment(testing::experiment_info("demo", "hash-b"), /*allow_config_change=*/true),
            id);
  EXPECT_EQ(store.reader().experiment("demo").config_hash, "hash-b");
}

TEST_F(StoreTest, EnumeratingTwiceGivesTheSameJobs) {
  const int64_t id = store.upsert_experiment(testing::experiment_info());
  const EnumerateResult first = store.enumerate_jobs(id, testing::grid({0, 1, 2, 3, 4}, {0.8, 0.9}));
  EXPECT_EQ(first.created, 10);
  const EnumerateResult second = store.enumerate_jobs(id, testing::grid({0, 1, 2, 3, 4}, {0.8, 0.9}));
  EXPECT_EQ(second.created, 0);
  EXPECT_EQ(second.job_ids, first.job_ids);
  // A wider relaunch adds only the new cells.
  const EnumerateResult wider = store.enumerate_jobs(id, testing::grid({0, 1, 2, 3, 4}, {0.7, 0.8, 0.9}));
  EXPECT_EQ(wider.created, 5);
  EXPECT_EQ(store.reader().jobs().size(), 15u);
  std::set<std::string> keys;
  for (const Job& job : store.reader().jobs()) keys.insert(job.key);
  EXPECT_EQ(keys.size(), 15u);
}

TEST_F(StoreTest, JobKeyDependsOnEveryIdentityField) {
  const std::string base = job_key("demo", 0, 0.8, 0, "h");
  EXPECT_EQ(base, job_key("demo", 0, 0.80, 0, "h"));
  EXPECT_EQ(base.size(), 64u);
  EXPECT_NE(base, job_key("demo2", 0, 0.8, 0, "h"));
  EXPECT_NE(base, job_key("demo", 1, 0.8, 0, "h"));
  EXPECT_NE(base, job_key("demo", 0, 0.9, 0, "h"));
  EXPECT_NE(base, job_key("demo", 0, 0.8, 1, "h"));
  EXPECT_NE(base, job_key("demo", 0, 0.8, 0, "h2"));
}

TEST_F(StoreTest, ClaimsHandOutEveryJobOnceInOrder) {
  const int64_t experiment = experiment_with_jobs({0, 1, 2}, {0.8});
  std::vector<int64_t> claimed;
  while (auto job = store.claim_next(experiment, static_cast<int>(claimed.size()), "node-a")) {
    EXPECT_EQ(job->job.status, JobStatus::Running);
    EXPECT_EQ(job->previous_status, JobStatus::Pending);
    EXPECT_FALSE(job->resume());
    EXPECT_EQ(job->config_json, testing::tiny_config_json());
    claimed.push_back(job->job.id);
  }
  EXPECT_EQ(claimed.size(), 3u);
  EXPECT_EQ(std::set<int64_t>(claimed.begin(), claimed.end()).size(), 3u);
  EXPECT_THAT(event_kinds(claimed[0]), ElementsAre(EventKind::Started));
  EXPECT_FALSE(store.claim_next(experiment, 9));
}

TEST_F(StoreTest, TwoConnectionsClaimingConcurrentlyNeverShareAJob) {
  const int64_t experiment = experiment_with_jobs({0, 1, 2, 3, 4}, {0.7, 0.8, 0.9, 0.95});
  std::vector<int64_t> got[2];
  auto claim_all = [&](int group) {
    Store own(path);
    while (auto job = own.claim_next(experiment, group)) got[group].push_back(job->job.id);
  };
  std::thread a(claim_all, 0);
  std::thread b(claim_all, 1);
  a.join();
  b.join();
  std::set<int64_t> all(got[0].begin(), got[0].end());
  all.insert(got[1].begin(), got[1].end());
  EXPECT_EQ(got[0].size() + got[1].size(), 20u);
  EXPECT_EQ(all.size(), 20u);
}

TEST_F(StoreTest, PreemptionUsesNoAttemptAndResumesFromTheCheckpoint) {
  const int64_t experiment = experiment_with_jobs({0}, {0.8}, 2);
  const int64_t id = store.claim_next(experiment, 0)->job.id;
  store.mark_checkpointed(id, {"/ckpt/job.pt", "abc123", 500});
  store.mark_preempted(id);
  Job job = store.job(id);
  EXPECT_EQ(job.status, JobStatus::Preempted);
  EXPECT_EQ(job.attempts, 0);
  auto resumed = store.claim_next(experiment, 1);
  ASSERT_TRUE(resumed);
  EXPECT_EQ(resumed->job.id, id);
  EXPECT_EQ(resumed->previous_status, JobStatus::Preempted);
  ASSERT_TRUE(resumed->resume());
  EXPECT_EQ(resumed->job.checkpoint->path, "/ckpt/job.pt");
  EXPECT_EQ(resumed->job.checkpoint->sha256, "abc123");
  EXPECT_EQ(resumed->job.checkpoint->iteration, 500);
  EXPECT_EQ(resumed->job.attempts, 0);
  EXPECT_THAT(event_kinds(id), ElementsAre(EventKind::Started, EventKind::Checkpointed, EventKind::Preempted,
                                           EventKind::Resumed));
}

TEST_F(StoreTest, FailedJobsAreRetriedUpToMaxAttemptsThenFailForGood) {
  const int64_t experiment = experiment_with_jobs({0}, {0.8}, 3);
  int64_t id = 0;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto claimed = store.claim_next(experiment, 0);
    ASSERT_TRUE(claimed) << "attempt " << attempt;
    id = claimed->job.id;
    EXPECT_EQ(claimed->previous_status, attempt == 1 ? JobStatus::Pending : JobStatus::Failed);
    const FailureOutcome outcome =
        store.mark_failed(id, "loss is NaN at iteration " + std::to_string(attempt));
    EXPECT_EQ(outcome.attempts, attempt);
    EXPECT_EQ(outcome.will_retry, attempt < 3);
  }
  EXPECT_FALSE(store.claim_next(experiment, 0));
  const Job job = store.job(id);
  EXPECT_EQ(job.status, JobStatus::Failed);
  EXPECT_TRUE(job.failed_for_good());
  EXPECT_EQ(job.error, "loss is NaN at iteration 3");
  EXPECT_THAT(event_kinds(id), ElementsAre(EventKind::Started, EventKind::Failed, EventKind::Retried,
                                           EventKind::Failed, EventKind::Retried, EventKind::Failed));
  EXPECT_THAT(store.reader().events(id).back().message, HasSubstr("failed for good"));
}

TEST_F(StoreTest, RunnableJobsComeBeforeRetries) {
  const int64_t experiment = experiment_with_jobs({0, 1}, {0.8});
  const int64_t first = store.claim_next(experiment, 0)->job.id;
  store.mark_failed(first, "bad case");
  const auto next = store.claim_next(experiment, 0);
  ASSERT_TRUE(next);
  EXPECT_NE(next->job.id, first);  // the pending job goes first
  EXPECT_EQ(store.claim_next(experiment, 1)->job.id, first);
}

TEST_F(StoreTest, RecoveryTurnsRunningIntoInterruptedWithAnEvent) {
  const int64_t experiment = experiment_with_jobs({0, 1, 2}, {0.8});
  const int64_t a = store.claim_next(experiment, 0)->job.id;
  const int64_t b = store.claim_next(experiment, 1)->job.id;
  store.mark_checkpointed(a, {"/ckpt/a.pt", "ff", 100});
  store.record_result(b, JobResult{testing::summary(0.8), {}, std::nullopt});
  {
    Store restarted(path);  // the coordinator after a crash
    EXPECT_EQ(restarted.recover_interrupted(), 1);
    EXPECT_EQ(restarted.job(a).status, JobStatus::Interrupted);
    EXPECT_EQ(restarted.job(b).status, JobStatus::Done);
    EXPECT_EQ(restarted.reader().events(a).back().kind, EventKind::Interrupted);
    auto resumed = restarted.claim_next(experiment, 0);
    ASSERT_TRUE(resumed);
    EXPECT_EQ(resumed->job.id, a);
    EXPECT_EQ(resumed->previous_status, JobStatus::Interrupted);
    EXPECT_TRUE(resumed->resume());
    EXPECT_EQ(restarted.recover_interrupted(), 1);
  }
}

TEST_F(StoreTest, TransitionsRequireARunningJob) {
  const int64_t experiment = experiment_with_jobs({0}, {0.8});
  const int64_t id = store.reader().jobs().front().id;
  EXPECT_THROW(store.mark_failed(id, "x"), StoreError);
  EXPECT_THROW(store.mark_preempted(id), StoreError);
  EXPECT_THROW(store.record_result(id, JobResult{testing::summary(0.5), {}, std::nullopt}), StoreError);
  EXPECT_EQ(store.job(id).status, JobStatus::Pending);
  store.claim_next(experiment, 0);
  store.mark_running(id, "gpu-node-7");
  store.heartbeat(id);
  EXPECT_EQ(store.job(id).node, "gpu-node-7");
  store.mark_done(id);
  EXPECT_THROW(store.heartbeat(id), StoreError);
  EXPECT_EQ(store.job(id).status, JobStatus::Done);
}

TEST_F(StoreTest, EpochsRoundTripAndReinsertReplaces) {
  const int64_t experiment = experiment_with_jobs({0}, {0.8});
  const int64_t id = store.claim_next(experiment, 0)->job.id;
  for (int64_t e = 0; e < 3; ++e)
    store.record_epoch(id, {e, 1.0 - 0.1 * e, 0.9 - 0.1 * e, {0.5, 0.6}, 0.55, 0.01, 12.5, 0.1});
  store.record_epoch(id, {2, 0.123, 0.456, {0.7, std::nan("")}, 0.7, 0.005, 11.0, 0.2});  // resumed rewrite
  const std::vector<EpochRecord> epochs = store.reader().epochs(id);
  ASSERT_EQ(epochs.size(), 3u);
  EXPECT_DOUBLE_EQ(epochs[0].train_loss, 1.0);
  EXPECT_DOUBLE_EQ(epochs[1].val_loss, 0.8);
  EXPECT_THAT(epochs[1].pseudo_dice, ElementsAre(0.5, 0.6));
  EXPECT_DOUBLE_EQ(epochs[2].train_loss, 0.123);
  EXPECT_DOUBLE_EQ(epochs[2].pseudo_dice[0], 0.7);
  EXPECT_TRUE(std::isnan(epochs[2].pseudo_dice[1]));
  EXPECT_DOUBLE_EQ(epochs[2].loader_wait_fraction, 0.2);
}

TEST_F(StoreTest, ResultCaseMetricsAndMasksRoundTripInOneTransaction) {
  const int64_t experiment = experiment_with_jobs({0}, {0.8});
  const int64_t id = store.claim_next(experiment, 0)->job.id;
  JobResult result{testing::summary(0.85, 0.7, 1234567, 3.5e9), {}, std::nullopt};
  result.summary.metrics_json = "{\"cases\": 2}";
  const double inf = std::numeric_limits<double>::infinity();
  result.case_metrics = {{"case_1", "liver", false, 0.9, 0.8, 1.0, 2.5, "surfel"},
                         {"case_1", "spleen", false, std::nan(""), std::nan(""), 1.0, std::nan(""), "surfel"},
                         {"case_2", "liver", false, 0.7, 0.6, 1.0, inf, "surfel"},
                         {"case_2", "spleen", false, 0.5, 0.4, 2.0, 4.0, "surfel"}};
  result.final_masks = MaskSnapshot{7, MaskKind::Final, testing::striped_topology({"x0_1.conv0"}, 4, 8, 3)};
  store.record_masks(id, {3, MaskKind::Periodic, testing::striped_topology({"x0_1.conv0"}, 4, 8, 2)});
  store.record_result(id, result);

  const StoreReader reader = store.reader();
  EXPECT_EQ(reader.job(id).status, JobStatus::Done);
  const auto stored = reader.result(id);
  ASSERT_TRUE(stored);
  EXPECT_DOUBLE_EQ(stored->mean_dice, 0.85);
  EXPECT_DOUBLE_EQ(stored->mean_nsd, 0.7);
  EXPECT_EQ(stored->params, 1234567);
  EXPECT_DOUBLE_EQ(stored->flops, 3.5e9);
  EXPECT_EQ(stored->patch, (std::array<int64_t, 3>{16, 32, 32}));
  EXPECT_EQ(stored->metrics_json, "{\"cases\": 2}");

  const std::vector<CaseMetricRow> rows = reader.case_metrics(id);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].structure, "liver");
  EXPECT_EQ(rows[1].structure, "spleen");
  EXPECT_TRUE(std::isnan(rows[1].dice));
  EXPECT_TRUE(std::isinf(rows[2].hd95));
  EXPECT_DOUBLE_EQ(rows[3].nsd_tolerance_mm, 2.0);

  const std::vector<MaskRecord> masks = reader.masks(id);
  ASSERT_EQ(masks.size(), 2u);
  const auto latest = reader.latest_masks(id);
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->kind, MaskKind::Final);
  EXPECT_EQ(latest->step, 7);
  EXPECT_EQ(reader.topology(latest->id), result.final_masks->topology);
  EXPECT_EQ(latest->topology_hash, result.final_masks->topology.hash_hex());
  EXPECT_EQ(reader.events(id).back().kind, EventKind::Done);

  // Recording the result again replaces it: one result per job.
  result.summary.mean_dice = 0.86;
  store.record_result(id, result);
  EXPECT_DOUBLE_EQ(reader.result(id)->mean_dice, 0.86);
  EXPECT_EQ(reader.masks(id).size(), 2u);
  EXPECT_EQ(reader.case_metrics(id).size(), 4u);
}

TEST_F(StoreTest, AFailingResultWriteLeavesNothingBehind) {
  const int64_t experiment = experiment_with_jobs({0}, {0.8});
  const int64_t id = store.claim_next(experiment, 0)->job.id;
  JobResult result{testing::summary(0.85), {}, std::nullopt};
  // The same (case, structure) twice with INSERT OR REPLACE is fine; a NOT NULL violation is not.
  result.case_metrics = {{"case_1", "liver", false, 0.9, 0.8, 1.0, 2.5, "surfel"}};
  store.database().exec(
      "CREATE TRIGGER refuse BEFORE INSERT ON case_metrics BEGIN SELECT RAISE(ABORT, 'disk'); END");
  EXPECT_THROW(store.record_result(id, result), StoreError);
  store.database().exec("DROP TRIGGER refuse");
  EXPECT_FALSE(store.reader().result(id));
  EXPECT_EQ(store.job(id).status, JobStatus::Running);
}

TEST_F(StoreTest, ClaimCarriesTheFoldsSplit) {
  const int64_t experiment = experiment_with_jobs({1}, {0.8});
  store.record_splits(
      experiment,
      {{0, "a", "val"}, {0, "b", "train"}, {1, "a", "train"}, {1, "c", "train"}, {1, "b", "val"}});
  const auto claimed = store.claim_next(experiment, 0);
  ASSERT_TRUE(claimed);
  EXPECT_THAT(claimed->train_cases, ElementsAre("a", "c"));
  EXPECT_THAT(claimed->val_cases, ElementsAre("b"));
}

TEST_F(StoreTest, SplitsAreReplacedPerExperiment) {
  const int64_t id = store.upsert_experiment(testing::experiment_info());
  store.record_splits(id, {{0, "a", "train"}, {0, "b", "val"}});
  store.record_splits(id, {{0, "a", "val"}, {1, "b", "train"}});
  const std::vector<SplitEntry> splits = store.reader().splits(id);
  ASSERT_EQ(splits.size(), 2u);
  EXPECT_EQ(splits[0].role, "val");
  EXPECT_THROW(store.record_splits(id, {{0, "a", "test"}}), ConfigError);
  EXPECT_EQ(store.reader().splits(id).size(), 2u);
}

}  // namespace
}  // namespace e2e
