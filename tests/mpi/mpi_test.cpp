// Run under mpirun (ctest label `mpi`): every rank runs every test in the same order.
#include <gtest/gtest.h>
#include <mpi.h>

#include <filesystem>

#include "../worker/blob_batches.hpp"
#include "configs/hash.hpp"
#include "worker/gradient_buckets.hpp"
#include "worker/mpi_communicator.hpp"

namespace e2e {
namespace {

MpiCommunicator& world() {
  static MpiCommunicator comm(MPI_COMM_WORLD);
  return comm;
}

std::string shared_temp_dir(const std::string& name) {
  std::string dir =
      world().is_leader()
          ? (std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()))).string()
          : std::string();
  world().broadcast_bytes(dir, 0);
  return dir;
}

Config tiny_config() {
  return parse_config(R"(
experiment: mpi-test
model: {levels: 3, base_channels: 4, max_channels: 8, num_classes: 3, pools: [[1, 2, 2], [2, 2, 2]]}
sparsity: {update_interval: 4}
training: {epochs: 3, iterations_per_epoch: 4, patch_size: [4, 16, 16], validation_batches: 3, precision: fp32}
)");
}

JobSpec job(const std::string& dir) {
  JobSpec j;
  j.sparsity = 0.5;
  j.seed = 11;
  j.out_dir = dir;
  return j;
}

std::string weights_digest(Trainer& t) {
  Sha256 hash;
  for (const auto& p : t.net()->parameters()) {
    torch::Tensor c = p.detach().contiguous();
    hash.update(c.data_ptr(), c.numel() * c.element_size());
  }
  return hash.hex_digest();
}

TEST(MpiCommunicator, Collectives) {
  MpiCommunicator& comm = world();
  const int n = comm.size();
  torch::Tensor t = torch::full({5}, static_cast<float>(comm.rank() + 1));
  comm.all_reduce_sum(t);
  EXPECT_TRUE(torch::all(t == n * (n + 1) / 2.0f).item<bool>());
  torch::Tensor b = torch::full({3}, static_cast<double>(comm.rank()), torch::kFloat64);
  comm.broadcast(b, n - 1);
  EXPECT_TRUE(torch::all(b == n - 1.0).item<bool>());
  std::vector<double> v{1.0, static_cast<double>(comm.rank())};
  comm.all_reduce_sum(v);
  EXPECT_EQ(v[0], n);
  std::string bytes = comm.is_leader() ? std::string(100000, 'z') : std::string("short");
  comm.broadcast_bytes(bytes, 0);
  EXPECT_EQ(bytes, std::string(100000, 'z'));
}

TEST(DataParallel, MatchesOneProcessWithTheGlobalBatchAndStaysIdenticalAcrossRanks) {
  at::set_num_threads(1);
  MpiCommunicator& comm = world();
  const std::string dir = shared_temp_dir("e2e_mpi_equivalence");
  Config config = tiny_config();
  config.training.batch_size = 2 * comm.size();
  const int64_t global_batch = config.training.batch_size;

  BlobBatches slice({4, 16, 16}, global_batch, comm.rank(), comm.size());
  Trainer parallel(config, job(dir + "/parallel"), slice, comm);
  ASSERT_EQ(parallel.run(), TrainOutcome::Finished);
  EXPECT_EQ(parallel.history().back().topology_updates, 2);

  // Consistency: bitwise the same weights and topology on every rank.
  std::string digest = weights_digest(parallel);
  std::string leader_digest = digest;
  comm.broadcast_bytes(leader_digest, 0);
  EXPECT_EQ(digest, leader_digest) << "rank " << comm.rank();
  std::string topology = parallel.dsff().topology().serialize();
  std::string leader_topology = topology;
  comm.broadcast_bytes(leader_topology, 0);
  EXPECT_EQ(topology, leader_topology) << "rank " << comm.rank();

  // Equivalence: one process fed the whole global batch.
  if (comm.is_leader()) {
    SingleProcessCommunicator single;
    BlobBatches whole({4, 16, 16}, global_batch);
    Trainer reference(config, job(dir + "/single"), whole, single);
    ASSERT_EQ(reference.run(), TrainOutcome::Finished);
    EXPECT_EQ(reference.dsff().topology(), parallel.dsff().topology());
    // Relative to the whole parameter vector: the conv biases in front of InstanceNorm get (mathematically
    // zero) gradients of rounding-noise size, so per-tensor relative errors of those are meaningless.
    std::vector<torch::Tensor> a, b;
    for (const auto& p : reference.net()->parameters()) a.push_back(p.detach().flatten());
    for (const auto& p : parallel.net()->parameters()) b.push_back(p.detach().flatten());
    const torch::Tensor wa = torch::cat(a), wb = torch::cat(b);
    const double relative = ((wa - wb).norm() / wa.norm()).item<double>();
    EXPECT_LE(relative, 1e-5);
    const double max_relative = ((wa - wb).abs().max() / wa.abs().max()).item<double>();
    EXPECT_LE(max_relative, 1e-5);
    std::printf("data-parallel vs single process: relative L2 %.3g, max %.3g\n", relative, max_relative);
    EXPECT_NEAR(reference.history().back().train_loss, parallel.history().back().train_loss,
                1e-5 * std::abs(reference.history().back().train_loss));
    std::filesystem::remove_all(dir);
  }
  comm.barrier();
}

TEST(GradientBuckets, SmallBucketsAverageLikeOneFlatAllReduce) {
  MpiCommunicator& comm = world();
  ModelConfig model = tiny_config().model;
  torch::manual_seed(5);
  E2ENet net(model);
  GradientBuckets buckets(net->parameters(), comm, /*bucket_bytes=*/4096);
  EXPECT_GE(buckets.bucket_count(), 3);   // several buckets, launched while backward runs
  torch::manual_seed(100 + comm.rank());  // every rank sees other data
  const torch::Tensor x = torch::randn({2, 1, 4, 16, 16});
  auto loss_of = [&] {
    torch::Tensor loss = torch::zeros({});
    for (const auto& out : net->forward(x)) loss = loss + out.pow(2).mean();
    return loss;
  };
  net->zero_grad();
  buckets.prepare();
  loss_of().backward();
  buckets.finish();
  std::vector<torch::Tensor> bucketed;
  for (const auto& p : net->parameters()) bucketed.push_back(p.grad().clone());

  net->zero_grad();
  loss_of().backward();  // hooks inactive: local gradients
  std::vector<torch::Tensor> flat_parts;
  for (const auto& p : net->parameters()) flat_parts.push_back(p.grad().reshape({-1}));
  torch::Tensor flat = torch::cat(flat_parts);
  comm.all_reduce_average(flat);
  int64_t offset = 0;
  for (std::size_t i = 0; i < bucketed.size(); ++i) {
    const int64_t n = bucketed[i].numel();
    EXPECT_TRUE(torch::allclose(bucketed[i].reshape({-1}), flat.narrow(0, offset, n), 1e-6, 1e-9))
        << "parameter " << i;
    offset += n;
  }
}

TEST(DataParallel, TopologyMismatchFailsOnEveryRank) {
  MpiCommunicator& comm = world();
  if (comm.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  const std::string dir = shared_temp_dir("e2e_mpi_mismatch");
  BlobBatches slice({4, 16, 16}, 2 * comm.size(), comm.rank(), comm.size());
  Trainer trainer(tiny_config(), job(dir), slice, comm);
  if (comm.rank() == 1) {
    Topology other = trainer.dsff().topology();
    const int64_t k = 0;
    other.tensors[0].set(k, !other.tensors[0].get(k));
    trainer.dsff().set_topology(other);
  }
  EXPECT_THROW(trainer.verify_topology_across_ranks(), TrainingError);
  comm.barrier();
  if (comm.is_leader()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace e2e

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  e2e::ensure_mpi_initialized();
  if (!e2e::world().is_leader()) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int result = RUN_ALL_TESTS();
  int worst = 0;
  MPI_Allreduce(&result, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}
