// Inference of the AMOS network on the CPU, 2 threads: the masked dense forward (LibTorch's convs) against
// the compiled sparse path (model/sparse_inference.hpp), in the same run.
// Run: build/tests/bench/sparse_bench [--benchmark_filter=Forward/0] (slow: a dense 128³ forward takes tens
// of seconds on 2 cores). Each sparse forward also prints its per-layer breakdown to stderr.
//  BM_AmosForward/<shape>/<s·10>/<path>: shape 0 = 1×1×128³, 1 = 1×1×64×192×160, 2 = 1×1×64³ (quick); path 0
//  = E2ENet::forward
//    (dense masked), 1 = sparse, 2 = the sparse class with every layer dense (the dense per-layer breakdown).
//  BM_AmosSlidingWindow/<s·10>/<path>: one 96×160×160 case, patch 64³, step 0.5 (27 tiles); path 0/1.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdio>
#include <map>

#include "model/depth_shift.hpp"
#include "model/dsff.hpp"
#include "model/sparse_inference.hpp"
#include "worker/inference.hpp"

namespace {

e2e::ModelConfig amos_model() {
  return e2e::load_config(std::string(E2E_SOURCE_DIR) + "/configs/amos.yaml").model;
}

e2e::E2ENet masked_net(double sparsity) {
  torch::manual_seed(0);
  e2e::E2ENet net(amos_model());
  e2e::DsffOptions options;
  options.sparsity = sparsity;
  e2e::Dsff dsff(net->masked_layers(), options);
  dsff.initialize();
  net->eval();
  return net;
}

// Per-layer seconds of one forward, grouped as counters and printed in full to stderr.
void report_profile(benchmark::State& state, const std::string& title, const e2e::SparseE2ENet& net,
                    double iterations) {
  std::map<std::string, double> groups;
  std::fprintf(stderr, "\n%s — per layer (ms per forward)\n", title.c_str());
  for (const e2e::LayerTime& layer : net.profile()) {
    const double ms = 1e3 * layer.seconds / iterations;
    std::fprintf(stderr, "  %-14s %-6s %9.1f\n", layer.name.c_str(), layer.sparse ? "sparse" : "dense", ms);
    std::string group = layer.name;
    const auto dot = group.find('.');
    if (dot != std::string::npos) group = group.substr(dot + 1);  // conv0, conv0.norm, up, down
    groups[group] += layer.seconds / iterations;
  }
  for (const auto& [group, seconds] : groups) state.counters[group + "_s"] = seconds;
}

void BM_AmosForward(benchmark::State& state) {
  at::set_num_threads(2);
  const std::vector<int64_t> shape = state.range(0) == 0   ? std::vector<int64_t>{1, 1, 128, 128, 128}
                                     : state.range(0) == 1 ? std::vector<int64_t>{1, 1, 64, 192, 160}
                                                           : std::vector<int64_t>{1, 1, 64, 64, 64};
  const double sparsity = state.range(1) / 10.0;
  const int64_t path = state.range(2);
  e2e::E2ENet net = masked_net(sparsity);
  e2e::SparseInferenceOptions options;
  if (path == 2) options.max_density = -1;
  e2e::SparseE2ENet compiled(net, options);
  compiled.set_profiling(path != 0);
  const torch::Tensor input = torch::randn(shape);
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    torch::Tensor logits = path == 0 ? net->forward(input)[0] : compiled.forward(input);
    benchmark::DoNotOptimize(logits.data_ptr<float>());
  }
  state.counters["sparse_layers"] = compiled.sparse_layers();
  if (path != 0)
    report_profile(state,
                   "AmosForward shape " + std::to_string(state.range(0)) + " s " + std::to_string(sparsity) +
                       (path == 1 ? " sparse" : " dense"),
                   compiled, static_cast<double>(state.iterations()));
  state.SetLabel(path == 0 ? "dense" : path == 1 ? compiled.summary() : "dense (per-layer)");
}
BENCHMARK(BM_AmosForward)
    ->ArgsProduct({{0, 1}, {7, 8, 9}, {0, 1}})
    ->Args({0, 8, 2})
    ->Args({1, 8, 2})
    ->ArgsProduct({{2}, {8}, {0, 1, 2}})
    ->Unit(benchmark::kSecond)
    ->UseRealTime()
    ->Iterations(1);

void BM_AmosSlidingWindow(benchmark::State& state) {
  at::set_num_threads(2);
  e2e::E2ENet net = masked_net(state.range(0) / 10.0);
  e2e::SlidingWindowOptions window;
  window.patch = {64, 64, 64};
  e2e::InferencePathOptions path;
  path.dense = state.range(1) == 0;
  torch::manual_seed(1);
  const torch::Tensor image = torch::randn({1, 96, 160, 160});
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    // Compiling is part of predicting a case, as in `e2e predict`.
    const torch::Tensor p = e2e::sliding_window_probabilities(e2e::inference_forward(net, path), image,
                                                              net->config().num_classes, window);
    benchmark::DoNotOptimize(p.data_ptr<float>());
  }
  state.SetLabel(path.dense ? "dense" : "sparse");
}
BENCHMARK(BM_AmosSlidingWindow)
    ->Args({8, 0})
    ->Args({8, 1})
    ->Unit(benchmark::kSecond)
    ->UseRealTime()
    ->Iterations(1);

// Compiling the topology (packing the weights) once per loaded model.
void BM_AmosCompile(benchmark::State& state) {
  at::set_num_threads(2);
  e2e::E2ENet net = masked_net(state.range(0) / 10.0);
  for (auto _ : state) {
    e2e::SparseE2ENet compiled(net);
    benchmark::DoNotOptimize(compiled.sparse_layers());
  }
}
BENCHMARK(BM_AmosCompile)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

// The kernel alone on the level-0 fusion conv of the AMOS net (96→48 channels), one 128×128 slice stack.
void BM_Level0FusionConv(benchmark::State& state) {
  at::set_num_threads(2);
  const double sparsity = state.range(0) / 10.0;
  const int64_t path = state.range(1);  // 0 dense conv3d, 1 sparse auto, 2 sparse avx2, 3 sparse scalar
  torch::manual_seed(0);
  torch::Tensor weight = torch::randn({48, 96, 1, 3, 3});
  weight *= (torch::rand({48, 96, 1, 1, 1}) >= sparsity).to(torch::kFloat32);
  const torch::Tensor bias = torch::zeros({48});
  const std::vector<torch::Tensor> sources{torch::randn({1, 48, 32, 128, 128}),
                                           torch::randn({1, 48, 32, 128, 128})};
  const e2e::PackedFusionConv packed = e2e::pack_fusion_conv("x0.conv0", weight, bias, 3);
  const e2e::SparseKernel kernels[] = {e2e::SparseKernel::Auto, e2e::SparseKernel::Auto,
                                       e2e::SparseKernel::Avx2, e2e::SparseKernel::Scalar};
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    torch::Tensor out = path == 0 ? torch::conv3d(e2e::depth_shift(torch::cat(sources, 1), 3), weight, bias,
                                                  1, torch::ExpandingArray<3>({0, 1, 1}))
                                  : e2e::sparse_fusion_conv(packed, sources, kernels[path]);
    benchmark::DoNotOptimize(out.data_ptr<float>());
  }
  const double flops = 2.0 * static_cast<double>(packed.weight.size()) * 32 * 128 * 128;
  state.counters["useful_GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Level0FusionConv)
    ->ArgsProduct({{8, 9}, {0, 1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
