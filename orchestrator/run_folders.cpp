#include "orchestrator/run_folders.hpp"

#include <fmt/format.h>

#include <filesystem>

namespace e2e {

std::string default_runs_dir(const std::string& store_path) {
  return (std::filesystem::path(store_path).parent_path() / "runs").string();
}

std::string job_folder(const std::string& runs_dir, const std::string& experiment, int fold, double sparsity,
                       uint64_t seed) {
  return (std::filesystem::path(runs_dir) / experiment /
          fmt::format("fold{}_s{}_seed{}", fold, sparsity, seed))
      .string();
}

std::string ensemble_folder(const std::string& runs_dir, const std::string& experiment, double sparsity,
                            uint64_t seed) {
  return (std::filesystem::path(runs_dir) / experiment / fmt::format("test_s{}_seed{}", sparsity, seed))
      .string();
}

}  // namespace e2e
