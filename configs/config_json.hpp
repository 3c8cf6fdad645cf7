// A configuration as canonical JSON, and its hash (the job identity).
#pragma once

#include <string>

#include "configs/config.hpp"

namespace e2e {

// Canonical JSON of the whole configuration (for the store, checkpoints and result bundles).
std::string config_to_json(const Config& config);

// SHA-256 over the sections that change results (model, sparsity, training, data, eval) — not the store
// path, the sweep's job list or the file name — so relaunching with another --folds keeps job identities.
std::string config_hash(const Config& config);

}  // namespace e2e
