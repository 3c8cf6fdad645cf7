#include "configs/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace e2e {
namespace {

using ::testing::HasSubstr;

std::string error_of(const std::string& yaml) {
  try {
    parse_config(yaml, "test.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, RepositoryConfigsParse) {
  for (const char* name : {"amos", "btcv", "brats", "synthetic"}) {
    const Config c = load_config(std::string(E2E_SOURCE_DIR) + "/configs/" + name + ".yaml");
    EXPECT_EQ(c.experiment, name);
    EXPECT_EQ(static_cast<int>(c.model.pools.size()), c.model.levels - 1);
  }
  const Config amos = load_config(std::string(E2E_SOURCE_DIR) + "/configs/amos.yaml");
  EXPECT_EQ(amos.model.num_classes, 16);
  EXPECT_EQ(amos.training.patch_size, (Int3{128, 128, 128}));
  EXPECT_EQ(amos.model.channels(0), 48);
  EXPECT_EQ(amos.model.channels(3), 320);
  EXPECT_EQ(amos.model.channels(5), 320);
  EXPECT_FALSE(amos.sparsity.level0_density.has_value());
}

TEST(Config, DefaultsFillMissingSections) {
  const Config c = parse_config("experiment: x\n");
  EXPECT_EQ(c.model.levels, 6);
  EXPECT_EQ(c.sparsity.update_interval, 1200);
  EXPECT_DOUBLE_EQ(c.training.momentum, 0.99);
  EXPECT_EQ(c.sweep.folds.size(), 5u);
}

TEST(Config, UnknownKeysAreErrorsNamingTheField) {
  EXPECT_THAT(error_of("model:\n  levles: 5\n"), HasSubstr("model.levles: unknown key"));
  EXPECT_THAT(error_of("trainig: {}\n"), HasSubstr("trainig: unknown key"));
}

TEST(Config, WrongTypesNameFieldAndValue) {
  EXPECT_THAT(error_of("model:\n  levels: five\n"), HasSubstr("model.levels: expected an integer, got 'five'"));
  EXPECT_THAT(error_of("training:\n  learning_rate: fast\n"), HasSubstr("training.learning_rate: expected a number"));
  EXPECT_THAT(error_of("model:\n  deep_supervision: maybe\n"), HasSubstr("model.deep_supervision: expected true or false"));
  EXPECT_THAT(error_of("training:\n  patch_size: 128\n"), HasSubstr("training.patch_size: expected 3 numbers"));
  EXPECT_THAT(error_of("model: [1, 2]\n"), HasSubstr("model: expected a mapping"));
  EXPECT_THAT(error_of("sparsity:\n  levels: 0.5\n"), HasSubstr("sparsity.levels: expected a list"));
}

TEST(Config, SizesMustBePositive) {
  EXPECT_THAT(error_of("training:\n  patch_size: [128, 0, 128]\n"),
              HasSubstr("training.patch_size: expected 3 positive integers, got [128, 0, 128]"));
  EXPECT_THAT(error_of("model:\n  base_channels: -4\n"), HasSubstr("model.base_channels: expected a positive value, got -4"));
  EXPECT_THAT(error_of("training:\n  batch_size: 0\n"), HasSubstr("training.batch_size"));
  EXPECT_THAT(error_of("model:\n  pools: [[2, 2, 2]]\n"), HasSubstr("model.pools: expected model.levels - 1 = 5"));
  EXPECT_THAT(error_of("training:\n  patch_size: [100, 128, 128]\n"), HasSubstr("divisible"));
}

TEST(Config, SparsityMustBeInHalfOpenUnitInterval) {
  EXPECT_THAT(error_of("sparsity:\n  levels: [0.5, 1.0]\n"), HasSubstr("sparsity.levels[1]: expected a sparsity in [0, 1), got 1"));
  EXPECT_THAT(error_of("sparsity:\n  levels: [-0.1]\n"), HasSubstr("sparsity.levels[0]"));
  EXPECT_THAT(error_of("sparsity:\n  level0_density: 0\n"), HasSubstr("sparsity.level0_density"));
  EXPECT_THROW(parse_sparsity_list("0,1"), ConfigError);
  EXPECT_THROW(parse_sparsity_list("0,abc"), ConfigError);
  EXPECT_THROW(parse_sparsity_list(""), ConfigError);
  EXPECT_EQ(parse_sparsity_list("0,0.7,0.8"), (std::vector<double>{0, 0.7, 0.8}));
}

TEST(Config, MissingFileAndBadYaml) {
  try {
    load_config("/nonexistent/cfg.yaml");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/cfg.yaml: cannot open"));
  }
  EXPECT_THAT(error_of("model: {levels: [\n"), HasSubstr("test.yaml: not valid YAML"));
}

TEST(Config, ParseInt3) {
  EXPECT_EQ(parse_int3("64,96,128", "--patch"), (Int3{64, 96, 128}));
  EXPECT_THROW(parse_int3("64,96", "--patch"), ConfigError);
  EXPECT_THROW(parse_int3("64,96,0", "--patch"), ConfigError);
  EXPECT_THROW(parse_int3("64,96,128,1", "--patch"), ConfigError);
  EXPECT_THROW(parse_int3("a,b,c", "--patch"), ConfigError);
}

}  // namespace
}  // namespace e2e
