// e2e db: query the experiment store (read-only), export it, and import result bundles (the one write).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "configs/config.hpp"
#include "db/bundle.hpp"
#include "db/csv.hpp"
#include "db/export.hpp"
#include "db/fusion.hpp"
#include "db/plot.hpp"
#include "db/reader.hpp"
#include "db/status.hpp"
#include "db/store.hpp"
#include "db/table.hpp"
#include "orchestrator/commands.hpp"

namespace e2e {

namespace {

struct DbOptions {
  std::string db;
  std::string format;
  std::string experiment;
  std::string status;
  std::string job;
  std::string baselines;
  std::string output;
  std::string png;
  bool per_class = false;
  std::string split;  // cv | test; empty: test when the experiment has test results, else cv
  PtWeights weights;
  std::vector<std::string> bundles;
  bool allow_config_change = false;
  bool rollback_journal = false;
};

std::optional<std::string> optional_text(const std::string& text) {
  return text.empty() ? std::nullopt : std::optional<std::string>(text);
}

// Writes to --output when given (complete or not at all), else to stdout.
void emit(const std::string& text, const std::string& output) {
  if (output.empty()) {
    std::cout << text << std::flush;
    return;
  }
  const std::string staging = output + ".tmp";
  {
    std::ofstream out(staging, std::ios::binary);
    out << text;
    if (!out.flush()) throw ConfigError("--output: cannot write '" + output + "'");
  }
  if (std::rename(staging.c_str(), output.c_str()) != 0)
    throw ConfigError("--output: cannot write '" + output + "'");
  spdlog::info("wrote {}", output);
}

// A small table as Markdown, CSV or JSON (an array of objects keyed by the header).
std::string format_rows(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows, const std::string& format) {
  std::string out;
  if (format == "json") {
    nlohmann::json array = nlohmann::json::array();
    for (const auto& row : rows) {
      nlohmann::json object;
      for (std::size_t c = 0; c < header.size(); ++c) object[header[c]] = row[c];
      array.push_back(object);
    }
    return array.dump(2) + "\n";
  }
  if (format == "csv") {
    for (std::size_t c = 0; c < header.size(); ++c) out.append(c ? "," : "").append(csv_escape(header[c]));
    out += "\n";
    for (const auto& row : rows) {
      for (std::size_t c = 0; c < row.size(); ++c) out.append(c ? "," : "").append(csv_escape(row[c]));
      out += "\n";
    }
    return out;
  }
  const auto line = [](const std::vector<std::string>& cells) {
    std::string text = "|";
    for (const std::string& cell : cells) {
      std::string escaped;
      for (char ch : cell) escaped += ch == '|' ? std::string("\\|") : std::string(1, ch == '\n' ? ' ' : ch);
      text += " " + escaped + " |";
    }
    return text + "\n";
  };
  out += line(header) + "|";
  for (std::size_t c = 0; c < header.size(); ++c) out += "---|";
  out += "\n";
  for (const auto& row : rows) out += line(row);
  return out;
}

// ----------------------------------------------------------------------------------------------------------
// Subcommands

void run_experiments(DbOptions o) {
  if (o.format.empty()) o.format = "md";
  const StoreReader reader(o.db);
  std::vector<std::vector<std::string>> rows;
  for (const ExperimentSummary& s : reader.experiments()) {
    const auto count = [&](const char* status) {
      auto it = s.jobs_by_status.find(status);
      return std::to_string(it == s.jobs_by_status.end() ? 0 : it->second);
    };
    rows.push_back({std::to_string(s.experiment.id), s.experiment.name, std::to_string(s.jobs), count("done"),
                    count("running"), count("pending"), count("failed"),
                    s.experiment.config_hash.substr(0, 12), s.experiment.code_version,
                    s.experiment.created_at});
  }
  emit(format_rows({"id", "name", "jobs", "done", "running", "pending", "failed", "config_hash",
                    "code_version", "created_at"},
                   rows, o.format),
       o.output);
}

void run_jobs(DbOptions o) {
  if (o.format.empty()) o.format = "md";
  JobFilter filter;
  if (!o.status.empty()) filter.status = parse_job_status(o.status, "--status");
  filter.experiment = optional_text(o.experiment);
  const StoreReader reader(o.db);
  std::vector<std::vector<std::string>> rows;
  for (const Job& j : reader.jobs(filter))
    rows.push_back({std::to_string(j.id), j.experiment,
                    j.kind == JobKind::Ensemble ? fmt::format("test({})", fmt::join(j.folds, ","))
                                                : std::to_string(j.fold),
                    fmt::format("{}", j.sparsity), std::to_string(j.seed), to_string(j.status),
                    fmt::format("{}/{}", j.attempts, j.max_attempts), j.node, j.heartbeat_at,
                    j.checkpoint ? std::to_string(j.checkpoint->iteration) : "", j.error,
                    j.key.substr(0, 12)});
  emit(format_rows({"id", "experiment", "fold", "sparsity", "seed", "status", "attempts", "node",
                    "heartbeat_at", "checkpoint_iteration", "error", "key"},
                   rows, o.format),
       o.output);
}

void run_table(DbOptions o) {
  if (o.format.empty()) o.format = "md";
  const std::vector<BaselineRow> baselines =
      o.baselines.empty() ? std::vector<BaselineRow>{} : read_baselines_csv(o.baselines);
  const StoreReader reader(o.db);
  const Experiment experiment = reader.experiment(o.experiment);
  const Split split = o.split.empty()
                          ? (reader.has_results(experiment.id, Split::Test) ? Split::Test : Split::Cv)
                          : parse_split(o.split, "--split");
  ReportTable table =
      build_table(experiment.name, reader.outcomes(experiment.id, split), baselines, o.weights, split);
  const nlohmann::json config = nlohmann::json::parse(experiment.config_json, nullptr, false);
  const nlohmann::json* level0 = nullptr;
  if (config.is_object() && config.contains("sparsity") && config["sparsity"].is_object() &&
      config["sparsity"].contains("level0_density"))
    level0 = &config["sparsity"]["level0_density"];
  for (TableRow& row : table.rows)
    if (!row.baseline && level0 && level0->is_number()) row.level0_density = level0->get<double>();
  emit(format_table(table, parse_table_format(o.format), o.per_class), o.output);
}

void run_curves(const DbOptions& o) {
  const StoreReader reader(o.db);
  const Job job = reader.find_job(o.job);
  const std::vector<EpochRecord> epochs = reader.epochs(job.id);
  if (epochs.empty()) spdlog::warn("job {} has no epochs recorded yet", job.id);
  emit(curves_csv(epochs), o.output);
  if (o.png.empty()) return;
  const std::string title = fmt::format("{} fold {} s={} seed {} (job {})", job.experiment, job.fold,
                                        job.sparsity, job.seed, job.id);
  if (plot_curves_png(epochs, title, o.png))
    spdlog::info("wrote {}", o.png);
  else
    spdlog::warn("gnuplot is not installed: no PNG written (the CSV has the numbers)");
}

void run_fusion(DbOptions o) {
  if (o.format.empty()) o.format = "text";
  const StoreReader reader(o.db);
  const FusionReport report = job_fusion(reader, reader.find_job(o.job));
  emit(o.format == "json" ? fusion_json(report) : fusion_text(report), o.output);
  if (o.png.empty()) return;
  const std::string title = fmt::format("fusion directions: {} fold {} s={} (job {})", report.job.experiment,
                                        report.job.fold, report.job.sparsity, report.job.id);
  if (plot_fusion_png(report.nodes, title, o.png))
    spdlog::info("wrote {}", o.png);
  else
    spdlog::warn("gnuplot is not installed: no PNG written");
}

void run_export(DbOptions o) {
  if (o.format.empty()) o.format = "jsonl";
  const StoreReader reader(o.db);
  const ExportReport report =
      export_store(reader, o.output, parse_export_format(o.format), optional_text(o.experiment));
  int64_t rows = 0;
  for (const auto& [table, n] : report.rows) rows += n;
  spdlog::info("exported {} rows of {} tables and {} topology files to {}", rows, report.rows.size(),
               report.mask_files, o.output);
}

void run_status(DbOptions o) {
  if (o.format.empty()) o.format = "text";
  const StoreReader reader(o.db);
  if (!o.experiment.empty()) reader.experiment(o.experiment);
  const StatusSummary summary = summarize_status(reader, optional_text(o.experiment));
  emit(o.format == "json" ? status_json(summary) : status_text(summary), o.output);
}

void run_import(const DbOptions& o) {
  const std::vector<std::string> bundles = find_bundles(o.bundles);
  StoreOptions options;
  if (o.rollback_journal) options.journal = JournalMode::Rollback;
  Store store(o.db, options);
  int imported = 0;
  for (const ImportOutcome& outcome : import_bundles(store, bundles, o.allow_config_change)) {
    if (outcome.imported) {
      ++imported;
      spdlog::info("imported {} (job {})", outcome.source, outcome.job_id);
    } else {
      spdlog::info("skipped {} (job {}): {}", outcome.source, outcome.job_id, outcome.note);
    }
  }
  spdlog::info("{} of {} bundles imported into {}", imported, bundles.size(), o.db);
}

// ----------------------------------------------------------------------------------------------------------
// Registration

// The first format is the default (the options are shared, so the default is applied when the command runs).
void add_format(CLI::App* cmd, DbOptions& o, std::vector<std::string> formats) {
  cmd->add_option("--format", o.format, "output format")
      ->check(CLI::IsMember(formats))
      ->default_str(formats.front());
}

void add_output(CLI::App* cmd, DbOptions& o) {
  cmd->add_option("-o,--output", o.output, "write to this file instead of stdout");
}

CLI::Option* add_experiment_filter(CLI::App* cmd, DbOptions& o, const char* help) {
  return cmd->add_option("--experiment", o.experiment, help);
}

}  // namespace

void add_db_command(CLI::App& app) {
  auto options = std::make_shared<DbOptions>();
  DbOptions& o = *options;
  CLI::App* db = app.add_subcommand(
      "db", "Query the experiment store (opened read-only), export it, or import result bundles");
  db->add_option("--db", o.db, "the SQLite experiment store (the sweep's store.path)")->required();
  db->fallthrough();
  db->require_subcommand(1);
  db->footer(
      "Dice and NSD are reported in percent. Filter values are matched exactly (never interpreted as SQL).\n"
      "Examples:\n"
      "  e2e db --db e2e.db jobs --status failed\n"
      "  e2e db --db e2e.db table --experiment amos --per-class --baselines published.csv --format latex\n"
      "  e2e db --db e2e.db fusion --job 12 --png fusion.png");

  CLI::App* experiments = db->add_subcommand("experiments", "List the experiments with job counts by state");
  add_format(experiments, o, {"md", "csv", "json"});
  add_output(experiments, o);
  experiments->callback([options] { run_experiments(*options); });

  CLI::App* jobs = db->add_subcommand("jobs", "List jobs (fold × sparsity × seed cells) and their state");
  jobs->add_option("--status", o.status, "only jobs in this state")
      ->check(CLI::IsMember({"pending", "running", "done", "failed", "preempted", "interrupted"}));
  add_experiment_filter(jobs, o, "only jobs of this experiment");
  add_format(jobs, o, {"md", "csv", "json"});
  add_output(jobs, o);
  jobs->callback([options] { run_jobs(*options); });

  CLI::App* table = db->add_subcommand(
      "table",
      "The paper's Table-1 layout: one row per sparsity (and baseline), mDice ± sd over folds, PT score");
  add_experiment_filter(table, o, "the experiment to tabulate")->required();
  table->add_flag("--per-class", o.per_class, "add one Dice column per class (mean over folds and seeds)");
  table
      ->add_option("--split", o.split,
                   "cv: the folds' validation cases; test: the held-out test set (fold ensembles, "
                   "post-processed). Default: test when the experiment has test results, else cv")
      ->check(CLI::IsMember({"cv", "test"}));
  table
      ->add_option("--baselines", o.baselines,
                   "CSV of published rows: method, per-class Dice…, mDice, mNSD, params_m, gflops (percent)")
      ->check(CLI::ExistingFile);
  table->add_option("--pt-accuracy-weight", o.weights.accuracy, "PT weight of mDice/mDice_max")
      ->capture_default_str();
  table
      ->add_option("--pt-resource-weight", o.weights.resource,
                   "PT weight of (Params_min/Params + FLOPs_min/FLOPs)")
      ->capture_default_str();
  add_format(table, o, {"md", "csv", "latex", "json"});
  add_output(table, o);
  table->callback([options] { run_table(*options); });

  CLI::App* curves =
      db->add_subcommand("curves", "Learning curves of a job: CSV (stdout or --output) and a PNG");
  curves->add_option("--job", o.job, "job id, or 8+ leading digits of its key")->required();
  curves->add_option("--png", o.png, "also draw the curves into this PNG (needs gnuplot)");
  add_output(curves, o);
  curves->callback([options] { run_curves(*options); });

  CLI::App* fusion = db->add_subcommand(
      "fusion",
      "Share of active kernels per fusion direction (forward, upward, downward) for every fusion node");
  fusion->add_option("--job", o.job, "job id, or 8+ leading digits of its key")->required();
  fusion->add_option("--png", o.png, "also draw a stacked bar chart into this PNG (needs gnuplot)");
  add_format(fusion, o, {"text", "json"});
  add_output(fusion, o);
  fusion->callback([options] { run_fusion(*options); });

  CLI::App* status = db->add_subcommand("status", "Jobs by state, progress in epochs and an ETA");
  add_experiment_filter(status, o, "only this experiment");
  add_format(status, o, {"text", "json"});
  add_output(status, o);
  status->callback([options] { run_status(*options); });

  CLI::App* exporter = db->add_subcommand(
      "export",
      "Write the store (or one experiment) to a new folder: one file per table plus topology files");
  exporter->add_option("-o,--output", o.output, "the folder to create (must not exist or be empty)")
      ->required();
  add_experiment_filter(exporter, o, "only this experiment");
  add_format(exporter, o, {"jsonl", "csv"});
  exporter->callback([options] { run_export(*options); });

  CLI::App* importer = db->add_subcommand(
      "import",
      "Ingest result bundles written by Slurm array tasks (idempotent; creates the store if missing)");
  importer->add_option("bundles", o.bundles, "bundle folders, or folders of bundle folders")->required();
  importer->add_flag("--allow-config-change", o.allow_config_change,
                     "accept bundles whose experiment exists with another config hash");
  importer->add_flag("--rollback-journal", o.rollback_journal,
                     "use the rollback journal instead of WAL (network filesystems)");
  importer->callback([options] { run_import(*options); });
}

}  // namespace e2e
