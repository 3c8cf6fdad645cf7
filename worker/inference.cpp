#include "worker/inference.hpp"

#include <spdlog/spdlog.h>

#include <cstring>

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

torch::Tensor predict_probabilities(E2ENet& net, const MultiVolume<float>& image,
                                    const SlidingWindowOptions& options, const InferencePathOptions& path) {
  torch::Tensor input =
      torch::from_blob(const_cast<float*>(image.voxels.data()),
                       {image.channels, image.shape[0], image.shape[1], image.shape[2]}, torch::kFloat32);
  const int64_t classes = net->config().num_classes;
  return sliding_window_probabilities(inference_forward(net, path), input, classes, options);
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
