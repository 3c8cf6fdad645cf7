#include "metrics/mask.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

namespace e2e {

void Box::include(int64_t z, int64_t y, int64_t x) {
  const Int3 voxel{z, y, x};
  const bool was_empty = empty();
  for (int axis = 0; axis < 3; ++axis) {
    lo[axis] = was_empty ? voxel[axis] : std::min(lo[axis], voxel[axis]);
    hi[axis] = was_empty ? voxel[axis] + 1 : std::max(hi[axis], voxel[axis] + 1);
  }
}

Box Box::merge(const Box& a, const Box& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  Box merged;
  for (int axis = 0; axis < 3; ++axis) {
    merged.lo[axis] = std::min(a.lo[axis], b.lo[axis]);
    merged.hi[axis] = std::max(a.hi[axis], b.hi[axis]);
  }
  return merged;
}

namespace {

// First and last x with a[x] | b[x] non-zero in a row of n voxels; false if there is none. Whole rows of
// background (most of a large volume) are skipped eight bytes at a time.
bool row_extent(const uint8_t* a, const uint8_t* b, int64_t n, int64_t& first, int64_t& last) {
  int64_t x = 0;
  for (; x + 8 <= n; x += 8) {
    uint64_t wa, wb;
    std::memcpy(&wa, a + x, 8);
    std::memcpy(&wb, b + x, 8);
    if (wa | wb) break;
  }
  for (; x < n && !(a[x] | b[x]); ++x) {
  }
  if (x == n) return false;
  first = x;
  last = n - 1;
  while (!(a[last] | b[last])) --last;
  return true;
}

}  // namespace

Box union_bounding_box(const Mask& a, const Mask& b) {
  Box box;
  const Shape3& s = a.shape;
  for (int64_t z = 0; z < s[0]; ++z) {
    for (int64_t y = 0; y < s[1]; ++y) {
      const int64_t row = a.index(z, y, 0);
      int64_t first = 0, last = 0;
      if (row_extent(a.voxels.data() + row, b.voxels.data() + row, s[2], first, last)) {
        box.include(z, y, first);
        box.include(z, y, last);
      }
    }
  }
  return box;
}

Mask crop(const Mask& mask, const Box& box) {
  Mask cropped(box.shape(), mask.spacing);
  if (box.empty()) return cropped;
  for (int64_t z = box.lo[0]; z < box.hi[0]; ++z) {
    for (int64_t y = box.lo[1]; y < box.hi[1]; ++y) {
      const auto source = mask.voxels.begin() + mask.index(z, y, box.lo[2]);
      std::copy(source, source + (box.hi[2] - box.lo[2]),
                cropped.voxels.begin() + cropped.index(z - box.lo[0], y - box.lo[1], 0));
    }
  }
  return cropped;
}

int64_t count_nonzero(const Mask& mask) {
  return std::count_if(mask.voxels.begin(), mask.voxels.end(), [](uint8_t v) { return v != 0; });
}

namespace {

std::string format_triple(const Shape3& s) {
  std::ostringstream out;
  out << "(" << s[0] << ", " << s[1] << ", " << s[2] << ")";
  return out.str();
}

std::string format_triple(const Spacing3& s) {
  std::ostringstream out;
  out << "(" << s[0] << ", " << s[1] << ", " << s[2] << ")";
  return out.str();
}

}  // namespace

void check_same_geometry(const Shape3& gt_shape, const Spacing3& gt_spacing, const Shape3& pred_shape,
                         const Spacing3& pred_spacing, const std::string& what) {
  if (gt_shape != pred_shape) {
    throw InputError(what + ": prediction shape " + format_triple(pred_shape) +
                     " differs from the reference shape " + format_triple(gt_shape));
  }
  for (int axis = 0; axis < 3; ++axis) {
    if (gt_shape[axis] < 0) throw InputError(what + ": negative shape " + format_triple(gt_shape));
    if (!(std::isfinite(gt_spacing[axis]) && gt_spacing[axis] > 0)) {
      throw InputError(what + ": expected a positive finite spacing, got " + format_triple(gt_spacing));
    }
    if (!(std::abs(pred_spacing[axis] - gt_spacing[axis]) <= 1e-3 * gt_spacing[axis])) {
      throw InputError(what + ": prediction spacing " + format_triple(pred_spacing) +
                       " mm differs from the reference spacing " + format_triple(gt_spacing) + " mm");
    }
  }
}

}  // namespace e2e
