#include "model/dsff.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>

#include "common/random.hpp"
#include "model/optimizer_state.hpp"

namespace e2e {

namespace {

constexpr uint64_t kInitStream = 0x1A17;
constexpr uint64_t kRegrowStream = 0x6E6E;

torch::Tensor mask_to_tensor(const TensorMask& mask, const torch::Tensor& like) {
  torch::Tensor bits = torch::zeros({mask.rows, mask.cols}, torch::kFloat32);
  float* data = bits.data_ptr<float>();
  for (int64_t k = 0; k < mask.size(); ++k) data[k] = mask.get(k) ? 1.0f : 0.0f;
  return bits.view({mask.rows, mask.cols, 1, 1, 1}).to(like.device(), like.scalar_type());
}

TensorMask tensor_to_mask(const std::string& name, const torch::Tensor& mask) {
  torch::Tensor flat = mask.to(torch::kCPU, torch::kFloat32).contiguous().view({mask.size(0), mask.size(1)});
  TensorMask out(name, flat.size(0), flat.size(1));
  const float* data = flat.data_ptr<float>();
  for (int64_t k = 0; k < out.size(); ++k) out.set(k, data[k] != 0.0f);
  return out;
}

// L1 norm of every kernel (sum of |w| over the taps), row-major, in double precision.
std::vector<double> kernel_l1(const torch::Tensor& weight) {
  torch::Tensor l1 = weight.detach().abs().sum({2, 3, 4}).to(torch::kCPU, torch::kFloat64).contiguous();
  const double* data = l1.data_ptr<double>();
  return std::vector<double>(data, data + l1.numel());
}

}  // namespace

DsffOptions DsffOptions::from_config(const SparsityConfig& config, double sparsity, int64_t total_iterations,
                                     uint64_t seed) {
  DsffOptions options;
  options.sparsity = sparsity;
  options.level0_density = config.level0_density;
  options.update_interval = config.update_interval;
  options.prune_rate_start = config.prune_rate_start;
  options.prune_rate_end = config.prune_rate_end;
  options.total_iterations = std::max<int64_t>(total_iterations, 1);
  options.seed = seed;
  return options;
}

Dsff::Dsff(std::vector<LayerInfo> masked_layers, DsffOptions options)
    : layers_(std::move(masked_layers)), options_(options) {
  if (!(options_.sparsity >= 0.0 && options_.sparsity < 1.0))
    throw std::invalid_argument("sparsity must be in [0, 1), got " + std::to_string(options_.sparsity));
  for (const LayerInfo& layer : layers_)
    masks_.push_back(
        torch::ones({layer.rows(), layer.cols(), 1, 1, 1}, layer.weight.options().requires_grad(false)));
}

double Dsff::density_of(const LayerInfo& layer) const {
  if (layer.level0_fusion && options_.level0_density) return *options_.level0_density;
  return 1.0 - options_.sparsity;
}

int64_t Dsff::target_active(const LayerInfo& layer) const {
  const double kernels = static_cast<double>(layer.rows() * layer.cols());
  return std::clamp<int64_t>(std::llround(kernels * density_of(layer)), 0, layer.rows() * layer.cols());
}

void Dsff::initialize() {
  Topology topology;
  for (std::size_t t = 0; t < layers_.size(); ++t) {
    const LayerInfo& layer = layers_[t];
    TensorMask mask(layer.name, layer.rows(), layer.cols());
    std::vector<int64_t> order(mask.size());
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 gen(mix_seed({options_.seed, kInitStream, t}));
    const auto active = static_cast<std::size_t>(target_active(layer));
    choose_prefix(order, active, gen);
    for (std::size_t k = 0; k < active; ++k) mask.set(order[k], true);
    topology.tensors.push_back(std::move(mask));
  }
  set_topology(topology);
  apply();
}

bool Dsff::is_update_step(int64_t iteration) const {
  return options_.update_interval > 0 && iteration > 0 && iteration % options_.update_interval == 0 &&
         iteration < options_.total_iterations;
}

int64_t Dsff::update_index(int64_t iteration) const {
  return options_.update_interval > 0 ? iteration / options_.update_interval : 0;
}

double Dsff::prune_rate(int64_t iteration) const {
  const double progress = std::clamp(static_cast<double>(iteration) / options_.total_iterations, 0.0, 1.0);
  return options_.prune_rate_end +
         (options_.prune_rate_start - options_.prune_rate_end) * (1.0 + std::cos(M_PI * progress)) / 2.0;
}

Topology Dsff::propose_update(int64_t iteration, DsffUpdateStats* stats) const {
  const double rate = prune_rate(iteration);
  DsffUpdateStats local;
  local.iteration = iteration;
  local.rate = rate;
  Topology current = topology();
  for (std::size_t t = 0; t < layers_.size(); ++t) {
    TensorMask& mask = current.tensors[t];
    const std::vector<double> l1 = kernel_l1(layers_[t].weight);
    std::vector<int64_t> active;
    for (int64_t k = 0; k < mask.size(); ++k)
      if (mask.get(k)) active.push_back(k);
    const auto n = static_cast<std::size_t>(std::ceil(rate * static_cast<double>(active.size())));
    if (n == 0) continue;
    // Ties in L1 (e.g. kernels still at zero) are broken by index so that the choice is reproducible.
    std::partial_sort(active.begin(), active.begin() + n, active.end(),
                      [&](int64_t a, int64_t b) { return l1[a] < l1[b] || (l1[a] == l1[b] && a < b); });
    std::vector<bool> just_pruned(mask.size(), false);
    for (std::size_t k = 0; k < n; ++k) {
      mask.set(active[k], false);
      just_pruned[active[k]] = true;
    }
    std::vector<int64_t> inactive;
    for (int64_t k = 0; k < mask.size(); ++k)
      if (!mask.get(k)) inactive.push_back(k);
    std::mt19937_64 gen(
        mix_seed({options_.seed, kRegrowStream, static_cast<uint64_t>(update_index(iteration)), t}));
    choose_prefix(inactive, n, gen);
    for (std::size_t k = 0; k < n; ++k) {
      mask.set(inactive[k], true);
      (just_pruned[inactive[k]] ? local.regrown_kept : local.regrown_new) += 1;
    }
    local.pruned += static_cast<int64_t>(n);
  }
  if (stats) *stats = local;
  return current;
}

void Dsff::set_topology(const Topology& topology) {
  if (topology.tensors.size() != layers_.size())
    throw std::invalid_argument("topology has " + std::to_string(topology.tensors.size()) +
                                " tensors, the model " + std::to_string(layers_.size()));
  for (std::size_t t = 0; t < layers_.size(); ++t) {
    const TensorMask& mask = topology.tensors[t];
    const LayerInfo& layer = layers_[t];
    if (mask.name != layer.name || mask.rows != layer.rows() || mask.cols != layer.cols())
      throw std::invalid_argument("topology tensor " + std::to_string(t) + " is '" + mask.name + "' " +
                                  std::to_string(mask.rows) + "x" + std::to_string(mask.cols) +
                                  ", the model's is '" + layer.name + "' " + std::to_string(layer.rows()) +
                                  "x" + std::to_string(layer.cols()));
  }
  for (std::size_t t = 0; t < layers_.size(); ++t)
    masks_[t] = mask_to_tensor(topology.tensors[t], layers_[t].weight);
}

void Dsff::apply(torch::optim::Optimizer* optimizer) {
  torch::NoGradGuard no_grad;
  for (std::size_t t = 0; t < layers_.size(); ++t) {
    torch::Tensor weight = layers_[t].weight;
    weight.mul_(masks_[t]);
    if (!optimizer) continue;
    torch::Tensor momentum = sgd_momentum_buffer(*optimizer, weight);
    if (momentum.defined()) momentum.mul_(masks_[t]);
  }
}

DsffUpdateStats Dsff::update(int64_t iteration, torch::optim::Optimizer* optimizer) {
  DsffUpdateStats stats;
  set_topology(propose_update(iteration, &stats));
  apply(optimizer);
  return stats;
}

Topology Dsff::topology() const {
  Topology topology;
  for (std::size_t t = 0; t < layers_.size(); ++t)
    topology.tensors.push_back(tensor_to_mask(layers_[t].name, masks_[t]));
  return topology;
}

ActiveKernels Dsff::active_kernels() const {
  ActiveKernels active;
  for (std::size_t t = 0; t < layers_.size(); ++t)
    active[layers_[t].name] = std::llround(masks_[t].sum().item<double>());
  return active;
}

}  // namespace e2e
