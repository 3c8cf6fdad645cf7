// libFuzzer harness: the YAML experiment config (parse_config, then the JSON form and hash a valid config is
// stored under). Bad input must end in ConfigError.
#include <cstddef>
#include <cstdint>

#include "configs/config.hpp"
#include "configs/config_json.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  try {
    const e2e::Config config = e2e::parse_config(e2e::fuzz::as_string(data, size), "fuzz.yaml");
    (void)e2e::config_to_json(config);
    (void)e2e::config_hash(config);
  } catch (const e2e::ConfigError& error) {
    e2e::fuzz::rejected(error);
  }
  return 0;
}
