// e2e evaluate: metrics of a folder of predicted label maps against a folder of reference label maps, like
// nnU-Net's folder evaluation: files paired by case id, Dice / NSD / HD per class and region, means over
// cases, a Markdown or JSON summary, and the full report (per case and summary) written atomically.
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "common/file_io.hpp"
#include "configs/config.hpp"
#include "data/nifti.hpp"
#include "metrics/evaluate.hpp"
#include "metrics/folder_evaluation.hpp"
#include "orchestrator/commands.hpp"

namespace e2e {

namespace {

struct EvaluateArguments {
  std::string prediction_dir;
  std::string reference_dir;
  std::string labels;
  std::string dataset_json;
  std::string regions;
  std::string tolerance;
  std::string dice_variant = "nnunet";
  std::string hd_variant = "surfel";
  std::string nsd_variant = "surfel";
  double hd_percentile = 95.0;
  int workers = 0;
  std::string format = "md";
  std::string out;
  bool allow_missing = false;
  bool reference_variants = true;
};

std::string trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t") - begin + 1);
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> items;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, separator)) items.push_back(trim(item));
  return items;
}

bool parse_int(const std::string& text, int& value) {
  std::size_t used = 0;
  try {
    value = std::stoi(text, &used);
  } catch (const std::exception&) {
    return false;
  }
  return used > 0 && used == text.size();
}

// "1,2,3" → {1, 2, 3}: int16 label values, no repeats.
std::vector<int> parse_label_list(const std::string& text, const std::string& field) {
  std::vector<int> labels;
  std::set<int> seen;
  for (const std::string& item : split(text, ',')) {
    int label = 0;
    if (!parse_int(item, label) || label < -32768 || label > 32767) {
      throw ConfigError(field + ": expected comma-separated integer labels, got '" + text + "'");
    }
    if (!seen.insert(label).second) throw ConfigError(field + ": label " + item + " is listed twice");
    labels.push_back(label);
  }
  if (labels.empty()) throw ConfigError(field + ": expected at least one label, got '" + text + "'");
  return labels;
}

// "whole:1,2,3;core:2,3" → regions.
std::vector<Region> parse_regions(const std::string& text) {
  std::vector<Region> regions;
  std::set<std::string> names;
  for (const std::string& item : split(text, ';')) {
    if (item.empty()) continue;
    const auto colon = item.find(':');
    const std::string name = colon == std::string::npos ? "" : trim(item.substr(0, colon));
    if (name.empty()) {
      throw ConfigError(
          "--regions: expected name:labels entries separated by ';' (e.g. \"whole:1,2,3;core:2,3\"), got '" +
          item + "'");
    }
    if (!names.insert(name).second) throw ConfigError("--regions: region '" + name + "' is defined twice");
    regions.push_back({name, parse_label_list(item.substr(colon + 1), "--regions: " + name), std::nullopt});
  }
  if (regions.empty())
    throw ConfigError("--regions: expected at least one name:labels entry, got '" + text + "'");
  return regions;
}

double parse_tolerance_value(const std::string& text, const std::string& what) {
  std::size_t used = 0;
  double value = -1.0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !(value >= 0.0) || std::isinf(value)) {
    throw ConfigError("--tolerance: " + what + ": expected a finite tolerance >= 0 mm, got '" + text + "'");
  }
  return value;
}

// "2" (every structure), "1:5,2:3" (per class), "whole:3" (per region), or a mix such as "2,1:5".
void apply_tolerances(const std::string& text, EvaluationOptions& options) {
  bool default_seen = false;
  for (const std::string& item : split(text, ',')) {
    const auto colon = item.find(':');
    if (colon == std::string::npos) {
      if (default_seen) throw ConfigError("--tolerance: more than one default tolerance in '" + text + "'");
      default_seen = true;
      options.nsd_tolerance_mm = parse_tolerance_value(item, "default");
      continue;
    }
    const std::string key = trim(item.substr(0, colon));
    const double value = parse_tolerance_value(trim(item.substr(colon + 1)), key);
    int label = 0;
    if (parse_int(key, label)) {
      options.nsd_tolerance_per_class[label] = value;
      continue;
    }
    auto region = std::find_if(options.regions.begin(), options.regions.end(),
                               [&](const Region& r) { return r.name == key; });
    if (region == options.regions.end()) {
      throw ConfigError("--tolerance: '" + key + "' is neither a label value nor a region name");
    }
    region->nsd_tolerance_mm = value;
  }
}

EvaluationOptions options_from_arguments(const EvaluateArguments& arguments) {
  EvaluationOptions options;
  if (!arguments.dataset_json.empty()) {
    DatasetLabels declared = read_dataset_json_labels(arguments.dataset_json);
    if (declared.classes.empty() && declared.regions.empty()) {
      throw InputError(arguments.dataset_json + ": labels: declares no foreground label");
    }
    options.classes = declared.classes;
    options.class_names = declared.class_names;
    options.regions = declared.regions;
  }
  if (!arguments.labels.empty()) options.classes = parse_label_list(arguments.labels, "--labels");
  if (!arguments.regions.empty()) options.regions = parse_regions(arguments.regions);
  if (!arguments.tolerance.empty()) apply_tolerances(arguments.tolerance, options);
  for (const auto& [label, tolerance] : options.nsd_tolerance_per_class) {
    if (!options.classes.empty() &&
        std::find(options.classes.begin(), options.classes.end(), label) == options.classes.end()) {
      throw ConfigError("--tolerance: label " + std::to_string(label) + " is not evaluated");
    }
  }
  if (!(arguments.hd_percentile >= 0.0 && arguments.hd_percentile <= 100.0)) {
    throw ConfigError("--hd-percentile: expected a value in [0, 100]");
  }
  options.hd_percentile = arguments.hd_percentile;
  options.dice_variant = parse_dice_variant(arguments.dice_variant);
  options.nsd_variant = parse_nsd_variant(arguments.nsd_variant);
  options.hd_variant = parse_hausdorff_variant(arguments.hd_variant);
  options.reference_variants = arguments.reference_variants;
  options.validate();
  return options;
}

std::string join_labels(const std::vector<int>& labels) {
  std::string out;
  for (std::size_t i = 0; i < labels.size(); ++i) out.append(i ? "," : "").append(std::to_string(labels[i]));
  return out;
}

std::string score(double value) {
  if (std::isnan(value)) return "n/a";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return fmt::format("{:.4f}", value);
}

std::string distance(double value) {
  if (std::isnan(value)) return "n/a";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return fmt::format("{:.2f}", value);
}

// A name inside a Markdown table cell.
std::string cell(std::string text) {
  std::string escaped;  // built by appending: GCC 12 warns falsely about string::insert at -O2
  for (char c : text) {
    if (c == '|') escaped += '\\';
    escaped += c;
  }
  return escaped;
}

std::string hd_name(const EvaluationOptions& options) {
  return fmt::format("HD{:g}", options.hd_percentile);
}

void print_markdown(std::ostream& out, const EvaluateArguments& arguments, const FolderEvaluation& evaluation,
                    const EvaluationSummary& summary, const FolderPairs& pairs) {
  const EvaluationOptions& options = evaluation.options;
  out << fmt::format("e2e evaluate: {} case(s), predictions {} vs references {}\n", summary.cases,
                     arguments.prediction_dir, arguments.reference_dir);
  if (!pairs.missing_predictions.empty()) {
    out << fmt::format("not evaluated (no prediction): {}\n", pairs.missing_predictions.size());
  }
  std::string tolerances = fmt::format("{:g} mm", options.nsd_tolerance_mm);
  for (const auto& [label, mm] : options.nsd_tolerance_per_class)
    tolerances += fmt::format(", {}: {:g} mm", label, mm);
  for (const Region& region : options.regions) {
    if (region.nsd_tolerance_mm)
      tolerances += fmt::format(", {}: {:g} mm", region.name, *region.nsd_tolerance_mm);
  }
  out << fmt::format("Dice: {} · NSD: {} (tolerance {}) · {}: {}{}\n\n", to_string(options.dice_variant),
                     to_string(options.nsd_variant), tolerances, hd_name(options),
                     to_string(options.hd_variant),
                     evaluation.classes_discovered ? " · labels found in the files" : "");
  const bool variants = options.reference_variants;
  if (variants) {
    out << "Published-number variants: NSD (3,2,1) = surfel NSD at the same tolerance with the spacing\n"
           "fixed to (3, 2, 1) mm in (z, y, x), as the E2ENet code computes it; HD95 pooled = medpy's hd95\n"
           "as nnU-Net v1 calls it (cases where a side is empty are not scored)\n\n";
  }
  out << fmt::format("| structure | labels | cases | Dice | NSD | tolerance (mm) | {} (mm) |{}\n",
                     hd_name(options), variants ? " NSD (3,2,1) | HD95 pooled (mm) |" : "");
  out << "|---|---|---:|---:|---:|---:|---:|" << (variants ? "---:|---:|" : "") << "\n";
  const auto variant_cells = [&](double nsd_fixed_spacing, double hd95_pooled, const char* emphasis) {
    if (!variants) return std::string();
    return fmt::format(" {1}{0}{1} | {1}{2}{1} |", score(nsd_fixed_spacing), emphasis, distance(hd95_pooled));
  };
  auto rows = [&](bool regions) {
    for (const StructureSummary& s : summary.structures) {
      if (s.is_region != regions) continue;
      out << fmt::format("| {} | {} | {} | {} | {} | {:g} | {} |{}\n", cell(s.name), join_labels(s.labels),
                         s.cases_scored, score(s.mean_dice), score(s.mean_nsd), s.nsd_tolerance_mm,
                         distance(s.mean_hd),
                         variant_cells(s.mean_nsd_fixed_spacing, s.mean_hd95_pooled, ""));
    }
  };
  rows(false);
  out << fmt::format("| **mean (classes)** | | | **{}** | **{}** | | **{}** |{}\n", score(summary.mean_dice),
                     score(summary.mean_nsd), distance(summary.mean_hd),
                     variant_cells(summary.mean_nsd_fixed_spacing, summary.mean_hd95_pooled, "**"));
  if (!options.regions.empty()) {
    rows(true);
    out << fmt::format(
        "| **mean (regions)** | | | **{}** | **{}** | | **{}** |{}\n", score(summary.region_mean_dice),
        score(summary.region_mean_nsd), distance(summary.region_mean_hd),
        variant_cells(summary.region_mean_nsd_fixed_spacing, summary.region_mean_hd95_pooled, "**"));
  }
}

nlohmann::json report_json(const EvaluateArguments& arguments, const FolderEvaluation& evaluation,
                           const FolderPairs& pairs) {
  nlohmann::json report = evaluation_report(evaluation.options, evaluation.cases);
  nlohmann::json per_class = nlohmann::json::object();
  for (const auto& [label, mm] : evaluation.options.nsd_tolerance_per_class)
    per_class[std::to_string(label)] = mm;
  report["metric_variants"]["nsd_tolerance_per_class"] = per_class;
  report["prediction_folder"] = arguments.prediction_dir;
  report["reference_folder"] = arguments.reference_dir;
  report["labels_from_files"] = evaluation.classes_discovered;
  report["missing_predictions"] = pairs.missing_predictions;
  for (std::size_t i = 0; i < pairs.cases.size(); ++i) {
    report["cases"][i]["prediction_file"] = pairs.cases[i].prediction;
    report["cases"][i]["reference_file"] = pairs.cases[i].reference;
  }
  return report;
}

std::shared_ptr<spdlog::logger> stderr_logger() {
  // Logs go to stderr so that stdout holds only the table or the JSON.
  auto logger =
      std::make_shared<spdlog::logger>("evaluate", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  logger->set_level(spdlog::default_logger()->level());
  return logger;
}

void run_evaluate(const EvaluateArguments& arguments) {
  const auto log = stderr_logger();
  const EvaluationOptions options = options_from_arguments(arguments);
  const FolderPairs pairs =
      pair_folders(arguments.prediction_dir, arguments.reference_dir, arguments.allow_missing);
  if (!pairs.missing_predictions.empty()) {
    log->warn("evaluate: {} reference file(s) have no prediction and are not evaluated (--allow-missing)",
              pairs.missing_predictions.size());
  }
  const int workers = arguments.workers > 0
                          ? arguments.workers
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  log->info("evaluate: {} case(s) on {} worker(s), labels {}", pairs.cases.size(),
            std::min<std::size_t>(workers, pairs.cases.size()),
            options.classes.empty() ? "from the files" : join_labels(options.classes));
  const auto start = std::chrono::steady_clock::now();
  const LabelReader read = [](const std::string& path) { return read_nifti_labels(path); };
  const CaseProgress progress = [&](std::size_t done, std::size_t total, const CaseMetrics& metrics) {
    const std::size_t step = std::max<std::size_t>(1, total / 10);
    if (done % step == 0 || done == total)
      log->info("evaluate: {}/{} case(s) done", done, total);
    else
      log->debug("evaluate: [{}/{}] {}", done, total, metrics.case_id);
  };
  const FolderEvaluation evaluation = evaluate_folder_pairs(pairs.cases, options, read, workers, progress);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (evaluation.classes_discovered) {
    log->info("evaluate: labels found in the files: {}", join_labels(evaluation.options.classes));
  }
  log->info("evaluate: {} case(s) in {:.2f} s", evaluation.cases.size(), seconds);

  const EvaluationSummary summary = summarize(evaluation.cases);
  const nlohmann::json report = report_json(arguments, evaluation, pairs);
  if (!arguments.out.empty()) {
    try {
      write_file_atomically(arguments.out, report.dump(2) + "\n");
    } catch (const std::exception& e) {
      throw InputError("--out: " + std::string(e.what()));
    }
    log->info("evaluate: wrote {}", arguments.out);
  }
  if (arguments.format == "json")
    std::cout << report.dump(2) << "\n";
  else
    print_markdown(std::cout, arguments, evaluation, summary, pairs);
}

}  // namespace

void add_evaluate_command(CLI::App& app) {
  auto arguments = std::make_shared<EvaluateArguments>();
  CLI::App* cmd = app.add_subcommand(
      "evaluate",
      "Dice, NSD and HD of a folder of predicted label maps against a folder of references (NIfTI)");
  cmd->add_option("--pred", arguments->prediction_dir, "folder of predicted label maps (.nii, .nii.gz)")
      ->required();
  cmd->add_option("--gt", arguments->reference_dir, "folder of reference label maps, paired by file name")
      ->required();
  auto* labels =
      cmd->add_option("--labels", arguments->labels,
                      "comma-separated labels to score (default: every positive label in the files)");
  auto* dataset =
      cmd->add_option("--dataset-json", arguments->dataset_json,
                      "dataset.json whose labels (and nnU-Net v2 regions) are scored, with their names");
  labels->excludes(dataset);
  cmd->add_option("--regions", arguments->regions,
                  "regions scored as 'label in set', e.g. \"whole:1,2,3;core:2,3\"");
  cmd->add_option(
      "--tolerance", arguments->tolerance,
      "NSD tolerance in mm: one value (default 1), per label \"1:5,2:3\", per region \"whole:3\"");
  cmd->add_option("--dice-variant", arguments->dice_variant, "Dice of a structure absent from the reference")
      ->check(CLI::IsMember({"nnunet", "monai"}))
      ->capture_default_str();
  cmd->add_option("--hd-variant", arguments->hd_variant, "Hausdorff distance variant")
      ->check(CLI::IsMember({"surfel", "pooled", "monai"}))
      ->capture_default_str();
  cmd->add_option("--nsd-variant", arguments->nsd_variant, "NSD variant")
      ->check(CLI::IsMember({"surfel", "monai_voxel"}))
      ->capture_default_str();
  cmd->add_option("--hd-percentile", arguments->hd_percentile, "percentile of the Hausdorff distance")
      ->capture_default_str();
  cmd->add_option("--workers", arguments->workers, "cases evaluated in parallel (0: one per core)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--format", arguments->format, "what stdout shows")
      ->check(CLI::IsMember({"md", "json"}))
      ->capture_default_str();
  cmd->add_option("--out", arguments->out,
                  "write the JSON report (every case and the summary) here, atomically");
  cmd->add_flag("--allow-missing", arguments->allow_missing,
                "evaluate the cases that have a prediction when some references have none");
  cmd->add_flag("--reference-variants,!--no-reference-variants", arguments->reference_variants,
                "also compute the published-number variants: NSD at the E2ENet code's fixed (3, 2, 1) mm "
                "spacing and medpy's pooled HD95 (default on)");
  cmd->callback([arguments] { run_evaluate(*arguments); });
}

}  // namespace e2e
