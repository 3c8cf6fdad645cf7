#include "worker/device_augment.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <mutex>

namespace e2e {

namespace F = torch::nn::functional;

namespace {

// A generator of the device's kind, seeded for one sample's stream.
at::Generator seeded_generator(torch::Device device, const DrawKey& key, DrawStream stream) {
  at::Generator global = at::globalContext().defaultGenerator(device);
  at::Generator generator;
  {
    std::lock_guard<std::mutex> lock(global.mutex());
    generator = global.clone();
  }
  generator.set_current_seed(draw_seed(key, stream));
  return generator;
}

torch::Tensor long_tensor(const std::vector<int64_t>& values, torch::Device device) {
  return torch::tensor(values, torch::kLong).to(device);
}

// `values` (length L) shaped to broadcast along `axis` of a D×H×W tensor.
torch::Tensor along_axis(const torch::Tensor& values, int axis) {
  std::vector<int64_t> shape{1, 1, 1};
  shape[axis] = values.size(0);
  return values.view(shape);
}

bool warps(const AugmentDraw& draw) {
  return draw.rotated || draw.scaled || draw.elastic;
}

torch::Tensor crop(const torch::Tensor& t, int first_axis, const Shape3& offset, const Shape3& patch) {
  torch::Tensor out = t;
  for (int d = 0; d < 3; ++d) out = out.narrow(first_axis + d, offset[d], patch[d]);
  return out;
}

// A 1D filter over an axis of `length` as a length×length matrix (row j: what output j takes from each
// input), the boundary folded in: mirrored, or zero outside.
torch::Tensor filter_matrix(int64_t length, const std::vector<float>& kernel, bool mirror,
                            torch::Device device) {
  const int64_t radius = static_cast<int64_t>(kernel.size() / 2);
  std::vector<float> matrix(static_cast<std::size_t>(length * length), 0.0f);
  for (int64_t j = 0; j < length; ++j) {
    for (int64_t k = -radius; k <= radius; ++k) {
      const int64_t i = mirror ? reflect_index(j + k, length) : j + k;
      if (i >= 0 && i < length) matrix[j * length + i] += kernel[k + radius];
    }
  }
  return torch::tensor(matrix, torch::kFloat).view({length, length}).to(device);
}

// Separable Gaussian of σ (the CPU's gaussian_kernel and reflect_index) over the last three axes, from axis
// `first_axis` (0 = D) on: one matrix product per axis (fast for the wide kernels of elastic deformation,
// too).
torch::Tensor gaussian_filter(torch::Tensor x, double sigma, int first_axis, bool mirror) {
  const std::vector<float> kernel = gaussian_kernel(sigma);
  for (int axis = first_axis; axis < 3; ++axis) {
    const int64_t dim = x.dim() - 3 + axis;
    const torch::Tensor matrix = filter_matrix(x.size(dim), kernel, mirror, x.device());
    x = x.movedim(dim, -1).matmul(matrix.t()).movedim(-1, dim);
  }
  return x;
}

void gaussian_blur(torch::Tensor channel, double sigma) {
  channel.copy_(gaussian_filter(channel, sigma, 0, true));
}

// Σ x and Σ x² in double, like the CPU's moments.
struct DeviceMoments {
  torch::Tensor mean, std;  // 0-dim double
};

DeviceMoments moments(const torch::Tensor& x) {
  const torch::Tensor d = x.to(torch::kDouble);
  const double n = static_cast<double>(x.numel());
  const torch::Tensor mean = d.sum() / n;
  const torch::Tensor square = d.square().sum() / n;
  return {mean, (square - mean.square()).clamp_min(0.0).sqrt()};
}

void adjust_contrast(torch::Tensor channel, double factor) {
  const torch::Tensor mean =
      (channel.sum(torch::kDouble) / static_cast<double>(channel.numel())).to(torch::kFloat);
  const torch::Tensor lo = channel.min();
  const torch::Tensor hi = channel.max();
  channel.sub_(mean).mul_(static_cast<float>(factor)).add_(mean).clamp_(lo, hi);
}

void apply_gamma(torch::Tensor channel, double gamma, bool invert, bool retain_stats) {
  if (invert) channel.neg_();
  const DeviceMoments before = moments(channel);
  const torch::Tensor lo = channel.min();
  const torch::Tensor range = channel.max() - lo;
  const torch::Tensor unit = (channel - lo) / (range + 1e-7f);
  channel.copy_(unit.pow(static_cast<float>(gamma)) * range + lo);
  if (retain_stats) {
    const DeviceMoments after = moments(channel);
    const torch::Tensor gain = before.std / (after.std + 1e-8);
    channel.copy_(((channel.to(torch::kDouble) - after.mean) * gain + before.mean).to(torch::kFloat));
  }
  if (invert) channel.neg_();
}

// Keys cubic resize of one axis with the CPU's filter (data/augment.hpp), tap by tap as the CPU sums.
torch::Tensor cubic_resize_axis(const torch::Tensor& x, int axis, int64_t out_length) {
  const AxisFilter filter = cubic_resize_filter(x.size(axis), out_length);
  const torch::Tensor index = long_tensor(filter.index, x.device()).view({out_length, filter.taps});
  const torch::Tensor weight =
      torch::tensor(filter.weight, torch::kFloat).to(x.device()).view({out_length, filter.taps});
  torch::Tensor sum;
  for (int k = 0; k < filter.taps; ++k) {
    const torch::Tensor w = along_axis(weight.select(1, k).contiguous(), axis);
    const torch::Tensor term = x.index_select(axis, index.select(1, k).contiguous()) * w;
    sum = k == 0 ? term : sum + term;
  }
  return sum;
}

void simulate_low_resolution(torch::Tensor channel, double zoom, bool keep_axis0) {
  const Shape3 shape{channel.size(0), channel.size(1), channel.size(2)};
  Shape3 low = shape;
  for (int d = keep_axis0 ? 1 : 0; d < 3; ++d) {
    low[d] = std::max<int64_t>(1, static_cast<int64_t>(std::llround(shape[d] * zoom)));
  }
  if (low == shape) return;
  torch::Tensor x = channel;
  for (int d = 0; d < 3; ++d)
    x = x.index_select(d, long_tensor(nearest_indices(shape[d], low[d]), x.device()));
  for (int d = 2; d >= 0; --d) x = cubic_resize_axis(x, d, shape[d]);
  channel.copy_(x);
}

// The 3×4 map from (output offset from the patch centre, 1) to grid_sample's normalized (x, y, z) in the box.
std::array<float, 12> grid_map(const Affine3& m, const Shape3& box, const Shape3& patch) {
  std::array<float, 12> theta{};
  for (int row = 0; row < 3; ++row) {
    const int d = 2 - row;  // grid components are (x, y, z) = axes (W, H, D)
    const double to_unit = box[d] > 1 ? 2.0 / static_cast<double>(box[d] - 1) : 0.0;
    const double centre = static_cast<double>((box[d] - patch[d]) / 2) + (patch[d] - 1) / 2.0;
    for (int j = 0; j < 3; ++j) theta[row * 4 + j] = static_cast<float>(to_unit * m[d][j]);
    theta[row * 4 + 3] = box[d] > 1 ? static_cast<float>(to_unit * centre - 1.0) : 0.0f;
  }
  return theta;
}

// Output voxel offsets from the patch centre, D×H×W×3 in (D, H, W) order.
torch::Tensor centred_offsets(const Shape3& patch, torch::Device device) {
  std::vector<torch::Tensor> axes;
  for (int d = 0; d < 3; ++d) {
    std::vector<int64_t> shape{1, 1, 1};
    shape[d] = patch[d];
    const torch::Tensor ramp = torch::arange(patch[d], torch::TensorOptions(torch::kFloat).device(device));
    axes.push_back((ramp - static_cast<float>((patch[d] - 1) / 2.0)).view(shape).expand(patch));
  }
  return torch::stack(axes, -1);
}

}  // namespace

DeviceAugmenter::DeviceAugmenter(AugmentOptions options, torch::Device device)
    : options_(std::move(options)), device_(device) {
  validate(options_);
}

TrainingBatch DeviceAugmenter::augment(Batch& batch) {
  const Shape3& b = batch.box;
  const torch::Tensor image =
      torch::from_blob(batch.image.data(), {batch.size, batch.channels, b[0], b[1], b[2]}, torch::kFloat32);
  const torch::Tensor label =
      torch::from_blob(batch.label.data(), {batch.size, b[0], b[1], b[2]}, torch::kInt16);
  return augment(image.to(device_), label.to(device_), batch.patch, batch.draws, batch.keys);
}

TrainingBatch DeviceAugmenter::augment(const torch::Tensor& image, const torch::Tensor& label,
                                       const Shape3& patch, const std::vector<AugmentDraw>& draws,
                                       const std::vector<DrawKey>& keys) {
  const int64_t n = image.size(0);
  if (image.dim() != 5 || label.dim() != 4 || label.size(0) != n || static_cast<int64_t>(draws.size()) != n ||
      static_cast<int64_t>(keys.size()) != n) {
    throw std::invalid_argument(
        fmt::format("DeviceAugmenter: expected N×C×box images, N×box labels and N draws "
                    "and keys, got {} and {} dims, {} draws, {} keys",
                    image.dim(), label.dim(), draws.size(), keys.size()));
  }
  for (int d = 0; d < 3; ++d) {
    if (image.size(2 + d) < patch[d] || label.size(1 + d) != image.size(2 + d)) {
      throw std::invalid_argument("DeviceAugmenter: the box must hold the patch, image and label alike");
    }
  }
  torch::NoGradGuard no_grad;
  Spatial out = spatial(image.to(device_, torch::kFloat), label.to(device_), patch, draws, keys);
  intensity(out.image, draws, keys, is_dummy_2d(patch));
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> dims;
    for (int d = 0; d < 3; ++d) {
      if (draws[i].mirror[d]) dims.push_back(d);
    }
    if (dims.empty()) continue;
    for (int64_t d : dims) ++applied_.mirror[d];
    out.label[i].copy_(out.label[i].flip(dims));
    for (int64_t& d : dims) ++d;  // image axes follow the channel axis
    out.image[i].copy_(out.image[i].flip(dims));
  }
  if (options_.ignore_to_background) out.label.masked_fill_(out.label.eq(-1), 0);
  applied_.samples += n;
  return {out.image, out.label};
}

DeviceAugmenter::Spatial DeviceAugmenter::spatial(const torch::Tensor& image, const torch::Tensor& label,
                                                  const Shape3& patch, const std::vector<AugmentDraw>& draws,
                                                  const std::vector<DrawKey>& keys) {
  const int64_t n = image.size(0);
  const Shape3 box{image.size(2), image.size(3), image.size(4)};
  const Shape3 offset{(box[0] - patch[0]) / 2, (box[1] - patch[1]) / 2, (box[2] - patch[2]) / 2};
  std::vector<torch::Tensor> images(n), labels(n);
  std::vector<int64_t> warped;
  for (int64_t i = 0; i < n; ++i) {
    if (warps(draws[i])) {
      warped.push_back(i);
      continue;
    }
    images[i] = crop(image[i], 1, offset, patch);
    labels[i] = crop(label[i], 0, offset, patch).to(torch::kLong);
  }
  if (!warped.empty()) {
    const torch::Tensor grid = sampling_grid(warped, box, patch, draws, keys);
    const bool all = static_cast<int64_t>(warped.size()) == n;
    const torch::Tensor index = long_tensor(warped, device_);
    const torch::Tensor source_image = all ? image : image.index_select(0, index);
    const torch::Tensor source_label = all ? label : label.index_select(0, index);
    const torch::Tensor warped_image = F::grid_sample(
        source_image, grid,
        F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(true));
    const torch::Tensor warped_label = warp_labels(source_label, grid);
    for (std::size_t k = 0; k < warped.size(); ++k) {
      images[warped[k]] = warped_image[static_cast<int64_t>(k)];
      labels[warped[k]] = warped_label[static_cast<int64_t>(k)];
    }
  }
  return {torch::stack(images), torch::stack(labels)};
}

torch::Tensor DeviceAugmenter::sampling_grid(const std::vector<int64_t>& samples, const Shape3& box,
                                             const Shape3& patch, const std::vector<AugmentDraw>& draws,
                                             const std::vector<DrawKey>& keys) {
  const bool dummy_2d = is_dummy_2d(patch);
  std::vector<float> maps;
  bool any_elastic = false;
  for (int64_t i : samples) {
    const AugmentDraw& draw = draws[i];
    ++applied_.spatial;
    applied_.rotation += draw.rotated;
    applied_.scaling += draw.scaled;
    applied_.elastic += draw.elastic;
    const std::array<float, 12> theta =
        grid_map(rotation_scale(draw.rotation_deg, draw.scale, dummy_2d), box, patch);
    maps.insert(maps.end(), theta.begin(), theta.end());
    any_elastic = any_elastic || draw.elastic;
  }
  const auto count = static_cast<int64_t>(samples.size());
  const torch::Tensor theta = torch::tensor(maps, torch::kFloat).view({count, 3, 4}).to(device_);
  torch::Tensor offsets = centred_offsets(patch, device_).view({1, -1, 3});
  if (any_elastic) {
    std::vector<torch::Tensor> displaced;
    for (int64_t i : samples) {
      displaced.push_back(draws[i].elastic ? offsets[0] + elastic_displacement(draws[i], keys[i], patch)
                                           : offsets[0]);
    }
    offsets = torch::stack(displaced);
  }
  const torch::Tensor ones = torch::ones({offsets.size(0), offsets.size(1), 1}, offsets.options());
  const torch::Tensor grid = torch::matmul(torch::cat({offsets, ones}, -1), theta.transpose(1, 2));
  return grid.view({count, patch[0], patch[1], patch[2], 3});
}

torch::Tensor DeviceAugmenter::elastic_displacement(const AugmentDraw& draw, const DrawKey& key,
                                                    const Shape3& patch) const {
  at::Generator generator = seeded_generator(device_, key, DrawStream::kElasticValues);
  const auto options = torch::TensorOptions(torch::kFloat).device(device_);
  const bool dummy_2d = is_dummy_2d(patch);
  const int64_t axes = dummy_2d ? 2 : 3;  // dummy 2D: in-plane, one field for every slice
  const torch::Tensor noise =
      torch::rand({axes, dummy_2d ? 1 : patch[0], patch[1], patch[2]}, generator, options) * 2.0f - 1.0f;
  torch::Tensor field = gaussian_filter(noise, draw.elastic_sigma, dummy_2d ? 1 : 0, false) *
                        static_cast<float>(draw.elastic_alpha);
  if (dummy_2d) {
    field = torch::cat({torch::zeros_like(field[0]).unsqueeze(0), field})
                .expand({3, patch[0], patch[1], patch[2]});
  }
  return field.permute({1, 2, 3, 0}).reshape({-1, 3});
}

// Per-label linear: the label with the largest interpolated mask weight, ties to the larger value, −1 taking
// whatever weight no other label covers (in-box −1 voxels and the outside). Nearest: the nearest voxel.
torch::Tensor DeviceAugmenter::warp_labels(const torch::Tensor& label, const torch::Tensor& grid) const {
  // N×K×box → N×K×patch.
  const auto sample = [&](const torch::Tensor& volumes, bool linear = true) {
    return F::grid_sample(volumes, grid,
                          F::GridSampleFuncOptions()
                              .mode(linear ? F::GridSampleFuncOptions::mode_t(torch::kBilinear)
                                           : F::GridSampleFuncOptions::mode_t(torch::kNearest))
                              .padding_mode(torch::kZeros)
                              .align_corners(true));
  };
  if (options_.label_interpolation == LabelInterpolation::kNearest) {
    return sample(label.unsqueeze(1).to(torch::kFloat) + 1.0f, false).squeeze(1).round().to(torch::kLong) - 1;
  }
  // Label values from the largest down (ties keep the larger). Testing each value of the range (labels are
  // consecutive class values) costs less than a sort-based unique of the whole box.
  std::vector<int64_t> values;
  const int64_t lowest = label.min().item<int64_t>();
  for (int64_t v = label.max().item<int64_t>(); v >= lowest; --v) {
    if (v != -1 && label.eq(v).any().item<bool>()) values.push_back(v);
  }
  // Up to 8 masks per grid_sample: the source points and weights are computed once for all of them.
  constexpr std::size_t kChunk = 8;
  torch::Tensor best_weight, best_value, covered;
  for (std::size_t first = 0; first < values.size(); first += kChunk) {
    const std::size_t end = std::min(values.size(), first + kChunk);
    std::vector<torch::Tensor> masks;
    for (std::size_t k = first; k < end; ++k) masks.push_back(label.eq(values[k]));
    const torch::Tensor weights = sample(torch::stack(masks, 1).to(torch::kFloat));
    for (std::size_t k = first; k < end; ++k) {
      const torch::Tensor weight = weights.select(1, static_cast<int64_t>(k - first));
      if (!best_weight.defined()) {
        best_weight = weight.clone();
        best_value = torch::full_like(weight, values[k], torch::kLong);
        covered = weight.clone();
        continue;
      }
      const torch::Tensor take = weight > best_weight;
      best_weight = torch::where(take, weight, best_weight);
      best_value.masked_fill_(take, values[k]);
      covered += weight;
    }
  }
  const int64_t shape[4] = {grid.size(0), grid.size(1), grid.size(2), grid.size(3)};
  if (!best_weight.defined())
    return torch::full(shape, -1, torch::TensorOptions(torch::kLong).device(device_));
  return best_value.masked_fill_((1.0f - covered) > best_weight, -1);
}

void DeviceAugmenter::intensity(torch::Tensor& image, const std::vector<AugmentDraw>& draws,
                                const std::vector<DrawKey>& keys, bool dummy_2d) {
  const auto channels = [](const std::vector<double>& values) {
    std::vector<std::pair<int64_t, double>> drawn;
    for (std::size_t c = 0; c < values.size(); ++c) {
      if (values[c] > 0.0) drawn.emplace_back(static_cast<int64_t>(c), values[c]);
    }
    return drawn;
  };
  AppliedTransforms& a = applied_;
  for (int64_t i = 0; i < image.size(0); ++i) {
    const AugmentDraw& draw = draws[i];
    torch::Tensor sample = image[i];
    if (draw.noise) {
      at::Generator generator = seeded_generator(device_, keys[i], DrawStream::kNoiseValues);
      sample.add_(torch::randn(sample.sizes(), generator, sample.options()) *
                  static_cast<float>(draw.noise_std));
      ++a.noise;
    }
    const auto blur = channels(draw.blur_sigma);
    for (const auto& [c, sigma] : blur) gaussian_blur(sample[c], sigma);
    a.blur += !blur.empty();
    for (const auto& [c, factor] : channels(draw.brightness)) sample[c].mul_(static_cast<float>(factor));
    a.brightness += !draw.brightness.empty();
    for (const auto& [c, factor] : channels(draw.contrast)) adjust_contrast(sample[c], factor);
    a.contrast += !draw.contrast.empty();
    const auto low_resolution = channels(draw.low_resolution_zoom);
    for (const auto& [c, zoom] : low_resolution) simulate_low_resolution(sample[c], zoom, dummy_2d);
    a.low_resolution += !low_resolution.empty();
    for (const auto& [c, gamma] : channels(draw.inverted_gamma)) {
      apply_gamma(sample[c], gamma, true, options_.gamma_retain_stats);
    }
    a.inverted_gamma += !draw.inverted_gamma.empty();
    for (const auto& [c, gamma] : channels(draw.gamma))
      apply_gamma(sample[c], gamma, false, options_.gamma_retain_stats);
    a.gamma += !draw.gamma.empty();
  }
}

}  // namespace e2e
