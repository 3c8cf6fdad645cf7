// e2e preprocess as a user runs it: on a synthetic dataset, again (reused), and on bad input (exit code 2).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include "run_e2e.hpp"

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using Result = e2e_cli::CliResult;
using e2e_cli::run_e2e;

class PreprocessCli : public e2e_cli::CliFolderTest {
 protected:
  PreprocessCli() : CliFolderTest("e2e_preprocess_cli_") {}
};

TEST_F(PreprocessCli, WritesThenReusesTheStore) {
  const Result synth = run_e2e("synth --out " + path("raw") + " --cases 5 --shape 16,32,32");
  ASSERT_EQ(synth.exit_code, 0) << synth.output;
  const std::string args = "preprocess --dataset " + path("raw") + " --out " + path("out") + " --workers 2";
  const Result first = run_e2e(args);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_THAT(first.output, HasSubstr("[5/5]"));
  for (const char* name : {"cases.h5", "plan.json", "fingerprint.json", "splits_final.json"})
    EXPECT_TRUE(fs::exists(path("out/") + name)) << name;
  const nlohmann::json splits = nlohmann::json::parse(std::ifstream(path("out/splits_final.json")));
  EXPECT_EQ(splits.size(), 5u);

  const Result second = run_e2e(args);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_THAT(second.output, HasSubstr("up to date"));
}

TEST_F(PreprocessCli, BadInputExitsWithCode2AndNamesTheProblem) {
  const Result missing = run_e2e("preprocess --dataset " + path("nowhere") + " --out " + path("out"));
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_THAT(missing.output, HasSubstr(path("nowhere")));
  EXPECT_FALSE(fs::exists(path("out")));
  const Result workers =
      run_e2e("preprocess --dataset " + path("raw") + " --out " + path("out") + " --workers -1");
  EXPECT_EQ(workers.exit_code, 2) << workers.output;
}

TEST(PreprocessCliHelp, DescribesTheOptions) {
  const Result help = run_e2e("preprocess --help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* option : {"--dataset", "--out", "--config", "--workers", "--splits", "--compress"})
    EXPECT_THAT(help.output, HasSubstr(option));
}

}  // namespace
