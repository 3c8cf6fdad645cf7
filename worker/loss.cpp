#include "worker/loss.hpp"

namespace e2e {

LossOptions loss_options(const TrainingConfig& training) {
  LossOptions options;
  options.batch_dice = training.batch_dice;
  return options;
}

torch::Tensor ce_dice_loss(const torch::Tensor& logits, const torch::Tensor& target,
                           const LossOptions& options) {
  TORCH_CHECK(logits.dim() == 5 && target.dim() == 4,
              "ce_dice_loss expects N×K×D×H×W logits and N×D×H×W labels");
  const int64_t classes = logits.size(1);
  const torch::Tensor valid = target.ge(0);
  const torch::Tensor safe_target = target.clamp_min(0);

  const torch::Tensor ce = torch::nn::functional::cross_entropy(
      logits.to(torch::kFloat32), target, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-1));

  const torch::Tensor probs = torch::softmax(logits.to(torch::kFloat32), 1) * valid.unsqueeze(1);
  const torch::Tensor onehot =
      torch::one_hot(safe_target, classes).permute({0, 4, 1, 2, 3}).to(torch::kFloat32) * valid.unsqueeze(1);
  std::vector<int64_t> axes{2, 3, 4};
  if (options.batch_dice) axes.insert(axes.begin(), 0);
  const torch::Tensor tp = (probs * onehot).sum(axes);
  const torch::Tensor fp = (probs * (1 - onehot)).sum(axes);
  const torch::Tensor fn = ((1 - probs) * onehot).sum(axes);
  const torch::Tensor dice = (2 * tp + options.dice_smooth) / (2 * tp + fp + fn + options.dice_smooth + 1e-8);
  const torch::Tensor foreground = dice.narrow(-1, 1, classes - 1);  // background excluded
  return options.ce_weight * ce + options.dice_weight * (1 - foreground.mean());
}

std::vector<torch::Tensor> downsample_targets(const torch::Tensor& target,
                                              const std::vector<torch::Tensor>& outputs) {
  std::vector<torch::Tensor> targets;
  const torch::Tensor as_float = target.unsqueeze(1).to(torch::kFloat32);
  for (const torch::Tensor& out : outputs) {
    if (out.sizes().slice(2) == target.sizes().slice(1)) {
      targets.push_back(target);
      continue;
    }
    std::vector<int64_t> size(out.sizes().begin() + 2, out.sizes().end());
    torch::Tensor down = torch::nn::functional::interpolate(
        as_float, torch::nn::functional::InterpolateFuncOptions().size(size).mode(torch::kNearest));
    targets.push_back(down.squeeze(1).to(torch::kLong));
  }
  return targets;
}

torch::Tensor deep_supervision_loss(const std::vector<torch::Tensor>& outputs,
                                    const std::vector<torch::Tensor>& targets,
                                    const std::vector<double>& weights, const LossOptions& options) {
  TORCH_CHECK(outputs.size() == targets.size() && outputs.size() <= weights.size(),
              "deep_supervision_loss: ", outputs.size(), " outputs, ", targets.size(), " targets, ",
              weights.size(), " weights");
  // With a single output (deep supervision off) its weight is 1.
  if (outputs.size() == 1) return ce_dice_loss(outputs[0], targets[0], options);
  torch::Tensor total = torch::zeros({}, outputs[0].options().dtype(torch::kFloat32));
  for (std::size_t k = 0; k < outputs.size(); ++k)
    total = total + weights[k] * ce_dice_loss(outputs[k], targets[k], options);
  return total;
}

}  // namespace e2e
