// e2e count: params and FLOPs of a configuration at several sparsities, without training.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>

#include "configs/config.hpp"
#include "data/case_store.hpp"
#include "data/plan.hpp"
#include "model/complexity.hpp"
#include "model/dsff.hpp"
#include "model/e2enet.hpp"
#include "orchestrator/commands.hpp"
#include "worker/data_source.hpp"

namespace e2e {

namespace {

namespace fs = std::filesystem;

struct CountOptions {
  std::string config_path;
  std::string sparsity = "0,0.7,0.8,0.9";
  std::string patch;
  std::string fingerprint;
  std::string format = "md";
  bool layers = false;
  uint64_t seed = 0;
};

struct CountRow {
  double sparsity;
  Complexity complexity;
};

std::string patch_text(const Int3& p) {
  return fmt::format("{}x{}x{}", p[0], p[1], p[2]);
}

std::string pools_text(const Config& config) {
  std::string out;
  for (const Int3& p : config.model.pools)
    out += fmt::format("{}({}, {}, {})", out.empty() ? "" : " ", p[0], p[1], p[2]);
  return out;
}

double round3(double v) {
  return std::round(v * 1000.0) / 1000.0;
}

nlohmann::json layer_json(const LayerCost& l) {
  return {{"name", l.name},
          {"kind", to_string(l.kind)},
          {"in_channels", l.in_channels},
          {"out_channels", l.out_channels},
          {"kernel", l.kernel},
          {"output_size", l.output_size},
          {"kernels_active", l.kernels_active},
          {"kernels_total", l.kernels_total},
          {"params", l.params},
          {"flops", l.flops}};
}

void print_json(const Config& config, const Int3& patch, const std::vector<CountRow>& rows, bool layers) {
  nlohmann::json out = {{"config", config.source},
                        {"experiment", config.experiment},
                        {"patch", patch},
                        {"pools", config.model.pools}};
  out["rows"] = nlohmann::json::array();
  for (const CountRow& row : rows) {
    nlohmann::json r = {{"sparsity", row.sparsity},
                        {"params", row.complexity.params},
                        {"params_m", round3(row.complexity.params / 1e6)},
                        {"flops", row.complexity.flops},
                        {"gflops", round3(row.complexity.gflops())}};
    if (layers) {
      r["layers"] = nlohmann::json::array();
      for (const LayerCost& l : row.complexity.layers) r["layers"].push_back(layer_json(l));
    }
    out["rows"].push_back(r);
  }
  std::cout << out.dump(2) << "\n";
}

void print_csv(const std::vector<CountRow>& rows, bool layers) {
  if (layers) {
    std::cout << "sparsity,layer,kind,in_channels,out_channels,output_size,kernels_active,kernels_total,"
                 "params,flops\n";
    for (const CountRow& row : rows)
      for (const LayerCost& l : row.complexity.layers)
        std::cout << fmt::format("{},{},{},{},{},{},{},{},{},{}\n", row.sparsity, l.name, to_string(l.kind),
                                 l.in_channels, l.out_channels, patch_text(l.output_size), l.kernels_active,
                                 l.kernels_total, l.params, l.flops);
    return;
  }
  std::cout << "sparsity,params,params_m,flops,gflops\n";
  for (const CountRow& row : rows)
    std::cout << fmt::format("{},{},{:.3f},{},{:.3f}\n", row.sparsity, row.complexity.params,
                             row.complexity.params / 1e6, row.complexity.flops, row.complexity.gflops());
}

void print_markdown(const Config& config, const Int3& patch, const std::vector<CountRow>& rows, bool layers) {
  std::cout << fmt::format("{} ({}), patch {}, pools {}\n\n", config.experiment, config.source,
                           patch_text(patch), pools_text(config));
  std::cout << "| sparsity | params | params (M) | GFLOPs |\n|---:|---:|---:|---:|\n";
  for (const CountRow& row : rows)
    std::cout << fmt::format("| {} | {} | {:.3f} | {:.3f} |\n", row.sparsity, row.complexity.params,
                             row.complexity.params / 1e6, row.complexity.gflops());
  if (!layers) return;
  for (const CountRow& row : rows) {
    std::cout << fmt::format("\nsparsity {}\n\n", row.sparsity);
    std::cout << "| layer | kind | in | out | output | active / kernels | params | GFLOPs |\n"
                 "|---|---|---:|---:|---|---:|---:|---:|\n";
    for (const LayerCost& l : row.complexity.layers)
      std::cout << fmt::format("| {} | {} | {} | {} | {} | {} / {} | {} | {:.3f} |\n", l.name,
                               to_string(l.kind), l.in_channels, l.out_channels, patch_text(l.output_size),
                               l.kernels_active, l.kernels_total, l.params, l.flops / 1e9);
  }
}

std::optional<PlanningFingerprint> fingerprint_for(const Config& config, const CountOptions& options) {
  if (!options.fingerprint.empty()) return read_planning_fingerprint(options.fingerprint);
  std::string store;
  try {
    store = preprocessed_dir(config);
  } catch (const ConfigError&) {
    return std::nullopt;
  }
  if (!fs::exists(fs::path(store) / "fingerprint.json") && !fs::exists(case_store_path(store)))
    return std::nullopt;
  return read_store_fingerprint(store);
}

// A config that leaves patch, batch or pools to the plan: planned from --fingerprint or the config's
// preprocessed store. Without either, --patch is needed and the pools are the paper's counting network
// (five (2, 2, 2) pools, as in its Params/FLOPs tables).
Config counted_config(Config config, const CountOptions& options) {
  if (!options.patch.empty()) {
    config.training.patch_size = parse_int3(options.patch, "--patch");
    config.planned.patch_size = false;
  }
  if (!config.planned.pending()) return config;
  if (const std::optional<PlanningFingerprint> fingerprint = fingerprint_for(config, options))
    return apply_plan(config, *fingerprint);
  if (config.planned.patch_size)
    throw ConfigError(config.source +
                      ": training.patch_size is left to the dataset's plan: pass --patch D,H,W (the paper's "
                      "tables: 128,128,128; BTCV 96,96,96) or --fingerprint FILE, or preprocess the dataset");
  config.planned = PlannedFields{};
  return config;
}

void run_count(const CountOptions& options) {
  const Config config = counted_config(load_config(options.config_path), options);
  const std::vector<double> sparsities = parse_sparsity_list(options.sparsity);
  const Int3 patch = config.training.patch_size;

  torch::NoGradGuard no_grad;
  E2ENet net(config.model);
  std::vector<CountRow> rows;
  for (double sparsity : sparsities) {
    Dsff dsff(net->masked_layers(), DsffOptions::from_config(config.sparsity, sparsity, 1, options.seed));
    dsff.initialize();
    try {
      rows.push_back({sparsity, count_complexity(net->layers(), patch, dsff.active_kernels())});
    } catch (const std::invalid_argument& e) {
      throw ConfigError(std::string("--patch: ") + e.what());
    }
  }
  if (options.format == "json")
    print_json(config, patch, rows, options.layers);
  else if (options.format == "csv")
    print_csv(rows, options.layers);
  else
    print_markdown(config, patch, rows, options.layers);
}

}  // namespace

void add_count_command(CLI::App& app) {
  auto options = std::make_shared<CountOptions>();
  CLI::App* cmd =
      app.add_subcommand("count", "Params and FLOPs of a configuration at given sparsities (paper eq. 4-5)");
  cmd->add_option("--config", options->config_path, "experiment YAML (e.g. configs/amos.yaml)")->required();
  cmd->add_option("--sparsity", options->sparsity, "comma-separated sparsities in [0, 1)")
      ->capture_default_str();
  cmd->add_option("--patch", options->patch,
                  "input patch D,H,W (default: training.patch_size of the config, or its plan)");
  cmd->add_option(
      "--fingerprint", options->fingerprint,
      "dataset fingerprint (as for e2e plan) for a config that leaves patch, batch or pools to the "
      "plan (default: the config's preprocessed store when there is one)");
  cmd->add_option("--format", options->format, "output format")
      ->check(CLI::IsMember({"md", "csv", "json"}))
      ->capture_default_str();
  cmd->add_flag("--layers", options->layers, "add a per-layer breakdown");
  cmd->add_option("--seed", options->seed, "mask seed (counts do not depend on it)")->capture_default_str();
  cmd->callback([options] { run_count(*options); });
}

}  // namespace e2e
