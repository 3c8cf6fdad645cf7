#include "model/e2enet.hpp"

#include "model/depth_shift.hpp"

namespace e2e {

namespace {

torch::ExpandingArray<3> expand(const Int3& v) {
  return torch::ExpandingArray<3>({v[0], v[1], v[2]});
}

Int3 half_of(const Int3& kernel) {
  return {kernel[0] / 2, kernel[1] / 2, kernel[2] / 2};
}

// Appending (not "x" + std::string&&) avoids GCC 12's false -Wstringop-overflow in operator+ at -O2.
std::string node_name(int level, int column) {
  std::string name = "x";
  name.append(std::to_string(level)).append("_").append(std::to_string(column));
  return name;
}

// Module names may not contain dots; layer names use them for readability.
std::string module_name(std::string name) {
  for (char& c : name)
    if (c == '.') c = '_';
  return name;
}

}  // namespace

const char* to_string(LayerKind kind) {
  switch (kind) {
    case LayerKind::BackboneConv:
      return "backbone";
    case LayerKind::FusionConv:
      return "fusion";
    case LayerKind::UpConv:
      return "up";
    case LayerKind::Head:
      return "head";
  }
  return "?";
}

ConvBlockImpl::ConvBlockImpl(int64_t in, int64_t out, Int3 kernel, Int3 stride, int shift)
    : shift_size(shift) {
  conv = register_module("conv", torch::nn::Conv3d(torch::nn::Conv3dOptions(in, out, expand(kernel))
                                                       .stride(expand(stride))
                                                       .padding(expand(half_of(kernel)))
                                                       .bias(true)));
  norm = register_module(
      "norm", torch::nn::InstanceNorm3d(torch::nn::InstanceNorm3dOptions(out).eps(1e-5).affine(true)));
}

torch::Tensor ConvBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = conv->forward(depth_shift(x, shift_size));
  return torch::leaky_relu(norm->forward(h), 0.01);
}

E2ENetImpl::E2ENetImpl(const ModelConfig& config) : config_(config) {
  build_backbone();
  build_fusion();
  build_heads();
  init_weights();
}

ConvBlock E2ENetImpl::add_block(const std::string& name, LayerKind kind, int in_level, int out_level,
                                int64_t in, int64_t out, Int3 stride, bool shift) {
  ConvBlock block(in, out, config_.conv_kernel, stride, shift ? config_.shift_size : 0);
  register_module(module_name(name), block);
  LayerInfo info;
  info.name = name;
  info.kind = kind;
  info.in_level = in_level;
  info.out_level = out_level;
  info.weight = block->conv->weight;
  info.bias_params = block->conv->bias.numel();
  info.norm_params = block->norm->weight.numel() + block->norm->bias.numel();
  info.kernel = config_.conv_kernel;
  info.stride = stride;
  info.padding = half_of(config_.conv_kernel);
  info.masked = kind == LayerKind::FusionConv;
  info.level0_fusion = kind == LayerKind::FusionConv && out_level == 0;
  layers_.push_back(info);
  return block;
}

void E2ENetImpl::build_backbone() {
  const Int3 unit{1, 1, 1};
  for (int level = 0; level < config_.levels; ++level) {
    const int64_t out = config_.channels(level);
    const int64_t in = level == 0 ? config_.in_channels : config_.channels(level - 1);
    const Int3 stride = level == 0 ? unit : config_.pools[level - 1];
    const std::string prefix = "enc" + std::to_string(level);
    const bool shift_first = level > 0 || config_.shift_input;
    backbone_.push_back(
        {add_block(prefix + ".conv0", LayerKind::BackboneConv, std::max(level - 1, 0), level, in, out, stride,
                   shift_first),
         add_block(prefix + ".conv1", LayerKind::BackboneConv, level, level, out, out, unit, true)});
  }
}

void E2ENetImpl::build_fusion() {
  const int stages = config_.levels - 1;
  for (int stage = 1; stage <= stages; ++stage) {
    for (int column = 1; column <= stage; ++column) {
      FusionNode node;
      node.level = stage - column;
      node.column = column;
      const int i = node.level;
      const std::string name = node_name(i, column);
      const Int3 pool = config_.pools[i];  // between level i and i + 1
      node.up = register_module(
          module_name(name + ".up"),
          torch::nn::ConvTranspose3d(
              torch::nn::ConvTranspose3dOptions(config_.channels(i + 1), config_.channels(i), expand(pool))
                  .stride(expand(pool))
                  .bias(false)));
      LayerInfo up;
      up.name = name + ".up";
      up.kind = LayerKind::UpConv;
      up.in_level = i + 1;
      up.out_level = i;
      up.weight = node.up->weight;
      up.kernel = pool;
      up.stride = pool;
      up.masked = true;
      layers_.push_back(up);

      const int64_t out = config_.channels(i);
      const int64_t concat = 2 * out + (i > 0 ? config_.channels(i - 1) : 0);
      const int convs = stage == stages ? 2 : 1;
      for (int c = 0; c < convs; ++c)
        node.convs.push_back(add_block(name + ".conv" + std::to_string(c), LayerKind::FusionConv, i, i,
                                       c == 0 ? concat : out, out, {1, 1, 1}, true));
      nodes_.push_back(std::move(node));
    }
  }
}

void E2ENetImpl::build_heads() {
  const int last_head_level = std::min(3, config_.levels - 2);
  for (int level = 0; level <= last_head_level; ++level) {
    auto head = register_module(
        "head" + std::to_string(level),
        torch::nn::Conv3d(
            torch::nn::Conv3dOptions(config_.channels(level), config_.num_classes, 1).bias(false)));
    heads_.push_back(head);
    head_columns_.push_back(config_.levels - 1 - level);
    LayerInfo info;
    info.name = "head" + std::to_string(level);
    info.kind = LayerKind::Head;
    info.in_level = level;
    info.out_level = level;
    info.weight = head->weight;
    layers_.push_back(info);
  }
}

void E2ENetImpl::init_weights() {
  torch::NoGradGuard no_grad;
  for (const LayerInfo& layer : layers_) {
    torch::Tensor w = layer.weight;
    torch::nn::init::kaiming_normal_(w, 0.01);
  }
  for (auto& module : modules(/*include_self=*/false))
    if (auto* block = module->as<ConvBlockImpl>()) block->conv->bias.zero_();
}

std::vector<LayerInfo> E2ENetImpl::masked_layers() const {
  std::vector<LayerInfo> out;
  for (const LayerInfo& layer : layers_)
    if (layer.masked) out.push_back(layer);
  return out;
}

std::vector<double> E2ENetImpl::deep_supervision_weights() const {
  std::vector<double> weights;
  double total = 0;
  for (int k = 0; k < num_heads(); ++k) total += weights.emplace_back(1.0 / (1 << k));
  for (double& w : weights) w /= total;
  return weights;
}

torch::Tensor E2ENetImpl::run_node(FusionNode& node, const std::vector<std::vector<torch::Tensor>>& x) {
  const int i = node.level;
  const int j = node.column;
  std::vector<torch::Tensor> inputs{x[i][j - 1], node.up->forward(x[i + 1][j - 1])};
  if (i > 0) {
    const Int3& pool = config_.pools[i - 1];
    inputs.push_back(torch::max_pool3d(x[i - 1][j - 1], expand(pool), expand(pool)));
  }
  torch::Tensor h = torch::cat(inputs, 1);
  for (ConvBlock& conv : node.convs) h = conv->forward(h);
  return h;
}

std::vector<torch::Tensor> E2ENetImpl::forward(const torch::Tensor& input) {
  TORCH_CHECK(input.dim() == 5 && input.size(1) == config_.in_channels, "E2ENet expects N×",
              config_.in_channels, "×D×H×W input, got ", input.sizes());
  const int levels = config_.levels;
  std::vector<std::vector<torch::Tensor>> x(levels, std::vector<torch::Tensor>(levels));
  torch::Tensor h = input;
  for (int level = 0; level < levels; ++level) {
    for (ConvBlock& block : backbone_[level]) h = block->forward(h);
    x[level][0] = h;
  }
  for (FusionNode& node : nodes_) x[node.level][node.column] = run_node(node, x);

  const bool all_heads = is_training() && config_.deep_supervision;
  std::vector<torch::Tensor> outputs;
  for (int k = 0; k < (all_heads ? num_heads() : 1); ++k)
    outputs.push_back(heads_[k]->forward(x[k][head_columns_[k]]));
  return outputs;
}

}  // namespace e2e
