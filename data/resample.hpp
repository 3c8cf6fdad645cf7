// Resampling of images and label maps, following nnU-Net v1 (which calls skimage.transform.resize with
// mode "edge", no anti-aliasing, output clipped to the input range): grid positions are half-voxel aligned,
// in = (out + 0.5) · in_size / out_size − 0.5 per axis. Cubic is a B-spline with prefilter (scipy.ndimage
// semantics, 12 voxels of edge padding), linear and nearest clamp at the edges.
#pragma once

#include <cstdint>
#include <vector>

#include "data/volume.hpp"

namespace e2e {

enum class Interpolation { Nearest, Linear, Cubic };

// A spacing counts as anisotropic when max/min exceeds this.
constexpr double kAnisotropyThreshold = 3.0;

// round(spacing / target · shape) per axis (halves to even, as numpy), at least 1.
Shape3 resampled_shape(const Shape3& shape, const Spacing3& spacing, const Spacing3& target);

// nnU-Net's choice of the axis resampled separately: when the source spacing (else the target spacing) is
// anisotropic, its unique coarsest axis; −1 when neither is anisotropic or two axes share the coarsest
// spacing.
int separate_axis(const Spacing3& spacing, const Spacing3& target);

// Resizes one channel to new_shape. With coarse_axis ≥ 0 the other two axes are resized per slice with
// `kind` (clipped to each slice's input range) and coarse_axis with nearest; otherwise all three with
// `kind`, clipped to the channel's input range.
std::vector<float> resize_channel(const float* voxels, const Shape3& shape, const Shape3& new_shape,
                                  Interpolation kind, int coarse_axis = -1);
Volume<float> resize(const Volume<float>& volume, const Shape3& new_shape, Interpolation kind,
                     int coarse_axis = -1);

// Label maps: for every label value in ascending order (−1 and 0 included), its binary mask is resized
// linearly and the voxels reaching 0.5 take that value, so later labels overwrite earlier ones. With
// coarse_axis ≥ 0 this happens per slice and nearest is used along coarse_axis. The label set never grows.
Volume<int16_t> resize_labels(const Volume<int16_t>& labels, const Shape3& new_shape, int coarse_axis = -1);

// To a target spacing with the anisotropy rule: images cubic, labels per-label linear. The result carries
// the target spacing.
MultiVolume<float> resample_image(const MultiVolume<float>& image, const Spacing3& target);
Volume<int16_t> resample_labels(const Volume<int16_t>& labels, const Spacing3& target);

}  // namespace e2e
