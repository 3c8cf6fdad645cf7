// Files we write must show the same geometry in an independent reader: nifti_tool (Debian nifti-bin).
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "data/nifti.hpp"

namespace e2e {
namespace {

namespace fs = std::filesystem;

const char* kRotatedItkImage =
    "/usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz";

// nifti_tool -disp_hdr rows: "name offset nvals values...". Returns name → values.
std::map<std::string, std::vector<double>> header_fields(const std::string& file) {
  const std::string command = "nifti_tool -disp_hdr -infiles '" + file + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return {};
  std::map<std::string, std::vector<double>> fields;
  char line[4096];
  while (fgets(line, sizeof line, pipe)) {
    std::istringstream row(line);
    std::string name;
    int offset = 0, count = 0;
    if (!(row >> name >> offset >> count)) continue;
    std::vector<double> values;
    for (double v; static_cast<int>(values.size()) < count && row >> v;) values.push_back(v);
    if (static_cast<int>(values.size()) == count) fields[name] = values;
  }
  pclose(pipe);
  return fields;
}

std::string find_rotated_image() {
  if (fs::exists(kRotatedItkImage)) return kRotatedItkImage;
  for (const auto& entry :
       fs::recursive_directory_iterator("/usr/share", fs::directory_options::skip_permission_denied))
    if (entry.path().filename() == "KmeansTest_T1UCharRaw.nii.gz") return entry.path().string();
  return "";
}

TEST(NiftiTool, WrittenFilesKeepTheGeometryOfTheInput) {
  if (std::system("command -v nifti_tool > /dev/null 2>&1") != 0)
    GTEST_FAIL() << "nifti_tool missing (scripts/setup installs nifti-bin)";
  const std::string input = find_rotated_image();
  ASSERT_FALSE(input.empty())
      << "KmeansTest_T1UCharRaw.nii.gz missing (scripts/setup installs insighttoolkit5-examples)";
  const fs::path dir = fs::temp_directory_path() / ("e2e_nifti_tool_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const NiftiImage image = read_nifti(input);
  Volume<float> volume(image.data.shape, image.data.spacing);
  volume.voxels.assign(image.data.channel(0), image.data.channel(0) + image.data.channel_size());
  const std::string image_out = (dir / "image.nii.gz").string();
  write_nifti(image_out, volume, image.geometry);
  Volume<int16_t> labels(image.data.shape, image.data.spacing, 1);
  const std::string labels_out = (dir / "labels.nii").string();
  write_nifti_labels(labels_out, labels, image.geometry);

  const auto original = header_fields(input);
  ASSERT_TRUE(original.count("dim") && original.count("srow_x")) << "could not parse nifti_tool output";
  for (const std::string& written : {image_out, labels_out}) {
    const auto fields = header_fields(written);
    for (const char* name : {"qform_code", "sform_code", "srow_x", "srow_y", "srow_z", "quatern_b",
                             "quatern_c", "quatern_d", "qoffset_x", "qoffset_y", "qoffset_z"}) {
      ASSERT_TRUE(fields.count(name)) << written << ": no " << name;
      ASSERT_EQ(fields.at(name).size(), original.at(name).size()) << name;
      for (std::size_t i = 0; i < fields.at(name).size(); ++i)
        EXPECT_NEAR(fields.at(name)[i], original.at(name)[i], 1e-4)
            << written << " " << name << "[" << i << "]";
    }
    for (int i = 1; i <= 3; ++i) {
      EXPECT_EQ(fields.at("dim")[i], original.at("dim")[i]) << written << " dim[" << i << "]";
      EXPECT_NEAR(fields.at("pixdim")[i], original.at("pixdim")[i], 1e-5)
          << written << " pixdim[" << i << "]";
    }
    EXPECT_EQ(fields.at("pixdim")[0], original.at("pixdim")[0]) << written << " qfac";
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace e2e
