#include "db/table.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "common/errors.hpp"
#include "common/file_io.hpp"
#include "common/json_number.hpp"
#include "db/csv.hpp"

namespace e2e {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double nan_mean(const std::vector<double>& values) {
  double sum = 0;
  int n = 0;
  for (double v : values)
    if (!std::isnan(v)) {
      sum += v;
      ++n;
    }
  return n ? sum / n : kNaN;
}

double sample_sd(const std::vector<double>& values) {
  if (values.size() < 2) return kNaN;
  const double mean = nan_mean(values);
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  return std::sqrt(squares / static_cast<double>(values.size() - 1));
}

void add_class(std::vector<std::string>& classes, const std::string& name) {
  if (std::find(classes.begin(), classes.end(), name) == classes.end()) classes.push_back(name);
}

// "none", "foreground", "classes [1,3]" or "foreground + class [2]" from a result's decision JSON
// (metrics/postprocess.hpp: "foreground_as_one", "largest_component_classes"); "off" when none was made.
std::string postprocessing_label(const ResultSummary& summary) {
  const nlohmann::json decision = nlohmann::json::parse(summary.postprocessing, nullptr, false);
  if (!decision.is_object()) return summary.postprocessing.empty() ? "off" : "?";
  std::vector<std::string> parts;
  if (decision.value("foreground_as_one", false)) parts.emplace_back("foreground");
  const nlohmann::json classes = decision.value("largest_component_classes", nlohmann::json::array());
  if (classes.is_array() && !classes.empty())
    parts.push_back(fmt::format("class{} {}", classes.size() > 1 ? "es" : "", classes.dump()));
  return parts.empty() ? "none" : fmt::format("{}", fmt::join(parts, " + "));
}

TableRow sparsity_row(double sparsity, const std::vector<const JobOutcome*>& jobs,
                      const std::vector<std::string>& classes) {
  TableRow row;
  row.method = fmt::format("E2ENet (s={})", sparsity);
  row.sparsity = sparsity;
  row.jobs = static_cast<int>(jobs.size());
  std::map<int, std::vector<double>> dice_by_fold;
  std::vector<double> nsd, hd, params, flops;
  std::map<std::string, std::vector<double>> class_values;
  for (const JobOutcome* job : jobs) {
    dice_by_fold[job->fold].push_back(job->summary.mean_dice);
    nsd.push_back(job->summary.mean_nsd);
    hd.push_back(job->summary.mean_hd95);
    params.push_back(static_cast<double>(job->summary.params));
    flops.push_back(job->summary.flops);
    for (const auto& [name, dice] : job->class_dice) class_values[name].push_back(dice);
  }
  std::vector<double> fold_means;
  for (const auto& [fold, values] : dice_by_fold) fold_means.push_back(nan_mean(values));
  row.folds = static_cast<int>(fold_means.size());
  row.mdice = 100 * nan_mean(fold_means);
  row.mdice_sd = 100 * sample_sd(fold_means);
  row.mnsd = 100 * nan_mean(nsd);
  row.mhd95 = nan_mean(hd);
  row.params_m = nan_mean(params) / 1e6;
  row.gflops = nan_mean(flops) / 1e9;
  std::vector<double> dense_ms, sparse_ms;
  std::set<std::string> postprocessing;
  for (const JobOutcome* job : jobs) {
    dense_ms.push_back(job->summary.ms_per_patch_dense);
    sparse_ms.push_back(job->summary.ms_per_patch_sparse);
    row.cases_scored += job->summary.cases_scored;
    row.cases_total += job->summary.cases_total;
    if (job->summary.split == Split::Test) postprocessing.insert(postprocessing_label(job->summary));
  }
  row.ms_per_patch_dense = nan_mean(dense_ms);
  row.ms_per_patch_sparse = nan_mean(sparse_ms);
  row.postprocessing = fmt::format("{}", fmt::join(postprocessing, " / "));
  for (const std::string& name : classes) {
    auto it = class_values.find(name);
    row.class_dice.push_back(it == class_values.end() ? kNaN : 100 * nan_mean(it->second));
  }
  return row;
}

TableRow baseline_row(const BaselineRow& baseline, const std::vector<std::string>& classes) {
  TableRow row;
  row.method = baseline.method;
  row.baseline = true;
  row.mdice = baseline.mdice;
  row.mdice_sd = kNaN;
  row.mnsd = baseline.mnsd;
  row.mhd95 = kNaN;
  row.params_m = baseline.params_m;
  row.gflops = baseline.gflops;
  for (const std::string& name : classes) {
    double value = kNaN;
    for (const auto& [column, dice] : baseline.class_dice)
      if (column == name) value = dice;
    row.class_dice.push_back(value);
  }
  return row;
}

bool positive(double v) {
  return std::isfinite(v) && v > 0;
}

void fill_pt_scores(std::vector<TableRow>& rows, const PtWeights& weights) {
  double mdice_max = -std::numeric_limits<double>::infinity();
  double params_min = std::numeric_limits<double>::infinity();
  double flops_min = std::numeric_limits<double>::infinity();
  for (const TableRow& row : rows) {
    if (!positive(row.mdice) || !positive(row.params_m) || !positive(row.gflops)) continue;
    mdice_max = std::max(mdice_max, row.mdice);
    params_min = std::min(params_min, row.params_m);
    flops_min = std::min(flops_min, row.gflops);
  }
  for (TableRow& row : rows)
    row.pt = positive(row.mdice) && positive(row.params_m) && positive(row.gflops)
                 ? pt_score(row.mdice, row.params_m, row.gflops, mdice_max, params_min, flops_min, weights)
                 : kNaN;
}

}  // namespace

double pt_score(double mdice, double params, double flops, double mdice_max, double params_min,
                double flops_min, const PtWeights& weights) {
  return weights.accuracy * mdice / mdice_max + weights.resource * (params_min / params + flops_min / flops);
}

ReportTable build_table(const std::string& experiment, const std::vector<JobOutcome>& outcomes,
                        const std::vector<BaselineRow>& baselines, const PtWeights& weights, Split split) {
  ReportTable table;
  table.experiment = experiment;
  table.split = split;
  table.weights = weights;
  std::map<double, std::vector<const JobOutcome*>> by_sparsity;
  for (const JobOutcome& outcome : outcomes) {
    by_sparsity[outcome.sparsity].push_back(&outcome);
    for (const auto& [name, dice] : outcome.class_dice) add_class(table.classes, name);
  }
  for (const BaselineRow& baseline : baselines)
    for (const auto& [name, dice] : baseline.class_dice) add_class(table.classes, name);
  if (by_sparsity.empty() && baselines.empty())
    throw InputError("experiment '" + experiment +
                     "' has no finished job with a result yet, and no baselines were given");
  for (const BaselineRow& baseline : baselines) table.rows.push_back(baseline_row(baseline, table.classes));
  for (const auto& [sparsity, jobs] : by_sparsity)
    table.rows.push_back(sparsity_row(sparsity, jobs, table.classes));
  fill_pt_scores(table.rows, weights);
  return table;
}

// ----------------------------------------------------------------------------------------------------------
// Baselines CSV

namespace {

class BaselineColumns {
 public:
  BaselineColumns(const CsvRecord& header, const std::string& source) : source_(source) {
    for (std::size_t c = 0; c < header.fields.size(); ++c) {
      const std::string name = trim(header.fields[c]);
      if (name.empty())
        throw InputError(
            fmt::format("{}:{}:{}: empty column name in the header", source, header.line, c + 1));
      if (index_.count(name))
        throw InputError(fmt::format("{}:{}:{}: duplicate column '{}'", source, header.line, c + 1, name));
      index_[name] = c;
      names_.push_back(name);
    }
    for (const char* required : {"method", "mDice", "params_m", "gflops"})
      if (!index_.count(required))
        throw InputError(
            fmt::format("{}:{}: missing column '{}' (required: method, mDice, params_m, gflops; "
                        "optional: mNSD and one column per class)",
                        source, header.line, required));
  }

  std::size_t size() const { return names_.size(); }
  bool has(const std::string& name) const { return index_.count(name) > 0; }
  bool is_class(std::size_t column) const {
    static const std::vector<std::string> fixed = {"method", "mDice", "mNSD", "params_m", "gflops"};
    return std::find(fixed.begin(), fixed.end(), names_[column]) == fixed.end();
  }
  const std::string& name(std::size_t column) const { return names_[column]; }

  // The number in `name`'s cell; NaN for an empty cell unless required.
  double number(const CsvRecord& record, const std::string& name, bool required) const {
    return number_at(record, index_.at(name), required);
  }

  double number_at(const CsvRecord& record, std::size_t column, bool required) const {
    const std::string cell = trim(record.fields[column]);
    const std::string where = fmt::format("{}:{}:{} ({})", source_, record.line, column + 1, names_[column]);
    if (cell.empty()) {
      if (required) throw InputError(where + ": a value is required");
      return kNaN;
    }
    char* end = nullptr;
    const double value = std::strtod(cell.c_str(), &end);
    if (end != cell.c_str() + cell.size() || !std::isfinite(value))
      throw InputError(where + ": expected a number, got '" + cell + "'");
    return value;
  }

  std::string where(const CsvRecord& record, const std::string& name) const {
    return fmt::format("{}:{}:{} ({})", source_, record.line, index_.at(name) + 1, name);
  }

  static std::string trim(const std::string& text) {
    const std::size_t first = text.find_first_not_of(" \t");
    if (first == std::string::npos) return "";
    return text.substr(first, text.find_last_not_of(" \t") - first + 1);
  }

 private:
  const std::string& source_;
  std::map<std::string, std::size_t> index_;
  std::vector<std::string> names_;
};

void check_percent(double value, const std::string& where) {
  if (!std::isnan(value) && (value < 0 || value > 100))
    throw InputError(fmt::format("{}: expected a percentage in [0, 100], got {}", where, value));
}

}  // namespace

std::vector<BaselineRow> parse_baselines_csv(const std::string& text, const std::string& source) {
  const std::vector<CsvRecord> records = parse_csv(text, source);
  if (records.empty()) throw InputError(source + ": empty baselines file; expected a header line and rows");
  const BaselineColumns columns(records.front(), source);
  std::vector<BaselineRow> rows;
  for (std::size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& record = records[r];
    if (record.fields.size() != columns.size())
      throw InputError(fmt::format("{}:{}: expected {} fields as in the header, got {}", source, record.line,
                                   columns.size(), record.fields.size()));
    BaselineRow row;
    for (std::size_t c = 0; c < columns.size(); ++c) {
      if (columns.name(c) == "method") row.method = BaselineColumns::trim(record.fields[c]);
      if (!columns.is_class(c)) continue;
      const double dice = columns.number_at(record, c, false);
      check_percent(dice, fmt::format("{}:{}:{} ({})", source, record.line, c + 1, columns.name(c)));
      row.class_dice.emplace_back(columns.name(c), dice);
    }
    if (row.method.empty()) throw InputError(columns.where(record, "method") + ": a method name is required");
    row.mdice = columns.number(record, "mDice", true);
    check_percent(row.mdice, columns.where(record, "mDice"));
    if (row.mdice <= 1.0)
      throw InputError(
          fmt::format("{}: {} looks like a fraction; give Dice in percent, as published (e.g. 88.1)",
                      columns.where(record, "mDice"), row.mdice));
    row.mnsd = columns.has("mNSD") ? columns.number(record, "mNSD", false) : kNaN;
    if (columns.has("mNSD")) check_percent(row.mnsd, columns.where(record, "mNSD"));
    row.params_m = columns.number(record, "params_m", true);
    row.gflops = columns.number(record, "gflops", true);
    if (row.params_m <= 0)
      throw InputError(columns.where(record, "params_m") + ": expected a positive number");
    if (row.gflops <= 0) throw InputError(columns.where(record, "gflops") + ": expected a positive number");
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<BaselineRow> read_baselines_csv(const std::string& path) {
  const std::optional<std::string> text = try_read_file(path);
  if (!text) throw InputError("baselines file '" + path + "': cannot be read");
  return parse_baselines_csv(*text, path);
}

// ----------------------------------------------------------------------------------------------------------
// Formats

TableFormat parse_table_format(const std::string& text) {
  if (text == "md") return TableFormat::Markdown;
  if (text == "csv") return TableFormat::Csv;
  if (text == "latex") return TableFormat::Latex;
  if (text == "json") return TableFormat::Json;
  throw ConfigError("--format: expected one of md|csv|latex|json, got '" + text + "'");
}

namespace {

std::string fixed(double value, int digits, const char* missing) {
  return std::isnan(value) ? missing : fmt::format("{:.{}f}", value, digits);
}

std::string dice_with_sd(const TableRow& row, const char* plus_minus, const char* missing) {
  if (std::isnan(row.mdice_sd)) return fixed(row.mdice, 2, missing);
  return fmt::format("{:.2f}{}{:.2f}", row.mdice, plus_minus, row.mdice_sd);
}

std::string latex_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
      case '%':
      case '$':
      case '#':
      case '_':
      case '{':
      case '}':
        out += '\\', out += c;
        break;
      case '~':
        out += "\\textasciitilde{}";
        break;
      case '^':
        out += "\\textasciicircum{}";
        break;
      case '\\':
        out += "\\textbackslash{}";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string markdown_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c == '\n' ? ' ' : c;
  }
  return out;
}

bool any_level0_density(const ReportTable& t) {
  return std::any_of(t.rows.begin(), t.rows.end(),
                     [](const TableRow& r) { return !std::isnan(r.level0_density); });
}

bool any_timing(const ReportTable& t) {
  return std::any_of(t.rows.begin(), t.rows.end(), [](const TableRow& r) {
    return !std::isnan(r.ms_per_patch_dense) || !std::isnan(r.ms_per_patch_sparse);
  });
}

// "12.3 / 4.5" (dense / sparse ms per patch).
std::string timing_cell(const TableRow& row, const char* missing) {
  return fixed(row.ms_per_patch_dense, 1, missing) + " / " + fixed(row.ms_per_patch_sparse, 1, missing);
}

std::string split_description(const ReportTable& t) {
  if (t.split == Split::Cv)
    return "cross-validation (each fold's validation cases), mDice ± sample sd over folds";
  int64_t scored = 0, total = 0;
  for (const TableRow& row : t.rows)
    if (!row.baseline) scored += row.cases_scored, total += row.cases_total;
  return fmt::format(
      "held-out test set (the folds' models averaged, post-processing as decided on each cell's CV "
      "predictions; {} of {} test predictions scored)",
      scored, total);
}

std::string format_markdown(const ReportTable& t, bool per_class) {
  const bool test = t.split == Split::Test;
  const bool level0 = any_level0_density(t);
  const bool timing = any_timing(t);
  std::string out = fmt::format(
      "{} — {}: Dice and NSD in %; PT = {}·mDice/max + {}·(Params_min/Params + FLOPs_min/FLOPs) over these "
      "rows\n\n",
      markdown_escape(t.experiment), split_description(t), t.weights.accuracy, t.weights.resource);
  std::string header = "| Method |";
  std::string rule = "|---|";
  if (per_class)
    for (const std::string& c : t.classes) header += " " + markdown_escape(c) + " |", rule += "---:|";
  header += " mDice | mNSD | Params (M) | FLOPs (G) | PT |";
  rule += "---:|---:|---:|---:|---:|";
  if (timing) header += " ms/patch (dense / sparse) |", rule += "---:|";
  if (level0) header += " level-0 density |", rule += "---:|";
  if (test) header += " Post-processing |", rule += "---|";
  out += header + "\n" + rule + "\n";
  for (const TableRow& row : t.rows) {
    out += "| " + markdown_escape(row.method) + " |";
    if (per_class)
      for (double d : row.class_dice) out += " " + fixed(d, 2, "–") + " |";
    out += fmt::format(" {} | {} | {} | {} | {} |", dice_with_sd(row, " ± ", "–"), fixed(row.mnsd, 2, "–"),
                       fixed(row.params_m, 2, "–"), fixed(row.gflops, 2, "–"), fixed(row.pt, 3, "–"));
    if (timing) out += " " + timing_cell(row, "–") + " |";
    if (level0) out += " " + fixed(row.level0_density, 2, "–") + " |";
    if (test) out += " " + markdown_escape(row.baseline ? "–" : row.postprocessing) + " |";
    out += "\n";
  }
  return out;
}

std::string format_csv(const ReportTable& t, bool per_class) {
  std::string out = "method,sparsity,folds,jobs";
  if (per_class)
    for (const std::string& c : t.classes) out += "," + csv_escape(c);
  out +=
      ",mDice,mDice_sd,mNSD,mHD95,params_m,gflops,PT,split,postprocessing,cases_scored,cases_total,"
      "level0_density,ms_per_patch_dense,ms_per_patch_sparse\n";
  for (const TableRow& row : t.rows) {
    out += csv_escape(row.method) + "," + (row.baseline ? "" : fmt::format("{}", row.sparsity)) + "," +
           std::to_string(row.folds) + "," + std::to_string(row.jobs);
    if (per_class)
      for (double d : row.class_dice) out += "," + fixed(d, 4, "");
    out += fmt::format(",{},{},{},{},{},{},{}", fixed(row.mdice, 4, ""), fixed(row.mdice_sd, 4, ""),
                       fixed(row.mnsd, 4, ""), fixed(row.mhd95, 4, ""), fixed(row.params_m, 4, ""),
                       fixed(row.gflops, 4, ""), fixed(row.pt, 4, ""));
    out += fmt::format(",{},{},{},{},{},{},{}\n", row.baseline ? "" : to_string(t.split),
                       csv_escape(row.postprocessing), row.baseline ? "" : std::to_string(row.cases_scored),
                       row.baseline ? "" : std::to_string(row.cases_total), fixed(row.level0_density, 4, ""),
                       fixed(row.ms_per_patch_dense, 3, ""), fixed(row.ms_per_patch_sparse, 3, ""));
  }
  return out;
}

std::string format_latex(const ReportTable& t, bool per_class) {
  const std::size_t class_columns = per_class ? t.classes.size() : 0;
  std::string out = "\\begin{tabular}{l" + std::string(class_columns + 5, 'r') + "}\n\\hline\nMethod";
  if (per_class)
    for (const std::string& c : t.classes) out += " & " + latex_escape(c);
  out += " & mDice & mNSD & Params (M) & FLOPs (G) & PT \\\\\n\\hline\n";
  for (const TableRow& row : t.rows) {
    out += latex_escape(row.method);
    if (per_class)
      for (double d : row.class_dice) out += " & " + fixed(d, 2, "--");
    out += fmt::format(" & {} & {} & {} & {} & {} \\\\\n", dice_with_sd(row, "$\\pm$", "--"),
                       fixed(row.mnsd, 2, "--"), fixed(row.params_m, 2, "--"), fixed(row.gflops, 2, "--"),
                       fixed(row.pt, 3, "--"));
  }
  return out + "\\hline\n\\end{tabular}\n";
}

std::string format_json(const ReportTable& t) {
  nlohmann::json rows = nlohmann::json::array();
  for (const TableRow& row : t.rows) {
    nlohmann::json classes = nlohmann::json::object();
    for (std::size_t c = 0; c < t.classes.size(); ++c) classes[t.classes[c]] = json_number(row.class_dice[c]);
    rows.push_back({{"method", row.method},
                    {"baseline", row.baseline},
                    {"sparsity", row.baseline ? nlohmann::json() : nlohmann::json(row.sparsity)},
                    {"folds", row.folds},
                    {"jobs", row.jobs},
                    {"class_dice", classes},
                    {"mdice", json_number(row.mdice)},
                    {"mdice_sd", json_number(row.mdice_sd)},
                    {"mnsd", json_number(row.mnsd)},
                    {"mhd95", json_number(row.mhd95)},
                    {"params_m", json_number(row.params_m)},
                    {"gflops", json_number(row.gflops)},
                    {"pt", json_number(row.pt)},
                    {"postprocessing", row.baseline ? nlohmann::json() : nlohmann::json(row.postprocessing)},
                    {"cases_scored", row.cases_scored},
                    {"cases_total", row.cases_total},
                    {"level0_density", json_number(row.level0_density)},
                    {"ms_per_patch_dense", json_number(row.ms_per_patch_dense)},
                    {"ms_per_patch_sparse", json_number(row.ms_per_patch_sparse)}});
  }
  const nlohmann::json out = {
      {"experiment", t.experiment},
      {"split", to_string(t.split)},
      {"units", {{"dice", "percent"}, {"nsd", "percent"}, {"hd95", "mm"}}},
      {"pt_weights", {{"accuracy", t.weights.accuracy}, {"resource", t.weights.resource}}},
      {"classes", t.classes},
      {"rows", rows}};
  return out.dump(2) + "\n";
}

}  // namespace

std::string format_table(const ReportTable& table, TableFormat format, bool per_class) {
  switch (format) {
    case TableFormat::Csv:
      return format_csv(table, per_class);
    case TableFormat::Latex:
      return format_latex(table, per_class);
    case TableFormat::Json:
      return format_json(table);
    default:
      return format_markdown(table, per_class);
  }
}

}  // namespace e2e
