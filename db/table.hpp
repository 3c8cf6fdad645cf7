// The paper's Table-1 layout: one row per method (baselines from a CSV, then one row per sparsity of the
// experiment), per-class Dice, mDice ± sd over folds, mNSD, Params (M), FLOPs (G) and the PT score over the
// rows shown. Dice and NSD are shown in percent, as in the paper (the store keeps fractions).
#pragma once

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "db/reader.hpp"

namespace e2e {

// PT = accuracy·mDice/mDice_max + resource·(Params_min/Params + FLOPs_min/FLOPs), over the rows shown
// (paper eq. 7: accuracy 1, resource 0.5).
struct PtWeights {
  double accuracy = 1.0;
  double resource = 0.5;
};

double pt_score(double mdice, double params, double flops, double mdice_max, double params_min,
                double flops_min, const PtWeights& weights);

// A published row: numbers in percent (Dice, NSD), millions (params) and billions (FLOPs).
struct BaselineRow {
  std::string method;
  std::vector<std::pair<std::string, double>> class_dice;  // column name → value (NaN = empty cell)
  double mdice = 0;
  double mnsd = 0;  // NaN = not given
  double params_m = 0;
  double gflops = 0;
};

struct TableRow {
  std::string method;
  bool baseline = false;
  double sparsity = 0;             // experiment rows
  std::vector<double> class_dice;  // percent, aligned with ReportTable::classes; NaN = not given
  double mdice = 0;                // percent
  double mdice_sd = 0;             // percent, sample sd over folds (NaN with fewer than 2 folds)
  double mnsd = 0;                 // percent (NaN = not given)
  double mhd95 = 0;                // mm (NaN = not given)
  double params_m = 0;             // millions
  double gflops = 0;               // billions
  double pt = 0;
  int folds = 0;
  int jobs = 0;
  // Test rows: the post-processing applied ("none", "foreground", "classes 1, 3", … joined over the row's
  // jobs) and how many held-out cases had a label to score.
  std::string postprocessing;
  int64_t cases_scored = 0;
  int64_t cases_total = 0;
  double level0_density = std::numeric_limits<double>::quiet_NaN();  // sparsity.level0_density (NaN: unset)
  double ms_per_patch_dense = std::numeric_limits<double>::quiet_NaN();
  double ms_per_patch_sparse = std::numeric_limits<double>::quiet_NaN();
};

struct ReportTable {
  std::string experiment;
  Split split = Split::Cv;  // cv: mean over the folds' validation cases; test: fold ensembles, held-out cases
  std::vector<std::string> classes;
  std::vector<TableRow> rows;  // baselines first (file order), then sparsities ascending
  PtWeights weights;
};

// Groups outcomes by sparsity: per-class Dice and mNSD are means over every job (folds and seeds); mDice is
// the mean over folds of each fold's mean over seeds, with the sample sd over those fold means. Baseline rows
// keep their numbers; PT is computed over all rows. Throws InputError when there is no row at all.
ReportTable build_table(const std::string& experiment, const std::vector<JobOutcome>& outcomes,
                        const std::vector<BaselineRow>& baselines, const PtWeights& weights = {},
                        Split split = Split::Cv);

// Baselines CSV: a header with `method`, `mDice`, `params_m`, `gflops` (required), `mNSD` (optional) and any
// per-class Dice columns named as the experiment's classes; values in percent (as published). Quoted fields
// are allowed. Throws InputError naming the file, line and column of the first problem.
std::vector<BaselineRow> parse_baselines_csv(const std::string& text, const std::string& source);
std::vector<BaselineRow> read_baselines_csv(const std::string& path);

enum class TableFormat { Markdown, Csv, Latex, Json };
TableFormat parse_table_format(const std::string& text);  // md | csv | latex | json

std::string format_table(const ReportTable& table, TableFormat format, bool per_class);

}  // namespace e2e
