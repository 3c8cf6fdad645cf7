#include "worker/sliding_window.hpp"

#include <cmath>

namespace e2e {

namespace {

int64_t round_half_even(double value) {
  return static_cast<int64_t>(std::nearbyint(value));
}  // FE_TONEAREST

}  // namespace

std::vector<int64_t> sliding_window_starts(int64_t size, int64_t patch, double step_fraction) {
  TORCH_CHECK(size >= patch && patch > 0 && step_fraction > 0, "sliding window: size ", size, " < patch ",
              patch);
  const double step = static_cast<double>(patch) * step_fraction;
  const auto tiles = static_cast<int64_t>(std::ceil(static_cast<double>(size - patch) / step)) + 1;
  if (tiles == 1) return {0};
  const double spacing = static_cast<double>(size - patch) / static_cast<double>(tiles - 1);
  std::vector<int64_t> starts;
  for (int64_t i = 0; i < tiles; ++i) starts.push_back(round_half_even(spacing * static_cast<double>(i)));
  return starts;
}

torch::Tensor gaussian_importance(const Int3& patch, double sigma_scale) {
  std::vector<torch::Tensor> axes;
  for (int a = 0; a < 3; ++a) {
    const double sigma = static_cast<double>(patch[a]) * sigma_scale;
    const int64_t centre = patch[a] / 2;
    const auto radius = static_cast<int64_t>(4.0 * sigma + 0.5);
    torch::Tensor axis = torch::zeros({patch[a]}, torch::kFloat64);
    for (int64_t i = 0; i < patch[a]; ++i) {
      const int64_t d = i - centre;
      if (std::abs(d) <= radius) axis[i] = std::exp(-static_cast<double>(d * d) / (2 * sigma * sigma));
    }
    axes.push_back(axis);
  }
  torch::Tensor map = axes[0].view({-1, 1, 1}) * axes[1].view({1, -1, 1}) * axes[2].view({1, 1, -1});
  map = map / map.max();
  const torch::Tensor smallest = map.masked_select(map > 0).min();
  map = torch::where(map > 0, map, smallest);
  return map.to(torch::kFloat32);
}

torch::Tensor sliding_window_probabilities(const LogitsFn& logits_fn, const torch::Tensor& image,
                                           int64_t num_classes, const SlidingWindowOptions& options) {
  TORCH_CHECK(image.dim() == 4, "sliding window expects C×D×H×W, got ", image.sizes());
  torch::NoGradGuard no_grad;
  const Int3& patch = options.patch;
  // Pad (zeros, centred like nnU-Net) to at least the patch size.
  std::vector<int64_t> pad_before(3), padded_size(3);
  std::vector<int64_t> pad_spec;  // constant_pad_nd order: last axis first
  for (int a = 2; a >= 0; --a) {
    const int64_t size = image.size(a + 1);
    const int64_t missing = std::max<int64_t>(patch[a] - size, 0);
    pad_before[a] = missing / 2;
    padded_size[a] = size + missing;
    pad_spec.push_back(missing / 2);
    pad_spec.push_back(missing - missing / 2);
  }
  const torch::Tensor padded = torch::constant_pad_nd(image.to(torch::kFloat32), pad_spec);

  const torch::Tensor weight = gaussian_importance(patch).to(options.device);
  torch::Tensor accumulated =
      torch::zeros({num_classes, padded_size[0], padded_size[1], padded_size[2]},
                   torch::TensorOptions().dtype(torch::kFloat32).device(options.device));
  torch::Tensor weight_sum =
      torch::zeros({padded_size[0], padded_size[1], padded_size[2]}, accumulated.options());

  std::vector<std::vector<int64_t>> flips{{}};
  if (options.mirror_tta) flips = {{}, {2}, {3}, {4}, {2, 3}, {2, 4}, {3, 4}, {2, 3, 4}};

  for (int64_t z : sliding_window_starts(padded_size[0], patch[0], options.step_fraction))
    for (int64_t y : sliding_window_starts(padded_size[1], patch[1], options.step_fraction))
      for (int64_t x : sliding_window_starts(padded_size[2], patch[2], options.step_fraction)) {
        using torch::indexing::Slice;
        torch::Tensor tile =
            padded.index({Slice(), Slice(z, z + patch[0]), Slice(y, y + patch[1]), Slice(x, x + patch[2])})
                .unsqueeze(0)
                .to(options.device, options.compute_dtype);
        torch::Tensor probs =
            torch::zeros({1, num_classes, patch[0], patch[1], patch[2]}, accumulated.options());
        for (const auto& dims : flips) {
          torch::Tensor input = dims.empty() ? tile : tile.flip(dims);
          torch::Tensor p = torch::softmax(logits_fn(input).to(torch::kFloat32), 1);
          probs += dims.empty() ? p : p.flip(dims);
        }
        probs = probs.squeeze(0) / static_cast<double>(flips.size());
        const auto window = std::vector<torch::indexing::TensorIndex>{
            Slice(z, z + patch[0]), Slice(y, y + patch[1]), Slice(x, x + patch[2])};
        accumulated.index({Slice(), window[0], window[1], window[2]}) += probs * weight;
        weight_sum.index({window[0], window[1], window[2]}) += weight;
      }
  torch::Tensor result = accumulated / weight_sum;
  using torch::indexing::Slice;
  result = result.index({Slice(), Slice(pad_before[0], pad_before[0] + image.size(1)),
                         Slice(pad_before[1], pad_before[1] + image.size(2)),
                         Slice(pad_before[2], pad_before[2] + image.size(3))});
  return result.to(torch::kCPU).contiguous();
}

}  // namespace e2e
