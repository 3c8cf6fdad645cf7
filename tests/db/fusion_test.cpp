// Fusion-direction shares of a hand-built topology.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/errors.hpp"
#include "db/fusion.hpp"
#include "db_fixtures.hpp"

namespace e2e {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Sets every kernel of rows [row0, row1) × columns [col0, col1).
void activate(TensorMask& mask, int64_t row0, int64_t row1, int64_t col0, int64_t col1) {
  for (int64_t r = row0; r < row1; ++r)
    for (int64_t c = col0; c < col1; ++c) mask.set(r * mask.cols + c, true);
}

// Channels 4, 8, 12 (levels 3, base 4, cap 12): nodes x0_1 (stage 1), x1_1 and x0_2 (stage 2).
Topology hand_built() {
  TensorMask x11("x1_1.conv0", 8, 2 * 8 + 4);
  activate(x11, 0, 8, 0, 8);    // forward: every kernel (64)
  activate(x11, 0, 4, 8, 16);   // upward: half the rows (32 of 64)
  activate(x11, 0, 1, 16, 20);  // downward: one row (4 of 32)
  TensorMask x01("x0_1.conv0", 4, 8);
  activate(x01, 0, 4, 4, 8);  // upward only
  TensorMask x02("x0_2.conv0", 4, 8);
  TensorMask x02_second("x0_2.conv1", 4, 4);
  activate(x02_second, 0, 4, 0, 4);
  TensorMask up("x1_1.up", 12, 8);
  activate(up, 0, 3, 0, 8);  // a quarter
  Topology t;
  t.tensors = {x02, x02_second, x11, up, x01};
  return t;
}

TEST(FusionShares, SplitsActiveKernelsByInputDirection) {
  const std::vector<FusionNodeShares> nodes = fusion_shares(hand_built(), {4, 8, 12});
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes[0].node, "x0_1");
  EXPECT_EQ(nodes[1].node, "x1_1");
  EXPECT_EQ(nodes[2].node, "x0_2");

  const FusionNodeShares& x11 = nodes[1];
  EXPECT_EQ(x11.level, 1);
  EXPECT_EQ(x11.column, 1);
  EXPECT_EQ(x11.forward.active, 64);
  EXPECT_EQ(x11.upward.active, 32);
  EXPECT_EQ(x11.downward.active, 4);
  EXPECT_EQ(x11.downward.total, 32);
  EXPECT_DOUBLE_EQ(x11.forward.share, 0.64);
  EXPECT_DOUBLE_EQ(x11.upward.share, 0.32);
  EXPECT_DOUBLE_EQ(x11.downward.share, 0.04);
  EXPECT_DOUBLE_EQ(x11.upward.density, 0.5);
  EXPECT_DOUBLE_EQ(x11.downward.density, 0.125);
  EXPECT_DOUBLE_EQ(x11.up_conv_density, 0.25);

  const FusionNodeShares& x01 = nodes[0];
  EXPECT_DOUBLE_EQ(x01.upward.share, 1.0);
  EXPECT_DOUBLE_EQ(x01.forward.share, 0.0);
  EXPECT_EQ(x01.downward.total, 0);  // level 0 has no downward input
  EXPECT_TRUE(std::isnan(x01.up_conv_density));

  EXPECT_EQ(nodes[2].forward.active + nodes[2].upward.active, 0);  // conv1 is not an input conv
  EXPECT_DOUBLE_EQ(nodes[2].forward.share, 0.0);
}

TEST(FusionShares, ShapeThatDoesNotMatchTheConfigIsAnInputError) {
  Topology t;
  t.tensors.emplace_back("x1_1.conv0", 8, 16);  // no downward block
  try {
    fusion_shares(t, {4, 8, 12});
    FAIL();
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("x1_1.conv0"));
    EXPECT_THAT(e.what(), HasSubstr("downward 4"));
  }
}

TEST(FusionShares, ChannelsComeFromTheStoredModelConfig) {
  EXPECT_THAT(channels_from_config_json(
                  "{\"model\": {\"levels\": 6, \"base_channels\": 48, \"max_channels\": 320}}", "amos"),
              ElementsAre(48, 96, 192, 320, 320, 320));
  EXPECT_THROW(channels_from_config_json("{\"model\": {\"levels\": 6}}", "x"), InputError);
  EXPECT_THROW(channels_from_config_json("not json", "x"), InputError);
}

TEST(FusionShares, JobFusionReadsTheFinalTopologyFromTheStore) {
  testing::TempFolder dir;
  Store store(dir.file("e2e.db"));
  const int64_t experiment = store.upsert_experiment(testing::experiment_info());  // levels 3, base 4, cap 12
  store.enumerate_jobs(experiment, testing::grid({0}, {0.8}));
  const int64_t id = store.claim_next(experiment, 0)->job.id;
  const StoreReader reader = store.reader();
  EXPECT_THROW(job_fusion(reader, reader.job(id)), InputError);  // nothing stored yet
  store.record_result(id,
                      JobResult{testing::summary(0.8), {}, MaskSnapshot{12, MaskKind::Final, hand_built()}});
  const FusionReport report = job_fusion(reader, reader.job(id));
  ASSERT_EQ(report.nodes.size(), 3u);
  EXPECT_EQ(report.masks.step, 12);
  EXPECT_DOUBLE_EQ(report.nodes[1].forward.share, 0.64);
  EXPECT_THAT(fusion_text(report), HasSubstr("x1_1"));
  const nlohmann::json json = nlohmann::json::parse(fusion_json(report));
  EXPECT_DOUBLE_EQ(json["nodes"][1]["downward"]["share"].get<double>(), 0.04);
}

}  // namespace
}  // namespace e2e
