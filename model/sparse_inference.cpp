#include "model/sparse_inference.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "model/depth_shift.hpp"

namespace e2e {

namespace {

std::atomic<int64_t> sparse_passes{0};

// Output positions handled by one task: long enough to amortize the row set-up, short enough that the
// neighbouring input rows of every used channel stay in L2 (96 channels × ~3 rows of 130 floats).
constexpr int64_t kChunk = 512;
// Output rows per task of the whole-kernel 3×3 path (a multiple of its 4-row register block).
constexpr int64_t kRowBlock = 8;

torch::ExpandingArray<3> expand(const Int3& v) {
  return torch::ExpandingArray<3>({v[0], v[1], v[2]});
}

template <typename Module>
std::shared_ptr<Module> child(const E2ENet& net, const std::string& name) {
  for (const auto& item : net->named_children())
    if (item.key() == name) {
      auto module = std::dynamic_pointer_cast<Module>(item.value());
      if (!module)
        throw std::invalid_argument("sparse inference: module " + name + " has an unexpected type");
      return module;
    }
  return nullptr;
}

template <typename Module>
std::shared_ptr<Module> required_child(const E2ENet& net, const std::string& name) {
  auto module = child<Module>(net, name);
  if (!module) throw std::invalid_argument("sparse inference: the network has no module " + name);
  return module;
}

void check_cpu_float(const torch::Tensor& t, const char* what) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.dim() == 5,
              "sparse inference: ", what, " must be a 5-D float32 CPU tensor, got ", t.sizes(), " ",
              t.dtype(), " on ", t.device());
}

}  // namespace

int64_t sparse_forward_passes() {
  return sparse_passes.load();
}

// ------------------------------------------------------------------------------------------ packing

PackedFusionConv pack_fusion_conv(const std::string& name, const torch::Tensor& weight,
                                  const torch::Tensor& bias, int shift_size) {
  if (weight.dim() != 5 || weight.size(2) != 1 || weight.size(3) % 2 == 0 || weight.size(4) % 2 == 0)
    throw std::invalid_argument(name + ": sparse fusion convs need a (1, odd, odd) kernel, got weight " +
                                fmt::format("[{}]", fmt::join(weight.sizes(), ", ")));
  const torch::Tensor w = weight.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  PackedFusionConv p;
  p.name = name;
  p.out_channels = w.size(0);
  p.in_channels = w.size(1);
  p.kernel_h = static_cast<int>(w.size(3));
  p.kernel_w = static_cast<int>(w.size(4));
  const int taps = p.kernel_h * p.kernel_w;
  const int64_t chunk = shift_size > 1 ? (p.in_channels + shift_size - 1) / shift_size : p.in_channels;
  const float* data = w.data_ptr<float>();
  std::vector<bool> used(p.in_channels, false);
  const bool whole = p.kernel_h == 3 && p.kernel_w == 3;
  p.row_start.push_back(0);
  if (whole) p.kernel_start.push_back(0);
  for (int64_t o = 0; o < p.out_channels; ++o) {
    for (int64_t i = 0; i < p.in_channels; ++i) {
      const float* kernel = data + (o * p.in_channels + i) * taps;
      if (whole && std::any_of(kernel, kernel + taps, [](float v) { return v != 0.0f; })) {
        p.kernel_channel.push_back(static_cast<int32_t>(i));
        p.kernel_shift.push_back(shift_size > 1 ? static_cast<int32_t>(i / chunk - shift_size / 2) : 0);
        p.kernel_weight.insert(p.kernel_weight.end(), kernel, kernel + taps);
      }
      bool active = false;
      for (int t = 0; t < taps; ++t) {
        if (kernel[t] == 0.0f) continue;
        active = true;
        p.channel.push_back(static_cast<int32_t>(i));
        p.tap.push_back(t);
        p.depth_shift.push_back(shift_size > 1 ? static_cast<int32_t>(i / chunk - shift_size / 2) : 0);
        p.weight.push_back(kernel[t]);
      }
      if (active) {
        ++p.active_kernels;
        used[i] = true;
      }
    }
    p.row_start.push_back(static_cast<int32_t>(p.weight.size()));
    if (whole) p.kernel_start.push_back(static_cast<int32_t>(p.kernel_channel.size()));
  }
  for (int64_t i = 0; i < p.in_channels; ++i)
    if (used[i]) p.used_channels.push_back(static_cast<int32_t>(i));
  p.bias.assign(p.out_channels, 0.0f);
  if (bias.defined()) {
    const torch::Tensor b = bias.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    std::copy(b.data_ptr<float>(), b.data_ptr<float>() + p.out_channels, p.bias.begin());
  }
  return p;
}

PackedUpConv pack_up_conv(const std::string& name, const torch::Tensor& weight) {
  if (weight.dim() != 5)
    throw std::invalid_argument(name + ": expected a 5-D transposed-conv weight, got " +
                                std::to_string(weight.dim()) + " dims");
  const torch::Tensor w = weight.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  PackedUpConv p;
  p.name = name;
  p.in_channels = w.size(0);
  p.out_channels = w.size(1);
  p.kernel = {w.size(2), w.size(3), w.size(4)};
  const int64_t taps = p.kernel[0] * p.kernel[1] * p.kernel[2];
  const float* data = w.data_ptr<float>();
  for (int64_t i = 0; i < p.in_channels; ++i)
    for (int64_t o = 0; o < p.out_channels; ++o) {
      const float* kernel = data + (i * p.out_channels + o) * taps;
      p.active_kernels += std::any_of(kernel, kernel + taps, [](float v) { return v != 0.0f; }) ? 1 : 0;
    }
  p.row_start.push_back(0);
  for (int64_t t = 0; t < taps; ++t)
    for (int64_t o = 0; o < p.out_channels; ++o) {
      for (int64_t i = 0; i < p.in_channels; ++i) {
        const float v = data[(i * p.out_channels + o) * taps + t];
        if (v == 0.0f) continue;
        p.channel.push_back(static_cast<int32_t>(i));
        p.weight.push_back(v);
      }
      p.row_start.push_back(static_cast<int32_t>(p.weight.size()));
    }
  return p;
}

// ------------------------------------------------------------------------------------------ layers

namespace {

// Channel c of the concatenated `sources` for sample n: the first of its depth planes ((height + 2·pad_h) ×
// (width + 2·pad_w) floats each) at [n · in_channels + c]. Padded copies (when pad > 0) are kept in `keep`.
std::vector<const float*> concatenated_channels(const PackedFusionConv& conv,
                                                const std::vector<torch::Tensor>& sources, int64_t pad_h,
                                                int64_t pad_w, std::vector<torch::Tensor>& keep) {
  const int64_t n_batch = sources[0].size(0), depth = sources[0].size(2);
  const int64_t height = sources[0].size(3), width = sources[0].size(4);
  const int64_t plane = (height + 2 * pad_h) * (width + 2 * pad_w);
  std::vector<const float*> channel_base(n_batch * conv.in_channels);
  int64_t c0 = 0;
  for (const torch::Tensor& source : sources) {
    check_cpu_float(source, "a fusion input");
    TORCH_CHECK(source.size(0) == n_batch && source.size(2) == depth && source.size(3) == height &&
                    source.size(4) == width,
                conv.name, ": inputs differ in size: ", sources[0].sizes(), " vs ", source.sizes());
    keep.push_back(pad_h || pad_w ? torch::constant_pad_nd(source, {pad_w, pad_w, pad_h, pad_h}).contiguous()
                                  : source.contiguous());
    const int64_t channels = source.size(1);
    TORCH_CHECK(c0 + channels <= conv.in_channels, conv.name, ": inputs hold more than ", conv.in_channels,
                " channels");
    for (int64_t n = 0; n < n_batch; ++n)
      for (int64_t c = 0; c < channels; ++c)
        channel_base[n * conv.in_channels + c0 + c] =
            keep.back().data_ptr<float>() + (n * channels + c) * depth * plane;
    c0 += channels;
  }
  TORCH_CHECK(c0 == conv.in_channels, conv.name, ": inputs hold ", c0, " channels, the conv takes ",
              conv.in_channels);
  return channel_base;
}

// Whole 3×3 kernels on the unpadded inputs, written straight into the output: tasks are (sample, depth,
// block of rows).
torch::Tensor fusion_conv_whole_kernels(const PackedFusionConv& conv,
                                        const std::vector<torch::Tensor>& sources, SparseKernel kernel) {
  std::vector<torch::Tensor> keep;
  const std::vector<const float*> channel_base = concatenated_channels(conv, sources, 0, 0, keep);
  const int64_t n_batch = sources[0].size(0), depth = sources[0].size(2);
  const int64_t height = sources[0].size(3), width = sources[0].size(4), plane = height * width;
  const std::vector<float> zeros(width + 32, 0.0f);  // the rows above and below the plane
  torch::Tensor out = torch::empty({n_batch, conv.out_channels, depth, height, width}, torch::kFloat32);
  float* out_data = out.data_ptr<float>();
  const int64_t kernels = static_cast<int64_t>(conv.kernel_channel.size());
  const int64_t row_blocks = (height + kRowBlock - 1) / kRowBlock;
  at::parallel_for(0, n_batch * depth * row_blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<const float*> source(kernels);
    int64_t cached = -1;  // the (n, d) the source pointers are for
    for (int64_t task = begin; task < end; ++task) {
      const int64_t block = task % row_blocks, nd = task / row_blocks, d = nd % depth, n = nd / depth;
      if (nd != cached) {
        for (int64_t k = 0; k < kernels; ++k) {
          const int64_t source_d = d - conv.kernel_shift[k];
          source[k] = source_d >= 0 && source_d < depth
                          ? channel_base[n * conv.in_channels + conv.kernel_channel[k]] + source_d * plane
                          : nullptr;
        }
        cached = nd;
      }
      SparseConv3x3Call call;
      call.out_channels = conv.out_channels;
      call.kernel_start = conv.kernel_start.data();
      call.weight = conv.kernel_weight.data();
      call.source = source.data();
      call.zero_row = zeros.data() + 16;
      call.bias = conv.bias.data();
      call.height = height;
      call.width = width;
      call.row_begin = block * kRowBlock;
      call.row_end = std::min(height, call.row_begin + kRowBlock);
      call.out = out_data + (n * conv.out_channels * depth + d) * height * width;
      call.out_channel_stride = depth * height * width;
      sparse_conv3x3(call, kernel);
    }
  });
  return out;
}

}  // namespace

torch::Tensor sparse_fusion_conv(const PackedFusionConv& conv, const std::vector<torch::Tensor>& sources,
                                 SparseKernel kernel) {
  TORCH_CHECK(!sources.empty(), conv.name, ": no inputs");
  kernel = resolve_sparse_kernel(kernel);
  if (!conv.kernel_start.empty() && sparse_conv3x3_vectorized(kernel))
    return fusion_conv_whole_kernels(conv, sources, kernel);

  // Otherwise sparse rows over padded planes (H, W only), each tap a fixed offset into its plane.
  const int64_t n_batch = sources[0].size(0), depth = sources[0].size(2);
  const int64_t height = sources[0].size(3), width = sources[0].size(4);
  const int64_t pad_h = conv.kernel_h / 2, pad_w = conv.kernel_w / 2;
  const int64_t padded_w = width + 2 * pad_w, plane = (height + 2 * pad_h) * padded_w;
  std::vector<torch::Tensor> padded;
  const std::vector<const float*> channel_base = concatenated_channels(conv, sources, pad_h, pad_w, padded);
  const std::vector<float> zero_plane(plane, 0.0f);  // what a channel shifted past the volume reads

  std::vector<int64_t> tap_offset(conv.kernel_h * conv.kernel_w);
  for (int t = 0; t < conv.kernel_h * conv.kernel_w; ++t)
    tap_offset[t] = (t / conv.kernel_w - pad_h) * padded_w + (t % conv.kernel_w - pad_w);

  // Outputs are computed over the padded grid from the first to the last real position (the pad columns in
  // between are computed and dropped), so every tap is a fixed offset into its padded plane.
  const int64_t first = pad_h * padded_w + pad_w;
  const int64_t span = (height - 1) * padded_w + width;
  const int64_t chunks = (span + kChunk - 1) / kChunk;
  const int64_t out_c = conv.out_channels;
  torch::Tensor out = torch::empty({n_batch, out_c, depth, height, width}, torch::kFloat32);
  float* out_data = out.data_ptr<float>();
  const int64_t nnz = static_cast<int64_t>(conv.weight.size());

  at::parallel_for(0, n_batch * depth * chunks, 1, [&](int64_t begin, int64_t end) {
    std::vector<const float*> source(nnz);
    std::vector<float> scratch(out_c * kChunk);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t chunk = task % chunks, d = (task / chunks) % depth, n = task / (chunks * depth);
      const int64_t q0 = first + chunk * kChunk, length = std::min(kChunk, span - chunk * kChunk);
      for (int64_t e = 0; e < nnz; ++e) {
        const int64_t source_d = d - conv.depth_shift[e];
        const float* base = source_d >= 0 && source_d < depth
                                ? channel_base[n * conv.in_channels + conv.channel[e]] + source_d * plane
                                : zero_plane.data();
        source[e] = base + q0 + tap_offset[conv.tap[e]];
      }
      SparseRowsCall call;
      call.rows = out_c;
      call.row_start = conv.row_start.data();
      call.weight = conv.weight.data();
      call.source = source.data();
      call.length = length;
      call.out = scratch.data();
      call.out_stride = kChunk;
      sparse_rows(call, kernel);
      // Keep the real positions (drop the pad columns), add the bias.
      for (int64_t k = 0; k < length;) {
        const int64_t q = q0 + k, row = q / padded_w - pad_h, col = q % padded_w - pad_w;
        if (col < 0 || col >= width) {
          k += col < 0 ? -col : padded_w - col;
          continue;
        }
        const int64_t run = std::min(length - k, width - col);
        for (int64_t o = 0; o < out_c; ++o) {
          float* dst = out_data + (((n * out_c + o) * depth + d) * height + row) * width + col;
          const float* src = scratch.data() + o * kChunk + k;
          const float b = conv.bias[o];
          for (int64_t i = 0; i < run; ++i) dst[i] = src[i] + b;
        }
        k += run;
      }
    }
  });
  return out;
}

torch::Tensor sparse_up_conv(const PackedUpConv& conv, const torch::Tensor& x_in, SparseKernel kernel) {
  check_cpu_float(x_in, "the up-conv input");
  TORCH_CHECK(x_in.size(1) == conv.in_channels, conv.name, ": expected ", conv.in_channels,
              " input channels, got ", x_in.size(1));
  kernel = resolve_sparse_kernel(kernel);
  const torch::Tensor x = x_in.contiguous();
  const int64_t n_batch = x.size(0), depth = x.size(2), height = x.size(3), width = x.size(4);
  const int64_t kd = conv.kernel[0], kh = conv.kernel[1], kw = conv.kernel[2];
  const int64_t out_c = conv.out_channels, taps = kd * kh * kw, rows = taps * out_c;
  const int64_t out_d = depth * kd, out_h = height * kh, out_w = width * kw;
  const int64_t plane = height * width, chunks = (plane + kChunk - 1) / kChunk;
  torch::Tensor out = torch::empty({n_batch, out_c, out_d, out_h, out_w}, torch::kFloat32);
  float* out_data = out.data_ptr<float>();
  const float* in_data = x.data_ptr<float>();
  const int64_t nnz = static_cast<int64_t>(conv.weight.size());

  at::parallel_for(0, n_batch * depth * chunks, 1, [&](int64_t begin, int64_t end) {
    std::vector<const float*> source(nnz);
    std::vector<float> scratch(rows * kChunk);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t chunk = task % chunks, d = (task / chunks) % depth, n = task / (chunks * depth);
      const int64_t p0 = chunk * kChunk, length = std::min(kChunk, plane - p0);
      for (int64_t e = 0; e < nnz; ++e)
        source[e] = in_data + ((n * conv.in_channels + conv.channel[e]) * depth + d) * plane + p0;
      SparseRowsCall call;
      call.rows = rows;
      call.row_start = conv.row_start.data();
      call.weight = conv.weight.data();
      call.source = source.data();
      call.length = length;
      call.out = scratch.data();
      call.out_stride = kChunk;
      sparse_rows(call, kernel);
      // Tap (a, b, c) of input voxel (d, h, w) lands on (d·kd + a, h·kh + b, w·kw + c): for each (a, b) the
      // kw taps interleave into one contiguous output row segment (no division per voxel).
      for (int64_t ab = 0; ab < kd * kh; ++ab) {
        const int64_t a = ab / kh, b = ab % kh;
        for (int64_t o = 0; o < out_c; ++o) {
          const float* src = scratch.data() + (ab * kw * out_c + o) * kChunk;  // tap c at + c·out_c·kChunk
          float* dst = out_data + ((n * out_c + o) * out_d + d * kd + a) * out_h * out_w + b * out_w;
          int64_t h = p0 / width, w = p0 % width;
          for (int64_t k = 0; k < length; ++k) {
            float* at = dst + h * kh * out_w + w * kw;
            for (int64_t c = 0; c < kw; ++c) at[c] = src[c * out_c * kChunk + k];
            if (++w == width) w = 0, ++h;
          }
        }
      }
    }
  });
  return out;
}

// ------------------------------------------------------------------------------------------ network

SparseE2ENet::SparseE2ENet(E2ENet net, SparseInferenceOptions options)
    : net_(std::move(net)), config_(net_->config()), kernel_(resolve_sparse_kernel(options.kernel)) {
  torch::NoGradGuard no_grad;
  const int levels = config_.levels;
  for (int level = 0; level < levels; ++level) {
    const std::string prefix = fmt::format("enc{}", level);
    backbone_.push_back({ConvBlock(required_child<ConvBlockImpl>(net_, prefix + "_conv0")),
                         ConvBlock(required_child<ConvBlockImpl>(net_, prefix + "_conv1"))});
  }
  const bool sparse_shape =
      config_.conv_kernel[0] == 1 && config_.conv_kernel[1] % 2 == 1 && config_.conv_kernel[2] % 2 == 1;
  auto kernel_density = [](const torch::Tensor& w) {
    const torch::Tensor active = w.detach().abs().flatten(2).amax(2).ne(0);
    return std::make_pair(active.sum().item<int64_t>(), active.numel());
  };
  for (int stage = 1; stage < levels; ++stage)
    for (int column = 1; column <= stage; ++column) {
      Node node;
      node.level = stage - column;
      node.column = column;
      node.name = fmt::format("x{}_{}", node.level, column);
      node.up =
          torch::nn::ConvTranspose3d(required_child<torch::nn::ConvTranspose3dImpl>(net_, node.name + "_up"));
      const auto [up_active, up_total] = kernel_density(node.up->weight);
      active_kernels_ += up_active;
      total_kernels_ += up_total;
      node.sparse_up = static_cast<double>(up_active) / up_total <= options.max_density;
      if (node.sparse_up) node.packed_up = pack_up_conv(node.name + ".up", node.up->weight);
      for (int c = 0;; ++c) {
        auto block = child<ConvBlockImpl>(net_, node.name + "_conv" + std::to_string(c));
        if (!block) break;
        FusionConvStep step;
        step.block = ConvBlock(block);
        const auto [active, total] = kernel_density(block->conv->weight);
        active_kernels_ += active;
        total_kernels_ += total;
        step.sparse = sparse_shape && static_cast<double>(active) / total <= options.max_density;
        if (step.sparse)
          step.packed = pack_fusion_conv(node.name + ".conv" + std::to_string(c), block->conv->weight,
                                         block->conv->bias, block->shift_size);
        node.convs.push_back(std::move(step));
      }
      if (node.convs.empty())
        throw std::invalid_argument("sparse inference: node " + node.name + " has no conv");
      nodes_.push_back(std::move(node));
    }
  head_ = torch::nn::Conv3d(required_child<torch::nn::Conv3dImpl>(net_, "head0"));
}

int SparseE2ENet::masked_layers() const {
  int count = 0;
  for (const Node& node : nodes_) count += 1 + static_cast<int>(node.convs.size());
  return count;
}

int SparseE2ENet::sparse_layers() const {
  int count = 0;
  for (const Node& node : nodes_) {
    count += node.sparse_up ? 1 : 0;
    for (const FusionConvStep& step : node.convs) count += step.sparse ? 1 : 0;
  }
  return count;
}

double SparseE2ENet::density() const {
  return total_kernels_ > 0 ? static_cast<double>(active_kernels_) / total_kernels_ : 1.0;
}

std::string SparseE2ENet::summary() const {
  return fmt::format("sparse path: {} of {} masked layers (kernel density {:.3f}, {} kernel)",
                     sparse_layers(), masked_layers(), density(), to_string(kernel_));
}

template <typename F>
torch::Tensor SparseE2ENet::timed(const std::string& name, bool sparse, F&& f) {
  if (!profiling_) return f();
  const auto start = std::chrono::steady_clock::now();
  torch::Tensor result = f();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (LayerTime& entry : profile_)
    if (entry.name == name) {
      entry.seconds += seconds;
      return result;
    }
  profile_.push_back({name, sparse, seconds});
  return result;
}

torch::Tensor SparseE2ENet::run_conv(FusionConvStep& step, const std::string& name,
                                     std::vector<torch::Tensor> sources) {
  torch::Tensor h = timed(name, step.sparse, [&] {
    if (step.sparse) return sparse_fusion_conv(step.packed, sources, kernel_);
    const torch::Tensor input = sources.size() == 1 ? sources[0] : torch::cat(sources, 1);
    return step.block->conv->forward(depth_shift(input, step.block->shift_size));
  });
  return timed(name + ".norm", false, [&] { return torch::leaky_relu(step.block->norm->forward(h), 0.01); });
}

torch::Tensor SparseE2ENet::run_node(Node& node, const std::vector<std::vector<torch::Tensor>>& x) {
  const int i = node.level, j = node.column;
  std::vector<torch::Tensor> sources{x[i][j - 1]};
  sources.push_back(timed(node.name + ".up", node.sparse_up, [&] {
    return node.sparse_up ? sparse_up_conv(node.packed_up, x[i + 1][j - 1], kernel_)
                          : node.up->forward(x[i + 1][j - 1]);
  }));
  if (i > 0) {
    const Int3& pool = config_.pools[i - 1];
    sources.push_back(timed(node.name + ".down", false,
                            [&] { return torch::max_pool3d(x[i - 1][j - 1], expand(pool), expand(pool)); }));
  }
  torch::Tensor h = run_conv(node.convs[0], node.name + ".conv0", std::move(sources));
  for (std::size_t c = 1; c < node.convs.size(); ++c)
    h = run_conv(node.convs[c], node.name + ".conv" + std::to_string(c), {h});
  return h;
}

torch::Tensor SparseE2ENet::forward(const torch::Tensor& input) {
  torch::NoGradGuard no_grad;
  check_cpu_float(input, "the input");
  TORCH_CHECK(input.size(1) == config_.in_channels, "E2ENet expects N×", config_.in_channels,
              "×D×H×W input, got ", input.sizes());
  const int levels = config_.levels;
  std::vector<std::vector<torch::Tensor>> x(levels, std::vector<torch::Tensor>(levels));
  torch::Tensor h = input;
  for (int level = 0; level < levels; ++level) {
    h = timed("backbone", false, [&] {
      torch::Tensor y = h;
      for (ConvBlock& block : backbone_[level]) y = block->forward(y);
      return y;
    });
    x[level][0] = h;
  }
  for (Node& node : nodes_) x[node.level][node.column] = run_node(node, x);
  if (sparse_layers() > 0) ++sparse_passes;
  return timed("head0", false, [&] { return head_->forward(x[0][levels - 1]); });
}

}  // namespace e2e
