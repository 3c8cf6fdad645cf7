// e2e sweep as a user runs it on the smallest dataset there is: one case, whose one fold trains and
// validates on it (preprocessing's rule). The sweep's split record used to refuse that case.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "run_e2e.hpp"

namespace {

using e2e_cli::run_e2e;
using ::testing::HasSubstr;

class SweepCli : public e2e_cli::CliFolderTest {
 protected:
  SweepCli() : CliFolderTest("e2e_sweep_cli_") {}

  // configs/synthetic.yaml on `dataset`, one fold, one sparsity, one short epoch, no test set.
  std::string tiny_config(const std::string& dataset) const {
    std::ifstream in(std::string(E2E_SOURCE_DIR) + "/configs/synthetic.yaml");
    std::stringstream text;
    text << in.rdbuf();
    std::string yaml = text.str();
    yaml = std::regex_replace(yaml, std::regex("dataset: demo/data"), "dataset: " + dataset);
    yaml = std::regex_replace(yaml, std::regex("path: demo/e2e.db"), "path: " + path("e2e.db"));
    yaml = std::regex_replace(yaml, std::regex("epochs: 8"), "epochs: 1");
    yaml = std::regex_replace(yaml, std::regex("iterations_per_epoch: 50"), "iterations_per_epoch: 3");
    yaml = std::regex_replace(yaml, std::regex("folds: \\[0, 1, 2, 3, 4\\]"), "folds: [0]");
    yaml = std::regex_replace(yaml, std::regex("levels: \\[0.5, 0.8\\]"), "levels: [0.5]");
    yaml = std::regex_replace(yaml, std::regex("  test_cases: .*\n"), "");
    const std::string config = path("sweep.yaml");
    std::ofstream(config) << yaml;
    return config;
  }
};

TEST_F(SweepCli, ADatasetOfOneCaseSweepsItsOneFold) {
  const auto synth = run_e2e("synth --out " + path("raw") + " --cases 1 --shape 16,32,32");
  ASSERT_EQ(synth.exit_code, 0) << synth.output;
  const auto sweep = run_e2e("sweep --view log --config " + tiny_config(path("raw")));
  EXPECT_EQ(sweep.exit_code, 0) << sweep.output;
  EXPECT_THAT(sweep.output, HasSubstr("its single fold trains and validates on it"));
  EXPECT_THAT(sweep.output, HasSubstr("sweep finished: done 1  running 0  pending 0  failed 0"));
}

}  // namespace
