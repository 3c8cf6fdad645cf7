#include "model/e2enet.hpp"

#include <gtest/gtest.h>

#include "model/complexity.hpp"
#include "test_util.hpp"

namespace e2e {
namespace {

std::vector<int64_t> shape(const torch::Tensor& t) {
  return t.sizes().vec();
}

TEST(E2ENet, AmosArchitectureDeepSupervisionShapes) {
  torch::manual_seed(0);
  E2ENet net(test::load_repo_config("amos.yaml").model);
  net->train();
  torch::NoGradGuard no_grad;
  auto outputs = net->forward(torch::randn({1, 1, 32, 32, 32}));
  ASSERT_EQ(outputs.size(), 4u);
  EXPECT_EQ(shape(outputs[0]), (std::vector<int64_t>{1, 16, 32, 32, 32}));
  EXPECT_EQ(shape(outputs[1]), (std::vector<int64_t>{1, 16, 16, 16, 16}));
  EXPECT_EQ(shape(outputs[2]), (std::vector<int64_t>{1, 16, 8, 8, 8}));
  EXPECT_EQ(shape(outputs[3]), (std::vector<int64_t>{1, 16, 4, 4, 4}));
  for (const auto& o : outputs) EXPECT_TRUE(torch::isfinite(o).all().item<bool>());
}

TEST(E2ENet, InferenceReturnsOnlyFullResolution) {
  ModelConfig m = test::load_repo_config("synthetic.yaml").model;
  E2ENet net(m);
  net->eval();
  torch::NoGradGuard no_grad;
  auto outputs = net->forward(torch::randn({2, 1, 16, 32, 32}));
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(shape(outputs[0]), (std::vector<int64_t>{2, 3, 16, 32, 32}));

  m.deep_supervision = false;  // training without deep supervision also gives one output
  E2ENet plain(m);
  plain->train();
  EXPECT_EQ(plain->forward(torch::randn({1, 1, 16, 32, 32})).size(), 1u);
}

TEST(E2ENet, LayerInventoryOfThePaperNetwork) {
  E2ENet net(test::load_repo_config("amos.yaml").model);
  int backbone = 0, fusion = 0, up = 0, heads = 0;
  std::map<int, int64_t> fusion_input_channels;
  for (const LayerInfo& l : net->layers()) {
    switch (l.kind) {
      case LayerKind::BackboneConv:
        ++backbone;
        break;
      case LayerKind::UpConv:
        ++up;
        break;
      case LayerKind::Head:
        ++heads;
        break;
      case LayerKind::FusionConv:
        ++fusion;
        if (l.name.substr(l.name.size() - 5) == "conv0") fusion_input_channels[l.out_level] = l.in_channels();
        break;
    }
  }
  EXPECT_EQ(backbone, 12);
  EXPECT_EQ(fusion, 20);
  EXPECT_EQ(up, 15);
  EXPECT_EQ(heads, 4);
  EXPECT_EQ(net->masked_layers().size(), 35u);
  EXPECT_EQ(fusion_input_channels, (std::map<int, int64_t>{{0, 96}, {1, 240}, {2, 480}, {3, 832}, {4, 960}}));
  const std::vector<double> w = net->deep_supervision_weights();
  ASSERT_EQ(w.size(), 4u);
  EXPECT_DOUBLE_EQ(w[0], 8.0 / 15);
  EXPECT_DOUBLE_EQ(w[3], 1.0 / 15);
}

TEST(E2ENet, DenseCountsMatchTheModulesParametersAndThePaper) {
  E2ENet net(test::load_repo_config("amos.yaml").model);
  int64_t numel = 0;
  for (const auto& p : net->parameters()) numel += p.numel();
  const Complexity c = count_complexity(net->layers(), {128, 128, 128}, {});
  EXPECT_EQ(c.params, numel);
  EXPECT_EQ(c.params, 23899088);
  EXPECT_NEAR(c.gflops(), 3069.548, 0.0005);
}

TEST(E2ENet, MismatchedPatchIsReported) {
  E2ENet net(test::load_repo_config("amos.yaml").model);
  EXPECT_THROW(count_complexity(net->layers(), {100, 128, 128}, {}), std::invalid_argument);
}

TEST(E2ENet, BiasAndInitialisationFollowTheReference) {
  E2ENet net(test::tiny_model());
  for (const auto& item : net->named_parameters()) {
    const std::string& name = item.key();
    if (name.find("conv.bias") != std::string::npos) {
      EXPECT_EQ(item.value().abs().sum().item<float>(), 0.0f) << name;
    }
    if (name.find("norm.weight") != std::string::npos) {
      EXPECT_TRUE(torch::all(item.value() == 1).item<bool>()) << name;
    }
  }
  for (const LayerInfo& l : net->layers()) {
    EXPECT_EQ(l.bias_params > 0, l.kind == LayerKind::BackboneConv || l.kind == LayerKind::FusionConv)
        << l.name;
  }
}

TEST(E2ENet, ShiftInputSwitchMovesTheImage) {
  ModelConfig m = test::tiny_model();
  torch::manual_seed(3);
  E2ENet a(m);
  m.shift_input = true;
  torch::manual_seed(3);
  E2ENet b(m);
  a->eval();
  b->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::randn({1, 1, 4, 8, 8});
  EXPECT_FALSE(torch::allclose(a->forward(x)[0], b->forward(x)[0]));
}

}  // namespace
}  // namespace e2e
