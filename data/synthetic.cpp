// Synthetic organ-like data. Each case is built in three steps: a tissue map (body, organs, bone) drawn
// from implicit shapes in millimetres, the label map derived from it, and per channel an intensity image
// (tissue means, partial-volume blur, texture, bias field, noise).
#include "data/synthetic.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/file_io.hpp"
#include "common/random.hpp"

namespace e2e {

namespace fs = std::filesystem;

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kGeneratorVersion = 1;  // bump when the same seed starts giving different data

// ---- random numbers (own generator and transforms: identical datasets with any compiler or library) ----

enum class Stream : uint64_t { kDatasetLayout = 1, kContrast, kCase };

uint64_t stream_seed(uint64_t seed, Stream stream, uint64_t index) {
  return mix64(mix64(seed ^ 0x5eed5eed5eed5eedULL) + static_cast<uint64_t>(stream) * 0x9e3779b97f4a7c15ULL +
               mix64(index + 1));
}

using Random = SplitMix64;  // common/random.hpp

// Integer in [0, n) by scaling a uniform draw (slightly biased; kept: it is part of kGeneratorVersion 1).
int64_t scaled_below(Random& random, int64_t n) {
  return std::min<int64_t>(n - 1, static_cast<int64_t>(random.uniform() * n));
}

// ---- geometry in millimetres ----

struct Vec3 {
  double x = 0.0, y = 0.0, z = 0.0;
};

// Voxel centres in mm relative to the centre of the volume; x = W axis, y = H axis, z = D axis.
struct Grid {
  Shape3 shape;
  Spacing3 spacing;

  double coordinate(int axis, int64_t index) const {
    return (index - (shape[axis] - 1) / 2.0) * spacing[axis];
  }
  double half_extent(int axis) const { return shape[axis] * spacing[axis] / 2.0; }
  // Voxel indices [first, last) whose centres may lie within `radius` mm of `centre` along `axis`.
  std::pair<int64_t, int64_t> span(int axis, double centre, double radius) const {
    const double middle = (shape[axis] - 1) / 2.0 + centre / spacing[axis];
    const double reach = radius / spacing[axis] + 1.0;
    const int64_t first = std::max<int64_t>(0, static_cast<int64_t>(std::floor(middle - reach)));
    const int64_t last = std::min<int64_t>(shape[axis], static_cast<int64_t>(std::ceil(middle + reach)) + 1);
    return {first, std::max(first, last)};
  }
};

// Calls visit(z, y, x, position) for the voxels within `reach` mm (per axis) of `centre`.
template <typename Visit>
void for_each_voxel_near(const Grid& grid, const Vec3& centre, const Vec3& reach, Visit visit) {
  const auto [z0, z1] = grid.span(0, centre.z, reach.z);
  const auto [y0, y1] = grid.span(1, centre.y, reach.y);
  const auto [x0, x1] = grid.span(2, centre.x, reach.x);
  for (int64_t z = z0; z < z1; ++z)
    for (int64_t y = y0; y < y1; ++y)
      for (int64_t x = x0; x < x1; ++x)
        visit(z, y, x, Vec3{grid.coordinate(2, x), grid.coordinate(1, y), grid.coordinate(0, z)});
}

// A low-frequency ripple of a surface: amplitude · sin(frequency · (direction · d) + phase).
struct Wave {
  Vec3 direction;
  double frequency = 0.0, phase = 0.0, amplitude = 0.0;
};

// An ellipsoid rotated about z with a wavy surface; inside where level() < 1.
struct Blob {
  Vec3 centre, radii;
  double angle = 0.0;
  std::array<Wave, 3> waves{};

  double level(const Vec3& p) const {
    const double dx = p.x - centre.x, dy = p.y - centre.y;
    const double c = std::cos(angle), s = std::sin(angle);
    const Vec3 q{(c * dx + s * dy) / radii.x, (-s * dx + c * dy) / radii.y, (p.z - centre.z) / radii.z};
    const double r = std::sqrt(q.x * q.x + q.y * q.y + q.z * q.z);
    if (r == 0.0) return 0.0;
    double surface = 1.0;
    for (const Wave& w : waves) {
      const double along = (w.direction.x * q.x + w.direction.y * q.y + w.direction.z * q.z) / r;
      surface += w.amplitude * std::sin(w.frequency * along + w.phase);
    }
    return r / surface;
  }
  Vec3 reach() const {
    double swell = 1.0;
    for (const Wave& w : waves) swell += std::fabs(w.amplitude);
    const double planar = std::max(radii.x, radii.y) * swell;
    return {planar, planar, radii.z * swell};
  }
};

// A tube along z whose centre line meanders in x; inside where level() < 1.
struct Tube {
  double x = 0.0, y = 0.0, radius = 1.0, amplitude = 0.0, frequency = 0.0, phase = 0.0;
  double level(const Vec3& p) const {
    const double cx = x + amplitude * std::sin(frequency * p.z + phase);
    return std::hypot(p.x - cx, p.y - y) / radius;
  }
};

Vec3 random_direction(Random& random) {
  const double z = random.uniform(-1.0, 1.0), angle = random.uniform(0.0, 2.0 * kPi);
  const double r = std::sqrt(1.0 - z * z);
  return {r * std::cos(angle), r * std::sin(angle), z};
}

void add_waves(Blob& blob, Random& random, double max_amplitude) {
  for (Wave& w : blob.waves)
    w = {random_direction(random), random.uniform(1.5, 3.5), random.uniform(0.0, 2.0 * kPi),
         random.uniform(0.3, 1.0) * max_amplitude};
}

// ---- tissues ----

enum Tissue : uint8_t { kOutside = 0, kFat, kSoft, kCortical, kMarrow, kFirstOrgan };
enum class Archetype { kLargeOrgan, kPairedOrgan, kSmallLesions, kVessel, kMediumOrgan };

uint8_t organ_tissue(int label) {
  return static_cast<uint8_t>(kFirstOrgan + label - 1);
}
int label_of_tissue(uint8_t tissue) {
  return tissue >= kFirstOrgan ? tissue - kFirstOrgan + 1 : 0;
}
Archetype archetype_of(int label) {
  return static_cast<Archetype>(std::min(label - 1, 4));
}
bool is_body(uint8_t t) {
  return t != kOutside;
}
bool is_plain_body(uint8_t t) {
  return t == kFat || t == kSoft;
}

// Dataset-wide placement of a medium organ (class 5 and up), so that it sits in the same place in every case.
struct OrganSlot {
  double x, y, z, rx, ry, rz, angle;
};

struct Body {
  double rx, ry, cx, cy, swell, swell_phase, fat;
  double radius_x(double z) const { return rx * (1.0 + swell * std::sin(0.05 * z + swell_phase)); }
  double level(const Vec3& p) const {
    const double ux = (p.x - cx) / radius_x(p.z), uy = (p.y - cy) / ry;
    return std::sqrt(ux * ux + uy * uy);
  }
  Vec3 at(double nx, double ny, double z) const { return {cx + nx * rx, cy + ny * ry, z}; }
  double small_radius() const { return std::min(rx, ry); }
};

class TissueBuilder {
 public:
  TissueBuilder(const Grid& grid, Random& random, const std::vector<OrganSlot>& slots, int classes)
      : grid_(grid),
        random_(random),
        slots_(slots),
        classes_(classes),
        tissue_(grid.shape),
        anchors_(classes) {}

  Volume<uint8_t> build() {
    draw_body();
    for (int label = 1; label < classes_; ++label) draw_class(label);
    draw_spine();
    draw_ribs();
    ensure_every_class_present();
    return std::move(tissue_);
  }
  const Body& body() const { return body_; }

 private:
  double jitter(double amount) { return random_.uniform(-amount, amount); }
  double scale(double amount) { return random_.uniform(1.0 - amount, 1.0 + amount); }

  void draw_body() {
    body_ = {0.86 * grid_.half_extent(2) * random_.uniform(0.9, 1.0),
             0.74 * grid_.half_extent(1) * random_.uniform(0.9, 1.0),
             jitter(0.03) * grid_.half_extent(2),
             jitter(0.03) * grid_.half_extent(1),
             random_.uniform(0.02, 0.06),
             random_.uniform(0.0, 2.0 * kPi),
             random_.uniform(0.1, 0.16)};
    const Vec3 reach{grid_.half_extent(2) * 2, grid_.half_extent(1) * 2, grid_.half_extent(0) * 2};
    for_each_voxel_near(grid_, Vec3{}, reach, [&](int64_t z, int64_t y, int64_t x, const Vec3& p) {
      const double level = body_.level(p);
      if (level < 1.0) tissue_.at(z, y, x) = level > 1.0 - body_.fat ? kFat : kSoft;
    });
  }

  // Paints `value` where the shape's level is below `inside` and the current tissue passes `allowed`.
  template <typename Shape, typename Allowed>
  int64_t paint(const Shape& shape, const Vec3& centre, const Vec3& reach, uint8_t value, Allowed allowed) {
    int64_t painted = 0;
    for_each_voxel_near(grid_, centre, reach, [&](int64_t z, int64_t y, int64_t x, const Vec3& p) {
      uint8_t& t = tissue_.at(z, y, x);
      if (allowed(t) && shape.level(p) < 1.0) {
        t = value;
        ++painted;
      }
    });
    return painted;
  }

  Blob organ_blob(const Vec3& centre, const Vec3& radii, double angle, double waviness) {
    Blob blob{centre, radii, angle, {}};
    add_waves(blob, random_, waviness);
    return blob;
  }

  void paint_organ(const Blob& blob, int label) {
    if (anchors_[label].empty()) anchors_[label].push_back(blob.centre);
    paint(blob, blob.centre, blob.reach(), organ_tissue(label), is_body);
  }

  void draw_class(int label) {
    const double hz = grid_.half_extent(0);
    const Body& b = body_;
    switch (archetype_of(label)) {
      case Archetype::kLargeOrgan: {
        const Vec3 centre = b.at(-0.36 + jitter(0.05), -0.15 + jitter(0.05), (0.1 + jitter(0.08)) * hz);
        paint_organ(
            organ_blob(centre, {0.5 * b.rx * scale(0.12), 0.5 * b.ry * scale(0.12), 0.75 * hz * scale(0.1)},
                       jitter(0.3), 0.1),
            label);
        return;
      }
      case Archetype::kPairedOrgan: {
        const Vec3 radii{0.18 * b.rx * scale(0.12), 0.25 * b.ry * scale(0.12), 0.4 * hz * scale(0.12)};
        const double z = (-0.18 + jitter(0.08)) * hz, tilt = 0.35 + jitter(0.15);
        for (double side : {-1.0, 1.0})
          paint_organ(organ_blob(b.at(side * (0.45 + jitter(0.04)), 0.4 + jitter(0.05), z),
                                 {radii.x * scale(0.05), radii.y * scale(0.05), radii.z}, side * tilt, 0.08),
                      label);
        return;
      }
      case Archetype::kSmallLesions:
        return draw_lesions(label);
      case Archetype::kVessel: {
        const Vec3 centre = b.at(0.14 + jitter(0.03), 0.36 + jitter(0.03), 0.0);
        const Tube tube{centre.x,
                        centre.y,
                        0.075 * b.small_radius() * scale(0.1),
                        0.05 * b.rx,
                        random_.uniform(0.02, 0.06),
                        random_.uniform(0.0, 2.0 * kPi)};
        if (anchors_[label].empty()) anchors_[label].push_back({tube.x, tube.y, 0.0});
        paint(tube, Vec3{tube.x, tube.y, 0.0}, {tube.radius + tube.amplitude, tube.radius, 2 * hz},
              organ_tissue(label), is_body);
        return;
      }
      case Archetype::kMediumOrgan: {
        const OrganSlot& s = slots_[label];
        const Vec3 centre = b.at(s.x + jitter(0.04), s.y + jitter(0.04), (s.z + jitter(0.05)) * hz);
        paint_organ(
            organ_blob(centre, {s.rx * b.rx * scale(0.1), s.ry * b.ry * scale(0.1), s.rz * hz * scale(0.1)},
                       s.angle + jitter(0.2), 0.12),
            label);
        return;
      }
    }
  }

  // 1 to 3 small blobs inside the large organ (class 1): small, low-contrast, hard to find.
  void draw_lesions(int label) {
    const int count = 1 + static_cast<int>(scaled_below(random_, 3));
    for (int i = 0; i < count; ++i) {
      const double r = random_.uniform(0.06, 0.11) * body_.small_radius();
      const Vec3 centre = point_inside(organ_tissue(1));
      const Blob blob = organ_blob(centre, {r, r * scale(0.2), std::max(r, 1.5 * grid_.spacing[0])},
                                   random_.uniform(0.0, kPi), 0.12);
      paint_organ(blob, label);
    }
  }

  // A random voxel centre of the given tissue (the body centre when there is none).
  Vec3 point_inside(uint8_t tissue) {
    for (int attempt = 0; attempt < 200; ++attempt) {
      const int64_t z = scaled_below(random_, grid_.shape[0]), y = scaled_below(random_, grid_.shape[1]),
                    x = scaled_below(random_, grid_.shape[2]);
      if (tissue_.at(z, y, x) == tissue)
        return {grid_.coordinate(2, x), grid_.coordinate(1, y), grid_.coordinate(0, z)};
    }
    return body_.at(0.0, 0.0, 0.0);
  }

  // Unlabelled bone: a vertebral column (cortical shell, marrow inside) behind the organs.
  void draw_spine() {
    const Tube outer{body_.cx + jitter(0.02) * body_.rx,
                     body_.at(0.0, 0.76, 0.0).y,
                     0.13 * body_.small_radius(),
                     0.02 * body_.rx,
                     0.05,
                     random_.uniform(0.0, 2.0 * kPi)};
    Tube inner = outer;
    inner.radius *= 0.68;
    const Vec3 centre{outer.x, outer.y, 0.0},
        reach{outer.radius * 1.5, outer.radius, 2 * grid_.half_extent(0)};
    paint(outer, centre, reach, kCortical, is_plain_body);
    paint(inner, centre, reach, kMarrow, [](uint8_t t) { return t == kCortical; });
  }

  // Small, bright, unlabelled structures near the body wall.
  void draw_ribs() {
    const int count = 8 + static_cast<int>(scaled_below(random_, 6));
    for (int i = 0; i < count; ++i) {
      double angle = random_.uniform(-kPi, kPi);
      if (std::fabs(angle - kPi / 2) < 0.45) angle += kPi;  // not through the spine (posterior midline)
      const double depth = random_.uniform(0.8, 0.9);
      const Vec3 centre{body_.cx + depth * body_.rx * std::cos(angle),
                        body_.cy + depth * body_.ry * std::sin(angle),
                        random_.uniform(-1.0, 1.0) * grid_.half_extent(0)};
      const double r = std::max(0.06 * body_.small_radius(), 0.8 * grid_.spacing[2]);
      Blob rib{centre, {r, r, std::max(2.5 * r, 1.2 * grid_.spacing[0])}, 0.0, {}};
      paint(rib, centre, rib.reach(), kCortical, is_plain_body);
    }
  }

  // Tiny volumes could miss a structure entirely; every class must occur in every case.
  void ensure_every_class_present() {
    std::vector<int64_t> counts(classes_, 0);
    for (uint8_t t : tissue_.voxels) ++counts[std::min(label_of_tissue(t), classes_ - 1)];
    for (int label = 1; label < classes_; ++label) {
      if (counts[label] > 0 || anchors_[label].empty()) continue;
      const Vec3& a = anchors_[label].front();
      auto index = [&](int axis, double mm) {
        const double i = std::round(mm / grid_.spacing[axis] + (grid_.shape[axis] - 1) / 2.0);
        return std::clamp<int64_t>(static_cast<int64_t>(i), 0, grid_.shape[axis] - 1);
      };
      tissue_.at(index(0, a.z), index(1, a.y), index(2, a.x)) = organ_tissue(label);
    }
  }

  const Grid& grid_;
  Random& random_;
  const std::vector<OrganSlot>& slots_;
  int classes_;
  Volume<uint8_t> tissue_;
  Body body_{};
  std::vector<std::vector<Vec3>> anchors_;
};

// ---- intensities ----

struct TissueContrast {
  double mean = 0.0;
  double texture = 0.0;  // amplitude of the organ texture
};

struct ChannelContrast {
  std::vector<TissueContrast> tissues;  // indexed by Tissue (organ classes from kFirstOrgan)
  double noise = 0.0;
};

TissueContrast base_contrast(bool ct, uint8_t tissue) {
  if (tissue >= kFirstOrgan) {
    const int label = label_of_tissue(tissue);
    switch (archetype_of(label)) {
      case Archetype::kLargeOrgan:
        return ct ? TissueContrast{80, 9} : TissueContrast{500, 25};
      case Archetype::kPairedOrgan:
        return ct ? TissueContrast{150, 14} : TissueContrast{300, 20};
      case Archetype::kSmallLesions:
        return ct ? TissueContrast{20, 5} : TissueContrast{680, 20};
      case Archetype::kVessel:
        return ct ? TissueContrast{175, 6} : TissueContrast{130, 10};
      case Archetype::kMediumOrgan:
        return ct ? TissueContrast{90.0 + 30.0 * ((label - 5) % 4), 10}
                  : TissueContrast{250.0 + 110.0 * ((label - 5) % 5), 20};
    }
  }
  static const TissueContrast kCt[] = {{-1000, 0}, {-95, 8}, {45, 10}, {700, 40}, {230, 25}};
  static const TissueContrast kMr[] = {{0, 0}, {850, 30}, {420, 20}, {60, 10}, {620, 25}};
  return ct ? kCt[tissue] : kMr[tissue];
}

// Channel 0 has the base contrast; further channels re-weight it (CT: contrast uptake of the organs as in
// another phase; MR: another sequence), the same way in every case.
std::vector<ChannelContrast> dataset_contrasts(const SyntheticOptions& options) {
  const bool ct = options.modality == "CT";
  Random random(stream_seed(options.seed, Stream::kContrast, 0));
  std::vector<ChannelContrast> channels(options.channels);
  const int tissues = kFirstOrgan + options.classes - 1;
  for (int c = 0; c < options.channels; ++c) {
    channels[c].noise = ct ? 14.0 : 22.0;
    for (int t = 0; t < tissues; ++t) {
      TissueContrast contrast = base_contrast(ct, static_cast<uint8_t>(t));
      if (c > 0 && t != kOutside) {
        const double factor = random.uniform(0.45, 1.6);
        if (!ct)
          contrast.mean *= factor;
        else if (t >= kFirstOrgan)
          contrast.mean = 45.0 + (contrast.mean - 45.0) * factor;
      }
      channels[c].tissues.push_back(contrast);
    }
  }
  return channels;
}

// Smooth random field: Gaussian values on a coarse lattice, trilinearly interpolated.
class SmoothField {
 public:
  SmoothField(Random& random, const Shape3& shape, const Int3& cells) : shape_(shape), cells_(cells) {
    lattice_.resize(static_cast<std::size_t>((cells[0] + 1) * (cells[1] + 1) * (cells[2] + 1)));
    for (double& v : lattice_) v = random.normal();
    for (int axis = 0; axis < 3; ++axis) {
      for (int64_t i = 0; i < shape[axis]; ++i) {
        const double u = (i + 0.5) / shape[axis] * cells[axis];
        const int64_t cell = std::min<int64_t>(static_cast<int64_t>(u), cells[axis] - 1);
        axes_[axis].push_back({cell, u - cell});
      }
    }
  }
  double at(int64_t z, int64_t y, int64_t x) const {
    const Step& a = axes_[0][z];
    const Step& b = axes_[1][y];
    const Step& c = axes_[2][x];
    auto node = [&](int64_t i, int64_t j, int64_t k) {
      return lattice_[((a.cell + i) * (cells_[1] + 1) + b.cell + j) * (cells_[2] + 1) + c.cell + k];
    };
    auto lerp = [](double p, double q, double t) { return p + (q - p) * t; };
    const double x00 = lerp(node(0, 0, 0), node(0, 0, 1), c.t), x01 = lerp(node(0, 1, 0), node(0, 1, 1), c.t);
    const double x10 = lerp(node(1, 0, 0), node(1, 0, 1), c.t), x11 = lerp(node(1, 1, 0), node(1, 1, 1), c.t);
    return lerp(lerp(x00, x01, b.t), lerp(x10, x11, b.t), a.t);
  }

 private:
  struct Step {
    int64_t cell;
    double t;
  };
  Shape3 shape_;
  Int3 cells_;
  std::vector<double> lattice_;
  std::array<std::vector<Step>, 3> axes_;
};

Int3 cells_of_size(const Shape3& shape, const std::array<double, 3>& voxels_per_cell) {
  Int3 cells{};
  for (int axis = 0; axis < 3; ++axis)
    cells[axis] = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(shape[axis] / voxels_per_cell[axis])));
  return cells;
}

// [1 2 1] / 4 along each axis: partial-volume edges (borders replicate).
void blur3(std::vector<float>& data, const Shape3& shape) {
  std::vector<float> copy(data.size());
  const int64_t strides[3] = {shape[1] * shape[2], shape[2], 1};
  for (int axis = 0; axis < 3; ++axis) {
    if (shape[axis] < 3) continue;
    copy = data;
    const int64_t stride = strides[axis];
    for (int64_t i = 0; i < static_cast<int64_t>(data.size()); ++i) {
      const int64_t position = (i / stride) % shape[axis];
      const float before = copy[position > 0 ? i - stride : i];
      const float after = copy[position + 1 < shape[axis] ? i + stride : i];
      data[i] = 0.25f * before + 0.5f * copy[i] + 0.25f * after;
    }
  }
}

void render_channel(const Volume<uint8_t>& tissue, const ChannelContrast& contrast, bool ct, Random& random,
                    float* out) {
  const Shape3& shape = tissue.shape;
  // Per case: tissue means drift a little, the noise level varies.
  std::vector<TissueContrast> tissues = contrast.tissues;
  const double case_scale = ct ? 1.0 : random.uniform(0.85, 1.15);
  for (std::size_t t = 1; t < tissues.size(); ++t)
    tissues[t].mean = ct ? tissues[t].mean + 5.0 * random.normal()
                         : tissues[t].mean * case_scale * (1.0 + 0.03 * random.normal());
  const double noise = contrast.noise * random.uniform(0.8, 1.2);

  std::vector<float> clean(tissue.voxels.size());
  for (std::size_t i = 0; i < clean.size(); ++i)
    clean[i] = static_cast<float>(tissues[tissue.voxels[i]].mean);
  blur3(clean, shape);

  const SmoothField fine(random, shape, cells_of_size(shape, {2.0, 4.0, 4.0}));
  const SmoothField coarse(random, shape,
                           cells_of_size(shape, {shape[0] / 3.0, shape[1] / 3.0, shape[2] / 3.0}));
  const SmoothField bias(random, shape, {2, 2, 2});
  const double bias_strength = ct ? 6.0 : random.uniform(0.12, 0.25);
  for (int64_t z = 0, i = 0; z < shape[0]; ++z)
    for (int64_t y = 0; y < shape[1]; ++y)
      for (int64_t x = 0; x < shape[2]; ++x, ++i) {
        const uint8_t t = tissue.voxels[i];
        double v = clean[i] + tissues[t].texture * (0.7 * fine.at(z, y, x) + 0.5 * coarse.at(z, y, x));
        v = ct ? v + bias_strength * bias.at(z, y, x) : v * std::exp(bias_strength * bias.at(z, y, x));
        v += noise * random.normal();
        if (ct)
          v = std::clamp(v, -1024.0, 3071.0);
        else
          v = t == kOutside ? 0.0 : std::max(v, 0.0);  // MR: exact zeros outside the body (crop to non-zero)
        out[i] = static_cast<float>(v);
      }
}

std::vector<OrganSlot> dataset_layout(const SyntheticOptions& options) {
  Random random(stream_seed(options.seed, Stream::kDatasetLayout, 0));
  std::vector<OrganSlot> slots(options.classes);
  for (OrganSlot& s : slots)
    s = {random.uniform(-0.45, 0.45), random.uniform(-0.45, 0.3), random.uniform(-0.35, 0.35),
         random.uniform(0.12, 0.2),   random.uniform(0.12, 0.2),  random.uniform(0.2, 0.35),
         random.uniform(-0.6, 0.6)};
  return slots;
}

// Steps of 1e-4 mm; dividing by the power of ten keeps 0.7 exactly 0.7.
double round_to_tenth_micron(double value) {
  return std::round(value * 1e4) / 1e4;
}

std::array<double, 3> centred_origin(const Grid& grid) {
  return {-grid.coordinate(2, grid.shape[2] - 1), -grid.coordinate(1, grid.shape[1] - 1),
          -grid.coordinate(0, grid.shape[0] - 1)};
}

// ---- writing ----

nlohmann::json dataset_json(const SyntheticOptions& options) {
  nlohmann::json modality = nlohmann::json::object(), labels = nlohmann::json::object();
  const std::vector<std::string> channels = synthetic_channel_names(options);
  for (std::size_t c = 0; c < channels.size(); ++c) modality[std::to_string(c)] = channels[c];
  const std::vector<std::string> classes = synthetic_class_names(options.classes);
  for (std::size_t c = 0; c < classes.size(); ++c) labels[std::to_string(c)] = classes[c];
  nlohmann::json training = nlohmann::json::array();
  for (int64_t i = 0; i < options.cases; ++i) {
    const std::string id = synthetic_case_id(i, options.cases);
    training.push_back(
        {{"image", "./imagesTr/" + id + ".nii.gz"}, {"label", "./labelsTr/" + id + ".nii.gz"}});
  }
  return {{"name", "Synthetic"},
          {"description", fmt::format("Synthetic organ-like {} data written by e2e synth", options.modality)},
          {"reference", "e2enet-orchestrator"},
          {"licence", "CC0"},
          {"release", fmt::format("generator {}", kGeneratorVersion)},
          {"tensorImageSize", options.channels > 1 ? "4D" : "3D"},
          {"modality", modality},
          {"labels", labels},
          {"numTraining", options.cases},
          {"numTest", 0},
          {"training", training},
          {"test", nlohmann::json::array()},
          {"synthetic",
           {{"seed", options.seed},
            {"shape", options.shape},
            {"spacing", options.spacing},
            {"spacing_jitter", options.spacing_jitter},
            {"generator_version", kGeneratorVersion}}}};
}

void write_case_files(const fs::path& folder, const SyntheticOptions& options, int64_t index) {
  const SyntheticCase c = make_synthetic_case(options, index);
  const std::string name = c.id + ".nii.gz";
  write_nifti((folder / "imagesTr" / name).string(), c.image, c.geometry);
  write_nifti_labels((folder / "labelsTr" / name).string(), c.label, c.geometry);
}

// Cases are independent: workers take the next index until all are written or one fails.
void write_cases(const fs::path& folder, const SyntheticOptions& options, int threads,
                 const SyntheticProgress& progress) {
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex mutex;  // guards error, done and progress calls
  int64_t done = 0;
  auto work = [&] {
    for (int64_t i = next++; i < options.cases && !failed; i = next++) {
      try {
        write_case_files(folder, options, i);
        const std::lock_guard<std::mutex> lock(mutex);
        if (progress) progress(++done, options.cases);
      } catch (...) {
        const std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

bool is_empty_folder(const fs::path& folder) {
  return fs::directory_iterator(folder) == fs::directory_iterator();
}

void check_output_folder(const fs::path& target, bool force) {
  std::error_code ec;
  if (!fs::exists(target, ec)) return;
  if (!fs::is_directory(target, ec))
    throw InputError(fmt::format("--out {}: exists and is not a folder", target.string()));
  if (is_empty_folder(target)) return;
  if (!force)
    throw InputError(fmt::format("--out {}: folder is not empty (use --force to replace the dataset in it)",
                                 target.string()));
  if (!fs::exists(target / "dataset.json", ec))
    throw InputError(
        fmt::format("--out {}: not a dataset folder (no dataset.json); refusing to replace it even "
                    "with --force",
                    target.string()));
}

fs::path normalized_target(const std::string& out_dir) {
  if (out_dir.empty()) throw ConfigError("--out: expected a folder path");
  fs::path target = fs::absolute(out_dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();  // trailing slash
  if (target == target.root_path())
    throw InputError("--out " + out_dir + ": refusing to write to the root folder");
  return target;
}

}  // namespace

void SyntheticOptions::validate() const {
  auto fail = [](const std::string& option, const std::string& expected, const std::string& got) {
    throw ConfigError(fmt::format("{}: expected {}, got {}", option, expected, got));
  };
  if (cases < 1 || cases > 100000) fail("--cases", "1 to 100000", std::to_string(cases));
  if (classes < 2 || classes > 32)
    fail("--classes", "2 to 32 (background included)", std::to_string(classes));
  for (int64_t s : shape)
    if (s < 8 || s > 1024)
      fail("--shape", "3 sizes from 8 to 1024", fmt::format("{},{},{}", shape[0], shape[1], shape[2]));
  for (double s : spacing)
    if (!(s > 0.0) || !(s <= 100.0))
      fail("--spacing", "3 positive spacings up to 100 mm",
           fmt::format("{},{},{}", spacing[0], spacing[1], spacing[2]));
  if (!(spacing_jitter >= 0.0) || !(spacing_jitter <= 0.5))
    fail("--spacing-jitter", "0 to 0.5", std::to_string(spacing_jitter));
  if (channels < 1 || channels > 16) fail("--channels", "1 to 16", std::to_string(channels));
  if (modality != "CT" && modality != "MR") fail("--modality", "CT or MR", "'" + modality + "'");
}

std::string synthetic_case_id(int64_t index, int64_t cases) {
  const int width = std::max(3, static_cast<int>(std::to_string(cases).size()));
  return fmt::format("synth_{:0{}d}", index + 1, width);
}

std::vector<std::string> synthetic_channel_names(const SyntheticOptions& options) {
  static const char* kMr[] = {"T1", "T2", "FLAIR", "T1Gd"};
  std::vector<std::string> names;
  for (int c = 0; c < options.channels; ++c) {
    if (options.modality == "CT")
      names.emplace_back("CT");  // multi-phase CT: every channel is CT-normalized
    else
      names.emplace_back(c < 4 ? kMr[c] : fmt::format("MR{}", c));
  }
  if (options.modality == "MR" && options.channels == 1) names[0] = "MR";
  return names;
}

std::vector<std::string> synthetic_class_names(int classes) {
  static const char* kNames[] = {"background", "large_organ", "paired_organ", "small_lesions", "vessel"};
  std::vector<std::string> names;
  for (int c = 0; c < classes; ++c) names.push_back(c < 5 ? kNames[c] : fmt::format("organ_{}", c));
  return names;
}

SyntheticCase make_synthetic_case(const SyntheticOptions& options, int64_t index) {
  options.validate();
  Random random(stream_seed(options.seed, Stream::kCase, static_cast<uint64_t>(index)));
  const double z_scale = random.uniform(1.0 - options.spacing_jitter, 1.0 + options.spacing_jitter);
  const double plane_scale = random.uniform(1.0 - options.spacing_jitter, 1.0 + options.spacing_jitter);
  const Spacing3 spacing{round_to_tenth_micron(options.spacing[0] * z_scale),
                         round_to_tenth_micron(options.spacing[1] * plane_scale),
                         round_to_tenth_micron(options.spacing[2] * plane_scale)};
  const Grid grid{options.shape, spacing};

  const std::vector<OrganSlot> slots = dataset_layout(options);
  TissueBuilder builder(grid, random, slots, options.classes);
  const Volume<uint8_t> tissue = builder.build();

  SyntheticCase out;
  out.id = synthetic_case_id(index, options.cases);
  out.geometry = make_nifti_geometry(options.shape, spacing, centred_origin(grid));
  out.label = Volume<int16_t>(options.shape, spacing);
  for (std::size_t i = 0; i < tissue.voxels.size(); ++i)
    out.label.voxels[i] = static_cast<int16_t>(label_of_tissue(tissue.voxels[i]));
  out.image = MultiVolume<float>(options.channels, options.shape, spacing);
  const std::vector<ChannelContrast> contrasts = dataset_contrasts(options);
  for (int c = 0; c < options.channels; ++c)
    render_channel(tissue, contrasts[c], options.modality == "CT", random, out.image.channel(c));
  return out;
}

void write_synthetic_dataset(const std::string& out_dir, const SyntheticOptions& options, bool force,
                             int threads, const SyntheticProgress& progress) {
  options.validate();
  const fs::path target = normalized_target(out_dir);
  check_output_folder(target, force);
  fs::create_directories(target.parent_path());
  const fs::path temporary =
      target.parent_path() / fmt::format(".{}.tmp-{}", target.filename().string(), ::getpid());
  try {
    fs::remove_all(temporary);
    fs::create_directories(temporary / "imagesTr");
    fs::create_directories(temporary / "labelsTr");
    const int workers =
        threads > 0 ? threads : static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 2u));
    write_cases(temporary, options, std::min<int>(workers, static_cast<int>(options.cases)), progress);
    std::ofstream json_file(temporary / "dataset.json");
    json_file << dataset_json(options).dump(4) << "\n";
    json_file.close();
    if (!json_file) throw InputError(fmt::format("--out {}: cannot write dataset.json", target.string()));
    replace_folder(temporary, target);
  } catch (const fs::filesystem_error& e) {
    std::error_code ignored;
    fs::remove_all(temporary, ignored);
    throw InputError(fmt::format("--out {}: {}", target.string(), e.what()));
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(temporary, ignored);
    throw;
  }
}

}  // namespace e2e
