#include "worker/ensemble.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "common/file_io.hpp"
#include "data/dataset.hpp"
#include "data/folds.hpp"
#include "data/nifti.hpp"
#include "metrics/evaluate.hpp"
#include "metrics/postprocess.hpp"
#include "worker/checkpoint.hpp"
#include "worker/data_source.hpp"
#include "worker/predictor.hpp"

namespace e2e {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

double number_or_nan(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : std::numeric_limits<double>::quiet_NaN();
}

// The inverse of to_json(CaseMetrics) (metrics/evaluate.hpp), for cases finished by an earlier run.
CaseMetrics case_metrics_from_json(const json& j) {
  CaseMetrics metrics;
  metrics.case_id = j.at("case");
  for (const json& s : j.at("structures")) {
    StructureMetrics m;
    m.name = s.at("name");
    m.labels = s.at("labels").get<std::vector<int>>();
    m.is_region = s.value("is_region", false);
    m.gt_voxels = s.value("gt_voxels", int64_t{0});
    m.pred_voxels = s.value("pred_voxels", int64_t{0});
    m.dice = number_or_nan(s, "dice");
    m.nsd = number_or_nan(s, "nsd");
    m.nsd_tolerance_mm = number_or_nan(s, "nsd_tolerance_mm");
    m.hd = s.value("hd_infinite", false) ? std::numeric_limits<double>::infinity() : number_or_nan(s, "hd");
    m.nsd_fixed_spacing = number_or_nan(s, "nsd_fixed_spacing");
    m.hd95_pooled = number_or_nan(s, "hd95_pooled");
    metrics.structures.push_back(std::move(m));
  }
  return metrics;
}

json read_json_file(const std::string& path) {
  json parsed = json::parse(read_file(path), nullptr, false);
  if (parsed.is_discarded()) throw InputError(path + ": not valid JSON");
  return parsed;
}

// NIfTI written under a temporary name in the same folder, then renamed: a kill leaves no half file.
void write_labels_atomically(const std::string& path, const LabelMap& labels, const NiftiGeometry& geometry) {
  const std::string partial = path.substr(0, path.size() - 7) + ".partial.nii.gz";
  write_nifti_labels(partial, labels, geometry);
  fs::rename(partial, path);
}

std::vector<int> foreground_classes(const Config& config) {
  std::vector<int> classes;
  for (int c = 1; c < config.model.num_classes; ++c) classes.push_back(c);
  return classes;
}

// The held-out cases must not be in any fold: a store built with another data.test_cases is refused.
std::vector<FoldSplit> checked_splits(const Config& config, const std::vector<RawCase>& tests) {
  const std::string splits_path = (fs::path(preprocessed_dir(config)) / "splits_final.json").string();
  if (!fs::exists(splits_path))
    throw InputError(splits_path + ": missing (the folds of the cell were never made)");
  const std::vector<FoldSplit> splits = read_splits_json(splits_path);
  for (const RawCase& c : tests)
    for (std::size_t f = 0; f < splits.size(); ++f)
      for (const auto* list : {&splits[f].train, &splits[f].val})
        if (std::find(list->begin(), list->end(), c.id) != list->end())
          throw InputError(
              fmt::format("{}: test case '{}' is in fold {}: a held-out case must never enter a fold",
                          splits_path, c.id, f));
  return splits;
}

// nnU-Net's rule on the cell's CV predictions (each fold's validation/ folder against the raw labels).
PostprocessingDecision decide_from_cv(const Config& config, const EnsembleSpec& spec, const RawDataset& raw,
                                      const std::vector<FoldSplit>& splits) {
  std::map<std::string, std::string> labels;
  for (const RawCase& c : raw.training) labels[c.id] = c.label_file;
  std::vector<PostprocessingCaseDice> measured;
  for (std::size_t i = 0; i < spec.folds.size(); ++i) {
    const int fold = spec.folds[i];
    if (fold < 0 || fold >= static_cast<int>(splits.size()))
      throw InputError(fmt::format("fold {} is not in splits_final.json ({} folds)", fold, splits.size()));
    for (const std::string& id : splits[fold].val) {
      const std::string prediction = (fs::path(spec.fold_dirs[i]) / "validation" / (id + ".nii.gz")).string();
      if (!fs::exists(prediction))
        throw InputError(prediction + ": missing validation prediction of fold " + std::to_string(fold) +
                         " (needed to decide the post-processing)");
      const auto label = labels.find(id);
      if (label == labels.end())
        throw InputError(raw.root + ": validation case " + id + " has no training label");
      measured.push_back(measure_postprocessing_case(
          read_nifti_labels(label->second), read_nifti_labels(prediction), foreground_classes(config), id));
    }
  }
  return decide_postprocessing(measured);
}

// The decision of an earlier run when there is one, else made now and kept in the job folder.
std::optional<PostprocessingDecision> postprocessing_for(const Config& config, const EnsembleSpec& spec,
                                                         const RawDataset& raw,
                                                         const std::vector<FoldSplit>& splits) {
  if (config.eval.postprocessing != "auto") return std::nullopt;
  const std::string path = (fs::path(spec.out_dir) / "postprocessing.json").string();
  if (fs::exists(path)) return postprocessing_decision_from_json(read_json_file(path), path);
  const PostprocessingDecision decision = decide_from_cv(config, spec, raw, splits);
  write_file_atomically(path, to_json(decision).dump(2) + "\n");
  return decision;
}

// The `key` objects of the cell's folds' metrics.json files (those that have one).
std::vector<json> fold_metrics_objects(const EnsembleSpec& spec, const char* key) {
  std::vector<json> objects;
  for (const std::string& dir : spec.fold_dirs) {
    const fs::path metrics = fs::path(dir) / "metrics.json";
    if (!fs::exists(metrics)) continue;
    const json object = read_json_file(metrics.string()).value(key, json::object());
    if (!object.empty()) objects.push_back(object);
  }
  return objects;
}

// The mean of a number field over objects that hold a number there; null when none does.
json mean_number(const std::vector<json>& objects, const char* field) {
  double sum = 0;
  int counted = 0;
  for (const json& object : objects)
    if (object.contains(field) && object[field].is_number()) {
      sum += object[field].get<double>();
      ++counted;
    }
  return counted == 0 ? json() : json(sum / counted);
}

// Params/FLOPs of the cell: the mean over its folds' metrics.json "complexity" (the same net and sparsity).
json cell_complexity(const EnsembleSpec& spec) {
  const std::vector<json> folds = fold_metrics_objects(spec, "complexity");
  if (folds.empty()) return json::object();
  const json mean_params = mean_number(folds, "params");
  if (mean_params.is_null()) return json::object();
  const json mean_flops = mean_number(folds, "flops");
  const double params = mean_params.get<double>();
  const double flops = mean_flops.is_null() ? 0.0 : mean_flops.get<double>();
  return {{"params", static_cast<int64_t>(params + 0.5)},
          {"params_m", params / 1e6},
          {"flops", flops},
          {"gflops", flops / 1e9},
          {"patch", folds.back().value("patch", json())}};
}

// Forward time per patch of the cell: the mean over its folds' measurements (the same net and sparsity).
json cell_inference_timing(const EnsembleSpec& spec) {
  const std::vector<json> folds = fold_metrics_objects(spec, "inference_timing");
  if (folds.empty()) return json::object();
  return {{"ms_per_patch_dense", mean_number(folds, "ms_per_patch_dense")},
          {"ms_per_patch_sparse", mean_number(folds, "ms_per_patch_sparse")},
          {"device", folds.back().value("device", "")},
          {"folds", folds.size()}};
}

class EnsembleJob {
 public:
  EnsembleJob(const Config& config, const EnsembleSpec& spec) : config_(config), spec_(spec) {}

  EnsembleRun run(const std::atomic<bool>* stop, const EnsembleHooks& hooks) {
    check_inputs();
    const std::vector<FoldSplit> splits = checked_splits(config_, tests_);
    std::vector<PredictionModel> models = load_models();
    fs::create_directories(fs::path(spec_.out_dir) / "cases");
    fs::create_directories(fs::path(spec_.out_dir) / "predictions");
    decision_ = postprocessing_for(config_, spec_, raw_, splits);
    evaluation_ = evaluation_options(config_.eval, config_.model.num_classes);
    for (const auto& [value, name] : models.front().plan.labels)
      if (value > 0) evaluation_.class_names[value] = name;

    PredictorOptions options;
    options.mirror_tta = config_.eval.tta;
    options.step_fraction = config_.eval.step_fraction;
    options.device = spec_.device;
    Predictor predictor(std::move(models), options);
    PredictionInputs inputs;
    inputs.dir = raw_.root;
    inputs.description = "held-out test set";
    inputs.layout = raw_;
    inputs.cases = tests_;

    EnsembleRun run;
    for (std::size_t i = 0; i < tests_.size(); ++i) {
      const RawCase& test_case = tests_[i];
      if (fs::exists(case_record(test_case.id))) {
        ++run.cases_reused;
        continue;
      }
      if (stop && stop->load()) {
        run.stopped = true;
        return run;
      }
      finish_case(predictor, inputs, test_case);
      ++run.cases_predicted;
      if (hooks.on_case) hooks.on_case(test_case.id, i + 1, tests_.size());
    }
    if (run.cases_reused > 0)
      spdlog::info("test ensemble s={} seed {}: {} case(s) finished by an earlier run, {} predicted now",
                   spec_.sparsity, spec_.seed, run.cases_reused, run.cases_predicted);
    run.report = report();
    write_file_atomically((fs::path(spec_.out_dir) / "metrics.json").string(), run.report.dump(2) + "\n");
    return run;
  }

 private:
  // Everything that can be wrong with the input is found before anything is written.
  void check_inputs() {
    if (config_.data.dataset.empty() || !fs::exists(fs::path(config_.data.dataset) / "dataset.json"))
      throw InputError("data.dataset (" + config_.data.dataset +
                       "): the test stage needs the raw dataset (dataset.json) with its test cases");
    raw_ = read_raw_dataset(config_.data.dataset);
    tests_ = test_set(raw_, config_.data.test_cases);
    if (tests_.empty())
      throw InputError(config_.data.dataset +
                       ": no held-out test cases (dataset.json \"test\", imagesTs/ or "
                       "data.test_cases)");
    for (const RawCase& c : tests_) check_case_geometry(raw_, c);
    if (spec_.folds.size() != spec_.fold_dirs.size() || spec_.folds.empty())
      throw InputError("test ensemble: expected one job folder per fold");
  }

  std::vector<PredictionModel> load_models() const {
    std::vector<PredictionModel> models;
    ModelLoadOptions options;
    options.device = spec_.device;
    for (std::size_t i = 0; i < spec_.fold_dirs.size(); ++i) {
      const fs::path checkpoint = fs::path(spec_.fold_dirs[i]) / "checkpoint.ckpt";
      if (!fs::exists(checkpoint))
        throw InputError(checkpoint.string() + ": missing model of fold " + std::to_string(spec_.folds[i]) +
                         " (its training job must finish first)");
      models.push_back(load_prediction_model(spec_.fold_dirs[i], options));
    }
    return models;
  }

  std::string case_record(const std::string& id) const {
    return (fs::path(spec_.out_dir) / "cases" / (id + ".json")).string();
  }

  void finish_case(Predictor& predictor, const PredictionInputs& inputs, const RawCase& test_case) {
    const auto start = std::chrono::steady_clock::now();
    NiftiGeometry geometry;
    const LabelMap raw_prediction = predictor.predict_case(inputs, test_case, &geometry);
    LabelMap final_prediction = raw_prediction;
    int64_t removed = 0;
    if (decision_ && !decision_->is_identity()) {
      removed = apply_postprocessing(final_prediction, *decision_);
      fs::create_directories(fs::path(spec_.out_dir) / "predictions_raw");
      write_labels_atomically(
          (fs::path(spec_.out_dir) / "predictions_raw" / (test_case.id + ".nii.gz")).string(), raw_prediction,
          geometry);
    }
    write_labels_atomically((fs::path(spec_.out_dir) / "predictions" / (test_case.id + ".nii.gz")).string(),
                            final_prediction, geometry);
    json record = {{"case", test_case.id}, {"label", test_case.label_file}, {"voxels_removed", removed}};
    if (!test_case.label_file.empty()) {
      const LabelMap reference = read_nifti_labels(test_case.label_file);
      try {
        record["raw"] = to_json(evaluate_case(reference, raw_prediction, evaluation_, test_case.id));
        record["postprocessed"] =
            to_json(evaluate_case(reference, final_prediction, evaluation_, test_case.id));
      } catch (const InputError& e) {
        throw InputError(fmt::format("test case {} ({}): {}", test_case.id, test_case.label_file, e.what()));
      }
    }
    record["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    write_file_atomically(case_record(test_case.id), record.dump() + "\n");
    spdlog::info("test ensemble s={} seed {}: {} done{}", spec_.sparsity, spec_.seed, test_case.id,
                 test_case.label_file.empty() ? " (no label: predicted, not scored)" : "");
  }

  json report() const {
    std::vector<CaseMetrics> raw_cases, final_cases;
    json unscored = json::array();
    for (const RawCase& c : tests_) {
      const json record = read_json_file(case_record(c.id));
      if (!record.contains("postprocessed")) {
        unscored.push_back(c.id);
        continue;
      }
      raw_cases.push_back(case_metrics_from_json(record.at("raw")));
      final_cases.push_back(case_metrics_from_json(record.at("postprocessed")));
    }
    json out = evaluation_report(evaluation_, final_cases);
    out["without_postprocessing"] = evaluation_report(evaluation_, raw_cases);
    out["split"] = "test";
    out["reference"] = "raw labels of the held-out test cases, in the original geometry";
    out["postprocessing"] = decision_ ? to_json(*decision_) : json();
    out["test_cases"] = {{"total", tests_.size()}, {"scored", final_cases.size()}, {"unscored", unscored}};
    out["job"] = {{"experiment", config_.experiment},
                  {"sparsity", spec_.sparsity},
                  {"seed", spec_.seed},
                  {"folds", spec_.folds},
                  {"kind", "ensemble"}};
    out["complexity"] = cell_complexity(spec_);
    out["inference_timing"] = cell_inference_timing(spec_);
    return out;
  }

  const Config& config_;
  const EnsembleSpec& spec_;
  RawDataset raw_;
  std::vector<RawCase> tests_;
  std::optional<PostprocessingDecision> decision_;
  EvaluationOptions evaluation_;
};

}  // namespace

EnsembleRun run_ensemble_job(const Config& config, const EnsembleSpec& spec, const std::atomic<bool>* stop,
                             const EnsembleHooks& hooks) {
  torch::NoGradGuard no_grad;
  if (config.training.threads > 0) at::set_num_threads(config.training.threads);
  return EnsembleJob(config, spec).run(stop, hooks);
}

}  // namespace e2e
