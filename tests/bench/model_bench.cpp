// Forward + backward + SGD step of E2ENet on CPU (dense and sparse). Run: build/tests/bench/model_bench
#include <benchmark/benchmark.h>
#include <torch/torch.h>

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
