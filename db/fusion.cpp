#include "db/fusion.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <tuple>

#include "common/errors.hpp"
#include "common/json_number.hpp"

namespace e2e {

namespace {

// Active kernels of the rows × [first, first + count) column block.
int64_t active_in_columns(const TensorMask& mask, int64_t first, int64_t count) {
  int64_t active = 0;
  for (int64_t row = 0; row < mask.rows; ++row)
    for (int64_t col = first; col < first + count; ++col) active += mask.get(row * mask.cols + col) ? 1 : 0;
  return active;
}

// "x{i}_{j}.conv0" → (i, j); false for any other name.
bool parse_conv0_name(const std::string& name, int* level, int* column) {
  int consumed = 0;
  if (std::sscanf(name.c_str(), "x%d_%d.conv0%n", level, column, &consumed) != 2) return false;
  return consumed == static_cast<int>(name.size()) && *level >= 0 && *column >= 1;
}

const TensorMask* find_tensor(const Topology& topology, const std::string& name) {
  for (const TensorMask& t : topology.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

DirectionKernels direction(const TensorMask& conv0, int64_t first, int64_t count) {
  DirectionKernels d;
  d.total = conv0.rows * count;
  d.active = active_in_columns(conv0, first, count);
  d.density = d.total ? static_cast<double>(d.active) / static_cast<double>(d.total) : 0.0;
  return d;
}

FusionNodeShares node_shares(const Topology& topology, const TensorMask& conv0, int level, int column,
                             const std::vector<int64_t>& channels) {
  if (level + 1 >= static_cast<int>(channels.size()))
    throw InputError(fmt::format("topology tensor '{}': level {} is beyond the model's {} levels", conv0.name,
                                 level, channels.size()));
  const int64_t c = channels[level];
  const int64_t below = level > 0 ? channels[level - 1] : 0;
  if (conv0.cols != 2 * c + below || conv0.rows != c)
    throw InputError(
        fmt::format("topology tensor '{}' is {}×{} kernels; the experiment's model config implies {}×{} "
                    "([forward {} | upward {} | downward {}])",
                    conv0.name, conv0.rows, conv0.cols, c, 2 * c + below, c, c, below));
  FusionNodeShares node;
  node.node = fmt::format("x{}_{}", level, column);
  node.level = level;
  node.column = column;
  node.forward = direction(conv0, 0, c);
  node.upward = direction(conv0, c, c);
  node.downward = direction(conv0, 2 * c, below);
  const int64_t active = node.forward.active + node.upward.active + node.downward.active;
  for (DirectionKernels* d : {&node.forward, &node.upward, &node.downward})
    d->share = active ? static_cast<double>(d->active) / static_cast<double>(active) : 0.0;
  const TensorMask* up = find_tensor(topology, node.node + ".up");
  node.up_conv_density = up && up->size() ? static_cast<double>(up->count()) / static_cast<double>(up->size())
                                          : std::numeric_limits<double>::quiet_NaN();
  return node;
}

}  // namespace

std::vector<int64_t> channels_from_config_json(const std::string& config_json, const std::string& source) {
  const nlohmann::json config = nlohmann::json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  const auto field = [&](const char* name) -> int64_t {
    if (!config.is_object() || !config.contains("model") || !config["model"].contains(name) ||
        !config["model"][name].is_number_integer())
      throw InputError(fmt::format("{}: the stored config has no integer model.{}", source, name));
    return config["model"][name].get<int64_t>();
  };
  const int64_t levels = field("levels");
  const int64_t base = field("base_channels");
  const int64_t cap = field("max_channels");
  if (levels < 1 || levels > 16 || base < 1 || cap < 1)
    throw InputError(
        fmt::format("{}: implausible model config (levels {}, base_channels {}, max_channels {})", source,
                    levels, base, cap));
  std::vector<int64_t> channels;
  for (int64_t level = 0; level < levels; ++level) channels.push_back(std::min(base << level, cap));
  return channels;
}

std::vector<FusionNodeShares> fusion_shares(const Topology& topology, const std::vector<int64_t>& channels) {
  std::vector<FusionNodeShares> nodes;
  for (const TensorMask& tensor : topology.tensors) {
    int level = 0;
    int column = 0;
    if (parse_conv0_name(tensor.name, &level, &column))
      nodes.push_back(node_shares(topology, tensor, level, column, channels));
  }
  // Build order: stage k = level + column, deepest node first within a stage.
  std::sort(nodes.begin(), nodes.end(), [](const FusionNodeShares& a, const FusionNodeShares& b) {
    return std::make_tuple(a.level + a.column, -a.level) < std::make_tuple(b.level + b.column, -b.level);
  });
  return nodes;
}

FusionReport job_fusion(const StoreReader& reader, const Job& job) {
  const std::optional<MaskRecord> masks = reader.latest_masks(job.id);
  if (!masks) throw InputError(fmt::format("job {} has no stored topology (masks) yet", job.id));
  const Experiment experiment = reader.experiment(job.experiment_id);
  const std::vector<int64_t> channels =
      channels_from_config_json(experiment.config_json, "experiment '" + experiment.name + "'");
  return {job, *masks, fusion_shares(reader.topology(masks->id), channels)};
}

namespace {

std::string masks_label(const MaskRecord& masks) {
  return masks.kind == MaskKind::Final
             ? fmt::format("final masks (step {})", masks.step)
             : fmt::format("periodic masks of step {} (no final masks yet)", masks.step);
}

nlohmann::json direction_json(const DirectionKernels& d) {
  return {{"active", d.active}, {"total", d.total}, {"share", d.share}, {"density", d.density}};
}

}  // namespace

std::string fusion_text(const FusionReport& report) {
  std::string out =
      fmt::format("job {} ({} fold {} s={} seed {}), {}: share of active input kernels per direction\n",
                  report.job.id, report.job.experiment, report.job.fold, report.job.sparsity, report.job.seed,
                  masks_label(report.masks));
  out += fmt::format("{:<6} {:>8} {:>8} {:>9} {:>14} {:>8}\n", "node", "forward", "upward", "downward",
                     "active/total", "up conv");
  for (const FusionNodeShares& n : report.nodes) {
    const int64_t active = n.forward.active + n.upward.active + n.downward.active;
    const int64_t total = n.forward.total + n.upward.total + n.downward.total;
    out += fmt::format("{:<6} {:>8.3f} {:>8.3f} {:>9} {:>14} {:>8}\n", n.node, n.forward.share,
                       n.upward.share, n.downward.total ? fmt::format("{:.3f}", n.downward.share) : "-",
                       fmt::format("{}/{}", active, total),
                       std::isnan(n.up_conv_density) ? "-" : fmt::format("{:.3f}", n.up_conv_density));
  }
  return out;
}

std::string fusion_json(const FusionReport& report) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const FusionNodeShares& n : report.nodes)
    nodes.push_back({{"node", n.node},
                     {"level", n.level},
                     {"column", n.column},
                     {"forward", direction_json(n.forward)},
                     {"upward", direction_json(n.upward)},
                     {"downward", direction_json(n.downward)},
                     {"up_conv_density", json_number(n.up_conv_density)}});
  const nlohmann::json out = {{"job", report.job.id},
                              {"experiment", report.job.experiment},
                              {"fold", report.job.fold},
                              {"sparsity", report.job.sparsity},
                              {"seed", report.job.seed},
                              {"masks",
                               {{"kind", to_string(report.masks.kind)},
                                {"step", report.masks.step},
                                {"topology_hash", report.masks.topology_hash}}},
                              {"nodes", nodes}};
  return out.dump(2) + "\n";
}

}  // namespace e2e
