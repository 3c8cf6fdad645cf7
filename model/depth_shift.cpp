#include "model/depth_shift.hpp"

namespace e2e {

namespace {

// out[d] = in[d - shift] along dim 2, zeros where d - shift falls outside [0, D).
torch::Tensor shift_along_depth(const torch::Tensor& group, int64_t shift) {
  const int64_t depth = group.size(2);
  if (shift == 0) return group;
  if (std::abs(shift) >= depth) return torch::zeros_like(group);
  // constant_pad_nd pads the last dims first: (W lo, W hi, H lo, H hi, D lo, D hi).
  const int64_t front = std::max<int64_t>(shift, 0);
  const int64_t back = std::max<int64_t>(-shift, 0);
  torch::Tensor padded = torch::constant_pad_nd(group, {0, 0, 0, 0, front, back});
  return padded.narrow(2, back, depth);
}

}  // namespace

torch::Tensor depth_shift(const torch::Tensor& input, int shift_size) {
  TORCH_CHECK(input.dim() == 5, "depth_shift expects N×C×D×H×W, got ", input.dim(), " dims");
  if (shift_size <= 1) return input;
  const int64_t channels = input.size(1);
  const int64_t chunk = (channels + shift_size - 1) / shift_size;
  const int64_t half = shift_size / 2;
  std::vector<torch::Tensor> groups;
  int64_t g = 0;
  for (int64_t start = 0; start < channels; start += chunk, ++g) {
    const int64_t width = std::min(chunk, channels - start);
    groups.push_back(shift_along_depth(input.narrow(1, start, width), g - half));
  }
  return torch::cat(groups, 1);
}

}  // namespace e2e
