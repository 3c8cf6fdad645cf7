// Whole-case inference and export: sliding window over a preprocessed case, then back to the original file's
// grid (probabilities resampled linearly to the original spacing, argmax, pasted into the pre-crop box).
#pragma once

#include <torch/torch.h>

#include <limits>
#include <nlohmann/json.hpp>

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

// K×D×H×W softmax probabilities (float32, CPU) of one preprocessed image (C×D×H×W) through a compiled
// forward (inference_forward).
torch::Tensor predict_probabilities(const LogitsFn& forward, int64_t num_classes,
                                    const MultiVolume<float>& image, const SlidingWindowOptions& options);

// Measured forward time of one 1×C×patch batch, dense and sparse (NaN where a path does not run: the
// sparse path runs on the CPU only, and only when some masked layer is sparse enough).
struct InferenceTiming {
  double ms_per_patch_dense = std::numeric_limits<double>::quiet_NaN();
  double ms_per_patch_sparse = std::numeric_limits<double>::quiet_NaN();
  int sparse_layers = 0;  // masked layers on the sparse path
  int masked_layers = 0;
  std::string device;  // "cpu", "cuda:0"
};

// Times both paths on a fixed pseudo-random patch: one warm-up pass each, then the median of `repeats`.
// Inputs on the net's device; the result is forced to complete before the clock stops.
InferenceTiming time_inference(E2ENet& net, const Int3& patch, const SparseInferenceOptions& sparse = {},
                               int repeats = 3);
// metrics.json's "inference_timing" object (non-finite times as null).
nlohmann::json to_json(const InferenceTiming& timing);

// Label map in the original image grid (geometry.shape), 0 outside the crop box.
Volume<int16_t> export_segmentation(const torch::Tensor& probabilities, const CaseMeta& meta);

}  // namespace e2e
