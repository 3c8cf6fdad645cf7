// The report table: means over folds and seeds, sd over folds, PT score, baselines CSV and the output
// formats.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/errors.hpp"
#include "db/table.hpp"
#include "db_fixtures.hpp"

namespace e2e {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempFolder;

JobOutcome outcome(double sparsity, int fold, uint64_t seed, double mdice, double mnsd, int64_t params,
                   double flops, std::vector<std::pair<std::string, double>> classes = {}) {
  JobOutcome o;
  o.sparsity = sparsity;
  o.fold = fold;
  o.seed = seed;
  o.summary = testing::summary(mdice, mnsd, params, flops);
  o.class_dice = std::move(classes);
  return o;
}

const double kNaN = std::nan("");

// s=0.8: three folds; s=0.9: fold 0 with two seeds and fold 1 with one (seeds are averaged within a fold).
std::vector<JobOutcome> example_outcomes() {
  return {outcome(0.8, 0, 0, 0.80, 0.6, 1000000, 2e9, {{"liver", 0.9}, {"spleen", 0.6}}),
          outcome(0.8, 1, 0, 0.84, 0.7, 1000000, 2e9, {{"liver", 0.8}, {"spleen", kNaN}}),
          outcome(0.8, 2, 0, 0.88, 0.8, 1000000, 2e9, {{"liver", 0.7}, {"spleen", 0.8}}),
          outcome(0.9, 0, 0, 0.70, 0.5, 500000, 1e9),
          outcome(0.9, 0, 1, 0.74, 0.5, 500000, 1e9),
          outcome(0.9, 1, 0, 0.76, 0.5, 500000, 1e9)};
}

BaselineRow nnunet() {
  BaselineRow row;
  row.method = "nnU-Net";
  row.class_dice = {{"liver", 95.0}};
  row.mdice = 86.0;
  row.mnsd = 72.0;
  row.params_m = 30.0;
  row.gflops = 1000.0;
  return row;
}

TEST(PtScore, PaperFormulaWithDefaultAndCustomWeights) {
  // PT = mDice/mDice_max + 0.5·(Params_min/Params + FLOPs_min/FLOPs)
  EXPECT_NEAR(pt_score(88.0, 10.0, 500.0, 90.0, 5.0, 250.0, {}), 88.0 / 90.0 + 0.5 * (0.5 + 0.5), 1e-12);
  EXPECT_NEAR(pt_score(90.0, 5.0, 250.0, 90.0, 5.0, 250.0, {}), 2.0, 1e-12);
  EXPECT_NEAR(pt_score(88.0, 10.0, 500.0, 90.0, 5.0, 250.0, {2.0, 0.25}), 2 * 88.0 / 90.0 + 0.25, 1e-12);
}

TEST(ReportTable, MeansOverFoldsSdOverFoldsAndPtOverTheRowsShown) {
  const ReportTable table = build_table("demo", example_outcomes(), {nnunet()});
  EXPECT_THAT(table.classes, ElementsAre("liver", "spleen"));
  ASSERT_EQ(table.rows.size(), 3u);
  const TableRow& base = table.rows[0];
  const TableRow& s8 = table.rows[1];
  const TableRow& s9 = table.rows[2];
  EXPECT_EQ(base.method, "nnU-Net");
  EXPECT_TRUE(base.baseline);
  EXPECT_EQ(s8.method, "E2ENet (s=0.8)");

  EXPECT_NEAR(s8.mdice, 84.0, 1e-9);
  EXPECT_NEAR(s8.mdice_sd, 4.0, 1e-9);  // sample sd of 80, 84, 88
  EXPECT_NEAR(s8.mnsd, 70.0, 1e-9);
  EXPECT_NEAR(s8.class_dice[0], 80.0, 1e-9);
  EXPECT_NEAR(s8.class_dice[1], 70.0, 1e-9);  // NaN (class absent) skipped
  EXPECT_NEAR(s8.params_m, 1.0, 1e-12);
  EXPECT_NEAR(s8.gflops, 2.0, 1e-12);
  EXPECT_EQ(s8.folds, 3);
  EXPECT_EQ(s8.jobs, 3);

  // Fold 0 averages its two seeds (72) before the mean over folds: (72 + 76) / 2, not (70 + 74 + 76) / 3.
  EXPECT_NEAR(s9.mdice, 74.0, 1e-9);
  EXPECT_NEAR(s9.mdice_sd, std::sqrt(8.0), 1e-9);
  EXPECT_EQ(s9.folds, 2);
  EXPECT_EQ(s9.jobs, 3);
  EXPECT_TRUE(std::isnan(s9.class_dice[0]));

  EXPECT_NEAR(base.class_dice[0], 95.0, 1e-12);
  EXPECT_TRUE(std::isnan(base.class_dice[1]));
  EXPECT_TRUE(std::isnan(base.mdice_sd));

  // max mDice 86 (nnU-Net), min params 0.5 M and min FLOPs 1 G (s=0.9).
  EXPECT_NEAR(base.pt, 1.0 + 0.5 * (0.5 / 30.0 + 1.0 / 1000.0), 1e-9);
  EXPECT_NEAR(s8.pt, 84.0 / 86.0 + 0.5 * (0.5 / 1.0 + 1.0 / 2.0), 1e-9);
  EXPECT_NEAR(s9.pt, 74.0 / 86.0 + 0.5 * (1.0 + 1.0), 1e-9);
}

TEST(ReportTable, PtChangesWithTheRowsShownAndTheWeights) {
  const ReportTable alone = build_table("demo", example_outcomes(), {}, {1.0, 0.25});
  ASSERT_EQ(alone.rows.size(), 2u);
  EXPECT_NEAR(alone.rows[0].pt, 1.0 + 0.25 * (0.5 + 0.5), 1e-9);  // s=0.8 now has the best mDice
  EXPECT_NEAR(alone.rows[1].pt, 74.0 / 84.0 + 0.25 * 2.0, 1e-9);
}

TEST(ReportTable, OneFoldHasNoSdAndNoRowsIsAnError) {
  const ReportTable table = build_table("demo", {outcome(0.8, 0, 0, 0.8, 0.6, 10, 10)}, {});
  EXPECT_TRUE(std::isnan(table.rows[0].mdice_sd));
  EXPECT_THROW(build_table("demo", {}, {}), InputError);
}

TEST(ReportTable, FormatsCarryEveryColumn) {
  const ReportTable table = build_table("demo", example_outcomes(), {nnunet()});
  const std::string md = format_table(table, TableFormat::Markdown, true);
  EXPECT_THAT(md, HasSubstr("| Method | liver | spleen | mDice | mNSD | Params (M) | FLOPs (G) | PT |"));
  EXPECT_THAT(md,
              HasSubstr("| E2ENet (s=0.8) | 80.00 | 70.00 | 84.00 ± 4.00 | 70.00 | 1.00 | 2.00 | 1.477 |"));
  EXPECT_THAT(md, HasSubstr("| nnU-Net | 95.00 | – | 86.00 | 72.00 | 30.00 | 1000.00 | 1.009 |"));
  const std::string without_classes = format_table(table, TableFormat::Markdown, false);
  EXPECT_THAT(without_classes, ::testing::Not(HasSubstr("liver")));

  const std::string csv = format_table(table, TableFormat::Csv, true);
  EXPECT_THAT(
      csv,
      HasSubstr("method,sparsity,folds,jobs,liver,spleen,mDice,mDice_sd,mNSD,mHD95,params_m,gflops,PT,split,"
                "postprocessing,cases_scored,cases_total,level0_density,ms_per_patch_dense,"
                "ms_per_patch_sparse\n"));
  EXPECT_THAT(csv, HasSubstr("E2ENet (s=0.9),0.9,2,3,,,74.0000,2.8284,"));

  const std::string latex = format_table(table, TableFormat::Latex, false);
  EXPECT_THAT(latex, HasSubstr("\\begin{tabular}{lrrrrr}"));
  EXPECT_THAT(latex, HasSubstr("84.00$\\pm$4.00"));

  const nlohmann::json json = nlohmann::json::parse(format_table(table, TableFormat::Json, false));
  EXPECT_EQ(json["rows"].size(), 3u);
  EXPECT_DOUBLE_EQ(json["rows"][2]["mdice"].get<double>(), 74.0);
  EXPECT_TRUE(json["rows"][0]["mdice_sd"].is_null());
  EXPECT_TRUE(json["rows"][0]["sparsity"].is_null());
  EXPECT_NEAR(json["rows"][1]["class_dice"]["spleen"].get<double>(), 70.0, 1e-9);
}

TEST(ReportTable, LatexAndMarkdownEscapeMethodNames) {
  BaselineRow row = nnunet();
  row.method = "UNet++ & 50% | A_B";
  const ReportTable table = build_table("demo", {}, {row});
  EXPECT_THAT(format_table(table, TableFormat::Latex, false), HasSubstr("UNet++ \\& 50\\% | A\\_B"));
  EXPECT_THAT(format_table(table, TableFormat::Markdown, false), HasSubstr("UNet++ & 50% \\| A_B"));
}

TEST(ReportTable, OutcomesFromTheStoreAverageCasesPerClass) {
  TempFolder dir;
  Store store(dir.file("e2e.db"));
  const int64_t experiment = store.upsert_experiment(testing::experiment_info());
  store.enumerate_jobs(experiment, testing::grid({0, 1}, {0.8}));
  for (int fold = 0; fold < 2; ++fold) {
    const int64_t id = store.claim_next(experiment, 0)->job.id;
    JobResult result{testing::summary(0.8 + 0.02 * fold), {}, std::nullopt};
    result.case_metrics = {{"c1", "liver", false, 0.9, 0.8, 1, 2, "surfel"},
                           {"c1", "spleen", false, kNaN, kNaN, 1, kNaN, "surfel"},
                           {"c2", "liver", false, 0.7, 0.8, 1, 2, "surfel"},
                           {"c2", "spleen", false, 0.4, 0.8, 1, 2, "surfel"},
                           {"c2", "organs", true, 0.99, 0.8, 1, 2, "surfel"}};
    store.record_result(id, result);
  }
  const std::vector<JobOutcome> outcomes = store.reader().outcomes(experiment);
  ASSERT_EQ(outcomes.size(), 2u);
  ASSERT_EQ(outcomes[0].class_dice.size(), 2u);  // regions are not classes
  EXPECT_EQ(outcomes[0].class_dice[0].first, "liver");
  EXPECT_NEAR(outcomes[0].class_dice[0].second, 0.8, 1e-12);
  EXPECT_NEAR(outcomes[0].class_dice[1].second, 0.4, 1e-12);
  const ReportTable table = build_table("demo", outcomes, {});
  EXPECT_NEAR(table.rows[0].mdice, 81.0, 1e-9);
  EXPECT_NEAR(table.rows[0].mdice_sd, std::sqrt(2.0), 1e-9);
}

// ----------------------------------------------------------------------------------------------------------
// Baselines CSV

std::string csv_error(const std::string& text) {
  try {
    parse_baselines_csv(text, "base.csv");
  } catch (const InputError& e) {
    return e.what();
  }
  return "no InputError";
}

TEST(BaselinesCsv, ParsesPublishedRowsWithQuotesAndClasses) {
  const auto rows = parse_baselines_csv(
      "method,liver,spleen,mDice,mNSD,params_m,gflops\r\n"
      "# a comment line\n"
      "\"nnU-Net, 3d_fullres\",95.1,,88.8,76.5,31.2,1067.6\n"
      "UNETR,90.0,80.0,78.3,,93.02,177.51\n",
      "base.csv");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].method, "nnU-Net, 3d_fullres");
  EXPECT_DOUBLE_EQ(rows[0].mdice, 88.8);
  EXPECT_DOUBLE_EQ(rows[0].params_m, 31.2);
  ASSERT_EQ(rows[0].class_dice.size(), 2u);
  EXPECT_TRUE(std::isnan(rows[0].class_dice[1].second));
  EXPECT_TRUE(std::isnan(rows[1].mnsd));
  EXPECT_DOUBLE_EQ(rows[1].gflops, 177.51);
}

TEST(BaselinesCsv, MalformedFilesNameLineAndColumn) {
  EXPECT_THAT(csv_error(""), HasSubstr("empty"));
  EXPECT_THAT(csv_error("method,mDice,params_m\nA,80,1\n"), HasSubstr("missing column 'gflops'"));
  EXPECT_THAT(csv_error("method,mDice,params_m,gflops\nA,abc,1,2\n"),
              HasSubstr("base.csv:2:2 (mDice): expected a number, got 'abc'"));
  EXPECT_THAT(csv_error("method,mDice,params_m,gflops\nA,80,1,2\nB,80,1\n"),
              HasSubstr("base.csv:3: expected 4 fields as in the header, got 3"));
  EXPECT_THAT(csv_error("method,mDice,params_m,gflops\nA,80,,2\n"),
              HasSubstr("base.csv:2:3 (params_m): a value is required"));
  EXPECT_THAT(csv_error("method,mDice,params_m,gflops\n\"A,80,1,2\n"), HasSubstr("base.csv:2: unterminated"));
  EXPECT_THAT(csv_error("method,mDice,params_m,gflops\n\"A\"x,80,1,2\n"),
              HasSubstr("base.csv:2: unexpected"));
  EXPECT_THAT(csv_error("method,mDice,params_m,gflops\nA,0.88,1,2\n"), HasSubstr("looks like a fraction"));
  EXPECT_THAT(csv_error("method,liver,mDice,params_m,gflops\nA,120,80,1,2\n"),
              HasSubstr("base.csv:2:2 (liver): expected a percentage"));
  EXPECT_THAT(csv_error("method,mDice,params_m,gflops\nA,80,-1,2\n"),
              HasSubstr("(params_m): expected a positive"));
  EXPECT_THAT(csv_error("method,mDice,mDice,params_m,gflops\n"), HasSubstr("duplicate column 'mDice'"));
  EXPECT_THAT(csv_error("method,mDice,params_m,gflops\n,80,1,2\n"), HasSubstr("a method name is required"));
  EXPECT_THAT(csv_error("method,mDice,params_m,gflops\nA,nan,1,2\n"), HasSubstr("expected a number"));
}

TEST(BaselinesCsv, MissingFileIsAnInputError) {
  EXPECT_THROW(read_baselines_csv("/nonexistent/base.csv"), InputError);
}

}  // namespace
}  // namespace e2e
