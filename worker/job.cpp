#include "worker/job.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <thread>

#include "common/file_io.hpp"
#include "data/plan.hpp"
#include "model/complexity.hpp"
#include "worker/checkpoint.hpp"
#include "worker/data_source.hpp"
#include "worker/validation.hpp"

namespace e2e {

namespace {

int default_loader_threads(int ranks) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, ranks) - 1);
}

}  // namespace

double summary_number(const nlohmann::json& report, const std::string& key) {
  if (!report.contains("summary") || !report["summary"].contains(key)) return std::nan("");
  const nlohmann::json& value = report["summary"][key];
  return value.is_number() ? value.get<double>() : std::nan("");
}

JobRun run_job(const Config& given, const JobSpec& job, Communicator& comm, const std::atomic<bool>* stop,
               const TrainerHooks& hooks, const JobOptions& options) {
  if (given.training.threads > 0) at::set_num_threads(given.training.threads);
  std::string store_dir;
  if (comm.is_leader()) store_dir = ensure_preprocessed(given, options.preprocess_workers);
  comm.broadcast_bytes(store_dir, 0);
  // Patch, batch and pools the config leaves out come from the dataset's plan, once, for everything below.
  const Config config = apply_store_plan(given, store_dir);
  const FoldData fold = open_fold(config, store_dir, job.fold);

  const int threads =
      options.loader_threads > 0 ? options.loader_threads : default_loader_threads(comm.size());
  LoaderBatchSource batches(config, fold, job.seed, comm.rank(), comm.size(), threads);
  Trainer trainer(config, job, batches, comm, stop, hooks);

  JobRun result;
  result.outcome = trainer.run();
  result.history = trainer.history();
  result.iteration = trainer.iteration();
  result.checkpoint_path = trainer.checkpoint_path();
  result.topology = trainer.dsff().topology().serialize();
  if (result.outcome != TrainOutcome::Finished) return result;

  ValidationOptions validation;
  validation.out_dir = job.out_dir;
  validation.mirror_tta = config.eval.tta;
  validation.step_fraction = config.eval.step_fraction;
  validation.device = trainer.device();
  nlohmann::json report = validate_fold(trainer.net(), config, fold, validation, comm);
  if (!comm.is_leader()) return result;

  const Complexity complexity =
      count_complexity(trainer.net()->layers(), config.training.patch_size, trainer.dsff().active_kernels());
  report["job"] = {
      {"experiment", config.experiment}, {"fold", job.fold}, {"sparsity", job.sparsity}, {"seed", job.seed}};
  report["complexity"] = {{"params", complexity.params},
                          {"params_m", complexity.params / 1e6},
                          {"flops", complexity.flops},
                          {"gflops", complexity.gflops()},
                          {"patch", config.training.patch_size}};
  report["topology_hash"] = trainer.dsff().topology().hash_hex();
  const InferenceTiming timing = time_inference(trainer.net(), config.training.patch_size);
  report["inference_timing"] = to_json(timing);
  const Int3& patch = config.training.patch_size;
  spdlog::info(
      "inference per {}x{}x{} patch on {}: dense {:.1f} ms, sparse {:.1f} ms ({} of {} masked layers "
      "sparse)",
      patch[0], patch[1], patch[2], timing.device, timing.ms_per_patch_dense, timing.ms_per_patch_sparse,
      timing.sparse_layers, timing.masked_layers);
  write_file_atomically((std::filesystem::path(job.out_dir) / "metrics.json").string(),
                        report.dump(2) + "\n");
  spdlog::info("fold {} sparsity {}: mDice {:.4f}  mNSD {:.4f}  params {}  GFLOPs {:.3f}", job.fold,
               job.sparsity, summary_number(report, "mean_dice"), summary_number(report, "mean_nsd"),
               complexity.params, complexity.gflops());
  result.metrics = report;
  return result;
}

}  // namespace e2e
