// Runs the e2e binary as a user would and checks exit codes, messages and the paper's counts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include "run_e2e.hpp"

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using Result = e2e_cli::CliResult;
using e2e_cli::run_e2e;

std::string config(const std::string& name) {
  return std::string(E2E_SOURCE_DIR) + "/configs/" + name;
}

std::string write_temp_config(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / ("e2e_cli_test_" + name + ".yaml");
  std::ofstream(path) << text;
  return path.string();
}

nlohmann::json count_json(const std::string& args) {
  Result r = run_e2e("count " + args + " --format json");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(r.output);
}

TEST(CountCli, AmosMatchesThePaperExactly) {
  nlohmann::json out =
      count_json("--config " + config("amos.yaml") + " --patch 128,128,128 --sparsity 0,0.8");
  ASSERT_EQ(out["rows"].size(), 2u);
  EXPECT_EQ(out["rows"][0]["params"], 23899088);
  EXPECT_DOUBLE_EQ(out["rows"][0]["gflops"].get<double>(), 3069.548);
  EXPECT_EQ(out["rows"][1]["params"], 9445351);
  EXPECT_DOUBLE_EQ(out["rows"][1]["gflops"].get<double>(), 778.742);
}

TEST(CountCli, AmosRowsOfThePaperTable) {
  nlohmann::json s9 = count_json("--config " + config("amos.yaml") + " --patch 128,128,128 --sparsity 0.9");
  EXPECT_NEAR(s9["rows"][0]["params_m"].get<double>(), 7.64, 0.005);
  EXPECT_NEAR(s9["rows"][0]["gflops"].get<double>(), 492.29, 0.005);
  // The s=0.7 row was computed with the reference's level-0 density of 0.2.
  const std::string amos07 = write_temp_config(
      "amos07", "experiment: amos07\nmodel: {num_classes: 16}\nsparsity: {level0_density: 0.2}\n");
  nlohmann::json s7 = count_json("--config " + amos07 + " --patch 128,128,128 --sparsity 0.7");
  EXPECT_NEAR(s7["rows"][0]["params_m"].get<double>(), 11.23, 0.005);
  EXPECT_NEAR(s7["rows"][0]["gflops"].get<double>(), 969.32, 0.005);
}

TEST(CountCli, LayerBreakdownSumsToTotal) {
  nlohmann::json out =
      count_json("--config " + config("amos.yaml") + " --patch 128,128,128 --sparsity 0.8 --layers");
  int64_t params = 0, flops = 0;
  int masked = 0;
  for (const auto& layer : out["rows"][0]["layers"]) {
    params += layer["params"].get<int64_t>();
    flops += layer["flops"].get<int64_t>();
    masked += layer["kernels_active"] != layer["kernels_total"];
  }
  EXPECT_EQ(params, out["rows"][0]["params"].get<int64_t>());
  EXPECT_EQ(flops, out["rows"][0]["flops"].get<int64_t>());
  EXPECT_EQ(masked, 35);
  EXPECT_EQ(out["rows"][0]["layers"].size(), 12u + 20u + 15u + 4u);
}

TEST(CountCli, MarkdownAndCsvFormats) {
  Result md = run_e2e("count --config " + config("amos.yaml") + " --patch 128,128,128 --sparsity 0,0.8");
  EXPECT_EQ(md.exit_code, 0);
  EXPECT_THAT(md.output, HasSubstr("| 0 | 23899088 | 23.899 | 3069.548 |"));
  EXPECT_THAT(md.output, HasSubstr("| 0.8 | 9445351 | 9.445 | 778.742 |"));
  Result csv =
      run_e2e("count --config " + config("amos.yaml") + " --patch 128,128,128 --sparsity 0.8 --format csv");
  EXPECT_THAT(csv.output,
              HasSubstr("sparsity,params,params_m,flops,gflops\n0.8,9445351,9.445,778741612544,778.742\n"));
}

TEST(CountCli, PatchOverride) {
  nlohmann::json out = count_json("--config " + config("amos.yaml") + " --sparsity 0 --patch 64,64,64");
  EXPECT_EQ(out["rows"][0]["params"], 23899088);
  EXPECT_NEAR(out["rows"][0]["gflops"].get<double>(), 3069.548 / 8, 0.01);
  Result bad = run_e2e("count --config " + config("amos.yaml") + " --patch 100,64,64");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.output, HasSubstr("--patch"));
}

TEST(CountCli, PlannedConfigsCountWithTheirPlanOrThePaperNetwork) {
  // amos.yaml leaves patch, batch and pools to the dataset's plan: a fingerprint plans them ...
  const std::string fingerprint = std::string(E2E_SOURCE_DIR) + "/tests/data/golden/plan_abdominal_ct.json";
  nlohmann::json planned =
      count_json("--config " + config("amos.yaml") + " --sparsity 0 --fingerprint " + fingerprint);
  EXPECT_EQ(planned["patch"], nlohmann::json({64, 160, 192}));
  EXPECT_EQ(planned["pools"][0], nlohmann::json({1, 2, 2}));
  EXPECT_EQ(planned["pools"].size(), 5u);
  // ... without one, --patch counts the paper's network (five (2, 2, 2) pools), and no patch is an error.
  nlohmann::json paper = count_json("--config " + config("amos.yaml") + " --sparsity 0 --patch 128,128,128");
  EXPECT_EQ(paper["pools"].size(), 5u);
  EXPECT_EQ(paper["pools"][0], nlohmann::json({2, 2, 2}));
  Result missing = run_e2e("count --config " + config("amos.yaml"));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.output, HasSubstr("training.patch_size is left to the dataset's plan"));
}

void expect_usage_error(const std::string& args, const std::string& field) {
  Result r = run_e2e(args);
  EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
  EXPECT_THAT(r.output, HasSubstr(field)) << args;
  EXPECT_THAT(r.output, Not(HasSubstr("Exception raised from")));  // no LibTorch stack traces
  EXPECT_THAT(r.output, Not(HasSubstr("terminate called")));
}

TEST(CountCli, BadConfigsExitWithCode2AndNameTheField) {
  expect_usage_error("count --config /nonexistent.yaml", "/nonexistent.yaml: cannot open");
  expect_usage_error("count --config " + write_temp_config("type", "model:\n  levels: six\n"),
                     "model.levels");
  expect_usage_error("count --config " + write_temp_config("neg", "model:\n  base_channels: -1\n"),
                     "model.base_channels");
  expect_usage_error("count --config " + write_temp_config("zero", "training:\n  patch_size: [0, 64, 64]\n"),
                     "training.patch_size");
  expect_usage_error("count --config " + write_temp_config("unknown", "model:\n  chanels: 3\n"),
                     "model.chanels");
  expect_usage_error("count --config " + write_temp_config("sp", "sparsity:\n  levels: [1.5]\n"),
                     "sparsity.levels[0]");
  expect_usage_error("count --config " + config("amos.yaml") + " --patch 128,128,128 --sparsity 1.0",
                     "--sparsity");
  expect_usage_error("count --config " + config("amos.yaml") + " --patch 128,128,128 --sparsity -0.2",
                     "--sparsity");
  expect_usage_error("count --config " + config("amos.yaml") + " --format xml", "--format");
  expect_usage_error("count", "--config");
  expect_usage_error("frobnicate", "unknown command 'frobnicate'");
}

TEST(CountCli, HelpExitsZero) {
  Result r = run_e2e("count --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("--sparsity"));
}

}  // namespace
