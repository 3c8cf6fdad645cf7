// libFuzzer harness: dataset.json (read_raw_dataset) over a fixed folder with an MSD-style case
// (msd/imagesTr/case_000.nii.gz), an nnU-Net case (imagesTr/case_001_0000 and _0001, labelsTr/case_001) and
// test images, so that listing can succeed for each layout. The files are empty: only the listing is read
// here. Bad input must end in InputError.
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>

#include "common/errors.hpp"
#include "data/dataset.hpp"
#include "tests/fuzz/fuzz_util.hpp"

namespace {

const e2e::fuzz::ScratchDir& dataset_root() {
  static const e2e::fuzz::ScratchDir scratch;
  static const bool laid_out = [] {
    spdlog::set_level(spdlog::level::off);  // the reader warns about skipped files; keep the log readable
    for (const char* file :
         {"msd/imagesTr/case_000.nii.gz", "msd/labelsTr/case_000.nii.gz", "msd/imagesTs/case_002.nii.gz",
          "imagesTr/case_001_0000.nii.gz", "imagesTr/case_001_0001.nii.gz", "imagesTr/._case_001_0000.nii.gz",
          "labelsTr/case_001.nii.gz", "imagesTs/case_002_0000.nii.gz", "imagesTs/case_002_0001.nii.gz",
          "imagesTr/case_003_0000.nii", "labelsTr/case_003.nii"}) {
      const auto path = scratch.path() / file;
      std::filesystem::create_directories(path.parent_path());
      e2e::fuzz::write_file(path, "");
    }
    return true;
  }();
  (void)laid_out;
  return scratch;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const auto& root = dataset_root();
  e2e::fuzz::write_file(root.path() / "dataset.json", e2e::fuzz::as_string(data, size));
  try {
    const e2e::RawDataset dataset = e2e::read_raw_dataset(root.path().string());
    (void)dataset.declared_label_values();
  } catch (const e2e::ConfigError& error) {
    e2e::fuzz::rejected(error);
  }
  return 0;
}
