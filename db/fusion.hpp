// Fusion directions of a trained topology (the paper's fusion-ratio figure): for every fusion node x_{i,j},
// how the active input kernels of its first fusion conv split between the forward (x_{i,j-1}), upward
// (up(x_{i+1,j-1})) and downward (maxpool(x_{i-1,j-1})) inputs.
#pragma once

#include <string>
#include <vector>

#include "db/reader.hpp"
#include "model/topology.hpp"

namespace e2e {

struct DirectionKernels {
  int64_t active = 0;
  int64_t total = 0;
  double share = 0;    // active / active kernels of the node over all directions
  double density = 0;  // active / total (0 when the direction does not exist)
};

struct FusionNodeShares {
  std::string node;  // "x1_2"
  int level = 0;
  int column = 0;
  DirectionKernels forward;
  DirectionKernels upward;
  DirectionKernels downward;   // total 0 on level 0
  double up_conv_density = 0;  // active share of the node's transposed conv ("x{i}_{j}.up"), NaN if absent
};

// Channels per level from the stored config JSON (model.levels, base_channels, max_channels): base·2^i capped
// at max_channels. Throws InputError naming `source` when the fields are missing.
std::vector<int64_t> channels_from_config_json(const std::string& config_json, const std::string& source);

// Nodes in build order (stage by stage, deepest first). Throws InputError when a conv0 tensor's input columns
// do not match [forward C_i | upward C_i | downward C_{i-1}].
std::vector<FusionNodeShares> fusion_shares(const Topology& topology, const std::vector<int64_t>& channels);

struct FusionReport {
  Job job;
  MaskRecord masks;  // the final masks, else the latest periodic ones
  std::vector<FusionNodeShares> nodes;
};

// The fusion shares of a job's topology, with channels from its experiment's config. InputError when the job
// has no stored masks.
FusionReport job_fusion(const StoreReader& reader, const Job& job);

std::string fusion_text(const FusionReport& report);
std::string fusion_json(const FusionReport& report);

}  // namespace e2e
