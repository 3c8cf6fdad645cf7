// e2e plan: nnU-Net v1's full-resolution plan (ExperimentPlanner3D_v21) of a dataset fingerprint, and what
// a config's planned fields become, without preprocessing.
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "configs/config.hpp"
#include "data/plan.hpp"
#include "orchestrator/commands.hpp"

namespace e2e {

namespace {

struct PlanOptions {
  std::string fingerprint;
  std::string config;
  std::string format = "md";
};

std::string triple_text(const Int3& v) {
  return fmt::format("({}, {}, {})", v[0], v[1], v[2]);
}

std::string triples_text(const std::vector<Int3>& list) {
  std::string out;
  for (const Int3& v : list) out += (out.empty() ? "" : " ") + triple_text(v);
  return out;
}

std::string shape_text(const Int3& v) {
  return fmt::format("{}x{}x{}", v[0], v[1], v[2]);
}

void print_markdown(const PlanningFingerprint& fp, const NetworkPlan& plan, const Config* applied) {
  std::cout << fmt::format(
      "nnU-Net v1 plan (ExperimentPlanner3D_v21, 3d_fullres) of {}: {} cases, {} input channel(s), {} "
      "classes "
      "(background included); axes (z, y, x) as in the files\n\n",
      fp.source, fp.spacings.size(), fp.input_channels, fp.classes);
  std::cout << "| field | value |\n|---|---|\n";
  std::cout << fmt::format("| target spacing (mm) | {:.6g}, {:.6g}, {:.6g} |\n", plan.spacing[0],
                           plan.spacing[1], plan.spacing[2]);
  std::cout << fmt::format("| median shape at that spacing | {} |\n", shape_text(plan.median_shape));
  std::cout << fmt::format("| patch size | {} |\n", shape_text(plan.patch_size));
  std::cout << fmt::format(
      "| batch size | {} (memory estimate allows {}; a batch covers at most 5 % of the "
      "dataset) |\n",
      plan.batch_size, plan.batch_size_by_memory);
  std::cout << fmt::format("| pools | {} |\n", triples_text(plan.pool_op_kernel_sizes));
  std::cout << fmt::format(
      "| conv kernels (nnU-Net's; E2ENet uses (1, 3, 3) everywhere, as the reference) | {} |\n",
      triples_text(plan.conv_kernel_sizes));
  std::cout << fmt::format("| dummy 2D augmentation | {} |\n", plan.do_dummy_2d_data_aug ? "yes" : "no");
  std::cout << fmt::format("| transpose forward | {}, {}, {} |\n", plan.transpose_forward[0],
                           plan.transpose_forward[1], plan.transpose_forward[2]);
  if (!applied) return;
  const PlannedFields& planned = applied->planned;
  const auto origin = [](bool from_plan) { return from_plan ? "plan" : "config"; };
  std::cout << fmt::format("\nE2ENet training with {}:\n\n| field | value | from |\n|---|---|---|\n",
                           applied->source);
  std::cout << fmt::format("| training.patch_size | {} | {} |\n", shape_text(applied->training.patch_size),
                           origin(planned.patch_size));
  std::cout << fmt::format("| training.batch_size | {} | {} |\n", applied->training.batch_size,
                           origin(planned.batch_size));
  std::cout << fmt::format("| model.pools | {} | {} |\n", triples_text(applied->model.pools),
                           origin(planned.pools));
  std::cout << fmt::format("| model.levels | {} | {} |\n", applied->model.levels, origin(planned.pools));
  std::cout << fmt::format("| model.conv_kernel | {} | config |\n", triple_text(applied->model.conv_kernel));
}

void run_plan(const PlanOptions& options) {
  const PlanningFingerprint fingerprint = read_planning_fingerprint(options.fingerprint);
  std::unique_ptr<Config> config;
  if (!options.config.empty()) config = std::make_unique<Config>(load_config(options.config));
  const NetworkPlan plan =
      plan_network(fingerprint, config ? planning_overrides(*config) : PlanningOverrides{});
  if (config) *config = apply_plan(*config, plan);
  if (options.format == "json")
    std::cout << to_json(plan).dump(2) << "\n";
  else
    print_markdown(fingerprint, plan, config.get());
}

}  // namespace

void add_plan_command(CLI::App& app) {
  auto options = std::make_shared<PlanOptions>();
  CLI::App* cmd = app.add_subcommand(
      "plan",
      "nnU-Net v1's full-resolution plan (ExperimentPlanner3D_v21: target spacing, patch size, pools, conv "
      "kernels, batch size) of a dataset fingerprint, without preprocessing. With --config: its "
      "data.target_spacing and a training.patch_size it sets itself are kept, and the table shows what its "
      "planned fields become.");
  cmd->add_option("--fingerprint", options->fingerprint,
                  "fingerprint.json of a preprocessed store, or JSON with nnU-Net v2's fields: spacings and "
                  "shapes_after_crop (one [z, y, x] per case), num_input_channels, num_classes (background "
                  "included)")
      ->required();
  cmd->add_option("--config", options->config, "experiment YAML whose planned fields to fill in");
  cmd->add_option("--format", options->format, "md (tables) or json (the plan, original axis order)")
      ->check(CLI::IsMember({"md", "json"}))
      ->capture_default_str();
  cmd->callback([options] { run_plan(*options); });
}

}  // namespace e2e
