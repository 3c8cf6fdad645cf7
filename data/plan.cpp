// nnU-Net v1 ExperimentPlanner3D_v21, full resolution. Every step below keeps nnU-Net's arithmetic: numpy's
// percentile and median, round-half-to-even, float ceil in the pooling loop, integer VRAM estimate.
#include "data/plan.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>

#include "data/case_store.hpp"
#include "data/preprocess.hpp"

namespace e2e {

namespace {

using nlohmann::json;
using Axes = std::array<int, 3>;

// np.round / np.median rounding: half to even (the default floating-point rounding mode).
int64_t round_half_even(double value) {
  return static_cast<int64_t>(std::nearbyint(value));
}

// np.median: the middle value, or the mean of the two middle values.
double numpy_median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2.0;
}

template <typename T>
std::array<T, 3> transposed(const std::array<T, 3>& values, const Axes& forward) {
  return {values[forward[0]], values[forward[1]], values[forward[2]]};
}

template <typename T>
std::array<T, 3> untransposed(const std::array<T, 3>& values, const Axes& forward) {
  std::array<T, 3> out{};
  for (int i = 0; i < 3; ++i) out[forward[i]] = values[i];
  return out;
}

// The largest-spacing axis first (the first one on ties, as np.argmax), the others in order.
Axes transpose_forward(const Spacing3& spacing) {
  const int coarsest = static_cast<int>(std::max_element(spacing.begin(), spacing.end()) - spacing.begin());
  Axes forward{coarsest, 0, 0};
  int next = 1;
  for (int a = 0; a < 3; ++a)
    if (a != coarsest) forward[next++] = a;
  return forward;
}

// Voxels per mm normalized to mean 1, scaled so that the smallest edge is 512 (mm-isotropic box), rounded;
// clipped to the median shape.
Int3 starting_patch(const Spacing3& spacing, const Shape3& median_shape) {
  std::array<double, 3> per_mm{};
  for (int a = 0; a < 3; ++a) per_mm[a] = 1.0 / spacing[a];
  const double mean = (per_mm[0] + per_mm[1] + per_mm[2]) / 3.0;
  for (double& v : per_mm) v /= mean;
  const double scale = 1.0 / *std::min_element(per_mm.begin(), per_mm.end()) * nnunet_v1::kPatchEdgeMm;
  Int3 patch{};
  for (int a = 0; a < 3; ++a) patch[a] = std::min(round_half_even(per_mm[a] * scale), median_shape[a]);
  return patch;
}

// pad_shape: up to the next multiple (a multiple stays).
Int3 pad_to_multiple(const Int3& shape, const Int3& divisor) {
  Int3 out{};
  for (int a = 0; a < 3; ++a)
    out[a] = shape[a] % divisor[a] == 0 ? shape[a] : shape[a] + divisor[a] - shape[a] % divisor[a];
  return out;
}

// The axis with the largest patch / median ratio; the last of equal ones (numpy's stable argsort()[-1]).
int axis_to_shrink(const Int3& patch, const Shape3& median_shape) {
  int best = 0;
  double best_ratio = -std::numeric_limits<double>::infinity();
  for (int a = 0; a < 3; ++a) {
    const double ratio = static_cast<double>(patch[a]) / static_cast<double>(median_shape[a]);
    if (ratio >= best_ratio) {
      best = a;
      best_ratio = ratio;
    }
  }
  return best;
}

struct StagePlan {
  PoolAndConv network;
  int64_t vram = 0;
};

StagePlan evaluate(const Spacing3& spacing, const Int3& patch, const PlanningFingerprint& fp) {
  StagePlan stage;
  stage.network = nnunet_pool_and_conv(spacing, patch);
  stage.vram =
      nnunet_vram_estimate(stage.network.patch, stage.network.pool_kernels, fp.input_channels, fp.classes);
  return stage;
}

// get_properties_for_stage's loop: shrink the axis with the largest patch / median ratio by its divisibility
// step until the VRAM estimate fits the reference budget.
StagePlan fit_patch_to_memory(const Spacing3& spacing, const Int3& start, const Shape3& median_shape,
                              const PlanningFingerprint& fp) {
  StagePlan stage = evaluate(spacing, start, fp);
  while (static_cast<double>(stage.vram) > nnunet_v1::kReferenceVram) {
    Int3 patch = stage.network.patch;
    const int axis = axis_to_shrink(patch, median_shape);
    Int3 trial = patch;
    trial[axis] -= stage.network.divisible_by[axis];
    if (trial[axis] < 1)
      throw InputError(
          fmt::format("{}: the planner cannot shrink the patch [{}, {}, {}] to fit its memory budget",
                      fp.source, patch[0], patch[1], patch[2]));
    patch[axis] -= nnunet_pool_and_conv(spacing, trial).divisible_by[axis];
    stage = evaluate(spacing, patch, fp);
  }
  return stage;
}

int64_t batch_size_by_memory(int64_t vram) {
  const double ratio = std::max(nnunet_v1::kReferenceVram / static_cast<double>(vram), 1.0);
  return static_cast<int64_t>(std::floor(ratio * static_cast<double>(nnunet_v1::kDefaultBatchSize)));
}

// At most 5 % of the dataset's voxels (at the median shape) per batch, the cap itself at least 2.
int64_t capped_batch_size(int64_t by_memory, const Int3& patch, const Shape3& median_shape,
                          std::size_t cases) {
  const int64_t dataset_voxels = voxel_count(median_shape) * static_cast<int64_t>(cases);
  const int64_t cap =
      round_half_even(nnunet_v1::kMaxDatasetFractionPerBatch * static_cast<double>(dataset_voxels) /
                      static_cast<double>(voxel_count(patch)));
  return std::max<int64_t>(1, std::min(by_memory, std::max(cap, nnunet_v1::kMinBatchSize)));
}

void check_fingerprint(const PlanningFingerprint& fp) {
  const std::string name = fp.source.empty() ? "fingerprint" : fp.source;
  if (fp.spacings.empty()) throw InputError(name + ": no cases to plan from");
  if (fp.spacings.size() != fp.shapes.size())
    throw InputError(fmt::format("{}: {} spacings but {} shapes (one of each per case)", name,
                                 fp.spacings.size(), fp.shapes.size()));
  for (std::size_t i = 0; i < fp.spacings.size(); ++i)
    for (int a = 0; a < 3; ++a) {
      if (!(fp.spacings[i][a] > 0.0) || !std::isfinite(fp.spacings[i][a]))
        throw InputError(fmt::format("{}: case {}: expected positive spacings, got [{}, {}, {}]", name, i,
                                     fp.spacings[i][0], fp.spacings[i][1], fp.spacings[i][2]));
      if (fp.shapes[i][a] < 1)
        throw InputError(fmt::format("{}: case {}: expected a positive shape, got [{}, {}, {}]", name, i,
                                     fp.shapes[i][0], fp.shapes[i][1], fp.shapes[i][2]));
    }
  if (fp.input_channels < 1) throw InputError(fmt::format("{}: expected at least one input channel", name));
  if (fp.classes < 2)
    throw InputError(
        fmt::format("{}: expected at least 2 classes (background included), got {}", name, fp.classes));
}

}  // namespace

double numpy_percentile(std::vector<double> values, double percent) {
  if (values.empty()) throw std::invalid_argument("numpy_percentile: no values");
  std::sort(values.begin(), values.end());
  const double position = percent / 100.0 * static_cast<double>(values.size() - 1);
  const std::size_t below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, values.size() - 1);
  const double t = position - static_cast<double>(below);
  const double a = values[below];
  const double b = values[above];
  const double difference = b - a;
  return t >= 0.5 ? b - difference * (1.0 - t) : a + difference * t;
}

Spacing3 nnunet_target_spacing(const std::vector<Spacing3>& spacings, const std::vector<Shape3>& shapes) {
  if (spacings.empty() || spacings.size() != shapes.size())
    throw std::invalid_argument("nnunet_target_spacing: need one spacing and one shape per case");
  const auto column = [](const auto& rows, int axis) {
    std::vector<double> out;
    for (const auto& row : rows) out.push_back(static_cast<double>(row[axis]));
    return out;
  };
  Spacing3 target{};
  Spacing3 median_size{};
  for (int a = 0; a < 3; ++a) {
    target[a] = numpy_percentile(column(spacings, a), 50.0);
    median_size[a] = numpy_percentile(column(shapes, a), 50.0);
  }
  const int worst = static_cast<int>(std::max_element(target.begin(), target.end()) - target.begin());
  double other_spacing = 0.0;
  double other_size = std::numeric_limits<double>::infinity();
  for (int a = 0; a < 3; ++a)
    if (a != worst) {
      other_spacing = std::max(other_spacing, target[a]);
      other_size = std::min(other_size, median_size[a]);
    }
  const bool anisotropic_spacing = target[worst] > nnunet_v1::kAnisotropyThreshold * other_spacing;
  const bool anisotropic_voxels = median_size[worst] * nnunet_v1::kAnisotropyThreshold < other_size;
  if (anisotropic_spacing && anisotropic_voxels) {
    double coarse = numpy_percentile(column(spacings, worst), 10.0);
    if (coarse < other_spacing) coarse = std::max(other_spacing, coarse) + 1e-5;
    target[worst] = coarse;
  }
  return target;
}

Shape3 nnunet_median_shape(const std::vector<Spacing3>& spacings, const std::vector<Shape3>& shapes,
                           const Spacing3& target) {
  Shape3 median{};
  for (int a = 0; a < 3; ++a) {
    std::vector<double> column;
    for (std::size_t i = 0; i < spacings.size(); ++i)
      column.push_back(spacings[i][a] / target[a] * static_cast<double>(shapes[i][a]));
    median[a] = round_half_even(numpy_median(column));
  }
  return median;
}

PoolAndConv nnunet_pool_and_conv(const Spacing3& spacing, const Int3& patch) {
  PoolAndConv out;
  std::array<double, 3> current_spacing = spacing;
  std::array<double, 3> current_size{};
  for (int a = 0; a < 3; ++a) current_size[a] = static_cast<double>(patch[a]);
  while (true) {
    const double min_spacing = *std::min_element(current_spacing.begin(), current_spacing.end());
    // Conv kernel 3 on the first largest group of axes within a factor 2 of each other.
    std::vector<int> group;
    for (int a = 0; a < 3; ++a) {
      std::vector<int> partners;
      for (int i = 0; i < 3; ++i)
        if (current_spacing[i] / current_spacing[a] < 2 && current_spacing[a] / current_spacing[i] < 2)
          partners.push_back(i);
      if (partners.size() > group.size()) group = partners;
    }
    Int3 pool{1, 1, 1};
    bool any = false;
    for (int a = 0; a < 3; ++a) {
      const bool poolable = current_spacing[a] / min_spacing < 2 &&
                            current_size[a] >= 2.0 * static_cast<double>(nnunet_v1::kMinFeatureMapEdge) &&
                            out.pools_per_axis[a] < nnunet_v1::kMaxPoolsPerAxis;
      if (!poolable) continue;
      pool[a] = 2;
      any = true;
    }
    if (!any) break;
    Int3 conv{1, 1, 1};
    for (int a : group) conv[a] = 3;
    for (int a = 0; a < 3; ++a)
      if (pool[a] == 2) {
        ++out.pools_per_axis[a];
        current_spacing[a] *= 2;
        current_size[a] = std::ceil(current_size[a] / 2);
      }
    out.pool_kernels.push_back(pool);
    out.conv_kernels.push_back(conv);
  }
  for (int a = 0; a < 3; ++a) out.divisible_by[a] = int64_t{1} << out.pools_per_axis[a];
  out.patch = pad_to_multiple(patch, out.divisible_by);
  out.conv_kernels.push_back({3, 3, 3});
  return out;
}

int64_t nnunet_vram_estimate(const Int3& patch, const std::vector<Int3>& pool_kernels, int64_t input_channels,
                             int64_t classes) {
  const int64_t convs = nnunet_v1::kConvsPerStage;
  Int3 map = patch;
  int64_t features = nnunet_v1::kBaseFeatures;
  int64_t total = (convs * 2 + 1) * voxel_count(map) * features + input_channels * voxel_count(map) +
                  classes * voxel_count(map);
  const std::size_t pools = pool_kernels.size();
  for (std::size_t p = 0; p < pools; ++p) {
    // nnU-Net divides a float copy and stores it back into the integer array: truncation.
    for (int a = 0; a < 3; ++a)
      map[a] = static_cast<int64_t>(static_cast<double>(map[a]) / static_cast<double>(pool_kernels[p][a]));
    features = std::min<int64_t>(features * 2, nnunet_v1::kMaxFeatures);
    const int64_t blocks = p + 1 < pools ? convs * 2 + 1 : convs;
    total += blocks * voxel_count(map) * features;
  }
  return total;
}

NetworkPlan plan_network(const PlanningFingerprint& fp, const PlanningOverrides& overrides) {
  check_fingerprint(fp);
  const Spacing3 target =
      overrides.target_spacing ? *overrides.target_spacing : nnunet_target_spacing(fp.spacings, fp.shapes);
  const Shape3 median_shape = nnunet_median_shape(fp.spacings, fp.shapes, target);

  const Axes forward = transpose_forward(target);
  const Spacing3 spacing_t = transposed(target, forward);
  const Shape3 median_t = transposed(median_shape, forward);
  for (int64_t edge : median_t)
    if (edge < 1) throw InputError(fp.source + ": the median case shape at the target spacing is empty");

  StagePlan stage;
  if (overrides.patch_size) {
    const Int3 patch_t = transposed(*overrides.patch_size, forward);
    stage = evaluate(spacing_t, patch_t, fp);
  } else {
    stage = fit_patch_to_memory(spacing_t, starting_patch(spacing_t, median_t), median_t, fp);
  }

  NetworkPlan plan;
  plan.spacing = target;
  plan.median_shape = median_shape;
  plan.transpose_forward = forward;
  plan.patch_size = untransposed(stage.network.patch, forward);
  for (const Int3& pool : stage.network.pool_kernels)
    plan.pool_op_kernel_sizes.push_back(untransposed(pool, forward));
  for (const Int3& conv : stage.network.conv_kernels)
    plan.conv_kernel_sizes.push_back(untransposed(conv, forward));
  plan.vram_estimate = stage.vram;
  plan.batch_size_by_memory = batch_size_by_memory(stage.vram);
  plan.batch_size =
      capped_batch_size(plan.batch_size_by_memory, stage.network.patch, median_t, fp.spacings.size());
  const Int3& patch_t = stage.network.patch;
  plan.do_dummy_2d_data_aug = static_cast<double>(*std::max_element(patch_t.begin(), patch_t.end())) /
                                  static_cast<double>(patch_t[0]) >
                              nnunet_v1::kAnisotropyThreshold;
  return plan;
}

PlanningFingerprint planning_fingerprint(const Fingerprint& fingerprint, const std::string& source) {
  PlanningFingerprint fp;
  for (const CaseFingerprint& c : fingerprint.cases) {
    fp.spacings.push_back(c.spacing);
    fp.shapes.push_back(c.cropped_shape);
  }
  fp.input_channels = static_cast<int64_t>(fingerprint.channel_names.size());
  fp.classes = static_cast<int64_t>(fingerprint.labels.size());
  fp.source = source;
  return fp;
}

PlanningFingerprint planning_fingerprint_from_json(const json& j, const std::string& source) {
  const auto field = [&](const char* name) -> const json& {
    if (!j.is_object() || !j.contains(name))
      throw InputError(
          fmt::format("{}: missing field '{}' (expected the project's fingerprint.json or nnU-Net "
                      "v2's spacings, shapes_after_crop, num_input_channels, num_classes)",
                      source, name));
    return j.at(name);
  };
  PlanningFingerprint fp;
  fp.source = source;
  const char* current = "";
  try {
    if (j.is_object() && j.contains("cases")) {
      current = "cases";
      for (const json& c : field("cases")) {
        fp.spacings.push_back(c.at("spacing").get<Spacing3>());
        fp.shapes.push_back(c.at("cropped_shape").get<Shape3>());
      }
      current = "channel_names";
      fp.input_channels = static_cast<int64_t>(field("channel_names").size());
      current = "labels";
      fp.classes = static_cast<int64_t>(field("labels").size());
    } else {
      current = "spacings";
      fp.spacings = field("spacings").get<std::vector<Spacing3>>();
      current = "shapes_after_crop";
      fp.shapes = field("shapes_after_crop").get<std::vector<Shape3>>();
      current = "num_input_channels";
      fp.input_channels = field("num_input_channels").get<int64_t>();
      current = "num_classes";
      fp.classes = field("num_classes").get<int64_t>();
    }
  } catch (const json::exception& e) {
    throw InputError(fmt::format("{}: field '{}': expected {} ({})", source, current,
                                 std::string(current) == "cases" ? "a list of {spacing, cropped_shape}"
                                 : std::string(current).rfind("num_", 0) == 0
                                     ? "an integer"
                                     : "a list of [z, y, x] per case",
                                 e.what()));
  }
  check_fingerprint(fp);
  return fp;
}

PlanningFingerprint read_planning_fingerprint(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open the fingerprint file");
  const json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) throw InputError(path + ": not valid JSON");
  return planning_fingerprint_from_json(j, path);
}

json to_json(const NetworkPlan& plan) {
  json out = json::object();
  out["spacing"] = plan.spacing;
  out["patch_size"] = plan.patch_size;
  out["pool_op_kernel_sizes"] = plan.pool_op_kernel_sizes;
  out["conv_kernel_sizes"] = plan.conv_kernel_sizes;
  out["batch_size"] = plan.batch_size;
  out["do_dummy_2D_data_aug"] = plan.do_dummy_2d_data_aug;
  out["median_shape"] = plan.median_shape;
  out["transpose_forward"] = plan.transpose_forward;
  return out;
}

// ------------------------------------------------------------------------------- config ← plan

PlanningOverrides planning_overrides(const Config& config) {
  PlanningOverrides overrides;
  if (config.data.target_spacing) overrides.target_spacing = *config.data.target_spacing;
  if (!config.planned.patch_size || config.planned.applied) overrides.patch_size = config.training.patch_size;
  return overrides;
}

Config apply_plan(Config config, const NetworkPlan& plan) {
  PlannedFields& planned = config.planned;
  if (!planned.any()) return config;
  if (planned.pools && !planned.patch_size && plan.patch_size != config.training.patch_size) {
    const Int3& given = config.training.patch_size;
    const Int3& padded = plan.patch_size;
    throw ConfigError(fmt::format(
        "{}: training.patch_size: expected sizes divisible by 2^(pools per axis) of nnU-Net's spacing-driven "
        "pooling for this patch, got [{}, {}, {}]; use [{}, {}, {}] or give model.pools",
        config.source, given[0], given[1], given[2], padded[0], padded[1], padded[2]));
  }
  if (planned.pools) {
    const int pools = static_cast<int>(plan.pool_op_kernel_sizes.size());
    if (pools < 2 || pools > 7)
      throw ConfigError(
          fmt::format("{}: model.pools: the plan pools {} time(s), E2ENet needs 2 to 7 (3 to 8 "
                      "levels); give model.pools and model.levels in the config",
                      config.source, pools));
    config.model.pools = plan.pool_op_kernel_sizes;
    config.model.levels = pools + 1;
  }
  if (planned.patch_size) {
    config.training.patch_size = plan.patch_size;
    if (!planned.pools) {
      Int3 total{1, 1, 1};
      for (const Int3& p : config.model.pools)
        for (int a = 0; a < 3; ++a) total[a] *= p[a];
      for (int a = 0; a < 3; ++a)
        config.training.patch_size[a] = std::max(total[a], plan.patch_size[a] / total[a] * total[a]);
    }
  }
  if (planned.batch_size) config.training.batch_size = plan.batch_size;
  planned.applied = true;
  validate(config);
  return config;
}

Config apply_plan(const Config& config, const PlanningFingerprint& fingerprint) {
  if (!config.planned.pending()) return config;
  return apply_plan(config, plan_network(fingerprint, planning_overrides(config)));
}

PlanningFingerprint read_store_fingerprint(const std::string& store_dir) {
  const std::string side_file = (std::filesystem::path(store_dir) / "fingerprint.json").string();
  if (std::filesystem::exists(side_file)) return read_planning_fingerprint(side_file);
  const std::string store = case_store_path(store_dir);
  const json j = json::parse(CaseStoreReader(store).text("fingerprint.json"), nullptr, false);
  if (j.is_discarded()) throw InputError(store + ": fingerprint.json inside the store is not valid JSON");
  return planning_fingerprint_from_json(j, store + " (fingerprint.json)");
}

Config apply_store_plan(const Config& config, const std::string& store_dir) {
  if (!config.planned.pending()) return config;
  Config applied = apply_plan(config, read_store_fingerprint(store_dir));
  const Int3& patch = applied.training.patch_size;
  std::string pools;
  for (const Int3& p : applied.model.pools)
    pools += fmt::format("{}({},{},{})", pools.empty() ? "" : " ", p[0], p[1], p[2]);
  spdlog::info("nnU-Net v1 plan of {}: patch {}x{}x{}, batch {}, pools {}", store_dir, patch[0], patch[1],
               patch[2], applied.training.batch_size, pools);
  return applied;
}

}  // namespace e2e
