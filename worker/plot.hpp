// Learning curves drawn by gnuplot (a real plotting tool): epochs.jsonl → learning_curve.png.
#pragma once

#include <string>
#include <vector>

namespace e2e {

struct EpochRecord;

// Writes <out_dir>/learning_curve.png (train/val loss, mean pseudo-Dice on a second axis). Returns false
// with a warning in the log when gnuplot is missing or fails; training never fails because of a plot.
bool plot_learning_curve(const std::vector<EpochRecord>& history, const std::string& out_dir);

}  // namespace e2e
