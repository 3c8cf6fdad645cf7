// Surface-distance metrics of two binary masks: Normalized Surface Dice, robust Hausdorff (HD95), average
// surface distance and surface overlap.
//
// Reference method (DeepMind `surface-distance`, shared/reference/metrics.md): the surface is made of surfels
// at the voxel corners of both masks' 2×2×2 neighbourhoods, each weighted by its marching-cubes area, with
// exact Euclidean distances (anisotropic spacing) to the other mask's surfels. Other published variants are
// offered by name only: boundary voxels (mask XOR its 6-connected erosion, weight 1, voxel-centre distances)
// with medpy's pooled HD95, MONAI's per-direction HD95, and MONAI's voxel NSD.
#pragma once

#include <string>
#include <vector>

#include "metrics/mask.hpp"

namespace e2e {

enum class NsdVariant {
  surfel,       // reference: marching-cubes surfels weighted by area
  monai_voxel,  // MONAI compute_surface_dice: boundary voxels, weight 1
};

enum class HausdorffVariant {
  surfel,  // reference (DeepMind robust Hausdorff): per direction, first surfel where the sorted cumulative
           // area fraction reaches the percentile (no interpolation); max of both directions
  pooled,  // medpy hd95 (nnU-Net v1, the E2ENet code): linear percentile over both directions' boundary-voxel
           // distances concatenated
  monai,   // MONAI compute_hausdorff_distance: linear percentile per direction, then the max
};

std::string to_string(NsdVariant variant);
std::string to_string(HausdorffVariant variant);
// Throw InputError naming the accepted values for unknown names.
NsdVariant parse_nsd_variant(const std::string& name);
HausdorffVariant parse_hausdorff_variant(const std::string& name);

struct Surfel {
  double distance_mm = 0.0;  // to the nearest surfel (corner) of the other mask; +inf if it has none
  double area_mm2 = 0.0;
};

// Surfels of both masks, each list sorted by distance (ascending).
struct SurfaceDistances {
  std::vector<Surfel> gt_to_pred;
  std::vector<Surfel> pred_to_gt;
};

// Boundary voxels of both masks with their voxel-centre distance (mm) to the other mask's boundary voxels
// (+inf if it has none), each list sorted ascending.
struct BoundaryDistances {
  std::vector<double> gt_to_pred;
  std::vector<double> pred_to_gt;
};

// A value per direction.
struct Directed {
  double gt_to_pred = 0.0;
  double pred_to_gt = 0.0;
};

struct NsdScore {
  double value = 0.0;
  double tolerance_mm = 0.0;
  NsdVariant variant = NsdVariant::surfel;
};

struct HausdorffScore {
  double value = 0.0;
  double percentile = 95.0;
  HausdorffVariant variant = HausdorffVariant::surfel;
};

// Both throw InputError if the masks' shapes or spacings differ. Spacing comes from gt.spacing.
SurfaceDistances compute_surface_distances(const Mask& gt, const Mask& pred);
BoundaryDistances compute_boundary_distances(const Mask& gt, const Mask& pred);

// Reference metrics on surfels.
// NSD(τ) = (Σ area_gt[d ≤ τ] + Σ area_pred[d ≤ τ]) / (Σ area_gt + Σ area_pred); NaN if both are empty.
double normalized_surface_dice(const SurfaceDistances& distances, double tolerance_mm);
// Percentile in [0, 100]; 100 gives the Hausdorff distance. +inf if either surface is empty.
double robust_hausdorff(const SurfaceDistances& distances, double percentile);
// Σ d·area / Σ area per direction (NaN for a direction without surfels, +inf if the other mask is empty).
Directed average_surface_distance(const SurfaceDistances& distances);
// Area fraction within the tolerance, per direction (NaN for a direction without surfels).
Directed surface_overlap(const SurfaceDistances& distances, double tolerance_mm);

// Boundary-voxel variants.
double normalized_surface_dice_voxels(const BoundaryDistances& distances, double tolerance_mm);
// `variant` must be pooled or monai. +inf if either boundary is empty.
double hausdorff_voxels(const BoundaryDistances& distances, double percentile, HausdorffVariant variant);

// One-call forms computing only what the variant needs.
NsdScore normalized_surface_dice(const Mask& gt, const Mask& pred, double tolerance_mm,
                                 NsdVariant variant = NsdVariant::surfel);
HausdorffScore hausdorff(const Mask& gt, const Mask& pred, double percentile = 95.0,
                         HausdorffVariant variant = HausdorffVariant::surfel);

}  // namespace e2e
