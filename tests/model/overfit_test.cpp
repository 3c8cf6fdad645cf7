// The tiny configuration must be able to learn: it overfits one fixed batch on CPU.
#include <gtest/gtest.h>

#include "model/dsff.hpp"
#include "model/e2enet.hpp"
#include "test_util.hpp"
#include "worker/loss.hpp"

namespace e2e {
namespace {

TEST(Overfit, TinyConfigHalvesItsLossOnAFixedBatch) {
  torch::manual_seed(0);
  at::set_num_threads(1);
  const Config config = test::load_repo_config("synthetic.yaml");
  E2ENet net(config.model);
  net->train();
  Dsff dsff(net->masked_layers(), DsffOptions::from_config(config.sparsity, 0.5, 60, 0));
  dsff.initialize();

  // Two blobs of different classes on a noisy background, and intensities that tell them apart.
  const Int3 p = config.training.patch_size;
  torch::Tensor z = torch::arange(p[0]).view({-1, 1, 1}).to(torch::kFloat32);
  torch::Tensor y = torch::arange(p[1]).view({1, -1, 1}).to(torch::kFloat32);
  torch::Tensor x = torch::arange(p[2]).view({1, 1, -1}).to(torch::kFloat32);
  torch::Tensor blob1 = ((z - 8).pow(2) / 25 + (y - 10).pow(2) / 36 + (x - 10).pow(2) / 36) <= 1;
  torch::Tensor blob2 = ((z - 6).pow(2) / 16 + (y - 22).pow(2) / 25 + (x - 20).pow(2) / 49) <= 1;
  torch::Tensor label = torch::zeros({p[0], p[1], p[2]}, torch::kLong);
  label.masked_fill_(blob1, 1);
  label.masked_fill_(blob2, 2);
  torch::Tensor labels = torch::stack({label, label.flip({2})});
  torch::Tensor image = labels.to(torch::kFloat32) + 0.3 * torch::randn(labels.sizes());
  image = image.unsqueeze(1);

  torch::optim::SGD sgd(net->parameters(),
                        torch::optim::SGDOptions(0.01).momentum(0.99).nesterov(true).weight_decay(3e-5));
  const std::vector<double> weights = net->deep_supervision_weights();
  double first = 0, last = 0;
  for (int step = 1; step <= 60; ++step) {
    sgd.zero_grad();
    auto outputs = net->forward(image);
    torch::Tensor loss = deep_supervision_loss(outputs, downsample_targets(labels, outputs), weights);
    loss.backward();
    torch::nn::utils::clip_grad_norm_(net->parameters(), 12.0);
    sgd.step();
    dsff.apply(&sgd);
    if (dsff.is_update_step(step)) dsff.update(step, &sgd);
    (step == 1 ? first : last) = loss.item<double>();
  }
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
}

TEST(Loss, IgnoresMinusOneAndIsZeroForPerfectPrediction) {
  torch::Tensor target = torch::randint(0, 3, {1, 4, 4, 4}, torch::kLong);
  torch::Tensor perfect = torch::one_hot(target, 3).permute({0, 4, 1, 2, 3}).to(torch::kFloat32) * 50;
  EXPECT_LT(ce_dice_loss(perfect, target).item<double>(), 1e-4);
  torch::Tensor ignored = target.clone();
  ignored.index_put_({0, 0}, -1);
  torch::Tensor wrong_there = perfect.clone();
  wrong_there.index_put_({0, torch::indexing::Slice(), 0}, 0);  // no information in the ignored slice
  EXPECT_LT(ce_dice_loss(wrong_there, ignored).item<double>(), 1e-4);
}

}  // namespace
}  // namespace e2e
