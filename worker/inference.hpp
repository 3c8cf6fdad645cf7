// Whole-case inference and export: sliding window over a preprocessed case, then back to the original file's
// grid (probabilities resampled linearly to the original spacing, argmax, pasted into the pre-crop box).
#pragma once

#include <torch/torch.h>

#include "data/case_store.hpp"
#include "model/e2enet.hpp"
#include "model/sparse_inference.hpp"
#include "worker/sliding_window.hpp"

namespace e2e {

// Which forward inference runs: the compiled sparse path (model/sparse_inference.hpp) for the masked layers
// at or below sparse.max_density when the net is on the CPU, or the masked dense forward.
struct InferencePathOptions {
  bool dense = false;  // force the masked dense forward (`e2e predict --dense`)
  SparseInferenceOptions sparse;
};

// The net's eval-mode logits as the sliding window calls them. Compiles the sparse topology now (from the
// current weights): build it once per loaded model and reuse it for every case.
LogitsFn inference_forward(E2ENet& net, const InferencePathOptions& path = {});

// K×D×H×W softmax probabilities (float32, CPU) of one preprocessed image (C×D×H×W).
torch::Tensor predict_probabilities(E2ENet& net, const MultiVolume<float>& image,
                                    const SlidingWindowOptions& options,
                                    const InferencePathOptions& path = {});

// Label map in the original image grid (geometry.shape), 0 outside the crop box.
Volume<int16_t> export_segmentation(const torch::Tensor& probabilities, const CaseMeta& meta);

}  // namespace e2e
