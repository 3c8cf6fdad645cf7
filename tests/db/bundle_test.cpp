// Result bundles: written by array tasks, imported idempotently by the one writer.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "configs/config.hpp"
#include "db/bundle.hpp"
#include "db/reader.hpp"
#include "db_fixtures.hpp"

namespace e2e {
namespace {

namespace fs = std::filesystem;

using ::testing::HasSubstr;
using testing::TempFolder;

ResultBundle done_bundle(int fold, double mdice = 0.8) {
  ResultBundle b;
  b.experiment = testing::experiment_info();
  b.fold = fold;
  b.sparsity = 0.8;
  b.seed = 0;
  b.status = JobStatus::Done;
  b.attempts = 0;
  b.max_attempts = 3;
  b.node = "node-" + std::to_string(fold);
  b.checkpoint = Checkpoint{"/ckpt/fold" + std::to_string(fold) + ".pt", "beef", 1000};
  JobResult result{testing::summary(mdice), {}, std::nullopt};
  result.case_metrics = {
      {"c1", "liver", false, 0.9, 0.8, 1.0, std::numeric_limits<double>::infinity(), "surfel"},
      {"c1", "spleen", false, std::nan(""), std::nan(""), 1.0, std::nan(""), "surfel"}};
  result.final_masks = MaskSnapshot{4, MaskKind::Final, testing::striped_topology({"x0_1.conv0"}, 4, 8, 3)};
  b.result = result;
  b.epochs = {{0, 1.0, 0.9, {0.5}, 0.5, 0.01, 10.0, 0.1}, {1, 0.8, 0.7, {0.6}, 0.6, 0.005, 10.0, 0.1}};
  b.events = {{"2024-01-01T00:00:00.000Z", EventKind::Started, "array task 3"},
              {"2024-01-01T01:00:00.000Z", EventKind::Done, ""}};
  b.periodic_masks = {
      MaskSnapshot{2, MaskKind::Periodic, testing::striped_topology({"x0_1.conv0"}, 4, 8, 2)}};
  return b;
}

int64_t count_rows(Store& store, const std::string& table) {
  Statement q = store.database().prepare("SELECT count(*) FROM " + table);
  q.step();
  return q.int64(0);
}

TEST(ResultBundles, WritesAndReadsBackEveryPart) {
  TempFolder dir;
  const std::string path = dir.file("cell0");
  const ResultBundle written = done_bundle(0);
  write_result_bundle(path, written);
  EXPECT_TRUE(fs::exists(dir.path() / "cell0" / "masks" / "final.e2et"));
  EXPECT_TRUE(fs::exists(dir.path() / "cell0" / "masks" / "periodic_2.e2et"));
  EXPECT_FALSE(fs::exists(dir.path() / "cell0.partial"));
  const ResultBundle read = read_result_bundle(path);
  EXPECT_EQ(read.key(), written.key());
  EXPECT_EQ(read.node, "node-0");
  ASSERT_TRUE(read.result);
  EXPECT_DOUBLE_EQ(read.result->summary.mean_dice, 0.8);
  EXPECT_TRUE(std::isinf(read.result->case_metrics[0].hd95));
  EXPECT_TRUE(std::isnan(read.result->case_metrics[1].dice));
  ASSERT_TRUE(read.result->final_masks);
  EXPECT_EQ(read.result->final_masks->topology, written.result->final_masks->topology);
  EXPECT_EQ(read.periodic_masks.size(), 1u);
  EXPECT_EQ(read.epochs.size(), 2u);
  EXPECT_EQ(read.events.size(), 2u);
  EXPECT_EQ(read.checkpoint->iteration, 1000);
  // Rewriting (a requeued array task) replaces the bundle.
  write_result_bundle(path, done_bundle(0, 0.9));
  EXPECT_DOUBLE_EQ(read_result_bundle(path).result->summary.mean_dice, 0.9);
}

TEST(ResultBundles, IncompleteBundlesAreNotWritten) {
  TempFolder dir;
  ResultBundle b = done_bundle(0);
  b.result.reset();
  EXPECT_THROW(write_result_bundle(dir.file("x"), b), ConfigError);
  EXPECT_FALSE(fs::exists(dir.file("x")));
}

TEST(ResultBundles, ImportIsIdempotent) {
  TempFolder dir;
  write_result_bundle(dir.file("bundles/cell0"), done_bundle(0));
  write_result_bundle(dir.file("bundles/cell1"), done_bundle(1, 0.7));
  Store store(dir.file("e2e.db"));
  const std::vector<std::string> bundles = find_bundles({dir.file("bundles")});
  ASSERT_EQ(bundles.size(), 2u);

  const std::vector<ImportOutcome> first = import_bundles(store, bundles);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_TRUE(first[0].imported);
  EXPECT_TRUE(first[1].imported);
  const StoreReader reader = store.reader();
  const Job job = reader.job(first[0].job_id);
  EXPECT_EQ(job.status, JobStatus::Done);
  EXPECT_EQ(job.node, "node-0");
  EXPECT_EQ(job.checkpoint->path, "/ckpt/fold0.pt");
  EXPECT_EQ(job.key, done_bundle(0).key());
  EXPECT_EQ(reader.epochs(job.id).size(), 2u);
  EXPECT_EQ(reader.case_metrics(job.id).size(), 2u);
  EXPECT_EQ(reader.masks(job.id).size(), 2u);
  EXPECT_EQ(reader.events(job.id).size(), 2u);
  EXPECT_DOUBLE_EQ(reader.result(first[1].job_id)->mean_dice, 0.7);

  const std::vector<ImportOutcome> again = import_bundles(store, bundles);
  EXPECT_FALSE(again[0].imported);
  EXPECT_EQ(again[0].note, "already imported");
  EXPECT_EQ(again[0].job_id, first[0].job_id);
  EXPECT_EQ(count_rows(store, "jobs"), 2);
  EXPECT_EQ(count_rows(store, "results"), 2);
  EXPECT_EQ(count_rows(store, "events"), 4);

  // Another bundle of a cell that is already done (a rerun): skipped, the first result stays.
  write_result_bundle(dir.file("rerun"), done_bundle(0, 0.95));
  const std::vector<ImportOutcome> rerun = import_bundles(store, {dir.file("rerun")});
  EXPECT_FALSE(rerun[0].imported);
  EXPECT_EQ(rerun[0].note, "the job is already done");
  EXPECT_DOUBLE_EQ(reader.result(first[0].job_id)->mean_dice, 0.8);
}

TEST(ResultBundles, ImportMatchesJobsTheCoordinatorEnumerated) {
  TempFolder dir;
  Store store(dir.file("e2e.db"));
  const int64_t experiment = store.upsert_experiment(testing::experiment_info());
  const EnumerateResult jobs = store.enumerate_jobs(experiment, testing::grid({0, 1}, {0.8}));
  write_result_bundle(dir.file("cell1"), done_bundle(1));
  const std::vector<ImportOutcome> outcomes = import_bundles(store, {dir.file("cell1")});
  EXPECT_EQ(outcomes[0].job_id, jobs.job_ids[1]);
  EXPECT_EQ(count_rows(store, "jobs"), 2);
}

TEST(ResultBundles, FailedCellsImportAsFailed) {
  TempFolder dir;
  ResultBundle b = done_bundle(0);
  b.status = JobStatus::Failed;
  b.result.reset();
  b.attempts = 3;
  b.error = "loss is NaN";
  write_result_bundle(dir.file("failed"), b);
  Store store(dir.file("e2e.db"));
  const auto outcomes = import_bundles(store, {dir.file("failed")});
  const Job job = store.job(outcomes[0].job_id);
  EXPECT_EQ(job.status, JobStatus::Failed);
  EXPECT_TRUE(job.failed_for_good());
  EXPECT_EQ(job.error, "loss is NaN");
  EXPECT_FALSE(store.reader().result(job.id));
}

std::string import_error(Store& store, const std::vector<std::string>& dirs) {
  try {
    import_bundles(store, dirs);
  } catch (const InputError& e) {
    return e.what();
  }
  return "no InputError";
}

// Found by tests/fuzz (fuzz_bundle): a mask file declaring 2^62 x 1 bits made the reader allocate 2^59 bytes
// (and larger shapes overflowed rows x cols) instead of refusing the 60-byte blob.
TEST(ResultBundles, MaskFileWithAShapeLargerThanItsBitsIsRefused) {
  TempFolder dir;
  write_result_bundle(dir.file("cell"), done_bundle(0));
  const auto u64 = [](uint64_t value) {
    std::string bytes;
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
    return bytes;
  };
  for (const auto& [rows, cols] :
       {std::pair<uint64_t, uint64_t>{uint64_t{1} << 62, 1}, {uint64_t{1} << 61, 8}}) {
    const std::string blob =
        "E2ET" + u64(1) + u64(1) + u64(1) + "w" + u64(rows) + u64(cols) + std::string(8, '\xff');
    testing::write_text(dir.file("cell/masks/final.e2et"), blob);
    try {
      read_result_bundle(dir.file("cell"));
      ADD_FAILURE() << "no InputError for a " << rows << " x " << cols << " mask";
    } catch (const InputError& e) {
      EXPECT_THAT(e.what(), HasSubstr("final.e2et': topology blob has an impossible shape for 'w'"));
    }
  }
}

TEST(ResultBundles, BadBundlesAreRefusedAndNothingIsImported) {
  TempFolder dir;
  write_result_bundle(dir.file("good"), done_bundle(0));
  write_result_bundle(dir.file("bad"), done_bundle(1));
  Store store(dir.file("e2e.db"));
  const std::string json_path = dir.file("bad/bundle.json");
  const std::string original = testing::file_bytes(json_path);
  auto edit = [&](const std::function<void(nlohmann::json&)>& change) {
    nlohmann::json j = nlohmann::json::parse(original);
    change(j);
    testing::write_text(json_path, j.dump());
  };

  edit([](nlohmann::json& j) { j["job"]["fold"] = 3; });  // key no longer matches
  EXPECT_THAT(import_error(store, {dir.file("good"), dir.file("bad")}), HasSubstr("job.key"));
  edit([](nlohmann::json& j) { j["result"]["mdice"] = "high"; });
  EXPECT_THAT(import_error(store, {dir.file("good"), dir.file("bad")}),
              HasSubstr("result.mdice: expected a number"));
  edit([](nlohmann::json& j) { j["masks"][0]["topology_hash"] = "0000"; });
  EXPECT_THAT(import_error(store, {dir.file("good"), dir.file("bad")}), HasSubstr("topology_hash"));
  edit([](nlohmann::json& j) { j["masks"][0]["file"] = "../../etc/passwd"; });
  EXPECT_THAT(import_error(store, {dir.file("good"), dir.file("bad")}), HasSubstr("inside the bundle"));
  edit([](nlohmann::json& j) { j["version"] = 99; });
  EXPECT_THAT(import_error(store, {dir.file("good"), dir.file("bad")}), HasSubstr("not supported"));
  testing::write_text(json_path, "{ not json");
  EXPECT_THAT(import_error(store, {dir.file("good"), dir.file("bad")}), HasSubstr("not valid JSON"));
  EXPECT_THROW(find_bundles({dir.file("nowhere")}), InputError);
  EXPECT_THAT(import_error(store, {dir.file("nowhere")}), HasSubstr("bundle.json: cannot open"));

  EXPECT_EQ(count_rows(store, "jobs"), 0);
  EXPECT_EQ(count_rows(store, "experiments"), 0);

  // A bundle of the same experiment name with another config is refused.
  ResultBundle other = done_bundle(2);
  other.experiment.config_hash = "hash-other";
  write_result_bundle(dir.file("other"), other);
  import_bundles(store, {dir.file("good")});
  EXPECT_THAT(import_error(store, {dir.file("other")}), HasSubstr("another configuration"));
  EXPECT_EQ(count_rows(store, "jobs"), 1);
}

}  // namespace
}  // namespace e2e
