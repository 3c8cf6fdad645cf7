#include "orchestrator/sweep.hpp"

#include <mpi.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <thread>

#include "common/version.hpp"
#include "configs/config_json.hpp"
#include "configs/hash.hpp"
#include "data/dataset.hpp"
#include "data/folds.hpp"
#include "db/store.hpp"
#include "orchestrator/job_records.hpp"
#include "orchestrator/signals.hpp"
#include "orchestrator/status_server.hpp"
#include "orchestrator/status_store.hpp"
#include "orchestrator/sweep_coordinator.hpp"
#include "orchestrator/sweep_protocol.hpp"
#include "orchestrator/sweep_view.hpp"
#include "worker/data_source.hpp"
#include "worker/ensemble.hpp"
#include "worker/job.hpp"
#include "worker/mpi_communicator.hpp"
#include "worker/progress.hpp"

namespace e2e {

namespace fs = std::filesystem;

namespace {

constexpr int kCoordinator = 0;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Passes on at most one step report per interval.
std::function<void(const StepProgress&)> throttled_steps(std::function<void(const StepProgress&)> send,
                                                         double interval_seconds) {
  auto last = std::make_shared<double>(0.0);
  return [send = std::move(send), interval_seconds, last](const StepProgress& p) {
    const double now = now_seconds();
    if (now - *last < interval_seconds) return;
    *last = now;
    send(p);
  };
}

// Whether the coordinator draws the live view: --view live, or auto and mpirun's stdout is a terminal.
bool wants_live_view(const SweepOptions& options) {
  if (options.view == "live") return true;
  if (options.view == "log") return false;
  return output_terminal(1).terminal;
}

// Log lines without colour codes, for a coordinator whose output is a file or a pipe (Open MPI's
// pseudo-terminal would make the default sink colour them).
void use_plain_log_lines() {
  auto plain = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  plain->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  spdlog::default_logger()->sinks() = {plain};
}

// The coordinator's terminal output: a live view redrawn in place (about 4 times a second) with log lines
// scrolling above it, or, when the output is not a terminal, log lines and a summary line every 30 s.
class SweepDisplay {
 public:
  SweepDisplay(const SweepOptions& options, int groups)
      : tracker_(options.config.experiment, groups, now_seconds()) {
    if (!wants_live_view(options)) return;
    frame_ = std::make_shared<TerminalFrame>(stdout, output_terminal(1).columns);
    auto& sinks = spdlog::default_logger()->sinks();
    saved_sinks_ = sinks;
    sinks = {std::make_shared<FrameSink>(frame_)};
  }
  ~SweepDisplay() {
    if (!frame_) return;
    frame_->clear();
    spdlog::default_logger()->sinks() = saved_sinks_;
  }
  SweepDisplay(const SweepDisplay&) = delete;
  SweepDisplay& operator=(const SweepDisplay&) = delete;

  SweepTracker& tracker() { return tracker_; }

  // Redraws or logs when due.
  void tick() {
    const double now = now_seconds();
    if (frame_) {
      if (now - last_output_ < 0.25) return;
      last_output_ = now;
      frame_->draw(render_view(tracker_.state(now)));
    } else if (now - last_output_ >= 30) {
      if (last_output_ > 0) spdlog::info("progress: {}", render_summary(tracker_.state(now)));
      last_output_ = now;
    }
  }

  // The view's last word, as a log line (the live block goes away).
  void finish(const std::string& what) {
    if (frame_) frame_->clear();
    spdlog::info("{}: {}", what, render_summary(tracker_.state(now_seconds())));
  }

 private:
  SweepTracker tracker_;
  std::shared_ptr<TerminalFrame> frame_;
  std::vector<spdlog::sink_ptr> saved_sinks_;
  double last_output_ = 0;
};

// A worker rank's log: its job folder's worker.log while a job runs, errors on stderr. The sinks change
// under a dist_sink's lock, so the data-loader threads may log at any time.
class WorkerLog {
 public:
  explicit WorkerLog(int rank) : sinks_(std::make_shared<spdlog::sinks::dist_sink_mt>()), rank_(rank) {
    auto errors = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    errors->set_level(spdlog::level::err);
    errors->set_pattern(fmt::format("[%Y-%m-%d %H:%M:%S.%e] [rank {}] [%l] %v", rank));
    sinks_->add_sink(errors);
    auto logger = std::make_shared<spdlog::logger>("worker", sinks_);
    logger->set_level(spdlog::default_logger()->level());
    logger->flush_on(spdlog::level::info);  // a kill -9 loses no line
    spdlog::set_default_logger(logger);
  }

  void attach(const std::string& job_dir) {
    fs::create_directories(job_dir);
    file_ = std::make_shared<spdlog::sinks::basic_file_sink_mt>((fs::path(job_dir) / "worker.log").string());
    file_->set_pattern(fmt::format("[%Y-%m-%d %H:%M:%S.%e] [rank {}] [%l] %v", rank_));
    sinks_->add_sink(file_);
  }
  void detach() {
    if (file_) sinks_->remove_sink(file_);
    file_.reset();
  }

 private:
  std::shared_ptr<spdlog::sinks::dist_sink_mt> sinks_;
  std::shared_ptr<spdlog::sinks::basic_file_sink_mt> file_;
  int rank_;
};

// ------------------------------------------------------------------------------------------ transport

// MPI moves the protocol's bytes (orchestrator/sweep_protocol.hpp); the message's tag is the MPI tag.
void send(int destination, const SweepMessage& message) {
  const EncodedMessage encoded = encode(message);
  MPI_Send(encoded.bytes.data(), static_cast<int>(encoded.bytes.size()), MPI_BYTE, destination, encoded.tag,
           MPI_COMM_WORLD);
}

void send_all(const std::vector<Outgoing>& messages) {
  for (const Outgoing& out : messages) send(out.rank, out.message);
}

SweepMessage receive(int source, int tag) {
  MPI_Status status;
  MPI_Probe(source, tag, MPI_COMM_WORLD, &status);
  int size = 0;
  MPI_Get_count(&status, MPI_BYTE, &size);
  std::string bytes(static_cast<std::size_t>(size), '\0');
  MPI_Recv(bytes.data(), size, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, MPI_COMM_WORLD,
           MPI_STATUS_IGNORE);
  return decode(status.MPI_TAG, bytes);
}

// Rank 0's PREPARED, to every rank.
PreparedMessage broadcast_prepared(const PreparedMessage& prepared, int rank) {
  std::string framed = rank == 0 ? frame(prepared) : std::string();
  int length = static_cast<int>(framed.size());
  MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD);
  framed.resize(static_cast<std::size_t>(length));
  MPI_Bcast(framed.data(), length, MPI_BYTE, 0, MPI_COMM_WORLD);
  const SweepMessage message = unframe(framed);
  if (const auto* received = std::get_if<PreparedMessage>(&message)) return *received;
  throw ProtocolError("expected PREPARED from rank 0, got " + message_name(tag_of(message)));
}

// What a running job reports, as messages to `report`: epochs, checkpoints, steps and test cases. The group
// leader sends them to the coordinator; a world of one rank hands them to its coordinator directly.
struct ReportHooks {
  TrainerHooks training;
  EnsembleHooks ensemble;
};

ReportHooks report_hooks(int64_t job, const std::function<void(const SweepMessage&)>& report) {
  ReportHooks hooks;
  hooks.training.on_epoch = [job, report](const EpochRecord& r) { report(EpochMessage{job, r}); };
  hooks.training.on_checkpoint = [job, report](const std::string& path, int64_t iteration) {
    report(CheckpointMessage{job, {path, sha256_file(path), iteration}});
  };
  hooks.training.on_step = [job, report](const StepProgress& p) {
    report(StepMessage{job, p.epoch, p.epochs, p.step, p.steps, p.mean_loss, p.iterations_per_second});
  };
  hooks.ensemble.on_case = [job, report](const std::string& case_id, std::size_t done, std::size_t total) {
    report(CaseDoneMessage{job, case_id, static_cast<int64_t>(done), static_cast<int64_t>(total)});
  };
  return hooks;
}

// ------------------------------------------------------------------------------------------ jobs

// Runs one claimed job on `comm` (a whole worker group); the outcome is for the coordinator.
OutcomeMessage run_training(const SweepOptions& options, const JobMessage& job, Communicator& comm,
                            const std::atomic<bool>* stop, const TrainerHooks& hooks) {
  JobSpec spec;
  spec.fold = job.fold;
  spec.sparsity = job.sparsity;
  spec.seed = job.seed;
  spec.out_dir = job.out_dir;
  spec.resume = true;  // continue from the job folder's checkpoint when there is one
  try {
    JobOptions job_options;
    job_options.loader_threads = options.loader_threads;
    const JobRun run = run_job(options.config, spec, comm, stop, hooks, job_options);
    if (run.outcome == TrainOutcome::Stopped) return PreemptedMessage{job.job};
    if (comm.is_leader())
      write_learning_curve(run.history,
                           job_title(options.config.experiment, spec.fold, spec.sparsity, spec.seed),
                           spec.out_dir);
    return ResultMessage{job.job, JobKind::Train, run.metrics, run.topology,
                         run.history.empty() ? 0 : run.history.back().topology_updates};
  } catch (const std::exception& e) {
    if (comm.size() > 1 && dynamic_cast<const TrainingError*>(&e) == nullptr) {
      // A failure on one rank only would leave the others waiting in a collective: end the run; the rerun
      // resumes every interrupted job from its checkpoint.
      spdlog::critical("rank-local failure in a data-parallel job, aborting the run: {}", e.what());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return FailedMessage{job.job, e.what(), false};
  }
}

// The group leader predicts the test cases (the other ranks of a group wait for the next job; their
// outcome is not sent).
OutcomeMessage run_ensemble(const SweepOptions& options, const JobMessage& job, Communicator& comm,
                            const std::atomic<bool>* stop, const EnsembleHooks& hooks) {
  if (!comm.is_leader()) return ResultMessage{job.job, JobKind::Ensemble, {}, {}, 0};
  EnsembleSpec spec;
  spec.sparsity = job.sparsity;
  spec.seed = job.seed;
  spec.folds = job.folds;
  spec.fold_dirs = job.fold_dirs;
  spec.out_dir = job.out_dir;
  spec.device = local_training_device();
  try {
    const EnsembleRun run = run_ensemble_job(options.config, spec, stop, hooks);
    if (run.stopped) return PreemptedMessage{job.job};
    return ResultMessage{job.job, JobKind::Ensemble, run.report, {}, 0};
  } catch (const ConfigError& e) {  // bad input (InputError too): no retry can fix it
    return FailedMessage{job.job, e.what(), true};
  } catch (const std::exception& e) {
    return FailedMessage{job.job, e.what(), false};
  }
}

OutcomeMessage run_claimed_job(const SweepOptions& options, const JobMessage& job, Communicator& comm,
                               const std::atomic<bool>* stop, const TrainerHooks& hooks,
                               const EnsembleHooks& ensemble_hooks) {
  return job.kind == JobKind::Ensemble ? run_ensemble(options, job, comm, stop, ensemble_hooks)
                                       : run_training(options, job, comm, stop, hooks);
}

// ------------------------------------------------------------------------------------------ coordinator

// Rank 0: prepares the sweep (store, preprocessing, jobs), then feeds the SweepCoordinator's decisions
// (orchestrator/sweep_coordinator.hpp) with the groups' messages, or runs every job itself in a world of one.
class Coordinator {
 public:
  Coordinator(const SweepOptions& options, const std::atomic<bool>* stop) : options_(options), stop_(stop) {}

  // Opens the store, preprocesses once, registers the jobs and recovers those a crashed run left running.
  void prepare() {
    const fs::path db_dir = fs::path(options_.db_path).parent_path();
    if (!db_dir.empty()) fs::create_directories(db_dir);
    store_ = std::make_unique<Store>(options_.db_path, StoreOptions::from_config(options_.config.store));
    const std::string store_dir = ensure_preprocessed(options_.config);
    ExperimentInfo info;
    info.name = options_.config.experiment;
    info.config_json = config_to_json(options_.config);
    info.config_hash = config_hash(options_.config);
    info.dataset_fingerprint = fingerprint_of(store_dir);
    info.code_version = kCodeVersion;
    const std::size_t test_cases = count_test_cases();
    JobGrid grid = options_.grid;
    grid.test_ensembles = test_cases > 0;
    const SweepRegistration registration = register_sweep(*store_, info, grid, split_entries(store_dir));
    experiment_id_ = registration.experiment_id;
    if (grid.test_ensembles)
      spdlog::info(
          "test set: {} held-out case(s); each (sparsity, seed) cell ends with a fold ensemble on them",
          test_cases);
    spdlog::info("sweep {}: {} jobs ({} new), {} interrupted job(s) recovered; store {}", info.name,
                 registration.jobs, registration.created, registration.recovered, options_.db_path);
    start_status_server();
  }

  // A world of one rank: it claims, trains and records every job itself, through the same decisions.
  int run_in_process() {
    SingleProcessCommunicator comm;
    SweepDisplay display(options_, 1);
    SweepCoordinator coordinator = decisions({0}, display);
    while (true) {
      if (stop_->load()) coordinator.request_stop();  // the job in this process sees stop_ itself
      const std::vector<Outgoing> reply = coordinator.handle(0, ReadyMessage{0, host_name(), stop_->load()});
      const auto* job = std::get_if<JobMessage>(&reply.front().message);
      if (job == nullptr) break;  // STOP (with one group nothing else runs, so never WAIT)
      const ReportHooks hooks = report_hooks(job->job, [&](const SweepMessage& message) {
        coordinator.handle(0, message);
        display.tick();
      });
      coordinator.handle(
          0, to_message(run_claimed_job(options_, *job, comm, stop_, hooks.training, hooks.ensemble)));
    }
    display.finish(coordinator.stopping() ? "sweep stopped" : "sweep finished");
    return coordinator.exit_code();
  }

  // The coordinator of a world of N > 1 ranks.
  int serve(const std::vector<int>& leaders) {
    SweepDisplay display(options_, static_cast<int>(leaders.size()));
    SweepCoordinator coordinator = decisions(leaders, display);
    while (!coordinator.finished()) {
      display.tick();
      if (stop_->load()) send_all(coordinator.request_stop());
      int pending = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &pending, &status);
      if (!pending) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      const SweepMessage message = receive(status.MPI_SOURCE, status.MPI_TAG);
      send_all(coordinator.handle(status.MPI_SOURCE, message));
    }
    display.finish(coordinator.stopping() ? "sweep stopped" : "sweep finished");
    return coordinator.exit_code();
  }

 private:
  SweepCoordinator decisions(std::vector<int> leaders, SweepDisplay& display) {
    SweepCoordinatorOptions decision_options;
    decision_options.experiment_id = experiment_id_;
    decision_options.experiment = options_.config.experiment;
    decision_options.runs_dir = options_.runs_dir;
    decision_options.leaders = std::move(leaders);
    return {*store_, decision_options, display.tracker(), now_seconds};
  }

  // Held-out cases of the config's dataset (0 without a raw dataset). Bad data.test_cases is an InputError.
  std::size_t count_test_cases() const {
    const Config& config = options_.config;
    if (config.data.dataset.empty() || !fs::exists(fs::path(config.data.dataset) / "dataset.json")) {
      if (!config.data.test_cases.empty())
        throw InputError("data.test_cases: needs the raw dataset at data.dataset (" + config.data.dataset +
                         ")");
      return 0;
    }
    return test_set(read_raw_dataset(config.data.dataset), config.data.test_cases).size();
  }

  // GET /status and /metrics, answered from a read-only connection of its own (WAL lets it read while the
  // coordinator writes), on the server's thread.
  void start_status_server() {
    if (options_.status_port < 0) return;
    const std::string path = options_.db_path;
    const std::string experiment = options_.config.experiment;
    status_server_ =
        std::make_unique<StatusServer>(options_.status_address, static_cast<uint16_t>(options_.status_port),
                                       [path, experiment] { return snapshot_from_store(path, experiment); });
    const uint16_t port = status_server_->start();
    spdlog::info("status: http://{}:{}/status and /metrics", options_.status_address, port);
  }

  static std::vector<SplitEntry> split_entries(const std::string& store_dir) {
    std::vector<SplitEntry> entries;
    const std::vector<FoldSplit> splits =
        read_splits_json((fs::path(store_dir) / "splits_final.json").string());
    for (std::size_t f = 0; f < splits.size(); ++f) {
      const std::set<std::string> val(splits[f].val.begin(), splits[f].val.end());
      // A dataset of one case trains and validates its one fold on it; the store gives a case one role per
      // fold, and "val" is the one its results are scored on.
      for (const auto& id : splits[f].train)
        if (val.count(id) == 0) entries.push_back({static_cast<int>(f), id, "train"});
      for (const auto& id : splits[f].val) entries.push_back({static_cast<int>(f), id, "val"});
    }
    return entries;
  }

  static std::string fingerprint_of(const std::string& store_dir) {
    const fs::path fingerprint = fs::path(store_dir) / "fingerprint.json";
    return fs::exists(fingerprint) ? sha256_file(fingerprint.string()) : std::string();
  }

  const SweepOptions& options_;
  const std::atomic<bool>* stop_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<StatusServer> status_server_;
  int64_t experiment_id_ = 0;
};

// ------------------------------------------------------------------------------------------ worker group

// Forwards the coordinator's STOP_NOW to this group's stop flag (leader only).
class StopListener {
 public:
  explicit StopListener(std::atomic<bool>* flag) : flag_(flag), thread_([this] { listen(); }) {}
  ~StopListener() {
    done_ = true;
    thread_.join();
  }

 private:
  void listen() {
    while (!done_) {
      int pending = 0;
      MPI_Iprobe(kCoordinator, tag_of<StopNowMessage>(), MPI_COMM_WORLD, &pending, MPI_STATUS_IGNORE);
      if (pending) {
        receive(kCoordinator, tag_of<StopNowMessage>());
        flag_->store(true);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  std::atomic<bool>* flag_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// The coordinator's answer to READY: JOB, WAIT or STOP (STOP_NOW is left to the StopListener).
SweepMessage receive_reply() {
  while (true) {
    for (int tag : {tag_of<JobMessage>(), tag_of<WaitMessage>(), tag_of<StopMessage>()}) {
      int pending = 0;
      MPI_Iprobe(kCoordinator, tag, MPI_COMM_WORLD, &pending, MPI_STATUS_IGNORE);
      if (pending) return receive(kCoordinator, tag);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

int run_worker_group(const SweepOptions& options, MPI_Comm group, int group_index,
                     const std::atomic<bool>* signal_stop) {
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  WorkerLog log(world_rank);  // before any thread starts
  std::unique_ptr<Communicator> comm = make_job_communicator(group);
  const bool leader = comm->is_leader();
  // The group stops when this process was signalled or the coordinator says so.
  std::atomic<bool> stop{false};
  std::unique_ptr<StopListener> listener = leader ? std::make_unique<StopListener>(&stop) : nullptr;
  std::thread signal_watch([&] {
    while (!stop.load()) {
      if (signal_stop->load()) stop.store(true);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  bool preempted = false;
  while (true) {
    std::string reply;  // the leader passes the coordinator's answer on to its group
    if (leader) {
      send(kCoordinator, ReadyMessage{group_index, host_name(), stop.load()});
      reply = frame(receive_reply());
    }
    comm->broadcast_bytes(reply, 0);
    const SweepMessage message = unframe(reply);
    if (std::holds_alternative<StopMessage>(message)) break;
    if (std::holds_alternative<WaitMessage>(message)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    const auto* job = std::get_if<JobMessage>(&message);
    if (job == nullptr)
      throw ProtocolError("worker group: expected JOB, WAIT or STOP, got " + message_name(tag_of(message)));
    ReportHooks hooks;
    if (leader) {
      hooks = report_hooks(job->job, [](const SweepMessage& report) { send(kCoordinator, report); });
      hooks.training.on_step = throttled_steps(hooks.training.on_step, 0.4);
    }
    log.attach(job->out_dir);
    spdlog::info("rank {} (group {}, {}): job {} attempt {}", world_rank, group_index, host_name(), job->job,
                 job->attempt);
    OutcomeMessage outcome = run_claimed_job(options, *job, *comm, &stop, hooks.training, hooks.ensemble);
    if (const auto* failed = std::get_if<FailedMessage>(&outcome))
      spdlog::warn("job {} failed: {}", job->job, failed->error);
    log.detach();
    preempted = preempted || std::holds_alternative<PreemptedMessage>(outcome);
    if (leader) send(kCoordinator, to_message(std::move(outcome)));
  }
  stop.store(true);
  signal_watch.join();
  listener.reset();
  return preempted || signal_stop->load() ? kExitPreempted : 0;
}

}  // namespace

int run_sweep(const SweepOptions& options) {
  const std::atomic<bool>* stop = install_stop_signal_handlers();
  ensure_mpi_initialized();
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (rank == 0 && !wants_live_view(options)) use_plain_log_lines();
  const int per_group = options.gpus_per_job;
  if (world > 1 && (world - 1) % per_group != 0)
    throw ConfigError(
        fmt::format("--gpus-per-job: {} worker ranks (world {} minus the coordinator) do not split into "
                    "groups of {}",
                    world - 1, world, per_group));
  if (world == 1) {
    Coordinator coordinator(options, stop);
    coordinator.prepare();
    return coordinator.run_in_process();
  }

  const int groups = (world - 1) / per_group;
  const int group_index = rank == 0 ? -1 : (rank - 1) / per_group;
  MPI_Comm group = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, rank == 0 ? MPI_UNDEFINED : group_index, rank, &group);

  // The coordinator prepares (store, preprocessing) before any group starts asking for jobs: a failure
  // there is broadcast so that every rank exits with the same clear error instead of waiting.
  PreparedMessage prepared;
  std::unique_ptr<Coordinator> coordinator;
  if (rank == 0) {
    coordinator = std::make_unique<Coordinator>(options, stop);
    try {
      coordinator->prepare();
    } catch (const ConfigError& e) {
      prepared = {2, e.what()};
    } catch (const std::exception& e) {
      prepared = {1, e.what()};
    }
  }
  prepared = broadcast_prepared(prepared, rank);
  if (prepared.exit_code != 0) {
    if (rank == 0) spdlog::error("{}", prepared.error);
    return prepared.exit_code;
  }

  try {
    if (rank == 0) {
      std::vector<int> leaders;
      for (int g = 0; g < groups; ++g) leaders.push_back(1 + g * per_group);
      return coordinator->serve(leaders);
    }
    const int code = run_worker_group(options, group, group_index, stop);
    MPI_Comm_free(&group);
    return code;
  } catch (const std::exception& e) {
    // From here on every rank waits on the others: an error that escapes one (a ProtocolError, a store
    // that cannot be written) ends the whole run now instead of leaving the rest waiting. The store and
    // the checkpoints keep what was done; the rerun resumes.
    spdlog::critical("rank {}: {}; ending the run (rerun the same command to resume)", rank, e.what());
    spdlog::default_logger()->flush();
    MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
  }
}

}  // namespace e2e
