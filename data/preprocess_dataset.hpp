// A whole raw dataset → the preprocessed store (cases.h5, plan.json, fingerprint.json, splits_final.json):
// nnU-Net's fingerprint and plan, then every case through data/preprocess.hpp, in parallel.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "configs/config.hpp"
#include "data/preprocess.hpp"

namespace e2e {

struct PreprocessOptions {
  std::string dataset_dir;       // raw MSD / nnU-Net v1 / v2 dataset
  std::string out_dir;           // receives cases.h5, plan.json, fingerprint.json, splits_final.json
  std::optional<Config> config;  // patch, batch, pools, data.target_spacing, data.compress
  int workers = 0;               // threads computing cases; 0 = hardware concurrency
  std::string splits_file;       // nnU-Net splits_final.json to use instead of KFold(5, 12345)
  bool compress = false;         // gzip + shuffle in the store (also when config.data.compress)
};

struct PreprocessResult {
  std::string store_path;
  bool reused = false;  // the store was already up to date
  int64_t cases = 0;
  Plan plan;
};

// Runs everything. The store is written under a temporary name and renamed into place when complete, so an
// interrupted run never leaves a store that looks complete; a rerun whose inputs (file contents) and
// settings hash like the existing store's reuses it. Bad input throws InputError naming the file; then no
// new output is left behind.
PreprocessResult preprocess_dataset(const PreprocessOptions& options);

}  // namespace e2e
