#include "worker/loss_scaler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace e2e {

bool LossScaler::unscale(const std::vector<torch::Tensor>& parameters, int64_t iteration) {
  if (!enabled_) return true;
  torch::NoGradGuard no_grad;
  bool finite = true;
  for (const torch::Tensor& p : parameters) {
    if (!p.grad().defined()) continue;
    p.grad().div_(scale_);
    finite = finite && torch::isfinite(p.grad()).all().item<bool>();
  }
  if (!finite) {
    scale_ = std::max(scale_ * 0.5, 1.0);
    good_steps_ = 0;
    spdlog::debug("fp16 gradients overflowed at iteration {}: step skipped, loss scale {}", iteration,
                  scale_);
    return false;
  }
  if (++good_steps_ % kGrowthInterval == 0) scale_ *= 2.0;
  return true;
}

}  // namespace e2e
