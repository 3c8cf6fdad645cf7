#include "configs/config.hpp"
#include "configs/config_json.hpp"

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
  // The paper configs train with the dataset's plan, as the reference does.
  EXPECT_TRUE(amos.planned.patch_size && amos.planned.batch_size && amos.planned.pools);
  EXPECT_FALSE(amos.planned.applied);
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
  EXPECT_THAT(error_of("model:\n  levels: five\n"),
              HasSubstr("model.levels: expected an integer, got 'five'"));
  EXPECT_THAT(error_of("training:\n  learning_rate: fast\n"),
              HasSubstr("training.learning_rate: expected a number"));
  EXPECT_THAT(error_of("model:\n  deep_supervision: maybe\n"),
              HasSubstr("model.deep_supervision: expected true or false"));
  EXPECT_THAT(error_of("training:\n  patch_size: 128\n"),
              HasSubstr("training.patch_size: expected 3 numbers"));
  EXPECT_THAT(error_of("model: [1, 2]\n"), HasSubstr("model: expected a mapping"));
  EXPECT_THAT(error_of("sparsity:\n  levels: 0.5\n"), HasSubstr("sparsity.levels: expected a list"));
}

TEST(Config, SizesMustBePositive) {
  EXPECT_THAT(error_of("training:\n  patch_size: [128, 0, 128]\n"),
              HasSubstr("training.patch_size: expected 3 positive integers, got [128, 0, 128]"));
  EXPECT_THAT(error_of("model:\n  base_channels: -4\n"),
              HasSubstr("model.base_channels: expected a positive value, got -4"));
  EXPECT_THAT(error_of("training:\n  batch_size: 0\n"), HasSubstr("training.batch_size"));
  EXPECT_THAT(error_of("model:\n  pools: [[2, 2, 2]]\n"),
              HasSubstr("model.pools: expected model.levels - 1 = 5"));
  EXPECT_THAT(
      error_of(
          "model: {levels: 3, pools: [[2, 2, 2], [2, 2, 2]]}\ntraining:\n  patch_size: [102, 128, 128]\n"),
      HasSubstr("divisible"));
}

TEST(Config, FieldsLeftOutAreLeftToThePlan) {
  const Config planned = parse_config("experiment: x\ntraining: {patch_size: plan}\n");
  EXPECT_TRUE(planned.planned.patch_size && planned.planned.batch_size && planned.planned.pools);
  EXPECT_TRUE(planned.planned.pending());
  // Until the plan is applied the JSON says "plan", and it reads back as such.
  const std::string json = config_to_json(planned);
  EXPECT_NE(json.find("\"patch_size\": \"plan\""), std::string::npos);
  EXPECT_EQ(config_hash(parse_config(json, "stored")), config_hash(planned));
  const Config fixed = parse_config(
      "experiment: x\nmodel: {levels: 3, pools: [[1, 2, 2], [2, 2, 2]]}\ntraining: {patch_size: [8, 16, 16], "
      "batch_size: 2}\n");
  EXPECT_FALSE(fixed.planned.any());
  EXPECT_NE(config_hash(fixed), config_hash(planned));
  EXPECT_THAT(error_of("model: {levels: 4}\n"),
              HasSubstr("model.levels: expected no value without model.pools"));
  EXPECT_THAT(error_of("planned: [training.patch_size]\n"),
              HasSubstr("planned: names training.patch_size, which has no value"));
  EXPECT_THAT(error_of("planned: [model.depth]\n"), HasSubstr("planned: expected names among"));
}

TEST(Config, SparsityMustBeInHalfOpenUnitInterval) {
  EXPECT_THAT(error_of("sparsity:\n  levels: [0.5, 1.0]\n"),
              HasSubstr("sparsity.levels[1]: expected a sparsity in [0, 1), got 1"));
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

#include "configs/hash.hpp"

namespace e2e {
namespace {

TEST(Hash, Sha256KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Hash, ConfigHashTracksResultRelevantFieldsOnly) {
  Config a = parse_config("experiment: x\n");
  Config b = parse_config("experiment: x\nstore: {path: other.db}\nsweep: {folds: [0, 1]}\n", "other.yaml");
  EXPECT_EQ(config_hash(a), config_hash(b));
  Config c = parse_config("experiment: x\ntraining: {learning_rate: 0.02}\n");
  EXPECT_NE(config_hash(a), config_hash(c));
  EXPECT_NE(config_to_json(a).find("\"learning_rate\": 0.01"), std::string::npos);
}

TEST(Config, AugmentDeviceAndElastic) {
  const Config defaults = parse_config("experiment: x\n");
  EXPECT_EQ(defaults.data.augment_device, "cpu");
  EXPECT_EQ(defaults.data.elastic_probability, 0.0);
  const Config cuda = parse_config(
      "experiment: x\ndata: {augment_device: cuda, elastic_probability: 0.2, elastic_alpha: [0, 200]}\n");
  EXPECT_EQ(cuda.data.augment_device, "cuda");
  EXPECT_EQ(cuda.data.elastic_alpha, (std::array<double, 2>{0.0, 200.0}));
  EXPECT_EQ(cuda.data.elastic_sigma, (std::array<double, 2>{9.0, 13.0}));
  EXPECT_THAT(error_of("data: {augment_device: gpu}\n"),
              HasSubstr("data.augment_device: expected cpu or cuda, got 'gpu'"));
  EXPECT_THAT(error_of("data: {elastic_probability: 0.2}\n"),
              HasSubstr("data.elastic_probability: expected 0 unless data.augment_device is cuda"));
  EXPECT_THAT(error_of("data: {augment_device: cuda, elastic_probability: 1.5}\n"),
              HasSubstr("data.elastic_probability: expected a probability in [0, 1]"));
  EXPECT_THAT(error_of("data: {elastic_sigma: [13, 9]}\n"),
              HasSubstr("data.elastic_sigma: expected [min, max]"));
  EXPECT_THAT(error_of("data: {elastic_alpha: 5}\n"), HasSubstr("data.elastic_alpha: expected 2 numbers"));
  // The stored copy of a config parses back to the same fields.
  EXPECT_EQ(parse_config(config_to_json(cuda)).data.elastic_alpha, cuda.data.elastic_alpha);
}

TEST(Hash, AugmentDeviceEntersTheHashOnlyWhenNotTheDefault) {
  const Config plain = parse_config("experiment: x\n");
  const Config cpu = parse_config("experiment: x\ndata: {augment_device: cpu}\n");
  const Config cuda = parse_config("experiment: x\ndata: {augment_device: cuda}\n");
  EXPECT_EQ(config_hash(plain), config_hash(cpu));
  EXPECT_NE(config_hash(plain), config_hash(cuda));
  EXPECT_EQ(config_to_json(plain).find("augment_device"), std::string::npos);
  EXPECT_EQ(parse_config(config_to_json(cuda)).data.augment_device, "cuda");
}

// Found by fuzz_config: a name that is not UTF-8 made the JSON form throw nlohmann's type_error.
TEST(Config, TextThatIsNotUtf8IsAConfigError) {
  EXPECT_THAT(error_of("experiment: c\xec\x0a"), HasSubstr("not valid UTF-8"));
}

}  // namespace
}  // namespace e2e
