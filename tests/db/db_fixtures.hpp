// Shared helpers of the store tests: a temporary folder per test, a small experiment, results and topologies.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "db/records.hpp"
#include "db/store.hpp"

namespace e2e::testing {

namespace fs = std::filesystem;

class TempFolder {
 public:
  TempFolder() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("e2e_db_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A config JSON with the fields the store reads (model channels, training epochs).
inline std::string tiny_config_json(int epochs = 4, int levels = 3, int base = 4, int max_channels = 12) {
  return "{\"model\": {\"levels\": " + std::to_string(levels) +
         ", \"base_channels\": " + std::to_string(base) +
         ", \"max_channels\": " + std::to_string(max_channels) +
         "}, \"training\": {\"epochs\": " + std::to_string(epochs) + "}}";
}

inline ExperimentInfo experiment_info(const std::string& name = "demo", const std::string& hash = "hash-a",
                                      int epochs = 4) {
  return {name, tiny_config_json(epochs), hash, "fingerprint-1", "test"};
}

inline JobGrid grid(std::vector<int> folds, std::vector<double> sparsities, int max_attempts = 3) {
  return {std::move(folds), std::move(sparsities), {0}, max_attempts};
}

inline ResultSummary summary(double mdice, double mnsd = 0.5, int64_t params = 1000000, double flops = 2e9) {
  ResultSummary s;
  s.mean_dice = mdice;
  s.mean_nsd = mnsd;
  s.mean_hd95 = 3.0;
  s.params = params;
  s.flops = flops;
  s.patch = {16, 32, 32};
  return s;
}

// A topology with one tensor per name, every `stride`-th kernel active.
inline Topology striped_topology(const std::vector<std::string>& names, int64_t rows, int64_t cols,
                                 int stride) {
  Topology t;
  for (const std::string& name : names) {
    TensorMask mask(name, rows, cols);
    for (int64_t k = 0; k < mask.size(); k += stride) mask.set(k, true);
    t.tensors.push_back(std::move(mask));
  }
  return t;
}

}  // namespace e2e::testing
