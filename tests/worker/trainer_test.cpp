#include "worker/trainer.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "blob_batches.hpp"
#include "worker/checkpoint.hpp"

namespace e2e {
namespace {

using ::testing::HasSubstr;

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    at::set_num_threads(1);
    root_ = std::filesystem::temp_directory_path() / ("e2e_trainer_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(root_);
    config_ = parse_config(R"(
experiment: trainer-test
model: {levels: 3, base_channels: 4, max_channels: 8, num_classes: 3, pools: [[1, 2, 2], [2, 2, 2]]}
sparsity: {update_interval: 4}
training: {epochs: 3, iterations_per_epoch: 4, batch_size: 2, patch_size: [4, 16, 16], validation_batches: 2,
           checkpoint_every_epochs: 1, precision: fp32}
)");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  JobSpec job(const std::string& name, bool resume = false) {
    JobSpec j;
    j.fold = 1;
    j.sparsity = 0.5;
    j.seed = 3;
    j.out_dir = (root_ / name).string();
    j.resume = resume;
    return j;
  }

  static std::vector<torch::Tensor> weights(Trainer& t) {
    std::vector<torch::Tensor> out;
    for (const auto& p : t.net()->parameters()) out.push_back(p.detach().clone());
    return out;
  }

  std::filesystem::path root_;
  Config config_;
  SingleProcessCommunicator comm_;
  BlobBatches batches_{{4, 16, 16}};
};

TEST_F(TrainerTest, InterruptedAndResumedEqualsStraightRunBitwise) {
  Trainer straight(config_, job("straight"), batches_, comm_);
  ASSERT_EQ(straight.run(), TrainOutcome::Finished);
  EXPECT_EQ(straight.iteration(), 12);

  {
    Trainer first(config_, job("resumed"), batches_, comm_);
    ASSERT_EQ(first.run(6), TrainOutcome::Stopped);  // mid-epoch, after one topology update
  }
  Trainer second(config_, job("resumed", true), batches_, comm_);
  EXPECT_EQ(second.iteration(), 6);
  ASSERT_EQ(second.run(), TrainOutcome::Finished);

  const auto a = weights(straight), b = weights(second);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
  EXPECT_EQ(straight.dsff().topology(), second.dsff().topology());
  ASSERT_EQ(straight.history().size(), 3u);
  ASSERT_EQ(second.history().size(), 3u);
  EXPECT_EQ(straight.history()[2].train_loss, second.history()[2].train_loss);
  EXPECT_EQ(straight.history()[2].topology_updates, 2);
}

TEST_F(TrainerTest, StopRequestCheckpointsAndReturnsStopped) {
  std::atomic<bool> stop{false};
  TrainerHooks hooks;
  hooks.on_epoch = [&](const EpochRecord&) { stop = true; };
  Trainer trainer(config_, job("stop"), batches_, comm_, &stop, hooks);
  EXPECT_EQ(trainer.run(), TrainOutcome::Stopped);
  // The request (set at the end of epoch 1) is seen at the next step, which all ranks finish together.
  EXPECT_EQ(trainer.iteration(), 5);
  const CheckpointFile file = read_checkpoint_file(trainer.checkpoint_path());
  EXPECT_EQ(file.meta["iteration"], 5);
  EXPECT_EQ(file.meta["fold"], 1);
}

TEST_F(TrainerTest, WritesEpochLogAndLearningCurve) {
  Trainer trainer(config_, job("logs"), batches_, comm_);
  trainer.run();
  std::ifstream in(root_ / "logs" / "epochs.jsonl");
  int lines = 0;
  for (std::string line; std::getline(in, line);) {
    const auto record = nlohmann::json::parse(line);
    EXPECT_TRUE(record.contains("val_loss") && record.contains("mean_pseudo_dice") && record.contains("lr"));
    ++lines;
  }
  EXPECT_EQ(lines, 3);
  EXPECT_LT(trainer.history()[2].learning_rate, trainer.history()[0].learning_rate);  // poly decay
}

TEST_F(TrainerTest, NonFiniteLossStopsAndKeepsTheLastCheckpoint) {
  class Poisoned : public BlobBatches {
   public:
    using BlobBatches::BlobBatches;
    TrainingBatch train_batch(int64_t iteration) override {
      TrainingBatch b = BlobBatches::train_batch(iteration);
      if (iteration == 6) b.image.fill_(std::nan(""));
      return b;
    }
  } poisoned{{4, 16, 16}};
  Trainer trainer(config_, job("nan"), poisoned, comm_);
  try {
    trainer.run();
    FAIL() << "expected TrainingError";
  } catch (const TrainingError& e) {
    EXPECT_THAT(e.what(), HasSubstr("non-finite training loss at iteration 7"));
  }
  EXPECT_EQ(read_checkpoint_file(trainer.checkpoint_path()).meta["iteration"], 4);
}

TEST_F(TrainerTest, ForeignOrCorruptCheckpointIsAnErrorNotAFreshStart) {
  { Trainer(config_, job("x"), batches_, comm_).run(4); }
  JobSpec other = job("x", true);
  other.sparsity = 0.8;
  EXPECT_THROW(Trainer(config_, other, batches_, comm_), InputError);
  Config changed = config_;
  changed.training.learning_rate = 0.5;
  try {
    Trainer t(changed, job("x", true), batches_, comm_);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("config hash"));
  }
  // Without --resume an existing checkpoint is never overwritten.
  EXPECT_THROW(Trainer(config_, job("x"), batches_, comm_), ConfigError);
  // A damaged file is reported, not silently replaced by a fresh start.
  const std::string path = (root_ / "x" / "checkpoint.ckpt").string();
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  EXPECT_THROW(Trainer(config_, job("x", true), batches_, comm_), InputError);
}

}  // namespace
}  // namespace e2e
