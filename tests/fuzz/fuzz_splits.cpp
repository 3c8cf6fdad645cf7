// libFuzzer harness: nnU-Net's splits_final.json (read_splits_json). Bad input must end in InputError.
#include <cstddef>
#include <cstdint>

#include "common/errors.hpp"
#include "data/dataset.hpp"
#include "data/folds.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const e2e::fuzz::ScratchDir scratch;
  const auto path = scratch.path() / "splits_final.json";
  e2e::fuzz::write_file(path, e2e::fuzz::as_string(data, size));
  try {
    (void)e2e::read_splits_json(path.string());
  } catch (const e2e::ConfigError& error) {
    e2e::fuzz::rejected(error);
  }
  return 0;
}
