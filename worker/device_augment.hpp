// Training augmentation on the training device (data.augment_device: cuda): the moreDA pipeline of
// data/augment.hpp as batched torch ops, applied after the transfer to batches that the loader only cropped
// (LoaderOptions::crop_only: each sample is its whole sampling box, with its DrawKey and AugmentDraw). The
// random decisions are draw_augmentation's, so for the same key the CPU and the device path apply the same
// transforms with the same parameters, in the same order (augment_patch's). Runs on CPU tensors too.
//
// Where the device path differs from the CPU one (augment_patch):
//  - Spatial: rotation, scaling and elastic displacement form ONE sampling grid per sample, read with
//    grid_sample. Images are trilinear, not Keys cubic. Per-label linear labels sample one 0/1 mask per label
//    value present in the batch trilinearly and take the largest weight (ties: the larger value; weight not
//    covered by the box counts as −1), as the CPU does, in float. Nearest labels round half to even where
//    the CPU rounds half up.
//  - The grid reads the sampling box, not the case: a point outside the box reads 0 / −1 even where the case
//    has data. Rotation and scaling down to min_scale stay inside the box; only scaling by more than
//    1/min_scale and elastic displacement can reach outside it.
//  - Elastic deformation exists only here (AugmentOptions::elastic_*; off in moreDA). batchgenerators'
//    formula: per axis α · (U(−1, 1) per voxel smoothed by a Gaussian of σ, zero padding), added to the
//    output coordinates before rotation and scaling; dummy-2D patches deform in-plane, equally in every
//    slice.
//  - Gaussian noise values come from a torch generator seeded from the key (DrawStream::kNoiseValues), not
//    the CPU's Box–Muller stream: same std, other values. Likewise the elastic noise (kElasticValues).
//  - Means and stds are double sums as on the CPU, but reduced in another order; blur sums in another order.
// Crops, mirroring, brightness, the low-resolution geometry (nearest down, Keys cubic up, edges clamped) and
// −1 → 0 are the CPU's arithmetic. A sample without a drawn spatial transform never touches a grid: it is
// the crop of its box, so with every probability 0 the output equals augment_patch's exactly, and so does a
// mirrored one.
#pragma once

#include <torch/torch.h>

#include <array>
#include <vector>

#include "data/augment.hpp"
#include "data/loader.hpp"
#include "worker/trainer.hpp"

namespace e2e {

// How many samples each transform was applied to (per channel transforms: samples with any channel).
struct AppliedTransforms {
  int64_t samples = 0;
  int64_t spatial = 0;  // through the sampling grid (rotation, scaling or elastic)
  int64_t rotation = 0;
  int64_t scaling = 0;
  int64_t elastic = 0;
  int64_t noise = 0;
  int64_t blur = 0;
  int64_t brightness = 0;
  int64_t contrast = 0;
  int64_t low_resolution = 0;
  int64_t inverted_gamma = 0;
  int64_t gamma = 0;
  std::array<int64_t, 3> mirror{0, 0, 0};
};

class DeviceAugmenter {
 public:
  // Validates the options (InputError naming the field).
  DeviceAugmenter(AugmentOptions options, torch::Device device);

  // image N×C×box (float32), label N×box (any integer type), on any device; box >= patch per axis, the
  // patch at its centre (offset (box − patch) / 2, as the loader places it). Returns N×C×patch float32 and
  // N×patch int64 on the device.
  TrainingBatch augment(const torch::Tensor& image, const torch::Tensor& label, const Shape3& patch,
                        const std::vector<AugmentDraw>& draws, const std::vector<DrawKey>& keys);
  // A crop_only batch from the loader: transferred, then augmented.
  TrainingBatch augment(Batch& batch);

  const AppliedTransforms& applied() const { return applied_; }
  torch::Device device() const { return device_; }

 private:
  struct Spatial {
    torch::Tensor image, label;
  };
  Spatial spatial(const torch::Tensor& image, const torch::Tensor& label, const Shape3& patch,
                  const std::vector<AugmentDraw>& draws, const std::vector<DrawKey>& keys);
  torch::Tensor sampling_grid(const std::vector<int64_t>& samples, const Shape3& box, const Shape3& patch,
                              const std::vector<AugmentDraw>& draws, const std::vector<DrawKey>& keys);
  // V×3 (D, H, W) displacements of the patch's V output voxels.
  torch::Tensor elastic_displacement(const AugmentDraw& draw, const DrawKey& key, const Shape3& patch) const;
  torch::Tensor warp_labels(const torch::Tensor& label, const torch::Tensor& grid) const;
  void intensity(torch::Tensor& image, const std::vector<AugmentDraw>& draws,
                 const std::vector<DrawKey>& keys, bool dummy_2d);

  AugmentOptions options_;
  torch::Device device_;
  AppliedTransforms applied_;
};

}  // namespace e2e
