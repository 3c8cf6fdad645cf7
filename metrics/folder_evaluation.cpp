#include "metrics/folder_evaluation.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "metrics/mask.hpp"

namespace e2e {

namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::size_t kNamesShown = 10;

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "a.nii.gz, b.nii.gz, … (3 more)"
std::string name_list(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < kNamesShown; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > kNamesShown) out += ", ... (" + std::to_string(names.size() - kNamesShown) + " more)";
  return out;
}

std::string file_name(const std::string& path) {
  return fs::path(path).filename().string();
}

// case id → path of every NIfTI file directly inside `dir`.
std::map<std::string, std::string> list_nifti_files(const std::string& dir, const std::string& role) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw InputError(dir + ": " + role + " folder not found");
  std::map<std::string, std::string> files;
  try {
    for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || name[0] == '.' || !entry.is_regular_file()) continue;
      const std::string id = nifti_case_id(name);
      if (id.empty()) continue;
      const auto [it, inserted] = files.emplace(id, entry.path().string());
      if (!inserted) {
        const std::string first = std::min(file_name(it->second), name);
        const std::string second = std::max(file_name(it->second), name);
        throw InputError(dir + ": case '" + id + "' has two " + role + " files: " + first + " and " + second);
      }
    }
  } catch (const fs::filesystem_error& e) {
    throw InputError(dir + ": cannot list the " + role + " folder (" + e.what() + ")");
  }
  if (files.empty()) throw InputError(dir + ": no NIfTI files (.nii, .nii.gz) in the " + role + " folder");
  return files;
}

int parse_label_key(const std::string& key, const std::string& field) {
  std::size_t used = 0;
  long value = -1;
  try {
    value = std::stol(key, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != key.size() || value < 0 || value > std::numeric_limits<int16_t>::max()) {
    throw InputError(field + ": expected integer label values in [0, 32767] as keys, got \"" + key + "\"");
  }
  return static_cast<int>(value);
}

int parse_label_value(const nlohmann::ordered_json& value, const std::string& field,
                      const std::string& name) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
      value.get<int64_t>() > std::numeric_limits<int16_t>::max()) {
    throw InputError(field + ": \"" + name + "\": expected an integer label value in [0, 32767], got " +
                     value.dump());
  }
  return value.get<int>();
}

void add_class(DatasetLabels& labels, std::set<int>& seen, int label, const std::string& name,
               const std::string& field) {
  if (!seen.insert(label).second) {
    throw InputError(field + ": label value " + std::to_string(label) + " is declared twice");
  }
  if (label == 0) return;  // background
  labels.classes.push_back(label);
  labels.class_names[label] = name;
}

// A structure that neither label map holds: what evaluate_case reports for it.
StructureMetrics absent_class(int label, const EvaluationOptions& options) {
  StructureMetrics m;
  const auto named = options.class_names.find(label);
  m.name = named == options.class_names.end() ? std::to_string(label) : named->second;
  m.labels = {label};
  m.dice = m.nsd = m.hd = kNaN;
  m.nsd_tolerance_mm = options.tolerance_for_class(label);
  return m;
}

CaseMetrics evaluate_pair(const CaseFiles& pair, const EvaluationOptions& options, const LabelReader& read,
                          bool discover) {
  const LabelMap reference = read(pair.reference);
  const LabelMap prediction = read(pair.prediction);
  check_same_geometry(reference, prediction,
                      pair.prediction + " and " + pair.reference + " (case " + pair.case_id + ")");
  if (!discover) return evaluate_case(reference, prediction, options, pair.case_id);
  EvaluationOptions case_options = options;
  std::vector<int> present = positive_labels(reference);
  const std::vector<int> predicted = positive_labels(prediction);
  present.insert(present.end(), predicted.begin(), predicted.end());
  std::sort(present.begin(), present.end());
  present.erase(std::unique(present.begin(), present.end()), present.end());
  case_options.classes = present;
  return evaluate_case(reference, prediction, case_options, pair.case_id);
}

// Puts every case on the union of the discovered classes (absent ones as NaN), regions after them.
void align_discovered_classes(FolderEvaluation& evaluation) {
  std::set<int> all;
  for (const CaseMetrics& c : evaluation.cases) {
    for (const StructureMetrics& s : c.structures) {
      if (!s.is_region) all.insert(s.labels.front());
    }
  }
  evaluation.options.classes.assign(all.begin(), all.end());
  for (CaseMetrics& c : evaluation.cases) {
    std::map<int, StructureMetrics> by_label;
    std::vector<StructureMetrics> regions;
    for (StructureMetrics& s : c.structures) {
      if (s.is_region)
        regions.push_back(std::move(s));
      else
        by_label.emplace(s.labels.front(), std::move(s));
    }
    c.structures.clear();
    for (int label : evaluation.options.classes) {
      const auto found = by_label.find(label);
      c.structures.push_back(found == by_label.end() ? absent_class(label, evaluation.options)
                                                     : std::move(found->second));
    }
    for (StructureMetrics& s : regions) c.structures.push_back(std::move(s));
  }
}

}  // namespace

std::string nifti_case_id(const std::string& name) {
  for (const char* ending : {".nii.gz", ".nii"}) {
    const std::string suffix(ending);
    if (ends_with(name, suffix) && name.size() > suffix.size())
      return name.substr(0, name.size() - suffix.size());
  }
  return "";
}

FolderPairs pair_folders(const std::string& prediction_dir, const std::string& reference_dir,
                         bool allow_missing) {
  const std::map<std::string, std::string> predictions = list_nifti_files(prediction_dir, "prediction");
  const std::map<std::string, std::string> references = list_nifti_files(reference_dir, "reference");
  FolderPairs pairs;
  std::vector<std::string> unmatched;
  for (const auto& [id, path] : predictions) {
    const auto found = references.find(id);
    if (found == references.end())
      unmatched.push_back(file_name(path));
    else
      pairs.cases.push_back({id, path, found->second});
  }
  if (!unmatched.empty()) {
    throw InputError(prediction_dir + ": " + std::to_string(unmatched.size()) +
                     " prediction(s) without a reference file in " + reference_dir + ": " +
                     name_list(unmatched));
  }
  for (const auto& [id, path] : references) {
    if (!predictions.count(id)) pairs.missing_predictions.push_back(file_name(path));
  }
  if (!pairs.missing_predictions.empty() && !allow_missing) {
    throw InputError(reference_dir + ": " + std::to_string(pairs.missing_predictions.size()) +
                     " reference file(s) without a prediction in " + prediction_dir + ": " +
                     name_list(pairs.missing_predictions) + " (--allow-missing evaluates the others)");
  }
  return pairs;
}

DatasetLabels read_dataset_json_labels(const std::string& path) {
  using nlohmann::ordered_json;
  std::ifstream in(path);
  if (!in) throw InputError(path + ": file not found or not readable");
  ordered_json doc;
  try {
    doc = ordered_json::parse(in);
  } catch (const ordered_json::exception& e) {
    throw InputError(path + ": not valid JSON (" + e.what() + ")");
  }
  const std::string field = path + ": labels";
  if (!doc.is_object() || !doc.contains("labels")) throw InputError(field + ": missing");
  const ordered_json& node = doc["labels"];
  if (!node.is_object() || node.empty()) {
    throw InputError(field +
                     ": expected an object ({\"0\": \"background\", ...} or {\"background\": 0, ...})");
  }
  bool value_to_name = false;  // MSD / nnU-Net v1
  bool name_to_value = false;  // nnU-Net v2
  for (const auto& [key, value] : node.items()) (value.is_string() ? value_to_name : name_to_value) = true;
  if (value_to_name && name_to_value) {
    throw InputError(field + ": mixes {\"1\": \"name\"} and {\"name\": 1} entries");
  }
  DatasetLabels labels;
  std::set<int> seen;
  for (const auto& [key, value] : node.items()) {
    if (value_to_name) {
      add_class(labels, seen, parse_label_key(key, field), value.get<std::string>(), field);
    } else if (value.is_array()) {
      Region region{key, {}, std::nullopt};
      for (const ordered_json& member : value) region.labels.push_back(parse_label_value(member, field, key));
      if (region.labels.empty())
        throw InputError(field + ": \"" + key + "\": a region needs at least one label");
      labels.regions.push_back(region);
    } else {
      add_class(labels, seen, parse_label_value(value, field, key), key, field);
    }
  }
  std::sort(labels.classes.begin(), labels.classes.end());
  return labels;
}

std::vector<int> positive_labels(const LabelMap& map) {
  std::vector<uint8_t> present(std::numeric_limits<int16_t>::max() + 1, 0);
  for (int16_t v : map.voxels) {
    if (v > 0) present[static_cast<std::size_t>(v)] = 1;
  }
  std::vector<int> labels;
  for (std::size_t v = 1; v < present.size(); ++v) {
    if (present[v]) labels.push_back(static_cast<int>(v));
  }
  return labels;
}

FolderEvaluation evaluate_folder_pairs(const std::vector<CaseFiles>& pairs, const EvaluationOptions& options,
                                       const LabelReader& read, int workers, const CaseProgress& progress) {
  options.validate();
  FolderEvaluation evaluation;
  evaluation.options = options;
  evaluation.classes_discovered = options.classes.empty();
  evaluation.cases.resize(pairs.size());
  const std::size_t n = pairs.size();
  if (workers <= 0) workers = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const std::size_t threads = std::max<std::size_t>(1, std::min<std::size_t>(workers, n));

  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::size_t done = 0;
  std::size_t error_index = n;
  std::exception_ptr error;
  auto work = [&] {
    while (!failed.load()) {
      const std::size_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        CaseMetrics metrics = evaluate_pair(pairs[i], options, read, evaluation.classes_discovered);
        std::lock_guard<std::mutex> lock(mutex);
        evaluation.cases[i] = std::move(metrics);
        ++done;
        if (progress && !failed.load()) progress(done, n, evaluation.cases[i]);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (i < error_index) {
          error_index = i;
          error = std::current_exception();
        }
        failed.store(true);
      }
    }
  };
  if (threads == 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < threads; ++t) pool.emplace_back(work);
    for (std::thread& thread : pool) thread.join();
  }
  if (error) std::rethrow_exception(error);
  if (evaluation.classes_discovered) align_discovered_classes(evaluation);
  return evaluation;
}

}  // namespace e2e
