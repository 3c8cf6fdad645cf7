// Store throughput: the coordinator's overhead per job (claim → result persisted) and the write rate of
// per-epoch rows. The store lives in $E2E_BENCH_DIR (default: the system temp folder) — put it on the
// filesystem the sweeps use, since commit cost is fsync cost.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "db/store.hpp"

namespace {

namespace fs = std::filesystem;
using namespace e2e;

fs::path bench_folder() {
  const char* dir = std::getenv("E2E_BENCH_DIR");
  const fs::path base = dir ? fs::path(dir) : fs::temp_directory_path();
  const fs::path folder = base / ("e2e_db_bench_" + std::to_string(::getpid()));
  fs::create_directories(folder);
  return folder;
}

struct BenchStore {
  explicit BenchStore(JournalMode journal, const std::string& name) : path((bench_folder() / name).string()) {
    fs::remove(path);
    fs::remove(path + "-wal");
    fs::remove(path + "-shm");
    StoreOptions options;
    options.journal = journal;
    store = std::make_unique<Store>(path, options);
    experiment =
        store->upsert_experiment({"bench", "{\"training\": {\"epochs\": 1000}}", "hash", "", "bench"});
  }
  ~BenchStore() {
    store.reset();
    std::error_code ec;
    fs::remove_all(fs::path(path).parent_path(), ec);
  }

  // Adds `count` more pending jobs (new folds), for claims to take.
  void add_jobs(int count) {
    std::vector<int> folds;
    for (int i = 0; i < count; ++i) folds.push_back(next_fold++);
    store->enumerate_jobs(experiment, {folds, {0.8}, {0}, 3});
  }

  std::string path;
  std::unique_ptr<Store> store;
  int64_t experiment = 0;
  int next_fold = 0;
};

// The masked tensors of the AMOS E2ENet (levels of 48, 96, 192, 320, 320, 320 channels) at density 0.2.
Topology amos_topology() {
  const int64_t channels[] = {48, 96, 192, 320, 320, 320};
  std::mt19937_64 rng(7);
  std::bernoulli_distribution active(0.2);
  Topology topology;
  const auto add = [&](const std::string& name, int64_t rows, int64_t cols) {
    TensorMask mask(name, rows, cols);
    for (int64_t k = 0; k < mask.size(); ++k) mask.set(k, active(rng));
    topology.tensors.push_back(std::move(mask));
  };
  for (int stage = 1; stage <= 5; ++stage)
    for (int column = 1; column <= stage; ++column) {
      const int level = stage - column;
      const std::string node = "x" + std::to_string(level) + "_" + std::to_string(column);
      const int64_t c = channels[level];
      add(node + ".up", channels[level + 1], c);
      add(node + ".conv0", c, 2 * c + (level > 0 ? channels[level - 1] : 0));
      if (stage == 5) add(node + ".conv1", c, c);
    }
  return topology;
}

// A validation of 24 cases × 15 classes, as on AMOS.
JobResult full_result(const Topology& topology) {
  JobResult result;
  result.summary.mean_dice = 0.88;
  result.summary.mean_nsd = 0.76;
  result.summary.mean_hd95 = 4.2;
  result.summary.params = 9445351;
  result.summary.flops = 778.742e9;
  result.summary.patch = {128, 128, 128};
  for (int c = 0; c < 24; ++c)
    for (int k = 1; k <= 15; ++k)
      result.case_metrics.push_back(
          {"amos_" + std::to_string(c), "class_" + std::to_string(k), false, 0.8, 0.7, 1.0, 3.0, "surfel"});
  result.final_masks = MaskSnapshot{500, MaskKind::Final, topology};
  return result;
}

// Coordinator overhead of one job: claim (one transaction), leader reports its node, result + case metrics +
// final masks + done in one transaction. Arg 0: summary only; 1: 360 case rows and the AMOS topology.
void BM_ClaimToResult(benchmark::State& state) {
  BenchStore bench(JournalMode::Wal, "claim.db");
  const Topology topology = amos_topology();
  const JobResult result =
      state.range(0) ? full_result(topology) : JobResult{full_result(topology).summary, {}, {}};
  for (auto _ : state) {
    std::optional<ClaimedJob> job = bench.store->claim_next(bench.experiment, 1, "node");
    if (!job) {
      state.PauseTiming();
      bench.add_jobs(1000);
      state.ResumeTiming();
      job = bench.store->claim_next(bench.experiment, 1, "node");
    }
    bench.store->mark_running(job->job.id, "gpu-node-1");
    bench.store->record_result(job->job.id, result);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["blob_kB"] = static_cast<double>(topology.serialize().size()) / 1024.0;
}
BENCHMARK(BM_ClaimToResult)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// One epoch row per transaction, as the coordinator writes PROGRESS messages. Arg: 0 WAL, 1 rollback journal.
void BM_EpochRecordWrites(benchmark::State& state) {
  BenchStore bench(state.range(0) ? JournalMode::Rollback : JournalMode::Wal, "epochs.db");
  bench.add_jobs(1);
  const int64_t job = bench.store->claim_next(bench.experiment, 1)->job.id;
  EpochRecord row{0, 0.8, 0.7, std::vector<double>(15, 0.8), 0.8, 0.01, 95.0, 0.05};
  for (auto _ : state) {
    bench.store->record_epoch(job, row);
    ++row.epoch;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(state.range(0) ? "rollback journal" : "WAL");
}
BENCHMARK(BM_EpochRecordWrites)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Epoch rows in batches of 100 per transaction (bundle import, record_epochs).
void BM_EpochRecordBatches(benchmark::State& state) {
  BenchStore bench(JournalMode::Wal, "batches.db");
  bench.add_jobs(1);
  const int64_t job = bench.store->claim_next(bench.experiment, 1)->job.id;
  std::vector<EpochRecord> batch(
      100, EpochRecord{0, 0.8, 0.7, std::vector<double>(15, 0.8), 0.8, 0.01, 95.0, 0.05});
  int64_t epoch = 0;
  for (auto _ : state) {
    for (EpochRecord& row : batch) row.epoch = epoch++;
    bench.store->record_epochs(job, batch);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch.size()));
}
BENCHMARK(BM_EpochRecordBatches)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
