// One training epoch, the one record every layer uses: the trainer writes it (epochs.jsonl, checkpoints),
// the sweep sends it to the coordinator, the store keeps it (epochs table), bundles and plots read it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace e2e {

struct EpochRecord {
  int64_t epoch = 0;  // 0-based
  double train_loss = 0;
  double val_loss = 0;
  std::vector<double> pseudo_dice;  // per foreground class
  double mean_pseudo_dice = 0;
  double learning_rate = 0;
  double seconds = 0;
  double loader_wait_fraction = 0;  // share of the epoch spent waiting for batches
  double iterations_per_second = 0;
  double allreduce_fraction = 0;  // share of the epoch spent in the gradient all-reduce (data-parallel)
  int64_t topology_updates = 0;

  // JSON with non-finite numbers as null (common/json_number.hpp); from_json reads null back as NaN and
  // tolerates the fields the store does not keep being absent.
  nlohmann::json to_json() const;
  static EpochRecord from_json(const nlohmann::json& json);
};

}  // namespace e2e
