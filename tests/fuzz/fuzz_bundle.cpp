// libFuzzer harness: result bundles as `e2e db import` reads them. The input is bundle.json, optionally
// followed by "\n--final.e2et--\n" and the bytes of masks/final.e2et (a serialized Topology). A bundle that
// reads is then imported into a fresh store (import_bundles validates it again and ingests it). Bad input
// must end in InputError/ConfigError.
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>

#include "common/errors.hpp"
#include "db/bundle.hpp"
#include "db/store.hpp"
#include "tests/fuzz/fuzz_util.hpp"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const e2e::fuzz::ScratchDir scratch;
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  const fs::path bundle = scratch.path() / "bundle";
  const auto [bundle_json, final_mask] =
      e2e::fuzz::split_input(e2e::fuzz::as_string(data, size), "\n--final.e2et--\n");
  fs::create_directories(bundle / "masks");
  e2e::fuzz::write_file(bundle / "bundle.json", bundle_json);
  e2e::fuzz::write_file(bundle / "masks" / "final.e2et", final_mask);
  try {
    (void)e2e::read_result_bundle(bundle.string());
  } catch (const e2e::ConfigError& error) {
    e2e::fuzz::rejected(error);
    return 0;
  }
  const fs::path store_path = scratch.path() / "store.sqlite";
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(store_path.string() + suffix);
  try {
    e2e::Store store(store_path.string());
    (void)e2e::import_bundles(store, {bundle.string()});
  } catch (const e2e::ConfigError& error) {
    e2e::fuzz::rejected(error);
  }
  return 0;
}
