#include "metrics/distance_transform.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace e2e {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// Scratch space for one line, reused across lines.
struct LineWorkspace {
  std::vector<double> input;     // the line's values
  std::vector<int64_t> apex;     // grid positions of the parabolas in the lower envelope
  std::vector<double> boundary;  // where envelope parabola k starts (mm)
  explicit LineWorkspace(int64_t n) : input(n), apex(n), boundary(n + 1) {}
};

// d[p] = min_q (step·(p − q))² + f[q] over one line of n points; f = work.input, result into out[p·stride].
void transform_line(LineWorkspace& work, int64_t n, double step, double* out, int64_t stride) {
  const double* f = work.input.data();
  int64_t k = -1;
  for (int64_t q = 0; q < n; ++q) {
    if (f[q] == kInfinity) continue;
    const double xq = step * static_cast<double>(q);
    double start = -kInfinity;
    while (k >= 0) {
      const double xr = step * static_cast<double>(work.apex[k]);
      start = ((f[q] + xq * xq) - (f[work.apex[k]] + xr * xr)) / (2.0 * (xq - xr));
      if (start > work.boundary[k]) break;
      --k;
    }
    if (k < 0) start = -kInfinity;
    ++k;
    work.apex[k] = q;
    work.boundary[k] = start;
  }
  if (k < 0) {
    for (int64_t p = 0; p < n; ++p) out[p * stride] = kInfinity;
    return;
  }
  work.boundary[k + 1] = kInfinity;
  int64_t j = 0;
  for (int64_t p = 0; p < n; ++p) {
    const double xp = step * static_cast<double>(p);
    while (work.boundary[j + 1] < xp) ++j;
    const double offset = xp - step * static_cast<double>(work.apex[j]);
    out[p * stride] = offset * offset + f[work.apex[j]];
  }
}

// Runs transform_line over every line along `axis`.
void transform_axis(std::vector<double>& values, const Shape3& shape, double step, int axis) {
  const int64_t n = shape[axis];
  if (n == 0) return;
  const int64_t strides[3] = {shape[1] * shape[2], shape[2], 1};
  const int64_t stride = strides[axis];
  const int64_t lines = voxel_count(shape) / n;
  LineWorkspace work(n);
  for (int64_t line = 0; line < lines; ++line) {
    // Start of the line: decompose `line` over the two other axes.
    int64_t start = 0;
    int64_t rest = line;
    for (int other = 2; other >= 0; --other) {
      if (other == axis) continue;
      start += (rest % shape[other]) * strides[other];
      rest /= shape[other];
    }
    double* data = values.data() + start;
    bool any_finite = false;
    for (int64_t p = 0; p < n; ++p) {
      work.input[p] = data[p * stride];
      any_finite = any_finite || work.input[p] != kInfinity;
    }
    if (any_finite) transform_line(work, n, step, data, stride);
  }
}

}  // namespace

void squared_distance_transform(std::vector<double>& values, const Shape3& shape, const Spacing3& spacing) {
  // The contiguous axis first; each pass leaves exact squared distances restricted to the axes done so far.
  for (int axis = 2; axis >= 0; --axis) transform_axis(values, shape, spacing[axis], axis);
}

std::vector<double> squared_distance_to_seeds(const std::vector<uint8_t>& seeds, const Shape3& shape,
                                              const Spacing3& spacing) {
  std::vector<double> values(seeds.size());
  std::transform(seeds.begin(), seeds.end(), values.begin(), [](uint8_t s) { return s ? 0.0 : kInfinity; });
  squared_distance_transform(values, shape, spacing);
  return values;
}

}  // namespace e2e
