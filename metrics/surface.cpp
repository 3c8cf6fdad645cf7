#include "metrics/surface.hpp"

#include <algorithm>
#include <cmath>
#include <future>
#include <limits>
#include <stdexcept>

#include "metrics/distance_transform.hpp"
#include "metrics/surfel_area.hpp"

namespace e2e {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Grids at least this large compute the two directions concurrently.
constexpr int64_t kParallelGridPoints = int64_t{1} << 18;

// Copy of the box's voxels (as 0/1) inside a zero frame one voxel wide on every side.
std::vector<uint8_t> padded_crop(const Mask& mask, const Box& box, const Shape3& padded) {
  std::vector<uint8_t> out(static_cast<std::size_t>(voxel_count(padded)), 0);
  for (int64_t z = box.lo[0]; z < box.hi[0]; ++z) {
    for (int64_t y = box.lo[1]; y < box.hi[1]; ++y) {
      const uint8_t* source = mask.voxels.data() + mask.index(z, y, box.lo[2]);
      uint8_t* target = out.data() + ((z - box.lo[0] + 1) * padded[1] + (y - box.lo[1] + 1)) * padded[2] + 1;
      for (int64_t x = 0; x < box.hi[2] - box.lo[2]; ++x) target[x] = source[x] != 0;
    }
  }
  return out;
}

// 8-bit neighbour code of every corner of the box's voxels: corner (i, j, k) sees voxels i−1..i, j−1..j,
// k−1..k of the crop (outside = background), which are p[i..i+1, j..j+1, k..k+1] of the padded crop.
std::vector<uint8_t> neighbour_codes(const Mask& mask, const Box& box, const Shape3& corners) {
  const Shape3 padded{corners[0] + 1, corners[1] + 1, corners[2] + 1};
  const std::vector<uint8_t> p = padded_crop(mask, box, padded);
  std::vector<uint8_t> codes(static_cast<std::size_t>(voxel_count(corners)));
  const auto row = [&](int64_t i, int64_t j) { return p.data() + (i * padded[1] + j) * padded[2]; };
  for (int64_t i = 0; i < corners[0]; ++i) {
    for (int64_t j = 0; j < corners[1]; ++j) {
      const uint8_t* r00 = row(i, j);
      const uint8_t* r01 = row(i, j + 1);
      const uint8_t* r10 = row(i + 1, j);
      const uint8_t* r11 = row(i + 1, j + 1);
      uint8_t* out = codes.data() + (i * corners[1] + j) * corners[2];
      for (int64_t k = 0; k < corners[2]; ++k) {
        out[k] = static_cast<uint8_t>(128 * r00[k] + 64 * r00[k + 1] + 32 * r01[k] + 16 * r01[k + 1] +
                                      8 * r10[k] + 4 * r10[k + 1] + 2 * r11[k] + r11[k + 1]);
      }
    }
  }
  return codes;
}

bool is_border(uint8_t code) {
  return code != 0 && code != 255;
}

// Squared distance (mm²) from every grid point to the nearest flagged point; an empty vector when nothing is
// flagged (every distance is then +inf).
std::vector<double> squared_distances_to(const std::vector<uint8_t>& flags, const Shape3& shape,
                                         const Spacing3& spacing) {
  if (std::none_of(flags.begin(), flags.end(), [](uint8_t f) { return f != 0; })) return {};
  return squared_distance_to_seeds(flags, shape, spacing);
}

double distance_at(const std::vector<double>& squared, std::size_t index) {
  return squared.empty() ? kInfinity : std::sqrt(squared[index]);
}

std::vector<Surfel> collect_surfels(const std::vector<uint8_t>& codes, const std::vector<double>& squared,
                                    const std::array<double, 256>& areas) {
  std::vector<Surfel> surfels;
  for (std::size_t i = 0; i < codes.size(); ++i) {
    if (is_border(codes[i])) surfels.push_back({distance_at(squared, i), areas[codes[i]]});
  }
  std::sort(surfels.begin(), surfels.end(),
            [](const Surfel& a, const Surfel& b) { return a.distance_mm < b.distance_mm; });
  return surfels;
}

std::vector<uint8_t> border_flags(const std::vector<uint8_t>& codes) {
  std::vector<uint8_t> flags(codes.size());
  std::transform(codes.begin(), codes.end(), flags.begin(), [](uint8_t c) { return is_border(c); });
  return flags;
}

// Over the box's voxels: mask AND NOT its 6-connected erosion, everything outside the box counting as
// background (which changes nothing when the box contains the mask).
std::vector<uint8_t> boundary_voxels(const Mask& mask, const Box& box) {
  const Shape3 size = box.shape();
  const Shape3 padded{size[0] + 2, size[1] + 2, size[2] + 2};
  const std::vector<uint8_t> p = padded_crop(mask, box, padded);
  const int64_t dz = padded[1] * padded[2];
  const int64_t dy = padded[2];
  std::vector<uint8_t> boundary(static_cast<std::size_t>(voxel_count(size)));
  uint8_t* out = boundary.data();
  for (int64_t z = 1; z <= size[0]; ++z) {
    for (int64_t y = 1; y <= size[1]; ++y) {
      const uint8_t* v = p.data() + z * dz + y * dy + 1;
      for (int64_t x = 0; x < size[2]; ++x) {
        const bool interior = v[x - dz] & v[x + dz] & v[x - dy] & v[x + dy] & v[x - 1] & v[x + 1];
        *out++ = v[x] & !interior;
      }
    }
  }
  return boundary;
}

std::vector<double> collect_boundary_distances(const std::vector<uint8_t>& boundary,
                                               const std::vector<double>& squared) {
  std::vector<double> distances;
  for (std::size_t i = 0; i < boundary.size(); ++i) {
    if (boundary[i]) distances.push_back(distance_at(squared, i));
  }
  std::sort(distances.begin(), distances.end());
  return distances;
}

// Runs the two (independent) directions of a metric; large grids on two threads.
template <typename First, typename Second>
void both_directions(int64_t grid_points, First first, Second second) {
  if (grid_points < kParallelGridPoints) {
    first();
    second();
    return;
  }
  auto pending = std::async(std::launch::async, first);
  second();
  pending.get();
}

double total_area(const std::vector<Surfel>& surfels) {
  double total = 0.0;
  for (const Surfel& s : surfels) total += s.area_mm2;
  return total;
}

double area_within(const std::vector<Surfel>& surfels, double tolerance_mm) {
  double area = 0.0;
  for (const Surfel& s : surfels) {
    if (s.distance_mm <= tolerance_mm) area += s.area_mm2;
  }
  return area;
}

// Distance of the first surfel (sorted by distance) where the cumulative area fraction reaches the
// percentile; the last one if rounding keeps it below.
double directed_robust_hausdorff(const std::vector<Surfel>& surfels, double percentile) {
  if (surfels.empty()) return kInfinity;
  const double total = total_area(surfels);
  const double fraction = percentile / 100.0;
  double cumulative = 0.0;
  for (const Surfel& s : surfels) {
    cumulative += s.area_mm2;
    if (cumulative / total >= fraction) return s.distance_mm;
  }
  return surfels.back().distance_mm;
}

// numpy.percentile / torch.quantile with linear interpolation, on sorted values.
double linear_percentile(const std::vector<double>& sorted, double percentile) {
  const double rank = (static_cast<double>(sorted.size()) - 1.0) * percentile / 100.0;
  const std::size_t below = static_cast<std::size_t>(std::floor(rank));
  if (below + 1 >= sorted.size()) return sorted.back();
  const double a = sorted[below];
  const double b = sorted[below + 1];
  if (a == b) return a;  // also keeps inf − inf out
  return a + (rank - static_cast<double>(below)) * (b - a);
}

void check_percentile(double percentile) {
  if (!(percentile >= 0.0 && percentile <= 100.0)) {
    throw InputError("Hausdorff percentile: expected a value in [0, 100], got " + std::to_string(percentile));
  }
}

void check_tolerance(double tolerance_mm) {
  if (!(tolerance_mm >= 0.0) || std::isinf(tolerance_mm)) {
    throw InputError("NSD tolerance: expected a finite value >= 0 mm, got " + std::to_string(tolerance_mm));
  }
}

}  // namespace

std::string to_string(NsdVariant variant) {
  return variant == NsdVariant::monai_voxel ? "monai_voxel" : "surfel";
}

std::string to_string(HausdorffVariant variant) {
  switch (variant) {
    case HausdorffVariant::pooled:
      return "pooled";
    case HausdorffVariant::monai:
      return "monai";
    default:
      return "surfel";
  }
}

NsdVariant parse_nsd_variant(const std::string& name) {
  if (name == "surfel") return NsdVariant::surfel;
  if (name == "monai_voxel") return NsdVariant::monai_voxel;
  throw InputError("NSD variant: expected surfel or monai_voxel, got '" + name + "'");
}

HausdorffVariant parse_hausdorff_variant(const std::string& name) {
  if (name == "surfel") return HausdorffVariant::surfel;
  if (name == "pooled") return HausdorffVariant::pooled;
  if (name == "monai") return HausdorffVariant::monai;
  throw InputError("Hausdorff variant: expected surfel, pooled or monai, got '" + name + "'");
}

SurfaceDistances compute_surface_distances(const Mask& gt, const Mask& pred) {
  check_same_geometry(gt, pred, "surface distances");
  const Box box = union_bounding_box(gt, pred);
  if (box.empty()) return {};
  const Shape3 size = box.shape();
  const Shape3 corners{size[0] + 1, size[1] + 1, size[2] + 1};
  const std::vector<uint8_t> gt_codes = neighbour_codes(gt, box, corners);
  const std::vector<uint8_t> pred_codes = neighbour_codes(pred, box, corners);
  const std::array<double, 256> areas = surfel_area_table(gt.spacing);

  const auto direction = [&](const std::vector<uint8_t>& from_codes, const std::vector<uint8_t>& to_codes) {
    return collect_surfels(from_codes, squared_distances_to(border_flags(to_codes), corners, gt.spacing),
                           areas);
  };
  SurfaceDistances result;
  both_directions(
      voxel_count(corners), [&] { result.gt_to_pred = direction(gt_codes, pred_codes); },
      [&] { result.pred_to_gt = direction(pred_codes, gt_codes); });
  return result;
}

BoundaryDistances compute_boundary_distances(const Mask& gt, const Mask& pred) {
  check_same_geometry(gt, pred, "boundary distances");
  const Box box = union_bounding_box(gt, pred);
  if (box.empty()) return {};
  // Cropping to the union's box changes neither boundary: outside it both masks are background anyway.
  const std::vector<uint8_t> gt_boundary = boundary_voxels(gt, box);
  const std::vector<uint8_t> pred_boundary = boundary_voxels(pred, box);
  const auto direction = [&](const std::vector<uint8_t>& from, const std::vector<uint8_t>& to) {
    return collect_boundary_distances(from, squared_distances_to(to, box.shape(), gt.spacing));
  };
  BoundaryDistances result;
  both_directions(
      voxel_count(box.shape()), [&] { result.gt_to_pred = direction(gt_boundary, pred_boundary); },
      [&] { result.pred_to_gt = direction(pred_boundary, gt_boundary); });
  return result;
}

double normalized_surface_dice(const SurfaceDistances& d, double tolerance_mm) {
  check_tolerance(tolerance_mm);
  const double total = total_area(d.gt_to_pred) + total_area(d.pred_to_gt);
  if (total == 0.0) return kNaN;
  return (area_within(d.gt_to_pred, tolerance_mm) + area_within(d.pred_to_gt, tolerance_mm)) / total;
}

double robust_hausdorff(const SurfaceDistances& d, double percentile) {
  check_percentile(percentile);
  return std::max(directed_robust_hausdorff(d.gt_to_pred, percentile),
                  directed_robust_hausdorff(d.pred_to_gt, percentile));
}

Directed average_surface_distance(const SurfaceDistances& d) {
  const auto mean = [](const std::vector<Surfel>& surfels) {
    double weighted = 0.0;
    for (const Surfel& s : surfels) weighted += s.distance_mm * s.area_mm2;
    const double total = total_area(surfels);
    return total == 0.0 ? kNaN : weighted / total;
  };
  return {mean(d.gt_to_pred), mean(d.pred_to_gt)};
}

Directed surface_overlap(const SurfaceDistances& d, double tolerance_mm) {
  check_tolerance(tolerance_mm);
  const auto overlap = [&](const std::vector<Surfel>& surfels) {
    const double total = total_area(surfels);
    return total == 0.0 ? kNaN : area_within(surfels, tolerance_mm) / total;
  };
  return {overlap(d.gt_to_pred), overlap(d.pred_to_gt)};
}

double normalized_surface_dice_voxels(const BoundaryDistances& d, double tolerance_mm) {
  check_tolerance(tolerance_mm);
  const std::size_t total = d.gt_to_pred.size() + d.pred_to_gt.size();
  if (total == 0) return kNaN;
  const auto within = [&](const std::vector<double>& distances) {
    return std::count_if(distances.begin(), distances.end(), [&](double v) { return v <= tolerance_mm; });
  };
  return static_cast<double>(within(d.gt_to_pred) + within(d.pred_to_gt)) / static_cast<double>(total);
}

double hausdorff_voxels(const BoundaryDistances& d, double percentile, HausdorffVariant variant) {
  check_percentile(percentile);
  if (d.gt_to_pred.empty() || d.pred_to_gt.empty()) return kInfinity;
  switch (variant) {
    case HausdorffVariant::pooled: {
      std::vector<double> pooled;
      pooled.reserve(d.gt_to_pred.size() + d.pred_to_gt.size());
      std::merge(d.gt_to_pred.begin(), d.gt_to_pred.end(), d.pred_to_gt.begin(), d.pred_to_gt.end(),
                 std::back_inserter(pooled));
      return linear_percentile(pooled, percentile);
    }
    case HausdorffVariant::monai:
      return std::max(linear_percentile(d.gt_to_pred, percentile),
                      linear_percentile(d.pred_to_gt, percentile));
    default:
      throw std::invalid_argument("hausdorff_voxels: the surfel variant works on SurfaceDistances");
  }
}

NsdScore normalized_surface_dice(const Mask& gt, const Mask& pred, double tolerance_mm, NsdVariant variant) {
  check_tolerance(tolerance_mm);
  const double value =
      variant == NsdVariant::surfel
          ? normalized_surface_dice(compute_surface_distances(gt, pred), tolerance_mm)
          : normalized_surface_dice_voxels(compute_boundary_distances(gt, pred), tolerance_mm);
  return {value, tolerance_mm, variant};
}

HausdorffScore hausdorff(const Mask& gt, const Mask& pred, double percentile, HausdorffVariant variant) {
  check_percentile(percentile);
  const double value = variant == HausdorffVariant::surfel
                           ? robust_hausdorff(compute_surface_distances(gt, pred), percentile)
                           : hausdorff_voxels(compute_boundary_distances(gt, pred), percentile, variant);
  return {value, percentile, variant};
}

}  // namespace e2e
