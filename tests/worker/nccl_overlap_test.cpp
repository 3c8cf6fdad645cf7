// The NCCL communicator's streams and events on one GPU (a communicator of one rank runs real NCCL calls).
// Skipped where this build has no NCCL or no GPU is present.
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "worker/gradient_buckets.hpp"
#include "worker/mpi_communicator.hpp"

namespace e2e {
namespace {

class NcclOverlapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!nccl_available() || !torch::cuda::is_available()) GTEST_SKIP() << "needs NCCL and a GPU";
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
    ensure_mpi_initialized();
    if (!comm_) comm_ = make_nccl_communicator(MPI_COMM_SELF, 0);
  }
  static void TearDownTestSuite() { comm_.reset(); }  // before MPI and CUDA shut down at exit
  static std::unique_ptr<Communicator> comm_;
};

std::unique_ptr<Communicator> NcclOverlapTest::comm_;

TEST_F(NcclOverlapTest, CollectivesFollowAndPrecedeTheComputeStream) {
  const auto cuda = torch::TensorOptions().device(torch::kCUDA, 0);
  for (int round = 0; round < 3; ++round) {
    // Large enough that a missing event would let the all-reduce read the buffer before the fill.
    torch::Tensor t = torch::zeros({int64_t{1} << 24}, cuda);
    t.fill_(round + 1.0);
    auto pending = comm_->start_all_reduce_sum(t);
    pending->wait();
    EXPECT_EQ(t.sum().item<double>(), (round + 1.0) * t.numel());
    comm_->broadcast(t, 0);
    comm_->all_reduce_sum(t);
    EXPECT_EQ(t.min().item<double>(), round + 1.0);
  }
}

// Backward on a side stream: the hooks run with it current, and finish() joins on it.
TEST_F(NcclOverlapTest, BucketsMatchLocalGradientsOnAnyComputeStream) {
  const auto cuda = torch::TensorOptions().device(torch::kCUDA, 0);
  torch::manual_seed(3);
  std::vector<torch::Tensor> parameters;
  for (int64_t n : {4096, 64, 1 << 18, 7, 1 << 16})
    parameters.push_back(torch::randn({n}, cuda).requires_grad_(true));
  auto loss_of = [&] {
    torch::Tensor h = torch::ones({}, cuda);
    for (const auto& p : parameters) h = h + (p * p).sin().sum() * h.detach().tanh();
    return h;
  };
  GradientBuckets buckets(parameters, *comm_, /*bucket_bytes=*/1 << 16);
  ASSERT_GE(buckets.bucket_count(), 3);
  // Through the device-generic interface: this file also compiles against a LibTorch without CUDA.
  const c10::Stream side = c10::impl::VirtualGuardImpl(c10::DeviceType::CUDA)
                               .getStreamFromGlobalPool(torch::Device(torch::kCUDA, 0));
  for (int step = 0; step < 3; ++step) {
    std::vector<torch::Tensor> expected;
    for (auto& p : parameters) p.mutable_grad() = torch::Tensor();
    loss_of().backward();
    for (auto& p : parameters) expected.push_back(p.grad().clone());
    for (auto& p : parameters) p.mutable_grad() = torch::Tensor();
    {
      c10::StreamGuard guard(side);
      buckets.prepare();
      loss_of().backward();
      buckets.finish();
    }
    torch::cuda::synchronize();
    for (std::size_t k = 0; k < parameters.size(); ++k)
      EXPECT_TRUE(torch::allclose(parameters[k].grad(), expected[k]))
          << "step " << step << " parameter " << k;
  }
}

}  // namespace
}  // namespace e2e
