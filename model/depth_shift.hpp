// The restricted depth shift of E2ENet: channel groups move along the depth axis (dim 2 of N×C×D×H×W).
#pragma once

#include <torch/torch.h>

namespace e2e {

// Splits the channels like torch.chunk into shift_size groups (chunk size ceil(C/shift_size), the last
// group smaller, possibly fewer groups when C is small); group g moves by g - shift_size/2 slices with zero
// fill and no wrap-around. Shift s gives out[d] = in[d - s], so s = -1 means out[d] = in[d + 1].
// shift_size 0 or 1 returns the input unchanged.
torch::Tensor depth_shift(const torch::Tensor& input, int shift_size);

}  // namespace e2e
