// Metrics on organ-sized masks: two overlapping ellipsoids (radii ~60 voxels) in a 256³ volume.
#include <benchmark/benchmark.h>

#include "metrics/dice.hpp"
#include "metrics/distance_transform.hpp"
#include "metrics/evaluate.hpp"
#include "metrics/postprocess.hpp"
#include "metrics/surface.hpp"

namespace e2e {
namespace {

Mask ellipsoid(const Shape3& shape, const Spacing3& spacing, const std::array<double, 3>& centre,
               const std::array<double, 3>& radii) {
  Mask mask(shape, spacing);
  for (int64_t z = 0; z < shape[0]; ++z) {
    for (int64_t y = 0; y < shape[1]; ++y) {
      for (int64_t x = 0; x < shape[2]; ++x) {
        const double dz = (z - centre[0]) / radii[0], dy = (y - centre[1]) / radii[1],
                     dx = (x - centre[2]) / radii[2];
        mask.at(z, y, x) = dz * dz + dy * dy + dx * dx <= 1.0;
      }
    }
  }
  return mask;
}

struct OrganPair {
  Mask gt;
  Mask pred;
};

// spacing_case 0: isotropic 1 mm; 1: CT-like (2.5, 0.8, 0.8) mm.
const OrganPair& organ_pair(int spacing_case) {
  static const OrganPair pairs[2] = {
      {ellipsoid({256, 256, 256}, {1, 1, 1}, {128, 128, 128}, {60, 55, 65}),
       ellipsoid({256, 256, 256}, {1, 1, 1}, {131, 126, 129}, {58, 57, 62})},
      {ellipsoid({256, 256, 256}, {2.5, 0.8, 0.8}, {128, 128, 128}, {60, 55, 65}),
       ellipsoid({256, 256, 256}, {2.5, 0.8, 0.8}, {131, 126, 129}, {58, 57, 62})}};
  return pairs[spacing_case];
}

void BM_NsdAndHd95(benchmark::State& state) {
  const OrganPair& pair = organ_pair(static_cast<int>(state.range(0)));
  double nsd = 0.0, hd95 = 0.0;
  for (auto _ : state) {
    const SurfaceDistances d = compute_surface_distances(pair.gt, pair.pred);
    nsd = normalized_surface_dice(d, 1.0);
    hd95 = robust_hausdorff(d, 95.0);
    benchmark::DoNotOptimize(nsd);
  }
  state.counters["nsd_1mm"] = nsd;
  state.counters["hd95_mm"] = hd95;
}
BENCHMARK(BM_NsdAndHd95)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_Dice(benchmark::State& state) {
  const OrganPair& pair = organ_pair(0);
  for (auto _ : state) benchmark::DoNotOptimize(dice(pair.gt, pair.pred).value);
}
BENCHMARK(BM_Dice)->Unit(benchmark::kMillisecond);

void BM_BoundaryVoxelVariants(benchmark::State& state) {
  const OrganPair& pair = organ_pair(0);
  for (auto _ : state) {
    const BoundaryDistances d = compute_boundary_distances(pair.gt, pair.pred);
    benchmark::DoNotOptimize(hausdorff_voxels(d, 95.0, HausdorffVariant::pooled));
    benchmark::DoNotOptimize(normalized_surface_dice_voxels(d, 1.0));
  }
}
BENCHMARK(BM_BoundaryVoxelVariants)->Unit(benchmark::kMillisecond);

// The distance transform alone on a 131³ corner grid (the size of the crop above) with a spherical shell.
void BM_DistanceTransform(benchmark::State& state) {
  const Shape3 shape{131, 131, 131};
  std::vector<uint8_t> seeds(static_cast<std::size_t>(voxel_count(shape)), 0);
  for (int64_t z = 0; z < shape[0]; ++z)
    for (int64_t y = 0; y < shape[1]; ++y)
      for (int64_t x = 0; x < shape[2]; ++x) {
        const double r2 = (z - 65.0) * (z - 65.0) + (y - 65.0) * (y - 65.0) + (x - 65.0) * (x - 65.0);
        seeds[(z * shape[1] + y) * shape[2] + x] = r2 >= 59.0 * 59.0 && r2 < 60.0 * 60.0;
      }
  for (auto _ : state) benchmark::DoNotOptimize(squared_distance_to_seeds(seeds, shape, {1, 1, 1}).data());
}
BENCHMARK(BM_DistanceTransform)->Unit(benchmark::kMillisecond);

// A 4-class label map of the same size through the multi-class evaluation (Dice, NSD, HD95 per class);
// argument 1 adds the published-number variants (NSD at (3, 2, 1) mm, pooled HD95).
void BM_EvaluateCase(benchmark::State& state) {
  const OrganPair& pair = organ_pair(0);
  LabelMap gt(pair.gt.shape, pair.gt.spacing), pred(pair.gt.shape, pair.gt.spacing);
  for (std::size_t i = 0; i < gt.voxels.size(); ++i) {
    const int16_t octant = static_cast<int16_t>(1 + (i % 256 >= 128) + 2 * ((i / 65536) >= 128));
    gt.voxels[i] = pair.gt.voxels[i] ? octant : 0;
    pred.voxels[i] = pair.pred.voxels[i] ? octant : 0;
  }
  EvaluationOptions options;
  options.classes = {1, 2, 3, 4};
  options.reference_variants = state.range(0) != 0;
  for (auto _ : state) benchmark::DoNotOptimize(evaluate_case(gt, pred, options).structures.size());
}
BENCHMARK(BM_EvaluateCase)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

// A 300³ prediction: an organ-sized ellipsoid split into 4 classes by octant, plus 2000 small islands of
// random classes, against the clean ellipsoid as the reference.
struct PostprocessingVolumes {
  LabelMap reference;
  LabelMap prediction;
};

const PostprocessingVolumes& postprocessing_volumes() {
  static const PostprocessingVolumes volumes = [] {
    const Shape3 shape{300, 300, 300};
    const Mask organ = ellipsoid(shape, {1, 1, 1}, {150, 150, 150}, {120, 110, 130});
    PostprocessingVolumes v{LabelMap(shape), LabelMap(shape)};
    for (int64_t z = 0; z < shape[0]; ++z)
      for (int64_t y = 0; y < shape[1]; ++y)
        for (int64_t x = 0; x < shape[2]; ++x)
          if (organ.at(z, y, x))
            v.reference.at(z, y, x) = static_cast<int16_t>(1 + (y >= 150) + 2 * (x >= 150));
    v.prediction = v.reference;
    uint64_t state = 12345;
    const auto next = [&state](int64_t bound) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      return static_cast<int64_t>((state >> 33) % static_cast<uint64_t>(bound));
    };
    for (int island = 0; island < 2000; ++island) {
      const int64_t z = next(298), y = next(298), x = next(298);
      const int16_t label = static_cast<int16_t>(1 + next(4));
      for (int64_t dz = 0; dz < 2; ++dz) v.prediction.at(z + dz, y, x) = label;
    }
    return v;
  }();
  return volumes;
}

void BM_KeepLargestComponent(benchmark::State& state) {
  const PostprocessingVolumes& v = postprocessing_volumes();
  for (auto _ : state) {
    state.PauseTiming();
    LabelMap prediction = v.prediction;
    state.ResumeTiming();
    benchmark::DoNotOptimize(keep_largest_component(prediction, {1, 2, 3, 4}));
  }
}
BENCHMARK(BM_KeepLargestComponent)->Unit(benchmark::kMillisecond);

// One CV case through the decision's measurements: 3 copies, 9 keep-largest passes, 4 Dice passes.
void BM_MeasurePostprocessingCase(benchmark::State& state) {
  const PostprocessingVolumes& v = postprocessing_volumes();
  for (auto _ : state) {
    benchmark::DoNotOptimize(measure_postprocessing_case(v.reference, v.prediction, {1, 2, 3, 4}).raw.data());
  }
}
BENCHMARK(BM_MeasurePostprocessingCase)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace e2e

BENCHMARK_MAIN();
