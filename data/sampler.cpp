#include "data/sampler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace e2e {

namespace {

constexpr double kPi = 3.14159265358979323846;

int64_t floor_div(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

std::string format_shape(const Shape3& s) {
  return fmt::format("[{}, {}, {}]", s[0], s[1], s[2]);
}

// Extent along the two in-plane axes of a rectangle a×b rotated by `angle` (its bounding box).
std::array<double, 2> rotated_extent(double a, double b, double angle) {
  const double c = std::abs(std::cos(angle));
  const double s = std::abs(std::sin(angle));
  return {a * c + b * s, a * s + b * c};
}

// The range of sampling-box lower corners that keeps the box within half the padding of the case on each
// side (nnU-Net's lb/ub), per axis.
struct PlacementRange {
  Int3 lo{0, 0, 0};
  Int3 hi{0, 0, 0};
};

PlacementRange placement_range(const Shape3& case_shape, const Shape3& patch, const Shape3& sampling) {
  PlacementRange range;
  for (int d = 0; d < 3; ++d) {
    int64_t pad = sampling[d] - patch[d];
    if (pad + case_shape[d] < sampling[d]) pad = sampling[d] - case_shape[d];
    range.lo[d] = floor_div(-pad, 2);
    range.hi[d] = case_shape[d] + pad / 2 + pad % 2 - sampling[d];
  }
  return range;
}

// Classes with at least one stored foreground voxel.
std::vector<std::size_t> present_classes(const PreprocessedCase& c) {
  std::vector<std::size_t> present;
  for (std::size_t i = 0; i < c.foreground.size(); ++i) {
    if (c.foreground[i].first > 0 && !c.foreground[i].second.empty()) present.push_back(i);
  }
  return present;
}

template <typename T>
void crop_channel(const T* source, const Shape3& shape, const Int3& lo, T* out, const Shape3& out_shape,
                  T pad) {
  const int64_t x_begin = std::clamp<int64_t>(-lo[2], 0, out_shape[2]);
  const int64_t x_end = std::clamp<int64_t>(shape[2] - lo[2], x_begin, out_shape[2]);
  for (int64_t z = 0; z < out_shape[0]; ++z) {
    const int64_t sz = lo[0] + z;
    for (int64_t y = 0; y < out_shape[1]; ++y) {
      const int64_t sy = lo[1] + y;
      T* row = out + (z * out_shape[1] + y) * out_shape[2];
      if (sz < 0 || sz >= shape[0] || sy < 0 || sy >= shape[1]) {
        std::fill(row, row + out_shape[2], pad);
        continue;
      }
      const T* source_row = source + (sz * shape[1] + sy) * shape[2] + lo[2];
      std::fill(row, row + x_begin, pad);
      std::copy(source_row + x_begin, source_row + x_end, row + x_begin);
      std::fill(row + x_end, row + out_shape[2], pad);
    }
  }
}

}  // namespace

bool is_dummy_2d(const Shape3& patch) {
  return static_cast<double>(std::max({patch[0], patch[1], patch[2]})) / static_cast<double>(patch[0]) > 3.0;
}

Shape3 enlarged_patch_size(const Shape3& patch, double max_rotation_deg, double min_scale, bool dummy_2d) {
  const double angle = std::min(std::abs(max_rotation_deg), 90.0) * kPi / 180.0;
  std::array<double, 3> extent{static_cast<double>(patch[0]), static_cast<double>(patch[1]),
                               static_cast<double>(patch[2])};
  const std::array<double, 3> original = extent;
  // Rotation about axis `a` turns the plane of the other two axes.
  const int planes[3][2] = {{1, 2}, {0, 2}, {0, 1}};
  for (int a = 0; a < (dummy_2d ? 1 : 3); ++a) {
    const int u = planes[a][0];
    const int v = planes[a][1];
    const auto rotated = rotated_extent(original[u], original[v], angle);
    extent[u] = std::max(extent[u], rotated[0]);
    extent[v] = std::max(extent[v], rotated[1]);
  }
  Shape3 result = patch;
  for (int d = dummy_2d ? 1 : 0; d < 3; ++d) result[d] = static_cast<int64_t>(extent[d] / min_scale);
  for (int d = 0; d < 3; ++d) result[d] = std::max(result[d], patch[d]);
  return result;
}

BatchSlice rank_slice(int64_t global_batch, int rank, int ranks) {
  if (ranks < 1 || ranks > global_batch) {
    throw InputError(
        fmt::format("loader.ranks: expected 1 to the global batch size ({}), got {}", global_batch, ranks));
  }
  if (rank < 0 || rank >= ranks) {
    throw InputError(fmt::format("loader.rank: expected a rank in [0, {}), got {}", ranks, rank));
  }
  return {global_batch * rank / ranks, global_batch * (rank + 1) / ranks};
}

bool must_contain_foreground(int64_t sample, int64_t global_batch, double oversampling) {
  const double threshold = std::nearbyint(static_cast<double>(global_batch) * (1.0 - oversampling));
  return static_cast<double>(sample) >= threshold;
}

PatchPlacement place_patch(const PreprocessedCase& c, const Shape3& patch, const Shape3& sampling,
                           bool forced, Rng& rng) {
  const Shape3& shape = c.label.shape;
  const PlacementRange range = placement_range(shape, patch, sampling);
  PatchPlacement placement;
  placement.forced_foreground = forced;
  const std::vector<std::size_t> classes = forced ? present_classes(c) : std::vector<std::size_t>{};
  if (!classes.empty()) {
    const auto& [label, voxels] = c.foreground[classes[rng.below(classes.size())]];
    const auto& voxel = voxels[rng.below(voxels.size())];
    placement.foreground_class = label;
    for (int d = 0; d < 3; ++d) {
      placement.box_lo[d] = std::clamp<int64_t>(voxel[d] - sampling[d] / 2, range.lo[d], range.hi[d]);
    }
  } else {
    for (int d = 0; d < 3; ++d) placement.box_lo[d] = rng.between(range.lo[d], range.hi[d]);
  }
  for (int d = 0; d < 3; ++d) placement.patch_lo[d] = placement.box_lo[d] + (sampling[d] - patch[d]) / 2;
  return placement;
}

void crop_case(const PreprocessedCase& c, const Int3& lo, const PatchRef& out) {
  const Shape3& shape = c.label.shape;
  for (int64_t ch = 0; ch < out.channels; ++ch) {
    crop_channel(c.image.channel(ch), shape, lo, out.channel(ch), out.shape, 0.0f);
  }
  crop_channel(c.label.voxels.data(), shape, lo, out.label, out.shape, int16_t{-1});
}

void check_case(const PreprocessedCase& c) {
  const Shape3& shape = c.label.shape;
  const auto fail = [&](const std::string& what) {
    throw InputError(fmt::format("case {}: {}", c.id, what));
  };
  if (shape[0] <= 0 || shape[1] <= 0 || shape[2] <= 0) fail("empty label volume " + format_shape(shape));
  if (c.image.channels < 1) fail(fmt::format("expected at least 1 image channel, got {}", c.image.channels));
  if (c.image.shape != shape) {
    fail("image shape " + format_shape(c.image.shape) + " differs from label shape " + format_shape(shape));
  }
  if (c.label.size() != voxel_count(shape) ||
      static_cast<int64_t>(c.image.voxels.size()) != c.image.channels * voxel_count(shape)) {
    fail("voxel buffers do not match the declared shape " + format_shape(shape));
  }
  for (const auto& [label, voxels] : c.foreground) {
    for (const auto& v : voxels) {
      if (!c.label.contains(v[0], v[1], v[2])) {
        fail(fmt::format("stored foreground voxel ({}, {}, {}) of class {} lies outside the volume {}", v[0],
                         v[1], v[2], label, format_shape(shape)));
      }
    }
  }
}

}  // namespace e2e
