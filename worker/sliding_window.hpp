// Sliding-window inference (nnU-Net semantics): tiles with step 0.5 of the patch, Gaussian importance
// weighting, optional 8-flip mirror test-time augmentation, softmax averaged over tiles.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

#include "configs/config.hpp"

namespace e2e {

// Tile starts along one axis: n = ceil((size − patch) / (patch·step)) + 1 tiles, evenly spaced, positions
// rounded half to even (numpy). size must be ≥ patch (pad first).
std::vector<int64_t> sliding_window_starts(int64_t size, int64_t patch, double step_fraction);

// Gaussian importance map (σ = patch/8 per axis, centred at patch/2, truncated like scipy at 4σ),
// normalized to max 1, zeros replaced by the smallest non-zero value. Float32, D×H×W.
torch::Tensor gaussian_importance(const Int3& patch, double sigma_scale = 1.0 / 8);

struct SlidingWindowOptions {
  Int3 patch{128, 128, 128};
  double step_fraction = 0.5;
  bool mirror_tta = false;  // average over all 8 flip combinations
  torch::Device device = torch::kCPU;
  torch::Dtype compute_dtype = torch::kFloat32;  // bf16/fp16 autocast is the caller's choice on CUDA
};

// logits_fn maps a 1×C×patch batch to 1×K×patch logits (the network in eval mode).
using LogitsFn = std::function<torch::Tensor(const torch::Tensor&)>;

// image C×D×H×W (any size; padded to at least the patch with zeros and cropped back) → softmax
// probabilities K×D×H×W (float32, on the CPU).
torch::Tensor sliding_window_probabilities(const LogitsFn& logits_fn, const torch::Tensor& image,
                                           int64_t num_classes, const SlidingWindowOptions& options);

}  // namespace e2e
