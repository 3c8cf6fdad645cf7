// PNG figures drawn by gnuplot when it is installed: learning curves and fusion-direction bars.
#pragma once

#include <string>
#include <vector>

#include "db/fusion.hpp"
#include "db/records.hpp"

namespace e2e {

bool gnuplot_available();

// Both return false (and write nothing) when gnuplot is not installed; throw StoreError when it fails.
// The PNG appears at `png_path` only once complete.
bool plot_curves_png(const std::vector<EpochRecord>& epochs, const std::string& title,
                     const std::string& png_path);
bool plot_fusion_png(const std::vector<FusionNodeShares>& nodes, const std::string& title,
                     const std::string& png_path);

// The data behind the curves: epoch, losses, mean and per-class pseudo-Dice, lr, seconds, loader wait.
std::string curves_csv(const std::vector<EpochRecord>& epochs);

}  // namespace e2e
