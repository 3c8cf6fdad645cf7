// The test-set stage in the store: one ensemble job per (sparsity, seed) cell, claimable only once every fold
// of its cell is done; results and case metrics carry their split and post-processing; permanent failures.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "db/reader.hpp"
#include "db/table.hpp"
#include "db_fixtures.hpp"

namespace e2e {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempFolder;

class EnsembleStoreTest : public ::testing::Test {
 protected:
  TempFolder dir;
  Store store{dir.file("e2e.db")};

  int64_t experiment_with_ensembles(std::vector<int> folds, std::vector<double> sparsities) {
    const int64_t id = store.upsert_experiment(testing::experiment_info());
    JobGrid jobs = testing::grid(std::move(folds), std::move(sparsities));
    jobs.test_ensembles = true;
    store.enumerate_jobs(id, jobs);
    return id;
  }

  // Claims the next job, which must be a training job, and records a CV result for it.
  void finish_next_training_job(int64_t experiment, double mdice = 0.8) {
    auto claimed = store.claim_next(experiment, 0);
    ASSERT_TRUE(claimed);
    ASSERT_EQ(claimed->job.kind, JobKind::Train);
    JobResult result;
    result.summary = testing::summary(mdice);
    store.record_result(claimed->job.id, result);
  }
};

TEST_F(EnsembleStoreTest, OneEnsembleJobPerCellIdempotently) {
  const int64_t experiment = experiment_with_ensembles({2, 0, 1}, {0.5, 0.8});
  JobGrid again = testing::grid({0, 1, 2}, {0.5, 0.8});
  again.test_ensembles = true;
  const EnumerateResult second = store.enumerate_jobs(experiment, again);
  EXPECT_EQ(second.created, 0);
  EXPECT_EQ(second.job_ids.size(), 6u + 2u);
  std::vector<Job> ensembles;
  for (const Job& job : store.reader().jobs())
    if (job.kind == JobKind::Ensemble) ensembles.push_back(job);
  ASSERT_EQ(ensembles.size(), 2u);
  EXPECT_EQ(ensembles[0].fold, -1);
  EXPECT_THAT(ensembles[0].folds, ElementsAre(0, 1, 2));  // sorted: the same cell whatever the grid order
  EXPECT_NE(ensembles[0].key, ensembles[1].key);
  // Another fold set is another ensemble.
  EXPECT_NE(ensemble_job_key("demo", 0.5, 0, {0, 1, 2}, "hash-a"),
            ensemble_job_key("demo", 0.5, 0, {0, 1}, "hash-a"));
}

TEST_F(EnsembleStoreTest, AnEnsembleIsClaimableOnlyWhenEveryFoldOfItsCellIsDone) {
  const int64_t experiment = experiment_with_ensembles({0, 1}, {0.5, 0.8});
  // Jobs go in id order and the ensembles were created after every training job: cell 0.5's ensemble
  // becomes runnable when its folds are done, while cell 0.8 still trains.
  finish_next_training_job(experiment);  // 0.5 fold 0
  finish_next_training_job(experiment);  // 0.5 fold 1
  auto claimed = store.claim_next(experiment, 0);
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->job.kind, JobKind::Train);  // 0.8 fold 0 (lower id than the ensembles)
  store.mark_preempted(claimed->job.id);
  // Now the 0.8 training job is runnable again but has a lower id; the 0.5 ensemble is also runnable.
  claimed = store.claim_next(experiment, 0);
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->job.kind, JobKind::Train);
  JobResult result;
  result.summary = testing::summary(0.8);
  store.record_result(claimed->job.id, result);
  claimed = store.claim_next(experiment, 0);  // 0.8 fold 1
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->job.kind, JobKind::Train);
  // While cell 0.8 still trains, only the 0.5 ensemble is runnable.
  auto ensemble = store.claim_next(experiment, 1);
  ASSERT_TRUE(ensemble);
  EXPECT_EQ(ensemble->job.kind, JobKind::Ensemble);
  EXPECT_DOUBLE_EQ(ensemble->job.sparsity, 0.5);
  EXPECT_FALSE(store.claim_next(experiment, 2));  // the 0.8 ensemble waits for fold 1
  store.record_result(claimed->job.id, result);
  auto second = store.claim_next(experiment, 2);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->job.kind, JobKind::Ensemble);
  EXPECT_DOUBLE_EQ(second->job.sparsity, 0.8);
}

TEST_F(EnsembleStoreTest, AFailedFoldKeepsItsEnsembleWaiting) {
  const int64_t experiment = experiment_with_ensembles({0}, {0.5});
  auto claimed = store.claim_next(experiment, 0);
  ASSERT_TRUE(claimed);
  store.mark_failed(claimed->job.id, "bad input", /*permanent=*/true);
  EXPECT_TRUE(store.job(claimed->job.id).failed_for_good());
  EXPECT_FALSE(store.claim_next(experiment, 0));
}

TEST_F(EnsembleStoreTest, PermanentFailureUsesEveryAttemptAtOnce) {
  const int64_t experiment = experiment_with_ensembles({0}, {0.5});
  auto claimed = store.claim_next(experiment, 0);
  const FailureOutcome outcome = store.mark_failed(claimed->job.id, "missing model", true);
  EXPECT_FALSE(outcome.will_retry);
  EXPECT_EQ(outcome.attempts, outcome.max_attempts);
}

TEST_F(EnsembleStoreTest, TestResultsKeepSplitPostprocessingAndBothMetricSets) {
  const int64_t experiment = experiment_with_ensembles({0}, {0.5});
  finish_next_training_job(experiment, 0.7);
  auto ensemble = store.claim_next(experiment, 0);
  ASSERT_TRUE(ensemble && ensemble->job.kind == JobKind::Ensemble);
  JobResult result;
  result.summary = testing::summary(0.9);
  result.summary.split = Split::Test;
  result.summary.postprocessing =
      R"({"classes":[1,2],"foreground_as_one":false,"largest_component_classes":[2]})";
  result.summary.cases_total = 3;
  result.summary.cases_scored = 2;
  for (bool postprocessed : {false, true}) {
    CaseMetricRow row{"case_9", "spleen", false, postprocessed ? 0.9 : 0.6, 0.5, 1.0, 3.0, "surfel"};
    row.split = Split::Test;
    row.postprocessed = postprocessed;
    row.nsd_fixed_spacing = 0.4;
    result.case_metrics.push_back(row);
  }
  store.record_result(ensemble->job.id, result);

  const StoreReader reader = store.reader();
  EXPECT_TRUE(reader.has_results(experiment, Split::Test));
  const std::vector<CaseMetricRow> rows = reader.case_metrics(ensemble->job.id);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_FALSE(rows[0].postprocessed);
  EXPECT_TRUE(rows[1].postprocessed);
  EXPECT_EQ(rows[1].split, Split::Test);
  EXPECT_DOUBLE_EQ(rows[1].nsd_fixed_spacing, 0.4);
  EXPECT_TRUE(std::isnan(rows[1].hd95_pooled));

  const std::vector<JobOutcome> cv = reader.outcomes(experiment, Split::Cv);
  const std::vector<JobOutcome> test = reader.outcomes(experiment, Split::Test);
  ASSERT_EQ(cv.size(), 1u);
  ASSERT_EQ(test.size(), 1u);
  EXPECT_EQ(test[0].fold, -1);
  EXPECT_EQ(test[0].summary.cases_scored, 2);
  // The table's per-class Dice of a test result is the post-processed one.
  ASSERT_EQ(test[0].class_dice.size(), 1u);
  EXPECT_DOUBLE_EQ(test[0].class_dice[0].second, 0.9);

  const ReportTable table = build_table("demo", test, {}, {}, Split::Test);
  ASSERT_EQ(table.rows.size(), 1u);
  EXPECT_EQ(table.rows[0].postprocessing, "class [2]");
  const std::string md = format_table(table, TableFormat::Markdown, true);
  EXPECT_THAT(md, HasSubstr("held-out test set"));
  EXPECT_THAT(md, HasSubstr("2 of 3 test predictions scored"));
  EXPECT_THAT(md, HasSubstr("| class [2] |"));
  const std::string json = format_table(table, TableFormat::Json, true);
  EXPECT_THAT(json, HasSubstr("\"split\": \"test\""));
  EXPECT_THAT(json, HasSubstr("\"cases_scored\": 2"));
}

}  // namespace
}  // namespace e2e
