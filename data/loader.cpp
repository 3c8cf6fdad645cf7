#include "data/loader.hpp"

#include <fmt/format.h>

#include <chrono>

namespace e2e {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string format_shape(const Shape3& s) {
  return fmt::format("[{}, {}, {}]", s[0], s[1], s[2]);
}

void require_positive_shape(const Shape3& shape, const std::string& field) {
  if (shape[0] <= 0 || shape[1] <= 0 || shape[2] <= 0) {
    throw InputError(fmt::format("{}: expected 3 positive integers, got {}", field, format_shape(shape)));
  }
}

DrawKey sample_key(const LoaderOptions& options, int64_t iteration, int64_t global_sample) {
  return {options.seed, options.validation ? uint64_t{1} : uint64_t{0}, iteration, global_sample};
}

std::vector<std::shared_ptr<const PreprocessedCase>> load_cases(const CaseSource& source,
                                                                const LoaderOptions& options,
                                                                int64_t iteration, const BatchSlice& slice) {
  std::vector<std::shared_ptr<const PreprocessedCase>> cases;
  for (int64_t g = slice.begin; g < slice.end; ++g) {
    Rng rng(draw_seed(sample_key(options, iteration, g), DrawStream::kCase));
    const std::size_t index = rng.below(source.size());
    auto c = source.load(index);
    if (!c)
      throw InputError(
          fmt::format("case source: case {} ({}) could not be loaded", index, source.case_id(index)));
    check_case(*c);
    if (!cases.empty() && c->image.channels != cases.front()->image.channels) {
      throw InputError(fmt::format("case {}: {} image channels, but case {} has {}", c->id, c->image.channels,
                                   cases.front()->id, cases.front()->image.channels));
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

Batch empty_batch(const LoaderOptions& options, int64_t iteration, int64_t size, int64_t channels,
                  const Shape3& box) {
  Batch batch;
  batch.iteration = iteration;
  batch.size = size;
  batch.channels = channels;
  batch.patch = options.patch_size;
  batch.box = box;
  batch.image.resize(static_cast<std::size_t>(size * channels * voxel_count(box)));
  batch.label.resize(static_cast<std::size_t>(size * voxel_count(box)));
  batch.target_shapes = options.target_shapes;
  for (const Shape3& shape : options.target_shapes) {
    batch.targets.emplace_back(static_cast<std::size_t>(size * voxel_count(shape)));
  }
  return batch;
}

// make_batch with a cancel flag checked between samples (returns an incomplete batch when cancelled).
Batch build_batch(const CaseSource& source, const LoaderOptions& options, int64_t iteration,
                  const std::atomic<bool>* cancel) {
  const BatchSlice slice = rank_slice(options.global_batch_size, options.rank, options.ranks);
  const auto cases = load_cases(source, options, iteration, slice);
  const AugmentOptions augment = options.validation ? no_augmentation(options.augment) : options.augment;
  const bool crop_only = options.crop_only && !options.validation;
  const Shape3& patch = options.patch_size;
  const Shape3 sampling = sampling_size(patch, augment);
  const bool dummy_2d = is_dummy_2d(patch);

  Batch batch = empty_batch(options, iteration, slice.size(), cases.front()->image.channels,
                            crop_only ? sampling : patch);
  for (int64_t j = 0; j < batch.size; ++j) {
    if (cancel && cancel->load()) return batch;
    const int64_t g = slice.begin + j;
    const DrawKey key = sample_key(options, iteration, g);
    const PreprocessedCase& c = *cases[j];
    const bool forced =
        must_contain_foreground(g, options.global_batch_size, options.foreground_oversampling);
    Rng placement_rng(draw_seed(key, DrawStream::kPlacement));
    const PatchPlacement placement = place_patch(c, patch, sampling, forced, placement_rng);
    const PatchRef out = batch.sample(j);
    const AugmentDraw draw = draw_augmentation(augment, key, batch.channels, dummy_2d);
    if (crop_only) {
      crop_case(c, placement.box_lo, out);
      batch.keys.push_back(key);
      batch.draws.push_back(draw);
    } else {
      augment_patch(c, placement.patch_lo, augment, draw, key, out);
    }
    for (std::size_t k = 0; k < options.target_shapes.size(); ++k) {
      const Shape3& shape = options.target_shapes[k];
      downsample_nearest(out.label, patch, batch.targets[k].data() + j * voxel_count(shape), shape);
    }
    batch.case_ids.push_back(c.id);
    batch.global_samples.push_back(g);
    batch.placements.push_back(placement);
  }
  return batch;
}

}  // namespace

void validate(const LoaderOptions& o) {
  require_positive_shape(o.patch_size, "loader.patch_size");
  if (o.global_batch_size < 1) {
    throw InputError(
        fmt::format("loader.global_batch_size: expected a positive integer, got {}", o.global_batch_size));
  }
  rank_slice(o.global_batch_size, o.rank, o.ranks);
  if (!(o.foreground_oversampling >= 0.0 && o.foreground_oversampling <= 1.0)) {
    throw InputError(fmt::format("loader.foreground_oversampling: expected a fraction in [0, 1], got {}",
                                 o.foreground_oversampling));
  }
  if (o.first_iteration < 0) {
    throw InputError(
        fmt::format("loader.first_iteration: expected an iteration >= 0, got {}", o.first_iteration));
  }
  for (std::size_t k = 0; k < o.target_shapes.size(); ++k) {
    require_positive_shape(o.target_shapes[k], fmt::format("loader.target_shapes[{}]", k));
  }
  if (o.threads < 0)
    throw InputError(fmt::format("loader.threads: expected >= 0 (0 = automatic), got {}", o.threads));
  if (o.queue_depth < 1) {
    throw InputError(fmt::format("loader.queue_depth: expected a positive integer, got {}", o.queue_depth));
  }
  validate(o.augment);
  if (o.crop_only && !o.target_shapes.empty()) {
    throw InputError(
        "loader.target_shapes: deep-supervision targets need the augmented label; with "
        "loader.crop_only (device augmentation) make them after augmenting");
  }
  if (!o.crop_only && !o.validation && o.augment.elastic_probability > 0.0) {
    throw InputError(
        fmt::format("augment.elastic_probability: {} needs device augmentation "
                    "(data.augment_device: cuda); the CPU augmenter has no elastic deformation",
                    o.augment.elastic_probability));
  }
}

Batch make_batch(const CaseSource& source, const LoaderOptions& options, int64_t iteration) {
  validate(options);
  if (source.size() == 0) throw InputError("case source: no cases to sample from");
  return build_batch(source, options, iteration, nullptr);
}

BatchLoader::BatchLoader(std::shared_ptr<const CaseSource> source, LoaderOptions options)
    : source_(std::move(source)), options_(std::move(options)) {
  validate(options_);
  if (!source_ || source_->size() == 0) throw InputError("case source: no cases to sample from");
  int threads = options_.threads;
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  window_ = std::max<int64_t>(options_.queue_depth, threads);
  next_claim_ = next_delivery_ = options_.first_iteration;
  period_start_ = now_seconds();
  try {
    for (int t = 0; t < threads; ++t) workers_.emplace_back([this] { work(); });
  } catch (...) {
    stopping_ = true;
    window_open_.notify_all();
    for (auto& worker : workers_) worker.join();
    throw;
  }
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  window_open_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void BatchLoader::work() {
  while (true) {
    int64_t iteration = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      window_open_.wait(
          lock, [this] { return stopping_ || worker_failed_ || next_claim_ < next_delivery_ + window_; });
      if (stopping_ || worker_failed_) return;
      iteration = next_claim_++;
    }
    Slot slot;
    try {
      slot.batch = build_batch(*source_, options_, iteration, &stopping_);
    } catch (...) {
      slot.error = std::current_exception();
    }
    const bool failed = slot.error != nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      worker_failed_ = worker_failed_ || failed;
      finished_.emplace(iteration, std::move(slot));
    }
    batch_ready_.notify_all();
    if (failed) window_open_.notify_all();  // idle workers see the failure and exit
  }
}

Batch BatchLoader::next() {
  const double start = now_seconds();
  Slot slot;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (delivered_error_) std::rethrow_exception(delivered_error_);
    batch_ready_.wait(lock, [this] { return finished_.count(next_delivery_) > 0; });
    auto it = finished_.find(next_delivery_);
    slot = std::move(it->second);
    finished_.erase(it);
    ++next_delivery_;
    wait_seconds_ += now_seconds() - start;
    if (slot.error) {
      delivered_error_ = slot.error;
      std::rethrow_exception(slot.error);
    }
    ++batches_;
  }
  window_open_.notify_all();
  return std::move(slot.batch);
}

LoaderStats BatchLoader::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {wait_seconds_, now_seconds() - period_start_, batches_};
}

LoaderStats BatchLoader::take_stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  const double now = now_seconds();
  const LoaderStats result{wait_seconds_, now - period_start_, batches_};
  wait_seconds_ = 0.0;
  batches_ = 0;
  period_start_ = now;
  return result;
}

}  // namespace e2e
