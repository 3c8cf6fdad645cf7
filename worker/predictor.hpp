// Fold-ensemble inference on new images (`e2e predict`): trained models are read back from their job folders
// (checkpoint.ckpt: weights, DSFF masks and the job's config), every input case is preprocessed with the
// models' shared plan (crop to the non-zero region, resample, normalize), the models' sliding-window softmax
// probabilities are averaged, and the result is exported to the input's own grid and header.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "configs/config.hpp"
#include "data/dataset.hpp"
#include "data/preprocess.hpp"
#include "model/e2enet.hpp"
#include "worker/inference.hpp"

namespace e2e {

// One trained model, ready for inference (eval mode, on its device).
struct PredictionModel {
  std::string source;      // what the user named: a job folder or a checkpoint file
  std::string checkpoint;  // the checkpoint file read
  std::string plan_file;   // where the plan came from (for messages)
  Config config;
  Plan plan;
  nlohmann::json job;  // experiment, fold, sparsity, seed, iteration, total_iterations (from the checkpoint)
  E2ENet net{nullptr};
};

struct ModelLoadOptions {
  // A config file that replaces the checkpoint's own config (required for checkpoints that carry none).
  std::string config_path;
  torch::Device device = torch::kCPU;
};

// A job folder (holding checkpoint.ckpt) or a checkpoint file → the checkpoint file. Throws InputError.
std::string checkpoint_of(const std::string& model);

// The config stored in a checkpoint's meta ("config", as written by Trainer::save_checkpoint), validated.
// Throws ConfigError naming the checkpoint when it has none or it does not parse.
Config checkpoint_config(const nlohmann::json& meta, const std::string& checkpoint_path);

// Where a model's plan is looked for, in order: plan.json beside the checkpoint (a job folder that carries
// its plan), then the config's preprocessed store (plan.json, else the copy inside cases.h5).
std::vector<std::string> plan_candidates(const Config& config, const std::string& checkpoint_path);

// Reads the checkpoint (integrity checked), its config (or options.config_path), the plan, and builds the
// network with the checkpoint's weights and DSFF masks. Throws InputError/ConfigError naming the file.
PredictionModel load_prediction_model(const std::string& model, const ModelLoadOptions& options = {});

// Throws ConfigError naming both models when `b` cannot join an ensemble with `a`: every model must share
// the plan (patch size, input channels, classes, target spacing, normalization). Also checks each model
// against its own plan (channels and classes).
void check_same_plan(const PredictionModel& a, const PredictionModel& b);
void check_model_fits_plan(const PredictionModel& model);

// The images to predict, laid out so that load_raw_case() reads them (no label files).
struct PredictionInputs {
  std::string dir;
  std::string description;     // "MSD dataset (test images)", "nnU-Net-named files (_0000 per channel)", …
  RawDataset layout;           // format and channel names as load_raw_case() needs them
  std::vector<RawCase> cases;  // sorted by id
};

// Finds the cases of `dir` for a plan with `channels` input channels:
//  - a raw dataset folder (dataset.json): its test images when it lists any, else its training images;
//  - files named {case}_{NNNN}.nii[.gz] (nnU-Net: one 3D file per channel, when every case has _0000);
//  - otherwise one file per case ({case}.nii[.gz]): 3D for one channel, 4D with `channels` volumes else.
// Throws InputError naming the folder or file (no images, missing channel, duplicate case, …).
PredictionInputs find_prediction_inputs(const std::string& dir, int64_t channels);

struct PredictorOptions {
  bool mirror_tta = false;     // all 8 flips per tile
  double step_fraction = 0.5;  // sliding-window step as a fraction of the patch
  torch::Device device = torch::kCPU;
  InferencePathOptions inference;  // sparse or dense forward (worker/inference.hpp)
};

// A fold ensemble: the mean of its models' softmax probabilities.
class Predictor {
 public:
  // Throws ConfigError when the list is empty or the models do not share one plan.
  Predictor(std::vector<PredictionModel> models, PredictorOptions options);

  const Plan& plan() const { return models_.front().plan; }
  const Config& config() const { return models_.front().config; }
  const std::vector<PredictionModel>& models() const { return models_; }

  // K×D×H×W float32 CPU: the mean over the models of predict_probabilities() of a preprocessed image.
  torch::Tensor probabilities(const MultiVolume<float>& preprocessed_image);

  // One case: read, crop to non-zero, resample and normalize with the plan, ensemble, export to the
  // original grid. `geometry` receives the input's header geometry (what the output is written with).
  Volume<int16_t> predict_case(const PredictionInputs& inputs, const RawCase& raw_case,
                               NiftiGeometry* geometry = nullptr);

  // Every case of `inputs` → <output_dir>/<case>.nii.gz (each written atomically), after checking every
  // input header first so that bad input fails before any output is written. Returns the files written.
  using Progress = std::function<void(std::size_t done, std::size_t total, const std::string& case_id,
                                      const std::string& output_file, double seconds)>;
  std::vector<std::string> predict_folder(const PredictionInputs& inputs, const std::string& output_dir,
                                          const Progress& progress = {});

 private:
  std::vector<PredictionModel> models_;
  PredictorOptions options_;
  std::vector<LogitsFn> forwards_;  // one compiled forward per model (sparse topology packed once)
};

}  // namespace e2e
