#include "data/augment.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace e2e {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Keys cubic convolution weights (a = −0.5) for taps −1, 0, 1, 2 at fraction t ∈ [0, 1).
inline void cubic_weights(float t, float* w) {
  const float t2 = t * t;
  const float t3 = t2 * t;
  w[0] = -0.5f * t3 + t2 - 0.5f * t;
  w[1] = 1.5f * t3 - 2.5f * t2 + 1.0f;
  w[2] = -1.5f * t3 + 2.0f * t2 + 0.5f * t;
  w[3] = 0.5f * t3 - 0.5f * t2;
}

// Where one output voxel reads from: integer base and fractions per axis.
struct SourcePoint {
  int64_t base[3];
  float fraction[3];
};

inline int64_t floor_to_int(double v) {
  const auto i = static_cast<int64_t>(v);
  return i - (v < static_cast<double>(i));  // std::floor is a libm call without SSE4.1
}

inline SourcePoint source_point(const double* s) {
  SourcePoint p;
  for (int d = 0; d < 3; ++d) {
    p.base[d] = floor_to_int(s[d]);
    p.fraction[d] = static_cast<float>(s[d] - static_cast<double>(p.base[d]));
  }
  return p;
}

// Four floats as one vector (GCC/Clang vector extension: SSE on x86-64, NEON on ARM).
using Float4 = float __attribute__((vector_size(16)));

inline Float4 load4(const float* p) {
  Float4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Cubic sample; `inside` means all 4×4×4 taps lie in the volume.
float cubic_sample(const float* volume, const Shape3& shape, const SourcePoint& p, const float (*w)[4],
                   bool inside) {
  const int64_t plane = shape[1] * shape[2];
  const int64_t row = shape[2];
  if (inside) {
    // Weighted sum of the 16 rows of 4 taps (y weights, then z weights), then the x weights.
    const float* origin = volume + (p.base[0] - 1) * plane + (p.base[1] - 1) * row + (p.base[2] - 1);
    Float4 rows = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int a = 0; a < 4; ++a) {
      const float* q = origin + a * plane;
      const Float4 plane_rows = w[1][0] * load4(q) + w[1][1] * load4(q + row) + w[1][2] * load4(q + 2 * row) +
                                w[1][3] * load4(q + 3 * row);
      rows += w[0][a] * plane_rows;
    }
    const Float4 x_weights = {w[2][0], w[2][1], w[2][2], w[2][3]};
    rows *= x_weights;
    return rows[0] + rows[1] + rows[2] + rows[3];
  }
  float sum = 0.0f;
  for (int a = 0; a < 4; ++a) {
    const int64_t z = p.base[0] - 1 + a;
    if (z < 0 || z >= shape[0] || w[0][a] == 0.0f) continue;
    float plane_sum = 0.0f;
    for (int b = 0; b < 4; ++b) {
      const int64_t y = p.base[1] - 1 + b;
      if (y < 0 || y >= shape[1] || w[1][b] == 0.0f) continue;
      const float* r = volume + z * plane + y * row;
      float row_sum = 0.0f;
      for (int c = 0; c < 4; ++c) {
        const int64_t x = p.base[2] - 1 + c;
        if (x >= 0 && x < shape[2]) row_sum += w[2][c] * r[x];
      }
      plane_sum += w[1][b] * row_sum;
    }
    sum += w[0][a] * plane_sum;
  }
  return sum;
}

inline int16_t label_at(const Volume<int16_t>& label, int64_t z, int64_t y, int64_t x) {
  return label.contains(z, y, x) ? label.at(z, y, x) : int16_t{-1};
}

// The 8 labels around p (−1 outside the case), corner k = (dz, dy, dx) bits (4, 2, 1).
inline void corner_labels(const Volume<int16_t>& label, const SourcePoint& p, int16_t* values) {
  const Shape3& shape = label.shape;
  if (p.base[0] >= 0 && p.base[1] >= 0 && p.base[2] >= 0 && p.base[0] + 1 < shape[0] &&
      p.base[1] + 1 < shape[1] && p.base[2] + 1 < shape[2]) {
    const int64_t plane = shape[1] * shape[2];
    const int16_t* q = label.voxels.data() + label.index(p.base[0], p.base[1], p.base[2]);
    const int64_t offsets[8] = {0,     1,         shape[2],         shape[2] + 1,
                                plane, plane + 1, plane + shape[2], plane + shape[2] + 1};
    for (int k = 0; k < 8; ++k) values[k] = q[offsets[k]];
    return;
  }
  for (int k = 0; k < 8; ++k)
    values[k] = label_at(label, p.base[0] + (k >> 2), p.base[1] + ((k >> 1) & 1), p.base[2] + (k & 1));
}

// Per-label linear: the label with the largest summed trilinear weight (ties → larger value).
int16_t linear_label(const Volume<int16_t>& label, const SourcePoint& p) {
  int16_t corners[8];
  corner_labels(label, p, corners);
  bool uniform = true;
  for (int k = 1; k < 8; ++k) uniform = uniform && corners[k] == corners[0];
  if (uniform) return corners[0];
  int16_t values[8];
  float weights[8];
  int distinct = 0;
  for (int k = 0; k < 8; ++k) {
    const float w = ((k >> 2) ? p.fraction[0] : 1.0f - p.fraction[0]) *
                    (((k >> 1) & 1) ? p.fraction[1] : 1.0f - p.fraction[1]) *
                    ((k & 1) ? p.fraction[2] : 1.0f - p.fraction[2]);
    int i = 0;
    while (i < distinct && values[i] != corners[k]) ++i;
    if (i == distinct) {
      values[distinct] = corners[k];
      weights[distinct++] = 0.0f;
    }
    weights[i] += w;
  }
  int best = 0;
  for (int i = 1; i < distinct; ++i) {
    if (weights[i] > weights[best] || (weights[i] == weights[best] && values[i] > values[best])) best = i;
  }
  return values[best];
}

int16_t nearest_label(const Volume<int16_t>& label, const double* s) {
  return label_at(label, floor_to_int(s[0] + 0.5), floor_to_int(s[1] + 0.5), floor_to_int(s[2] + 0.5));
}

// Mirror ("reflect") boundary: … c b a | a b c … d | d c b …
// Shape seen as (outer, length, inner) around one axis.
struct AxisView {
  int64_t outer, length, inner;
};

AxisView axis_view(const Shape3& shape, int axis) {
  AxisView v{1, shape[axis], 1};
  for (int d = 0; d < axis; ++d) v.outer *= shape[d];
  for (int d = axis + 1; d < 3; ++d) v.inner *= shape[d];
  return v;
}

// A 1D linear resampling along one axis: out[j] = Σ_k weight[j][k] · in[index[j][k]].
// out (outer × filter_length × inner) = filter applied along the middle axis of in (outer × length × inner).
void apply_axis_filter(const float* in, const AxisView& v, const AxisFilter& filter, int64_t out_length,
                       float* out) {
  if (v.inner == 1) {  // along rows: one short dot product per output voxel
    for (int64_t o = 0; o < v.outer; ++o) {
      const float* in_line = in + o * v.length;
      float* out_line = out + o * out_length;
      for (int64_t j = 0; j < out_length; ++j) {
        const int64_t* index = filter.index.data() + j * filter.taps;
        const float* weight = filter.weight.data() + j * filter.taps;
        float sum = 0.0f;
        for (int k = 0; k < filter.taps; ++k) sum += weight[k] * in_line[index[k]];
        out_line[j] = sum;
      }
    }
    return;
  }
  for (int64_t o = 0; o < v.outer; ++o) {
    const float* in_block = in + o * v.length * v.inner;
    float* out_block = out + o * out_length * v.inner;
    for (int64_t j = 0; j < out_length; ++j) {
      float* out_line = out_block + j * v.inner;
      std::fill(out_line, out_line + v.inner, 0.0f);
      for (int k = 0; k < filter.taps; ++k) {
        const float w = filter.weight[j * filter.taps + k];
        const float* in_line = in_block + filter.index[j * filter.taps + k] * v.inner;
        for (int64_t i = 0; i < v.inner; ++i) out_line[i] += w * in_line[i];
      }
    }
  }
}

AxisFilter gaussian_filter(int64_t length, double sigma) {
  const std::vector<float> kernel = gaussian_kernel(sigma);
  const int radius = static_cast<int>(kernel.size() / 2);
  AxisFilter filter;
  filter.taps = 2 * radius + 1;
  for (int64_t j = 0; j < length; ++j) {
    for (int k = -radius; k <= radius; ++k) {
      filter.index.push_back(reflect_index(j + k, length));
      filter.weight.push_back(kernel[k + radius]);
    }
  }
  return filter;
}

}  // namespace

int64_t reflect_index(int64_t i, int64_t n) {
  const int64_t period = 2 * n;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - 1 - i;
}

std::vector<float> gaussian_kernel(double sigma) {
  const int radius = static_cast<int>(4.0 * sigma + 0.5);
  std::vector<float> kernel(2 * radius + 1);
  double total = 0.0;
  for (int k = -radius; k <= radius; ++k) total += std::exp(-0.5 * k * k / (sigma * sigma));
  for (int k = -radius; k <= radius; ++k) {
    kernel[k + radius] = static_cast<float>(std::exp(-0.5 * k * k / (sigma * sigma)) / total);
  }
  return kernel;
}

// Cubic resize with half-voxel alignment and edge clamping (skimage resize geometry).
AxisFilter cubic_resize_filter(int64_t in_length, int64_t out_length) {
  AxisFilter filter;
  filter.taps = 4;
  const double ratio = static_cast<double>(in_length) / static_cast<double>(out_length);
  for (int64_t j = 0; j < out_length; ++j) {
    const double s = (j + 0.5) * ratio - 0.5;
    const double f = std::floor(s);
    float w[4];
    cubic_weights(static_cast<float>(s - f), w);
    for (int k = 0; k < 4; ++k) {
      filter.index.push_back(std::clamp<int64_t>(static_cast<int64_t>(f) - 1 + k, 0, in_length - 1));
      filter.weight.push_back(w[k]);
    }
  }
  return filter;
}

std::vector<int64_t> nearest_indices(int64_t in_length, int64_t out_length) {
  std::vector<int64_t> index(out_length);
  const double ratio = static_cast<double>(in_length) / static_cast<double>(out_length);
  for (int64_t j = 0; j < out_length; ++j) {
    index[j] = std::min<int64_t>(static_cast<int64_t>(std::floor((j + 0.5) * ratio)), in_length - 1);
  }
  return index;
}

namespace {

struct Moments {
  double mean = 0.0, std = 0.0;
  float min = 0.0f, max = 0.0f;
};

Moments moments(const float* x, int64_t n) {
  Moments m;
  if (n == 0) return m;
  double sum = 0.0, sum_sq = 0.0;
  m.min = m.max = x[0];
  for (int64_t i = 0; i < n; ++i) {
    sum += x[i];
    sum_sq += static_cast<double>(x[i]) * x[i];
    m.min = std::min(m.min, x[i]);
    m.max = std::max(m.max, x[i]);
  }
  m.mean = sum / n;
  m.std = std::sqrt(std::max(0.0, sum_sq / n - m.mean * m.mean));
  return m;
}

template <typename T>
void flip_axis(T* data, const Shape3& shape, int axis) {
  const AxisView v = axis_view(shape, axis);
  for (int64_t o = 0; o < v.outer; ++o) {
    T* block = data + o * v.length * v.inner;
    for (int64_t j = 0; j < v.length / 2; ++j) {
      std::swap_ranges(block + j * v.inner, block + (j + 1) * v.inner, block + (v.length - 1 - j) * v.inner);
    }
  }
}

// U(lo, 1) or U(1, hi) with p 0.5 each (nnU-Net's draw for scale, contrast and gamma).
double split_uniform(Rng& rng, double lo, double hi) {
  if (rng.chance(0.5) && lo < 1.0) return rng.uniform(lo, 1.0);
  return rng.uniform(std::max(lo, 1.0), hi);
}

std::vector<double> per_channel(Rng& rng, int64_t channels, double lo, double hi, bool split) {
  std::vector<double> values(channels);
  for (auto& v : values) v = split ? split_uniform(rng, lo, hi) : rng.uniform(lo, hi);
  return values;
}

// Per channel with its own probability; 0 marks a skipped channel.
std::vector<double> per_channel_maybe(Rng& rng, int64_t channels, double probability, double lo, double hi) {
  std::vector<double> values(channels, 0.0);
  for (auto& v : values) {
    if (rng.chance(probability)) v = rng.uniform(lo, hi);
  }
  return values;
}

void require_probability(double p, const char* field) {
  if (!(p >= 0.0 && p <= 1.0)) {
    throw InputError(fmt::format("augment.{}: expected a probability in [0, 1], got {}", field, p));
  }
}

void require_range(double lo, double hi, const char* lo_field, const char* hi_field, bool positive) {
  if (!(lo <= hi) || (positive && !(lo > 0.0))) {
    throw InputError(fmt::format("augment.{} / augment.{}: expected {}min <= max, got {} and {}", lo_field,
                                 hi_field, positive ? "0 < " : "", lo, hi));
  }
}

}  // namespace

AugmentOptions no_augmentation(const AugmentOptions& base) {
  AugmentOptions none = base;
  none.rotation_probability = none.scale_probability = 0.0;
  none.noise_probability = none.blur_probability = 0.0;
  none.brightness_probability = none.contrast_probability = 0.0;
  none.low_resolution_probability = 0.0;
  none.inverted_gamma_probability = none.gamma_probability = 0.0;
  none.mirror_probability = 0.0;
  none.elastic_probability = 0.0;
  return none;
}

void validate(const AugmentOptions& o) {
  require_probability(o.rotation_probability, "rotation_probability");
  require_probability(o.scale_probability, "scale_probability");
  require_probability(o.noise_probability, "noise_probability");
  require_probability(o.blur_probability, "blur_probability");
  require_probability(o.blur_channel_probability, "blur_channel_probability");
  require_probability(o.brightness_probability, "brightness_probability");
  require_probability(o.contrast_probability, "contrast_probability");
  require_probability(o.low_resolution_probability, "low_resolution_probability");
  require_probability(o.low_resolution_channel_probability, "low_resolution_channel_probability");
  require_probability(o.inverted_gamma_probability, "inverted_gamma_probability");
  require_probability(o.gamma_probability, "gamma_probability");
  require_probability(o.mirror_probability, "mirror_probability");
  require_probability(o.elastic_probability, "elastic_probability");
  if (!(o.max_rotation_deg >= 0.0 && o.max_rotation_deg <= 180.0)) {
    throw InputError(
        fmt::format("augment.max_rotation_deg: expected degrees in [0, 180], got {}", o.max_rotation_deg));
  }
  require_range(o.min_scale, o.max_scale, "min_scale", "max_scale", true);
  if (!(o.max_noise_std >= 0.0)) {
    throw InputError(fmt::format("augment.max_noise_std: expected a std >= 0, got {}", o.max_noise_std));
  }
  require_range(o.min_blur_sigma, o.max_blur_sigma, "min_blur_sigma", "max_blur_sigma", true);
  require_range(o.min_brightness, o.max_brightness, "min_brightness", "max_brightness", true);
  require_range(o.min_contrast, o.max_contrast, "min_contrast", "max_contrast", true);
  require_range(o.min_gamma, o.max_gamma, "min_gamma", "max_gamma", true);
  require_range(o.min_zoom, o.max_zoom, "min_zoom", "max_zoom", true);
  require_range(o.min_elastic_alpha, o.max_elastic_alpha, "min_elastic_alpha", "max_elastic_alpha", false);
  if (!(o.min_elastic_alpha >= 0.0)) {
    throw InputError(
        fmt::format("augment.min_elastic_alpha: expected an alpha >= 0, got {}", o.min_elastic_alpha));
  }
  require_range(o.min_elastic_sigma, o.max_elastic_sigma, "min_elastic_sigma", "max_elastic_sigma", true);
  if (o.max_zoom > 1.0)
    throw InputError(fmt::format("augment.max_zoom: expected a zoom <= 1, got {}", o.max_zoom));
}

Shape3 sampling_size(const Shape3& patch, const AugmentOptions& options) {
  const double rotation = options.rotation_probability > 0.0 ? options.max_rotation_deg : 0.0;
  const double min_scale = options.scale_probability > 0.0 ? options.min_scale : 1.0;
  return enlarged_patch_size(patch, rotation, min_scale, is_dummy_2d(patch));
}

AugmentDraw draw_augmentation(const AugmentOptions& o, const DrawKey& key, int64_t channels, bool dummy_2d) {
  AugmentDraw draw;
  Rng spatial(draw_seed(key, DrawStream::kSpatial));
  if (spatial.chance(o.rotation_probability)) {
    draw.rotated = true;
    for (int axis = 0; axis < (dummy_2d ? 1 : 3); ++axis) {
      draw.rotation_deg[axis] = spatial.uniform(-o.max_rotation_deg, o.max_rotation_deg);
    }
  }
  if (spatial.chance(o.scale_probability)) {
    draw.scaled = true;
    draw.scale = split_uniform(spatial, o.min_scale, o.max_scale);
  }
  Rng elastic(draw_seed(key, DrawStream::kElastic));
  if (elastic.chance(o.elastic_probability)) {
    draw.elastic = true;
    draw.elastic_alpha = elastic.uniform(o.min_elastic_alpha, o.max_elastic_alpha);
    draw.elastic_sigma = elastic.uniform(o.min_elastic_sigma, o.max_elastic_sigma);
  }
  Rng noise(draw_seed(key, DrawStream::kNoise));
  if (noise.chance(o.noise_probability)) {
    draw.noise = true;
    draw.noise_std = noise.uniform(0.0, o.max_noise_std);
  }
  Rng blur(draw_seed(key, DrawStream::kBlur));
  if (blur.chance(o.blur_probability)) {
    draw.blur_sigma =
        per_channel_maybe(blur, channels, o.blur_channel_probability, o.min_blur_sigma, o.max_blur_sigma);
  }
  Rng brightness(draw_seed(key, DrawStream::kBrightness));
  if (brightness.chance(o.brightness_probability)) {
    draw.brightness = per_channel(brightness, channels, o.min_brightness, o.max_brightness, false);
  }
  Rng contrast(draw_seed(key, DrawStream::kContrast));
  if (contrast.chance(o.contrast_probability)) {
    draw.contrast = per_channel(contrast, channels, o.min_contrast, o.max_contrast, true);
  }
  Rng low_resolution(draw_seed(key, DrawStream::kLowResolution));
  if (low_resolution.chance(o.low_resolution_probability)) {
    draw.low_resolution_zoom = per_channel_maybe(
        low_resolution, channels, o.low_resolution_channel_probability, o.min_zoom, o.max_zoom);
  }
  Rng inverted_gamma(draw_seed(key, DrawStream::kInvertedGamma));
  if (inverted_gamma.chance(o.inverted_gamma_probability)) {
    draw.inverted_gamma = per_channel(inverted_gamma, channels, o.min_gamma, o.max_gamma, true);
  }
  Rng gamma(draw_seed(key, DrawStream::kGamma));
  if (gamma.chance(o.gamma_probability))
    draw.gamma = per_channel(gamma, channels, o.min_gamma, o.max_gamma, true);
  Rng mirror_rng(draw_seed(key, DrawStream::kMirror));
  for (auto& axis : draw.mirror) axis = mirror_rng.chance(o.mirror_probability);
  return draw;
}

Affine3 identity_affine() {
  return {{{1.0, 0.0, 0.0}, {0.0, 1.0, 0.0}, {0.0, 0.0, 1.0}}};
}

Affine3 rotation_scale(const std::array<double, 3>& rotation_deg, double scale, bool dummy_2d) {
  const auto multiply = [](const Affine3& a, const Affine3& b) {
    Affine3 r{};
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) {
        for (int k = 0; k < 3; ++k) r[i][j] += a[i][k] * b[k][j];
      }
    }
    return r;
  };
  Affine3 m = identity_affine();
  const int planes[3][2] = {{1, 2}, {0, 2}, {0, 1}};
  for (int axis = 0; axis < (dummy_2d ? 1 : 3); ++axis) {
    const double angle = rotation_deg[axis] * kPi / 180.0;
    Affine3 r = identity_affine();
    const int u = planes[axis][0], v = planes[axis][1];
    r[u][u] = std::cos(angle);
    r[u][v] = -std::sin(angle);
    r[v][u] = std::sin(angle);
    r[v][v] = std::cos(angle);
    m = multiply(m, r);
  }
  for (int i = dummy_2d ? 1 : 0; i < 3; ++i) {
    for (auto& value : m[i]) value *= scale;
  }
  return m;
}

namespace {

// One output row (z, y) of the spatial transform.
void transform_row(const PreprocessedCase& c, const Int3& patch_lo, const Affine3& m, const double* centre,
                   LabelInterpolation label_interpolation, const PatchRef& out, int64_t z, int64_t y) {
  const Shape3& source_shape = c.label.shape;
  const double offset[2] = {z - centre[0], y - centre[1]};
  double row_start[3];
  for (int d = 0; d < 3; ++d) {
    row_start[d] = patch_lo[d] + centre[d] + m[d][0] * offset[0] + m[d][1] * offset[1] - m[d][2] * centre[2];
  }
  const int64_t voxels = out.voxels();
  const int64_t row_index = (z * out.shape[1] + y) * out.shape[2];
  for (int64_t x = 0; x < out.shape[2]; ++x) {
    const double s[3] = {row_start[0] + m[0][2] * x, row_start[1] + m[1][2] * x, row_start[2] + m[2][2] * x};
    const SourcePoint p = source_point(s);
    float w[3][4];
    for (int d = 0; d < 3; ++d) cubic_weights(p.fraction[d], w[d]);
    const bool inside = p.base[0] >= 1 && p.base[1] >= 1 && p.base[2] >= 1 &&
                        p.base[0] + 2 < source_shape[0] && p.base[1] + 2 < source_shape[1] &&
                        p.base[2] + 2 < source_shape[2];
    for (int64_t ch = 0; ch < out.channels; ++ch) {
      out.image[ch * voxels + row_index + x] = cubic_sample(c.image.channel(ch), source_shape, p, w, inside);
    }
    out.label[row_index + x] = label_interpolation == LabelInterpolation::kLinear ? linear_label(c.label, p)
                                                                                  : nearest_label(c.label, s);
  }
}

}  // namespace

void spatial_transform(const PreprocessedCase& c, const Int3& patch_lo, const Affine3& m,
                       LabelInterpolation label_interpolation, const PatchRef& out) {
  double centre[3];
  for (int d = 0; d < 3; ++d) centre[d] = (out.shape[d] - 1) / 2.0;
  // Output rows in 8×8 tiles of (z, y): the source voxels a tile reads stay in cache while it reuses them.
  constexpr int64_t kTile = 8;
  for (int64_t z0 = 0; z0 < out.shape[0]; z0 += kTile) {
    for (int64_t y0 = 0; y0 < out.shape[1]; y0 += kTile) {
      for (int64_t z = z0; z < std::min(z0 + kTile, out.shape[0]); ++z) {
        for (int64_t y = y0; y < std::min(y0 + kTile, out.shape[1]); ++y) {
          transform_row(c, patch_lo, m, centre, label_interpolation, out, z, y);
        }
      }
    }
  }
}

void add_gaussian_noise(float* channel, int64_t n, double std, Rng& rng) {
  // Box–Muller in float, two 24-bit uniforms from each 64-bit draw: noise needs no more precision.
  const float scale = static_cast<float>(std);
  for (int64_t i = 0; i < n; i += 2) {
    const uint64_t bits = rng.next_u64();
    const float u1 = static_cast<float>((bits >> 40) + 1) * 0x1.0p-24f;  // (0, 1]
    const float u2 = static_cast<float>((bits >> 8) & 0xffffff) * 0x1.0p-24f;
    const float radius = scale * std::sqrt(-2.0f * std::log(u1));
    const float angle = 6.28318530718f * u2;
    channel[i] += radius * std::cos(angle);
    if (i + 1 < n) channel[i + 1] += radius * std::sin(angle);
  }
}

void gaussian_blur(float* channel, const Shape3& shape, double sigma) {
  std::vector<float> scratch(static_cast<std::size_t>(voxel_count(shape)));
  for (int axis = 0; axis < 3; ++axis) {
    const AxisView v = axis_view(shape, axis);
    std::copy(channel, channel + scratch.size(), scratch.begin());
    apply_axis_filter(scratch.data(), v, gaussian_filter(v.length, sigma), v.length, channel);
  }
}

void scale_intensity(float* channel, int64_t n, double factor) {
  const float f = static_cast<float>(factor);
  for (int64_t i = 0; i < n; ++i) channel[i] *= f;
}

void adjust_contrast(float* channel, int64_t n, double factor) {
  const Moments m = moments(channel, n);
  const float mean = static_cast<float>(m.mean);
  const float f = static_cast<float>(factor);
  for (int64_t i = 0; i < n; ++i) channel[i] = std::clamp((channel[i] - mean) * f + mean, m.min, m.max);
}

void simulate_low_resolution(float* channel, const Shape3& shape, double zoom, bool keep_axis0) {
  Shape3 low = shape;
  for (int d = keep_axis0 ? 1 : 0; d < 3; ++d) {
    low[d] = std::max<int64_t>(1, static_cast<int64_t>(std::llround(shape[d] * zoom)));
  }
  if (low == shape) return;
  // Down: nearest.
  std::vector<float> small(static_cast<std::size_t>(voxel_count(low)));
  const auto iz = nearest_indices(shape[0], low[0]);
  const auto iy = nearest_indices(shape[1], low[1]);
  const auto ix = nearest_indices(shape[2], low[2]);
  float* dst = small.data();
  for (int64_t z = 0; z < low[0]; ++z) {
    for (int64_t y = 0; y < low[1]; ++y) {
      const float* src = channel + (iz[z] * shape[1] + iy[y]) * shape[2];
      for (int64_t x = 0; x < low[2]; ++x) *dst++ = src[ix[x]];
    }
  }
  // Up: cubic, one axis at a time (W, then H, then D), the last pass writing into the channel.
  std::vector<float> a, b;
  Shape3 current = low;
  const float* in = small.data();
  for (int axis = 2; axis >= 0; --axis) {
    const AxisView v = axis_view(current, axis);
    current[axis] = shape[axis];
    std::vector<float>& target = axis == 2 ? a : b;
    float* out = channel;
    if (axis > 0) {
      target.assign(static_cast<std::size_t>(voxel_count(current)), 0.0f);
      out = target.data();
    }
    apply_axis_filter(in, v, cubic_resize_filter(v.length, shape[axis]), shape[axis], out);
    in = out;
  }
}

void apply_gamma(float* channel, int64_t n, double gamma, bool invert, bool retain_stats) {
  if (invert) scale_intensity(channel, n, -1.0);
  const Moments before = moments(channel, n);
  const float range = before.max - before.min;
  const float g = static_cast<float>(gamma);
  for (int64_t i = 0; i < n; ++i) {
    const float unit = (channel[i] - before.min) / (range + 1e-7f);
    channel[i] = std::pow(unit, g) * range + before.min;
  }
  if (retain_stats) {
    const Moments after = moments(channel, n);
    const double gain = before.std / (after.std + 1e-8);
    for (int64_t i = 0; i < n; ++i) {
      channel[i] = static_cast<float>((channel[i] - after.mean) * gain + before.mean);
    }
  }
  if (invert) scale_intensity(channel, n, -1.0);
}

void mirror(const PatchRef& patch, const std::array<bool, 3>& axes) {
  for (int axis = 0; axis < 3; ++axis) {
    if (!axes[axis]) continue;
    for (int64_t c = 0; c < patch.channels; ++c) flip_axis(patch.channel(c), patch.shape, axis);
    flip_axis(patch.label, patch.shape, axis);
  }
}

void replace_label(int16_t* label, int64_t n, int16_t from, int16_t to) {
  std::replace(label, label + n, from, to);
}

void downsample_nearest(const int16_t* label, const Shape3& from, int16_t* out, const Shape3& to) {
  const auto iz = nearest_indices(from[0], to[0]);
  const auto iy = nearest_indices(from[1], to[1]);
  const auto ix = nearest_indices(from[2], to[2]);
  for (int64_t z = 0; z < to[0]; ++z) {
    for (int64_t y = 0; y < to[1]; ++y) {
      const int16_t* src = label + (iz[z] * from[1] + iy[y]) * from[2];
      for (int64_t x = 0; x < to[2]; ++x) *out++ = src[ix[x]];
    }
  }
}

void augment_patch(const PreprocessedCase& c, const Int3& patch_lo, const AugmentOptions& options,
                   const AugmentDraw& draw, const DrawKey& key, const PatchRef& out) {
  const bool dummy_2d = is_dummy_2d(out.shape);
  if (draw.elastic) {
    throw InputError(
        "augment.elastic_probability: the CPU augmenter has no elastic deformation "
        "(device augmentation only)");
  }
  if (draw.rotated || draw.scaled) {
    spatial_transform(c, patch_lo, rotation_scale(draw.rotation_deg, draw.scale, dummy_2d),
                      options.label_interpolation, out);
  } else {
    crop_case(c, patch_lo, out);
  }
  const int64_t n = out.voxels();
  if (draw.noise) {
    Rng values(draw_seed(key, DrawStream::kNoiseValues));
    for (int64_t ch = 0; ch < out.channels; ++ch)
      add_gaussian_noise(out.channel(ch), n, draw.noise_std, values);
  }
  for (std::size_t ch = 0; ch < draw.blur_sigma.size(); ++ch) {
    if (draw.blur_sigma[ch] > 0.0) gaussian_blur(out.channel(ch), out.shape, draw.blur_sigma[ch]);
  }
  for (std::size_t ch = 0; ch < draw.brightness.size(); ++ch)
    scale_intensity(out.channel(ch), n, draw.brightness[ch]);
  for (std::size_t ch = 0; ch < draw.contrast.size(); ++ch)
    adjust_contrast(out.channel(ch), n, draw.contrast[ch]);
  for (std::size_t ch = 0; ch < draw.low_resolution_zoom.size(); ++ch) {
    if (draw.low_resolution_zoom[ch] > 0.0) {
      simulate_low_resolution(out.channel(ch), out.shape, draw.low_resolution_zoom[ch], dummy_2d);
    }
  }
  for (std::size_t ch = 0; ch < draw.inverted_gamma.size(); ++ch) {
    apply_gamma(out.channel(ch), n, draw.inverted_gamma[ch], true, options.gamma_retain_stats);
  }
  for (std::size_t ch = 0; ch < draw.gamma.size(); ++ch) {
    apply_gamma(out.channel(ch), n, draw.gamma[ch], false, options.gamma_retain_stats);
  }
  mirror(out, draw.mirror);
  if (options.ignore_to_background) replace_label(out.label, n, -1, 0);
}

}  // namespace e2e
