#include "worker/plot.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "worker/trainer.hpp"

namespace e2e {

bool plot_learning_curve(const std::vector<EpochRecord>& history, const std::string& out_dir) {
  if (history.empty()) return false;
  const std::filesystem::path dir(out_dir);
  const std::filesystem::path data = dir / "learning_curve.dat";
  const std::filesystem::path script = dir / "learning_curve.gp";
  const std::filesystem::path png = dir / "learning_curve.png";
  {
    std::ofstream out(data);
    out << "# epoch train_loss val_loss mean_pseudo_dice lr\n";
    for (const EpochRecord& r : history)
      out << r.epoch + 1 << ' ' << r.train_loss << ' ' << r.val_loss << ' ' << r.mean_pseudo_dice << ' '
          << r.learning_rate << '\n';
  }
  {
    std::ofstream out(script);
    out << "set terminal pngcairo size 900,540 noenhanced\n"
        << "set output '" << png.string() << "'\n"
        << "set title 'learning curve'\nset xlabel 'epoch'\nset ylabel 'loss'\nset y2label 'pseudo-Dice'\n"
        << "set y2range [0:1]\nset ytics nomirror\nset y2tics\nset key outside bottom center horizontal\n"
        << "set grid\n"
        << "plot '" << data.string() << "' using 1:2 with lines lw 2 title 'train loss', \\\n"
        << "     '' using 1:3 with lines lw 2 title 'val loss', \\\n"
        << "     '' using 1:4 axes x1y2 with linespoints lw 2 title 'pseudo-Dice'\n";
  }
  const std::string command = "gnuplot '" + script.string() + "' > /dev/null 2>&1";
  if (std::system(command.c_str()) != 0) {
    // pngcairo may be missing in minimal gnuplot builds: fall back to the plain png terminal.
    std::string fallback = "sed -i 's/pngcairo/png/' '" + script.string() + "' && " + command;
    if (std::system(fallback.c_str()) != 0) {
      spdlog::warn("could not draw {} (is gnuplot installed?)", png.string());
      return false;
    }
  }
  return std::filesystem::exists(png);
}

}  // namespace e2e
