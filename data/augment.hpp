// Training augmentation: nnU-Net v1 "moreDA" (reference/data.md "Augmentation"), applied per sample in this
// order, each with its probability:
//   1. spatial: rotation about each axis U(±30°) (p 0.2), one scale factor (p 0.2; U(0.7, 1) or U(1, 1.4)
//   with
//      p 0.5 each), no elastic deformation; dummy-2D patches rotate and scale in-plane only
//   2. Gaussian noise, std U(0, 0.1) (p 0.1)            3. Gaussian blur σ U(0.5, 1) (p 0.2, per channel p
//   0.5)
//   4. brightness ×U(0.75, 1.25) (p 0.15)               5. contrast (0.75, 1.25), range kept (p 0.15)
//   6. low resolution: zoom U(0.5, 1), down nearest, up cubic (p 0.25, per channel p 0.5)
//   7. inverted gamma γ U(0.7, 1.5) (p 0.1)             8. gamma γ U(0.7, 1.5) (p 0.3)
//   9. mirror each axis (p 0.5)                          10. label −1 → 0 (option, see ignore_to_background)
// Deep-supervision targets (11.) are made by the loader with downsample_nearest.
// Elastic deformation (batchgenerators' formula, elastic_probability; 0 in moreDA) exists only in the device
// pipeline (worker/device_augment.hpp): LoaderOptions validation rejects it for the CPU augmenter.
//
// Where we differ from nnU-Net on purpose:
//  - Image interpolation is Keys cubic convolution (a = −0.5), not a prefiltered B-spline: it interpolates
//    (zero rotation and unit scale reproduce the crop exactly) and needs no prefilter pass over the sampling
//    box. Low-resolution upsampling uses the same kernel with edge clamping.
//  - Per-label linear label interpolation picks, per voxel, the label whose interpolated one-hot weight is
//    largest (ties: the larger value), so the output only holds values of the 8 neighbours (−1 outside the
//    case); nnU-Net thresholds at 0.5 and writes 0 where no label reaches it.
//  - Scaling by s samples a region s times the patch (s > 1 zooms out), as batchgenerators does.
#pragma once

#include <array>
#include <vector>

#include "data/case_source.hpp"
#include "data/random.hpp"
#include "data/sampler.hpp"

namespace e2e {

enum class LabelInterpolation { kLinear, kNearest };

struct AugmentOptions {
  // 1. Spatial.
  double rotation_probability = 0.2;
  double max_rotation_deg = 30.0;
  double scale_probability = 0.2;
  double min_scale = 0.7;
  double max_scale = 1.4;
  LabelInterpolation label_interpolation = LabelInterpolation::kLinear;
  // Elastic deformation, device augmentation only (see the header comment): a displacement per axis of
  // α · (U(−1, 1) noise per voxel smoothed by a Gaussian of σ, zero outside), α U(min, max) voxels,
  // σ U(min, max) voxels, added to the output coordinates before rotation and scaling.
  double elastic_probability = 0.0;
  double min_elastic_alpha = 0.0;
  double max_elastic_alpha = 900.0;
  double min_elastic_sigma = 9.0;
  double max_elastic_sigma = 13.0;
  // 2. Gaussian noise.
  double noise_probability = 0.1;
  double max_noise_std = 0.1;
  // 3. Gaussian blur.
  double blur_probability = 0.2;
  double blur_channel_probability = 0.5;
  double min_blur_sigma = 0.5;
  double max_blur_sigma = 1.0;
  // 4. Brightness (multiplicative, per channel).
  double brightness_probability = 0.15;
  double min_brightness = 0.75;
  double max_brightness = 1.25;
  // 5. Contrast (per channel, range preserved).
  double contrast_probability = 0.15;
  double min_contrast = 0.75;
  double max_contrast = 1.25;
  // 6. Low-resolution simulation.
  double low_resolution_probability = 0.25;
  double low_resolution_channel_probability = 0.5;
  double min_zoom = 0.5;
  double max_zoom = 1.0;
  // 7. and 8. Gamma, per channel; mean and std restored afterwards (nnU-Net's gamma_retain_stats).
  double inverted_gamma_probability = 0.1;
  double gamma_probability = 0.3;
  double min_gamma = 0.7;
  double max_gamma = 1.5;
  bool gamma_retain_stats = true;
  // 9. Mirror, per axis.
  double mirror_probability = 0.5;
  // 10. true (nnU-Net v1): label −1 ("outside the non-zero region" and padding) becomes background 0 and is
  // trained as background. false: −1 stays in the label and targets, and the loss must exclude it.
  bool ignore_to_background = true;
};

// Every probability 0: the crop only (validation); −1 → 0 as in `base`.
AugmentOptions no_augmentation(const AugmentOptions& base = {});

// Throws InputError naming the field ("augment.min_scale: …") for probabilities outside [0, 1], unordered or
// non-positive ranges.
void validate(const AugmentOptions& options);

// Size of the sampling box the spatial transform may read from (see sampler.hpp): the patch when neither
// rotation nor scaling can be drawn.
Shape3 sampling_size(const Shape3& patch, const AugmentOptions& options);

// Everything random about one sample's augmentation. Per-channel vectors are empty when the transform was not
// drawn for the sample; blur σ and zoom are 0 for channels the per-channel probability skipped.
struct AugmentDraw {
  bool rotated = false;
  std::array<double, 3> rotation_deg{0.0, 0.0, 0.0};  // about axes D, H, W
  bool scaled = false;
  double scale = 1.0;
  bool elastic = false;
  double elastic_alpha = 0.0;
  double elastic_sigma = 0.0;
  bool noise = false;
  double noise_std = 0.0;
  std::vector<double> blur_sigma;
  std::vector<double> brightness;
  std::vector<double> contrast;
  std::vector<double> low_resolution_zoom;
  std::vector<double> inverted_gamma;
  std::vector<double> gamma;
  std::array<bool, 3> mirror{false, false, false};
};

AugmentDraw draw_augmentation(const AugmentOptions& options, const DrawKey& key, int64_t channels,
                              bool dummy_2d);

// Output offset (from the patch centre) → source offset, row-major over (D, H, W).
using Affine3 = std::array<std::array<double, 3>, 3>;
Affine3 identity_affine();
// scale · R_D(a0) · R_H(a1) · R_W(a2); dummy 2D: only a0, and the scale leaves axis D alone.
Affine3 rotation_scale(const std::array<double, 3>& rotation_deg, double scale, bool dummy_2d);

// One pass over the output: voxel o reads the case at patch_lo + ctr + m·(o − ctr), ctr = (shape − 1)/2.
// Image: cubic, 0 outside the case. Label: per-label linear or nearest, −1 outside the case.
void spatial_transform(const PreprocessedCase& c, const Int3& patch_lo, const Affine3& m,
                       LabelInterpolation label_interpolation, const PatchRef& out);

// Intensity transforms on one channel (n voxels, or a D×H×W shape where the transform is spatial).
void add_gaussian_noise(float* channel, int64_t n, double std, Rng& rng);
void gaussian_blur(float* channel, const Shape3& shape, double sigma);  // truncated at 4σ, mirror boundary
void scale_intensity(float* channel, int64_t n, double factor);
void adjust_contrast(float* channel, int64_t n, double factor);  // about the mean, clipped to the old range
// Nearest downsampling to round(shape·zoom) (axis D kept when keep_axis0), cubic back up.
void simulate_low_resolution(float* channel, const Shape3& shape, double zoom, bool keep_axis0);
void apply_gamma(float* channel, int64_t n, double gamma, bool invert, bool retain_stats);

// Separable resampling along one axis: output j is the sum over k < taps of weight[j·taps + k] times input
// index[j·taps + k]. Shared with the device augmenter, which must resample with the same arithmetic.
struct AxisFilter {
  int taps = 0;
  std::vector<int64_t> index;  // out_length × taps
  std::vector<float> weight;
};
// The blur's Gaussian: radius round(4σ), weights exp(−k²/2σ²) normalized to sum 1.
std::vector<float> gaussian_kernel(double sigma);
// Mirror boundary (… c b a | a b c … d | d c b …): the blur's index for position i of an axis of length n.
int64_t reflect_index(int64_t i, int64_t n);
// Keys cubic (a = −0.5) resize with half-voxel alignment and edge clamping (skimage resize geometry).
AxisFilter cubic_resize_filter(int64_t in_length, int64_t out_length);
// Nearest resize indices: output j takes input floor((j + 0.5)·in/out).
std::vector<int64_t> nearest_indices(int64_t in_length, int64_t out_length);

void mirror(const PatchRef& patch, const std::array<bool, 3>& axes);
void replace_label(int16_t* label, int64_t n, int16_t from, int16_t to);
// Nearest resize: output voxel o takes input floor((o + 0.5)·in/out) per axis.
void downsample_nearest(const int16_t* label, const Shape3& from, int16_t* out, const Shape3& to);

// Fills `out` with the augmented patch at patch_lo of `c`: the spatial transform (just a crop when no
// rotation or scaling was drawn), then transforms 2–10 as drawn.
void augment_patch(const PreprocessedCase& c, const Int3& patch_lo, const AugmentOptions& options,
                   const AugmentDraw& draw, const DrawKey& key, const PatchRef& out);

}  // namespace e2e
