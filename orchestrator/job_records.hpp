// Translation between what a job produces (its metrics.json, epochs) and the experiment store's records
// (db/). Plain C++: the coordinator's side of the sweep uses it without LibTorch.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "db/records.hpp"

namespace e2e {

// This machine's name, recorded as a job's node.
std::string host_name();

// "<experiment> fold F s=S seed N": a job in titles and log lines.
std::string job_title(const std::string& experiment, int fold, double sparsity, uint64_t seed);

// <out_dir>/learning_curve.png (train / val loss, mean pseudo-Dice) from a finished job's epochs, drawn by
// db/plot.hpp's gnuplot plotter. A missing or failing gnuplot only logs a warning: the epochs themselves are
// in epochs.jsonl and the store.

void write_learning_curve(const std::vector<EpochRecord>& history, const std::string& title,
                          const std::string& out_dir);

// From metrics.json (evaluation report + "complexity") and the final topology bytes.
JobResult to_store_result(const nlohmann::json& metrics, const std::string& topology_bytes,
                          int64_t update_step);

// From a test ensemble's metrics.json (worker/ensemble.hpp): split test, the case metrics with and without
// post-processing, the decision, and how many test cases were scored.
JobResult to_store_test_result(const nlohmann::json& metrics);

}  // namespace e2e
