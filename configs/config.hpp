// Typed configuration of an experiment, parsed once from YAML and validated field by field.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/errors.hpp"  // ConfigError, InputError: what the parsers throw

namespace e2e {

using Int3 = std::array<int64_t, 3>;  // (D, H, W): depth first, as in N×C×D×H×W tensors

struct ModelConfig {
  int levels = 6;
  int base_channels = 48;
  int max_channels = 320;
  int in_channels = 1;
  int num_classes = 2;
  std::vector<Int3> pools = {{2, 2, 2}, {2, 2, 2}, {2, 2, 2}, {2, 2, 2}, {2, 2, 2}};  // levels - 1 entries
  Int3 conv_kernel = {1, 3, 3};
  int shift_size = 3;  // 0 or 1 disables the depth shift
  bool shift_input = false;
  bool deep_supervision = true;

  // Channels of level i: base·2^i capped at max_channels.
  int channels(int level) const;
};

struct SparsityConfig {
  std::vector<double> levels = {0.7, 0.8, 0.9};  // the sweep's default sparsities
  int64_t update_interval = 1200;                // iterations between topology updates; 0 = static masks
  double prune_rate_start = 0.5;
  double prune_rate_end = 0.001;
  std::optional<double> level0_density;  // forces the level-0 fusion convs to this density (reference quirk)
};

struct TrainingConfig {
  int64_t epochs = 1000;
  int64_t iterations_per_epoch = 250;
  int64_t batch_size = 2;
  Int3 patch_size = {128, 128, 128};
  double learning_rate = 0.01;
  double momentum = 0.99;
  bool nesterov = true;
  double weight_decay = 3e-5;
  double grad_clip = 12.0;
  double poly_exponent = 0.9;
  double foreground_oversampling = 0.33;
  // Soft Dice over the whole batch instead of per sample. nnU-Net v1 (and the E2ENet reference) use it
  // for 3D full resolution when the plan has a low-resolution stage (large images: AMOS, BTCV), not
  // when the full-resolution patch covers a quarter of the median image or more (BraTS).
  bool batch_dice = false;
  int64_t validation_batches = 50;
  int64_t checkpoint_every_epochs = 50;
  double checkpoint_every_minutes = 30;
  std::string precision = "bf16";  // bf16 | fp16 | fp32 (CPU always trains in fp32)
  int threads = 0;                 // 0 = all cores
  uint64_t seed = 0;
};

struct DataConfig {
  std::string dataset;  // raw dataset folder (MSD / nnU-Net v1 / v2) or preprocessed store folder
  std::string preprocessed;
  std::optional<std::array<double, 3>> target_spacing;  // (z, y, x) mm; default from the fingerprint
  bool compress = false;
  int workers = 0;  // loader threads; 0 = automatic
  // Where training augmentation runs: "cpu" (the loader threads) or "cuda" (batched torch ops on the
  // training GPU after the transfer; the loader only crops). Validation batches are never augmented.
  std::string augment_device = "cpu";
  // Elastic deformation (not in moreDA, so off by default; augment_device cuda only): probability per
  // sample, displacement scale α and smoothing σ ranges in voxels (batchgenerators' defaults).
  double elastic_probability = 0.0;
  std::array<double, 2> elastic_alpha = {0.0, 900.0};
  std::array<double, 2> elastic_sigma = {9.0, 13.0};
  // Held-out test cases: training cases of the dataset moved out of every fold (AMOS's 200 train / 100
  // test protocol). With the dataset's own test images that have labels (imagesTs + labelsTs), they form
  // the test set a sweep's fold ensembles are evaluated on.
  std::vector<std::string> test_cases;
};

struct EvalConfig {
  double nsd_tolerance_mm = 1.0;
  std::map<int, double> nsd_tolerance_per_class;  // class value → tolerance (mm)
  std::string hd_variant = "surfel";              // surfel | pooled | monai
  bool tta = false;
  double step_fraction = 0.5;
  // nnU-Net's connected-component post-processing of the test-set predictions: `auto` decides it on
  // each (sparsity, seed) cell's cross-validation predictions (metrics/postprocess.hpp) and reports
  // test metrics with and without it; `off` never applies it.
  std::string postprocessing = "off";  // auto | off
};

struct SweepConfig {
  std::vector<int> folds = {0, 1, 2, 3, 4};
  std::vector<uint64_t> seeds = {0};
  int gpus_per_job = 1;
  int max_attempts = 3;
};

struct StoreConfig {
  std::string path = "e2e.db";
  bool wal = true;  // turn off on network filesystems that do not support WAL
  int busy_timeout_ms = 10000;
};

// Fields a YAML file leaves out (or sets to `plan`) so that the dataset's nnU-Net v1 plan sets them:
// apply_plan (data/plan.hpp) fills them in from the preprocessed dataset's fingerprint before training.
// config_hash names them "plan" whether or not they are filled in, so the job identity is the YAML's.
struct PlannedFields {
  bool patch_size = false;  // training.patch_size
  bool batch_size = false;  // training.batch_size
  bool pools = false;       // model.pools, and with them model.levels (pools + 1)
  bool applied = false;     // the config holds the plan's values (config_to_json writes them)
  bool any() const { return patch_size || batch_size || pools; }
  bool pending() const { return any() && !applied; }
};

struct Config {
  std::string experiment = "experiment";
  std::string source;  // the file it was read from, for messages
  PlannedFields planned;
  ModelConfig model;
  SparsityConfig sparsity;
  TrainingConfig training;
  DataConfig data;
  EvalConfig eval;
  SweepConfig sweep;
  StoreConfig store;
};

// Parses and validates. Throws ConfigError naming the file and field on any problem.
Config load_config(const std::string& path);
Config parse_config(const std::string& yaml_text, const std::string& source_name = "<string>");

// Cross-field checks (pools vs. levels, patch divisible by the total pool, …). Called by the parsers.
void validate(const Config& config);

// Small parsers shared by the command line.
std::vector<double> parse_sparsity_list(const std::string& text);   // "0,0.7,0.8"
Int3 parse_int3(const std::string& text, const std::string& what);  // "128,128,128"

}  // namespace e2e
