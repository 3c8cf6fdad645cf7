// Sparse inference for E2ENet: the kernel-sparse (1,kh,kw) fusion convs and the transposed up-convs run on
// their packed active kernels instead of the masked dense weights. The topology is compiled once per loaded
// model; the concatenation of forward/up/down inputs and the depth shift are folded into the kernel (each
// non-zero reads its input channel at its own depth offset), so neither is copied. Backbone, norms, pooling
// and heads run as in E2ENet. Inference only (eval-mode logits); training stays on the dense masked path.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "model/e2enet.hpp"
#include "model/sparse_kernels.hpp"

namespace e2e {

// Default for SparseInferenceOptions::max_density; see the model README for the measurements behind it.
constexpr double kDefaultSparseMaxDensity = 0.5;

struct SparseInferenceOptions {
  // A masked layer runs on the sparse path when its kernel density (active / all kernels) is at most this;
  // denser layers keep the dense LibTorch conv. Negative: every layer dense (the reference path).
  double max_density = kDefaultSparseMaxDensity;
  SparseKernel kernel = SparseKernel::Auto;
};

// A (1,kh,kw) fusion conv packed by output channel: for output o, non-zeros row_start[o]..row_start[o+1]
// hold (input channel of the concatenation, tap, weight, depth shift of that channel). Zero kernels and
// zero taps are left out, so input channels whose kernels are all inactive are never read. Plain data: a
// CUDA kernel can take the same arrays.
struct PackedFusionConv {
  std::string name;
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int kernel_h = 3;
  int kernel_w = 3;
  int64_t active_kernels = 0;
  std::vector<int32_t> row_start;
  std::vector<int32_t> channel;
  std::vector<int32_t> tap;  // kernel row · kernel_w + kernel column
  std::vector<int32_t> depth_shift;
  std::vector<float> weight;
  std::vector<float> bias;
  std::vector<int32_t> used_channels;  // input channels with at least one active kernel, ascending
  // The same active kernels whole (3×3 convs only, else empty), for sparse_conv3x3: output o sums kernels
  // kernel_start[o]..kernel_start[o+1]; kernel k reads input channel kernel_channel[k] at depth shift
  // kernel_shift[k] with the 9 weights kernel_weight[9k..9k+8].
  std::vector<int32_t> kernel_start;
  std::vector<int32_t> kernel_channel;
  std::vector<int32_t> kernel_shift;
  std::vector<float> kernel_weight;

  double density() const { return static_cast<double>(active_kernels) / (in_channels * out_channels); }
};

// A transposed conv with kernel = stride (no overlap): every tap is a 1×1 conv. Rows are tap·out + o; each
// non-zero holds (input channel, weight).
struct PackedUpConv {
  std::string name;
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  Int3 kernel{2, 2, 2};
  int64_t active_kernels = 0;
  std::vector<int32_t> row_start;
  std::vector<int32_t> channel;
  std::vector<float> weight;

  double density() const { return static_cast<double>(active_kernels) / (in_channels * out_channels); }
};

// conv weight (out, in, 1, kh, kw) + bias → packed rows; throws std::invalid_argument unless kd = 1 and
// kh, kw are odd. shift_size is the depth shift in front of the conv (0/1: none).
PackedFusionConv pack_fusion_conv(const std::string& name, const torch::Tensor& weight,
                                  const torch::Tensor& bias, int shift_size);
PackedUpConv pack_up_conv(const std::string& name, const torch::Tensor& weight);

// conv(depth_shift(cat(sources, 1))) + bias, as Conv3d with padding (0, kh/2, kw/2). Sources: N×Cs×D×H×W
// float32 on the CPU, channels summing to the conv's in_channels.
torch::Tensor sparse_fusion_conv(const PackedFusionConv& conv, const std::vector<torch::Tensor>& sources,
                                 SparseKernel kernel = SparseKernel::Auto);
// ConvTranspose3d(x) with kernel = stride, no bias.
torch::Tensor sparse_up_conv(const PackedUpConv& conv, const torch::Tensor& x,
                             SparseKernel kernel = SparseKernel::Auto);

// Wall time per layer, accumulated over forward passes while profiling is on (the benchmark's breakdown).
struct LayerTime {
  std::string name;  // "backbone", "x0_5.up", "x0_5.down", "x0_5.conv0", "head0"
  bool sparse = false;
  double seconds = 0;
};

class SparseE2ENet {
 public:
  // Packs every masked layer at or below options.max_density. The net's weights are read now: compile
  // again after they change. Throws std::invalid_argument when the net's modules are not E2ENet's.
  explicit SparseE2ENet(E2ENet net, SparseInferenceOptions options = {});

  // The eval-mode logits (N×K×D×H×W), equal to net->forward(input)[0] in eval mode up to float rounding.
  // input: float32 on the CPU.
  torch::Tensor forward(const torch::Tensor& input);

  int sparse_layers() const;  // masked layers that run sparsely
  int masked_layers() const;  // all masked layers (fusion convs and up-convs)
  // The active fraction of all masked kernels.
  double density() const;
  SparseKernel kernel() const { return kernel_; }
  std::string summary() const;  // "sparse path: 35 of 35 masked layers (density 0.200, avx512)"

  void set_profiling(bool on) { profiling_ = on; }
  const std::vector<LayerTime>& profile() const { return profile_; }
  void clear_profile() { profile_.clear(); }

 private:
  struct FusionConvStep {
    ConvBlock block{nullptr};
    bool sparse = false;
    PackedFusionConv packed;
  };
  struct Node {
    std::string name;
    int level = 0;
    int column = 0;
    torch::nn::ConvTranspose3d up{nullptr};
    bool sparse_up = false;
    PackedUpConv packed_up;
    std::vector<FusionConvStep> convs;
  };

  torch::Tensor run_node(Node& node, const std::vector<std::vector<torch::Tensor>>& x);
  torch::Tensor run_conv(FusionConvStep& step, const std::string& name, std::vector<torch::Tensor> sources);
  template <typename F>
  torch::Tensor timed(const std::string& name, bool sparse, F&& f);

  E2ENet net_;
  ModelConfig config_;
  SparseKernel kernel_;
  std::vector<std::vector<ConvBlock>> backbone_;
  std::vector<Node> nodes_;
  torch::nn::Conv3d head_{nullptr};
  int64_t active_kernels_ = 0;
  int64_t total_kernels_ = 0;
  bool profiling_ = false;
  std::vector<LayerTime> profile_;
};

// Forward passes that ran at least one layer sparsely, in this process (how tests see the path taken).
int64_t sparse_forward_passes();

}  // namespace e2e
