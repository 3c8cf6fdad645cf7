// Whole-case inference and export: sliding window over a preprocessed case, then back to the original file's
// grid (probabilities resampled linearly to the original spacing, argmax, pasted into the pre-crop box).
#pragma once

#include <torch/torch.h>

#include "data/case_store.hpp"
#include "model/e2enet.hpp"
#include "worker/sliding_window.hpp"

namespace e2e {

// K×D×H×W softmax probabilities (float32, CPU) of one preprocessed image (C×D×H×W).
torch::Tensor predict_probabilities(E2ENet& net, const MultiVolume<float>& image,
                                    const SlidingWindowOptions& options);

// Label map in the original image grid (geometry.shape), 0 outside the crop box.
Volume<int16_t> export_segmentation(const torch::Tensor& probabilities, const CaseMeta& meta);

}  // namespace e2e
