// Forward + backward + SGD step (+ DSFF masking) of E2ENet on CPU, dense and sparse, 2 threads.
// Run: build/tests/bench/model_bench [--benchmark_filter=Tiny]
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "model/dsff.hpp"
#include "model/e2enet.hpp"

namespace {

e2e::Config load(const char* name) {
  return e2e::load_config(std::string(E2E_SOURCE_DIR) + "/configs/" + name);
}

void train_step(benchmark::State& state, const e2e::ModelConfig& model, e2e::Int3 patch, int64_t batch,
                double sparsity) {
  at::set_num_threads(2);
  torch::manual_seed(0);
  e2e::E2ENet net(model);
  net->train();
  e2e::DsffOptions options;
  options.sparsity = sparsity;
  e2e::Dsff dsff(net->masked_layers(), options);
  dsff.initialize();
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.99).nesterov(true));
  torch::Tensor x = torch::randn({batch, model.in_channels, patch[0], patch[1], patch[2]});
  for (auto _ : state) {
    sgd.zero_grad();
    torch::Tensor loss = torch::zeros({});
    for (const torch::Tensor& out : net->forward(x)) loss = loss + out.pow(2).mean();
    loss.backward();
    sgd.step();
    dsff.apply(&sgd);
  }
  state.counters["voxels/s"] = benchmark::Counter(static_cast<double>(batch * patch[0] * patch[1] * patch[2]),
                                                  benchmark::Counter::kIsIterationInvariantRate);
}

void BM_TinyTrainStep(benchmark::State& state) {
  const e2e::Config c = load("synthetic.yaml");
  train_step(state, c.model, c.training.patch_size, c.training.batch_size, state.range(0) / 10.0);
}
BENCHMARK(BM_TinyTrainStep)->Arg(0)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_AmosTrainStep64(benchmark::State& state) {
  train_step(state, load("amos.yaml").model, {64, 64, 64}, 1, state.range(0) / 10.0);
}
BENCHMARK(BM_AmosTrainStep64)->Arg(0)->Arg(8)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(2);

}  // namespace

BENCHMARK_MAIN();
