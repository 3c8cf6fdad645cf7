// Deterministic synthetic batches for trainer tests: batch i is a pure function of (i, kind), like the real
// loader; a rank takes its contiguous slice of the global batch.
#pragma once

#include <random>

#include "common/random.hpp"
#include "worker/trainer.hpp"

namespace e2e {

// Deterministic blobs: batch i is a pure function of (i, kind), like the real loader.
class BlobBatches : public BatchSource {
 public:
  explicit BlobBatches(Int3 patch, int64_t global_batch = 2, int rank = 0, int ranks = 1)
      : patch_(patch), batch_(global_batch), rank_(rank), ranks_(ranks) {}
  TrainingBatch train_batch(int64_t iteration) override {
    return make(mix_seed({1, static_cast<uint64_t>(iteration)}));
  }
  TrainingBatch validation_batch(int64_t epoch, int64_t index) override {
    return make(mix_seed({2, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index)}));
  }

 private:
  TrainingBatch make(uint64_t seed) {
    std::mt19937_64 gen(seed);
    auto uniform = [&](double lo, double hi) {
      return lo + (hi - lo) * static_cast<double>(gen() >> 11) / 9007199254740992.0;
    };
    torch::Tensor z = torch::arange(patch_[0]).view({-1, 1, 1}).to(torch::kFloat32);
    torch::Tensor y = torch::arange(patch_[1]).view({1, -1, 1}).to(torch::kFloat32);
    torch::Tensor x = torch::arange(patch_[2]).view({1, 1, -1}).to(torch::kFloat32);
    std::vector<torch::Tensor> labels;
    for (int64_t b = 0; b < batch_; ++b) {
      torch::Tensor label = torch::zeros({patch_[0], patch_[1], patch_[2]}, torch::kLong);
      for (int cls = 1; cls <= 2; ++cls) {
        const double cz = uniform(2, patch_[0] - 2), cy = uniform(3, patch_[1] - 3),
                     cx = uniform(3, patch_[2] - 3);
        torch::Tensor inside = ((z - cz).pow(2) / 9 + (y - cy).pow(2) / 16 + (x - cx).pow(2) / 16) <= 1;
        label.masked_fill_(inside, cls);
      }
      labels.push_back(label);
    }
    torch::Tensor label = torch::stack(labels);
    torch::Tensor noise = torch::empty(label.sizes());
    float* data = noise.data_ptr<float>();
    for (int64_t i = 0; i < noise.numel(); ++i) data[i] = static_cast<float>(uniform(-0.3, 0.3));
    torch::Tensor image = (label.to(torch::kFloat32) + noise).unsqueeze(1);
    const int64_t per_rank = batch_ / ranks_;
    return {image.narrow(0, rank_ * per_rank, per_rank).contiguous(),
            label.narrow(0, rank_ * per_rank, per_rank).contiguous()};
  }
  Int3 patch_;
  int64_t batch_;
  int rank_;
  int ranks_;
};

}  // namespace e2e
