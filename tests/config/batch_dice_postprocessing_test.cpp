// training.batch_dice and eval.postprocessing: defaults, the paper configs' values, validation messages, and
// the canonical JSON (written only when not the default, so that older configs keep their hash).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "configs/config.hpp"
#include "configs/config_json.hpp"

namespace e2e {
namespace {

using ::testing::HasSubstr;

Config repository_config(const std::string& name) {
  return load_config(std::string(E2E_SOURCE_DIR) + "/configs/" + name + ".yaml");
}

TEST(BatchDiceAndPostprocessing, DefaultsAreOff) {
  const Config c = parse_config("experiment: x\n");
  EXPECT_FALSE(c.training.batch_dice);
  EXPECT_EQ(c.eval.postprocessing, "off");
}

TEST(BatchDiceAndPostprocessing, PaperConfigsSetThemAsTheReferenceDoes) {
  // Batch Dice: the reference's 3D full-resolution runs when nnU-Net v1's plan has a low-resolution stage.
  EXPECT_TRUE(repository_config("amos").training.batch_dice);
  EXPECT_TRUE(repository_config("btcv").training.batch_dice);
  EXPECT_FALSE(repository_config("brats").training.batch_dice);
  // Post-processing: the paper applies it to AMOS only.
  EXPECT_EQ(repository_config("amos").eval.postprocessing, "auto");
  EXPECT_EQ(repository_config("btcv").eval.postprocessing, "off");
  EXPECT_EQ(repository_config("brats").eval.postprocessing, "off");
  EXPECT_FALSE(repository_config("synthetic").training.batch_dice);
}

TEST(BatchDiceAndPostprocessing, BadValuesNameTheField) {
  const auto error_of = [](const std::string& yaml) {
    try {
      parse_config(yaml, "test.yaml");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_THAT(error_of("eval:\n  postprocessing: on\n"),
              HasSubstr("eval.postprocessing: expected auto or off, got 'on'"));
  EXPECT_THAT(error_of("training:\n  batch_dice: sometimes\n"),
              HasSubstr("training.batch_dice: expected true or false"));
}

TEST(BatchDiceAndPostprocessing, JsonCarriesThemOnlyWhenSetAndReadsBack) {
  const Config plain = parse_config("experiment: x\n");
  const nlohmann::json plain_json = nlohmann::json::parse(config_to_json(plain));
  EXPECT_FALSE(plain_json["training"].contains("batch_dice"));
  EXPECT_FALSE(plain_json["eval"].contains("postprocessing"));

  const Config set =
      parse_config("experiment: x\ntraining:\n  batch_dice: true\neval:\n  postprocessing: auto\n");
  const nlohmann::json set_json = nlohmann::json::parse(config_to_json(set));
  EXPECT_EQ(set_json["training"]["batch_dice"], true);
  EXPECT_EQ(set_json["eval"]["postprocessing"], "auto");
  EXPECT_NE(config_hash(set), config_hash(plain));

  const Config back = parse_config(config_to_json(set), "stored config");
  EXPECT_TRUE(back.training.batch_dice);
  EXPECT_EQ(back.eval.postprocessing, "auto");
  EXPECT_EQ(config_hash(back), config_hash(set));
}

}  // namespace
}  // namespace e2e
