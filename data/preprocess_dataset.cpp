// The whole-dataset run of e2e preprocess: input hashing, fingerprint, plan, parallel per-case
// preprocessing with one HDF5 writer, splits, and the atomic publication of the store.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "common/file_io.hpp"
#include "configs/hash.hpp"
#include "data/folds.hpp"
#include "data/preprocess_dataset.hpp"

namespace e2e {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Part of the input hash: bump whenever the stored results of the same inputs would change.
constexpr const char* kPipelineVersion = "e2e-preprocess-1";
constexpr uint64_t kFingerprintSeed = 1234;
constexpr const char* kPartialSuffix = ".partial-";
// In the input hash in place of the fields a config leaves to the plan: bump when the planner's rules change.
constexpr const char* kPlanner = "plan:nnunet-v1-3d-v2.1";

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string shape_text(const Shape3& s) {
  return fmt::format("{}x{}x{}", s[0], s[1], s[2]);
}
std::string spacing_text(const Spacing3& s) {
  return fmt::format("{:.4g}x{:.4g}x{:.4g}", s[0], s[1], s[2]);
}

// Runs produce(i) for i in [0, n) on `workers` threads and hands every result to consume(i, result) on the
// calling thread, with at most `workers` results waiting. The first exception (from either side) stops the
// run and is rethrown once every thread has ended.
template <typename Result>
void run_parallel(std::size_t n, int workers, const std::function<Result(std::size_t)>& produce,
                  const std::function<void(std::size_t, Result&)>& consume) {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::pair<std::size_t, Result>> ready;
  std::size_t next = 0;
  bool stop = false;
  std::exception_ptr error;
  const auto fail = [&](const std::exception_ptr& e) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!error) error = e;
    stop = true;
    changed.notify_all();
  };
  const auto work = [&] {
    while (true) {
      std::size_t index = 0;
      {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return stop || ready.size() < static_cast<std::size_t>(workers); });
        if (stop || next >= n) return;
        index = next++;
      }
      try {
        Result result = produce(index);
        std::lock_guard<std::mutex> lock(mutex);
        ready.emplace_back(index, std::move(result));
        changed.notify_all();
      } catch (...) {
        fail(std::current_exception());
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < workers; ++t) threads.emplace_back(work);
  try {
    for (std::size_t consumed = 0; consumed < n; ++consumed) {
      std::unique_lock<std::mutex> lock(mutex);
      changed.wait(lock, [&] { return stop || !ready.empty(); });
      if (stop) break;
      std::pair<std::size_t, Result> item = std::move(ready.front());
      ready.pop_front();
      changed.notify_all();
      lock.unlock();
      consume(item.first, item.second);
    }
  } catch (...) {
    fail(std::current_exception());
  }
  for (std::thread& thread : threads) thread.join();
  if (error) std::rethrow_exception(error);
}

int worker_count(int requested, std::size_t cases) {
  int workers = requested > 0 ? requested : static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, std::min(workers, static_cast<int>(std::max<std::size_t>(cases, 1))));
}

bool effective_compress(const PreprocessOptions& options) {
  return options.compress || (options.config && options.config->data.compress);
}

// What the stored results depend on besides the input files.
json settings_json(const PreprocessOptions& options) {
  json settings = {{"pipeline", kPipelineVersion},
                   {"fingerprint_seed", kFingerprintSeed},
                   {"max_intensity_samples_per_case", kMaxIntensitySamplesPerCase},
                   {"compress", effective_compress(options)}};
  if (options.config) {
    const Config& c = *options.config;
    const auto value_or_plan = [&](bool planned, const json& value) {
      return planned && !c.planned.applied ? json(kPlanner) : value;
    };
    settings["patch_size"] = value_or_plan(c.planned.patch_size, c.training.patch_size);
    settings["batch_size"] = value_or_plan(c.planned.batch_size, c.training.batch_size);
    settings["pools"] = value_or_plan(c.planned.pools, c.model.pools);
    if (c.data.target_spacing) settings["target_spacing"] = *c.data.target_spacing;
    if (!c.data.test_cases.empty()) settings["test_cases"] = c.data.test_cases;
  }
  return settings;
}

// SHA-256 over the settings, dataset.json and the contents of every training file (hashed in parallel).
std::string input_hash(const RawDataset& dataset, const PreprocessOptions& options, int workers) {
  std::vector<std::string> files = {(fs::path(dataset.root) / "dataset.json").string()};
  for (const RawCase& c : dataset.training) {
    files.insert(files.end(), c.image_files.begin(), c.image_files.end());
    files.push_back(c.label_file);
  }
  if (!options.splits_file.empty()) files.push_back(options.splits_file);
  std::vector<std::string> digests(files.size());
  run_parallel<std::string>(
      files.size(), workers, [&](std::size_t i) { return sha256_file(files[i]); },
      [&](std::size_t i, std::string& digest) { digests[i] = digest; });
  Sha256 hash;
  hash.update(settings_json(options).dump() + "\n");
  for (const RawCase& c : dataset.training) hash.update("case " + c.id + "\n");
  for (std::size_t i = 0; i < files.size(); ++i)
    hash.update(fs::path(files[i]).filename().string() + " " + digests[i] + "\n");
  return hash.hex_digest();
}

std::vector<std::string> training_ids(const RawDataset& dataset) {
  std::vector<std::string> ids;
  for (const RawCase& c : dataset.training) ids.push_back(c.id);
  return ids;
}

bool is_held_out(const PreprocessOptions& options, const std::string& id) {
  if (!options.config) return false;
  const std::vector<std::string>& held_out = options.config->data.test_cases;
  return std::find(held_out.begin(), held_out.end(), id) != held_out.end();
}

// nnU-Net's KFold(5) or the imported splits file, checked against the dataset's cases.
std::vector<FoldSplit> make_splits(const RawDataset& dataset, const PreprocessOptions& options) {
  const std::vector<std::string> ids = training_ids(dataset);
  if (!options.splits_file.empty()) {
    std::vector<FoldSplit> splits = read_splits_json(options.splits_file);
    const std::set<std::string> known(ids.begin(), ids.end());
    for (const FoldSplit& split : splits)
      for (const auto* list : {&split.train, &split.val})
        for (const std::string& id : *list)
          if (!known.count(id))
            throw InputError(fmt::format(
                "{}: case '{}' is {} of {}", options.splits_file, id,
                is_held_out(options, id) ? "a held-out test case (data.test_cases)" : "not a training case",
                dataset.root));
    return splits;
  }
  if (ids.size() >= 5) return kfold_splits(ids);
  if (ids.size() >= 2) {
    spdlog::warn("only {} training cases: using {} folds (leave one out) instead of 5", ids.size(),
                 ids.size());
    return kfold_splits(ids, static_cast<int>(ids.size()));
  }
  spdlog::warn("only one training case: its single fold trains and validates on it");
  return {FoldSplit{ids, ids}};
}

struct Outputs {
  std::string store;
  std::string plan;
  std::string fingerprint;
  std::string splits;
  explicit Outputs(const std::string& dir)
      : store((fs::path(dir) / kCaseStoreFile).string()),
        plan((fs::path(dir) / "plan.json").string()),
        fingerprint((fs::path(dir) / "fingerprint.json").string()),
        splits((fs::path(dir) / "splits_final.json").string()) {}
};

bool same_splits(const std::vector<FoldSplit>& a, const std::vector<FoldSplit>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].train != b[i].train || a[i].val != b[i].val) return false;
  return true;
}

bool splits_file_matches(const std::string& path, const std::vector<FoldSplit>& splits) {
  try {
    return same_splits(read_splits_json(path), splits);
  } catch (const InputError&) {  // missing, unreadable or not splits: rewrite it
    return false;
  }
}

// The human-readable copies next to the store, rewritten from the store's own texts when they differ.
void write_side_files(const Outputs& out, const std::string& plan, const std::string& fingerprint,
                      const std::string& splits) {
  if (try_read_file(out.plan) != plan) write_file_atomically(out.plan, plan);
  if (try_read_file(out.fingerprint) != fingerprint) write_file_atomically(out.fingerprint, fingerprint);
  const std::vector<FoldSplit> folds = parse_splits_json(splits, out.store + ": splits_final.json");
  if (!splits_file_matches(out.splits, folds)) write_splits_json(out.splits, folds);
}

// The existing store, when it is complete and was made from the same inputs and settings.
std::optional<PreprocessResult> reuse_existing(const Outputs& out, const std::string& hash) {
  std::error_code ec;
  if (!fs::exists(out.store, ec)) return std::nullopt;
  try {
    const CaseStoreReader store(out.store);
    if (!store.has_text("input_hash") || store.text("input_hash") != hash) {
      spdlog::info("{} was made from other inputs or settings: preprocessing again", out.store);
      return std::nullopt;
    }
    PreprocessResult result;
    result.store_path = out.store;
    result.reused = true;
    result.cases = static_cast<int64_t>(store.case_ids().size());
    const std::string plan = store.text("plan.json");
    result.plan = plan_from_json(json::parse(plan));
    write_side_files(out, plan, store.text("fingerprint.json"), store.text("splits_final.json"));
    return result;
  } catch (const std::exception& e) {
    spdlog::warn("{} is unreadable ({}): preprocessing again", out.store, e.what());
    return std::nullopt;
  }
}

void remove_stale_partials(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find(kPartialSuffix) == std::string::npos) continue;
    spdlog::info("removing {} left by an interrupted run", entry.path().string());
    fs::remove(entry.path(), ec);
  }
}

struct FingerprintPart {
  CaseFingerprint shape;
  std::vector<std::vector<float>> samples;
};

CroppedCase load_and_crop(const RawDataset& dataset, const RawCase& raw) {
  return crop_to_nonzero(load_raw_case(dataset, raw), raw.image_files);
}

Fingerprint compute_fingerprint(const RawDataset& dataset, int workers) {
  const Clock::time_point start = Clock::now();
  const std::size_t n = dataset.training.size();
  std::vector<FingerprintPart> parts(n);
  run_parallel<FingerprintPart>(
      n, workers,
      [&](std::size_t i) {
        const CroppedCase c = load_and_crop(dataset, dataset.training[i]);
        FingerprintPart part;
        part.shape = {c.id, c.geometry.spacing, c.geometry.shape, c.image.shape};
        part.samples = foreground_samples(c, kFingerprintSeed);
        return part;
      },
      [&](std::size_t i, FingerprintPart& part) {
        spdlog::debug("fingerprint: {} cropped {} → {}", part.shape.id, shape_text(part.shape.original_shape),
                      shape_text(part.shape.cropped_shape));
        parts[i] = std::move(part);
      });
  Fingerprint fingerprint;
  fingerprint.channel_names = dataset.channel_names;
  fingerprint.labels = dataset.labels;
  for (std::size_t ch = 0; ch < dataset.channel_names.size(); ++ch) {
    std::vector<float> pooled;  // in case order, so the statistics do not depend on thread timing
    for (FingerprintPart& part : parts) {
      pooled.insert(pooled.end(), part.samples[ch].begin(), part.samples[ch].end());
      std::vector<float>().swap(part.samples[ch]);
    }
    fingerprint.intensity.push_back(intensity_stats(pooled));
  }
  for (FingerprintPart& part : parts) fingerprint.cases.push_back(part.shape);
  spdlog::info("fingerprint of {} cases in {:.1f} s", n, seconds_since(start));
  return fingerprint;
}

void log_plan(const Plan& plan) {
  spdlog::info("plan: target spacing {} mm, median shape {}, patch {}, batch {}",
               spacing_text(plan.target_spacing), shape_text(plan.median_shape), shape_text(plan.patch_size),
               plan.batch_size);
  for (std::size_t c = 0; c < plan.channel_names.size(); ++c)
    spdlog::info(
        "plan: channel {} ({}): {} normalization{}, foreground mean {:.4g} std {:.4g} [{:.4g}, {:.4g}]", c,
        plan.channel_names[c], plan.normalization[c],
        plan.use_nonzero_mask[c] ? " inside the non-zero mask" : "", plan.intensity[c].mean,
        plan.intensity[c].std, plan.intensity[c].p00_5, plan.intensity[c].p99_5);
}

// Half the patch per axis: a random patch then touches at most 3 chunks per axis.
Shape3 chunk_shape(const Plan& plan) {
  Shape3 chunk;
  for (int a = 0; a < 3; ++a) chunk[a] = std::max<int64_t>(1, (plan.patch_size[a] + 1) / 2);
  return chunk;
}

struct CaseResult {
  PreprocessedCase data;
  CaseMeta meta;
  double seconds = 0.0;
};

void write_cases(const RawDataset& dataset, const Plan& plan, int workers, CaseStoreWriter& writer) {
  const std::size_t n = dataset.training.size();
  std::size_t done = 0;
  run_parallel<CaseResult>(
      n, workers,
      [&](std::size_t i) {
        const Clock::time_point start = Clock::now();
        CaseResult result;
        result.data = preprocess_case(load_and_crop(dataset, dataset.training[i]), plan, &result.meta);
        result.seconds = seconds_since(start);
        return result;
      },
      [&](std::size_t, CaseResult& result) {
        writer.write_case(result.data, result.meta);
        spdlog::info("[{}/{}] {}: {} → {} ({:.1f} s)", ++done, n, result.meta.id,
                     shape_text(result.meta.geometry.shape), shape_text(result.meta.shape), result.seconds);
      });
}

// Writes the complete store under a temporary name next to the target, then publishes it.
void build_store(const RawDataset& dataset, const PreprocessOptions& options,
                 const std::vector<FoldSplit>& splits, const Outputs& out, const std::string& hash,
                 int workers, PreprocessResult& result) {
  const std::string temporary = out.store + kPartialSuffix + std::to_string(::getpid());
  try {
    const Fingerprint fingerprint = compute_fingerprint(dataset, workers);
    result.plan = make_plan(fingerprint, options.config);
    log_plan(result.plan);
    const std::string plan_text = to_json(result.plan).dump(2);
    const std::string fingerprint_text = to_json(fingerprint).dump(2);
    const std::string splits_text = splits_json_text(splits);
    {
      CaseStoreWriter writer(temporary, {effective_compress(options), chunk_shape(result.plan)});
      write_cases(dataset, result.plan, workers, writer);
      writer.write_text("plan.json", plan_text);
      writer.write_text("fingerprint.json", fingerprint_text);
      writer.write_text("splits_final.json", splits_text);
      writer.write_text("input_hash", hash);
      writer.close();
    }
    fsync_path(temporary);
    // The old store goes first and the new one is renamed in last, so whenever cases.h5 exists the side
    // files next to it belong to it.
    std::error_code ec;
    fs::remove(out.store, ec);
    write_side_files(out, plan_text, fingerprint_text, splits_text);
    fs::rename(temporary, out.store, ec);
    if (ec) throw InputError(fmt::format("{}: cannot rename into place ({})", out.store, ec.message()));
    fsync_path(fs::path(out.store).parent_path());
  } catch (...) {
    std::error_code ec;
    fs::remove(temporary, ec);
    throw;
  }
}

}  // namespace

PreprocessResult preprocess_dataset(const PreprocessOptions& options) {
  const Clock::time_point start = Clock::now();
  if (options.out_dir.empty()) throw ConfigError("preprocess: --out: expected an output folder");
  RawDataset dataset = read_raw_dataset(options.dataset_dir);
  if (options.config) hold_out_training_cases(dataset, options.config->data.test_cases);
  if (dataset.training.empty())
    throw InputError(fmt::format("{}/dataset.json: the training list is empty", dataset.root));
  const int workers = worker_count(options.workers, dataset.training.size());
  spdlog::info("preprocess: {} ({}), {} training cases, {} channel(s), {} worker(s) → {}", dataset.name,
               to_string(dataset.format), dataset.training.size(), dataset.channel_count(), workers,
               options.out_dir);

  const std::vector<FoldSplit> splits = make_splits(dataset, options);
  const Outputs out(options.out_dir);
  const std::string hash = input_hash(dataset, options, workers);
  if (std::optional<PreprocessResult> reused = reuse_existing(out, hash)) {
    spdlog::info("{} is up to date with the inputs ({} cases): nothing to do", out.store, reused->cases);
    return *reused;
  }

  std::error_code ec;
  const bool created_dir = !fs::exists(options.out_dir, ec);
  fs::create_directories(options.out_dir, ec);
  if (ec)
    throw InputError(fmt::format("{}: cannot create the output folder ({})", options.out_dir, ec.message()));
  remove_stale_partials(options.out_dir);
  PreprocessResult result;
  result.store_path = out.store;
  result.cases = static_cast<int64_t>(dataset.training.size());
  try {
    build_store(dataset, options, splits, out, hash, workers, result);
  } catch (...) {
    if (created_dir && fs::is_empty(options.out_dir, ec)) fs::remove(options.out_dir, ec);
    throw;
  }
  spdlog::info("wrote {} ({:.1f} MB, {} cases) in {:.1f} s", out.store,
               static_cast<double>(fs::file_size(out.store, ec)) / 1e6, result.cases, seconds_since(start));
  return result;
}

}  // namespace e2e
