// Patch sampling, nnU-Net v1 style (reference/data.md "Patch sampling").
//
// A training patch is placed in two steps. First a *sampling box*, larger than the patch so that any
// rotation/scaling still finds data under every output voxel, is placed in the case: centred on a stored
// foreground voxel for forced samples, uniformly otherwise (the box may stick out of the case by up to half
// the padding, i.e. half of sampling − patch, on each side). The final patch is the centre of that box; the
// spatial transform maps it through the drawn rotation/scale about the patch centre and reads the case
// directly (so the large box is never materialized). Outside the case the image is 0 and the label −1.
#pragma once

#include <cstdint>

#include "data/case_source.hpp"
#include "data/random.hpp"
#include "data/volume.hpp"

namespace e2e {

// A writable patch inside a batch buffer: image C×D×H×W, label D×H×W.
struct PatchRef {
  float* image = nullptr;
  int16_t* label = nullptr;
  int64_t channels = 1;
  Shape3 shape{0, 0, 0};

  int64_t voxels() const { return voxel_count(shape); }
  float* channel(int64_t c) const { return image + c * voxels(); }
};

// Anisotropic patches (max(patch) / patch[0] > 3) get "dummy 2D" augmentation: rotation and scaling in-plane
// (axes H, W) only.
bool is_dummy_2d(const Shape3& patch);

// Size of the sampling box: each axis of the patch rotated by max_rotation_deg (capped at 90°) about each
// axis in turn (only about axis D for dummy 2D, which keeps patch[0]), the bounding extent taken, divided by
// min_scale and truncated. 128³ with 30° and 0.7 → 249³.
Shape3 enlarged_patch_size(const Shape3& patch, double max_rotation_deg, double min_scale, bool dummy_2d);

// The part of a global batch one data-parallel rank produces: samples [begin, end).
struct BatchSlice {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

// Rank r of R takes the contiguous slice [floor(r·B/R), floor((r+1)·B/R)). Throws InputError unless
// 0 <= rank < ranks <= global_batch.
BatchSlice rank_slice(int64_t global_batch, int rank, int ranks);

// Whether sample i of a global batch of B must contain foreground: i >= round(B·(1 − oversampling)), rounded
// half to even like Python's round (B = 2, 0.33 → only sample 1).
bool must_contain_foreground(int64_t sample, int64_t global_batch, double oversampling);

struct PatchPlacement {
  bool forced_foreground = false;
  int foreground_class = -1;  // class of the voxel the box was centred on; −1 when placed uniformly
  Int3 box_lo{0, 0, 0};       // lower corner of the sampling box in case voxels (may be negative)
  Int3 patch_lo{0, 0, 0};     // lower corner of the final patch: box_lo + (sampling − patch) / 2
};

// Places the sampling box (size `sampling`, final patch `patch`) in `c`. Forced: a random class among those
// with stored foreground voxels, a random stored voxel of it, the box centred there and clamped to the range
// the uniform placement allows (so the voxel stays inside the unrotated patch). A forced sample in a case
// without any stored foreground is placed uniformly (foreground_class stays −1).
PatchPlacement place_patch(const PreprocessedCase& c, const Shape3& patch, const Shape3& sampling,
                           bool forced, Rng& rng);

// Copies the region [lo, lo + out.shape) of `c` into `out`; outside the case the image is 0, the label −1.
void crop_case(const PreprocessedCase& c, const Int3& lo, const PatchRef& out);

// Checks what sampling relies on: C >= 1 channels of the label's shape, matching buffer sizes, stored
// foreground voxels inside the volume. Throws InputError naming the case.
void check_case(const PreprocessedCase& c);

}  // namespace e2e
