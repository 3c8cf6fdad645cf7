#include "model/sparse_inference.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "model/depth_shift.hpp"
#include "model/dsff.hpp"
#include "test_util.hpp"

namespace e2e {
namespace {

// Every weight of `net` random (so no active kernel is zero by chance), then masked at `sparsity`.
Dsff sparse_net(E2ENet& net, double sparsity, std::optional<double> level0_density = std::nullopt,
                uint64_t seed = 3) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(static_cast<int64_t>(seed));
  for (auto& p : net->parameters()) p.copy_(torch::randn_like(p) * 0.3);
  DsffOptions options;
  options.sparsity = sparsity;
  options.level0_density = level0_density;
  options.seed = seed;
  options.update_interval = 2;
  options.total_iterations = 100;
  Dsff dsff(net->masked_layers(), options);
  dsff.initialize();
  net->eval();
  return dsff;
}

// |sparse − dense| ≤ 1e-4 · max |dense| over the whole logit map.
void expect_close(const torch::Tensor& sparse, const torch::Tensor& dense, const std::string& what) {
  ASSERT_EQ(sparse.sizes(), dense.sizes()) << what;
  const double scale = dense.abs().max().item<double>();
  const double error = (sparse - dense).abs().max().item<double>();
  EXPECT_LE(error, 1e-4 * scale) << what << ": max error " << error << " for logits up to " << scale;
}

void expect_sparse_equals_dense(E2ENet& net, const torch::Tensor& input, const std::string& what) {
  torch::NoGradGuard no_grad;
  const torch::Tensor dense = net->forward(input)[0];
  SparseE2ENet sparse(net);
  EXPECT_EQ(sparse.sparse_layers(), sparse.masked_layers()) << what << ": " << sparse.summary();
  expect_close(sparse.forward(input), dense, what);
}

TEST(SparseKernels, EveryKernelComputesTheSameRowsForAnyLength) {
  torch::manual_seed(1);
  const int64_t rows = 5, sources = 7;
  const torch::Tensor data = torch::randn({sources, 300});
  std::vector<int32_t> row_start{0};
  std::vector<float> weight;
  std::vector<int64_t> which;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t s = 0; s < sources; s += 1 + r % 3) {
      weight.push_back(0.5f + static_cast<float>(s) - static_cast<float>(r));
      which.push_back(s);
    }
    row_start.push_back(static_cast<int32_t>(weight.size()));
  }
  for (int64_t length : {1, 7, 16, 17, 63, 64, 65, 128, 129, 255, 300}) {
    std::vector<const float*> source;
    for (int64_t s : which) source.push_back(data.data_ptr<float>() + s * 300);
    std::vector<std::vector<float>> outputs;
    for (SparseKernel kernel : {SparseKernel::Scalar, SparseKernel::Avx2, SparseKernel::Avx512}) {
      const int64_t stride = 301;  // one guard value past the longest row
      std::vector<float> out(rows * stride, -1.0f);
      SparseRowsCall call{rows, row_start.data(), weight.data(), source.data(), length, out.data(), stride};
      sparse_rows(call, resolve_sparse_kernel(kernel));
      for (int64_t r = 0; r < rows; ++r)
        EXPECT_EQ(out[r * stride + length], -1.0f)
            << "wrote past length " << length << ", " << to_string(kernel);
      outputs.push_back(out);
    }
    for (std::size_t k = 1; k < outputs.size(); ++k)
      for (std::size_t i = 0; i < outputs[0].size(); ++i)
        ASSERT_NEAR(outputs[k][i], outputs[0][i], 1e-4) << "length " << length << " kernel " << k;
  }
}

// The register-blocked whole-kernel 3×3 conv (AVX-512) against its scalar reference, over widths and heights
// that leave every remainder of its 4-row × 64-column tiles and its border masks, with a kernel reading no
// plane (nullptr: shifted past the volume), writing only the rows it was given.
TEST(SparseKernels, Conv3x3MatchesTheScalarReferenceForAnyPlaneShape) {
  if (!sparse_conv3x3_vectorized(SparseKernel::Auto)) GTEST_SKIP() << "no AVX-512 on this CPU";
  torch::manual_seed(3);
  const int64_t out_channels = 3, kernels_per_output = 2, kernels = kernels_per_output * out_channels;
  for (int64_t height : {1, 3, 4, 5, 9})
    for (int64_t width : {1, 2, 15, 16, 17, 63, 64, 65, 130}) {
      const torch::Tensor planes = torch::randn({kernels, height, width});
      const torch::Tensor weights = torch::randn({kernels, 9});
      const torch::Tensor bias = torch::randn({out_channels});
      const std::vector<float> zeros(width + 32, 0.0f);
      std::vector<int32_t> kernel_start;
      std::vector<const float*> source;
      for (int64_t o = 0; o <= out_channels; ++o)
        kernel_start.push_back(static_cast<int32_t>(o * kernels_per_output));
      for (int64_t k = 0; k < kernels; ++k)
        source.push_back(k == 3 ? nullptr : planes.data_ptr<float>() + k * height * width);
      const int64_t row_begin = height > 2 ? 1 : 0, row_end = height;
      std::vector<std::vector<float>> outputs;
      for (SparseKernel kernel : {SparseKernel::Scalar, SparseKernel::Avx512}) {
        std::vector<float> out(out_channels * height * width, -7.0f);
        SparseConv3x3Call call;
        call.out_channels = out_channels;
        call.kernel_start = kernel_start.data();
        call.weight = weights.data_ptr<float>();
        call.source = source.data();
        call.zero_row = zeros.data() + 16;
        call.bias = bias.data_ptr<float>();
        call.height = height;
        call.width = width;
        call.row_begin = row_begin;
        call.row_end = row_end;
        call.out = out.data();
        call.out_channel_stride = height * width;
        sparse_conv3x3(call, kernel);
        for (int64_t o = 0; o < out_channels; ++o)
          for (int64_t x = 0; x < row_begin * width; ++x)
            ASSERT_EQ(out[o * height * width + x], -7.0f)
                << "wrote a row before row_begin, " << to_string(kernel);
        outputs.push_back(out);
      }
      // The scalar reference against a direct 2D convolution of the same planes.
      const torch::Tensor kept = torch::ones({kernels, 1, 1}).index_put_({3}, 0.0) * planes;
      for (int64_t o = 0; o < out_channels; ++o) {
        const torch::Tensor x =
            kept.slice(0, o * kernels_per_output, (o + 1) * kernels_per_output).unsqueeze(0);
        const torch::Tensor w =
            weights.slice(0, o * kernels_per_output, (o + 1) * kernels_per_output).reshape({1, -1, 3, 3});
        const torch::Tensor expected = torch::conv2d(x, w, bias.slice(0, o, o + 1), 1, 1).reshape({-1});
        for (int64_t i = row_begin * width; i < height * width; ++i)
          ASSERT_NEAR(outputs[0][o * height * width + i], expected[i].item<float>(), 1e-4)
              << height << "x" << width << " scalar at " << i;
      }
      for (std::size_t i = 0; i < outputs[0].size(); ++i)
        ASSERT_NEAR(outputs[1][i], outputs[0][i], 1e-4) << height << "x" << width << " at " << i;
    }
}

TEST(SparseKernels, ParseNamesTheBadValue) {
  EXPECT_EQ(parse_sparse_kernel("avx2"), SparseKernel::Avx2);
  try {
    parse_sparse_kernel("sse");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'sse'"), std::string::npos);
  }
}

// One fusion conv against Conv3d(depth_shift(cat(sources))) for shift sizes 0, 3 and 5.
TEST(SparseFusionConv, EqualsTheShiftedConcatenatedDenseConv) {
  torch::manual_seed(2);
  for (int shift : {0, 3, 5}) {
    const std::vector<torch::Tensor> sources{torch::randn({2, 5, 4, 7, 9}), torch::randn({2, 3, 4, 7, 9}),
                                             torch::randn({2, 6, 4, 7, 9})};
    torch::Tensor weight = torch::randn({6, 14, 1, 3, 3});
    weight *= (torch::rand({6, 14, 1, 1, 1}) < 0.3).to(torch::kFloat32);
    weight.index_put_({torch::indexing::Slice(), 4}, 0.0);  // an input channel no kernel reads
    const torch::Tensor bias = torch::randn({6});
    const PackedFusionConv packed = pack_fusion_conv("test", weight, bias, shift);
    EXPECT_TRUE(std::find(packed.used_channels.begin(), packed.used_channels.end(), 4) ==
                packed.used_channels.end());
    const torch::Tensor dense = torch::conv3d(depth_shift(torch::cat(sources, 1), shift), weight, bias, 1,
                                              torch::ExpandingArray<3>({0, 1, 1}));
    for (SparseKernel kernel : {SparseKernel::Scalar, SparseKernel::Auto})
      expect_close(sparse_fusion_conv(packed, sources, kernel), dense,
                   "shift " + std::to_string(shift) + " " + to_string(kernel));
  }
}

TEST(SparseUpConv, EqualsTheDenseTransposedConv) {
  torch::manual_seed(4);
  for (const Int3& pool : {Int3{2, 2, 2}, Int3{1, 2, 2}, Int3{2, 1, 3}}) {
    const torch::Tensor x = torch::randn({2, 6, 3, 5, 4});
    torch::Tensor weight = torch::randn({6, 4, pool[0], pool[1], pool[2]});
    weight *= (torch::rand({6, 4, 1, 1, 1}) < 0.4).to(torch::kFloat32);
    const PackedUpConv packed = pack_up_conv("test", weight);
    const torch::Tensor dense =
        torch::conv_transpose3d(x, weight, {}, torch::ExpandingArray<3>({pool[0], pool[1], pool[2]}));
    expect_close(sparse_up_conv(packed, x), dense, "pool " + std::to_string(pool[1]));
  }
}

TEST(SparseE2ENet, TinyNetEqualsTheDenseMaskedPathAtEverySparsity) {
  for (const std::vector<Int3>& pools : {std::vector<Int3>{{2, 2, 2}, {2, 2, 2}},     // cubic
                                         std::vector<Int3>{{1, 2, 2}, {2, 2, 2}}}) {  // planned anisotropic
    ModelConfig model = test::tiny_model();
    model.pools = pools;
    for (double s : {0.5, 0.8, 0.9, 0.95}) {
      E2ENet net(model);
      sparse_net(net, s);
      expect_sparse_equals_dense(
          net, torch::randn({2, 1, 8, 16, 12}),
          "tiny, first pool depth " + std::to_string(pools[0][0]) + ", s " + std::to_string(s));
    }
  }
}

TEST(SparseE2ENet, AmosArchitectureEqualsTheDenseMaskedPath) {
  const ModelConfig amos = test::load_repo_config("amos.yaml").model;
  for (double s : {0.5, 0.8, 0.9, 0.95}) {
    E2ENet net(amos);
    sparse_net(net, s);
    expect_sparse_equals_dense(net, torch::randn({1, 1, 32, 32, 32}), "AMOS s " + std::to_string(s));
  }
  ModelConfig anisotropic = amos;
  anisotropic.pools[0] = {1, 2, 2};
  E2ENet net(anisotropic);
  sparse_net(net, 0.7, /*level0_density=*/0.2);
  expect_sparse_equals_dense(net, torch::randn({1, 1, 16, 32, 32}), "AMOS, pool (1,2,2), level0_density 0.2");
}

// Prune/regrow updates (regrown kernels start at zero), then a save/load round trip with the masks applied
// again as load_prediction_model does.
TEST(SparseE2ENet, TopologyAfterUpdatesLoadedFromACheckpointStaysExact) {
  E2ENet trained(test::tiny_model());
  Dsff dsff = sparse_net(trained, 0.8);
  {
    torch::NoGradGuard no_grad;
    for (int64_t iteration = 2; iteration <= 6; iteration += 2) {
      for (auto& p : trained->parameters()) p.add_(torch::randn_like(p) * 0.1);
      dsff.apply();
      dsff.update(iteration);
    }
  }
  std::stringstream weights;
  torch::serialize::OutputArchive out;
  trained->save(out);
  out.save_to(weights);
  const std::string topology = dsff.topology().serialize();

  E2ENet loaded(test::tiny_model());
  torch::serialize::InputArchive in;
  in.load_from(weights);
  loaded->load(in);
  Dsff masks(loaded->masked_layers(), DsffOptions{});
  masks.set_topology(Topology::deserialize(topology));
  masks.apply();
  loaded->eval();
  expect_sparse_equals_dense(loaded, torch::randn({1, 1, 8, 16, 16}), "after updates, loaded");
}

TEST(SparseE2ENet, LayersDenserThanTheThresholdStayDenseAndStillAgree) {
  E2ENet net(test::tiny_model());
  sparse_net(net, 0.5);
  const torch::Tensor input = torch::randn({1, 1, 8, 16, 16});
  torch::NoGradGuard no_grad;
  const torch::Tensor dense = net->forward(input)[0];

  SparseInferenceOptions all_dense;
  all_dense.max_density = -1;
  SparseE2ENet reference(net, all_dense);
  EXPECT_EQ(reference.sparse_layers(), 0);
  const int64_t before = sparse_forward_passes();
  expect_close(reference.forward(input), dense, "all dense");
  EXPECT_EQ(sparse_forward_passes(), before) << "no layer ran sparsely";

  SparseInferenceOptions strict;
  strict.max_density = 0.4;  // the tiny net's density-0.5 tensors stay dense
  EXPECT_EQ(SparseE2ENet(net, strict).sparse_layers(), 0);
  SparseE2ENet sparse(net);
  EXPECT_EQ(sparse.sparse_layers(), sparse.masked_layers());
  expect_close(sparse.forward(input), dense, "all sparse");
  EXPECT_EQ(sparse_forward_passes(), before + 1);
}

}  // namespace
}  // namespace e2e
