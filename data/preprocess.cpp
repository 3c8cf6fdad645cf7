// Fingerprint, plan and the per-case preprocessing steps. The whole-dataset run is in preprocess_dataset.cpp.
#include "data/preprocess.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <numeric>
#include <random>

#include "common/random.hpp"
#include "data/plan.hpp"
#include "data/resample.hpp"

namespace e2e {

namespace {

using nlohmann::json;

// numpy.percentile with linear interpolation over sorted values.
double sorted_percentile(const std::vector<double>& sorted, double percent) {
  if (sorted.empty()) return 0.0;
  const double position = percent / 100.0 * static_cast<double>(sorted.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(std::floor(position));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (position - static_cast<double>(lo));
}

double percentile(std::vector<double> values, double percent) {
  std::sort(values.begin(), values.end());
  return sorted_percentile(values, percent);
}

// A generator for one purpose of one case: independent of the order in which cases are processed. The
// Mersenne Twister's sequence is fixed by the standard, and draws use our own bounded rejection below, so
// the results are the same with every standard library.
std::mt19937_64 case_generator(uint64_t seed, const std::string& case_id, uint64_t purpose) {
  uint64_t hash = 1469598103934665603ULL;  // FNV-1a over the id
  for (unsigned char ch : case_id) hash = (hash ^ ch) * 1099511628211ULL;
  std::seed_seq sequence{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                         static_cast<uint32_t>(hash), static_cast<uint32_t>(hash >> 32),
                         static_cast<uint32_t>(purpose)};
  return std::mt19937_64(sequence);
}

// Moves a uniformly random subset of k elements to the front and drops the rest.
void keep_random_subset(std::vector<int64_t>& items, std::size_t k, std::mt19937_64& rng) {
  k = std::min(k, items.size());
  choose_prefix(items, k, rng);
  items.resize(k);
}

constexpr uint64_t kSamplePurpose = 1;
constexpr uint64_t kForegroundPurpose = 2;
constexpr int64_t kForegroundSamplesPerClass = 10000;
constexpr double kMinForegroundFraction = 0.01;

bool is_ct_channel(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return name == "ct";
}

template <typename T>
void crop_channel(const T* in, const Shape3& shape, const CropBox& box, T* out) {
  const Shape3 cropped = box.shape();
  for (int64_t z = 0; z < cropped[0]; ++z)
    for (int64_t y = 0; y < cropped[1]; ++y) {
      const T* row = in + ((z + box.begin[0]) * shape[1] + y + box.begin[1]) * shape[2] + box.begin[2];
      std::copy(row, row + cropped[2], out + (z * cropped[1] + y) * cropped[2]);
    }
}

json stats_json(const IntensityStats& s) {
  return {{"mean", s.mean},
          {"std", s.std},
          {"median", s.median},
          {"min", s.min},
          {"max", s.max},
          {"percentile_00_5", s.p00_5},
          {"percentile_99_5", s.p99_5},
          {"samples", s.samples}};
}

IntensityStats stats_from_json(const json& j) {
  IntensityStats s;
  s.mean = j.at("mean").get<double>();
  s.std = j.at("std").get<double>();
  s.median = j.at("median").get<double>();
  s.min = j.at("min").get<double>();
  s.max = j.at("max").get<double>();
  s.p00_5 = j.at("percentile_00_5").get<double>();
  s.p99_5 = j.at("percentile_99_5").get<double>();
  s.samples = j.at("samples").get<int64_t>();
  return s;
}

json labels_json(const std::map<int, std::string>& labels) {
  json out = json::object();
  for (const auto& [value, name] : labels) out[std::to_string(value)] = name;
  return out;
}

}  // namespace

// ------------------------------------------------------------------------------------------ fingerprint

IntensityStats intensity_stats(std::vector<float>& samples) {
  IntensityStats s;
  s.samples = static_cast<int64_t>(samples.size());
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  const std::vector<double> sorted(samples.begin(), samples.end());
  const double n = static_cast<double>(sorted.size());
  s.mean = std::accumulate(sorted.begin(), sorted.end(), 0.0) / n;
  double squares = 0.0;
  for (double v : sorted) squares += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(squares / n);
  s.median = sorted_percentile(sorted, 50.0);
  s.min = sorted.front();
  s.max = sorted.back();
  s.p00_5 = sorted_percentile(sorted, 0.5);
  s.p99_5 = sorted_percentile(sorted, 99.5);
  return s;
}

// ------------------------------------------------------------------------------------------------ plan

std::vector<int> Plan::foreground_classes() const {
  std::vector<int> classes;
  for (const auto& [value, name] : labels)
    if (value > 0) classes.push_back(value);
  return classes;
}

Spacing3 plan_target_spacing(const std::vector<Spacing3>& spacings, const std::vector<Shape3>& shapes) {
  if (spacings.empty() || spacings.size() != shapes.size())
    throw std::invalid_argument("plan_target_spacing: need one spacing and one shape per case");
  return nnunet_target_spacing(spacings, shapes);
}

Plan make_plan(const Fingerprint& fingerprint, const std::optional<Config>& config) {
  if (fingerprint.cases.empty()) throw InputError("plan: the fingerprint has no cases");
  Plan plan;
  std::vector<Spacing3> spacings;
  std::vector<Shape3> cropped;
  std::vector<double> size_reductions;
  for (const CaseFingerprint& c : fingerprint.cases) {
    spacings.push_back(c.spacing);
    cropped.push_back(c.cropped_shape);
    size_reductions.push_back(static_cast<double>(voxel_count(c.cropped_shape)) /
                              static_cast<double>(voxel_count(c.original_shape)));
  }
  if (config && config->data.target_spacing) {
    plan.target_spacing = *config->data.target_spacing;
    for (double s : plan.target_spacing)
      if (!(s > 0.0) || !std::isfinite(s))
        throw ConfigError(
            fmt::format("{}: data.target_spacing: expected 3 positive numbers", config->source));
  } else {
    plan.target_spacing = plan_target_spacing(spacings, cropped);
  }
  plan.median_shape = nnunet_median_shape(spacings, cropped, plan.target_spacing);

  const PlanningFingerprint planning = planning_fingerprint(fingerprint, "plan");
  if (config) {
    const Config applied = apply_plan(*config, planning);
    plan.patch_size = applied.training.patch_size;
    plan.batch_size = applied.training.batch_size;
    plan.pools = applied.model.pools;
  } else {
    const NetworkPlan network = plan_network(planning);
    plan.patch_size = network.patch_size;
    plan.batch_size = network.batch_size;
    plan.pools = network.pool_op_kernel_sizes;
  }

  const bool crop_shrinks = percentile(size_reductions, 50.0) < 0.75;
  plan.channel_names = fingerprint.channel_names;
  plan.intensity = fingerprint.intensity;
  plan.labels = fingerprint.labels;
  for (std::size_t c = 0; c < fingerprint.channel_names.size(); ++c) {
    const bool ct = is_ct_channel(fingerprint.channel_names[c]);
    plan.normalization.emplace_back(ct ? "ct" : "zscore");
    plan.use_nonzero_mask.push_back(!ct && crop_shrinks);
    if (ct && (c >= fingerprint.intensity.size() || fingerprint.intensity[c].samples == 0))
      throw InputError(
          fmt::format("channel {} is CT, whose normalization needs foreground intensity statistics, but no "
                      "training label "
                      "has a foreground voxel (label > 0)",
                      c));
  }
  return plan;
}

nlohmann::json to_json(const Fingerprint& fingerprint) {
  json cases = json::array();
  for (const CaseFingerprint& c : fingerprint.cases)
    cases.push_back({{"id", c.id},
                     {"spacing", c.spacing},
                     {"original_shape", c.original_shape},
                     {"cropped_shape", c.cropped_shape}});
  json intensity = json::array();
  for (const IntensityStats& s : fingerprint.intensity) intensity.push_back(stats_json(s));
  return {{"channel_names", fingerprint.channel_names},
          {"labels", labels_json(fingerprint.labels)},
          {"foreground_intensity", intensity},
          {"cases", cases}};
}

nlohmann::json to_json(const Plan& plan) {
  json intensity = json::array();
  for (const IntensityStats& s : plan.intensity) intensity.push_back(stats_json(s));
  return {{"target_spacing", plan.target_spacing},
          {"median_shape", plan.median_shape},
          {"patch_size", plan.patch_size},
          {"batch_size", plan.batch_size},
          {"pools", plan.pools},
          {"channel_names", plan.channel_names},
          {"normalization", plan.normalization},
          {"use_nonzero_mask", plan.use_nonzero_mask},
          {"foreground_intensity", intensity},
          {"labels", labels_json(plan.labels)},
          {"seed", plan.seed}};
}

Plan plan_from_json(const nlohmann::json& j) {
  try {
    Plan plan;
    plan.target_spacing = j.at("target_spacing").get<Spacing3>();
    plan.median_shape = j.at("median_shape").get<Shape3>();
    plan.patch_size = j.at("patch_size").get<Int3>();
    plan.batch_size = j.at("batch_size").get<int64_t>();
    plan.pools = j.at("pools").get<std::vector<Int3>>();
    plan.channel_names = j.at("channel_names").get<std::vector<std::string>>();
    plan.normalization = j.at("normalization").get<std::vector<std::string>>();
    plan.use_nonzero_mask = j.at("use_nonzero_mask").get<std::vector<bool>>();
    for (const json& s : j.at("foreground_intensity")) plan.intensity.push_back(stats_from_json(s));
    for (const auto& [key, name] : j.at("labels").items())
      plan.labels[std::stoi(key)] = name.get<std::string>();
    plan.seed = j.at("seed").get<uint64_t>();
    const std::size_t channels = plan.channel_names.size();
    if (plan.normalization.size() != channels || plan.use_nonzero_mask.size() != channels ||
        plan.intensity.size() != channels)
      throw InputError("plan: per-channel lists differ in length");
    return plan;
  } catch (const json::exception& e) {
    throw InputError(std::string("plan: malformed plan.json (") + e.what() + ")");
  } catch (const std::logic_error& e) {
    throw InputError(std::string("plan: malformed plan.json (") + e.what() + ")");
  }
}

// -------------------------------------------------------------------------------------- per-case steps

int64_t zero_non_finite(MultiVolume<float>& image) {
  int64_t count = 0;
  for (float& v : image.voxels)
    if (!std::isfinite(v)) {
      v = 0.0f;
      ++count;
    }
  return count;
}

Volume<uint8_t> nonzero_mask(const MultiVolume<float>& image) {
  Volume<uint8_t> mask(image.shape, image.spacing, 0);
  const int64_t n = image.channel_size();
  for (int64_t c = 0; c < image.channels; ++c) {
    const float* channel = image.channel(c);
    for (int64_t i = 0; i < n; ++i) mask.voxels[i] |= channel[i] != 0.0f ? 1 : 0;
  }
  // Fill holes: flood the background from the border (6-connected); unreached background is a hole.
  constexpr uint8_t kOutside = 2;
  const Shape3& s = mask.shape;
  std::vector<int64_t> stack;
  auto visit = [&](int64_t z, int64_t y, int64_t x) {
    uint8_t& v = mask.at(z, y, x);
    if (v == 0) {
      v = kOutside;
      stack.push_back(mask.index(z, y, x));
    }
  };
  for (int64_t z = 0; z < s[0]; ++z)
    for (int64_t y = 0; y < s[1]; ++y)
      for (int64_t x = 0; x < s[2]; ++x)
        if (z == 0 || y == 0 || x == 0 || z == s[0] - 1 || y == s[1] - 1 || x == s[2] - 1) visit(z, y, x);
  while (!stack.empty()) {
    const int64_t i = stack.back();
    stack.pop_back();
    const int64_t x = i % s[2], y = (i / s[2]) % s[1], z = i / (s[1] * s[2]);
    if (z > 0) visit(z - 1, y, x);
    if (z + 1 < s[0]) visit(z + 1, y, x);
    if (y > 0) visit(z, y - 1, x);
    if (y + 1 < s[1]) visit(z, y + 1, x);
    if (x > 0) visit(z, y, x - 1);
    if (x + 1 < s[2]) visit(z, y, x + 1);
  }
  for (uint8_t& v : mask.voxels) v = v == kOutside ? 0 : 1;
  return mask;
}

CropBox bounding_box(const Volume<uint8_t>& mask) {
  CropBox box{{mask.shape[0], mask.shape[1], mask.shape[2]}, {0, 0, 0}};
  for (int64_t z = 0; z < mask.shape[0]; ++z)
    for (int64_t y = 0; y < mask.shape[1]; ++y)
      for (int64_t x = 0; x < mask.shape[2]; ++x)
        if (mask.at(z, y, x)) {
          const Int3 p{z, y, x};
          for (int a = 0; a < 3; ++a) {
            box.begin[a] = std::min(box.begin[a], p[a]);
            box.end[a] = std::max(box.end[a], p[a] + 1);
          }
        }
  if (box.end[0] == 0) return {{0, 0, 0}, mask.shape};
  return box;
}

CroppedCase crop_to_nonzero(RawCaseData raw, const std::vector<std::string>& image_files) {
  MultiVolume<float>& image = raw.image;
  const auto file_of = [&](int64_t channel) {
    const std::size_t i = image_files.size() == static_cast<std::size_t>(image.channels) ? channel : 0;
    return i < image_files.size() ? image_files[i] : raw.id;
  };
  for (int64_t c = 0; c < image.channels; ++c) {
    const float* channel = image.channel(c);
    if (std::none_of(channel, channel + image.channel_size(), [](float v) { return std::isfinite(v); }))
      throw InputError(fmt::format("{}: every voxel of channel {} is NaN or infinite", file_of(c), c));
  }
  zero_non_finite(image);
  const Volume<uint8_t> mask = nonzero_mask(image);
  if (std::none_of(mask.voxels.begin(), mask.voxels.end(), [](uint8_t v) { return v != 0; }))
    // nifti_clib reads NaN as 0, so an all-NaN file ends up here too.
    throw InputError(fmt::format("{}: every voxel is zero or NaN (nothing to crop to)", file_of(0)));

  CroppedCase out;
  out.id = raw.id;
  out.geometry = raw.geometry;
  out.crop = bounding_box(mask);
  const Shape3 shape = out.crop.shape();
  out.image = MultiVolume<float>(image.channels, shape, raw.geometry.spacing);
  for (int64_t c = 0; c < image.channels; ++c)
    crop_channel(image.channel(c), image.shape, out.crop, out.image.channel(c));
  Volume<uint8_t> cropped_mask(shape);
  crop_channel(mask.voxels.data(), mask.shape, out.crop, cropped_mask.voxels.data());
  out.label = Volume<int16_t>(shape, raw.geometry.spacing, 0);
  if (raw.label.size() > 0)
    crop_channel(raw.label.voxels.data(), raw.label.shape, out.crop, out.label.voxels.data());
  for (std::size_t i = 0; i < out.label.voxels.size(); ++i)
    if (out.label.voxels[i] == 0 && !cropped_mask.voxels[i]) out.label.voxels[i] = -1;
  return out;
}

std::vector<std::vector<float>> foreground_samples(const CroppedCase& c, uint64_t seed) {
  std::vector<int64_t> foreground;
  for (int64_t i = 0; i < c.label.size(); ++i)
    if (c.label.voxels[i] > 0) foreground.push_back(i);
  const std::size_t wanted = std::min<std::size_t>((foreground.size() + 9) / 10, kMaxIntensitySamplesPerCase);
  std::mt19937_64 rng = case_generator(seed, c.id, kSamplePurpose);
  keep_random_subset(foreground, wanted, rng);
  std::vector<std::vector<float>> samples(static_cast<std::size_t>(c.image.channels));
  for (int64_t ch = 0; ch < c.image.channels; ++ch)
    for (int64_t i : foreground) samples[ch].push_back(c.image.channel(ch)[i]);
  return samples;
}

void normalize(MultiVolume<float>& image, const Volume<int16_t>& label, const Plan& plan) {
  if (static_cast<std::size_t>(image.channels) != plan.normalization.size())
    throw std::invalid_argument(
        fmt::format("normalize: image has {} channels, plan {}", image.channels, plan.normalization.size()));
  const int64_t n = image.channel_size();
  for (int64_t c = 0; c < image.channels; ++c) {
    float* v = image.channel(c);
    const bool masked = plan.use_nonzero_mask[c];
    if (plan.normalization[c] == "ct") {
      const IntensityStats& s = plan.intensity[c];
      const double scale = 1.0 / std::max(s.std, 1e-8);
      for (int64_t i = 0; i < n; ++i) {
        const double clipped = std::min(std::max(static_cast<double>(v[i]), s.p00_5), s.p99_5);
        v[i] = masked && label.voxels[i] < 0 ? 0.0f : static_cast<float>((clipped - s.mean) * scale);
      }
      continue;
    }
    double sum = 0.0, squares = 0.0;
    int64_t count = 0;
    for (int64_t i = 0; i < n; ++i)
      if (!masked || label.voxels[i] >= 0) {
        sum += v[i];
        ++count;
      }
    const double mean = count ? sum / static_cast<double>(count) : 0.0;
    for (int64_t i = 0; i < n; ++i)
      if (!masked || label.voxels[i] >= 0) squares += (v[i] - mean) * (v[i] - mean);
    const double scale = 1.0 / ((count ? std::sqrt(squares / static_cast<double>(count)) : 0.0) + 1e-8);
    for (int64_t i = 0; i < n; ++i)
      v[i] = masked && label.voxels[i] < 0 ? 0.0f : static_cast<float>((v[i] - mean) * scale);
  }
}

std::vector<std::pair<int, std::vector<std::array<int32_t, 3>>>> foreground_locations(
    const Volume<int16_t>& label, const std::vector<int>& classes, uint64_t seed,
    const std::string& case_id) {
  std::map<int, std::vector<int64_t>> voxels;
  for (int c : classes) voxels[c];
  for (int64_t i = 0; i < label.size(); ++i) {
    const int16_t v = label.voxels[i];
    if (v <= 0) continue;
    const auto it = voxels.find(v);
    if (it != voxels.end()) it->second.push_back(i);
  }
  std::vector<std::pair<int, std::vector<std::array<int32_t, 3>>>> out;
  for (auto& [value, indices] : voxels) {
    if (indices.empty()) continue;
    const int64_t n = static_cast<int64_t>(indices.size());
    const int64_t wanted =
        std::max(std::min(kForegroundSamplesPerClass, n),
                 static_cast<int64_t>(std::ceil(static_cast<double>(n) * kMinForegroundFraction)));
    std::mt19937_64 rng =
        case_generator(seed, case_id, kForegroundPurpose + 16 * static_cast<uint64_t>(value));
    keep_random_subset(indices, static_cast<std::size_t>(wanted), rng);
    std::sort(indices.begin(), indices.end());
    std::vector<std::array<int32_t, 3>> coords;
    coords.reserve(indices.size());
    const Shape3& s = label.shape;
    for (int64_t i : indices)
      coords.push_back({static_cast<int32_t>(i / (s[1] * s[2])), static_cast<int32_t>((i / s[2]) % s[1]),
                        static_cast<int32_t>(i % s[2])});
    out.emplace_back(value, std::move(coords));
  }
  return out;
}

PreprocessedCase preprocess_case(CroppedCase c, const Plan& plan, CaseMeta* meta) {
  c.image.spacing = c.geometry.spacing;
  c.label.spacing = c.geometry.spacing;
  PreprocessedCase out;
  out.id = c.id;
  out.image = resample_image(c.image, plan.target_spacing);
  c.image = {};  // release the full-resolution copy early
  out.label = resample_labels(c.label, plan.target_spacing);
  normalize(out.image, out.label, plan);
  out.foreground = foreground_locations(out.label, plan.foreground_classes(), plan.seed, c.id);
  if (meta) {
    meta->id = c.id;
    meta->spacing = plan.target_spacing;
    meta->shape = out.image.shape;
    meta->crop = c.crop;
    meta->geometry = c.geometry;
  }
  return out;
}

}  // namespace e2e
