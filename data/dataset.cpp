// dataset.json parsing for MSD, nnU-Net v1 and v2, case listing, and per-case geometry and label checks.
#include "data/dataset.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace e2e {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Where a dataset.json value came from, for messages: "/data/Task01/dataset.json: labels".
struct Field {
  std::string file;
  std::string name;
  [[noreturn]] void fail(const std::string& expected) const {
    throw InputError(fmt::format("{}: {}: {}", file, name, expected));
  }
};

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// macOS debris (._x.nii.gz) and other hidden files inside the MSD archives.
bool is_hidden(const std::string& file_name) {
  return !file_name.empty() && file_name[0] == '.';
}

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(fmt::format("{}: file not found or not readable", path));
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw InputError(fmt::format("{}: not valid JSON ({})", path, e.what()));
  }
}

int parse_index(const std::string& key, const Field& field) {
  std::size_t used = 0;
  int value = -1;
  try {
    value = std::stoi(key, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != key.size() || value < 0)
    field.fail(fmt::format("expected non-negative integer keys, got \"{}\"", key));
  return value;
}

// {"0": "CT", "1": "MR"} → ["CT", "MR"]; keys must be exactly 0..n-1.
std::vector<std::string> parse_channel_map(const json& node, const Field& field) {
  if (!node.is_object() || node.empty()) field.fail("expected a non-empty object {\"0\": \"CT\", …}");
  std::map<int, std::string> by_index;
  for (const auto& [key, value] : node.items()) {
    if (!value.is_string()) field.fail(fmt::format("\"{}\": expected a string", key));
    by_index[parse_index(key, field)] = value.get<std::string>();
  }
  std::vector<std::string> names;
  for (const auto& [index, name] : by_index) {
    if (index != static_cast<int>(names.size()))
      field.fail(fmt::format("expected keys \"0\" to \"{}\", channel {} is missing", by_index.size() - 1,
                             names.size()));
    names.push_back(name);
  }
  return names;
}

int parse_label_value(const json& value, const Field& field, const std::string& name) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > INT16_MAX)
    field.fail(
        fmt::format("\"{}\": expected an integer label value in [0, 32767], got {}", name, value.dump()));
  return value.get<int>();
}

void require_background(const RawDataset& dataset, const Field& field) {
  if (!dataset.labels.count(0)) field.fail("must declare the background label 0");
}

// MSD / nnU-Net v1: {"0": "background", "1": "liver"}.
void parse_value_to_name_labels(const json& node, const Field& field, RawDataset& dataset) {
  if (!node.is_object() || node.empty()) field.fail("expected an object {\"0\": \"background\", …}");
  for (const auto& [key, value] : node.items()) {
    if (!value.is_string()) field.fail(fmt::format("\"{}\": expected a label name string", key));
    dataset.labels[parse_index(key, field)] = value.get<std::string>();
  }
  require_background(dataset, field);
}

// nnU-Net v2: {"background": 0, "liver": 1, "whole tumor": [1, 2, 3]}.
void parse_name_to_value_labels(const json& node, const Field& field, RawDataset& dataset) {
  if (!node.is_object() || node.empty()) field.fail("expected an object {\"background\": 0, …}");
  for (const auto& [name, value] : node.items()) {
    if (value.is_array()) {
      if (value.empty()) field.fail(fmt::format("\"{}\": a region needs at least one label value", name));
      std::vector<int> members;
      for (const json& member : value) members.push_back(parse_label_value(member, field, name));
      dataset.regions[name] = members;
    } else {
      const int label = parse_label_value(value, field, name);
      if (dataset.labels.count(label))
        field.fail(
            fmt::format("label value {} is used by \"{}\" and \"{}\"", label, dataset.labels[label], name));
      dataset.labels[label] = name;
    }
  }
  require_background(dataset, field);
}

std::string strip_dot_slash(std::string path) {
  while (path.rfind("./", 0) == 0) path.erase(0, 2);
  return path;
}

std::string join(const std::string& root, const std::string& relative) {
  return (fs::path(root) / strip_dot_slash(relative)).lexically_normal().string();
}

std::string channel_file(const std::string& folder, const std::string& id, int64_t channel,
                         const std::string& ending) {
  return (fs::path(folder) / fmt::format("{}_{:04d}{}", id, channel, ending)).string();
}

bool exists(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

std::string case_id_of(const std::string& image_path, const std::string& ending, const Field& field) {
  const std::string name = fs::path(image_path).filename().string();
  if (!ends_with(name, ending) || name.size() == ending.size())
    field.fail(fmt::format("\"{}\": expected a file name ending in {}", image_path, ending));
  return name.substr(0, name.size() - ending.size());
}

// MSD and nnU-Net v1 list the same image path; MSD has that file (4D when multi-modal), v1 has per-channel
// files {case}_XXXX next to it.
DatasetFormat detect_listed_format(const std::string& image_path, const std::string& id,
                                   const std::string& ending) {
  if (exists(image_path)) return DatasetFormat::Msd;
  const std::string folder = fs::path(image_path).parent_path().string();
  if (exists(channel_file(folder, id, 0, ending))) return DatasetFormat::NnUNetV1;
  throw InputError(fmt::format("{}: file not found (nor the nnU-Net v1 channel file {})", image_path,
                               channel_file(folder, id, 0, ending)));
}

std::vector<std::string> listed_image_files(const RawDataset& dataset, const std::string& image_path,
                                            const std::string& id) {
  if (dataset.format == DatasetFormat::Msd) {
    if (!exists(image_path)) throw InputError(fmt::format("{}: file not found", image_path));
    return {image_path};
  }
  const std::string folder = fs::path(image_path).parent_path().string();
  std::vector<std::string> files;
  for (int64_t c = 0; c < dataset.channel_count(); ++c) {
    files.push_back(channel_file(folder, id, c, dataset.file_ending));
    if (!exists(files.back()))
      throw InputError(fmt::format("{}: file not found (channel {} of case {})", files.back(), c, id));
  }
  return files;
}

const json& required(const json& doc, const std::string& key, const std::string& file) {
  if (!doc.contains(key)) throw InputError(fmt::format("{}: missing \"{}\"", file, key));
  return doc[key];
}

// MSD / nnU-Net v1: "training": [{"image": "./imagesTr/x.nii.gz", "label": "./labelsTr/x.nii.gz"}, …].
void list_training_cases(const json& doc, const std::string& file, RawDataset& dataset) {
  const Field field{file, "training"};
  const json& entries = required(doc, "training", file);
  if (!entries.is_array()) field.fail("expected a list of {\"image\": …, \"label\": …}");
  bool format_known = false;
  for (const json& entry : entries) {
    if (!entry.is_object() || !entry.contains("image") || !entry.contains("label") ||
        !entry["image"].is_string() || !entry["label"].is_string())
      field.fail(fmt::format("expected {{\"image\": path, \"label\": path}}, got {}", entry.dump()));
    const std::string image = join(dataset.root, entry["image"].get<std::string>());
    if (is_hidden(fs::path(image).filename().string())) continue;
    RawCase raw_case;
    raw_case.id = case_id_of(image, dataset.file_ending, field);
    if (!format_known) {
      dataset.format = detect_listed_format(image, raw_case.id, dataset.file_ending);
      format_known = true;
    }
    raw_case.image_files = listed_image_files(dataset, image, raw_case.id);
    raw_case.label_file = join(dataset.root, entry["label"].get<std::string>());
    if (!exists(raw_case.label_file))
      throw InputError(
          fmt::format("{}: file not found (label of case {})", raw_case.label_file, raw_case.id));
    dataset.training.push_back(std::move(raw_case));
  }
}

// MSD / nnU-Net v1: "test": ["./imagesTs/x.nii.gz", …]. Test images are optional: missing ones are skipped.
void list_test_cases(const json& doc, const std::string& file, RawDataset& dataset) {
  if (!doc.contains("test")) return;
  const Field field{file, "test"};
  if (!doc["test"].is_array()) field.fail("expected a list of image paths");
  int64_t missing = 0;
  for (const json& entry : doc["test"]) {
    if (!entry.is_string()) field.fail(fmt::format("expected an image path, got {}", entry.dump()));
    const std::string image = join(dataset.root, entry.get<std::string>());
    if (is_hidden(fs::path(image).filename().string())) continue;
    RawCase raw_case;
    raw_case.id = case_id_of(image, dataset.file_ending, field);
    try {
      raw_case.image_files = listed_image_files(dataset, image, raw_case.id);
    } catch (const InputError&) {
      ++missing;
      continue;
    }
    dataset.test.push_back(std::move(raw_case));
  }
  if (missing > 0)
    spdlog::warn("{}: {} test image(s) listed in \"test\" are not present; skipped", file, missing);
}

// nnU-Net v2 lists nothing: cases are the files in the folders. Returns case id → channel → file.
std::map<std::string, std::map<int64_t, std::string>> list_channel_files(const std::string& folder,
                                                                         const std::string& ending) {
  std::map<std::string, std::map<int64_t, std::string>> cases;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return cases;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (is_hidden(name) || !ends_with(name, ending)) continue;
    const std::string stem = name.substr(0, name.size() - ending.size());
    const std::size_t underscore = stem.rfind('_');
    const std::string digits = underscore == std::string::npos ? "" : stem.substr(underscore + 1);
    if (underscore == 0 || digits.size() != 4 ||
        !std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); })) {
      spdlog::warn("{}: not named {{case}}_XXXX{}; ignored", entry.path().string(), ending);
      continue;
    }
    cases[stem.substr(0, underscore)][std::stoll(digits)] = entry.path().string();
  }
  return cases;
}

std::vector<std::string> complete_channels(const std::map<int64_t, std::string>& found, const std::string& id,
                                           const std::string& folder, const RawDataset& dataset) {
  std::vector<std::string> files;
  for (int64_t c = 0; c < dataset.channel_count(); ++c) {
    const auto it = found.find(c);
    if (it == found.end())
      throw InputError(fmt::format("{}: file not found (channel {} of case {})",
                                   channel_file(folder, id, c, dataset.file_ending), c, id));
    files.push_back(it->second);
  }
  if (static_cast<int64_t>(found.size()) > dataset.channel_count())
    throw InputError(fmt::format("{}: case {} has {} channel files but dataset.json declares {} channels",
                                 folder, id, found.size(), dataset.channel_count()));
  return files;
}

void list_v2_cases(RawDataset& dataset) {
  const std::string images_tr = join(dataset.root, "imagesTr");
  const std::string labels_tr = join(dataset.root, "labelsTr");
  auto images = list_channel_files(images_tr, dataset.file_ending);
  std::error_code ec;
  if (fs::is_directory(labels_tr, ec)) {
    for (const auto& entry : fs::directory_iterator(labels_tr)) {
      const std::string name = entry.path().filename().string();
      if (is_hidden(name) || !ends_with(name, dataset.file_ending)) continue;
      RawCase raw_case;
      raw_case.id = name.substr(0, name.size() - dataset.file_ending.size());
      raw_case.label_file = entry.path().string();
      raw_case.image_files = complete_channels(images[raw_case.id], raw_case.id, images_tr, dataset);
      images.erase(raw_case.id);
      dataset.training.push_back(std::move(raw_case));
    }
  }
  if (!images.empty()) {
    const std::string orphan = images.begin()->second.begin()->second;
    throw InputError(
        fmt::format("{}: no label file {} for this training image", orphan,
                    (fs::path(labels_tr) / (images.begin()->first + dataset.file_ending)).string()));
  }
  const std::string images_ts = join(dataset.root, "imagesTs");
  for (const auto& [id, found] : list_channel_files(images_ts, dataset.file_ending))
    dataset.test.push_back({id, complete_channels(found, id, images_ts, dataset), ""});
}

// labelsTs/{case}{ending} is the reference of a test image when present (not part of any nnU-Net format,
// but how held-out labels are commonly shipped).
void attach_test_labels(RawDataset& dataset) {
  const fs::path labels_ts = fs::path(dataset.root) / "labelsTs";
  std::error_code ec;
  if (!fs::is_directory(labels_ts, ec)) return;
  for (RawCase& c : dataset.test) {
    const fs::path label = labels_ts / (c.id + dataset.file_ending);
    if (fs::exists(label, ec)) c.label_file = label.string();
  }
}

void check_training_list(RawDataset& dataset, const json& doc, const std::string& file) {
  if (dataset.training.empty())
    throw InputError(
        fmt::format("{}: no training cases (empty \"training\" list or labelsTr/ folder)", file));
  auto by_id = [](const RawCase& a, const RawCase& b) { return a.id < b.id; };
  std::sort(dataset.training.begin(), dataset.training.end(), by_id);
  std::sort(dataset.test.begin(), dataset.test.end(), by_id);
  for (std::size_t i = 1; i < dataset.training.size(); ++i)
    if (dataset.training[i].id == dataset.training[i - 1].id)
      throw InputError(fmt::format("{}: training case {} is listed twice", file, dataset.training[i].id));
  if (doc.contains("numTraining") && doc["numTraining"].is_number_integer() &&
      doc["numTraining"].get<int64_t>() != static_cast<int64_t>(dataset.training.size()))
    spdlog::warn("{}: numTraining is {} but {} training cases were found", file,
                 doc["numTraining"].get<int64_t>(), dataset.training.size());
}

void parse_file_ending(const json& doc, const std::string& file, RawDataset& dataset) {
  const Field field{file, "file_ending"};
  const json& node = required(doc, "file_ending", file);
  if (!node.is_string()) field.fail("expected a string such as \".nii.gz\"");
  dataset.file_ending = node.get<std::string>();
  if (dataset.file_ending != ".nii.gz" && dataset.file_ending != ".nii")
    field.fail(fmt::format("only NIfTI (.nii.gz, .nii) is supported, got \"{}\"", dataset.file_ending));
}

void expect_volumes(const NiftiHeader& header, int64_t expected, const std::string& file,
                    const std::string& what) {
  if (header.channels != expected)
    throw InputError(fmt::format("{}: expected {} ({} volume(s)), found {} volume(s)", file, what, expected,
                                 header.channels));
}

void expect_same_grid(const NiftiGeometry& reference, const std::string& reference_file,
                      const NiftiGeometry& other, const std::string& other_file, const std::string& id) {
  const std::string difference = other.difference(reference);
  if (!difference.empty())
    throw InputError(fmt::format("{}: geometry differs from {} (case {}): {}", other_file, reference_file, id,
                                 difference));
}

std::string image_description(const RawDataset& dataset) {
  return dataset.format == DatasetFormat::Msd ? fmt::format("a {}-channel image", dataset.channel_count())
                                              : std::string("one channel");
}

}  // namespace

std::string to_string(DatasetFormat format) {
  switch (format) {
    case DatasetFormat::Msd:
      return "MSD";
    case DatasetFormat::NnUNetV1:
      return "nnU-Net v1";
    case DatasetFormat::NnUNetV2:
      return "nnU-Net v2";
  }
  return "unknown";
}

std::set<int> RawDataset::declared_label_values() const {
  std::set<int> values;
  for (const auto& [value, name] : labels) values.insert(value);
  for (const auto& [name, members] : regions) values.insert(members.begin(), members.end());
  return values;
}

RawDataset read_raw_dataset(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw InputError(fmt::format("{}: dataset folder not found", root));
  const std::string file = (fs::path(root) / "dataset.json").string();
  const json doc = read_json_file(file);
  if (!doc.is_object()) throw InputError(fmt::format("{}: expected a JSON object", file));

  RawDataset dataset;
  dataset.root = root;
  dataset.name = fs::path(root).lexically_normal().filename().string();
  if (doc.contains("name")) {
    if (!doc["name"].is_string())
      throw InputError(fmt::format("{}: \"name\": expected a string, got {}", file, doc["name"].dump()));
    dataset.name = doc["name"].get<std::string>();
  }
  if (doc.contains("channel_names")) {
    dataset.format = DatasetFormat::NnUNetV2;
    dataset.channel_names = parse_channel_map(doc["channel_names"], {file, "channel_names"});
    parse_name_to_value_labels(required(doc, "labels", file), {file, "labels"}, dataset);
    parse_file_ending(doc, file, dataset);
    if (doc.contains("dataset"))
      throw InputError(
          fmt::format("{}: explicit \"dataset\" file lists are not supported; use imagesTr/ and "
                      "labelsTr/ with {{case}}_XXXX{} names",
                      file, dataset.file_ending));
    list_v2_cases(dataset);
  } else if (doc.contains("modality")) {
    dataset.channel_names = parse_channel_map(doc["modality"], {file, "modality"});
    parse_value_to_name_labels(required(doc, "labels", file), {file, "labels"}, dataset);
    list_training_cases(doc, file, dataset);
    list_test_cases(doc, file, dataset);
  } else {
    throw InputError(
        fmt::format("{}: expected \"modality\" (MSD, nnU-Net v1) or \"channel_names\" (nnU-Net v2)", file));
  }
  check_training_list(dataset, doc, file);
  attach_test_labels(dataset);
  return dataset;
}

std::vector<RawCase> hold_out_training_cases(RawDataset& dataset, const std::vector<std::string>& ids) {
  std::vector<RawCase> held_out;
  for (const std::string& id : ids) {
    auto it = std::find_if(dataset.training.begin(), dataset.training.end(),
                           [&](const RawCase& c) { return c.id == id; });
    if (it == dataset.training.end())
      throw InputError(fmt::format("data.test_cases: '{}' is not a training case of {}", id, dataset.root));
    held_out.push_back(std::move(*it));
    dataset.training.erase(it);
  }
  return held_out;
}

std::vector<RawCase> test_set(const RawDataset& dataset, const std::vector<std::string>& held_out_ids) {
  RawDataset copy = dataset;
  std::vector<RawCase> cases = hold_out_training_cases(copy, held_out_ids);
  for (const RawCase& c : dataset.test) {
    if (std::find(held_out_ids.begin(), held_out_ids.end(), c.id) != held_out_ids.end())
      throw InputError(fmt::format("data.test_cases: '{}' is both a training case and a test image of {}",
                                   c.id, dataset.root));
    cases.push_back(c);
  }
  std::sort(cases.begin(), cases.end(), [](const RawCase& a, const RawCase& b) { return a.id < b.id; });
  return cases;
}

NiftiGeometry check_case_geometry(const RawDataset& dataset, const RawCase& raw_case) {
  if (raw_case.image_files.empty()) throw InputError(fmt::format("case {}: no image files", raw_case.id));
  const int64_t volumes_per_file = dataset.format == DatasetFormat::Msd ? dataset.channel_count() : 1;
  const std::string& reference_file = raw_case.image_files.front();
  NiftiGeometry reference;
  for (std::size_t i = 0; i < raw_case.image_files.size(); ++i) {
    const std::string& file = raw_case.image_files[i];
    const NiftiHeader header = read_nifti_header(file);
    expect_volumes(header, volumes_per_file, file, image_description(dataset));
    if (i == 0)
      reference = header.geometry;
    else
      expect_same_grid(reference, reference_file, header.geometry, file, raw_case.id);
  }
  if (!raw_case.label_file.empty()) {
    const NiftiHeader label = read_nifti_header(raw_case.label_file);
    expect_volumes(label, 1, raw_case.label_file, "a 3D label map");
    expect_same_grid(reference, reference_file, label.geometry, raw_case.label_file, raw_case.id);
  }
  return reference;
}

void check_declared_labels(const Volume<int16_t>& label, const RawDataset& dataset, const std::string& file) {
  std::vector<int64_t> counts(1 << 16, 0);
  for (int16_t v : label.voxels) ++counts[static_cast<uint16_t>(v)];
  const std::set<int> declared = dataset.declared_label_values();
  std::vector<int> undeclared;
  for (int v = INT16_MIN; v <= INT16_MAX; ++v)
    if (counts[static_cast<uint16_t>(v)] > 0 && !declared.count(v)) undeclared.push_back(v);
  if (!undeclared.empty())
    throw InputError(fmt::format("{}: label value(s) {} not declared in dataset.json (declared: {})", file,
                                 fmt::join(undeclared, ", "), fmt::join(declared, ", ")));
}

RawCaseData load_raw_case(const RawDataset& dataset, const RawCase& raw_case) {
  RawCaseData out;
  out.id = raw_case.id;
  out.geometry = check_case_geometry(dataset, raw_case);
  const Shape3 shape = out.geometry.shape;
  out.image = MultiVolume<float>(dataset.channel_count(), shape, out.geometry.spacing);
  int64_t channel = 0;
  for (const std::string& file : raw_case.image_files) {
    const NiftiImage image = read_nifti(file);
    // The headers were checked above; the data must agree with them (the file could change in between).
    if (image.data.shape != shape || channel + image.data.channels > out.image.channels)
      throw InputError(fmt::format("{}: changed while being read", file));
    std::copy(image.data.voxels.begin(), image.data.voxels.end(), out.image.channel(channel));
    channel += image.data.channels;
  }
  if (!raw_case.label_file.empty()) {
    out.label = read_nifti_labels(raw_case.label_file);
    if (out.label.shape != shape)
      throw InputError(fmt::format("{}: changed while being read", raw_case.label_file));
    check_declared_labels(out.label, dataset, raw_case.label_file);
  }
  return out;
}

}  // namespace e2e
