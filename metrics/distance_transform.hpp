// Exact Euclidean distance transform with anisotropic spacing (Felzenszwalb & Huttenlocher 2012: separable
// lower envelopes of parabolas, linear time per axis).
#pragma once

#include <vector>

#include "data/volume.hpp"

namespace e2e {

// In place on a (D, H, W) grid: on entry 0 at seeds and +infinity elsewhere (any finite value is taken as an
// additive offset, as in the paper); on exit the squared distance in mm² from every point to the nearest
// seed, where a step along axis a is spacing[a] mm. Without seeds everything stays +infinity.
void squared_distance_transform(std::vector<double>& values, const Shape3& shape, const Spacing3& spacing);

// Convenience: squared distances to the non-zero entries of `seeds` (same layout).
std::vector<double> squared_distance_to_seeds(const std::vector<uint8_t>& seeds, const Shape3& shape,
                                              const Spacing3& spacing);

}  // namespace e2e
