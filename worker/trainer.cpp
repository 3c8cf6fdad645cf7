#include "worker/trainer.hpp"

#include <ATen/autocast_mode.h>
#include <spdlog/spdlog.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "common/file_io.hpp"
#include "common/random.hpp"
#include "configs/config_json.hpp"
#include "configs/hash.hpp"
#include "worker/checkpoint.hpp"
#include "worker/gradient_buckets.hpp"
#include "worker/loss.hpp"
#include "worker/validation.hpp"

namespace e2e {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// LibTorch 2.4 made autocast per device type (set_autocast_dtype/set_autocast_enabled(device, …)) and
// deprecated the CUDA-only calls that 1.13 has; both builds are supported.
void set_cuda_autocast(bool enabled, at::ScalarType dtype) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  if (enabled) at::autocast::set_autocast_dtype(at::kCUDA, dtype);
  at::autocast::set_autocast_enabled(at::kCUDA, enabled);
#else
  if (enabled) at::autocast::set_autocast_gpu_dtype(dtype);
  at::autocast::set_enabled(enabled);
#endif
}

// Autocast for CUDA forward passes (bf16 or fp16); CPU training stays in fp32.
class AutocastScope {
 public:
  AutocastScope(torch::Device device, const std::string& precision)
      : active_(device.is_cuda() && precision != "fp32") {
    if (!active_) return;
    set_cuda_autocast(true, precision == "fp16" ? at::kHalf : at::kBFloat16);
  }
  ~AutocastScope() {
    if (!active_) return;
    set_cuda_autocast(false, at::kBFloat16);
    at::autocast::clear_cache();
  }

 private:
  bool active_;
};

}  // namespace

Trainer::Trainer(Config config, JobSpec job, BatchSource& batches, Communicator& comm,
                 const std::atomic<bool>* stop_requested, TrainerHooks hooks)
    : config_(std::move(config)),
      job_(std::move(job)),
      batches_(batches),
      comm_(comm),
      stop_requested_(stop_requested),
      hooks_(std::move(hooks)),
      device_(local_training_device()) {
  torch::manual_seed(static_cast<uint64_t>(mix_seed({job_.seed, 0xC0FFEE}) >> 1));
  net_ = E2ENet(config_.model);
  net_->to(device_);
  dsff_ = std::make_unique<Dsff>(
      net_->masked_layers(),
      DsffOptions::from_config(config_.sparsity, job_.sparsity, total_iterations(), job_.seed));
  dsff_->initialize();
  optimizer_ = std::make_unique<torch::optim::SGD>(net_->parameters(),
                                                   torch::optim::SGDOptions(config_.training.learning_rate)
                                                       .momentum(config_.training.momentum)
                                                       .nesterov(config_.training.nesterov)
                                                       .weight_decay(config_.training.weight_decay));
  loss_scaler_ = LossScaler(device_.is_cuda() && config_.training.precision == "fp16");
  const bool has_checkpoint = std::filesystem::exists(checkpoint_path());
  if (job_.resume && has_checkpoint) {
    load_checkpoint(checkpoint_path());
  } else if (has_checkpoint) {
    throw ConfigError(checkpoint_path() +
                      ": a checkpoint exists; pass --resume to continue it or choose another --out");
  } else if (job_.resume && comm_.is_leader()) {
    spdlog::info("no checkpoint in {}: starting from scratch", job_.out_dir);
  }
  synchronize_initial_state();
  if (comm_.size() > 1) gradient_buckets_ = std::make_unique<GradientBuckets>(net_->parameters(), comm_);
  last_checkpoint_time_ = std::chrono::steady_clock::now();
}

int64_t Trainer::total_iterations() const {
  return config_.training.epochs * config_.training.iterations_per_epoch;
}

std::string Trainer::checkpoint_path() const {
  return (std::filesystem::path(job_.out_dir) / "checkpoint.ckpt").string();
}

double Trainer::learning_rate_for(int64_t epoch) const {
  const double progress = static_cast<double>(epoch) / static_cast<double>(config_.training.epochs);
  return config_.training.learning_rate * std::pow(1.0 - progress, config_.training.poly_exponent);
}

void Trainer::synchronize_initial_state() {
  if (comm_.size() == 1) return;
  torch::NoGradGuard no_grad;
  for (auto& p : net_->parameters()) comm_.broadcast(p, 0);
  for (auto& b : net_->buffers()) comm_.broadcast(b, 0);
  std::string topology = comm_.is_leader() ? dsff_->topology().serialize() : std::string();
  comm_.broadcast_bytes(topology, 0);
  dsff_->set_topology(Topology::deserialize(topology));
  dsff_->apply(optimizer_.get());
  verify_topology_across_ranks();
}

void Trainer::verify_topology_across_ranks() {
  if (comm_.size() == 1) return;
  const uint64_t hash = dsff_->topology().hash();
  std::vector<double> parts, squares;
  for (int k = 0; k < 4; ++k) {
    const double part = static_cast<double>((hash >> (16 * k)) & 0xffff);
    parts.push_back(part);
    squares.push_back(part * part);
  }
  std::vector<double> sums = parts;
  sums.insert(sums.end(), squares.begin(), squares.end());
  comm_.all_reduce_sum(sums);
  const double n = comm_.size();
  for (int k = 0; k < 4; ++k)
    if (sums[k] != n * parts[k] || sums[4 + k] != n * squares[k])
      throw TrainingError("ranks hold different DSFF topologies at iteration " + std::to_string(iteration_) +
                          " (rank " + std::to_string(comm_.rank()) + " has " + dsff_->topology().hash_hex() +
                          ")");
}

void Trainer::reduce_gradients() {
  if (!gradient_buckets_) return;
  const auto start = std::chrono::steady_clock::now();
  gradient_buckets_->finish();
  epoch_allreduce_seconds_ += seconds_since(start);
}

double Trainer::train_step(const TrainingBatch& batch) {
  net_->train();
  optimizer_->zero_grad();
  const torch::Tensor image = batch.image.to(device_);
  const torch::Tensor label = batch.label.to(device_);
  torch::Tensor loss;
  {
    AutocastScope autocast(device_, config_.training.precision);
    std::vector<torch::Tensor> outputs = net_->forward(image);
    loss = deep_supervision_loss(outputs, downsample_targets(label, outputs),
                                 net_->deep_supervision_weights(), loss_options(config_.training));
  }
  // One small collective per step carries the loss and whether any rank was asked to stop, so that all
  // ranks stop after the same iteration.
  const bool stop_here = stop_requested_ && stop_requested_->load();
  std::vector<double> value{loss.item<double>(), stop_here ? 1.0 : 0.0};
  comm_.all_reduce_sum(value);
  stop_agreed_ = value[1] > 0;
  if (!std::isfinite(value[0]))
    throw TrainingError("non-finite training loss at iteration " + std::to_string(iteration_ + 1) +
                        "; the last good checkpoint is kept in " + job_.out_dir);
  if (gradient_buckets_) gradient_buckets_->prepare();
  loss_scaler_.scaled(loss).backward();
  reduce_gradients();
  if (loss_scaler_.unscale(net_->parameters(), iteration_ + 1)) {
    torch::nn::utils::clip_grad_norm_(net_->parameters(), config_.training.grad_clip);
    optimizer_->step();
  }
  dsff_->apply(optimizer_.get());
  ++iteration_;
  return value[0] / comm_.size();
}

void Trainer::maybe_update_topology() {
  if (!dsff_->is_update_step(iteration_)) return;
  std::string bytes;
  DsffUpdateStats stats;
  if (comm_.is_leader()) bytes = dsff_->propose_update(iteration_, &stats).serialize();
  comm_.broadcast_bytes(bytes, 0);
  dsff_->set_topology(Topology::deserialize(bytes));
  dsff_->apply(optimizer_.get());
  verify_topology_across_ranks();
  ++topology_updates_;
  if (comm_.is_leader())
    spdlog::debug("DSFF update at iteration {}: rate {:.4f}, {} kernels moved ({} kept weights)", iteration_,
                  stats.rate, stats.pruned, stats.regrown_kept);
}

EpochRecord Trainer::validate(int64_t epoch) {
  torch::NoGradGuard no_grad;
  net_->train();  // deep-supervision outputs, so the validation loss is comparable to the training loss
  double loss_sum = 0, batches = 0;
  PseudoDiceCounts dice(config_.model.num_classes);
  for (int64_t index = comm_.rank(); index < config_.training.validation_batches; index += comm_.size()) {
    const TrainingBatch batch = batches_.validation_batch(epoch, index);
    const torch::Tensor image = batch.image.to(device_);
    const torch::Tensor label = batch.label.to(device_);
    AutocastScope autocast(device_, config_.training.precision);
    std::vector<torch::Tensor> outputs = net_->forward(image);
    loss_sum += deep_supervision_loss(outputs, downsample_targets(label, outputs),
                                      net_->deep_supervision_weights(), loss_options(config_.training))
                    .item<double>();
    batches += 1;
    dice.add(outputs[0], label);
  }
  // One all-reduce: the loss sum, the batch count, then the pseudo-Dice counts.
  std::vector<double> sums{loss_sum, batches};
  sums.insert(sums.end(), dice.counts().begin(), dice.counts().end());
  comm_.all_reduce_sum(sums);
  std::copy(sums.begin() + 2, sums.end(), dice.counts().begin());
  EpochRecord record;
  record.epoch = epoch;
  record.val_loss = sums[1] > 0 ? sums[0] / sums[1] : std::nan("");
  record.pseudo_dice = dice.dice();
  record.mean_pseudo_dice = mean_of_finite(record.pseudo_dice);
  return record;
}

void Trainer::finish_epoch(int64_t epoch, double epoch_seconds) {
  EpochRecord record = validate(epoch);
  record.train_loss = epoch_steps_ > 0 ? epoch_loss_sum_ / epoch_steps_ : std::nan("");
  record.learning_rate = learning_rate_for(epoch);
  record.seconds = epoch_seconds;
  record.iterations_per_second = epoch_seconds > 0 ? epoch_steps_ / epoch_seconds : 0;
  record.loader_wait_fraction =
      epoch_seconds > 0 ? (batches_.wait_seconds() - epoch_wait_start_) / epoch_seconds : 0;
  record.allreduce_fraction = epoch_seconds > 0 ? epoch_allreduce_seconds_ / epoch_seconds : 0;
  record.topology_updates = topology_updates_;
  history_.push_back(record);
  epoch_loss_sum_ = 0;
  epoch_steps_ = 0;
  epoch_elapsed_ = 0;
  epoch_allreduce_seconds_ = 0;
  if (comm_.is_leader()) {
    spdlog::info(
        "epoch {}/{}  train {:.4f}  val {:.4f}  pseudo-Dice {:.4f}  lr {:.5f}  {:.2f} it/s  loader-wait "
        "{:.0f}%  all-reduce {:.0f}%",
        epoch + 1, config_.training.epochs, record.train_loss, record.val_loss, record.mean_pseudo_dice,
        record.learning_rate, record.iterations_per_second, 100 * record.loader_wait_fraction,
        100 * record.allreduce_fraction);
    write_history();
  }
  if (hooks_.on_epoch) hooks_.on_epoch(record);
}

void Trainer::write_history() const {
  std::string lines;
  for (const EpochRecord& r : history_) lines += r.to_json().dump() + "\n";
  write_file_atomically((std::filesystem::path(job_.out_dir) / "epochs.jsonl").string(), lines);
}

bool Trainer::checkpoint_due(int64_t epochs_finished) const {
  if (epochs_finished % config_.training.checkpoint_every_epochs == 0) return true;
  return seconds_since(last_checkpoint_time_) >= 60.0 * config_.training.checkpoint_every_minutes;
}

TrainOutcome Trainer::run(int64_t stop_at_iteration) {
  const int64_t per_epoch = config_.training.iterations_per_epoch;
  const int64_t end =
      stop_at_iteration < 0 ? total_iterations() : std::min(stop_at_iteration, total_iterations());
  auto epoch_start = std::chrono::steady_clock::now();
  double elapsed_before = epoch_elapsed_;
  epoch_wait_start_ = batches_.wait_seconds();
  while (iteration_ < end) {
    const int64_t epoch = iteration_ / per_epoch;
    for (auto& group : optimizer_->param_groups())
      static_cast<torch::optim::SGDOptions&>(group.options()).lr(learning_rate_for(epoch));
    epoch_loss_sum_ += train_step(batches_.train_batch(iteration_));
    ++epoch_steps_;
    maybe_update_topology();
    if (hooks_.on_step) {
      StepProgress progress;
      progress.epoch = epoch;
      progress.epochs = config_.training.epochs;
      progress.step = iteration_ - epoch * per_epoch;
      progress.steps = per_epoch;
      progress.iteration = iteration_;
      progress.total_iterations = total_iterations();
      progress.mean_loss = epoch_loss_sum_ / epoch_steps_;
      const double seconds = elapsed_before + seconds_since(epoch_start);
      progress.iterations_per_second = seconds > 0 ? epoch_steps_ / seconds : 0;
      hooks_.on_step(progress);
    }
    if (iteration_ % per_epoch == 0) {
      finish_epoch(epoch, elapsed_before + seconds_since(epoch_start));
      if (checkpoint_due(epoch + 1) || iteration_ == total_iterations()) save_checkpoint();
      epoch_start = std::chrono::steady_clock::now();
      elapsed_before = 0;
      epoch_wait_start_ = batches_.wait_seconds();
    }
    if (stop_agreed_ && iteration_ < total_iterations()) {
      epoch_elapsed_ = elapsed_before + seconds_since(epoch_start);
      save_checkpoint();
      return TrainOutcome::Stopped;
    }
  }
  epoch_elapsed_ = elapsed_before + seconds_since(epoch_start);
  if (iteration_ >= total_iterations()) return TrainOutcome::Finished;
  save_checkpoint();
  return TrainOutcome::Stopped;
}

void Trainer::save_checkpoint() {
  last_checkpoint_time_ = std::chrono::steady_clock::now();
  if (!comm_.is_leader()) return;
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive, optimizer_archive;
  net_->save(model_archive);
  optimizer_->save(optimizer_archive);
  archive.write(checkpoint_entry::kModel, model_archive);
  archive.write(checkpoint_entry::kOptimizer, optimizer_archive);
  archive.write(checkpoint_entry::kTopology, tensor_of(dsff_->topology().serialize()));
  archive.write(checkpoint_entry::kRngCpu, at::detail::getDefaultCPUGenerator().get_state());
  std::ostringstream payload;
  archive.save_to(payload);

  nlohmann::json history = nlohmann::json::array();
  for (const EpochRecord& r : history_) history.push_back(r.to_json());
  const nlohmann::json meta = {{"format", kCheckpointFormat},
                               {"experiment", config_.experiment},
                               {"config_hash", config_hash(config_)},
                               {"config", nlohmann::json::parse(config_to_json(config_))},
                               {"fold", job_.fold},
                               {"sparsity", job_.sparsity},
                               {"seed", job_.seed},
                               {"iteration", iteration_},
                               {"total_iterations", total_iterations()},
                               {"topology_updates", topology_updates_},
                               {"topology_hash", dsff_->topology().hash_hex()},
                               {"state_sha256", state_sha256(*net_, optimizer_.get(), dsff_->topology())},
                               {"loss_scale", loss_scaler_.scale()},
                               {"loss_scale_good_steps", loss_scaler_.good_steps()},
                               {"epoch_loss_sum", epoch_loss_sum_},
                               {"epoch_steps", epoch_steps_},
                               {"epoch_elapsed", epoch_elapsed_},
                               {"history", history}};
  write_checkpoint_file(checkpoint_path(), meta, payload.str());
  spdlog::info("checkpoint at iteration {} → {}", iteration_, checkpoint_path());
  if (hooks_.on_checkpoint) hooks_.on_checkpoint(checkpoint_path(), iteration_);
}

void Trainer::load_checkpoint(const std::string& path) {
  const CheckpointFile file = read_checkpoint_file(path);
  const nlohmann::json& meta = file.meta;
  auto mismatch = [&](const std::string& what, const std::string& theirs, const std::string& ours) {
    return InputError(path + ": checkpoint belongs to another job: " + what + " is " + theirs +
                      ", this job's is " + ours);
  };
  check_checkpoint_format(path, meta);
  if (meta.value("config_hash", "") != config_hash(config_))
    throw mismatch("the config hash", meta.value("config_hash", "?"), config_hash(config_));
  if (meta.value("fold", -1) != job_.fold)
    throw mismatch("fold", meta.value("fold", nlohmann::json()).dump(), std::to_string(job_.fold));
  if (meta.value("sparsity", -1.0) != job_.sparsity)
    throw mismatch("sparsity", meta.value("sparsity", nlohmann::json()).dump(),
                   std::to_string(job_.sparsity));
  if (meta.value("seed", uint64_t{0}) != job_.seed || !meta.contains("seed"))
    throw mismatch("seed", meta.value("seed", nlohmann::json()).dump(), std::to_string(job_.seed));
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(file.payload.data(), file.payload.size());
    torch::serialize::InputArchive model_archive, optimizer_archive;
    archive.read(checkpoint_entry::kModel, model_archive);
    archive.read(checkpoint_entry::kOptimizer, optimizer_archive);
    net_->load(model_archive);
    net_->to(device_);
    optimizer_->load(optimizer_archive);
    dsff_->set_topology(read_checkpoint_topology(archive, meta, path));
    torch::Tensor rng;
    archive.read(checkpoint_entry::kRngCpu, rng);
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    generator.set_state(rng);
  } catch (const c10::Error& e) {
    throw InputError(path + ": checkpoint payload does not fit this model: " + e.what_without_backtrace());
  } catch (const std::invalid_argument& e) {
    throw InputError(path + ": checkpoint topology does not fit this model: " + e.what());
  }
  iteration_ = meta.at("iteration");
  topology_updates_ = meta.at("topology_updates");
  epoch_loss_sum_ = meta.at("epoch_loss_sum");
  epoch_steps_ = meta.at("epoch_steps");
  epoch_elapsed_ = meta.at("epoch_elapsed");
  loss_scaler_.restore(meta.value("loss_scale", loss_scaler_.scale()),
                       meta.value("loss_scale_good_steps", int64_t{0}));
  history_.clear();
  for (const auto& r : meta.at("history")) history_.push_back(EpochRecord::from_json(r));
  if (comm_.is_leader()) {
    write_history();
    spdlog::info("resumed {} at iteration {} of {}", path, iteration_, total_iterations());
  }
}

}  // namespace e2e
