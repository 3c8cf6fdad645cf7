#include "worker/data_source.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "data/dataset.hpp"
#include "data/folds.hpp"
#include "data/preprocess_dataset.hpp"

namespace e2e {

namespace fs = std::filesystem;

std::string preprocessed_dir(const Config& config) {
  if (!config.data.preprocessed.empty()) return config.data.preprocessed;
  if (config.data.dataset.empty())
    throw ConfigError(config.source + ": data.dataset: expected a raw dataset folder (or data.preprocessed)");
  std::string dataset = config.data.dataset;
  while (dataset.size() > 1 && dataset.back() == '/') dataset.pop_back();
  return dataset + "_preprocessed";
}

std::string ensure_preprocessed(const Config& config, int workers) {
  const std::string dir = preprocessed_dir(config);
  if (fs::exists(case_store_path(dir)) && fs::exists(fs::path(dir) / "splits_final.json")) return dir;
  if (config.data.dataset.empty() || !fs::exists(fs::path(config.data.dataset) / "dataset.json"))
    throw InputError(dir + ": no preprocessed store here, and data.dataset (" + config.data.dataset +
                     ") is not a raw dataset with a dataset.json to build it from");
  spdlog::info("preprocessing {} → {}", config.data.dataset, dir);
  PreprocessOptions options;
  options.dataset_dir = config.data.dataset;
  options.out_dir = dir;
  options.config = config;
  options.workers = workers;
  options.compress = config.data.compress;
  preprocess_dataset(options);
  return dir;
}

FoldData open_fold(const Config& config, const std::string& store_dir, int fold) {
  FoldData data;
  data.store_dir = store_dir;
  const std::string splits_path = (fs::path(store_dir) / "splits_final.json").string();
  if (!fs::exists(splits_path)) throw InputError(splits_path + ": missing (run e2e preprocess first)");
  const std::vector<FoldSplit> splits = read_splits_json(splits_path);
  if (fold < 0 || fold >= static_cast<int>(splits.size()))
    throw ConfigError("--fold: expected 0.." + std::to_string(splits.size() - 1) + " (" + splits_path +
                      "), got " + std::to_string(fold));
  data.train_ids = splits[fold].train;
  data.val_ids = splits[fold].val;
  if (data.train_ids.empty() || data.val_ids.empty())
    throw InputError(splits_path + ": fold " + std::to_string(fold) +
                     " has no training or no validation cases");
  auto store = std::make_shared<Hdf5CaseSource>(store_dir, data.train_ids, std::size_t{2} << 30);
  data.plan = plan_from_json(nlohmann::json::parse(store->store().text("plan.json")));
  data.train = store;
  data.val = std::make_shared<Hdf5CaseSource>(store_dir, data.val_ids, std::size_t{512} << 20);

  const int channels = static_cast<int>(data.plan.channel_names.size());
  if (channels != config.model.in_channels)
    throw ConfigError(config.source + ": model.in_channels: expected " + std::to_string(channels) +
                      " (the channels of " + store_dir + "), got " +
                      std::to_string(config.model.in_channels));
  const int classes = static_cast<int>(data.plan.labels.size());
  if (classes != config.model.num_classes)
    throw ConfigError(config.source + ": model.num_classes: expected " + std::to_string(classes) +
                      " (the labels of " + store_dir + ", background included), got " +
                      std::to_string(config.model.num_classes));
  return data;
}

TrainingBatch to_tensors(Batch& batch) {
  const Shape3& p = batch.box;
  torch::Tensor image =
      torch::from_blob(batch.image.data(), {batch.size, batch.channels, p[0], p[1], p[2]}, torch::kFloat32)
          .clone();
  torch::Tensor label =
      torch::from_blob(batch.label.data(), {batch.size, p[0], p[1], p[2]}, torch::kInt16).to(torch::kLong);
  return {image, label};
}

namespace {

std::optional<torch::Device> augment_device(const Config& config, std::optional<torch::Device> forced) {
  if (forced) return forced;
  if (config.data.augment_device != "cuda") return std::nullopt;
  const torch::Device device = local_training_device();  // the trainer's device
  if (!device.is_cuda()) {
    throw ConfigError(config.source +
                      ": data.augment_device: cuda, but no CUDA device is available to this process "
                      "(augment on the CPU with data.augment_device: cpu)");
  }
  return device;
}

}  // namespace

LoaderBatchSource::LoaderBatchSource(const Config& config, const FoldData& fold, uint64_t seed, int rank,
                                     int ranks, int threads, std::optional<torch::Device> augment_on)
    : validation_batches_(config.training.validation_batches), train_(fold.train), val_(fold.val) {
  const std::optional<torch::Device> device = augment_device(config, augment_on);
  train_options_.patch_size = config.training.patch_size;
  train_options_.global_batch_size = config.training.batch_size * ranks;
  train_options_.rank = rank;
  train_options_.ranks = ranks;
  train_options_.foreground_oversampling = config.training.foreground_oversampling;
  train_options_.seed = seed;
  train_options_.threads = threads;
  AugmentOptions& augment = train_options_.augment;
  augment.elastic_probability = config.data.elastic_probability;
  augment.min_elastic_alpha = config.data.elastic_alpha[0];
  augment.max_elastic_alpha = config.data.elastic_alpha[1];
  augment.min_elastic_sigma = config.data.elastic_sigma[0];
  augment.max_elastic_sigma = config.data.elastic_sigma[1];
  train_options_.crop_only = device.has_value();
  validation_options_ = train_options_;
  validation_options_.validation = true;
  validation_options_.crop_only = false;
  validation_options_.global_batch_size = config.training.batch_size;
  validation_options_.rank = 0;
  validation_options_.ranks = 1;
  validation_options_.threads = 1;
  validate(train_options_);
  validate(validation_options_);
  if (device) augmenter_ = std::make_unique<DeviceAugmenter>(augment, *device);
}

TrainingBatch LoaderBatchSource::train_batch(int64_t iteration) {
  if (!loader_ || iteration != next_iteration_) {
    if (loader_) waited_before_ += loader_->stats().wait_seconds;
    LoaderOptions options = train_options_;
    options.first_iteration = iteration;
    loader_ = std::make_unique<BatchLoader>(train_, options);
  }
  Batch batch = loader_->next();
  next_iteration_ = iteration + 1;
  return augmenter_ ? augmenter_->augment(batch) : to_tensors(batch);
}

TrainingBatch LoaderBatchSource::validation_batch(int64_t epoch, int64_t index) {
  Batch batch = make_batch(*val_, validation_options_, epoch * validation_batches_ + index);
  return to_tensors(batch);
}

double LoaderBatchSource::wait_seconds() const {
  return waited_before_ + (loader_ ? loader_->stats().wait_seconds : 0.0);
}

}  // namespace e2e
