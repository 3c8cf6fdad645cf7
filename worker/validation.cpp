#include "worker/validation.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
#include <filesystem>

#include "data/dataset.hpp"
#include "data/nifti.hpp"
#include "metrics/evaluate.hpp"
#include "worker/inference.hpp"

namespace e2e {

namespace fs = std::filesystem;

namespace {

std::string prediction_path(const ValidationOptions& options, const std::string& id) {
  return (fs::path(options.out_dir) / "validation" / (id + ".nii.gz")).string();
}

// Raw label files by case id, when the raw dataset is there.
std::map<std::string, std::string> raw_label_files(const Config& config) {
  std::map<std::string, std::string> files;
  if (config.data.dataset.empty() || !fs::exists(fs::path(config.data.dataset) / "dataset.json"))
    return files;
  const RawDataset dataset = read_raw_dataset(config.data.dataset);
  for (const RawCase& c : dataset.training) files[c.id] = c.label_file;
  return files;
}

}  // namespace

PseudoDiceCounts::PseudoDiceCounts(int64_t num_classes)
    : classes_(num_classes), counts_(static_cast<std::size_t>(3 * (num_classes - 1)), 0.0) {}

void PseudoDiceCounts::add(const torch::Tensor& logits, const torch::Tensor& label) {
  const torch::Tensor predicted = logits.argmax(1);
  const torch::Tensor valid = label.ge(0);
  for (int64_t c = 1; c < classes_; ++c) {
    const torch::Tensor p = predicted.eq(c).logical_and(valid);
    const torch::Tensor g = label.eq(c);
    counts_[3 * (c - 1)] += p.logical_and(g).sum().item<double>();
    counts_[3 * (c - 1) + 1] += p.logical_and(g.logical_not()).sum().item<double>();
    counts_[3 * (c - 1) + 2] += g.logical_and(p.logical_not()).sum().item<double>();
  }
}

std::vector<double> PseudoDiceCounts::dice() const {
  std::vector<double> dice;
  for (int64_t c = 1; c < classes_; ++c) {
    const double tp = counts_[3 * (c - 1)], fp = counts_[3 * (c - 1) + 1], fn = counts_[3 * (c - 1) + 2];
    dice.push_back(tp + fp + fn > 0 ? 2 * tp / (2 * tp + fp + fn) : std::nan(""));
  }
  return dice;
}

double mean_of_finite(const std::vector<double>& values) {
  double sum = 0;
  int counted = 0;
  for (double v : values)
    if (std::isfinite(v)) sum += v, ++counted;
  return counted ? sum / counted : std::nan("");
}

nlohmann::json validate_fold(E2ENet& net, const Config& config, const FoldData& fold,
                             const ValidationOptions& options, Communicator& comm) {
  torch::NoGradGuard no_grad;
  const auto& store = dynamic_cast<const Hdf5CaseSource&>(*fold.val).store();
  SlidingWindowOptions window;
  window.patch = config.training.patch_size;
  window.step_fraction = options.step_fraction;
  window.mirror_tta = options.mirror_tta;
  window.device = options.device;
  fs::create_directories(fs::path(options.out_dir) / "validation");

  const LogitsFn forward = inference_forward(net, options.inference);
  for (std::size_t i = comm.rank(); i < fold.val_ids.size(); i += comm.size()) {
    const std::string& id = fold.val_ids[i];
    const PreprocessedCase c = store.read_case(id);
    const torch::Tensor probabilities =
        predict_probabilities(forward, net->config().num_classes, c.image, window);
    const CaseMeta meta = store.meta(id);
    write_nifti_labels(prediction_path(options, id), export_segmentation(probabilities, meta), meta.geometry);
    spdlog::info("validation {}/{}: {}", i + 1, fold.val_ids.size(), id);
  }
  comm.barrier();
  if (!comm.is_leader()) return nlohmann::json::object();

  const std::map<std::string, std::string> raw_labels = raw_label_files(config);
  if (raw_labels.empty()) {
    spdlog::warn("no raw dataset at data.dataset ({}): predictions written, metrics skipped",
                 config.data.dataset);
    return {{"reference", "unavailable: data.dataset is not a raw dataset"}};
  }
  EvaluationOptions evaluation = evaluation_options(config.eval, config.model.num_classes);
  for (const auto& [value, name] : fold.plan.labels)
    if (value > 0) evaluation.class_names[value] = name;
  std::vector<CaseMetrics> cases;
  for (const std::string& id : fold.val_ids) {
    auto raw = raw_labels.find(id);
    if (raw == raw_labels.end())
      throw InputError(config.data.dataset + ": validation case " + id + " is not in the raw dataset");
    cases.push_back(evaluate_case(read_nifti_labels(raw->second),
                                  read_nifti_labels(prediction_path(options, id)), evaluation, id));
  }
  nlohmann::json report = evaluation_report(evaluation, cases);
  report["reference"] = "raw labels in the original geometry";
  return report;
}

}  // namespace e2e
