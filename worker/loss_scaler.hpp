// Dynamic loss scaling for fp16 training on CUDA (bf16 and fp32 need none): the loss is multiplied by the
// scale before backward, the gradients are divided by it after the all-reduce; a step whose gradients
// overflowed is skipped and the scale halved, and every 2000 good steps the scale doubles. The reduced
// gradients are identical on every rank, so every rank takes the same decision.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace e2e {

class LossScaler {
 public:
  static constexpr double kInitialScale = 65536.0;
  static constexpr int64_t kGrowthInterval = 2000;  // good steps between doublings

  // Disabled: the scale stays 1 and every step is taken.
  explicit LossScaler(bool enabled) : enabled_(enabled), scale_(enabled ? kInitialScale : 1.0) {}

  bool enabled() const { return enabled_; }
  double scale() const { return scale_; }
  int64_t good_steps() const { return good_steps_; }

  // What backward() is called on: loss × scale (the loss itself when the scale is 1).
  torch::Tensor scaled(const torch::Tensor& loss) const { return scale_ == 1.0 ? loss : loss * scale_; }

  // Divides the gradients by the scale. Returns false when some gradient is not finite: skip the step (the
  // scale is halved, not below 1). `iteration` only names the step in the debug log.
  bool unscale(const std::vector<torch::Tensor>& parameters, int64_t iteration);

  // The state a checkpoint keeps (meta "loss_scale", "loss_scale_good_steps") for an exact resume.
  void restore(double scale, int64_t good_steps) {
    scale_ = scale;
    good_steps_ = good_steps;
  }

 private:
  bool enabled_;
  double scale_;
  int64_t good_steps_ = 0;
};

}  // namespace e2e
