#pragma once

#include <string>

#include "configs/config.hpp"

namespace e2e::test {

inline std::string source_path(const std::string& relative) {
  return std::string(E2E_SOURCE_DIR) + "/" + relative;
}

inline Config load_repo_config(const std::string& name) {
  return load_config(source_path("configs/" + name));
}

// A 3-level, 4-channel network: small enough for exhaustive DSFF checks.
inline ModelConfig tiny_model() {
  ModelConfig m;
  m.levels = 3;
  m.base_channels = 4;
  m.max_channels = 8;
  m.in_channels = 1;
  m.num_classes = 3;
  m.pools = {{1, 2, 2}, {2, 2, 2}};
  return m;
}

}  // namespace e2e::test
