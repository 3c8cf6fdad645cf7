// e2e preprocess: a raw MSD / nnU-Net dataset → HDF5 case store, plan, fingerprint and fold splits.
#include <spdlog/spdlog.h>

#include <memory>

#include "configs/config.hpp"
#include "data/preprocess.hpp"
#include "data/preprocess_dataset.hpp"
#include "orchestrator/commands.hpp"

namespace e2e {

namespace {

struct PreprocessArguments {
  std::string dataset;
  std::string out;
  std::string config;
  std::string splits;
  int workers = 0;
  bool compress = false;
};

void run_preprocess(const PreprocessArguments& arguments) {
  PreprocessOptions options;
  options.dataset_dir = arguments.dataset;
  options.out_dir = arguments.out;
  if (!arguments.config.empty()) options.config = load_config(arguments.config);
  options.workers = arguments.workers;
  options.splits_file = arguments.splits;
  options.compress = arguments.compress;
  const PreprocessResult result = preprocess_dataset(options);
  spdlog::info("preprocess: {} {} ({} cases; plan.json, fingerprint.json, splits_final.json beside it)",
               result.reused ? "reused" : "wrote", result.store_path, result.cases);
}

}  // namespace

void add_preprocess_command(CLI::App& app) {
  auto arguments = std::make_shared<PreprocessArguments>();
  CLI::App* cmd = app.add_subcommand(
      "preprocess",
      "Preprocess a raw dataset (MSD, nnU-Net v1 or v2) like nnU-Net v1: fingerprint, plan (target spacing, "
      "patch, batch, pools), crop to the non-zero region, resample (images cubic, labels per-label linear), "
      "normalize (CT: dataset percentiles and statistics; others: per-case z-score), foreground locations. "
      "Writes OUT/cases.h5 (every case, chunked HDF5), plan.json, fingerprint.json and splits_final.json "
      "(KFold 5, seed 12345, as nnU-Net). The store appears only once complete; rerunning with unchanged "
      "input files and settings reuses it.");
  cmd->add_option("--dataset", arguments->dataset, "raw dataset folder holding dataset.json")->required();
  cmd->add_option("--out", arguments->out, "output folder (created when missing)")->required();
  cmd->add_option(
      "--config", arguments->config,
      "experiment YAML: training.patch_size, training.batch_size, model.pools, data.target_spacing "
      "and data.compress go into the plan (default: derived from the dataset)");
  cmd->add_option("--workers", arguments->workers, "threads preprocessing cases (0 = one per core)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--splits", arguments->splits,
                  "nnU-Net splits_final.json to use instead of the KFold split");
  cmd->add_flag("--compress", arguments->compress,
                "gzip (level 1) + shuffle the store's chunks: ~3x smaller, slower patch reads");
  cmd->callback([arguments] { run_preprocess(*arguments); });
}

}  // namespace e2e
