#include "metrics/postprocess.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "common/json_number.hpp"

namespace e2e {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int kLabelMin = std::numeric_limits<int16_t>::min();
constexpr int kLabelMax = std::numeric_limits<int16_t>::max();
constexpr std::size_t kLabelValues = 1 << 16;

std::size_t label_slot(int label) {
  return static_cast<std::size_t>(label - kLabelMin);
}

// Position of each label of `labels` by label_slot, −1 for the others.
std::vector<int> slots_of(const std::vector<int>& labels) {
  std::vector<int> slot(kLabelValues, -1);
  for (std::size_t i = 0; i < labels.size(); ++i) slot[label_slot(labels[i])] = static_cast<int>(i);
  return slot;
}

void check_classes(const std::vector<int>& classes, const std::string& field) {
  std::set<int> seen;
  for (int label : classes) {
    if (label < 1 || label > kLabelMax) {
      throw InputError(field + ": expected foreground labels in 1.." + std::to_string(kLabelMax) + ", got " +
                       std::to_string(label));
    }
    if (!seen.insert(label).second) {
      throw InputError(field + ": label " + std::to_string(label) + " is listed twice");
    }
  }
}

// Union-find over provisional component labels; the root of a set is its smallest label.
class DisjointSets {
 public:
  int32_t make() {
    parent_.push_back(static_cast<int32_t>(parent_.size()));
    return parent_.back();
  }
  int32_t find(int32_t a) {
    while (parent_[a] != a) {
      parent_[a] = parent_[parent_[a]];
      a = parent_[a];
    }
    return a;
  }
  void unite(int32_t a, int32_t b) {
    a = find(a);
    b = find(b);
    if (a < b) std::swap(a, b);
    parent_[a] = b;
  }
  std::size_t size() const { return parent_.size(); }

 private:
  std::vector<int32_t> parent_{0};  // label 0 = background
};

// First pass: provisional labels from the already visited face neighbours (x−1, y−1, z−1).
DisjointSets label_provisionally(const Mask& mask, Volume<int32_t>& labels) {
  DisjointSets sets;
  const Shape3& s = mask.shape;
  const int64_t plane = s[1] * s[2];
  for (int64_t z = 0; z < s[0]; ++z) {
    for (int64_t y = 0; y < s[1]; ++y) {
      const int64_t row = mask.index(z, y, 0);
      for (int64_t x = 0; x < s[2]; ++x) {
        const int64_t i = row + x;
        if (!mask.voxels[i]) continue;
        const int32_t neighbours[3] = {x > 0 ? labels.voxels[i - 1] : 0, y > 0 ? labels.voxels[i - s[2]] : 0,
                                       z > 0 ? labels.voxels[i - plane] : 0};
        int32_t label = 0;
        for (int32_t n : neighbours) {
          if (n == 0) continue;
          if (label == 0) {
            label = n;
          } else if (n != label) {
            sets.unite(label, n);
          }
        }
        labels.voxels[i] = label != 0 ? label : sets.make();
      }
    }
  }
  return sets;
}

// Bounding boxes of the labels in `labels`, by position, in one pass.
std::vector<Box> label_boxes(const LabelMap& map, const std::vector<int>& labels) {
  const std::vector<int> slot = slots_of(labels);
  std::vector<Box> boxes(labels.size());
  const Shape3& s = map.shape;
  const int16_t* voxel = map.voxels.data();
  for (int64_t z = 0; z < s[0]; ++z) {
    for (int64_t y = 0; y < s[1]; ++y) {
      for (int64_t x = 0; x < s[2]; ++x, ++voxel) {
        const int position = slot[label_slot(*voxel)];
        if (position >= 0) boxes[position].include(z, y, x);
      }
    }
  }
  return boxes;
}

// keep_largest_component inside a box known to hold every voxel of the region.
int64_t keep_largest_in_box(LabelMap& map, const std::vector<int>& labels, const Box& box) {
  if (box.empty()) return 0;
  std::vector<uint8_t> member(kLabelValues, 0);
  for (int label : labels) member[label_slot(label)] = 1;
  Mask mask(box.shape(), map.spacing);
  uint8_t* out = mask.voxels.data();
  for (int64_t z = box.lo[0]; z < box.hi[0]; ++z) {
    for (int64_t y = box.lo[1]; y < box.hi[1]; ++y) {
      const int16_t* row = map.voxels.data() + map.index(z, y, box.lo[2]);
      for (int64_t x = 0; x < box.hi[2] - box.lo[2]; ++x) *out++ = member[label_slot(row[x])];
    }
  }
  const ConnectedComponents components = connected_components(mask);
  const int64_t largest = *std::max_element(components.sizes.begin(), components.sizes.end());
  int64_t removed = 0;
  const int32_t* component = components.labels.voxels.data();
  for (int64_t z = box.lo[0]; z < box.hi[0]; ++z) {
    for (int64_t y = box.lo[1]; y < box.hi[1]; ++y) {
      int16_t* row = map.voxels.data() + map.index(z, y, box.lo[2]);
      for (int64_t x = 0; x < box.hi[2] - box.lo[2]; ++x, ++component) {
        if (*component != 0 && components.sizes[*component - 1] != largest) {
          row[x] = 0;
          ++removed;
        }
      }
    }
  }
  return removed;
}

// Each class of `classes` on its own (they do not interact: a removed voxel becomes background).
int64_t keep_largest_per_class(LabelMap& map, const std::vector<int>& classes) {
  const std::vector<Box> boxes = label_boxes(map, classes);
  int64_t removed = 0;
  for (std::size_t i = 0; i < classes.size(); ++i)
    removed += keep_largest_in_box(map, {classes[i]}, boxes[i]);
  return removed;
}

int64_t keep_largest_of_region(LabelMap& map, const std::vector<int>& labels) {
  Box box;
  for (const Box& b : label_boxes(map, labels)) box = Box::merge(box, b);
  return keep_largest_in_box(map, labels, box);
}

// Dice of every class in one pass (nnU-Net's rule: NaN when the class is in neither map).
std::vector<double> dice_per_class(const LabelMap& reference, const LabelMap& prediction,
                                   const std::vector<int>& classes) {
  const std::vector<int> slot = slots_of(classes);
  std::vector<OverlapCounts> counts(classes.size());
  const std::size_t n = reference.voxels.size();
  for (std::size_t i = 0; i < n; ++i) {
    const int g = slot[label_slot(reference.voxels[i])];
    const int p = slot[label_slot(prediction.voxels[i])];
    if (g == p) {
      if (g >= 0) ++counts[g].true_positives;
      continue;
    }
    if (g >= 0) ++counts[g].false_negatives;
    if (p >= 0) ++counts[p].false_positives;
  }
  std::vector<double> dice(classes.size());
  for (std::size_t c = 0; c < classes.size(); ++c) dice[c] = dice_from_counts(counts[c], DiceVariant::nnunet);
  return dice;
}

// nanmean over cases of each class's Dice in one of the four maps.
std::map<int, double> mean_by_class(const std::vector<PostprocessingCaseDice>& cases,
                                    std::vector<double> PostprocessingCaseDice::*which) {
  std::map<int, double> means;
  const std::vector<int>& classes = cases.front().classes;
  for (std::size_t c = 0; c < classes.size(); ++c) {
    std::vector<double> values;
    for (const PostprocessingCaseDice& measured : cases) values.push_back((measured.*which)[c]);
    means[classes[c]] = nanmean(values);
  }
  return means;
}

void check_measured(const std::vector<PostprocessingCaseDice>& cases) {
  if (cases.empty()) throw InputError("postprocessing: no cross-validation cases to decide on");
  const std::vector<int>& classes = cases.front().classes;
  for (const PostprocessingCaseDice& c : cases) {
    const std::string what = "postprocessing case '" + c.case_id + "'";
    if (c.classes != classes) throw InputError(what + ": measured on other classes than the first case");
    for (const auto* values : {&c.raw, &c.foreground_as_one, &c.per_class, &c.foreground_then_per_class}) {
      if (values->size() != classes.size()) {
        throw InputError(what + ": expected one Dice per class (" + std::to_string(classes.size()) + ")");
      }
    }
  }
}

double number_or_nan(const nlohmann::json& value, const std::string& field) {
  if (value.is_null()) return kNaN;
  if (!value.is_number()) throw InputError(field + ": expected a number or null, got " + value.dump());
  return value.get<double>();
}

nlohmann::json means_to_json(const std::map<int, double>& means) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [label, mean] : means) out[std::to_string(label)] = json_number(mean);
  return out;
}

const nlohmann::json& required(const nlohmann::json& json, const std::string& key, const std::string& what) {
  if (!json.is_object() || !json.contains(key)) throw InputError(what + "." + key + ": missing");
  return json.at(key);
}

std::vector<int> labels_from_json(const nlohmann::json& value, const std::string& field) {
  if (!value.is_array()) throw InputError(field + ": expected a list of labels, got " + value.dump());
  std::vector<int> labels;
  for (const nlohmann::json& item : value) {
    if (!item.is_number_integer()) throw InputError(field + ": expected integer labels, got " + item.dump());
    const int64_t label = item.get<int64_t>();
    if (label < 1 || label > kLabelMax) {
      throw InputError(field + ": expected foreground labels in 1.." + std::to_string(kLabelMax) + ", got " +
                       std::to_string(label));
    }
    labels.push_back(static_cast<int>(label));
  }
  check_classes(labels, field);
  return labels;
}

std::map<int, double> means_from_json(const nlohmann::json& value, const std::string& field) {
  std::map<int, double> means;
  if (value.is_null()) return means;
  if (!value.is_object()) throw InputError(field + ": expected an object of label → Dice");
  for (const auto& [key, mean] : value.items()) {
    try {
      means[std::stoi(key)] = number_or_nan(mean, field + "." + key);
    } catch (const std::logic_error&) {
      throw InputError(field + ": expected label keys, got '" + key + "'");
    }
  }
  return means;
}

std::vector<double> dice_list_from_json(const nlohmann::json& value, std::size_t size,
                                        const std::string& field) {
  if (!value.is_array() || value.size() != size) {
    throw InputError(field + ": expected " + std::to_string(size) + " values (one per class), got " +
                     value.dump());
  }
  std::vector<double> out;
  for (std::size_t i = 0; i < size; ++i) out.push_back(number_or_nan(value[i], field));
  return out;
}

nlohmann::json dice_list_to_json(const std::vector<double>& values) {
  nlohmann::json out = nlohmann::json::array();
  for (double v : values) out.push_back(json_number(v));
  return out;
}

}  // namespace

ConnectedComponents connected_components(const Mask& mask) {
  if (mask.size() != voxel_count(mask.shape)) {
    throw InputError("connected_components: the mask holds fewer or more voxels than its shape says");
  }
  ConnectedComponents result;
  result.labels = Volume<int32_t>(mask.shape, mask.spacing, 0);
  DisjointSets sets = label_provisionally(mask, result.labels);
  // Roots are the smallest provisional label of each set, which belongs to its first voxel in raster order:
  // numbering roots in increasing order numbers components in raster order, as scipy.ndimage.label does.
  std::vector<int32_t> final_label(sets.size(), 0);
  for (std::size_t p = 1; p < sets.size(); ++p) {
    const int32_t root = sets.find(static_cast<int32_t>(p));
    if (root == static_cast<int32_t>(p)) {
      result.sizes.push_back(0);
      final_label[p] = static_cast<int32_t>(result.sizes.size());
    } else {
      final_label[p] = final_label[root];
    }
  }
  for (int32_t& label : result.labels.voxels) {
    if (label == 0) continue;
    label = final_label[label];
    ++result.sizes[label - 1];
  }
  return result;
}

int64_t keep_largest_component(LabelMap& map, const std::vector<int>& labels) {
  check_classes(labels, "keep_largest_component labels");
  return keep_largest_of_region(map, labels);
}

PostprocessingCaseDice measure_postprocessing_case(const LabelMap& reference, const LabelMap& prediction,
                                                   const std::vector<int>& classes,
                                                   const std::string& case_id) {
  const std::string what = case_id.empty() ? "postprocessing" : case_id;
  check_same_geometry(reference, prediction, what);
  check_classes(classes, what + " classes");
  PostprocessingCaseDice measured;
  measured.case_id = case_id;
  measured.classes = classes;
  measured.raw = dice_per_class(reference, prediction, classes);

  LabelMap foreground = prediction;
  const int64_t removed_as_one = keep_largest_of_region(foreground, classes);
  measured.foreground_as_one =
      removed_as_one == 0 ? measured.raw : dice_per_class(reference, foreground, classes);

  LabelMap per_class = prediction;
  const int64_t removed_per_class = keep_largest_per_class(per_class, classes);
  measured.per_class = removed_per_class == 0 ? measured.raw : dice_per_class(reference, per_class, classes);

  if (removed_as_one == 0) {
    measured.foreground_then_per_class = measured.per_class;
  } else {
    const int64_t removed_after = keep_largest_per_class(foreground, classes);
    measured.foreground_then_per_class =
        removed_after == 0 ? measured.foreground_as_one : dice_per_class(reference, foreground, classes);
  }
  return measured;
}

PostprocessingDecision decide_postprocessing(const std::vector<PostprocessingCaseDice>& cases,
                                             double dice_threshold) {
  check_measured(cases);
  if (!(dice_threshold >= 0.0) || std::isinf(dice_threshold)) {
    throw InputError("postprocessing dice_threshold: expected a finite value >= 0, got " +
                     std::to_string(dice_threshold));
  }
  PostprocessingDecision decision;
  decision.classes = cases.front().classes;
  decision.dice_threshold = dice_threshold;
  decision.cases = static_cast<int64_t>(cases.size());
  decision.mean_dice_raw = mean_by_class(cases, &PostprocessingCaseDice::raw);
  decision.mean_dice_foreground_as_one = mean_by_class(cases, &PostprocessingCaseDice::foreground_as_one);

  // NaN compares false both ways: a class never present neither rises nor falls.
  bool any_rises = false, any_falls = false;
  for (int c : decision.classes) {
    const double before = decision.mean_dice_raw[c], after = decision.mean_dice_foreground_as_one[c];
    any_rises = any_rises || after > before + dice_threshold;
    any_falls = any_falls || after < before;
  }
  decision.foreground_as_one = any_rises && !any_falls;

  // With one class, step 1 already was the per-class step.
  if (decision.classes.size() < 2) return decision;
  const auto& before =
      decision.foreground_as_one ? decision.mean_dice_foreground_as_one : decision.mean_dice_raw;
  decision.mean_dice_per_class =
      mean_by_class(cases, decision.foreground_as_one ? &PostprocessingCaseDice::foreground_then_per_class
                                                      : &PostprocessingCaseDice::per_class);
  for (int c : decision.classes) {
    if (decision.mean_dice_per_class[c] > before.at(c) + dice_threshold) {
      decision.largest_component_classes.push_back(c);
    }
  }
  return decision;
}

PostprocessingDecision decide_postprocessing(const std::vector<PostprocessingCase>& cases,
                                             const std::vector<int>& classes, double dice_threshold) {
  std::vector<PostprocessingCaseDice> measured;
  for (const PostprocessingCase& c : cases) {
    if (c.reference == nullptr || c.prediction == nullptr) {
      throw std::invalid_argument("decide_postprocessing: case '" + c.case_id + "' has no label map");
    }
    measured.push_back(measure_postprocessing_case(*c.reference, *c.prediction, classes, c.case_id));
  }
  return decide_postprocessing(measured, dice_threshold);
}

int64_t apply_postprocessing(LabelMap& prediction, const PostprocessingDecision& decision) {
  check_classes(decision.classes, "postprocessing classes");
  check_classes(decision.largest_component_classes, "postprocessing largest_component_classes");
  int64_t removed = 0;
  if (decision.foreground_as_one) removed += keep_largest_of_region(prediction, decision.classes);
  removed += keep_largest_per_class(prediction, decision.largest_component_classes);
  return removed;
}

nlohmann::json to_json(const PostprocessingDecision& d) {
  return {{"rule", "nnunet_v1_largest_component"},
          {"classes", d.classes},
          {"foreground_as_one", d.foreground_as_one},
          {"largest_component_classes", d.largest_component_classes},
          {"dice_threshold", d.dice_threshold},
          {"cases", d.cases},
          {"mean_dice",
           {{"raw", means_to_json(d.mean_dice_raw)},
            {"foreground_as_one", means_to_json(d.mean_dice_foreground_as_one)},
            {"per_class", means_to_json(d.mean_dice_per_class)}}}};
}

PostprocessingDecision postprocessing_decision_from_json(const nlohmann::json& json,
                                                         const std::string& what) {
  PostprocessingDecision d;
  d.classes = labels_from_json(required(json, "classes", what), what + ".classes");
  const nlohmann::json& as_one = required(json, "foreground_as_one", what);
  if (!as_one.is_boolean()) throw InputError(what + ".foreground_as_one: expected true or false");
  d.foreground_as_one = as_one.get<bool>();
  const std::string kept_field = what + ".largest_component_classes";
  d.largest_component_classes =
      labels_from_json(required(json, "largest_component_classes", what), kept_field);
  for (int label : d.largest_component_classes) {
    if (std::find(d.classes.begin(), d.classes.end(), label) == d.classes.end()) {
      throw InputError(kept_field + ": label " + std::to_string(label) + " is not one of the classes");
    }
  }
  if (json.contains("dice_threshold")) d.dice_threshold = number_or_nan(json["dice_threshold"], what);
  if (json.contains("cases") && json["cases"].is_number_integer()) d.cases = json["cases"].get<int64_t>();
  if (json.contains("mean_dice") && json["mean_dice"].is_object()) {
    const nlohmann::json& means = json["mean_dice"];
    const std::string field = what + ".mean_dice.";
    if (means.contains("raw")) d.mean_dice_raw = means_from_json(means["raw"], field + "raw");
    if (means.contains("foreground_as_one")) {
      d.mean_dice_foreground_as_one =
          means_from_json(means["foreground_as_one"], field + "foreground_as_one");
    }
    if (means.contains("per_class"))
      d.mean_dice_per_class = means_from_json(means["per_class"], field + "per_class");
  }
  return d;
}

nlohmann::json to_json(const PostprocessingCaseDice& m) {
  return {{"case", m.case_id},
          {"classes", m.classes},
          {"dice",
           {{"raw", dice_list_to_json(m.raw)},
            {"foreground_as_one", dice_list_to_json(m.foreground_as_one)},
            {"per_class", dice_list_to_json(m.per_class)},
            {"foreground_then_per_class", dice_list_to_json(m.foreground_then_per_class)}}}};
}

PostprocessingCaseDice postprocessing_case_dice_from_json(const nlohmann::json& json,
                                                          const std::string& what) {
  PostprocessingCaseDice m;
  const nlohmann::json& id = required(json, "case", what);
  if (!id.is_string()) throw InputError(what + ".case: expected a case id string");
  m.case_id = id.get<std::string>();
  m.classes = labels_from_json(required(json, "classes", what), what + ".classes");
  const nlohmann::json& dice = required(json, "dice", what);
  const std::string field = what + ".dice";
  const std::size_t n = m.classes.size();
  m.raw = dice_list_from_json(required(dice, "raw", field), n, field + ".raw");
  m.foreground_as_one =
      dice_list_from_json(required(dice, "foreground_as_one", field), n, field + ".foreground_as_one");
  m.per_class = dice_list_from_json(required(dice, "per_class", field), n, field + ".per_class");
  m.foreground_then_per_class = dice_list_from_json(required(dice, "foreground_then_per_class", field), n,
                                                    field + ".foreground_then_per_class");
  return m;
}

}  // namespace e2e
