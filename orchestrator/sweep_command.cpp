// e2e sweep: the coordinator and the worker groups of a (fold × sparsity × seed) sweep.
#include <fmt/format.h>

#include <filesystem>
#include <sstream>

#include "orchestrator/commands.hpp"
#include "orchestrator/run_folders.hpp"
#include "orchestrator/sweep.hpp"

namespace e2e {

namespace {

struct SweepCliOptions {
  std::string config_path;
  std::string db;
  std::string folds;
  std::string sparsity;
  std::string seeds;
  int gpus_per_job = 0;
  int max_attempts = 0;
  std::string runs_dir;
  int status_port = -1;
  int loader_threads = 0;
  std::string view = "auto";
};

// "0-4", "0,2,3" or "1".
std::vector<int> parse_folds(const std::string& text) {
  std::vector<int> folds;
  std::stringstream in(text);
  std::string item;
  auto number = [&](const std::string& s) {
    std::size_t used = 0;
    int value = -1;
    try {
      value = std::stoi(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != s.size() || value < 0 || value > 4)
      throw ConfigError("--folds: expected folds 0..4 as a range (0-4) or a list (0,2,3), got '" + text +
                        "'");
    return value;
  };
  while (std::getline(in, item, ',')) {
    const std::size_t dash = item.find('-');
    if (dash == std::string::npos) {
      folds.push_back(number(item));
      continue;
    }
    const int first = number(item.substr(0, dash)), last = number(item.substr(dash + 1));
    if (first > last) throw ConfigError("--folds: empty range '" + item + "'");
    for (int f = first; f <= last; ++f) folds.push_back(f);
  }
  if (folds.empty()) throw ConfigError("--folds: expected at least one fold");
  return folds;
}

std::vector<uint64_t> parse_seeds(const std::string& text) {
  std::vector<uint64_t> seeds;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    unsigned long long value = 0;
    try {
      value = std::stoull(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || item[0] == '-')
      throw ConfigError("--seeds: expected comma-separated non-negative integers, got '" + text + "'");
    seeds.push_back(value);
  }
  if (seeds.empty()) throw ConfigError("--seeds: expected at least one seed");
  return seeds;
}

int run(const SweepCliOptions& cli) {
  SweepOptions options;
  options.config = load_config(cli.config_path);
  const Config& config = options.config;
  options.db_path = cli.db.empty() ? config.store.path : cli.db;
  options.grid.folds = cli.folds.empty() ? config.sweep.folds : parse_folds(cli.folds);
  options.grid.sparsities = cli.sparsity.empty() ? config.sparsity.levels : parse_sparsity_list(cli.sparsity);
  options.grid.seeds = cli.seeds.empty() ? config.sweep.seeds : parse_seeds(cli.seeds);
  options.grid.max_attempts = cli.max_attempts > 0 ? cli.max_attempts : config.sweep.max_attempts;
  options.gpus_per_job = cli.gpus_per_job > 0 ? cli.gpus_per_job : config.sweep.gpus_per_job;
  options.runs_dir = cli.runs_dir.empty() ? default_runs_dir(options.db_path) : cli.runs_dir;
  options.status_port = cli.status_port;
  options.loader_threads = cli.loader_threads;
  options.view = cli.view;
  if (options.grid.sparsities.empty()) throw ConfigError("--sparsity: expected at least one sparsity");
  return run_sweep(options);
}

}  // namespace

void add_sweep_command(CLI::App& app) {
  auto options = std::make_shared<SweepCliOptions>();
  CLI::App* cmd = app.add_subcommand("sweep",
                                     "Run every (fold x sparsity x seed) job of a config across MPI ranks; "
                                     "resumable (rerun the same command)");
  cmd->add_option("--config", options->config_path, "experiment YAML")->required();
  cmd->add_option("--db", options->db, "experiment store (default: store.path of the config)");
  cmd->add_option("--folds", options->folds, "folds, e.g. 0-4 or 0,2 (default: sweep.folds)");
  cmd->add_option("--sparsity", options->sparsity, "sparsities, e.g. 0.7,0.8,0.9 (default: sparsity.levels)");
  cmd->add_option("--seeds", options->seeds, "seeds, e.g. 0,1 (default: sweep.seeds)");
  cmd->add_option("--gpus-per-job", options->gpus_per_job,
                  "ranks per worker group (default: sweep.gpus_per_job)");
  cmd->add_option("--max-attempts", options->max_attempts, "attempts per job before it fails for good");
  cmd->add_option("--runs", options->runs_dir, "job folders (default: <folder of the store>/runs)");
  cmd->add_option("--status-port", options->status_port,
                  "serve GET /status and /metrics on 127.0.0.1:PORT (0 = any)");
  cmd->add_option("--loader-threads", options->loader_threads,
                  "data loader threads per rank (default: automatic)");
  cmd->add_option("--view", options->view,
                  "coordinator output: live (a view of every group, redrawn in place), log (timestamped "
                  "lines) or auto (live when mpirun's output is a terminal)")
      ->check(CLI::IsMember({"auto", "live", "log"}));
  cmd->footer(
      "Launch: mpirun -np N e2e sweep ... or srun --mpi=pmix e2e sweep ...; rank 0 coordinates, the other "
      "ranks form\n"
      "worker groups of --gpus-per-job ranks; one rank runs every job in-process.\n"
      "Exit codes: 0 all jobs done, 1 some job failed for good, 2 bad usage/config, 3 preempted "
      "(SIGUSR1/SIGTERM):\n"
      "rerun the same command to continue; finished jobs are kept and interrupted ones resume from "
      "checkpoints.\n"
      "Only rank 0 writes to the terminal; worker ranks log to their job folder (worker.log).");
  cmd->callback([options] {
    const int code = run(*options);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace e2e
