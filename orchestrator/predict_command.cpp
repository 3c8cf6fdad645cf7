// e2e predict: fold-ensemble inference on new images. Each --model is a job folder of `e2e train` (or its
// checkpoint file); the models' softmax probabilities are averaged and every case is written as a label
// NIfTI with the input's own grid and header (spacing, qform/sform).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "configs/config.hpp"
#include "orchestrator/commands.hpp"
#include "worker/predictor.hpp"

namespace e2e {

namespace {

struct PredictArguments {
  std::vector<std::string> models;
  std::string input;
  std::string output;
  std::string config;
  bool tta = false;
  double step = 0.5;
  int threads = 0;
  std::string device = "auto";
  bool dense = false;
  double sparse_max_density = kDefaultSparseMaxDensity;
};

torch::Device choose_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda") {
    if (!torch::cuda::is_available())
      throw ConfigError("--device: cuda requested, but no CUDA device is visible");
    return torch::Device(torch::kCUDA, 0);
  }
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
}

std::string describe_job(const PredictionModel& m) {
  const nlohmann::json& j = m.job;
  auto text = [&](const char* key) { return j.contains(key) ? j[key].dump() : std::string("?"); };
  return fmt::format("experiment {} fold {} sparsity {} seed {} iteration {}/{}", text("experiment"),
                     text("fold"), text("sparsity"), text("seed"), text("iteration"),
                     text("total_iterations"));
}

void run_predict(const PredictArguments& arguments) {
  if (!(arguments.step > 0.0 && arguments.step <= 1.0))
    throw ConfigError(fmt::format("--step: expected a fraction in (0, 1], got {}", arguments.step));
  if (arguments.threads < 0)
    throw ConfigError(fmt::format("--threads: expected >= 0, got {}", arguments.threads));
  const auto start = std::chrono::steady_clock::now();
  ModelLoadOptions load;
  load.config_path = arguments.config;
  load.device = choose_device(arguments.device);

  std::vector<PredictionModel> models;
  for (const std::string& model : arguments.models) {
    models.push_back(load_prediction_model(model, load));
    spdlog::info("predict: model {}/{}: {} ({}; plan {})", models.size(), arguments.models.size(),
                 models.back().checkpoint, describe_job(models.back()), models.back().plan_file);
  }
  PredictorOptions options;
  options.mirror_tta = arguments.tta;
  options.step_fraction = arguments.step;
  options.device = load.device;
  options.inference.dense = arguments.dense;
  options.inference.sparse.max_density = arguments.sparse_max_density;
  Predictor predictor(std::move(models), options);

  const int threads = arguments.threads > 0 ? arguments.threads : predictor.config().training.threads;
  if (threads > 0) at::set_num_threads(threads);

  const PredictionInputs inputs =
      find_prediction_inputs(arguments.input, static_cast<int64_t>(predictor.plan().channel_names.size()));
  const Int3& patch = predictor.config().training.patch_size;
  spdlog::info("predict: {} case(s) in {} ({}) with {} model(s) on {}: patch {}x{}x{}, step {}, TTA {}",
               inputs.cases.size(), inputs.dir, inputs.description, predictor.models().size(),
               load.device.str(), patch[0], patch[1], patch[2], arguments.step, arguments.tta ? "on" : "off");
  const int64_t sparse_passes_before = sparse_forward_passes();
  const std::vector<std::string> written = predictor.predict_folder(
      inputs, arguments.output,
      [](std::size_t done, std::size_t total, const std::string& id, const std::string& file,
         double seconds) {
        spdlog::info("predict: {}/{} {} → {} ({:.2f} s)", done, total, id, file, seconds);
      });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info("predict: {} forward pass(es) on the sparse path{}",
               sparse_forward_passes() - sparse_passes_before, arguments.dense ? " (--dense)" : "");
  spdlog::info("predict: wrote {} label map(s) to {} in {:.2f} s", written.size(), arguments.output, seconds);
}

}  // namespace

void add_predict_command(CLI::App& app) {
  auto arguments = std::make_shared<PredictArguments>();
  CLI::App* cmd = app.add_subcommand(
      "predict",
      "Fold-ensemble inference: the mean of the models' softmax probabilities, written as label NIfTI "
      "files in each input's original grid and header");
  cmd->add_option("--model", arguments->models,
                  "job folder of e2e train (or its checkpoint.ckpt); repeat for an ensemble (e.g. 5 folds)")
      ->required();
  cmd->add_option(
         "--input", arguments->input,
         "folder of images: a raw dataset (dataset.json: its test images, else its training images), "
         "{case}_0000.nii.gz per channel (nnU-Net), or one file per case (4D for several channels)")
      ->required();
  cmd->add_option("--output", arguments->output, "folder receiving <case>.nii.gz (created when missing)")
      ->required();
  cmd->add_flag("--tta", arguments->tta, "mirror test-time augmentation (all 8 flips)");
  cmd->add_option("--step", arguments->step, "sliding-window step as a fraction of the patch, in (0, 1]")
      ->capture_default_str();
  cmd->add_option(
      "--config", arguments->config,
      "config YAML replacing the one stored in the checkpoints (needed for checkpoints without one)");
  cmd->add_option("--threads", arguments->threads,
                  "CPU threads (0: training.threads of the config, else all)")
      ->capture_default_str();
  cmd->add_flag("--dense", arguments->dense,
                "run the masked dense forward instead of the sparse path (same labels; for comparison)");
  cmd->add_option("--sparse-max-density", arguments->sparse_max_density,
                  "a masked layer runs sparsely when its kernel density is at most this (CPU only)")
      ->check(CLI::Range(-1.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--device", arguments->device, "auto (CUDA when available), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd->footer(
      "Every model must share one preprocessing plan (patch size, channels, classes, target spacing, "
      "normalization). The plan is read from plan.json in the job folder, else from the preprocessed store "
      "of the model's config.\n"
      "Bad input (unreadable image, missing channel, mismatched models) exits with code 2.");
  cmd->callback([arguments] { run_predict(*arguments); });
}

}  // namespace e2e
