#include "orchestrator/job_records.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "db/plot.hpp"

namespace e2e {

namespace {

double number_or_nan(const nlohmann::json& object, const char* key) {
  if (!object.contains(key)) return std::nan("");
  const nlohmann::json& value = object[key];
  return value.is_number() ? value.get<double>() : std::nan("");
}

// The per-case, per-structure rows of an evaluation report (metrics/evaluate.hpp's JSON).
void append_case_rows(const nlohmann::json& report, Split split, bool postprocessed,
                      std::vector<CaseMetricRow>& rows) {
  const std::string hd_variant =
      report.value("metric_variants", nlohmann::json::object()).value("hd_variant", "");
  for (const auto& c : report.value("cases", nlohmann::json::array())) {
    for (const auto& s : c.at("structures")) {
      CaseMetricRow row;
      row.case_id = c.at("case");
      row.structure = s.at("name");
      row.is_region = s.value("is_region", false);
      row.dice = number_or_nan(s, "dice");
      row.nsd = number_or_nan(s, "nsd");
      row.nsd_tolerance_mm = number_or_nan(s, "nsd_tolerance_mm");
      row.hd95 =
          s.value("hd_infinite", false) ? std::numeric_limits<double>::infinity() : number_or_nan(s, "hd");
      row.hd_variant = hd_variant;
      row.split = split;
      row.postprocessed = postprocessed;
      row.nsd_fixed_spacing = number_or_nan(s, "nsd_fixed_spacing");
      row.hd95_pooled = number_or_nan(s, "hd95_pooled");
      rows.push_back(row);
    }
  }
}

}  // namespace

std::string host_name() {
  char name[256] = {0};
  gethostname(name, sizeof name - 1);
  return name;
}

std::string job_title(const std::string& experiment, int fold, double sparsity, uint64_t seed) {
  return fmt::format("{} fold {} s={} seed {}", experiment, fold, sparsity, seed);
}

void write_learning_curve(const std::vector<EpochRecord>& history, const std::string& title,
                          const std::string& out_dir) {
  if (history.empty()) return;
  const std::string png = (std::filesystem::path(out_dir) / "learning_curve.png").string();
  try {
    if (!plot_curves_png(history, title, png)) spdlog::warn("{}: not drawn (gnuplot is not installed)", png);
  } catch (const std::exception& e) {
    spdlog::warn("{}: not drawn ({})", png, e.what());
  }
}

JobResult to_store_result(const nlohmann::json& metrics, const std::string& topology_bytes,
                          int64_t update_step) {
  JobResult result;
  const nlohmann::json summary = metrics.value("summary", nlohmann::json::object());
  const nlohmann::json complexity = metrics.value("complexity", nlohmann::json::object());
  result.summary.mean_dice = number_or_nan(summary, "mean_dice");
  result.summary.mean_nsd = number_or_nan(summary, "mean_nsd");
  result.summary.mean_hd95 = number_or_nan(summary, "mean_hd");
  result.summary.params = complexity.value("params", int64_t{0});
  result.summary.flops = number_or_nan(complexity, "flops");
  if (complexity.contains("patch")) result.summary.patch = complexity["patch"].get<std::array<int64_t, 3>>();
  const nlohmann::json timing = metrics.value("inference_timing", nlohmann::json::object());
  result.summary.ms_per_patch_dense = number_or_nan(timing, "ms_per_patch_dense");
  result.summary.ms_per_patch_sparse = number_or_nan(timing, "ms_per_patch_sparse");
  result.summary.metrics_json = metrics.dump();

  append_case_rows(metrics, Split::Cv, false, result.case_metrics);
  if (!topology_bytes.empty()) {
    MaskSnapshot masks;
    masks.step = update_step;
    masks.kind = MaskKind::Final;
    masks.topology = Topology::deserialize(topology_bytes);
    result.final_masks = masks;
  }
  return result;
}

JobResult to_store_test_result(const nlohmann::json& metrics) {
  JobResult result = to_store_result(metrics, "", 0);
  result.case_metrics.clear();
  append_case_rows(metrics.value("without_postprocessing", nlohmann::json::object()), Split::Test, false,
                   result.case_metrics);
  append_case_rows(metrics, Split::Test, true, result.case_metrics);
  result.summary.split = Split::Test;
  const nlohmann::json decision = metrics.value("postprocessing", nlohmann::json());
  result.summary.postprocessing = decision.is_null() ? "" : decision.dump();
  const nlohmann::json cases = metrics.value("test_cases", nlohmann::json::object());
  result.summary.cases_total = cases.value("total", int64_t{0});
  result.summary.cases_scored = cases.value("scored", int64_t{0});
  return result;
}

}  // namespace e2e
