// libFuzzer harness: NIfTI-1/2 files (read_nifti, read_nifti_labels). An input starting with the gzip magic
// is read as .nii.gz, any other as .nii. Bad input must end in InputError, and a small file must not make the
// reader allocate gigabytes (libFuzzer's -malloc_limit_mb reports that).
#include <cstddef>
#include <cstdint>

#include "common/errors.hpp"
#include "data/nifti.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const e2e::fuzz::ScratchDir scratch;
  const bool gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  const auto path = scratch.path() / (gzip ? "image.nii.gz" : "image.nii");
  e2e::fuzz::write_file(path, e2e::fuzz::as_string(data, size));
  try {
    (void)e2e::read_nifti(path.string());
  } catch (const e2e::ConfigError& error) {
    e2e::fuzz::rejected(error);
  }
  try {
    e2e::NiftiGeometry geometry;
    (void)e2e::read_nifti_labels(path.string(), &geometry);
  } catch (const e2e::ConfigError& error) {
    e2e::fuzz::rejected(error);
  }
  return 0;
}
