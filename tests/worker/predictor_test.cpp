#include "worker/predictor.hpp"
#include "configs/config_json.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "blob_batches.hpp"
#include "data/nifti.hpp"
#include "worker/checkpoint.hpp"
#include "worker/inference.hpp"

namespace e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

const char* kTinyConfig = R"(
experiment: predictor-test
model: {levels: 3, base_channels: 4, max_channels: 8, num_classes: 3, pools: [[1, 2, 2], [2, 2, 2]]}
sparsity: {update_interval: 2}
training: {epochs: 1, iterations_per_epoch: 4, batch_size: 2, patch_size: [4, 16, 16], validation_batches: 1,
           checkpoint_every_epochs: 1, precision: fp32}
)";

Plan tiny_plan() {
  Plan plan;
  plan.target_spacing = {2.0, 1.0, 1.0};
  plan.median_shape = {8, 24, 24};
  plan.patch_size = {4, 16, 16};
  plan.pools = {{1, 2, 2}, {2, 2, 2}};
  plan.channel_names = {"MR"};
  plan.normalization = {"zscore"};
  plan.use_nonzero_mask = {false};
  plan.intensity = {IntensityStats{}};
  plan.labels = {{0, "background"}, {1, "a"}, {2, "b"}};
  return plan;
}

// A 1-channel image: two bright blobs (like BlobBatches' classes) on a noisy background.
MultiVolume<float> blob_image(const Shape3& shape, uint64_t seed) {
  MultiVolume<float> image(1, shape);
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> noise(-0.3f, 0.3f);
  for (int64_t z = 0; z < shape[0]; ++z)
    for (int64_t y = 0; y < shape[1]; ++y)
      for (int64_t x = 0; x < shape[2]; ++x) {
        float v = noise(gen);
        if (std::pow(z - shape[0] / 2.0, 2) / 9 + std::pow(y - 6.0, 2) / 16 + std::pow(x - 7.0, 2) / 16 <= 1)
          v += 1;
        if (std::pow(z - shape[0] / 2.0, 2) / 9 + std::pow(y - 15.0, 2) / 16 + std::pow(x - 14.0, 2) / 16 <=
            1)
          v += 2;
        image.voxels[(z * shape[1] + y) * shape[2] + x] = v;
      }
  return image;
}

class PredictorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    at::set_num_threads(1);
    root_ = fs::temp_directory_path() / ("e2e_predictor_test_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    config_ = parse_config(kTinyConfig);
  }
  void TearDown() override { fs::remove_all(root_); }

  // A model in memory, as load_prediction_model() returns it.
  PredictionModel memory_model(const std::string& name, uint64_t seed) {
    torch::manual_seed(seed);
    PredictionModel m;
    m.source = name;
    m.checkpoint = name + "/checkpoint.ckpt";
    m.plan_file = name + "/plan.json";
    m.config = config_;
    m.plan = tiny_plan();
    m.net = E2ENet(config_.model);
    m.net->eval();
    return m;
  }

  // Trains a tiny job on blob batches and gives its folder a plan.json; returns the folder.
  std::string train_job(const std::string& name, uint64_t seed, E2ENet* trained = nullptr) {
    JobSpec job;
    job.fold = 0;
    job.sparsity = 0.5;
    job.seed = seed;
    job.out_dir = (root_ / name).string();
    SingleProcessCommunicator comm;
    BlobBatches batches{{4, 16, 16}};
    Trainer trainer(config_, job, batches, comm);
    EXPECT_EQ(trainer.run(), TrainOutcome::Finished);
    std::ofstream(root_ / name / "plan.json") << to_json(tiny_plan()).dump(2);
    if (trained) *trained = trainer.net();
    return job.out_dir;
  }

  fs::path root_;
  Config config_;
};

TEST_F(PredictorTest, EnsembleIsTheMeanOfTheModelsProbabilities) {
  std::vector<PredictionModel> models{memory_model("a", 1), memory_model("b", 2)};
  E2ENet net_a = models[0].net, net_b = models[1].net;
  const MultiVolume<float> image = blob_image({7, 21, 19}, 5);
  SlidingWindowOptions window;
  window.patch = config_.training.patch_size;
  torch::Tensor p_a, p_b;
  {
    torch::NoGradGuard no_grad;
    p_a = predict_probabilities(inference_forward(net_a), net_a->config().num_classes, image, window);
    p_b = predict_probabilities(inference_forward(net_b), net_b->config().num_classes, image, window);
  }
  Predictor predictor(std::move(models), PredictorOptions{});
  const torch::Tensor ensemble = predictor.probabilities(image);
  ASSERT_EQ(ensemble.sizes(), p_a.sizes());
  EXPECT_EQ(ensemble.size(0), 3);
  EXPECT_TRUE(torch::allclose(ensemble, (p_a + p_b) / 2, 0.0, 1e-7));
  EXPECT_FALSE(torch::allclose(ensemble, p_a, 0.0, 1e-4));  // the two nets really differ
  EXPECT_TRUE(torch::allclose(ensemble.sum(0), torch::ones({7, 21, 19}), 0.0, 1e-5));

  // One model: its own probabilities, bit for bit (what the job's validation computed).
  std::vector<PredictionModel> single{memory_model("a", 1)};
  Predictor alone(std::move(single), PredictorOptions{});
  EXPECT_TRUE(torch::equal(alone.probabilities(image), p_a));
}

TEST_F(PredictorTest, LoadsTrainedJobsAndEnsemblesThem) {
  E2ENet trained_a{nullptr}, trained_b{nullptr};
  const std::string job_a = train_job("job_a", 1, &trained_a);
  const std::string job_b = train_job("job_b", 2, &trained_b);

  const PredictionModel loaded = load_prediction_model(job_a);
  EXPECT_EQ(loaded.checkpoint, (fs::path(job_a) / "checkpoint.ckpt").string());
  EXPECT_EQ(loaded.plan_file, (fs::path(job_a) / "plan.json").string());
  EXPECT_EQ(config_hash(loaded.config), config_hash(config_));  // the config stored in the checkpoint
  EXPECT_EQ(loaded.job["fold"], 0);
  EXPECT_EQ(loaded.job["seed"], 1);
  const auto a = trained_a->parameters(), b = loaded.net->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
  EXPECT_FALSE(loaded.net->is_training());

  // A checkpoint file works as well as its folder.
  EXPECT_EQ(load_prediction_model(job_b + "/checkpoint.ckpt").checkpoint, job_b + "/checkpoint.ckpt");

  const MultiVolume<float> image = blob_image({6, 20, 20}, 9);
  SlidingWindowOptions window;
  window.patch = config_.training.patch_size;
  torch::Tensor expected;
  {
    torch::NoGradGuard no_grad;
    expected =
        (predict_probabilities(inference_forward(trained_a), trained_a->config().num_classes, image, window) +
         predict_probabilities(inference_forward(trained_b), trained_b->config().num_classes, image,
                               window)) /
        2;
  }
  Predictor predictor({load_prediction_model(job_a), load_prediction_model(job_b)}, PredictorOptions{});
  EXPECT_TRUE(torch::allclose(predictor.probabilities(image), expected, 0.0, 1e-7));
}

TEST_F(PredictorTest, ModelsThatDoNotShareAPlanAreRefusedNamingBoth) {
  PredictionModel a = memory_model("fold0", 1), b = memory_model("fold1", 2);
  EXPECT_NO_THROW(check_same_plan(a, b));
  auto refused = [&](const PredictionModel& other, const std::string& what) {
    try {
      check_same_plan(a, other);
      ADD_FAILURE() << "expected ConfigError for " << what;
    } catch (const ConfigError& e) {
      EXPECT_THAT(e.what(), AllOf(HasSubstr("fold0"), HasSubstr("other"), HasSubstr(what)));
    }
  };
  PredictionModel other = memory_model("other", 3);
  other.config.training.patch_size = {8, 16, 16};
  refused(other, "patch size 8x16x16 vs 4x16x16");
  other = memory_model("other", 3);
  other.plan.target_spacing = {3.0, 1.0, 1.0};
  refused(other, "target spacing");
  other = memory_model("other", 3);
  other.plan.normalization = {"ct"};
  refused(other, "normalization");
  other = memory_model("other", 3);
  other.config.model.num_classes = 4;
  refused(other, "classes 4 vs 3");

  std::vector<PredictionModel> models{memory_model("fold0", 1), memory_model("other", 2)};
  models[1].plan.target_spacing = {3.0, 1.0, 1.0};
  EXPECT_THROW(Predictor(std::move(models), PredictorOptions{}), ConfigError);

  PredictionModel wrong = memory_model("wrong", 1);
  wrong.plan.labels.erase(2);
  EXPECT_THROW(check_model_fits_plan(wrong), ConfigError);
  EXPECT_THROW(Predictor({}, PredictorOptions{}), ConfigError);
  PredictorOptions bad_step;
  bad_step.step_fraction = 0.0;
  EXPECT_THROW(Predictor({memory_model("a", 1)}, bad_step), ConfigError);
}

TEST_F(PredictorTest, CheckpointProblemsNameTheFile) {
  const std::string job = train_job("job", 1);
  const std::string checkpoint = job + "/checkpoint.ckpt";

  // Without a stored config, --config is needed (and used).
  CheckpointFile file = read_checkpoint_file(checkpoint);
  file.meta.erase("config");
  const std::string old_style = (root_ / "old.ckpt").string();
  write_checkpoint_file(old_style, file.meta, file.payload);
  std::ofstream(root_ / "plan.json") << to_json(tiny_plan()).dump();
  try {
    load_prediction_model(old_style);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(old_style), HasSubstr("--config")));
  }
  const std::string config_file = (root_ / "config.yaml").string();
  std::ofstream(config_file) << kTinyConfig;
  ModelLoadOptions with_config;
  with_config.config_path = config_file;
  EXPECT_NO_THROW(load_prediction_model(old_style, with_config));

  // A config whose model does not fit the weights.
  std::ofstream(root_ / "bigger.yaml")
      << std::string(kTinyConfig)
             .replace(std::string(kTinyConfig).find("base_channels: 4"), 16, "base_channels: 6");
  with_config.config_path = (root_ / "bigger.yaml").string();
  try {
    load_prediction_model(old_style, with_config);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr(old_style));
  }

  // No plan anywhere.
  fs::remove(fs::path(job) / "plan.json");
  try {
    load_prediction_model(job);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(checkpoint), HasSubstr("plan")));
  }

  // Truncated checkpoint, missing folder, folder without a checkpoint.
  const std::string truncated = (root_ / "truncated.ckpt").string();
  {
    std::ifstream in(checkpoint, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  EXPECT_THROW(load_prediction_model(truncated), InputError);
  EXPECT_THROW(load_prediction_model((root_ / "nowhere").string()), InputError);
  fs::create_directories(root_ / "empty_job");
  try {
    load_prediction_model((root_ / "empty_job").string());
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("empty_job"), HasSubstr("checkpoint.ckpt")));
  }
}

// ------------------------------------------------------------------------------------------ inputs

void write_image(const fs::path& path, const Shape3& shape, int64_t channels = 1) {
  const NiftiGeometry geometry = make_nifti_geometry(shape, {2.0, 1.0, 1.0});
  if (channels == 1) {
    write_nifti(path.string(), Volume<float>(shape, {2.0, 1.0, 1.0}, 1.0f), geometry);
  } else {
    write_nifti(path.string(), MultiVolume<float>(channels, shape, {2.0, 1.0, 1.0}, 1.0f), geometry);
  }
}

TEST_F(PredictorTest, FindsNnUNetNamedPlainAnd4DInputs) {
  const Shape3 shape{4, 6, 8};
  const fs::path nnunet = root_ / "nnunet";
  fs::create_directories(nnunet);
  for (const char* name : {"b_0000.nii.gz", "b_0001.nii.gz", "a_0000.nii.gz", "a_0001.nii"})
    write_image(nnunet / name, shape);
  std::ofstream(nnunet / "notes.txt") << "not an image";
  const PredictionInputs two = find_prediction_inputs(nnunet.string(), 2);
  EXPECT_EQ(two.layout.format, DatasetFormat::NnUNetV2);
  ASSERT_EQ(two.cases.size(), 2u);
  EXPECT_EQ(two.cases[0].id, "a");
  EXPECT_EQ(two.cases[0].image_files, (std::vector<std::string>{(nnunet / "a_0000.nii.gz").string(),
                                                                (nnunet / "a_0001.nii").string()}));
  EXPECT_TRUE(two.cases[1].label_file.empty());
  // The same folder for a 1-channel model: channel 1 is one too many.
  EXPECT_THROW(find_prediction_inputs(nnunet.string(), 1), InputError);
  // A missing channel is named.
  fs::remove(nnunet / "b_0001.nii.gz");
  try {
    find_prediction_inputs(nnunet.string(), 2);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("case b"), HasSubstr("b_0001.nii.gz")));
  }

  const fs::path plain = root_ / "plain";
  fs::create_directories(plain);
  write_image(plain / "case_001.nii.gz", shape);
  write_image(plain / "scan_2019.nii.gz", shape);  // _NNNN without a _0000 file: not nnU-Net naming
  const PredictionInputs one = find_prediction_inputs(plain.string(), 1);
  EXPECT_EQ(one.layout.format, DatasetFormat::Msd);
  ASSERT_EQ(one.cases.size(), 2u);
  EXPECT_EQ(one.cases[0].id, "case_001");
  EXPECT_EQ(one.cases[1].id, "scan_2019");
  write_image(plain / "case_001.nii", shape);
  EXPECT_THROW(find_prediction_inputs(plain.string(), 1), InputError);  // two files for one case

  const fs::path four_d = root_ / "four_d";
  fs::create_directories(four_d);
  write_image(four_d / "x.nii.gz", shape, 2);
  const PredictionInputs multi = find_prediction_inputs(four_d.string(), 2);
  ASSERT_EQ(multi.cases.size(), 1u);
  EXPECT_EQ(check_case_geometry(multi.layout, multi.cases[0]).shape, shape);
  const PredictionInputs wrong = find_prediction_inputs(four_d.string(), 3);
  EXPECT_THROW(check_case_geometry(wrong.layout, wrong.cases[0]), InputError);  // 2 volumes, 3 expected

  fs::create_directories(root_ / "empty");
  EXPECT_THROW(find_prediction_inputs((root_ / "empty").string(), 1), InputError);
  EXPECT_THROW(find_prediction_inputs((root_ / "missing").string(), 1), InputError);
}

TEST_F(PredictorTest, OutputHasTheInputsGridAndHeader) {
  // An anisotropic, rotated image with a zero border (cropped away before inference, 0 in the output).
  const Shape3 shape{7, 22, 19};
  MultiVolume<float> image = blob_image(shape, 3);
  for (int64_t z = 0; z < shape[0]; ++z)
    for (int64_t y = 0; y < shape[1]; ++y)
      for (int64_t x = 0; x < shape[2]; ++x)
        if (z == 0 || y < 2 || x > 16) image.voxels[(z * shape[1] + y) * shape[2] + x] = 0.0f;
  NiftiGeometry geometry;
  geometry.shape = shape;
  geometry.spacing = {2.5, 0.75, 1.25};
  geometry.qform_code = 1;
  geometry.sform_code = 2;
  const double half = 0.5 * 0.4;  // rotation by 0.4 rad about z
  geometry.quatern = {0.0, 0.0, std::sin(half), -12.5, 30.0, 4.0};
  geometry.qfac = -1.0;
  geometry.sform = {0.7, -0.2, 0.1, 5.0, 0.3, 0.6, 0.0, -7.0, 0.0, 0.2, 2.4, 11.0, 0, 0, 0, 1};
  const fs::path input = root_ / "input";
  fs::create_directories(input);
  write_nifti((input / "rot.nii.gz").string(), image, geometry);
  const NiftiGeometry written = read_nifti_geometry((input / "rot.nii.gz").string());

  Predictor predictor({memory_model("a", 1), memory_model("b", 2)}, PredictorOptions{});
  const PredictionInputs inputs = find_prediction_inputs(input.string(), 1);
  const auto files = predictor.predict_folder(inputs, (root_ / "out").string());
  ASSERT_EQ(files, std::vector<std::string>{(root_ / "out" / "rot.nii.gz").string()});
  NiftiGeometry out;
  const Volume<int16_t> labels = read_nifti_labels(files[0], &out);
  EXPECT_EQ(out.shape, written.shape);
  EXPECT_EQ(out.spacing, written.spacing);
  EXPECT_EQ(out.qform_code, written.qform_code);
  EXPECT_EQ(out.sform_code, written.sform_code);
  EXPECT_EQ(out.qform, written.qform);
  EXPECT_EQ(out.sform, written.sform);
  EXPECT_EQ(out.quatern, written.quatern);
  EXPECT_EQ(out.qfac, written.qfac);
  EXPECT_TRUE(out.same_grid(written)) << out.difference(written);
  for (int64_t y = 0; y < shape[1]; ++y)
    for (int64_t x = 0; x < shape[2]; ++x) EXPECT_EQ(labels.at(0, y, x), 0);  // outside the crop box
  for (int v : labels.voxels) EXPECT_TRUE(v >= 0 && v < 3);

  // The output folder must not be the input folder.
  EXPECT_THROW(predictor.predict_folder(inputs, input.string()), ConfigError);
}

}  // namespace
}  // namespace e2e
