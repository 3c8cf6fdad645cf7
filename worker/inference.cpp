#include "worker/inference.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "common/json_number.hpp"
#include "data/resample.hpp"

namespace e2e {

LogitsFn inference_forward(E2ENet& net, const InferencePathOptions& path) {
  net->eval();
  const bool on_cpu = net->parameters().empty() || net->parameters().front().device().is_cpu();
  if (!path.dense && on_cpu) {
    auto sparse = std::make_shared<SparseE2ENet>(net, path.sparse);
    if (sparse->sparse_layers() > 0) {
      spdlog::debug("inference: {}", sparse->summary());
      return [sparse](const torch::Tensor& batch) { return sparse->forward(batch.to(torch::kFloat32)); };
    }
  }
  return [net](const torch::Tensor& batch) mutable { return net->forward(batch)[0]; };
}

torch::Tensor predict_probabilities(const LogitsFn& forward, int64_t num_classes,
                                    const MultiVolume<float>& image, const SlidingWindowOptions& options) {
  torch::Tensor input =
      torch::from_blob(const_cast<float*>(image.voxels.data()),
                       {image.channels, image.shape[0], image.shape[1], image.shape[2]}, torch::kFloat32);
  return sliding_window_probabilities(forward, input, num_classes, options);
}

namespace {

// Median wall time in ms of `repeats` calls after one warm-up; .sum().item() waits for the device.
double median_forward_ms(const LogitsFn& forward, const torch::Tensor& batch, int repeats) {
  forward(batch).sum().item<float>();
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    forward(batch).sum().item<float>();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

InferenceTiming time_inference(E2ENet& net, const Int3& patch, const SparseInferenceOptions& sparse,
                               int repeats) {
  torch::NoGradGuard no_grad;
  net->eval();
  const torch::Device device =
      net->parameters().empty() ? torch::Device(torch::kCPU) : net->parameters().front().device();
  InferenceTiming timing;
  timing.device = device.str();
  // A fixed, RNG-free input (the golden-ratio sequence mod 1): timing must not move torch's generator.
  const int64_t numel = net->config().in_channels * patch[0] * patch[1] * patch[2];
  const torch::Tensor batch = torch::arange(numel, torch::kFloat64)
                                  .mul(0.6180339887498949)
                                  .frac()
                                  .to(torch::kFloat32)
                                  .reshape({1, net->config().in_channels, patch[0], patch[1], patch[2]})
                                  .to(device);
  InferencePathOptions dense;
  dense.dense = true;
  timing.ms_per_patch_dense = median_forward_ms(inference_forward(net, dense), batch, std::max(1, repeats));
  if (device.is_cpu()) {
    auto compiled = std::make_shared<SparseE2ENet>(net, sparse);
    timing.sparse_layers = compiled->sparse_layers();
    timing.masked_layers = compiled->masked_layers();
    if (timing.sparse_layers > 0)
      timing.ms_per_patch_sparse = median_forward_ms(
          [compiled](const torch::Tensor& b) { return compiled->forward(b); }, batch, std::max(1, repeats));
  }
  return timing;
}

nlohmann::json to_json(const InferenceTiming& timing) {
  return {{"ms_per_patch_dense", json_number(timing.ms_per_patch_dense)},
          {"ms_per_patch_sparse", json_number(timing.ms_per_patch_sparse)},
          {"sparse_layers", timing.sparse_layers},
          {"masked_layers", timing.masked_layers},
          {"device", timing.device}};
}

Volume<int16_t> export_segmentation(const torch::Tensor& probabilities, const CaseMeta& meta) {
  TORCH_CHECK(probabilities.dim() == 4, "export_segmentation expects K×D×H×W probabilities");
  const int64_t classes = probabilities.size(0);
  const Shape3 stored{probabilities.size(1), probabilities.size(2), probabilities.size(3)};
  const Shape3 cropped = meta.crop.shape();
  const int coarse_axis = separate_axis(meta.spacing, meta.geometry.spacing);
  torch::Tensor probs = probabilities.to(torch::kFloat32).contiguous();
  torch::Tensor resampled = torch::empty({classes, cropped[0], cropped[1], cropped[2]}, torch::kFloat32);
  for (int64_t k = 0; k < classes; ++k) {
    std::vector<float> channel =
        stored == cropped
            ? std::vector<float>(probs[k].data_ptr<float>(), probs[k].data_ptr<float>() + voxel_count(stored))
            : resize_channel(probs[k].data_ptr<float>(), stored, cropped, Interpolation::Linear, coarse_axis);
    std::memcpy(resampled[k].data_ptr<float>(), channel.data(), channel.size() * sizeof(float));
  }
  const torch::Tensor labels = resampled.argmax(0).to(torch::kInt16).contiguous();
  Volume<int16_t> out(meta.geometry.shape, meta.geometry.spacing, 0);
  const int16_t* src = labels.data_ptr<int16_t>();
  for (int64_t z = 0; z < cropped[0]; ++z)
    for (int64_t y = 0; y < cropped[1]; ++y) {
      const int16_t* row = src + (z * cropped[1] + y) * cropped[2];
      std::copy(row, row + cropped[2],
                &out.at(meta.crop.begin[0] + z, meta.crop.begin[1] + y, meta.crop.begin[2]));
    }
  return out;
}

}  // namespace e2e
