// nnU-Net v1 planning (data/plan.hpp) against golden vectors. Every tests/data/golden/plan_<name>.json was
// written by tests/data/golden/plan_golden.py, which runs the reference's own
// ExperimentPlanner3D_v21.plan_experiment() (boqian333/E2ENet-Medical, e2enet/experiment_planning/) on the
// fingerprint stored in the same file; "source" and "description" in each file say which planner and which
// kind of dataset it is.
#include "data/plan.hpp"
#include "configs/config_json.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "data/preprocess.hpp"

namespace e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

fs::path golden_dir() {
  return fs::path(E2E_SOURCE_DIR) / "tests" / "data" / "golden";
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

std::vector<std::string> golden_names() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(golden_dir())) {
    const std::string file = entry.path().filename().string();
    if (file.rfind("plan_", 0) == 0 && entry.path().extension() == ".json") names.push_back(file);
  }
  std::sort(names.begin(), names.end());
  return names;
}

void expect_plan_matches(const json& actual, const json& expected, const std::string& name) {
  SCOPED_TRACE(name);
  for (const char* key : {"patch_size", "pool_op_kernel_sizes", "conv_kernel_sizes", "batch_size",
                          "do_dummy_2D_data_aug", "median_shape", "transpose_forward"})
    EXPECT_EQ(actual.at(key), expected.at(key)) << key;
  for (int a = 0; a < 3; ++a)
    EXPECT_DOUBLE_EQ(actual.at("spacing")[a].get<double>(), expected.at("spacing")[a].get<double>());
}

TEST(Plan, ReproducesTheReferencePlannerOnEveryGoldenFingerprint) {
  const std::vector<std::string> names = golden_names();
  ASSERT_GE(names.size(), 5u);
  for (const std::string& name : names) {
    const json golden = read_json(golden_dir() / name);
    const NetworkPlan plan = plan_network(read_planning_fingerprint((golden_dir() / name).string()));
    expect_plan_matches(to_json(plan), golden.at("expected"), name);
    EXPECT_EQ(plan.vram_estimate, golden.at("vram_estimate").get<int64_t>()) << name;
    EXPECT_EQ(plan.batch_size_by_memory, golden.at("batch_size_by_memory").get<int64_t>()) << name;
  }
}

TEST(Plan, ReproducesTheReferencePlannerOnRandomFingerprints) {
  // random_plans.json: random datasets (any coarse axis, 0.3-8 mm, 2-15 cases) planned by the same driver.
  const json golden = read_json(golden_dir() / "random_plans.json");
  ASSERT_GE(golden.at("vectors").size(), 40u);
  int index = 0;
  for (const json& vector : golden.at("vectors")) {
    const std::string name = "random_plans.json vector " + std::to_string(index++);
    expect_plan_matches(to_json(plan_network(planning_fingerprint_from_json(vector, name))),
                        vector.at("expected"), name);
  }
}

TEST(Plan, GoldenSetCoversTheCasesTheIssueNames) {
  // Thick-slice CT: (1, 2, 2) first; 5-10 mm MR: 10th-percentile spacing and dummy 2D; 4-channel MR: 128³;
  // the 5 % cap binds; a transposed dataset.
  const json ct = read_json(golden_dir() / "plan_abdominal_ct.json").at("expected");
  EXPECT_EQ(ct.at("pool_op_kernel_sizes")[0], json({1, 2, 2}));
  const json thick = read_json(golden_dir() / "plan_thick_slice_mr.json").at("expected");
  EXPECT_TRUE(thick.at("do_dummy_2D_data_aug").get<bool>());
  EXPECT_EQ(read_json(golden_dir() / "plan_brats_mr_4ch.json").at("expected").at("patch_size"),
            json({128, 128, 128}));
  const json capped = read_json(golden_dir() / "plan_small_batch_cap.json");
  EXPECT_LT(capped.at("expected").at("batch_size").get<int64_t>(),
            capped.at("batch_size_by_memory").get<int64_t>());
  EXPECT_EQ(
      read_json(golden_dir() / "plan_sagittal_mr_transposed.json").at("expected").at("transpose_forward"),
      json({2, 0, 1}));
}

TEST(Plan, NumpyPercentileInterpolatesLikeNumpy) {
  EXPECT_DOUBLE_EQ(numpy_percentile({1.0, 2.0, 3.0, 4.0}, 50.0), 2.5);
  EXPECT_DOUBLE_EQ(numpy_percentile({5.0, 1.0, 10.0}, 10.0), 1.8);  // np.percentile([5, 1, 10], 10)
  EXPECT_DOUBLE_EQ(numpy_percentile({7.0}, 10.0), 7.0);
}

TEST(Plan, PoolingFollowsTheSpacing) {
  // (3, 1, 1) mm, 16×48×48: in-plane first, then all axes once z is within 2× (get_pool_and_conv_props).
  const PoolAndConv p = nnunet_pool_and_conv({3.0, 1.0, 1.0}, {16, 48, 48});
  EXPECT_EQ(p.pool_kernels, (std::vector<Int3>{{1, 2, 2}, {2, 2, 2}, {2, 2, 2}}));
  EXPECT_EQ(p.conv_kernels, (std::vector<Int3>{{1, 3, 3}, {3, 3, 3}, {3, 3, 3}, {3, 3, 3}}));
  EXPECT_EQ(p.pools_per_axis, (Int3{2, 3, 3}));
  EXPECT_EQ(p.patch, (Int3{16, 48, 48}));
  // A patch that is no multiple of 2^pools is padded up (pad_shape): z 18 → 9 → 5 pools twice, 18 → 20.
  EXPECT_EQ(nnunet_pool_and_conv({1.0, 1.0, 1.0}, {18, 40, 40}).patch, (Int3{20, 40, 40}));
}

TEST(Plan, VramEstimateOfThe128CubeNetwork) {
  // 5 × (2,2,2) pools, 1 channel, 2 classes: 5·2^21·32 + 3·2^21 + Σ blocks·voxels·features by hand.
  const std::vector<Int3> pools(5, Int3{2, 2, 2});
  int64_t expected = 5LL * 2097152 * 32 + 2097152 + 2 * 2097152;
  const int64_t features[] = {64, 128, 256, 320, 320};
  int64_t voxels = 2097152;
  for (int p = 0; p < 5; ++p) {
    voxels /= 8;
    expected += (p < 4 ? 5 : 2) * voxels * features[p];
  }
  EXPECT_EQ(nnunet_vram_estimate({128, 128, 128}, pools, 1, 2), expected);
}

TEST(Plan, ReadsTheProjectsOwnFingerprint) {
  const json golden = read_json(golden_dir() / "plan_abdominal_ct.json");
  Fingerprint fingerprint;
  fingerprint.channel_names = {"CT"};
  for (int64_t c = 0; c < golden.at("num_classes").get<int64_t>(); ++c)
    fingerprint.labels[static_cast<int>(c)] = "class" + std::to_string(c);
  for (std::size_t i = 0; i < golden.at("spacings").size(); ++i)
    fingerprint.cases.push_back({"case_" + std::to_string(i), golden.at("spacings")[i].get<Spacing3>(),
                                 golden.at("shapes_after_crop")[i].get<Shape3>(),
                                 golden.at("shapes_after_crop")[i].get<Shape3>()});
  const PlanningFingerprint fp = planning_fingerprint_from_json(to_json(fingerprint), "fingerprint.json");
  EXPECT_EQ(fp.input_channels, 1);
  EXPECT_EQ(fp.classes, golden.at("num_classes").get<int64_t>());
  expect_plan_matches(to_json(plan_network(fp)), golden.at("expected"), "project fingerprint");
}

TEST(Plan, BadFingerprintsNameTheFileAndField) {
  EXPECT_THAT(
      [] {
        planning_fingerprint_from_json(json{{"spacings", {{1, 1, 1}}}}, "fp.json");
      },
      ::testing::ThrowsMessage<InputError>(HasSubstr("fp.json: missing field 'shapes_after_crop'")));
  const json mismatched = {{"spacings", {{1, 1, 1}, {1, 1, 1}}},
                           {"shapes_after_crop", {{8, 8, 8}}},
                           {"num_input_channels", 1},
                           {"num_classes", 2}};
  EXPECT_THAT([&] { planning_fingerprint_from_json(mismatched, "fp.json"); },
              ::testing::ThrowsMessage<InputError>(HasSubstr("2 spacings but 1 shapes")));
  json negative = mismatched;
  negative["spacings"] = {{1, -1, 1}};
  EXPECT_THAT([&] { planning_fingerprint_from_json(negative, "fp.json"); },
              ::testing::ThrowsMessage<InputError>(HasSubstr("positive spacings")));
  json bad_type = mismatched;
  bad_type["spacings"] = "thick";
  EXPECT_THAT([&] { planning_fingerprint_from_json(bad_type, "fp.json"); },
              ::testing::ThrowsMessage<InputError>(HasSubstr("field 'spacings'")));
  EXPECT_THAT([] { read_planning_fingerprint("/nonexistent/fp.json"); },
              ::testing::ThrowsMessage<InputError>(HasSubstr("/nonexistent/fp.json")));
}

PlanningFingerprint tiny_anisotropic() {
  return read_planning_fingerprint((golden_dir() / "plan_tiny_anisotropic.json").string());
}

Config planned_config() {
  return parse_config("experiment: planned\nmodel: {num_classes: 3}\n", "planned.yaml");
}

TEST(Plan, ApplyPlanFillsTheFieldsTheConfigLeavesOut) {
  const Config config = planned_config();
  ASSERT_TRUE(config.planned.pending());
  const Config applied = apply_plan(config, tiny_anisotropic());
  EXPECT_EQ(applied.training.patch_size, (Int3{16, 48, 48}));
  EXPECT_EQ(applied.training.batch_size, 2);
  EXPECT_EQ(applied.model.pools, (std::vector<Int3>{{1, 2, 2}, {2, 2, 2}, {2, 2, 2}}));
  EXPECT_EQ(applied.model.levels, 4);
  EXPECT_TRUE(applied.planned.applied);
  // The job identity is the YAML's; the stored JSON holds the values and reads back to the same config.
  EXPECT_EQ(config_hash(applied), config_hash(config));
  const Config back = parse_config(config_to_json(applied), "stored");
  EXPECT_EQ(back.training.patch_size, applied.training.patch_size);
  EXPECT_EQ(back.model.pools, applied.model.pools);
  EXPECT_EQ(config_hash(back), config_hash(config));
}

TEST(Plan, AGivenPatchGetsPoolsAndBatchPlannedForIt) {
  Config config = parse_config(
      "experiment: p\nmodel: {num_classes: 3}\ntraining: {patch_size: [8, 32, 32], batch_size: 3}\n",
      "p.yaml");
  const Config applied = apply_plan(config, tiny_anisotropic());
  EXPECT_EQ(applied.training.patch_size, (Int3{8, 32, 32}));
  EXPECT_EQ(applied.training.batch_size, 3);
  EXPECT_EQ(applied.model.pools, (std::vector<Int3>{{1, 2, 2}, {2, 2, 2}, {1, 2, 2}}));
  config.training.patch_size = {9, 32, 32};  // z pools once (9 ≥ 8): needs a multiple of 2
  EXPECT_THAT([&] { apply_plan(config, tiny_anisotropic()); },
              ::testing::ThrowsMessage<ConfigError>(HasSubstr("training.patch_size")));
}

TEST(Plan, GivenPoolsRoundThePlannedPatchDown) {
  const Config config = parse_config(
      "experiment: p\nmodel: {num_classes: 3, levels: 3, pools: [[1, 2, 2], [1, 5, 5]]}\n", "p.yaml");
  const Config applied = apply_plan(config, tiny_anisotropic());
  EXPECT_EQ(applied.training.patch_size, (Int3{16, 40, 40}));  // planned 16×48×48, multiples of (1, 10, 10)
  EXPECT_EQ(applied.model.pools.size(), 2u);
}

TEST(Plan, APlanWithTooFewPoolsForE2ENetIsAConfigError) {
  PlanningFingerprint fp = tiny_anisotropic();
  for (Shape3& s : fp.shapes) s = {3, 10, 10};
  EXPECT_THAT([&] { apply_plan(planned_config(), fp); },
              ::testing::ThrowsMessage<ConfigError>(HasSubstr("model.pools")));
}

TEST(Plan, ConfigsThatFixEverythingAreUnchanged) {
  Config config;
  config.training.patch_size = {16, 32, 32};
  EXPECT_EQ(config_to_json(apply_plan(config, tiny_anisotropic())), config_to_json(config));
}

}  // namespace
}  // namespace e2e
