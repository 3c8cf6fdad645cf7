#include "worker/predictor.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "common/file_io.hpp"
#include "configs/config_json.hpp"
#include "data/case_store.hpp"
#include "data/nifti.hpp"
#include "model/dsff.hpp"
#include "worker/checkpoint.hpp"
#include "worker/data_source.hpp"
#include "worker/inference.hpp"

namespace e2e {

namespace fs = std::filesystem;

namespace {

std::string fmt3(const Int3& v) {
  return fmt::format("{}x{}x{}", v[0], v[1], v[2]);
}

std::string fmt_spacing(const Spacing3& s) {
  return fmt::format("{:g}x{:g}x{:g} mm", s[0], s[1], s[2]);
}

Plan parse_plan(const std::string& text, const std::string& where) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(where + ": not valid JSON (" + e.what() + ")");
  }
  try {
    return plan_from_json(json);
  } catch (const InputError& e) {
    throw InputError(where + ": " + e.what());
  }
}

// The plan of a model and where it was found.
std::pair<Plan, std::string> find_plan(const Config& config, const std::string& checkpoint_path) {
  const std::vector<std::string> candidates = plan_candidates(config, checkpoint_path);
  for (const std::string& candidate : candidates) {
    if (!fs::is_regular_file(candidate)) continue;
    if (fs::path(candidate).filename() == kCaseStoreFile) {
      const CaseStoreReader store(candidate);
      if (!store.has_text("plan.json")) continue;
      return {parse_plan(store.text("plan.json"), candidate + " (plan.json)"), candidate};
    }
    return {parse_plan(read_file(candidate), candidate), candidate};
  }
  std::string tried;
  for (const std::string& candidate : candidates) tried += (tried.empty() ? "" : ", ") + candidate;
  throw InputError(checkpoint_path + ": no preprocessing plan found (looked for " + tried +
                   "); keep the preprocessed store of the job's config (data.dataset / data.preprocessed), "
                   "copy its plan.json into the job folder, or pass --config with the right data paths");
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string strip_nifti_ending(const std::string& name) {
  if (ends_with(name, ".nii.gz")) return name.substr(0, name.size() - 7);
  if (ends_with(name, ".nii")) return name.substr(0, name.size() - 4);
  return name;
}

std::vector<std::string> generic_channel_names(int64_t channels) {
  std::vector<std::string> names;
  for (int64_t c = 0; c < channels; ++c) names.push_back("channel_" + std::to_string(c));
  return names;
}

PredictionInputs dataset_inputs(const std::string& dir, int64_t channels) {
  PredictionInputs inputs;
  inputs.dir = dir;
  inputs.layout = read_raw_dataset(dir);
  const std::string json = (fs::path(dir) / "dataset.json").string();
  if (inputs.layout.channel_count() != channels)
    throw InputError(fmt::format("{}: declares {} image channel(s), the models take {}", json,
                                 inputs.layout.channel_count(), channels));
  const bool test = !inputs.layout.test.empty();
  inputs.cases = test ? inputs.layout.test : inputs.layout.training;
  for (RawCase& c : inputs.cases) c.label_file.clear();
  inputs.layout.training.clear();
  inputs.layout.test.clear();
  inputs.description =
      fmt::format("{} dataset ({} images)", to_string(inputs.layout.format), test ? "test" : "training");
  return inputs;
}

}  // namespace

// ------------------------------------------------------------------------------------------ models

std::string checkpoint_of(const std::string& model) {
  const fs::path path(model);
  std::error_code error;
  if (fs::is_directory(path, error)) {
    const fs::path checkpoint = path / "checkpoint.ckpt";
    if (!fs::is_regular_file(checkpoint, error))
      throw InputError(
          model +
          ": no checkpoint.ckpt in this folder (expected a job folder written by e2e train, or a "
          "checkpoint file)");
    return checkpoint.string();
  }
  if (fs::is_regular_file(path, error)) return model;
  throw InputError(model + ": no such job folder or checkpoint file");
}

Config checkpoint_config(const nlohmann::json& meta, const std::string& checkpoint_path) {
  if (!meta.contains("config") || meta["config"].is_null())
    throw ConfigError(
        checkpoint_path +
        ": the checkpoint carries no config (written by an older e2e train); pass --config with "
        "the job's config file");
  const nlohmann::json& stored = meta["config"];
  // JSON is valid YAML, so the config parser reads (and validates) the stored copy.
  const std::string text = stored.is_string() ? stored.get<std::string>() : stored.dump();
  return parse_config(text, checkpoint_path + " (stored config)");
}

std::vector<std::string> plan_candidates(const Config& config, const std::string& checkpoint_path) {
  std::vector<std::string> candidates;
  candidates.push_back((fs::path(checkpoint_path).parent_path() / "plan.json").string());
  std::string store;
  try {
    store = preprocessed_dir(config);
  } catch (const ConfigError&) {
    return candidates;  // neither data.dataset nor data.preprocessed: only the job folder can hold it
  }
  candidates.push_back((fs::path(store) / "plan.json").string());
  candidates.push_back(case_store_path(store));
  return candidates;
}

PredictionModel load_prediction_model(const std::string& model, const ModelLoadOptions& options) {
  PredictionModel m;
  m.source = model;
  m.checkpoint = checkpoint_of(model);
  const CheckpointFile file = read_checkpoint_file(m.checkpoint);
  const nlohmann::json& meta = file.meta;
  check_checkpoint_format(m.checkpoint, meta);
  if (!options.config_path.empty()) {
    m.config = load_config(options.config_path);
    if (meta.value("config_hash", "") != config_hash(m.config))
      spdlog::warn("{}: --config {} differs from the config this model was trained with (hash {} vs {})",
                   m.checkpoint, options.config_path, config_hash(m.config), meta.value("config_hash", "?"));
    if (m.config.planned.pending()) {
      // What the config leaves to the plan is what this model was trained with.
      const Config trained = checkpoint_config(meta, m.checkpoint);
      m.config.training.patch_size = trained.training.patch_size;
      m.config.training.batch_size = trained.training.batch_size;
      m.config.model.pools = trained.model.pools;
      m.config.model.levels = trained.model.levels;
      m.config.planned.applied = true;
    }
  } else {
    m.config = checkpoint_config(meta, m.checkpoint);
  }
  for (const char* key : {"experiment", "fold", "sparsity", "seed", "iteration", "total_iterations"})
    if (meta.contains(key)) m.job[key] = meta[key];
  const int64_t iteration = meta.value("iteration", int64_t{-1});
  const int64_t total = meta.value("total_iterations", int64_t{-1});
  if (iteration < total)
    spdlog::warn("{}: training did not finish (iteration {} of {}); predicting with the weights so far",
                 m.checkpoint, iteration, total);

  std::tie(m.plan, m.plan_file) = find_plan(m.config, m.checkpoint);

  m.net = E2ENet(m.config.model);
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(file.payload.data(), file.payload.size());
    torch::serialize::InputArchive model_archive;
    archive.read(checkpoint_entry::kModel, model_archive);
    // Module::load takes the stored tensors whatever their shape, so a config that does not describe the
    // stored network is caught by comparing shapes.
    std::map<std::string, std::vector<int64_t>> expected;
    for (const auto& item : m.net->named_parameters()) expected[item.key()] = item.value().sizes().vec();
    for (const auto& item : m.net->named_buffers()) expected[item.key()] = item.value().sizes().vec();
    m.net->load(model_archive);
    auto check_shape = [&](const std::string& name, const torch::Tensor& t) {
      if (t.sizes().vec() != expected[name])
        throw InputError(
            fmt::format("{}: the weights do not fit the model of {}: {} is [{}] in the checkpoint, "
                        "[{}] in the config",
                        m.checkpoint, m.config.source, name, fmt::join(t.sizes(), ", "),
                        fmt::join(expected[name], ", ")));
    };
    for (const auto& item : m.net->named_parameters()) check_shape(item.key(), item.value());
    for (const auto& item : m.net->named_buffers()) check_shape(item.key(), item.value());
    const Topology topology = read_checkpoint_topology(archive, meta, m.checkpoint);
    // The stored weights are already masked; applying the masks again makes sure of it.
    Dsff masks(m.net->masked_layers(), DsffOptions{});
    masks.set_topology(topology);
    masks.apply();
  } catch (const c10::Error& e) {
    throw InputError(m.checkpoint + ": the weights do not fit the model of " + m.config.source + ": " +
                     e.what_without_backtrace());
  } catch (const std::invalid_argument& e) {
    throw InputError(m.checkpoint + ": the DSFF topology does not fit the model of " + m.config.source +
                     ": " + e.what());
  }
  m.net->to(options.device);
  m.net->eval();
  return m;
}

void check_model_fits_plan(const PredictionModel& m) {
  const int channels = static_cast<int>(m.plan.channel_names.size());
  if (channels != m.config.model.in_channels)
    throw ConfigError(fmt::format("{}: model.in_channels is {}, but its plan ({}) has {} channel(s)",
                                  m.source, m.config.model.in_channels, m.plan_file, channels));
  const int classes = static_cast<int>(m.plan.labels.size());
  if (classes != m.config.model.num_classes)
    throw ConfigError(fmt::format("{}: model.num_classes is {}, but its plan ({}) has {} labels", m.source,
                                  m.config.model.num_classes, m.plan_file, classes));
}

void check_same_plan(const PredictionModel& a, const PredictionModel& b) {
  auto fail = [&](const std::string& what, const std::string& value_b, const std::string& value_a) {
    throw ConfigError(fmt::format(
        "--model {} cannot join an ensemble with --model {}: {} {} vs {} (every model must share one plan: "
        "patch size, channels, classes, target spacing, normalization)",
        b.source, a.source, what, value_b, value_a));
  };
  if (b.config.training.patch_size != a.config.training.patch_size)
    fail("patch size", fmt3(b.config.training.patch_size), fmt3(a.config.training.patch_size));
  if (b.config.model.in_channels != a.config.model.in_channels)
    fail("input channels", std::to_string(b.config.model.in_channels),
         std::to_string(a.config.model.in_channels));
  if (b.config.model.num_classes != a.config.model.num_classes)
    fail("classes", std::to_string(b.config.model.num_classes), std::to_string(a.config.model.num_classes));
  const nlohmann::json plan_a = to_json(a.plan), plan_b = to_json(b.plan);
  if (plan_b["labels"] != plan_a["labels"]) fail("labels", plan_b["labels"].dump(), plan_a["labels"].dump());
  for (int axis = 0; axis < 3; ++axis) {
    const double sa = a.plan.target_spacing[axis], sb = b.plan.target_spacing[axis];
    if (std::abs(sa - sb) > 1e-6 * std::max(std::abs(sa), std::abs(sb)))
      fail("target spacing", fmt_spacing(b.plan.target_spacing), fmt_spacing(a.plan.target_spacing));
  }
  for (const char* key : {"normalization", "use_nonzero_mask", "foreground_intensity"})
    if (plan_b[key] != plan_a[key])
      fail(std::string("plan ") + key, plan_b[key].dump() + " (" + b.plan_file + ")",
           plan_a[key].dump() + " (" + a.plan_file + ")");
}

// ------------------------------------------------------------------------------------------ inputs

PredictionInputs find_prediction_inputs(const std::string& dir, int64_t channels) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) throw InputError(dir + ": no such input folder");
  if (fs::exists(fs::path(dir) / "dataset.json")) return dataset_inputs(dir, channels);

  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || !entry.is_regular_file(error)) continue;
    if (ends_with(name, ".nii.gz") || ends_with(name, ".nii")) files.push_back(entry.path());
  }
  if (error) throw InputError(dir + ": cannot list the folder (" + error.message() + ")");
  if (files.empty())
    throw InputError(dir + ": no NIfTI images (.nii.gz, .nii) and no dataset.json in this folder");
  std::sort(files.begin(), files.end());

  PredictionInputs inputs;
  inputs.dir = dir;
  inputs.layout.root = dir;
  inputs.layout.channel_names = generic_channel_names(channels);

  // nnU-Net naming: every file is {case}_{NNNN} and every case has its _0000 file.
  static const std::regex nnunet_name(R"(^(.+)_([0-9]{4})$)");
  std::map<std::string, std::map<int, std::string>> groups;
  bool nnunet = true;
  for (const fs::path& file : files) {
    std::smatch match;
    const std::string stem = strip_nifti_ending(file.filename().string());
    if (!std::regex_match(stem, match, nnunet_name)) {
      nnunet = false;
      break;
    }
    auto& group = groups[match[1].str()];
    const int channel = std::stoi(match[2].str());
    if (group.count(channel))
      throw InputError(fmt::format("{}: case {} has two files for channel {}: {} and {}", dir, match[1].str(),
                                   channel, group[channel], file.string()));
    group[channel] = file.string();
  }
  for (const auto& [id, group] : groups) nnunet = nnunet && group.count(0);

  if (nnunet) {
    inputs.layout.format = DatasetFormat::NnUNetV2;
    inputs.description = "nnU-Net-named files ({case}_{NNNN}, one per channel)";
    for (const auto& [id, group] : groups) {
      RawCase c;
      c.id = id;
      for (int64_t channel = 0; channel < channels; ++channel) {
        const auto found = group.find(static_cast<int>(channel));
        if (found == group.end())
          throw InputError(fmt::format("{}: case {} has no file for channel {} ({}_{:04d}.nii.gz)", dir, id,
                                       channel, id, channel));
        c.image_files.push_back(found->second);
      }
      if (static_cast<int64_t>(group.size()) != channels)
        throw InputError(fmt::format("{}: channel {}, but the models take {} channel(s)",
                                     group.rbegin()->second, group.rbegin()->first, channels));
      inputs.cases.push_back(std::move(c));
    }
    return inputs;
  }

  inputs.layout.format = DatasetFormat::Msd;  // one file per case holding every channel
  inputs.description = channels == 1 ? "one 3D file per case" : "one 4D file per case";
  std::map<std::string, std::string> by_id;
  for (const fs::path& file : files) {
    const std::string id = strip_nifti_ending(file.filename().string());
    const auto [it, inserted] = by_id.emplace(id, file.string());
    if (!inserted)
      throw InputError(
          fmt::format("{}: case {} has two files: {} and {}", dir, id, it->second, file.string()));
  }
  for (const auto& [id, file] : by_id) {
    RawCase c;
    c.id = id;
    c.image_files = {file};
    inputs.cases.push_back(std::move(c));
  }
  return inputs;
}

// ------------------------------------------------------------------------------------------ ensemble

Predictor::Predictor(std::vector<PredictionModel> models, PredictorOptions options)
    : models_(std::move(models)), options_(options) {
  if (models_.empty()) throw ConfigError("--model: at least one model is needed");
  if (!(options_.step_fraction > 0.0 && options_.step_fraction <= 1.0))
    throw ConfigError(fmt::format("--step: expected a fraction in (0, 1], got {}", options_.step_fraction));
  for (const PredictionModel& m : models_) check_model_fits_plan(m);
  for (std::size_t i = 1; i < models_.size(); ++i) check_same_plan(models_.front(), models_[i]);
  for (PredictionModel& m : models_) forwards_.push_back(inference_forward(m.net, options_.inference));
}

torch::Tensor Predictor::probabilities(const MultiVolume<float>& preprocessed_image) {
  torch::NoGradGuard no_grad;
  SlidingWindowOptions window;
  window.patch = config().training.patch_size;
  window.step_fraction = options_.step_fraction;
  window.mirror_tta = options_.mirror_tta;
  window.device = options_.device;
  torch::Tensor sum;
  const int64_t classes = config().model.num_classes;
  for (const LogitsFn& forward : forwards_) {
    torch::Tensor p = predict_probabilities(forward, classes, preprocessed_image, window);
    if (!sum.defined())
      sum = p;
    else
      sum.add_(p);
  }
  if (models_.size() > 1) sum.div_(static_cast<double>(models_.size()));
  return sum;
}

Volume<int16_t> Predictor::predict_case(const PredictionInputs& inputs, const RawCase& raw_case,
                                        NiftiGeometry* geometry) {
  RawCase c = raw_case;
  c.label_file.clear();
  RawCaseData raw = load_raw_case(inputs.layout, c);
  if (geometry) *geometry = raw.geometry;
  CroppedCase cropped = crop_to_nonzero(std::move(raw), c.image_files);
  CaseMeta meta;
  const PreprocessedCase preprocessed = preprocess_case(std::move(cropped), plan(), &meta);
  return export_segmentation(probabilities(preprocessed.image), meta);
}

std::vector<std::string> Predictor::predict_folder(const PredictionInputs& inputs,
                                                   const std::string& output_dir, const Progress& progress) {
  if (inputs.cases.empty()) throw InputError(inputs.dir + ": no cases to predict");
  // Headers first: a missing channel or a mismatched grid fails before any output is written.
  for (const RawCase& c : inputs.cases) {
    RawCase images_only = c;
    images_only.label_file.clear();
    check_case_geometry(inputs.layout, images_only);
  }
  // Outputs are named <case>.nii.gz, so a folder holding input images could see them overwritten.
  std::error_code error;
  if (fs::exists(output_dir, error)) {
    std::set<std::string> input_folders{inputs.dir};
    for (const RawCase& c : inputs.cases)
      for (const std::string& file : c.image_files)
        input_folders.insert(fs::path(file).parent_path().string());
    for (const std::string& folder : input_folders)
      if (fs::equivalent(output_dir, folder, error))
        throw ConfigError("--output: must not be a folder holding the input images (" + folder + ")");
  }
  fs::create_directories(output_dir, error);
  if (error || !fs::is_directory(output_dir))
    throw InputError(output_dir + ": cannot create the output folder (" + error.message() + ")");

  std::vector<std::string> written;
  for (std::size_t i = 0; i < inputs.cases.size(); ++i) {
    const RawCase& c = inputs.cases[i];
    const auto start = std::chrono::steady_clock::now();
    NiftiGeometry geometry;
    const Volume<int16_t> labels = predict_case(inputs, c, &geometry);
    const std::string path = (fs::path(output_dir) / (c.id + ".nii.gz")).string();
    write_nifti_labels(path, labels, geometry);
    written.push_back(path);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (progress) progress(i + 1, inputs.cases.size(), c.id, path, seconds);
  }
  return written;
}

}  // namespace e2e
