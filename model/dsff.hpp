// Dynamic sparse feature fusion: per-kernel masks on the fusion and transposed convs, seeded initialisation,
// prune (lowest L1) / regrow (uniform random) updates on a cosine-decayed rate, and masking after each step.
#pragma once

#include <torch/torch.h>

#include <optional>

#include "model/complexity.hpp"
#include "model/e2enet.hpp"
#include "model/topology.hpp"

namespace e2e {

struct DsffOptions {
  double sparsity = 0.0;                 // fraction of inactive kernels per masked tensor
  std::optional<double> level0_density;  // density forced on the level-0 fusion convs (reference quirk)
  int64_t update_interval = 1200;        // iterations between updates; 0 = static sparse training
  double prune_rate_start = 0.5;
  double prune_rate_end = 0.001;
  int64_t total_iterations = 1;  // T of the cosine schedule
  uint64_t seed = 0;

  static DsffOptions from_config(const SparsityConfig& config, double sparsity, int64_t total_iterations,
                                 uint64_t seed);
};

struct DsffUpdateStats {
  int64_t iteration = 0;
  double rate = 0;
  int64_t pruned = 0;        // = regrown: the per-tensor active counts never change
  int64_t regrown_new = 0;   // regrown kernels that start at zero
  int64_t regrown_kept = 0;  // just-pruned kernels drawn again, which keep their weights
};

class Dsff {
 public:
  Dsff(std::vector<LayerInfo> masked_layers, DsffOptions options);

  // Draws the initial masks from the seed (exactly round(rows·cols·density) active kernels per tensor) and
  // zeroes the inactive weights.
  void initialize();

  // Iterations count completed optimizer steps, starting at 1.
  bool is_update_step(int64_t iteration) const;
  double prune_rate(int64_t iteration) const;
  int64_t update_index(int64_t iteration) const;

  // The topology the update at `iteration` leads to, computed from the current weights and masks only
  // (the leader computes it; every rank then applies it with set_topology + apply).
  Topology propose_update(int64_t iteration, DsffUpdateStats* stats = nullptr) const;
  // Replaces the masks; throws std::invalid_argument if names or shapes differ.
  void set_topology(const Topology& topology);
  // weight *= mask and, when an optimizer is given, its momentum buffers *= mask. Call after every step.
  void apply(torch::optim::Optimizer* optimizer = nullptr);
  // propose_update + set_topology + apply: the single-process update.
  DsffUpdateStats update(int64_t iteration, torch::optim::Optimizer* optimizer = nullptr);

  Topology topology() const;
  ActiveKernels active_kernels() const;
  const std::vector<LayerInfo>& layers() const { return layers_; }
  const std::vector<torch::Tensor>& masks() const { return masks_; }  // (rows, cols, 1, 1, 1) each
  const DsffOptions& options() const { return options_; }
  double density_of(const LayerInfo& layer) const;
  int64_t target_active(const LayerInfo& layer) const;

 private:
  std::vector<LayerInfo> layers_;
  DsffOptions options_;
  std::vector<torch::Tensor> masks_;
};

}  // namespace e2e
