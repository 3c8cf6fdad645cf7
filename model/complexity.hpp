// Params and FLOPs of E2ENet by the paper's counting rules (eq. 4–5), computed from the network's layers.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/e2enet.hpp"

namespace e2e {

struct LayerCost {
  std::string name;
  LayerKind kind;
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  Int3 kernel{1, 1, 1};
  Int3 output_size{0, 0, 0};
  int64_t kernels_total = 0;
  int64_t kernels_active = 0;
  int64_t params = 0;  // weights of active kernels + bias + following norm's affine parameters
  int64_t flops = 0;
};

struct Complexity {
  std::vector<LayerCost> layers;
  int64_t params = 0;
  int64_t flops = 0;
  double gflops() const { return static_cast<double>(flops) / 1e9; }
};

// Active kernel count per masked layer name; a layer not in the map counts as dense.
using ActiveKernels = std::map<std::string, int64_t>;

// FLOPs for a batch-1 input of `patch` voxels. Throws std::invalid_argument when the patch does not pass
// through the network's pools cleanly (levels would not line up).
Complexity count_complexity(const std::vector<LayerInfo>& layers, const Int3& patch,
                            const ActiveKernels& active);

}  // namespace e2e
