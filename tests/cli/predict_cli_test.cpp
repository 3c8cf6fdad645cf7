// Runs `e2e predict` as a user would: on a tiny job trained by `e2e train` on `e2e synth` data, its
// predictions of the fold's validation images equal the job's own validation predictions, `e2e evaluate`
// on them reproduces the job's metrics.json, the output keeps each input's header geometry, and bad models
// or inputs exit with code 2 naming the file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include "run_e2e.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/dataset.hpp"
#include "data/nifti.hpp"

namespace e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

using Result = e2e_cli::CliResult;
using e2e_cli::run_e2e;

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

void expect_usage_error(const Result& r, const std::string& text) {
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr(text));
  EXPECT_THAT(r.output, Not(HasSubstr("terminate called")));
}

TEST(PredictCliHelp, ListsTheOptions) {
  const Result r = run_e2e("predict --help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* option : {"--model", "--input", "--output", "--tta", "--step", "--config"})
    EXPECT_THAT(r.output, HasSubstr(option));
  expect_usage_error(run_e2e("predict --input x --output y"), "--model");
}

// One tiny job, trained once per test process: synth MR data (6 cases: zero outside the body, so inputs are
// cropped and z-scored inside the non-zero mask) → train fold 0 at sparsity 0.8 (sparse enough for the
// compiled sparse inference path), 2 validation cases → job folder.
class PredictCli : public ::testing::Test {
 protected:
  static fs::path root;
  static fs::path job;
  static std::vector<std::string> validation_ids;
  static RawDataset dataset;

  static void SetUpTestSuite() {
    root = fs::temp_directory_path() / ("e2e_predict_cli_" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root);
    const Result synth = run_e2e("synth --out " + (root / "data").string() +
                                 " --cases 6 --shape 12,32,32 --seed 7 --modality MR --threads 1");
    ASSERT_EQ(synth.exit_code, 0) << synth.output;
    const fs::path config = root / "config.yaml";
    std::ofstream(config)
        << "experiment: predict-cli\n"
           "model: {levels: 3, base_channels: 4, max_channels: 8, num_classes: 3,\n"
           "        pools: [[1, 2, 2], [2, 2, 2]]}\n"
           "sparsity: {update_interval: 2}\n"
           "training: {epochs: 1, iterations_per_epoch: 8, batch_size: 2, patch_size: [8, 16, 16],\n"
           "           validation_batches: 1, precision: fp32, threads: 1}\n"
           "data: {dataset: " +
               (root / "data").string() + "}\n";
    job = root / "job";
    const Result train = run_e2e("train --config " + config.string() + " --fold 0 --sparsity 0.8 --out " +
                                 job.string() + " --loader-threads 1");
    ASSERT_EQ(train.exit_code, 0) << train.output;
    const nlohmann::json splits = read_json(root / "data_preprocessed" / "splits_final.json");
    validation_ids = splits[0]["val"].get<std::vector<std::string>>();
    dataset = read_raw_dataset((root / "data").string());
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  static const RawCase& raw_case(const std::string& id) {
    for (const RawCase& c : dataset.training)
      if (c.id == id) return c;
    throw std::runtime_error("no case " + id);
  }

  // The fold's validation images and labels, copied into folders of their own.
  static void copy_validation_cases(const fs::path& images, const fs::path& labels) {
    fs::create_directories(images);
    fs::create_directories(labels);
    for (const std::string& id : validation_ids) {
      const RawCase& c = raw_case(id);
      fs::copy_file(c.image_files.at(0), images / (id + ".nii.gz"));
      fs::copy_file(c.label_file, labels / (id + ".nii.gz"));
    }
  }
};

fs::path PredictCli::root;
fs::path PredictCli::job;
std::vector<std::string> PredictCli::validation_ids;
RawDataset PredictCli::dataset;

TEST_F(PredictCli, ReproducesTheJobsValidationPredictionsAndMetrics) {
  ASSERT_FALSE(validation_ids.empty());
  const fs::path images = root / "consistency" / "images", labels = root / "consistency" / "labels";
  const fs::path out = root / "consistency" / "pred";
  copy_validation_cases(images, labels);
  const Result predict = run_e2e("predict --model " + job.string() + " --input " + images.string() +
                                 " --output " + out.string());
  ASSERT_EQ(predict.exit_code, 0) << predict.output;
  EXPECT_THAT(predict.output, HasSubstr("predict: 1/"));

  // The same label maps as the job's own validation, voxel for voxel, on the same grid.
  for (const std::string& id : validation_ids) {
    NiftiGeometry ours, theirs;
    const Volume<int16_t> a = read_nifti_labels((out / (id + ".nii.gz")).string(), &ours);
    const Volume<int16_t> b = read_nifti_labels((job / "validation" / (id + ".nii.gz")).string(), &theirs);
    EXPECT_TRUE(ours.same_grid(theirs)) << ours.difference(theirs);
    EXPECT_EQ(a.voxels, b.voxels) << id;
  }

  const fs::path report_file = root / "consistency" / "evaluation.json";
  const Result evaluate = run_e2e("evaluate --pred " + out.string() + " --gt " + labels.string() +
                                  " --labels 1,2 --format json --out " + report_file.string());
  ASSERT_EQ(evaluate.exit_code, 0) << evaluate.output;
  const nlohmann::json report = read_json(report_file);
  const nlohmann::json metrics = read_json(job / "metrics.json");
  ASSERT_EQ(report["cases"].size(), metrics["cases"].size());
  ASSERT_EQ(report["cases"].size(), validation_ids.size());
  int64_t predicted_foreground = 0;
  for (std::size_t i = 0; i < report["cases"].size(); ++i) {
    const nlohmann::json& got = report["cases"][i];
    const nlohmann::json& want = metrics["cases"][i];
    EXPECT_EQ(got["case"], want["case"]);
    ASSERT_EQ(got["structures"].size(), want["structures"].size());
    for (std::size_t s = 0; s < got["structures"].size(); ++s) {
      const nlohmann::json& g = got["structures"][s];
      const nlohmann::json& w = want["structures"][s];
      EXPECT_EQ(g["labels"], w["labels"]);  // names may differ (metrics.json may use dataset.json's)
      EXPECT_EQ(g["gt_voxels"], w["gt_voxels"]);
      EXPECT_EQ(g["pred_voxels"], w["pred_voxels"]);
      predicted_foreground += g["pred_voxels"].get<int64_t>();
      for (const char* key : {"dice", "nsd", "hd"}) {
        ASSERT_EQ(g[key].is_null(), w[key].is_null()) << got["case"] << " " << g["name"] << " " << key;
        if (!g[key].is_null()) {
          EXPECT_NEAR(g[key].get<double>(), w[key].get<double>(), 1e-6)
              << got["case"] << " " << g["name"] << " " << key;
        }
      }
    }
  }
  EXPECT_GT(predicted_foreground, 0);  // the comparison is not between two empty predictions
  for (const char* key : {"mean_dice", "mean_nsd"}) {
    ASSERT_EQ(report["summary"][key].is_null(), metrics["summary"][key].is_null()) << key;
    if (!report["summary"][key].is_null()) {
      EXPECT_NEAR(report["summary"][key].get<double>(), metrics["summary"][key].get<double>(), 1e-6) << key;
    }
  }
}

TEST_F(PredictCli, TrainingDrewTheLearningCurveIntoTheJobFolder) {
  EXPECT_GT(fs::file_size(job / "learning_curve.png"), 1000u);
}

// `e2e predict` runs the compiled sparse path on this sparse model (and not with --dense); both write the
// same label maps. The training job's metrics.json carries its measured per-patch forward times on both.
TEST_F(PredictCli, SparsePathIsTakenAndWritesTheSameLabelsAsDense) {
  const nlohmann::json timing = read_json(job / "metrics.json")["inference_timing"];
  EXPECT_GT(timing["ms_per_patch_dense"].get<double>(), 0.0) << timing;
  EXPECT_GT(timing["ms_per_patch_sparse"].get<double>(), 0.0) << timing;
  EXPECT_GT(timing["sparse_layers"].get<int>(), 0) << timing;

  const fs::path images = root / "sparse_dense" / "images", labels = root / "sparse_dense" / "labels";
  copy_validation_cases(images, labels);
  const Result sparse = run_e2e("predict --model " + job.string() + " --input " + images.string() +
                                " --output " + (root / "sparse_dense" / "sparse").string() + " --device cpu");
  ASSERT_EQ(sparse.exit_code, 0) << sparse.output;
  EXPECT_THAT(sparse.output, HasSubstr("forward pass(es) on the sparse path"));
  EXPECT_THAT(sparse.output, Not(HasSubstr("predict: 0 forward pass(es) on the sparse path")));
  const Result dense = run_e2e("predict --dense --model " + job.string() + " --input " + images.string() +
                               " --output " + (root / "sparse_dense" / "dense").string() + " --device cpu");
  ASSERT_EQ(dense.exit_code, 0) << dense.output;
  EXPECT_THAT(dense.output, HasSubstr("predict: 0 forward pass(es) on the sparse path (--dense)"));

  for (const std::string& id : validation_ids) {
    const std::string name = id + ".nii.gz";
    EXPECT_EQ(read_nifti_labels((root / "sparse_dense" / "dense" / name).string()).voxels,
              read_nifti_labels((root / "sparse_dense" / "sparse" / name).string()).voxels)
        << name;
  }
}

TEST_F(PredictCli, OutputKeepsTheInputHeaderGeometry) {
  // A validation image rewritten with a rotated qform, a different sform, another spacing and a zero border
  // (cropped away before inference): the output has exactly this header.
  const NiftiImage source = read_nifti(raw_case(validation_ids.at(0)).image_files.at(0));
  MultiVolume<float> image = source.data;
  const Shape3 shape = image.shape;
  for (int64_t z = 0; z < shape[0]; ++z)
    for (int64_t y = 0; y < shape[1]; ++y)
      for (int64_t x = 0; x < shape[2]; ++x)
        if (z == 0 || y < 3 || x >= shape[2] - 2) image.voxels[(z * shape[1] + y) * shape[2] + x] = 0.0f;
  NiftiGeometry geometry;
  geometry.shape = shape;
  geometry.spacing = {2.5, 0.75, 0.9};
  geometry.qform_code = 1;
  geometry.sform_code = 4;
  geometry.quatern = {0.1, -0.05, std::sin(0.3), -40.0, 25.5, 12.0};
  geometry.qfac = -1.0;
  geometry.sform = {0.85, -0.2, 0.05, 3.0, 0.2, 0.7, 0.1, -8.0, 0.0, -0.1, 2.45, 15.0, 0, 0, 0, 1};
  const fs::path input = root / "rotated" / "input", out = root / "rotated" / "pred";
  fs::create_directories(input);
  write_nifti((input / "rotated_case.nii.gz").string(), image, geometry);
  const NiftiGeometry in = read_nifti_geometry((input / "rotated_case.nii.gz").string());

  const Result predict =
      run_e2e("predict --model " + job.string() + " --model " + job.string() + " --input " + input.string() +
              " --output " + out.string() + " --tta --step 0.7");
  ASSERT_EQ(predict.exit_code, 0) << predict.output;
  NiftiGeometry got;
  const Volume<int16_t> labels = read_nifti_labels((out / "rotated_case.nii.gz").string(), &got);
  EXPECT_EQ(got.shape, in.shape);
  EXPECT_EQ(got.spacing, in.spacing);
  EXPECT_EQ(got.qform_code, in.qform_code);
  EXPECT_EQ(got.sform_code, in.sform_code);
  EXPECT_EQ(got.qform, in.qform);
  EXPECT_EQ(got.sform, in.sform);
  EXPECT_EQ(got.quatern, in.quatern);
  EXPECT_EQ(got.qfac, in.qfac);
  EXPECT_EQ(got.xyz_units, in.xyz_units);
  for (int64_t y = 0; y < shape[1]; ++y)
    for (int64_t x = 0; x < shape[2]; ++x) EXPECT_EQ(labels.at(0, y, x), 0) << "outside the crop box";
}

TEST_F(PredictCli, ModelsWithAnotherPlanAreRefusedNamingBothFolders) {
  // A copy of the job whose folder carries a plan with another target spacing.
  const fs::path other = root / "other_job";
  fs::create_directories(other);
  fs::copy_file(job / "checkpoint.ckpt", other / "checkpoint.ckpt", fs::copy_options::overwrite_existing);
  nlohmann::json plan = read_json(root / "data_preprocessed" / "plan.json");
  plan["target_spacing"][0] = plan["target_spacing"][0].get<double>() * 2;
  std::ofstream(other / "plan.json") << plan.dump(2);
  const fs::path input = root / "mismatch" / "input";
  fs::create_directories(input);
  fs::copy_file(raw_case(validation_ids.at(0)).image_files.at(0), input / "a.nii.gz");
  const fs::path out = root / "mismatch" / "pred";
  const Result r = run_e2e("predict --model " + job.string() + " --model " + other.string() + " --input " +
                           input.string() + " --output " + out.string());
  expect_usage_error(r, "target spacing");
  EXPECT_THAT(r.output, AllOf(HasSubstr(job.string()), HasSubstr(other.string())));
  EXPECT_FALSE(fs::exists(out / "a.nii.gz"));
}

TEST_F(PredictCli, BadModelsAndInputsExitTwoNamingTheFile) {
  const fs::path base = root / "bad";
  fs::create_directories(base / "input");
  fs::create_directories(base / "not_a_job");
  fs::copy_file(raw_case(validation_ids.at(0)).image_files.at(0), base / "input" / "good.nii.gz");
  const std::string io = " --input " + (base / "input").string() + " --output " + (base / "pred").string();

  expect_usage_error(run_e2e("predict --model " + (base / "nowhere").string() + io), "nowhere");
  expect_usage_error(run_e2e("predict --model " + (base / "not_a_job").string() + io), "checkpoint.ckpt");
  {
    std::ifstream in(job / "checkpoint.ckpt", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(base / "truncated.ckpt", std::ios::binary) << bytes.substr(0, bytes.size() - 100);
  }
  expect_usage_error(run_e2e("predict --model " + (base / "truncated.ckpt").string() + io), "truncated.ckpt");
  expect_usage_error(run_e2e("predict --model " + job.string() + io + " --step 0"), "--step");
  expect_usage_error(run_e2e("predict --model " + job.string() + " --input " + (base / "missing").string() +
                             " --output " + (base / "pred").string()),
                     "missing");

  // An unreadable image: exit 2 naming it, before any output is written (headers are checked first).
  std::ofstream(base / "input" / "broken.nii.gz") << "not a NIfTI file";
  expect_usage_error(run_e2e("predict --model " + job.string() + io), "broken.nii.gz");
  EXPECT_FALSE(fs::exists(base / "pred" / "good.nii.gz"));
  EXPECT_FALSE(fs::exists(base / "pred" / "broken.nii.gz"));
}

}  // namespace
}  // namespace e2e
