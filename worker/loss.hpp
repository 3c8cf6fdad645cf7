// The segmentation loss: cross-entropy + soft Dice (nnU-Net semantics), summed over deep-supervision outputs.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "configs/config.hpp"

namespace e2e {

struct LossOptions {
  double dice_smooth = 1e-5;
  bool batch_dice = false;  // pool the Dice statistics over the batch (training.batch_dice)
  double ce_weight = 1.0;
  double dice_weight = 1.0;
};

// The loss the config trains with.
LossOptions loss_options(const TrainingConfig& training);

// logits N×K×D×H×W, target N×D×H×W (int64; −1 = ignore). Returns ce + (1 − mean foreground soft Dice).
// Soft Dice per class (nnU-Net v1's SoftDiceLoss): (2·tp + smooth) / (2·tp + fp + fn + smooth + 1e-8), with
// tp, fp, fn summed over each sample's voxels (then averaged over samples and classes), or with batch_dice
// over all samples' voxels at once. nnU-Net adds −Dice instead of 1 − Dice: the gradients are the same, ours
// stays ≥ 0.
torch::Tensor ce_dice_loss(const torch::Tensor& logits, const torch::Tensor& target,
                           const LossOptions& options = {});

// Σ_k weight_k · ce_dice_loss(outputs[k], targets[k]); targets are the labels downsampled to each output.
torch::Tensor deep_supervision_loss(const std::vector<torch::Tensor>& outputs,
                                    const std::vector<torch::Tensor>& targets,
                                    const std::vector<double>& weights, const LossOptions& options = {});

// Nearest-neighbour downsampling of a label map N×D×H×W to each output's spatial size.
std::vector<torch::Tensor> downsample_targets(const torch::Tensor& target,
                                              const std::vector<torch::Tensor>& outputs);

}  // namespace e2e
