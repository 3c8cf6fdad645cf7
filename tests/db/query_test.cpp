// Read-only queries: filters (bound parameters only), job lookup, status summary, curves and export.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/errors.hpp"
#include "db/export.hpp"
#include "db/plot.hpp"
#include "db/reader.hpp"
#include "db/status.hpp"
#include "db_fixtures.hpp"

namespace e2e {
namespace {

namespace fs = std::filesystem;

using ::testing::HasSubstr;
using testing::TempFolder;

class QueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Store store(path);
    experiment = store.upsert_experiment(testing::experiment_info("demo", "hash-a", /*epochs=*/4));
    store.upsert_experiment(testing::experiment_info("other", "hash-b"));
    store.enumerate_jobs(experiment, testing::grid({0, 1, 2}, {0.8}));
    done = store.claim_next(experiment, 0)->job.id;
    for (int64_t e = 0; e < 4; ++e)
      store.record_epoch(done, {e, 1.0, 0.9, {0.5, 0.6}, 0.55, 0.01, 10.0, 0.1});
    JobResult result{testing::summary(0.8),
                     {{"c1", "liver", false, 0.8, 0.7, 1, 2, "surfel"}},
                     MaskSnapshot{1, MaskKind::Final, testing::striped_topology({"x0_1.conv0"}, 4, 8, 2)}};
    store.record_result(done, result);
    running = store.claim_next(experiment, 1)->job.id;
    store.record_epoch(running, {0, 1.0, 0.9, {0.5, 0.6}, 0.55, 0.01, 20.0, 0.1});
  }

  TempFolder dir;
  std::string path = dir.file("e2e.db");
  int64_t experiment = 0;
  int64_t done = 0;
  int64_t running = 0;
};

TEST_F(QueryTest, FiltersByStatusAndExperiment) {
  StoreReader reader(path);
  EXPECT_EQ(reader.jobs().size(), 3u);
  EXPECT_EQ(reader.jobs({JobStatus::Done, std::nullopt}).size(), 1u);
  EXPECT_EQ(reader.jobs({JobStatus::Pending, std::string("demo")}).size(), 1u);
  EXPECT_EQ(reader.jobs({std::nullopt, std::string("other")}).size(), 0u);
  const std::vector<ExperimentSummary> experiments = reader.experiments();
  ASSERT_EQ(experiments.size(), 2u);
  EXPECT_EQ(experiments[0].experiment.name, "demo");
  EXPECT_EQ(experiments[0].jobs, 3);
  EXPECT_EQ(experiments[0].jobs_by_status.at("done"), 1);
}

TEST_F(QueryTest, QuotesAndSqlInFilterValuesAreJustUnknownNames) {
  const std::string before = testing::file_bytes(path);
  StoreReader reader(path);
  for (const std::string& hostile : {std::string("demo' OR '1'='1"), std::string("x'; DROP TABLE jobs; --"),
                                     std::string("\"demo\""), std::string("demo%"), std::string("%"),
                                     std::string("_emo"), std::string("demo\\"), std::string("')--")}) {
    try {
      reader.jobs({std::nullopt, hostile});
      FAIL() << hostile;
    } catch (const InputError& e) {
      EXPECT_THAT(e.what(), HasSubstr("no such experiment '" + hostile + "'"));
    }
  }
  EXPECT_THROW(reader.find_job("1 OR 1=1"), InputError);
  EXPECT_THROW(reader.find_job("%%%%%%%%"), InputError);
  EXPECT_THROW(parse_job_status("done' OR '1'='1", "--status"), ConfigError);
  EXPECT_EQ(reader.jobs().size(), 3u);
  EXPECT_EQ(testing::file_bytes(path), before);
}

TEST_F(QueryTest, FindsJobsByIdOrKeyPrefix) {
  StoreReader reader(path);
  const Job job = reader.job(done);
  EXPECT_EQ(reader.find_job(std::to_string(done)).id, done);
  EXPECT_EQ(reader.find_job(job.key.substr(0, 10)).id, done);
  EXPECT_THAT([&] { reader.find_job("999"); }, ::testing::Throws<InputError>());
  EXPECT_THROW(reader.find_job("abc"), InputError);  // too short to be a key prefix
}

TEST_F(QueryTest, StatusCountsStatesProgressAndEta) {
  StoreReader reader(path);
  const StatusSummary s = summarize_status(reader, std::string("demo"));
  EXPECT_EQ(s.jobs, 3);
  EXPECT_EQ(s.jobs_by_status.at("done"), 1);
  EXPECT_EQ(s.jobs_by_status.at("running"), 1);
  EXPECT_EQ(s.jobs_by_status.at("pending"), 1);
  EXPECT_EQ(s.epochs_total, 12);
  EXPECT_EQ(s.epochs_done, 5);  // 4 of the done job, 1 of the running one
  EXPECT_NEAR(s.progress, 5.0 / 12.0, 1e-12);
  EXPECT_NEAR(s.mean_epoch_seconds, 12.0, 1e-12);  // (4·10 + 20) / 5
  ASSERT_TRUE(s.eta_seconds);
  EXPECT_NEAR(*s.eta_seconds, 7 * 12.0, 1e-9);  // one job running at a time
  ASSERT_EQ(s.running.size(), 1u);
  EXPECT_EQ(s.running[0].epochs_done, 1);
  EXPECT_THAT(status_text(s), HasSubstr("3 jobs"));
  EXPECT_EQ(nlohmann::json::parse(status_json(s))["epochs_done"], 5);
}

TEST_F(QueryTest, CurvesCsvHasOneRowPerEpoch) {
  StoreReader reader(path);
  const std::string csv = curves_csv(reader.epochs(done));
  EXPECT_THAT(csv, HasSubstr("epoch,train_loss,val_loss,mean_pseudo_dice,pseudo_dice_1,pseudo_dice_2,"));
  EXPECT_THAT(csv, HasSubstr("\n3,1,0.9,0.55,0.5,0.6,0.01,10,0.1\n"));
  if (!gnuplot_available()) GTEST_SKIP() << "gnuplot is not installed";
  const std::string png = dir.file("plots/curves.png");
  EXPECT_TRUE(plot_curves_png(reader.epochs(done), "job 1", png));
  EXPECT_EQ(testing::file_bytes(png).substr(1, 3), "PNG");
}

TEST_F(QueryTest, ExportWritesEveryTableAndTheMaskFiles) {
  StoreReader reader(path);
  const std::string out = dir.file("export");
  const ExportReport report = export_store(reader, out, ExportFormat::JsonLines, std::string("demo"));
  EXPECT_EQ(report.rows.at("experiments"), 1);
  EXPECT_EQ(report.rows.at("jobs"), 3);
  EXPECT_EQ(report.rows.at("epochs"), 5);
  EXPECT_EQ(report.rows.at("results"), 1);
  EXPECT_EQ(report.mask_files, 1);
  std::istringstream jobs(testing::file_bytes(out + "/jobs.jsonl"));
  std::string line;
  std::getline(jobs, line);
  EXPECT_EQ(nlohmann::json::parse(line)["status"], "done");
  std::istringstream masks(testing::file_bytes(out + "/masks.jsonl"));
  std::getline(masks, line);
  const std::string file = nlohmann::json::parse(line)["topology_file"];
  EXPECT_EQ(Topology::deserialize(testing::file_bytes(out + "/" + file)),
            testing::striped_topology({"x0_1.conv0"}, 4, 8, 2));
  std::istringstream epochs(testing::file_bytes(out + "/epochs.jsonl"));
  std::getline(epochs, line);
  EXPECT_TRUE(nlohmann::json::parse(line)["pseudo_dice"].is_array());

  EXPECT_THROW(export_store(reader, out, ExportFormat::Csv), ConfigError);  // not empty
  const ExportReport all = export_store(reader, dir.file("csv"), ExportFormat::Csv);
  EXPECT_EQ(all.rows.at("experiments"), 2);
  EXPECT_THAT(testing::file_bytes(dir.file("csv/results.csv")), HasSubstr("job_id,mdice,mnsd"));
  EXPECT_THROW(export_store(reader, dir.file("none"), ExportFormat::Csv, std::string("nope")), InputError);
  EXPECT_FALSE(fs::exists(dir.file("none")));
}

}  // namespace
}  // namespace e2e
