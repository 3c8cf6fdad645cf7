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
#include <map>
#include <memory>
#include <thread>

#include "common/json_number.hpp"
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
#include "orchestrator/sweep_view.hpp"
#include "worker/data_source.hpp"
#include "worker/ensemble.hpp"
#include "worker/job.hpp"
#include "worker/mpi_communicator.hpp"
#include "worker/progress.hpp"

namespace e2e {

namespace fs = std::filesystem;

namespace {

enum Tag : int {
  kReady = 100,
  kJob,
  kWait,
  kStop,
  kProgress,
  kCheckpoint,
  kResult,
  kFailed,
  kPreempted,
  kStopNow,
};

constexpr int kCoordinator = 0;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A training step report: PROGRESS {"job", "step": …} (no store write; the live view only).
nlohmann::json step_to_json(const StepProgress& p) {
  return {{"epoch", p.epoch},
          {"epochs", p.epochs},
          {"step", p.step},
          {"steps", p.steps},
          {"loss", json_number(p.mean_loss)},
          {"it_s", p.iterations_per_second}};
}

// Sends at most one step report per interval (and none from ranks that are not the leader).
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

void send_message(int destination, Tag tag, const nlohmann::json& body) {
  const std::string text = body.dump();
  MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, destination, tag, MPI_COMM_WORLD);
}

nlohmann::json receive_message(int source, int tag, MPI_Status* status_out = nullptr) {
  MPI_Status status;
  MPI_Probe(source, tag, MPI_COMM_WORLD, &status);
  int size = 0;
  MPI_Get_count(&status, MPI_CHAR, &size);
  std::string text(static_cast<std::size_t>(size), '\0');
  MPI_Recv(text.data(), size, MPI_CHAR, status.MPI_SOURCE, status.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  if (status_out) *status_out = status;
  return nlohmann::json::parse(text);
}

std::string job_dir(const SweepOptions& options, int fold, double sparsity, uint64_t seed) {
  return job_folder(options.runs_dir, options.config.experiment, fold, sparsity, seed);
}

std::string ensemble_dir(const SweepOptions& options, double sparsity, uint64_t seed) {
  return ensemble_folder(options.runs_dir, options.config.experiment, sparsity, seed);
}

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string unhex(const std::string& text) {
  std::string out(text.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<char>(std::stoi(text.substr(2 * i, 2), nullptr, 16));
  return out;
}

// ------------------------------------------------------------------------------------------ coordinator

class Coordinator {
 public:
  Coordinator(const SweepOptions& options, const std::atomic<bool>* stop) : options_(options), stop_(stop) {}

  // Opens the store, preprocesses once, enumerates and recovers jobs.
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
    experiment_id_ = store_->upsert_experiment(info);
    const std::size_t test_cases = count_test_cases();
    record_splits(store_dir);
    JobGrid grid = options_.grid;
    grid.test_ensembles = test_cases > 0;
    const EnumerateResult jobs = store_->enumerate_jobs(experiment_id_, grid);
    if (grid.test_ensembles)
      spdlog::info(
          "test set: {} held-out case(s); each (sparsity, seed) cell ends with a fold ensemble on them",
          test_cases);
    const int64_t recovered = store_->recover_interrupted();
    spdlog::info("sweep {}: {} jobs ({} new), {} interrupted job(s) recovered; store {}", info.name,
                 jobs.job_ids.size(), jobs.created, recovered, options_.db_path);
    start_status_server();
  }

  // The in-process mode (a world of one rank): claim, train, record, until nothing is runnable.
  int run_in_process() {
    SingleProcessCommunicator comm;
    display_ = std::make_unique<SweepDisplay>(options_, 1);
    refresh_totals();
    const int code = [&] {
      while (!stop_->load()) {
        auto claim = store_->claim_next(experiment_id_, 0, host_name());
        if (!claim) break;
        job_started(0, *claim);
        const int64_t id = claim->job.id;
        TrainerHooks hooks;
        hooks.on_epoch = [&](const EpochRecord& r) { store_->record_epoch(id, r); };
        hooks.on_checkpoint = [&](const std::string& path, int64_t iteration) {
          store_->mark_checkpointed(id, {path, sha256_file(path), iteration});
        };
        hooks.on_step = [&](const StepProgress& p) {
          display_->tracker().step(id, p.epoch, p.epochs, p.step, p.steps, p.mean_loss,
                                   p.iterations_per_second);
          display_->tick();
        };
        EnsembleHooks ensemble_hooks;
        ensemble_hooks.on_case = [&](const std::string& case_id, std::size_t done, std::size_t total) {
          record_case_done(id, case_id, done, total);
          display_->tick();
        };
        const nlohmann::json outcome =
            run_claimed_job(options_, to_message(*claim), comm, stop_, hooks, ensemble_hooks);
        handle_outcome(id, outcome);
        if (outcome.value("preempted", false)) return kExitPreempted;
      }
      return stop_->load() ? kExitPreempted : finish_code();
    }();
    display_->finish(code == kExitPreempted ? "sweep stopped" : "sweep finished");
    return code;
  }

  // The coordinator of a world of N > 1 ranks.
  int serve(int groups, const std::vector<int>& leaders) {
    display_ = std::make_unique<SweepDisplay>(options_, groups);
    refresh_totals();
    int stopped = 0;
    bool stop_sent = false;
    std::map<int64_t, int> running;  // job → leader rank
    while (stopped < groups) {
      display_->tick();
      if (stop_->load() && !stop_sent) {
        spdlog::warn("stop requested: telling {} worker group(s) to checkpoint", groups);
        for (int leader : leaders) send_message(leader, kStopNow, nlohmann::json::object());
        stop_sent = true;
      }
      int pending = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &pending, &status);
      if (!pending) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      const int source = status.MPI_SOURCE;
      const nlohmann::json message = receive_message(source, status.MPI_TAG);
      switch (status.MPI_TAG) {
        case kReady: {
          if (stop_sent || stop_->load() || message.value("stop", false)) {
            send_message(source, kStop, nlohmann::json::object());
            ++stopped;
            break;
          }
          auto claim =
              store_->claim_next(experiment_id_, message.value("group", 0), message.value("node", ""));
          if (claim) {
            running[claim->job.id] = source;
            job_started(message.value("group", 0), *claim);
            send_message(source, kJob, to_message(*claim));
          } else if (running.empty()) {
            send_message(source, kStop, nlohmann::json::object());
            ++stopped;
          } else {
            send_message(source, kWait, nlohmann::json::object());
          }
          break;
        }
        case kProgress:
          if (message.contains("step")) {  // a few times a second: the live view only
            const nlohmann::json& p = message.at("step");
            const nlohmann::json& loss = p.at("loss");
            display_->tracker().step(message.at("job"), p.at("epoch"), p.at("epochs"), p.at("step"),
                                     p.at("steps"), loss.is_number() ? loss.get<double>() : std::nan(""),
                                     p.at("it_s"));
          } else {
            store_->record_epoch(message.at("job"), EpochRecord::from_json(message.at("epoch")));
          }
          break;
        case kCheckpoint:
          if (message.contains("case"))
            record_case_done(message.at("job"), message.at("case"), message.at("done"), message.at("total"));
          else
            store_->mark_checkpointed(message.at("job"),
                                      {message.at("path"), message.at("sha256"), message.at("iteration")});
          break;
        case kPreempted:
          if (!stop_sent) {  // a group was signalled: preemption is global, checkpoint everybody
            for (int leader : leaders) send_message(leader, kStopNow, nlohmann::json::object());
            stop_sent = true;
          }
          [[fallthrough]];
        case kResult:
        case kFailed:
          running.erase(message.at("job").get<int64_t>());
          handle_outcome(message.at("job"), message);
          break;
        default:
          spdlog::warn("coordinator: unexpected message tag {} from rank {}", status.MPI_TAG, source);
      }
    }
    const bool stopped_early = stop_sent || stop_->load();
    display_->finish(stopped_early ? "sweep stopped" : "sweep finished");
    return stopped_early ? kExitPreempted : finish_code();
  }

 private:
  nlohmann::json to_message(const ClaimedJob& claim) const {
    const Job& job = claim.job;
    nlohmann::json message = {{"job", job.id},
                              {"kind", to_string(job.kind)},
                              {"fold", job.fold},
                              {"sparsity", job.sparsity},
                              {"seed", job.seed},
                              {"attempt", job.attempts + 1},
                              {"out_dir", job_dir(options_, job.fold, job.sparsity, job.seed)}};
    if (job.kind == JobKind::Ensemble) {
      nlohmann::json fold_dirs = nlohmann::json::array();
      for (int fold : job.folds) fold_dirs.push_back(job_dir(options_, fold, job.sparsity, job.seed));
      message["folds"] = job.folds;
      message["fold_dirs"] = fold_dirs;
      message["out_dir"] = ensemble_dir(options_, job.sparsity, job.seed);
    }
    return message;
  }

  // A finished test case of an ensemble job: an event (the job's progress) that doubles as a heartbeat.
  void record_case_done(int64_t job, const std::string& case_id, std::size_t done, std::size_t total) {
    store_->add_event(job, EventKind::Checkpointed,
                      fmt::format("test case {} predicted ({}/{})", case_id, done, total));
    store_->heartbeat(job);
    display_->tracker().case_done(job, static_cast<int64_t>(done), static_cast<int64_t>(total));
  }

  // A claimed job, in the log and the view.
  void job_started(int group, const ClaimedJob& claim) {
    const Job& job = claim.job;
    const std::string what = job.kind == JobKind::Ensemble
                                 ? fmt::format("test ensemble s={} seed {}", job.sparsity, job.seed)
                                 : fmt::format("fold {} s={} seed {}", job.fold, job.sparsity, job.seed);
    spdlog::info("job {} started on group {}: {}, attempt {}{}", job.id, group, what, job.attempts + 1,
                 job.checkpoint
                     ? fmt::format(", from its checkpoint at iteration {}", job.checkpoint->iteration)
                     : std::string());
    display_->tracker().job_started(group, job, now_seconds());
    refresh_totals();
  }

  // Jobs by state, from the store (after each claim and each outcome).
  void refresh_totals() {
    JobFilter filter;
    filter.experiment = options_.config.experiment;
    display_->tracker().set_totals(count_jobs(store_->reader().jobs(filter)));
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

  void handle_outcome(int64_t job, const nlohmann::json& outcome) {
    record_outcome(job, outcome);
    const bool finished = !outcome.value("preempted", false) && !outcome.contains("error");
    display_->tracker().job_ended(job, finished, now_seconds());
    refresh_totals();
  }

  void record_outcome(int64_t job, const nlohmann::json& outcome) {
    if (outcome.value("preempted", false)) {
      store_->mark_preempted(job, "stopped by signal; checkpoint kept");
      spdlog::warn("job {} preempted", job);
    } else if (outcome.contains("error")) {
      const bool permanent = outcome.value("permanent", false);
      const FailureOutcome failure = store_->mark_failed(job, outcome.at("error"), permanent);
      spdlog::error("job {} failed (attempt {}/{}{}): {}", job, failure.attempts, failure.max_attempts,
                    permanent            ? ", bad input: not retried"
                    : failure.will_retry ? ", will retry"
                                         : ", giving up",
                    outcome.at("error").get<std::string>());
      failed_ = failed_ || !failure.will_retry;
      input_failed_ = input_failed_ || permanent;
    } else if (outcome.value("kind", "train") == "ensemble") {
      const JobResult result = to_store_test_result(outcome.at("metrics"));
      store_->record_result(job, result);
      spdlog::info("job {} done (test ensemble): mDice {:.4f} on {} of {} test case(s)", job,
                   result.summary.mean_dice, result.summary.cases_scored, result.summary.cases_total);
    } else {
      const JobResult result = to_store_result(outcome.at("metrics"), unhex(outcome.value("topology", "")),
                                               outcome.value("topology_updates", int64_t{0}));
      store_->record_result(job, result);
      spdlog::info("job {} done: mDice {:.4f}", job, result.summary.mean_dice);
    }
  }

  int finish_code() const { return input_failed_ ? 2 : failed_ ? 1 : 0; }

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

  void record_splits(const std::string& store_dir) {
    std::vector<SplitEntry> entries;
    const std::vector<FoldSplit> splits =
        read_splits_json((fs::path(store_dir) / "splits_final.json").string());
    for (std::size_t f = 0; f < splits.size(); ++f) {
      for (const auto& id : splits[f].train) entries.push_back({static_cast<int>(f), id, "train"});
      for (const auto& id : splits[f].val) entries.push_back({static_cast<int>(f), id, "val"});
    }
    store_->record_splits(experiment_id_, entries);
  }

  static std::string fingerprint_of(const std::string& store_dir) {
    const fs::path fingerprint = fs::path(store_dir) / "fingerprint.json";
    return fs::exists(fingerprint) ? sha256_file(fingerprint.string()) : std::string();
  }

 public:
  // Runs one claimed job on `comm` (a whole worker group) and describes the outcome for the coordinator.
  static nlohmann::json run_claimed_job(const SweepOptions& options, const nlohmann::json& job,
                                        Communicator& comm, const std::atomic<bool>* stop,
                                        const TrainerHooks& hooks, const EnsembleHooks& ensemble_hooks) {
    if (job.value("kind", "train") == "ensemble")
      return run_ensemble(options, job, comm, stop, ensemble_hooks);
    JobSpec spec;
    spec.fold = job.at("fold");
    spec.sparsity = job.at("sparsity");
    spec.seed = job.at("seed");
    spec.out_dir = job.at("out_dir");
    spec.resume = true;  // continue from the job folder's checkpoint when there is one
    nlohmann::json outcome = {{"job", job.at("job")}};
    try {
      JobOptions job_options;
      job_options.loader_threads = options.loader_threads;
      const JobRun run = run_job(options.config, spec, comm, stop, hooks, job_options);
      if (run.outcome == TrainOutcome::Stopped) {
        outcome["preempted"] = true;
      } else {
        if (comm.is_leader())
          write_learning_curve(run.history, job_title(options.config, spec), spec.out_dir);
        outcome["metrics"] = run.metrics;
        outcome["topology"] = hex(run.topology);
        outcome["topology_updates"] = run.history.empty() ? 0 : run.history.back().topology_updates;
      }
    } catch (const std::exception& e) {
      if (comm.size() > 1 && dynamic_cast<const TrainingError*>(&e) == nullptr) {
        // A failure on one rank only would leave the others waiting in a collective: end the run; the rerun
        // resumes every interrupted job from its checkpoint.
        spdlog::critical("rank-local failure in a data-parallel job, aborting the run: {}", e.what());
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
      outcome["error"] = e.what();
    }
    return outcome;
  }

  // The group leader predicts the test cases (the other ranks of a group wait for the next job).
  static nlohmann::json run_ensemble(const SweepOptions& options, const nlohmann::json& job,
                                     Communicator& comm, const std::atomic<bool>* stop,
                                     const EnsembleHooks& hooks) {
    nlohmann::json outcome = {{"job", job.at("job")}, {"kind", "ensemble"}};
    if (!comm.is_leader()) return outcome;
    EnsembleSpec spec;
    spec.sparsity = job.at("sparsity");
    spec.seed = job.at("seed");
    spec.folds = job.at("folds").get<std::vector<int>>();
    spec.fold_dirs = job.at("fold_dirs").get<std::vector<std::string>>();
    spec.out_dir = job.at("out_dir");
    spec.device = local_training_device();
    try {
      const EnsembleRun run = run_ensemble_job(options.config, spec, stop, hooks);
      if (run.stopped)
        outcome["preempted"] = true;
      else
        outcome["metrics"] = run.report;
    } catch (const ConfigError& e) {  // bad input (InputError too): no retry can fix it
      outcome["error"] = e.what();
      outcome["permanent"] = true;
    } catch (const std::exception& e) {
      outcome["error"] = e.what();
    }
    return outcome;
  }

 private:
  const SweepOptions& options_;
  const std::atomic<bool>* stop_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<StatusServer> status_server_;
  std::unique_ptr<SweepDisplay> display_;  // serve() and run_in_process()
  int64_t experiment_id_ = 0;
  bool failed_ = false;
  bool input_failed_ = false;  // some job failed on bad input (exit 2)
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
      MPI_Iprobe(kCoordinator, kStopNow, MPI_COMM_WORLD, &pending, MPI_STATUS_IGNORE);
      if (pending) {
        receive_message(kCoordinator, kStopNow);
        flag_->store(true);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  std::atomic<bool>* flag_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// The coordinator's answer to READY (STOP_NOW messages are left to the StopListener).
nlohmann::json receive_reply() {
  while (true) {
    for (int tag : {kJob, kWait, kStop}) {
      int pending = 0;
      MPI_Iprobe(kCoordinator, tag, MPI_COMM_WORLD, &pending, MPI_STATUS_IGNORE);
      if (!pending) continue;
      nlohmann::json body = receive_message(kCoordinator, tag);
      body["tag"] = tag;
      return body;
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
    std::string reply;
    if (leader) {
      send_message(kCoordinator, kReady,
                   {{"group", group_index}, {"node", host_name()}, {"stop", stop.load()}});
      nlohmann::json body = receive_reply();
      reply = body.dump();
    }
    comm->broadcast_bytes(reply, 0);
    const nlohmann::json message = nlohmann::json::parse(reply);
    const int tag = message.at("tag");
    if (tag == kStop) break;
    if (tag == kWait) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    const int64_t job = message.at("job");
    TrainerHooks hooks;
    if (leader) {
      hooks.on_epoch = [job](const EpochRecord& r) {
        send_message(kCoordinator, kProgress, {{"job", job}, {"epoch", r.to_json()}});
      };
      hooks.on_checkpoint = [job](const std::string& path, int64_t iteration) {
        send_message(kCoordinator, kCheckpoint,
                     {{"job", job}, {"path", path}, {"sha256", sha256_file(path)}, {"iteration", iteration}});
      };
      hooks.on_step = throttled_steps(
          [job](const StepProgress& p) {
            send_message(kCoordinator, kProgress, {{"job", job}, {"step", step_to_json(p)}});
          },
          0.4);
    }
    EnsembleHooks ensemble_hooks;
    if (leader)
      ensemble_hooks.on_case = [job](const std::string& case_id, std::size_t done, std::size_t total) {
        send_message(kCoordinator, kCheckpoint,
                     {{"job", job}, {"case", case_id}, {"done", done}, {"total", total}});
      };
    log.attach(message.at("out_dir"));
    spdlog::info("rank {} (group {}, {}): job {} attempt {}", world_rank, group_index, host_name(), job,
                 message.value("attempt", 1));
    const nlohmann::json outcome =
        Coordinator::run_claimed_job(options, message, *comm, &stop, hooks, ensemble_hooks);
    if (outcome.contains("error"))
      spdlog::warn("job {} failed: {}", job, outcome.at("error").get<std::string>());
    log.detach();
    const bool job_preempted = outcome.value("preempted", false);
    if (leader)
      send_message(kCoordinator,
                   job_preempted               ? kPreempted
                   : outcome.contains("error") ? kFailed
                                               : kResult,
                   outcome);
    preempted = preempted || job_preempted;
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
  std::string prepare_error;
  std::unique_ptr<Coordinator> coordinator;
  if (rank == 0) {
    coordinator = std::make_unique<Coordinator>(options, stop);
    try {
      coordinator->prepare();
    } catch (const ConfigError& e) {
      prepare_error = std::string("2") + e.what();
    } catch (const std::exception& e) {
      prepare_error = std::string("1") + e.what();
    }
  }
  int length = static_cast<int>(prepare_error.size());
  MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD);
  prepare_error.resize(static_cast<std::size_t>(length));
  MPI_Bcast(prepare_error.data(), length, MPI_CHAR, 0, MPI_COMM_WORLD);
  if (!prepare_error.empty()) {
    if (rank == 0) spdlog::error("{}", prepare_error.substr(1));
    return prepare_error[0] == '2' ? 2 : 1;
  }

  if (rank == 0) {
    std::vector<int> leaders;
    for (int g = 0; g < groups; ++g) leaders.push_back(1 + g * per_group);
    return coordinator->serve(groups, leaders);
  }
  const int code = run_worker_group(options, group, group_index, stop);
  MPI_Comm_free(&group);
  return code;
}

}  // namespace e2e
