// Data pipeline benchmarks. Run: build/tests/bench/data_bench [--benchmark_filter=Loader]
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "data/augment.hpp"
#include "data/case_store.hpp"
#include "data/loader.hpp"
#include "data/nifti.hpp"
#include "data/preprocess.hpp"
#include "data/resample.hpp"
#include "data/synthetic.hpp"
#include "tests/data/sampling_fixtures.hpp"

namespace {

// ---- Loader (patch sampling + moreDA augmentation + loader), on a 160×192×192 one-channel case ----

const e2e::Shape3 kBenchPatch{128, 128, 128};

std::shared_ptr<const e2e::PreprocessedCase> bench_case() {
  static const std::shared_ptr<const e2e::PreprocessedCase> c =
      e2e::testing::make_case("bench", {160, 192, 192}, 1, 7);
  return c;
}

// Fully augmented 1×128³ patches per second: the default moreDA pipeline (with its probabilities), batch 2,
// deep-supervision targets at 1/2 … 1/16.
void BM_LoaderThroughput(benchmark::State& state) {
  auto source = std::make_shared<e2e::MemoryCaseSource>(
      std::vector<std::shared_ptr<const e2e::PreprocessedCase>>{bench_case()});
  e2e::LoaderOptions options;
  options.patch_size = kBenchPatch;
  options.global_batch_size = 2;
  options.threads = static_cast<int>(state.range(0));
  for (int64_t f : {2, 4, 8, 16}) options.target_shapes.push_back({128 / f, 128 / f, 128 / f});
  e2e::BatchLoader loader(source, options);
  int64_t patches = 0;
  for (auto _ : state) {
    const e2e::Batch batch = loader.next();
    benchmark::DoNotOptimize(batch.image.data());
    patches += batch.size;
  }
  state.counters["patches_per_s"] =
      benchmark::Counter(static_cast<double>(patches), benchmark::Counter::kIsRate);
  state.counters["wait_fraction"] = loader.stats().wait_fraction();
}
BENCHMARK(BM_LoaderThroughput)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(8.0);

// The same pipeline with every transform forced on (p = 1 everywhere): the worst case per patch.
void BM_AugmentEverything(benchmark::State& state) {
  e2e::AugmentOptions options;
  options.rotation_probability = options.scale_probability = 1.0;
  options.noise_probability = options.blur_probability = options.blur_channel_probability = 1.0;
  options.brightness_probability = options.contrast_probability = 1.0;
  options.low_resolution_probability = options.low_resolution_channel_probability = 1.0;
  options.inverted_gamma_probability = options.gamma_probability = 1.0;
  std::vector<float> image(e2e::voxel_count(kBenchPatch));
  std::vector<int16_t> label(image.size());
  const e2e::PatchRef out{image.data(), label.data(), 1, kBenchPatch};
  int64_t sample = 0;
  for (auto _ : state) {
    const e2e::DrawKey key{1, 0, 0, sample++};
    e2e::augment_patch(*bench_case(), {16, 32, 32}, options, e2e::draw_augmentation(options, key, 1, false),
                       key, out);
    benchmark::DoNotOptimize(image.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AugmentEverything)->Unit(benchmark::kMillisecond);

// ---- One transform at a time on a 1×128³ patch ----

struct BenchPatch {
  std::vector<float> image;
  std::vector<int16_t> label;
  e2e::PatchRef ref;
  BenchPatch() : image(e2e::voxel_count(kBenchPatch)), label(image.size()) {
    ref = {image.data(), label.data(), 1, kBenchPatch};
    e2e::crop_case(*bench_case(), {16, 32, 32}, ref);
  }
};

template <typename Transform>
void run_transform(benchmark::State& state, Transform transform) {
  BenchPatch patch;
  for (auto _ : state) {
    transform(patch.ref);
    benchmark::DoNotOptimize(patch.image.data());
    benchmark::DoNotOptimize(patch.label.data());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_TransformCrop(benchmark::State& state) {
  run_transform(state, [](const e2e::PatchRef& p) { e2e::crop_case(*bench_case(), {16, 32, 32}, p); });
}
void BM_TransformSpatial(benchmark::State& state) {
  const auto interpolation =
      state.range(0) ? e2e::LabelInterpolation::kLinear : e2e::LabelInterpolation::kNearest;
  const e2e::Affine3 m = e2e::rotation_scale({15.0, -20.0, 10.0}, 1.1, false);
  run_transform(state, [&](const e2e::PatchRef& p) {
    e2e::spatial_transform(*bench_case(), {16, 32, 32}, m, interpolation, p);
  });
}
void BM_TransformNoise(benchmark::State& state) {
  e2e::Rng rng(1);
  run_transform(state,
                [&](const e2e::PatchRef& p) { e2e::add_gaussian_noise(p.image, p.voxels(), 0.05, rng); });
}
void BM_TransformBlur(benchmark::State& state) {
  run_transform(state, [](const e2e::PatchRef& p) { e2e::gaussian_blur(p.image, p.shape, 1.0); });
}
void BM_TransformBrightness(benchmark::State& state) {
  run_transform(state, [](const e2e::PatchRef& p) { e2e::scale_intensity(p.image, p.voxels(), 1.0001); });
}
void BM_TransformContrast(benchmark::State& state) {
  run_transform(state, [](const e2e::PatchRef& p) { e2e::adjust_contrast(p.image, p.voxels(), 1.0001); });
}
void BM_TransformLowResolution(benchmark::State& state) {
  run_transform(state,
                [](const e2e::PatchRef& p) { e2e::simulate_low_resolution(p.image, p.shape, 0.75, false); });
}
void BM_TransformInvertedGamma(benchmark::State& state) {
  run_transform(state,
                [](const e2e::PatchRef& p) { e2e::apply_gamma(p.image, p.voxels(), 1.2, true, true); });
}
void BM_TransformGamma(benchmark::State& state) {
  run_transform(state,
                [](const e2e::PatchRef& p) { e2e::apply_gamma(p.image, p.voxels(), 1.2, false, true); });
}
void BM_TransformMirror(benchmark::State& state) {
  run_transform(state, [](const e2e::PatchRef& p) { e2e::mirror(p, {true, true, true}); });
}
void BM_TransformIgnoreToBackground(benchmark::State& state) {
  run_transform(state, [](const e2e::PatchRef& p) { e2e::replace_label(p.label, p.voxels(), -1, 0); });
}
void BM_TransformDeepSupervisionTargets(benchmark::State& state) {
  std::vector<std::vector<int16_t>> targets;
  for (int64_t f : {2, 4, 8, 16}) targets.emplace_back(e2e::voxel_count({128 / f, 128 / f, 128 / f}));
  run_transform(state, [&](const e2e::PatchRef& p) {
    int64_t f = 2;
    for (auto& t : targets) {
      e2e::downsample_nearest(p.label, p.shape, t.data(), {128 / f, 128 / f, 128 / f});
      f *= 2;
    }
  });
}
BENCHMARK(BM_TransformCrop)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TransformSpatial)->ArgName("linear_labels")->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TransformNoise)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TransformBlur)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TransformBrightness)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TransformContrast)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TransformLowResolution)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TransformInvertedGamma)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TransformGamma)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TransformMirror)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TransformIgnoreToBackground)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TransformDeepSupervisionTargets)->Unit(benchmark::kMillisecond);

// ---- NIfTI I/O and the synthetic dataset (dataio) ----

// A scratch folder removed when the benchmark binary exits.
struct ScratchFolder {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("e2e_data_bench_" + std::to_string(::getpid()));
  ScratchFolder() { std::filesystem::create_directories(path); }
  ~ScratchFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

const std::filesystem::path& bench_folder() {
  static const ScratchFolder folder;
  return folder.path;
}

// A 64×160×160 float volume (the size toolchain.md measured) with some structure, so gzip has work to do.
const e2e::Volume<float>& nifti_bench_volume() {
  static const e2e::Volume<float> v = [] {
    e2e::Volume<float> out({64, 160, 160}, {2.0, 0.8, 0.8});
    for (int64_t i = 0; i < out.size(); ++i)
      out.voxels[i] = static_cast<float>((i * 7919) % 2000) * 0.5f - 300.0f;
    return out;
  }();
  return v;
}

std::string nifti_bench_path(int64_t gzip) {
  return (bench_folder() / (gzip ? "v.nii.gz" : "v.nii")).string();
}

void BM_NiftiWrite(benchmark::State& state) {
  const e2e::NiftiGeometry g = e2e::make_nifti_geometry({64, 160, 160}, {2.0, 0.8, 0.8});
  for (auto _ : state) e2e::write_nifti(nifti_bench_path(state.range(0)), nifti_bench_volume(), g);
  state.SetBytesProcessed(state.iterations() * nifti_bench_volume().size() * 4);
}
BENCHMARK(BM_NiftiWrite)->ArgName("gzip")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_NiftiRead(benchmark::State& state) {
  const std::string path = nifti_bench_path(state.range(0));
  e2e::write_nifti(path, nifti_bench_volume(), e2e::make_nifti_geometry({64, 160, 160}, {2.0, 0.8, 0.8}));
  for (auto _ : state) benchmark::DoNotOptimize(e2e::read_nifti(path).data.voxels.data());
  state.SetBytesProcessed(state.iterations() * nifti_bench_volume().size() * 4);
}
BENCHMARK(BM_NiftiRead)->ArgName("gzip")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

// One default synthetic case (32×64×64, 3 classes, CT) in memory.
void BM_SyntheticCase(benchmark::State& state) {
  const e2e::SyntheticOptions options;
  int64_t index = 0;
  for (auto _ : state)
    benchmark::DoNotOptimize(e2e::make_synthetic_case(options, index++).image.voxels.data());
}
BENCHMARK(BM_SyntheticCase)->Unit(benchmark::kMillisecond);

// The default 10-case dataset written to disk (what `e2e synth --out DIR` does), with 1 or 2 threads.
void BM_SyntheticDataset(benchmark::State& state) {
  const std::string out = (bench_folder() / "synthetic").string();
  for (auto _ : state)
    e2e::write_synthetic_dataset(out, e2e::SyntheticOptions{}, true, static_cast<int>(state.range(0)));
}
BENCHMARK(BM_SyntheticDataset)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// ---- Preprocessing of one synthetic 1×128×256×256 CT case (1.6×0.8×0.8 mm → 2×1×1 mm) ----

struct PreprocessBench {
  e2e::CroppedCase cropped;
  e2e::Plan plan;
  e2e::PreprocessedCase result;
  e2e::CaseMeta meta;
};

const PreprocessBench& preprocess_bench() {
  static const PreprocessBench bench = [] {
    e2e::SyntheticOptions options;
    options.cases = 1;
    options.shape = {128, 256, 256};
    options.spacing = {1.6, 0.8, 0.8};
    options.spacing_jitter = 0.0;
    e2e::SyntheticCase synthetic = e2e::make_synthetic_case(options, 0);
    e2e::RawCaseData raw{synthetic.id, std::move(synthetic.image), std::move(synthetic.label),
                         synthetic.geometry};
    PreprocessBench b;
    b.cropped = e2e::crop_to_nonzero(std::move(raw), {"bench.nii.gz"});
    e2e::Fingerprint fingerprint;
    fingerprint.channel_names = {"CT"};
    fingerprint.labels = {{0, "background"}, {1, "organ"}, {2, "paired"}};
    std::vector<float> samples = e2e::foreground_samples(b.cropped, 1)[0];
    fingerprint.intensity = {e2e::intensity_stats(samples)};
    fingerprint.cases = {
        {b.cropped.id, b.cropped.geometry.spacing, b.cropped.geometry.shape, b.cropped.image.shape}};
    e2e::Config config;
    config.data.target_spacing = e2e::Spacing3{2.0, 1.0, 1.0};
    b.plan = e2e::make_plan(fingerprint, config);
    b.result = e2e::preprocess_case(b.cropped, b.plan, &b.meta);
    return b;
  }();
  return bench;
}

void BM_PreprocessResampleImage(benchmark::State& state) {
  const PreprocessBench& b = preprocess_bench();
  e2e::MultiVolume<float> image = b.cropped.image;
  image.spacing = b.cropped.geometry.spacing;
  for (auto _ : state)
    benchmark::DoNotOptimize(e2e::resample_image(image, b.plan.target_spacing).voxels.data());
}
BENCHMARK(BM_PreprocessResampleImage)->Unit(benchmark::kMillisecond);

void BM_PreprocessResampleLabels(benchmark::State& state) {
  const PreprocessBench& b = preprocess_bench();
  e2e::Volume<int16_t> label = b.cropped.label;
  label.spacing = b.cropped.geometry.spacing;
  for (auto _ : state)
    benchmark::DoNotOptimize(e2e::resample_labels(label, b.plan.target_spacing).voxels.data());
}
BENCHMARK(BM_PreprocessResampleLabels)->Unit(benchmark::kMillisecond);

void BM_PreprocessNormalize(benchmark::State& state) {
  const PreprocessBench& b = preprocess_bench();
  e2e::MultiVolume<float> image = b.result.image;
  for (auto _ : state) {
    e2e::normalize(image, b.result.label, b.plan);
    benchmark::DoNotOptimize(image.voxels.data());
  }
}
BENCHMARK(BM_PreprocessNormalize)->Unit(benchmark::kMillisecond);

// Store write of the preprocessed case (≈102×205×205), raw (0) or gzip + shuffle (1).
void BM_PreprocessStoreWrite(benchmark::State& state) {
  const PreprocessBench& b = preprocess_bench();
  const std::string path =
      (std::filesystem::temp_directory_path() / ("e2e_bench_store_" + std::to_string(::getpid()) + ".h5"))
          .string();
  for (auto _ : state) {
    e2e::CaseStoreWriter writer(path, {state.range(0) != 0, {64, 64, 64}});
    writer.write_case(b.result, b.meta);
    writer.close();
  }
  state.counters["MB"] = static_cast<double>(std::filesystem::file_size(path)) / 1e6;
  std::filesystem::remove(path);
}
BENCHMARK(BM_PreprocessStoreWrite)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

// The whole per-case step as e2e preprocess runs it on one worker: resample image and labels, normalize,
// foreground locations, then the store write (uncompressed).
void BM_PreprocessCaseEndToEnd(benchmark::State& state) {
  const PreprocessBench& b = preprocess_bench();
  const std::string path =
      (std::filesystem::temp_directory_path() / ("e2e_bench_case_" + std::to_string(::getpid()) + ".h5"))
          .string();
  for (auto _ : state) {
    state.PauseTiming();
    e2e::CroppedCase input = b.cropped;
    state.ResumeTiming();
    e2e::CaseMeta meta;
    const e2e::PreprocessedCase result = e2e::preprocess_case(std::move(input), b.plan, &meta);
    e2e::CaseStoreWriter writer(path, {false, {64, 64, 64}});
    writer.write_case(result, meta);
    writer.close();
  }
  std::filesystem::remove(path);
}
BENCHMARK(BM_PreprocessCaseEndToEnd)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
