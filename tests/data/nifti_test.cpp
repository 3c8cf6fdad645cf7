// NIfTI reading against files whose contents nibabel 5.0 reports, and our writes read back.
#include "data/nifti.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nifti2_io.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>

namespace e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const std::string kNibabelData = "/usr/lib/python3/dist-packages/nibabel/tests/data/";
const std::string kItkData = "/usr/share/doc/insighttoolkit5-examples/examples/Data/";

// A fresh folder per test, removed afterwards.
class NiftiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("e2e_nifti_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

void require_file(const std::string& path) {
  if (!fs::exists(path)) GTEST_FAIL() << "test data missing (scripts/setup installs it): " << path;
}

float voxel(const NiftiImage& image, int64_t channel, int64_t i, int64_t j, int64_t k) {
  const Shape3& s = image.data.shape;
  return image.data.channel(channel)[(k * s[1] + j) * s[2] + i];
}

void expect_affine_near(const std::array<double, 16>& actual, const std::array<double, 12>& expected,
                        double tol) {
  for (int e = 0; e < 12; ++e) EXPECT_NEAR(actual[e], expected[e], tol) << "affine element " << e;
}

TEST_F(NiftiTest, ReadsBigEndianInt16) {
  const std::string file = kNibabelData + "anatomical.nii";
  require_file(file);
  const NiftiImage image = read_nifti(file);
  EXPECT_EQ(image.geometry.shape, (Shape3{25, 41, 33}));
  EXPECT_EQ(image.data.channels, 1);
  EXPECT_EQ(image.geometry.spacing, (Spacing3{2.0, 2.0, 2.0}));
  EXPECT_EQ(voxel(image, 0, 0, 0, 0), 10712.0f);
  EXPECT_EQ(voxel(image, 0, 16, 20, 12), 11881.0f);
  EXPECT_EQ(voxel(image, 0, 32, 40, 24), 2971.0f);
  EXPECT_EQ(voxel(image, 0, 11, 10, 5), 11825.0f);
  EXPECT_EQ(voxel(image, 0, 17, 23, 0), 30393.0f);  // the maximum
  EXPECT_EQ(image.geometry.qform_code, 2);
  EXPECT_EQ(image.geometry.qfac, -1.0);
  expect_affine_near(image.geometry.preferred_affine(), {-2, 0, 0, 32, 0, 2, 0, -40, 0, 0, 2, -16}, 1e-6);
}

TEST_F(NiftiTest, ReadsNifti2FourDimensional) {
  const std::string file = kNibabelData + "example_nifti2.nii.gz";
  require_file(file);
  const NiftiImage image = read_nifti(file);
  EXPECT_EQ(image.geometry.shape, (Shape3{12, 20, 32}));
  EXPECT_EQ(image.data.channels, 2);
  EXPECT_NEAR(image.geometry.spacing[0], 2.2, 1e-5);
  EXPECT_EQ(image.geometry.spacing[1], 2.0);
  EXPECT_EQ(image.geometry.spacing[2], 2.0);
  EXPECT_EQ(voxel(image, 0, 0, 0, 0), 424.0f);
  EXPECT_EQ(voxel(image, 1, 0, 0, 0), 439.0f);
  EXPECT_EQ(voxel(image, 0, 16, 10, 6), 265.0f);
  EXPECT_EQ(voxel(image, 1, 16, 10, 6), 266.0f);
  EXPECT_EQ(voxel(image, 0, 31, 19, 11), 484.0f);
  EXPECT_EQ(voxel(image, 1, 31, 19, 11), 457.0f);
  EXPECT_EQ(voxel(image, 1, 17, 16, 4), 757.0f);
  expect_affine_near(image.geometry.preferred_affine(),
                     {-2, 0, 0, 117.85510254, 0, 1.97371149, -0.35552824, -35.72294235, 0, 0.32320762,
                      2.17108178, -7.24879837},
                     1e-6);
}

TEST_F(NiftiTest, ReadsNifti1FourDimensionalGzip) {
  const std::string file = kNibabelData + "example4d.nii.gz";
  require_file(file);
  const NiftiImage image = read_nifti(file);
  EXPECT_EQ(image.geometry.shape, (Shape3{24, 96, 128}));
  EXPECT_EQ(image.data.channels, 2);
  EXPECT_EQ(voxel(image, 0, 64, 48, 12), 265.0f);
  EXPECT_EQ(voxel(image, 1, 64, 48, 12), 266.0f);
  EXPECT_EQ(voxel(image, 0, 42, 24, 4), 452.0f);
  EXPECT_EQ(voxel(image, 1, 42, 24, 4), 464.0f);
  EXPECT_EQ(voxel(image, 0, 64, 49, 0), 1162.0f);
  const double sum = std::accumulate(image.data.voxels.begin(), image.data.voxels.end(), 0.0);
  EXPECT_EQ(sum, 101985356.0);
}

TEST_F(NiftiTest, ReadsRotatedAnisotropicItkImage) {
  const std::string file = kItkData + "KmeansTest_T1UCharRaw.nii.gz";
  require_file(file);
  const NiftiImage image = read_nifti(file);
  const NiftiGeometry& g = image.geometry;
  EXPECT_EQ(g.shape, (Shape3{62, 128, 128}));
  EXPECT_EQ(g.spacing, (Spacing3{3.0, 2.0, 2.0}));
  EXPECT_EQ(g.describe(), "62x128x128 (z,y,x) at 3x2x2 mm");
  EXPECT_EQ(voxel(image, 0, 64, 64, 31), 97.0f);
  EXPECT_EQ(voxel(image, 0, 42, 32, 12), 88.0f);
  EXPECT_EQ(voxel(image, 0, 30, 44, 47), 255.0f);
  EXPECT_EQ(std::accumulate(image.data.voxels.begin(), image.data.voxels.end(), 0.0), 19533798.0);
  EXPECT_EQ(g.qform_code, 2);
  EXPECT_EQ(g.sform_code, 1);
  expect_affine_near(g.sform, {-2, 0, 0, 0, 0, 0, 3, -254, 0, 2, 0, 0}, 1e-6);
  // The qform is the same rotation up to float rounding of its quaternion (nibabel's differs by < 1e-3).
  for (int e = 0; e < 12; ++e) EXPECT_NEAR(g.qform[e], g.sform[e], 1e-3) << "element " << e;
}

TEST_F(NiftiTest, ReadsLabelsAndTheirGeometryMatchesTheImage) {
  const std::string image_file = kItkData + "KmeansTest_T1UCharRaw.nii.gz";
  const std::string label_file = kItkData + "KmeansTest_T1KmeansPrelimSegmentation.nii.gz";
  require_file(label_file);
  NiftiGeometry geometry;
  const Volume<int16_t> labels = read_nifti_labels(label_file, &geometry);
  std::array<int64_t, 7> counts{};
  for (int16_t v : labels.voxels) {
    ASSERT_GE(v, 0);
    ASSERT_LE(v, 6);
    ++counts[v];
  }
  EXPECT_EQ(counts, (std::array<int64_t, 7>{126, 729202, 114711, 43423, 24061, 57084, 47201}));
  EXPECT_EQ(labels.at(31, 64, 64), 6);
  EXPECT_EQ(labels.at(12, 32, 42), 2);
  EXPECT_TRUE(geometry.same_grid(read_nifti_geometry(image_file)));
  EXPECT_EQ(labels.spacing, (Spacing3{3.0, 2.0, 2.0}));
}

TEST_F(NiftiTest, HeaderOnlyReadGivesTheSameGeometry) {
  const std::string file = kNibabelData + "example4d.nii.gz";
  require_file(file);
  const NiftiGeometry header = read_nifti_geometry(file);
  EXPECT_TRUE(header.same_grid(read_nifti(file).geometry));
  EXPECT_EQ(header.shape, (Shape3{24, 96, 128}));
}

Volume<float> ramp(const Shape3& shape) {
  Volume<float> v(shape);
  for (int64_t i = 0; i < v.size(); ++i) v.voxels[i] = 0.25f * static_cast<float>(i % 1000) - 17.5f;
  return v;
}

void expect_same_header_geometry(const NiftiGeometry& a, const NiftiGeometry& b) {
  EXPECT_TRUE(a.same_grid(b)) << a.difference(b);
  EXPECT_EQ(a.qform_code, b.qform_code);
  EXPECT_EQ(a.sform_code, b.sform_code);
  EXPECT_EQ(a.qfac, b.qfac);
  for (int e = 0; e < 16; ++e) {
    EXPECT_NEAR(a.qform[e], b.qform[e], 1e-4) << "qform element " << e;
    if (a.sform_code > 0) {
      EXPECT_NEAR(a.sform[e], b.sform[e], 1e-4) << "sform element " << e;
    }
  }
}

TEST_F(NiftiTest, WrittenImagesReadBackWithTheSameValuesAndGeometry) {
  const NiftiGeometry rotated = read_nifti_geometry(kItkData + "KmeansTest_T1UCharRaw.nii.gz");
  const NiftiGeometry flipped = read_nifti_geometry(kNibabelData + "anatomical.nii");
  const Volume<float> a = ramp(rotated.shape);
  const Volume<float> b = ramp(flipped.shape);
  for (const char* name : {"out.nii.gz", "out.nii"}) {
    write_nifti(path(name), a, rotated);
    const NiftiImage back = read_nifti(path(name));
    EXPECT_EQ(back.data.voxels, a.voxels) << name;
    expect_same_header_geometry(back.geometry, rotated);
  }
  write_nifti(path("flipped.nii.gz"), b, flipped);
  expect_same_header_geometry(read_nifti_geometry(path("flipped.nii.gz")), flipped);
}

TEST_F(NiftiTest, WritesFourDimensionalImages) {
  const NiftiGeometry g = make_nifti_geometry({5, 6, 7}, {2.5, 0.8, 0.7}, {10.0, -20.0, 30.0});
  MultiVolume<float> image(3, g.shape);
  for (std::size_t i = 0; i < image.voxels.size(); ++i) image.voxels[i] = static_cast<float>(i);
  write_nifti(path("multi.nii.gz"), image, g);
  const NiftiImage back = read_nifti(path("multi.nii.gz"));
  EXPECT_EQ(back.data.channels, 3);
  EXPECT_EQ(back.data.voxels, image.voxels);
  EXPECT_EQ(back.geometry.spacing, (Spacing3{2.5, 0.8f, 0.7f}));  // NIfTI-1 stores float32 pixdim
  expect_same_header_geometry(back.geometry, g);
  expect_affine_near(back.geometry.preferred_affine(), {0.7, 0, 0, 10, 0, 0.8, 0, -20, 0, 0, 2.5, 30}, 1e-6);
}

TEST_F(NiftiTest, LabelsRoundTripAsUint8OrInt16) {
  const NiftiGeometry g = make_nifti_geometry({4, 5, 6}, {3.0, 1.0, 1.0});
  Volume<int16_t> small(g.shape), wide(g.shape);
  for (int64_t i = 0; i < small.size(); ++i) {
    small.voxels[i] = static_cast<int16_t>(i % 7);
    wide.voxels[i] = static_cast<int16_t>((i % 5) * 300 - 1);
  }
  write_nifti_labels(path("small.nii"), small, g);
  write_nifti_labels(path("wide.nii.gz"), wide, g);
  EXPECT_EQ(read_nifti_labels(path("small.nii")).voxels, small.voxels);
  EXPECT_EQ(read_nifti_labels(path("wide.nii.gz")).voxels, wide.voxels);
  EXPECT_EQ(fs::file_size(path("small.nii")), 352u + 120u);  // header + one byte per voxel
}

// A file as other tools write it: int16 storage with scl_slope/scl_inter, written by nifti_clib itself.
void write_scaled_int16(const std::string& path, double slope, double inter) {
  const int64_t dims[8] = {3, 4, 3, 2, 1, 1, 1, 1};
  nifti_image* image = nifti_make_new_nim(dims, DT_INT16, 1);
  ASSERT_NE(image, nullptr);
  auto* data = static_cast<int16_t*>(image->data);
  for (int64_t i = 0; i < image->nvox; ++i) data[i] = static_cast<int16_t>(i - 5);
  image->scl_slope = slope;
  image->scl_inter = inter;
  ASSERT_EQ(nifti_set_filenames(image, path.c_str(), 0, 1), 0);
  nifti_image_write(image);
  nifti_image_free(image);
}

TEST_F(NiftiTest, AppliesSlopeAndIntercept) {
  write_scaled_int16(path("scaled.nii.gz"), 0.5, -10.0);
  const NiftiImage image = read_nifti(path("scaled.nii.gz"));
  ASSERT_EQ(image.data.voxels.size(), 24u);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(image.data.voxels[i], 0.5f * (i - 5) - 10.0f) << i;
  // slope 0 means "not scaled"
  write_scaled_int16(path("unscaled.nii"), 0.0, 100.0);
  EXPECT_EQ(read_nifti(path("unscaled.nii")).data.voxels[0], -5.0f);
  // scaled values that are integral are valid labels
  write_scaled_int16(path("scaled_labels.nii"), 2.0, 10.0);
  EXPECT_EQ(read_nifti_labels(path("scaled_labels.nii")).voxels[0], 0);
}

TEST_F(NiftiTest, FloatLabelsAreRoundedAndNonIntegralLabelsRejected) {
  const NiftiGeometry g = make_nifti_geometry({1, 1, 4}, {1.0, 1.0, 1.0});
  Volume<float> almost(g.shape);
  almost.voxels = {0.0f, 0.99999994f, 2.0000002f, 2.9996f};
  write_nifti(path("almost.nii"), almost, g);
  EXPECT_EQ(read_nifti_labels(path("almost.nii")).voxels, (std::vector<int16_t>{0, 1, 2, 3}));

  Volume<float> half(g.shape);
  half.voxels = {0.0f, 0.5f, 1.0f, 2.5f};
  write_nifti(path("half.nii.gz"), half, g);
  try {
    read_nifti_labels(path("half.nii.gz"));
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr(path("half.nii.gz")));
    EXPECT_THAT(e.what(), HasSubstr("0.5"));
    EXPECT_THAT(e.what(), HasSubstr("2 voxel(s)"));
  }
}

TEST_F(NiftiTest, FourDimensionalFileIsNotALabelMap) {
  EXPECT_THROW(read_nifti_labels(kNibabelData + "example4d.nii.gz"), InputError);
}

void copy_prefix(const std::string& from, const std::string& to, std::size_t bytes) {
  std::ifstream in(from, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(to, std::ios::binary).write(content.data(), static_cast<std::streamsize>(bytes));
}

std::string input_error_message(const std::function<void()>& action) {
  try {
    action();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected InputError";
  return {};
}

TEST_F(NiftiTest, TruncatedGzipIsAnInputErrorNamingTheFileWithoutLibraryNoise) {
  copy_prefix(kNibabelData + "example4d.nii.gz", path("cut.nii.gz"), 346451 / 2);
  copy_prefix(kItkData + "KmeansTest_T1KmeansPrelimSegmentation.nii.gz", path("cut_labels.nii.gz"),
              80954 - 100);
  copy_prefix(kNibabelData + "example4d.nii.gz", path("stub.nii.gz"), 20);
  ::testing::internal::CaptureStderr();
  const std::string cut = input_error_message([&] { read_nifti(path("cut.nii.gz")); });
  const std::string cut_labels = input_error_message([&] { read_nifti_labels(path("cut_labels.nii.gz")); });
  const std::string stub = input_error_message([&] { read_nifti_geometry(path("stub.nii.gz")); });
  const std::string noise = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(cut, HasSubstr(path("cut.nii.gz") + ": image data is truncated"));
  EXPECT_THAT(cut_labels, HasSubstr(path("cut_labels.nii.gz") + ": image data is truncated"));
  EXPECT_THAT(stub, HasSubstr(path("stub.nii.gz") + ": not a readable NIfTI file"));
  EXPECT_EQ(noise, "");
}

// Found by tests/fuzz (fuzz_nifti): a 361-byte header declaring 42 GB of voxels made the reader allocate
// them before finding the data missing.
TEST_F(NiftiTest, HeaderDeclaringMoreDataThanTheFileHoldsIsRefusedBeforeAllocating) {
  const int64_t dims[8] = {3, 2048, 2048, 1024, 1, 1, 1, 1};  // 16 GiB of float32
  nifti_image* image = nifti_make_new_nim(dims, DT_FLOAT32, 0);
  ASSERT_NE(image, nullptr);
  nifti_1_header header{};
  ASSERT_EQ(nifti_convert_nim2n1hdr(image, &header), 0);
  nifti_image_free(image);
  header.vox_offset = 352;
  std::ofstream(path("huge.nii"), std::ios::binary)
      .write(reinterpret_cast<const char*>(&header), sizeof(header))
      .write("\0\0\0\0", 4)
      .write("1234", 4);
  for (const auto& read : std::vector<std::function<void()>>{[&] { read_nifti(path("huge.nii")); },
                                                             [&] { read_nifti_labels(path("huge.nii")); }})
    EXPECT_THAT(
        input_error_message(read),
        HasSubstr(path("huge.nii") + ": image data is truncated: the header declares 4294967296 voxels of "
                                     "FLOAT32 (4 bytes each), more than the 356 bytes of the file can hold"));
}

// Found by tests/fuzz (fuzz_nifti): nifti_clib overflowed its stack (a segfault without sanitizers) on a
// NIfTI-2 header whose dim[0] is out of range in both byte orders.
TEST_F(NiftiTest, HeaderWithoutAValidDimensionCountIsRefused) {
  const int64_t dims[8] = {3, 2, 2, 2, 1, 1, 1, 1};
  nifti_image* image = nifti_make_new_nim(dims, DT_UINT8, 0);
  ASSERT_NE(image, nullptr);
  nifti_2_header header{};
  ASSERT_EQ(nifti_convert_nim2n2hdr(image, &header), 0);
  nifti_image_free(image);
  header.dim[0] = 12885950468;  // 0x300000004: neither it nor its byte swap is 1..7
  header.vox_offset = 544;
  std::ofstream(path("bad_dim0.nii"), std::ios::binary)
      .write(reinterpret_cast<const char*>(&header), sizeof(header))
      .write(std::string(12, '\0').data(), 12);
  for (const auto& read : std::vector<std::function<void()>>{
           [&] { read_nifti(path("bad_dim0.nii")); }, [&] { read_nifti_header(path("bad_dim0.nii")); }})
    EXPECT_THAT(input_error_message(read), HasSubstr(path("bad_dim0.nii") + ": not a readable NIfTI file"));
}

// Found by tests/fuzz (fuzz_nifti): dimensions whose product overflows int64_t (signed overflow in the check
// meant to refuse them).
TEST_F(NiftiTest, DimensionsWhoseProductOverflowsAreRefused) {
  const int64_t dims[8] = {3, 2, 2, 2, 1, 1, 1, 1};
  nifti_image* image = nifti_make_new_nim(dims, DT_UINT8, 0);
  ASSERT_NE(image, nullptr);
  nifti_2_header header{};
  ASSERT_EQ(nifti_convert_nim2n2hdr(image, &header), 0);
  nifti_image_free(image);
  header.dim[1] = header.dim[2] = int64_t{1} << 40;  // 2^80 voxels in a slice
  header.vox_offset = 544;
  std::ofstream(path("overflow.nii"), std::ios::binary)
      .write(reinterpret_cast<const char*>(&header), sizeof(header))
      .write(std::string(12, '\0').data(), 12);
  EXPECT_THAT(input_error_message([&] { read_nifti(path("overflow.nii")); }),
              HasSubstr(path("overflow.nii") + ": invalid dimensions"));
}

TEST_F(NiftiTest, MissingAndMalformedFilesAreInputErrors) {
  EXPECT_THAT(input_error_message([&] { read_nifti(path("absent.nii.gz")); }),
              HasSubstr(path("absent.nii.gz") + ": file not found"));
  std::ofstream(path("text.nii")) << "this is not a NIfTI header";
  EXPECT_THAT(input_error_message([&] { read_nifti(path("text.nii")); }), HasSubstr(path("text.nii")));
  std::ofstream(path("image.png")) << "png";
  EXPECT_THAT(input_error_message([&] { read_nifti(path("image.png")); }), HasSubstr(".nii or .nii.gz"));
  EXPECT_THROW(read_nifti(dir_.string()), InputError);
}

TEST_F(NiftiTest, WritesAreAtomicAndLeaveNoTemporaryFiles) {
  const NiftiGeometry g = make_nifti_geometry({2, 3, 4}, {1.0, 1.0, 1.0});
  write_nifti(path("a.nii.gz"), ramp(g.shape), g);
  Volume<float> zeros(g.shape);
  write_nifti(path("a.nii.gz"), zeros, g);  // replaces the file
  EXPECT_EQ(read_nifti(path("a.nii.gz")).data.voxels, zeros.voxels);
  EXPECT_THAT(input_error_message([&] { write_nifti(path("missing/dir/b.nii.gz"), zeros, g); }),
              HasSubstr("cannot write"));
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir_)) names.push_back(entry.path().filename().string());
  EXPECT_EQ(names, (std::vector<std::string>{"a.nii.gz"}));
}

TEST(NiftiGeometry, DifferenceNamesWhatDiffers) {
  const NiftiGeometry a = make_nifti_geometry({4, 5, 6}, {3.0, 1.0, 1.0});
  EXPECT_TRUE(a.same_grid(a));
  EXPECT_THAT(a.difference(make_nifti_geometry({4, 5, 7}, {3.0, 1.0, 1.0})),
              HasSubstr("shape 4x5x6 vs 4x5x7"));
  EXPECT_THAT(a.difference(make_nifti_geometry({4, 5, 6}, {2.0, 1.0, 1.0})), HasSubstr("spacing"));
  EXPECT_THAT(a.difference(make_nifti_geometry({4, 5, 6}, {3.0, 1.0, 1.0}, {0.0, 0.0, 5.0})),
              HasSubstr("origin"));
  EXPECT_TRUE(a.same_grid(make_nifti_geometry({4, 5, 6}, {3.00001, 1.0, 1.0}, {0.0, 0.0002, 0.0})));
}

}  // namespace
}  // namespace e2e
