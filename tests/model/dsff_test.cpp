#include "model/dsff.hpp"

#include <gtest/gtest.h>

#include <set>

#include "model/optimizer_state.hpp"
#include "test_util.hpp"

namespace e2e {
namespace {

DsffOptions options(double sparsity, uint64_t seed = 7, int64_t interval = 10, int64_t total = 1000) {
  DsffOptions o;
  o.sparsity = sparsity;
  o.seed = seed;
  o.update_interval = interval;
  o.total_iterations = total;
  return o;
}

// Gives every weight a fresh random value so the next update has real L1 norms to rank, then re-masks.
void perturb(E2ENet& net, Dsff& dsff, int seed) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (auto& p : net->parameters()) p.add_(torch::randn_like(p));
  dsff.apply();
}

std::set<int64_t> active_set(const TensorMask& mask) {
  std::set<int64_t> out;
  for (int64_t k = 0; k < mask.size(); ++k)
    if (mask.get(k)) out.insert(k);
  return out;
}

TEST(Dsff, InitialCountsAreExactPerTensorAndInactiveWeightsAreZero) {
  E2ENet net(test::tiny_model());
  Dsff dsff(net->masked_layers(), options(0.8));
  dsff.initialize();
  const Topology topology = dsff.topology();
  ASSERT_EQ(topology.tensors.size(), net->masked_layers().size());
  for (std::size_t t = 0; t < topology.tensors.size(); ++t) {
    const LayerInfo& layer = dsff.layers()[t];
    EXPECT_EQ(topology.tensors[t].count(), std::llround(layer.rows() * layer.cols() * 0.2)) << layer.name;
    torch::Tensor inactive = layer.weight * (1 - dsff.masks()[t]);
    EXPECT_EQ(inactive.abs().sum().item<float>(), 0.0f) << layer.name;
  }
}

TEST(Dsff, Level0DensityOverridesOnlyLevel0FusionConvs) {
  E2ENet net(test::load_repo_config("amos.yaml").model);
  DsffOptions o = options(0.7);
  o.level0_density = 0.2;
  Dsff dsff(net->masked_layers(), o);
  int forced = 0;
  for (const LayerInfo& l : dsff.layers()) {
    const bool level0_conv = l.kind == LayerKind::FusionConv && l.out_level == 0;
    EXPECT_DOUBLE_EQ(dsff.density_of(l), level0_conv ? 0.2 : 0.3) << l.name;
    forced += level0_conv;
  }
  EXPECT_EQ(forced, 6);
}

TEST(Dsff, ActiveCountsNeverChangeOverManyUpdates) {
  E2ENet net(test::tiny_model());
  Dsff dsff(net->masked_layers(), options(0.7));
  dsff.initialize();
  std::vector<int64_t> counts;
  for (const TensorMask& m : dsff.topology().tensors) counts.push_back(m.count());
  int changed = 0;
  Topology before = dsff.topology();
  for (int update = 1; update <= 40; ++update) {
    perturb(net, dsff, update);
    const DsffUpdateStats stats = dsff.update(update * 10);
    EXPECT_GT(stats.pruned, 0);
    EXPECT_EQ(stats.regrown_new + stats.regrown_kept, stats.pruned);
    const Topology after = dsff.topology();
    for (std::size_t t = 0; t < counts.size(); ++t) ASSERT_EQ(after.tensors[t].count(), counts[t]) << update;
    changed += after != before;
    before = after;
  }
  EXPECT_GE(changed, 35);  // the topology really moves
}

TEST(Dsff, PrunedKernelsAreExactlyTheLowestL1ActiveOnes) {
  E2ENet net(test::tiny_model());
  Dsff dsff(net->masked_layers(), options(0.5));
  dsff.initialize();
  perturb(net, dsff, 11);
  const Topology before = dsff.topology();
  const int64_t iteration = 30;
  const double rate = dsff.prune_rate(iteration);
  const Topology after = dsff.propose_update(iteration);
  for (std::size_t t = 0; t < before.tensors.size(); ++t) {
    const LayerInfo& layer = dsff.layers()[t];
    torch::Tensor l1 = layer.weight.detach().abs().sum({2, 3, 4}).flatten().to(torch::kFloat64);
    std::vector<std::pair<double, int64_t>> ranked;
    for (int64_t k : active_set(before.tensors[t])) ranked.push_back({l1[k].item<double>(), k});
    std::sort(ranked.begin(), ranked.end());
    const auto n = static_cast<std::size_t>(std::ceil(rate * ranked.size()));
    std::set<int64_t> lowest, kept;
    for (std::size_t i = 0; i < ranked.size(); ++i) (i < n ? lowest : kept).insert(ranked[i].second);
    const std::set<int64_t> now = active_set(after.tensors[t]);
    // Every kept kernel stays; every kernel that left was among the n lowest; exactly n kernels were pruned,
    // so the active kernels outside `kept` are the n regrown ones.
    for (int64_t k : kept) EXPECT_TRUE(now.count(k)) << layer.name << " kernel " << k;
    int64_t regrown = 0;
    for (int64_t k : now) regrown += !kept.count(k);
    EXPECT_EQ(regrown, static_cast<int64_t>(n)) << layer.name;
    for (int64_t k : active_set(before.tensors[t])) {
      if (!now.count(k)) {
        EXPECT_TRUE(lowest.count(k)) << layer.name << " pruned a kernel outside the lowest L1";
      }
    }
  }
}

TEST(Dsff, RegrownKernelsStartAtZero) {
  E2ENet net(test::tiny_model());
  Dsff dsff(net->masked_layers(), options(0.6));
  dsff.initialize();
  perturb(net, dsff, 5);
  const Topology before = dsff.topology();
  const DsffUpdateStats stats = dsff.update(10);
  EXPECT_GT(stats.regrown_new, 0);
  const Topology after = dsff.topology();
  for (std::size_t t = 0; t < after.tensors.size(); ++t) {
    torch::Tensor w = dsff.layers()[t].weight.detach().abs().sum({2, 3, 4}).flatten();
    for (int64_t k = 0; k < after.tensors[t].size(); ++k) {
      if (!after.tensors[t].get(k) || !before.tensors[t].get(k)) {
        EXPECT_EQ(w[k].item<float>(), 0.0f) << "inactive or regrown kernel " << k << " is not zero";
      }
    }
  }
}

TEST(Dsff, MaskedWeightsAndMomentumStayZeroUnderSgd) {
  torch::manual_seed(0);
  E2ENet net(test::tiny_model());
  Dsff dsff(net->masked_layers(), options(0.8));
  dsff.initialize();
  torch::optim::SGD sgd(net->parameters(),
                        torch::optim::SGDOptions(0.01).momentum(0.99).nesterov(true).weight_decay(3e-5));
  torch::Tensor x = torch::randn({2, 1, 4, 8, 8});
  for (int step = 1; step <= 6; ++step) {
    sgd.zero_grad();
    torch::Tensor loss = net->forward(x)[0].pow(2).mean();
    loss.backward();
    sgd.step();
    dsff.apply(&sgd);
    if (step == 3) dsff.update(step, &sgd);
    for (std::size_t t = 0; t < dsff.layers().size(); ++t) {
      const torch::Tensor& weight = dsff.layers()[t].weight;
      const torch::Tensor off = 1 - dsff.masks()[t];
      EXPECT_EQ((weight * off).abs().sum().item<float>(), 0.0f);
      const torch::Tensor momentum = sgd_momentum_buffer(sgd, weight);
      ASSERT_TRUE(momentum.defined());
      EXPECT_EQ((momentum * off).abs().sum().item<float>(), 0.0f);
      EXPECT_GT((momentum * dsff.masks()[t]).abs().sum().item<float>(), 0.0f);  // active ones do learn
    }
  }
}

TEST(Dsff, SameSeedSameTopologyOtherSeedDifferent) {
  E2ENet net(test::tiny_model());
  auto topology_for = [&](uint64_t seed) {
    Dsff dsff(net->masked_layers(), options(0.5, seed));
    dsff.initialize();
    return dsff.topology();
  };
  EXPECT_EQ(topology_for(1), topology_for(1));
  EXPECT_NE(topology_for(1), topology_for(2));
  EXPECT_NE(topology_for(1).hash(), topology_for(2).hash());
}

TEST(Dsff, UpdatesAreReproducibleFromSeedAndWeights) {
  auto run = [](uint64_t seed) {
    torch::manual_seed(42);
    E2ENet net(test::tiny_model());
    Dsff dsff(net->masked_layers(), options(0.5, seed));
    dsff.initialize();
    for (int u = 1; u <= 5; ++u) {
      perturb(net, dsff, u);
      dsff.update(u * 10);
    }
    return dsff.topology();
  };
  EXPECT_EQ(run(3), run(3));
  EXPECT_NE(run(3), run(4));
}

TEST(Dsff, ScheduleIsCosineAndStaticModeNeverUpdates) {
  E2ENet net(test::tiny_model());
  Dsff dsff(net->masked_layers(), options(0.5, 0, 100, 1000));
  EXPECT_DOUBLE_EQ(dsff.prune_rate(0), 0.5);
  EXPECT_NEAR(dsff.prune_rate(500), 0.2505, 1e-12);
  EXPECT_NEAR(dsff.prune_rate(1000), 0.001, 1e-12);
  EXPECT_FALSE(dsff.is_update_step(0));
  EXPECT_FALSE(dsff.is_update_step(99));
  EXPECT_TRUE(dsff.is_update_step(100));
  EXPECT_FALSE(dsff.is_update_step(1000));  // no update at the very end of training
  Dsff fixed(net->masked_layers(), options(0.5, 0, 0, 1000));
  for (int64_t i = 0; i <= 1000; ++i) ASSERT_FALSE(fixed.is_update_step(i));
}

TEST(Dsff, SetTopologyRejectsAnotherNetwork) {
  E2ENet a(test::tiny_model());
  ModelConfig other = test::tiny_model();
  other.base_channels = 8;
  other.max_channels = 16;
  E2ENet b(other);
  Dsff da(a->masked_layers(), options(0.5));
  Dsff db(b->masked_layers(), options(0.5));
  db.initialize();
  EXPECT_THROW(da.set_topology(db.topology()), std::invalid_argument);
}

TEST(Dsff, SparseCountsMatchThePaper) {
  E2ENet net(test::load_repo_config("amos.yaml").model);
  Dsff dsff(net->masked_layers(), options(0.8));
  dsff.initialize();
  const Complexity c = count_complexity(net->layers(), {128, 128, 128}, dsff.active_kernels());
  EXPECT_EQ(c.params, 9445351);
  EXPECT_NEAR(c.gflops(), 778.742, 0.0005);
}

}  // namespace
}  // namespace e2e
