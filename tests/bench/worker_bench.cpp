// Training augmentation: the torch-op pipeline (worker/device_augment.hpp) vs the CPU augmenter
// (augment_patch), 1×1×128³ patches of a 160×192×192 case, typical moreDA probabilities and every transform
// forced on. Run: build/tests/bench/worker_bench [--benchmark_filter=Augment]
// The torch pipeline runs on the CPU (device 0) or the first GPU (device 1, skipped without one); it starts
// from the cropped sampling box as the crop-only loader hands it over (BM_CropSamplingBox is that crop). Both
// CPU variants use one core.
#include <benchmark/benchmark.h>

#include <memory>

#include "data/augment.hpp"
#include "tests/data/sampling_fixtures.hpp"
#include "worker/device_augment.hpp"

namespace {

const e2e::Shape3 kPatch{128, 128, 128};
const e2e::Int3 kPatchLo{16, 32, 32};

const e2e::PreprocessedCase& bench_case() {
  static const std::shared_ptr<const e2e::PreprocessedCase> c =
      e2e::testing::make_case("bench", {160, 192, 192}, 1, 7);
  return *c;
}

// Arg 0: moreDA's probabilities; 1: every moreDA transform with probability 1 (no elastic: the CPU has none).
e2e::AugmentOptions bench_options(int64_t everything) {
  e2e::AugmentOptions o;
  if (!everything) return o;
  o.rotation_probability = o.scale_probability = 1.0;
  o.noise_probability = o.blur_probability = o.blur_channel_probability = 1.0;
  o.brightness_probability = o.contrast_probability = 1.0;
  o.low_resolution_probability = o.low_resolution_channel_probability = 1.0;
  o.inverted_gamma_probability = o.gamma_probability = 1.0;
  return o;
}

void report(benchmark::State& state, int64_t patches) {
  state.counters["patches_per_s"] =
      benchmark::Counter(static_cast<double>(patches), benchmark::Counter::kIsRate);
}

void BM_AugmentCpu(benchmark::State& state) {
  const e2e::AugmentOptions options = bench_options(state.range(0));
  std::vector<float> image(e2e::voxel_count(kPatch));
  std::vector<int16_t> label(image.size());
  const e2e::PatchRef out{image.data(), label.data(), 1, kPatch};
  int64_t sample = 0;
  for (auto _ : state) {
    const e2e::DrawKey key{1, 0, 0, sample++};
    e2e::augment_patch(bench_case(), kPatchLo, options, e2e::draw_augmentation(options, key, 1, false), key,
                       out);
    benchmark::DoNotOptimize(image.data());
  }
  report(state, sample);
}

// Args: (everything, device): device 0 = CPU tensors, 1 = CUDA.
void BM_AugmentTorch(benchmark::State& state) {
  const bool cuda = state.range(1) == 1;
  if (cuda && !torch::cuda::is_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  const torch::Device device = cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (!cuda) at::set_num_threads(1);  // core for core with augment_patch (and OpenMP stalls on a busy host)
  const e2e::AugmentOptions options = bench_options(state.range(0));
  const e2e::Shape3 box = e2e::sampling_size(kPatch, options);
  torch::Tensor image = torch::empty({1, 1, box[0], box[1], box[2]}, torch::kFloat);
  torch::Tensor label = torch::empty({1, box[0], box[1], box[2]}, torch::kInt16);
  e2e::Int3 box_lo;
  for (int d = 0; d < 3; ++d) box_lo[d] = kPatchLo[d] - (box[d] - kPatch[d]) / 2;
  e2e::crop_case(bench_case(), box_lo, {image.data_ptr<float>(), label.data_ptr<int16_t>(), 1, box});
  image = image.to(device);
  label = label.to(device);
  e2e::DeviceAugmenter augmenter(options, device);
  int64_t sample = 0;
  for (auto _ : state) {
    const e2e::DrawKey key{1, 0, 0, sample++};
    const e2e::TrainingBatch out =
        augmenter.augment(image, label, kPatch, {e2e::draw_augmentation(options, key, 1, false)}, {key});
    if (cuda) torch::cuda::synchronize();
    benchmark::DoNotOptimize(out.image.data_ptr());
  }
  report(state, sample);
  state.counters["torch_threads"] = static_cast<double>(torch::get_num_threads());
}

// The loader's share in device mode: cropping the 249³ sampling box (typical) out of the case.
void BM_CropSamplingBox(benchmark::State& state) {
  const e2e::Shape3 box = e2e::sampling_size(kPatch, bench_options(0));
  std::vector<float> image(e2e::voxel_count(box));
  std::vector<int16_t> label(image.size());
  int64_t boxes = 0;
  for (auto _ : state) {
    e2e::crop_case(bench_case(), {-40, -28, -28}, {image.data(), label.data(), 1, box});
    benchmark::DoNotOptimize(image.data());
    ++boxes;
  }
  report(state, boxes);
}

}  // namespace

BENCHMARK(BM_AugmentCpu)
    ->ArgName("everything")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(5.0);
BENCHMARK(BM_AugmentTorch)
    ->ArgNames({"everything", "cuda"})
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({0, 1})
    ->Args({1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(5.0);
BENCHMARK(BM_CropSamplingBox)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
