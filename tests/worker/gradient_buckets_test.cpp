#include "worker/gradient_buckets.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace e2e {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Two ranks with identical gradients: every all-reduce doubles its buffer when waited for, so the averages
// equal the local gradients. Records a copy of each buffer as launched.
class TwinCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 2; }
  std::string backend() const override { return "twin"; }
  void broadcast(torch::Tensor&, int) override {}
  void all_reduce_sum(torch::Tensor& tensor) override { tensor.mul_(2); }
  void all_reduce_sum(std::vector<double>&) override {}
  void broadcast_bytes(std::string&, int) override {}
  void barrier() override {}

  std::unique_ptr<PendingCollective> start_all_reduce_sum(torch::Tensor& tensor) override {
    struct Doubling : PendingCollective {
      explicit Doubling(torch::Tensor t) : tensor(std::move(t)) {}
      void wait() override {
        if (!done) tensor.mul_(2);
        done = true;
      }
      torch::Tensor tensor;
      bool done = false;
    };
    launched.push_back(tensor.clone());
    return std::make_unique<Doubling>(tensor);
  }

  std::vector<torch::Tensor> launched;
};

// Parameters of 1, 2, 3 and 4 elements; 4-byte buckets hold one each: bucket b = parameter 3 - b.
std::vector<torch::Tensor> four_parameters() {
  std::vector<torch::Tensor> parameters;
  for (int64_t n = 1; n <= 4; ++n) parameters.push_back(torch::linspace(0.5, 1.5, n).requires_grad_(true));
  return parameters;
}

// A chain: backward produces the gradient of the parameter used last first.
torch::Tensor chain_loss(const std::vector<torch::Tensor>& parameters,
                         const std::vector<std::size_t>& order) {
  torch::Tensor h = torch::ones({});
  for (std::size_t k : order) h = h * (parameters[k] * parameters[k]).sum();
  return h;
}

std::vector<int64_t> launched_sizes(const TwinCommunicator& comm) {
  std::vector<int64_t> sizes;
  for (const auto& t : comm.launched) sizes.push_back(t.numel());
  return sizes;
}

std::vector<torch::Tensor> local_gradients(const std::vector<torch::Tensor>& parameters,
                                           const std::vector<std::size_t>& order) {
  std::vector<torch::Tensor> copies;
  for (const auto& p : parameters) copies.push_back(p.detach().clone().requires_grad_(true));
  chain_loss(copies, order).backward();
  std::vector<torch::Tensor> gradients;
  for (const auto& p : copies) gradients.push_back(p.grad().defined() ? p.grad() : torch::Tensor());
  return gradients;
}

class GradientBucketsTest : public ::testing::Test {
 protected:
  // Runs one bucketed step; `arrivals` gets the number of launched buckets after each gradient.
  void step(const std::vector<std::size_t>& order) {
    for (auto& p : parameters_) p.mutable_grad() = torch::Tensor();
    buckets_.prepare();
    chain_loss(parameters_, order).backward();
    launched_before_finish_ = comm_.launched.size();
    buckets_.finish();
  }
  void expect_local_averages(const std::vector<std::size_t>& order) {
    const auto expected = local_gradients(parameters_, order);
    for (std::size_t k = 0; k < parameters_.size(); ++k) {
      ASSERT_EQ(parameters_[k].grad().defined(), expected[k].defined()) << "parameter " << k;
      if (expected[k].defined()) {
        EXPECT_TRUE(torch::allclose(parameters_[k].grad(), expected[k])) << "parameter " << k;
      }
    }
  }

  TwinCommunicator comm_;
  std::vector<torch::Tensor> parameters_ = four_parameters();
  GradientBuckets buckets_{parameters_, comm_, /*bucket_bytes=*/4};
  std::shared_ptr<std::vector<std::size_t>> arrivals_ = std::make_shared<std::vector<std::size_t>>();
  std::size_t launched_before_finish_ = 0;

  void SetUp() override {
    for (auto& p : parameters_) {
      auto arrivals = arrivals_;
      const TwinCommunicator* comm = &comm_;
      p.register_hook([arrivals, comm](torch::Tensor) { arrivals->push_back(comm->launched.size()); });
    }
  }
};

TEST_F(GradientBucketsTest, LaunchesEachBucketAsItCompletesDuringBackward) {
  ASSERT_EQ(buckets_.bucket_count(), 4);
  step({0, 1, 2, 3});  // gradients arrive for 3, 2, 1, 0: buckets 0..3 in order
  EXPECT_THAT(*arrivals_, ElementsAre(1u, 2u, 3u, 4u));
  EXPECT_EQ(launched_before_finish_, 4u);
  EXPECT_THAT(launched_sizes(comm_), ElementsAre(4, 3, 2, 1));
  expect_local_averages({0, 1, 2, 3});
}

TEST_F(GradientBucketsTest, LateBucketHoldsBackTheLaterOnes) {
  step({3, 2, 1, 0});  // gradients arrive for 0, 1, 2, 3: bucket 3 first, bucket 0 last
  EXPECT_THAT(*arrivals_, ElementsAre(0u, 0u, 0u, 4u));
  EXPECT_THAT(launched_sizes(comm_), ElementsAre(4, 3, 2, 1));  // still in bucket order
  expect_local_averages({3, 2, 1, 0});
}

TEST_F(GradientBucketsTest, UnusedParameterSendsZerosAndKeepsNoGradient) {
  step({0, 1, 3});  // parameter 2 (bucket 1) unused: buckets 1..3 wait for finish()
  EXPECT_EQ(launched_before_finish_, 1u);
  ASSERT_THAT(launched_sizes(comm_), ElementsAre(4, 3, 2, 1));
  EXPECT_TRUE(torch::equal(comm_.launched[1], torch::zeros({3})));
  EXPECT_FALSE(parameters_[2].grad().defined());
  expect_local_averages({0, 1, 3});
}

TEST_F(GradientBucketsTest, SecondBackwardInOneStepIsAnError) {
  buckets_.prepare();
  torch::Tensor loss = chain_loss(parameters_, {0, 1, 2, 3});
  loss.backward({}, /*retain_graph=*/true);
  try {
    loss.backward();
    FAIL() << "no error for a second backward";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), HasSubstr("received a second gradient"));
  }
}

TEST_F(GradientBucketsTest, StepsRepeatWithTheSameBuffers) {
  step({0, 1, 2, 3});
  const torch::Tensor first_grad = parameters_[3].grad().clone();
  for (auto& p : parameters_) p.mutable_grad().zero_();  // zero_grad(set_to_none=false)
  comm_.launched.clear();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : parameters_) p.mul_(2);
  }
  buckets_.prepare();
  chain_loss(parameters_, {0, 1, 2, 3}).backward();
  buckets_.finish();
  EXPECT_THAT(launched_sizes(comm_), ElementsAre(4, 3, 2, 1));
  expect_local_averages({0, 1, 2, 3});
  EXPECT_FALSE(torch::allclose(parameters_[3].grad(), first_grad));
}

TEST(GradientBuckets, HooksAreInactiveOutsideAStep) {
  TwinCommunicator comm;
  std::vector<torch::Tensor> parameters = four_parameters();
  GradientBuckets buckets(parameters, comm, 4);
  chain_loss(parameters, {0, 1, 2, 3}).backward();
  EXPECT_TRUE(comm.launched.empty());
}

}  // namespace
}  // namespace e2e
