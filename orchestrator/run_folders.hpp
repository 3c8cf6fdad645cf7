// Where job folders live, one rule for `e2e train` and `e2e sweep`: <runs>/<experiment>/fold<F>_s<S>_seed<N>
// for a training job, <runs>/<experiment>/test_s<S>_seed<N> for a test ensemble; <runs> defaults to the
// folder "runs" next to the store (store.path or --db).
#pragma once

#include <cstdint>
#include <string>

namespace e2e {

std::string default_runs_dir(const std::string& store_path);
std::string job_folder(const std::string& runs_dir, const std::string& experiment, int fold, double sparsity,
                       uint64_t seed);
std::string ensemble_folder(const std::string& runs_dir, const std::string& experiment, double sparsity,
                            uint64_t seed);

}  // namespace e2e
