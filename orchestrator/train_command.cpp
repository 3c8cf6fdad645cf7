// e2e train: one job (fold × sparsity × seed); under mpirun/srun with several ranks it trains data-parallel.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "common/version.hpp"
#include "configs/config.hpp"
#include "configs/config_json.hpp"
#include "configs/hash.hpp"
#include "db/bundle.hpp"
#include "orchestrator/commands.hpp"
#include "orchestrator/job_records.hpp"
#include "orchestrator/run_folders.hpp"
#include "orchestrator/signals.hpp"
#include "worker/job.hpp"
#include "worker/mpi_communicator.hpp"
#include "worker/progress.hpp"

namespace e2e {

namespace {

struct TrainOptions {
  std::string config_path;
  int fold = 0;
  double sparsity = -1;
  uint64_t seed = 0;
  bool seed_given = false;
  std::string out;
  bool resume = false;
  int loader_threads = 0;
  std::string bundle;
};

// A result bundle (db/bundle.hpp) of this job, for `e2e db import`: done with its result, or failed with
// the error. Written by the leader only.
void write_bundle(const std::string& dir, const Config& config, const JobSpec& job, const JobRun* run,
                  const std::string& error) {
  ResultBundle bundle;
  bundle.experiment.name = config.experiment;
  bundle.experiment.config_json = config_to_json(config);
  bundle.experiment.config_hash = config_hash(config);
  bundle.experiment.code_version = kCodeVersion;
  bundle.fold = job.fold;
  bundle.sparsity = job.sparsity;
  bundle.seed = job.seed;
  bundle.max_attempts = config.sweep.max_attempts;
  bundle.node = host_name();
  bundle.status = run ? JobStatus::Done : JobStatus::Failed;
  bundle.error = error;
  bundle.attempts = run ? 0 : 1;
  const std::string checkpoint = (std::filesystem::path(job.out_dir) / "checkpoint.ckpt").string();
  if (run) {
    bundle.checkpoint = Checkpoint{run->checkpoint_path, sha256_file(run->checkpoint_path), run->iteration};
    bundle.epochs = run->history;
    const int64_t updates = run->history.empty() ? 0 : run->history.back().topology_updates;
    bundle.result = to_store_result(run->metrics, run->topology, updates);
  }
  write_result_bundle(dir, bundle);
  spdlog::info("result bundle → {}", dir);
}

int run_train(const TrainOptions& options) {
  const Config config = load_config(options.config_path);
  if (!(options.sparsity >= 0.0 && options.sparsity < 1.0))
    throw ConfigError(fmt::format("--sparsity: expected a value in [0, 1), got {}", options.sparsity));
  if (options.fold < 0 || options.fold > 4)
    throw ConfigError(fmt::format("--fold: expected 0..4, got {}", options.fold));
  JobSpec job;
  job.fold = options.fold;
  job.sparsity = options.sparsity;
  job.seed = options.seed_given ? options.seed : config.training.seed;
  job.resume = options.resume;
  job.out_dir = options.out.empty() ? job_folder(default_runs_dir(config.store.path), config.experiment,
                                                 job.fold, job.sparsity, job.seed)
                                    : options.out;

  const std::atomic<bool>* stop = install_stop_signal_handlers();
  ensure_mpi_initialized();
  std::unique_ptr<Communicator> comm = make_job_communicator(MPI_COMM_WORLD);
  if (comm->is_leader())
    spdlog::info("train {} fold {} sparsity {} seed {} on {} rank(s) ({}) → {}", config.experiment, job.fold,
                 job.sparsity, job.seed, comm->size(), comm->backend(), job.out_dir);
  JobOptions job_options;
  job_options.loader_threads = options.loader_threads;
  // A bar on a terminal, drawn by the leader only (under mpirun: when mpirun's own output is a terminal);
  // logs and pipes get one line per epoch.
  TrainerHooks hooks;
  std::unique_ptr<ProgressBar> bar;
  if (comm->is_leader()) {
    const TerminalInfo terminal = output_terminal(1);
    if (terminal.terminal) {
      bar = std::make_unique<ProgressBar>(terminal);
      hooks.on_step = [&bar](const StepProgress& p) { bar->update(p); };
    }
  }
  JobRun result;
  try {
    result = run_job(config, job, *comm, stop, hooks, job_options);
  } catch (const std::exception& e) {
    if (!options.bundle.empty() && comm->is_leader())
      write_bundle(options.bundle, config, job, nullptr, e.what());
    throw;
  }
  bar.reset();
  if (result.outcome == TrainOutcome::Finished && comm->is_leader()) {
    write_learning_curve(result.history, job_title(config.experiment, job.fold, job.sparsity, job.seed),
                         job.out_dir);
    if (!options.bundle.empty()) write_bundle(options.bundle, config, job, &result, "");
  }
  if (result.outcome == TrainOutcome::Stopped) {
    if (comm->is_leader())
      spdlog::warn("stopped by signal {} at iteration {}: checkpoint {} (rerun with --resume)",
                   stop_signal_received(), result.iteration, result.checkpoint_path);
    return kExitPreempted;
  }
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto options = std::make_shared<TrainOptions>();
  CLI::App* cmd =
      app.add_subcommand("train", "Train one job (fold x sparsity x seed); data-parallel under mpirun/srun");
  cmd->add_option("--config", options->config_path, "experiment YAML")->required();
  cmd->add_option("--fold", options->fold, "cross-validation fold (0-4)")->required();
  cmd->add_option("--sparsity", options->sparsity, "fraction of inactive fusion kernels, in [0, 1)")
      ->required();
  cmd->add_option("--seed", options->seed, "job seed (default: training.seed of the config)")
      ->each([options](const std::string&) { options->seed_given = true; });
  cmd->add_option(
      "--out", options->out,
      "job folder (default: as e2e sweep: runs/<experiment>/fold<F>_s<S>_seed<N> next to store.path)");
  cmd->add_flag("--resume", options->resume, "continue from the job folder's checkpoint");
  cmd->add_option("--loader-threads", options->loader_threads,
                  "data loader threads (default: cores per rank - 1)");
  cmd->add_option(
      "--bundle", options->bundle,
      "also write a result bundle folder here when the job ends (for `e2e db import`; job arrays)");
  cmd->footer(
      "Outputs in the job folder: checkpoint.ckpt, epochs.jsonl, learning_curve.png, validation/*.nii.gz, "
      "metrics.json.\n"
      "SIGUSR1/SIGTERM: checkpoint and exit with code 3; rerun with --resume to continue exactly.");
  cmd->callback([options] {
    const int code = run_train(*options);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace e2e
