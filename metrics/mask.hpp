// Binary masks for the metrics: a Volume<uint8_t> where any non-zero voxel is inside. Shape (D, H, W) and
// spacing (mm) share the axis order of data/volume.hpp.
#pragma once

#include <cstdint>
#include <string>

#include "data/volume.hpp"

namespace e2e {

using Mask = Volume<uint8_t>;

// A half-open box [lo, hi) of voxel indices; empty when any hi <= lo.
struct Box {
  Int3 lo{0, 0, 0};
  Int3 hi{0, 0, 0};

  bool empty() const { return hi[0] <= lo[0] || hi[1] <= lo[1] || hi[2] <= lo[2]; }
  Shape3 shape() const { return {hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]}; }
  // Grows the box to contain voxel (z, y, x); an empty box becomes that voxel.
  void include(int64_t z, int64_t y, int64_t x);
  // Smallest box containing both (either may be empty).
  static Box merge(const Box& a, const Box& b);
};

// Bounding box of the non-zero voxels of a or b (empty box if both are empty).
Box union_bounding_box(const Mask& a, const Mask& b);

// The voxels of mask inside box, as a mask of shape box.shape() with the same spacing.
Mask crop(const Mask& mask, const Box& box);

int64_t count_nonzero(const Mask& mask);

// Throws InputError unless gt and pred have the same shape and (within 1e-3 relative) the same positive,
// finite spacing. `what` names the pair in the message, e.g. "case_001 class 3".
void check_same_geometry(const Shape3& gt_shape, const Spacing3& gt_spacing, const Shape3& pred_shape,
                         const Spacing3& pred_spacing, const std::string& what);

// The same for two volumes, which must also hold shape-many voxels.
template <typename T>
void check_same_geometry(const Volume<T>& gt, const Volume<T>& pred, const std::string& what) {
  check_same_geometry(gt.shape, gt.spacing, pred.shape, pred.spacing, what);
  if (gt.size() != voxel_count(gt.shape) || pred.size() != voxel_count(pred.shape)) {
    throw InputError(what + ": a volume holds fewer or more voxels than its shape says");
  }
}

}  // namespace e2e
