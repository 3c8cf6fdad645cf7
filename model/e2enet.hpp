// E2ENet: a UNet-like backbone whose levels are fused over L-1 stages (forward, upward, downward inputs),
// with the restricted depth shift in front of every conv and per-kernel sparse fusion weights (DSFF).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "configs/config.hpp"

namespace e2e {

enum class LayerKind { BackboneConv, FusionConv, UpConv, Head };
const char* to_string(LayerKind kind);

// A weighted layer as the counting rules and DSFF see it. `weight` aliases the module's parameter.
struct LayerInfo {
  std::string name;
  LayerKind kind;
  int in_level = 0;   // resolution level of the layer's input
  int out_level = 0;  // resolution level of its output
  torch::Tensor weight;
  int64_t bias_params = 0;
  int64_t norm_params = 0;  // affine InstanceNorm that follows the conv
  Int3 kernel{1, 1, 1};
  Int3 stride{1, 1, 1};
  Int3 padding{0, 0, 0};
  bool masked = false;         // one of the 35 DSFF tensors
  bool level0_fusion = false;  // a level-0 fusion conv (target of sparsity.level0_density)

  bool transposed() const { return kind == LayerKind::UpConv; }
  // Kernel grid (dim0, dim1) of the weight: (out, in) for convs, (in, out) for transposed convs.
  int64_t rows() const { return weight.size(0); }
  int64_t cols() const { return weight.size(1); }
  int64_t in_channels() const { return transposed() ? weight.size(0) : weight.size(1); }
  int64_t out_channels() const { return transposed() ? weight.size(1) : weight.size(0); }
  int64_t kernel_volume() const { return kernel[0] * kernel[1] * kernel[2]; }
};

// [depth shift] → Conv3d → InstanceNorm3d(affine) → LeakyReLU(0.01)
class ConvBlockImpl : public torch::nn::Module {
 public:
  ConvBlockImpl(int64_t in, int64_t out, Int3 kernel, Int3 stride, int shift_size);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv3d conv{nullptr};
  torch::nn::InstanceNorm3d norm{nullptr};
  int shift_size;
};
TORCH_MODULE(ConvBlock);

class E2ENetImpl : public torch::nn::Module {
 public:
  explicit E2ENetImpl(const ModelConfig& config);

  // Training with deep supervision: one logit map per head, full resolution first. Otherwise (eval mode or
  // deep_supervision off) only the full-resolution logits.
  std::vector<torch::Tensor> forward(const torch::Tensor& input);

  const ModelConfig& config() const { return config_; }
  // Every Conv3d, ConvTranspose3d and head in build order: backbone, then fusion stages, then heads.
  const std::vector<LayerInfo>& layers() const { return layers_; }
  std::vector<LayerInfo> masked_layers() const;
  int num_heads() const { return static_cast<int>(heads_.size()); }
  // Deep-supervision loss weights 1/2^k normalized over the heads (8/15, 4/15, 2/15, 1/15 for 4 heads).
  std::vector<double> deep_supervision_weights() const;

 private:
  struct FusionNode {
    int level = 0;
    int column = 0;
    torch::nn::ConvTranspose3d up{nullptr};
    std::vector<ConvBlock> convs;
  };

  void build_backbone();
  void build_fusion();
  void build_heads();
  void init_weights();
  ConvBlock add_block(const std::string& name, LayerKind kind, int in_level, int out_level, int64_t in,
                      int64_t out, Int3 stride, bool shift);
  torch::Tensor run_node(FusionNode& node, const std::vector<std::vector<torch::Tensor>>& x);

  ModelConfig config_;
  std::vector<std::vector<ConvBlock>> backbone_;  // per level, two blocks
  std::vector<FusionNode> nodes_;                 // in build order (stage by stage, deepest first)
  std::vector<torch::nn::Conv3d> heads_;          // head k on the last node of level k
  std::vector<int> head_columns_;
  std::vector<LayerInfo> layers_;
};
TORCH_MODULE(E2ENet);

}  // namespace e2e
