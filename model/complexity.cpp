#include "model/complexity.hpp"

#include <stdexcept>

namespace e2e {

namespace {

Int3 output_size(const LayerInfo& layer, const Int3& in) {
  Int3 out{};
  for (int a = 0; a < 3; ++a) {
    if (layer.transposed())
      out[a] = (in[a] - 1) * layer.stride[a] - 2 * layer.padding[a] + layer.kernel[a];
    else
      out[a] = (in[a] + 2 * layer.padding[a] - layer.kernel[a]) / layer.stride[a] + 1;
  }
  return out;
}

std::string format_size(const Int3& s) {
  return std::to_string(s[0]) + "x" + std::to_string(s[1]) + "x" + std::to_string(s[2]);
}

}  // namespace

Complexity count_complexity(const std::vector<LayerInfo>& layers, const Int3& patch,
                            const ActiveKernels& active) {
  std::map<int, Int3> level_size{{0, patch}};
  Complexity total;
  for (const LayerInfo& layer : layers) {
    auto in = level_size.find(layer.in_level);
    if (in == level_size.end())
      throw std::logic_error("layer " + layer.name + " reads level " + std::to_string(layer.in_level) +
                             " before it exists");
    const Int3 out = output_size(layer, in->second);
    auto [known, inserted] = level_size.emplace(layer.out_level, out);
    if (!inserted && known->second != out)
      throw std::invalid_argument("patch " + format_size(patch) + " does not pass through the pools: layer " +
                                  layer.name + " gives " + format_size(out) + " where level " +
                                  std::to_string(layer.out_level) + " is " + format_size(known->second));
    if (out[0] <= 0 || out[1] <= 0 || out[2] <= 0)
      throw std::invalid_argument("patch " + format_size(patch) + " is too small for layer " + layer.name);

    LayerCost cost;
    cost.name = layer.name;
    cost.kind = layer.kind;
    cost.in_channels = layer.in_channels();
    cost.out_channels = layer.out_channels();
    cost.kernel = layer.kernel;
    cost.output_size = out;
    cost.kernels_total = layer.rows() * layer.cols();
    auto found = active.find(layer.name);
    cost.kernels_active = found == active.end() ? cost.kernels_total : found->second;
    const int64_t voxels = out[0] * out[1] * out[2];
    cost.params = cost.kernels_active * layer.kernel_volume() + layer.bias_params + layer.norm_params;
    // density × 2·k³·Cin·Cout·V equals 2·k³·active·V exactly; fusion convs add one op per output element.
    cost.flops = 2 * layer.kernel_volume() * cost.kernels_active * voxels;
    if (layer.kind == LayerKind::FusionConv) cost.flops += cost.out_channels * voxels;
    total.params += cost.params;
    total.flops += cost.flops;
    total.layers.push_back(cost);
  }
  return total;
}

}  // namespace e2e
