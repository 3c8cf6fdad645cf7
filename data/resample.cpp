#include "data/resample.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>

namespace e2e {

namespace {

// scipy.ndimage pads by 12 voxels (mode "edge") before the spline prefilter when the boundary mode is
// "nearest"; doing the same reproduces its values at the volume's border.
constexpr int64_t kSplinePad = 12;
const double kCubicPole = std::sqrt(3.0) - 2.0;

// Where each output position along one axis reads its input: `taps` indices and weights per position.
struct AxisSampler {
  int taps = 1;
  int64_t pad = 0;  // edge padding on each side of the input line (cubic only); indices include it
  bool prefilter = false;
  std::vector<int64_t> index;  // out_len × taps
  std::vector<double> weight;  // out_len × taps
  int64_t out_len() const { return static_cast<int64_t>(index.size()) / taps; }
};

double source_coordinate(int64_t out, int64_t in_len, int64_t out_len) {
  const double zoom = static_cast<double>(in_len) / static_cast<double>(out_len);
  return (static_cast<double>(out) + 0.5) * zoom - 0.5;
}

// numpy.round: halves go to the even neighbour.
int64_t round_half_even(double v) {
  const double r = std::round(v);
  if (std::fabs(v - std::trunc(v)) == 0.5) return static_cast<int64_t>(2.0 * std::round(v / 2.0));
  return static_cast<int64_t>(r);
}

int64_t clamp_index(int64_t i, int64_t len) {
  return std::min(std::max<int64_t>(i, 0), len - 1);
}

void cubic_bspline_weights(double t, double* w) {
  const double u = 1.0 - t;
  w[0] = u * u * u / 6.0;
  w[1] = (4.0 - 6.0 * t * t + 3.0 * t * t * t) / 6.0;
  w[2] = (1.0 + 3.0 * t + 3.0 * t * t - 3.0 * t * t * t) / 6.0;
  w[3] = t * t * t / 6.0;
}

AxisSampler make_sampler(int64_t in_len, int64_t out_len, Interpolation kind) {
  AxisSampler s;
  s.taps = kind == Interpolation::Nearest ? 1 : kind == Interpolation::Linear ? 2 : 4;
  s.index.resize(out_len * s.taps);
  s.weight.resize(out_len * s.taps);
  for (int64_t o = 0; o < out_len; ++o) {
    int64_t* idx = &s.index[o * s.taps];
    double* w = &s.weight[o * s.taps];
    const double x = source_coordinate(o, in_len, out_len);
    if (kind == Interpolation::Nearest) {
      idx[0] = clamp_index(static_cast<int64_t>(std::floor(x + 0.5)), in_len);
      w[0] = 1.0;
    } else if (kind == Interpolation::Linear) {
      const double xc = std::min(std::max(x, 0.0), static_cast<double>(in_len - 1));
      const int64_t i0 = static_cast<int64_t>(std::floor(xc));
      idx[0] = i0;
      idx[1] = clamp_index(i0 + 1, in_len);
      w[1] = xc - static_cast<double>(i0);
      w[0] = 1.0 - w[1];
    } else {
      s.pad = kSplinePad;
      s.prefilter = true;
      const double xp = x + static_cast<double>(kSplinePad);
      const int64_t i0 = static_cast<int64_t>(std::floor(xp));
      cubic_bspline_weights(xp - static_cast<double>(i0), w);
      for (int t = 0; t < 4; ++t) idx[t] = clamp_index(i0 - 1 + t, in_len + 2 * kSplinePad);
    }
  }
  return s;
}

// Keeps output positions [begin, end) and re-bases the input indices to start at in_begin.
AxisSampler restrict_sampler(const AxisSampler& s, int64_t begin, int64_t end, int64_t in_begin) {
  AxisSampler r;
  r.taps = s.taps;
  r.index.assign(s.index.begin() + begin * s.taps, s.index.begin() + end * s.taps);
  r.weight.assign(s.weight.begin() + begin * s.taps, s.weight.begin() + end * s.taps);
  for (int64_t& i : r.index) i -= in_begin;
  return r;
}

// Cubic B-spline prefilter (one pole, mirror-symmetric boundary) of `rows` × `cols` values, filtering down
// the rows independently for each column.
void spline_prefilter(double* c, int64_t rows, int64_t cols) {
  const double z = kCubicPole;
  const double gain = (1.0 - z) * (1.0 - 1.0 / z);
  for (int64_t i = 0; i < rows * cols; ++i) c[i] *= gain;
  if (rows == 1) return;
  const double z_n = std::pow(z, static_cast<double>(rows));
  for (int64_t j = 0; j < cols; ++j) {
    double sum = c[j] + z_n * c[(rows - 1) * cols + j];
    double z_i = z;
    for (int64_t i = 1; i < rows; ++i) {
      sum += z_i * (c[i * cols + j] + z_n * c[(rows - 1 - i) * cols + j]);
      z_i *= z;
    }
    c[j] += sum * z / (1.0 - z_n * z_n);
  }
  for (int64_t i = 1; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) c[i * cols + j] += z * c[(i - 1) * cols + j];
  for (int64_t j = 0; j < cols; ++j) c[(rows - 1) * cols + j] *= z / (z - 1.0);
  for (int64_t i = rows - 2; i >= 0; --i)
    for (int64_t j = 0; j < cols; ++j) c[i * cols + j] = z * (c[(i + 1) * cols + j] - c[i * cols + j]);
}

struct AxisLayout {
  int64_t outer = 1;  // product of the dimensions before the axis
  int64_t length = 1;
  int64_t inner = 1;  // product of the dimensions after the axis
};

AxisLayout layout(const Shape3& shape, int axis) {
  AxisLayout l;
  for (int a = 0; a < axis; ++a) l.outer *= shape[a];
  l.length = shape[axis];
  for (int a = axis + 1; a < 3; ++a) l.inner *= shape[a];
  return l;
}

// Applies a sampler along one axis of a C-ordered buffer, a tile of up to 256 neighbouring lines at a time
// so that the filter runs over contiguous memory whatever the axis.
std::vector<double> resample_axis(const std::vector<double>& in, Shape3& shape, int axis,
                                  const AxisSampler& s) {
  const AxisLayout l = layout(shape, axis);
  const int64_t out_len = s.out_len();
  const int64_t rows = l.length + 2 * s.pad;
  const int64_t block = std::min<int64_t>(l.inner, 256);
  std::vector<double> out(static_cast<std::size_t>(l.outer * out_len * l.inner));
  std::vector<double> tile(static_cast<std::size_t>(rows * block));
  for (int64_t o = 0; o < l.outer; ++o) {
    for (int64_t j0 = 0; j0 < l.inner; j0 += block) {
      const int64_t cols = std::min(block, l.inner - j0);
      for (int64_t r = 0; r < rows; ++r) {
        const double* src = &in[(o * l.length + clamp_index(r - s.pad, l.length)) * l.inner + j0];
        std::copy(src, src + cols, &tile[r * cols]);
      }
      if (s.prefilter) spline_prefilter(tile.data(), rows, cols);
      for (int64_t q = 0; q < out_len; ++q) {
        double* dst = &out[(o * out_len + q) * l.inner + j0];
        std::fill(dst, dst + cols, 0.0);
        for (int t = 0; t < s.taps; ++t) {
          const double w = s.weight[q * s.taps + t];
          const double* src = &tile[s.index[q * s.taps + t] * cols];
          for (int64_t j = 0; j < cols; ++j) dst[j] += w * src[j];
        }
      }
    }
  }
  shape[axis] = out_len;
  return out;
}

// Nearest along one axis, for any voxel type (exact for labels).
template <typename T>
std::vector<T> nearest_axis(const std::vector<T>& in, Shape3& shape, int axis, int64_t out_len) {
  const AxisLayout l = layout(shape, axis);
  const AxisSampler s = make_sampler(l.length, out_len, Interpolation::Nearest);
  std::vector<T> out(static_cast<std::size_t>(l.outer * out_len * l.inner));
  for (int64_t o = 0; o < l.outer; ++o)
    for (int64_t q = 0; q < out_len; ++q) {
      const T* src = &in[(o * l.length + s.index[q]) * l.inner];
      std::copy(src, src + l.inner, &out[(o * out_len + q) * l.inner]);
    }
  shape[axis] = out_len;
  return out;
}

// The axes resized with the interpolation kernel, strongest reduction first (cheapest order).
std::vector<int> kernel_axes(const Shape3& shape, const Shape3& new_shape, int coarse_axis) {
  std::vector<int> axes;
  for (int a = 0; a < 3; ++a)
    if (a != coarse_axis && shape[a] != new_shape[a]) axes.push_back(a);
  std::sort(axes.begin(), axes.end(), [&](int a, int b) {
    return static_cast<double>(new_shape[a]) / shape[a] < static_cast<double>(new_shape[b]) / shape[b];
  });
  return axes;
}

std::vector<double> resize_kernel_axes(std::vector<double> data, Shape3& shape, const Shape3& new_shape,
                                       Interpolation kind, int coarse_axis) {
  for (int axis : kernel_axes(shape, new_shape, coarse_axis))
    data = resample_axis(data, shape, axis, make_sampler(shape[axis], new_shape[axis], kind));
  return data;
}

// Clamps every slice along `axis` (all voxels when axis < 0) to the range the input slice had.
void clip_to_input_range(std::vector<double>& data, const Shape3& shape, const float* input,
                         const Shape3& input_shape, int axis) {
  const AxisLayout in = axis < 0 ? AxisLayout{1, 1, voxel_count(input_shape)} : layout(input_shape, axis);
  const AxisLayout out = axis < 0 ? AxisLayout{1, 1, voxel_count(shape)} : layout(shape, axis);
  for (int64_t k = 0; k < in.length; ++k) {
    double lo = std::numeric_limits<double>::infinity();
    double hi = -lo;
    for (int64_t o = 0; o < in.outer; ++o)
      for (int64_t j = 0; j < in.inner; ++j) {
        const double v = input[(o * in.length + k) * in.inner + j];
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    for (int64_t o = 0; o < out.outer; ++o)
      for (int64_t j = 0; j < out.inner; ++j) {
        double& v = data[(o * out.length + k) * out.inner + j];
        v = std::min(std::max(v, lo), hi);
      }
  }
}

void check_shapes(const Shape3& shape, const Shape3& new_shape, int coarse_axis) {
  for (int a = 0; a < 3; ++a)
    if (shape[a] < 1 || new_shape[a] < 1)
      throw std::invalid_argument("resize: shapes must be positive on every axis");
  if (coarse_axis < -1 || coarse_axis > 2)
    throw std::invalid_argument("resize: coarse_axis must be -1, 0, 1 or 2");
}

Spacing3 resized_spacing(const Spacing3& spacing, const Shape3& shape, const Shape3& new_shape) {
  Spacing3 out;
  for (int a = 0; a < 3; ++a) out[a] = spacing[a] * static_cast<double>(shape[a]) / new_shape[a];
  return out;
}

// The voxel range [begin, end) of each axis holding `value`; empty (begin == end) when absent.
struct Box {
  Int3 begin{0, 0, 0};
  Int3 end{0, 0, 0};
};

std::vector<Box> label_boxes(const Volume<int16_t>& labels, const std::vector<int16_t>& values) {
  std::vector<Box> boxes(values.size());
  std::vector<bool> seen(values.size(), false);
  for (int64_t z = 0; z < labels.shape[0]; ++z)
    for (int64_t y = 0; y < labels.shape[1]; ++y)
      for (int64_t x = 0; x < labels.shape[2]; ++x) {
        const auto it = std::lower_bound(values.begin(), values.end(), labels.at(z, y, x));
        const std::size_t k = static_cast<std::size_t>(it - values.begin());
        const Int3 p{z, y, x};
        Box& b = boxes[k];
        for (int a = 0; a < 3; ++a) {
          b.begin[a] = seen[k] ? std::min(b.begin[a], p[a]) : p[a];
          b.end[a] = seen[k] ? std::max(b.end[a], p[a] + 1) : p[a] + 1;
        }
        seen[k] = true;
      }
  return boxes;
}

// Resizes the mask of one label, restricted to the output region its linear taps can reach, and writes
// the label where the mask reaches 0.5. Axes other than the kernel axes keep their input size.
void paint_label(const Volume<int16_t>& labels, int16_t value, const Box& box, const Shape3& out_shape,
                 int coarse_axis, std::vector<int16_t>& out) {
  Box in_region;
  Int3 out_begin{0, 0, 0};
  std::array<AxisSampler, 3> samplers;
  const std::vector<int> axes = kernel_axes(labels.shape, out_shape, coarse_axis);
  for (int a = 0; a < 3; ++a) {
    if (std::find(axes.begin(), axes.end(), a) == axes.end()) {
      in_region.begin[a] = out_begin[a] = box.begin[a];
      in_region.end[a] = box.end[a];
      continue;
    }
    const AxisSampler full = make_sampler(labels.shape[a], out_shape[a], Interpolation::Linear);
    int64_t first = full.out_len(), last = -1;
    for (int64_t q = 0; q < full.out_len(); ++q)
      if (full.index[2 * q + 1] >= box.begin[a] && full.index[2 * q] < box.end[a]) {
        first = std::min(first, q);
        last = q;
      }
    if (last < 0) return;
    in_region.begin[a] = full.index[2 * first];
    in_region.end[a] = full.index[2 * last + 1] + 1;
    out_begin[a] = first;
    samplers[a] = restrict_sampler(full, first, last + 1, in_region.begin[a]);
  }
  Shape3 shape{in_region.end[0] - in_region.begin[0], in_region.end[1] - in_region.begin[1],
               in_region.end[2] - in_region.begin[2]};
  std::vector<double> mask(static_cast<std::size_t>(voxel_count(shape)));
  for (int64_t z = 0; z < shape[0]; ++z)
    for (int64_t y = 0; y < shape[1]; ++y)
      for (int64_t x = 0; x < shape[2]; ++x)
        mask[(z * shape[1] + y) * shape[2] + x] =
            labels.at(z + in_region.begin[0], y + in_region.begin[1], x + in_region.begin[2]) == value ? 1.0
                                                                                                       : 0.0;
  for (int a : axes) mask = resample_axis(mask, shape, a, samplers[a]);
  for (int64_t z = 0; z < shape[0]; ++z)
    for (int64_t y = 0; y < shape[1]; ++y)
      for (int64_t x = 0; x < shape[2]; ++x)
        if (mask[(z * shape[1] + y) * shape[2] + x] >= 0.5)
          out[((z + out_begin[0]) * out_shape[1] + y + out_begin[1]) * out_shape[2] + x + out_begin[2]] =
              value;
}

}  // namespace

Shape3 resampled_shape(const Shape3& shape, const Spacing3& spacing, const Spacing3& target) {
  Shape3 out;
  for (int a = 0; a < 3; ++a)
    out[a] = std::max<int64_t>(1, round_half_even(spacing[a] / target[a] * static_cast<double>(shape[a])));
  return out;
}

int separate_axis(const Spacing3& spacing, const Spacing3& target) {
  for (const Spacing3* s : {&spacing, &target}) {
    const double hi = *std::max_element(s->begin(), s->end());
    const double lo = *std::min_element(s->begin(), s->end());
    if (!(hi / lo > kAnisotropyThreshold)) continue;
    const int count = static_cast<int>(std::count(s->begin(), s->end(), hi));
    return count == 1 ? static_cast<int>(std::max_element(s->begin(), s->end()) - s->begin()) : -1;
  }
  return -1;
}

std::vector<float> resize_channel(const float* voxels, const Shape3& shape, const Shape3& new_shape,
                                  Interpolation kind, int coarse_axis) {
  check_shapes(shape, new_shape, coarse_axis);
  Shape3 current = shape;
  std::vector<double> data(voxels, voxels + voxel_count(shape));
  data = resize_kernel_axes(std::move(data), current, new_shape, kind, coarse_axis);
  clip_to_input_range(data, current, voxels, shape, coarse_axis);
  if (coarse_axis >= 0 && current[coarse_axis] != new_shape[coarse_axis])
    data = nearest_axis(data, current, coarse_axis, new_shape[coarse_axis]);
  return std::vector<float>(data.begin(), data.end());
}

Volume<float> resize(const Volume<float>& volume, const Shape3& new_shape, Interpolation kind,
                     int coarse_axis) {
  Volume<float> out;
  out.shape = new_shape;
  out.spacing = resized_spacing(volume.spacing, volume.shape, new_shape);
  out.voxels = resize_channel(volume.voxels.data(), volume.shape, new_shape, kind, coarse_axis);
  return out;
}

Volume<int16_t> resize_labels(const Volume<int16_t>& labels, const Shape3& new_shape, int coarse_axis) {
  check_shapes(labels.shape, new_shape, coarse_axis);
  Shape3 painted_shape = new_shape;
  if (coarse_axis >= 0) painted_shape[coarse_axis] = labels.shape[coarse_axis];
  const std::set<int16_t> present(labels.voxels.begin(), labels.voxels.end());
  const std::vector<int16_t> values(present.begin(), present.end());
  const std::vector<Box> boxes = label_boxes(labels, values);
  std::vector<int16_t> painted(static_cast<std::size_t>(voxel_count(painted_shape)), 0);
  for (std::size_t k = 0; k < values.size(); ++k)
    paint_label(labels, values[k], boxes[k], painted_shape, coarse_axis, painted);
  if (coarse_axis >= 0 && painted_shape[coarse_axis] != new_shape[coarse_axis])
    painted = nearest_axis(painted, painted_shape, coarse_axis, new_shape[coarse_axis]);
  Volume<int16_t> out;
  out.shape = new_shape;
  out.spacing = resized_spacing(labels.spacing, labels.shape, new_shape);
  out.voxels = std::move(painted);
  return out;
}

MultiVolume<float> resample_image(const MultiVolume<float>& image, const Spacing3& target) {
  const Shape3 new_shape = resampled_shape(image.shape, image.spacing, target);
  const int coarse = separate_axis(image.spacing, target);
  MultiVolume<float> out(image.channels, new_shape, target);
  for (int64_t c = 0; c < image.channels; ++c) {
    const std::vector<float> resized =
        resize_channel(image.channel(c), image.shape, new_shape, Interpolation::Cubic, coarse);
    std::copy(resized.begin(), resized.end(), out.channel(c));
  }
  return out;
}

Volume<int16_t> resample_labels(const Volume<int16_t>& labels, const Spacing3& target) {
  const Shape3 new_shape = resampled_shape(labels.shape, labels.spacing, target);
  Volume<int16_t> out = labels;
  if (new_shape != labels.shape)
    out = resize_labels(labels, new_shape, separate_axis(labels.spacing, target));
  out.spacing = target;
  return out;
}

}  // namespace e2e
