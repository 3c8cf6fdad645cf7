#include "db/plot.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/file_io.hpp"
#include "db/sqlite.hpp"

extern char** environ;

namespace e2e {

namespace {

namespace fs = std::filesystem;

// A private temporary folder, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "e2e-plot-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw StoreError("cannot create a temporary folder for gnuplot");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// gnuplot single-quoted strings: a quote is doubled.
std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string terminal_preamble(const fs::path& png, int width, int height) {
  return fmt::format(
      "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {{\n  set terminal pngcairo size {0},{1} noenhanced\n}} "
      "else "
      "{{\n  set terminal png size {0},{1} noenhanced\n}}\nset output {2}\n",
      width, height, quoted(png.string()));
}

// Runs gnuplot on the script (no shell involved), then moves the PNG into place.
void run_gnuplot(const TempDir& dir, const std::string& script, const std::string& png_path) {
  const fs::path script_path = dir.path() / "plot.gp";
  const fs::path log_path = dir.path() / "gnuplot.log";
  std::ofstream(script_path) << script;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  std::string program = "gnuplot";
  std::string argument = script_path.string();
  char* argv[] = {program.data(), argument.data(), nullptr};
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) throw StoreError("cannot start gnuplot");
  int status = 0;
  waitpid(pid, &status, 0);
  const fs::path produced = dir.path() / "figure.png";
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !fs::exists(produced))
    throw StoreError("gnuplot failed: " + try_read_file(log_path.string()).value_or("").substr(0, 500));
  write_file_atomically(png_path, read_file(produced.string()));
}

std::string number(double value) {
  return std::isfinite(value) ? fmt::format("{}", value) : "NaN";
}

}  // namespace

bool gnuplot_available() {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':'))
    if (!dir.empty() && access((fs::path(dir) / "gnuplot").c_str(), X_OK) == 0) return true;
  return false;
}

std::string curves_csv(const std::vector<EpochRecord>& epochs) {
  std::size_t classes = 0;
  for (const EpochRecord& e : epochs) classes = std::max(classes, e.pseudo_dice.size());
  std::string out = "epoch,train_loss,val_loss,mean_pseudo_dice";
  for (std::size_t c = 0; c < classes; ++c) out += fmt::format(",pseudo_dice_{}", c + 1);
  out += ",learning_rate,seconds,loader_wait_fraction\n";
  for (const EpochRecord& e : epochs) {
    out += fmt::format("{},{},{},{}", e.epoch, number(e.train_loss), number(e.val_loss),
                       number(e.mean_pseudo_dice));
    for (std::size_t c = 0; c < classes; ++c)
      out += "," + (c < e.pseudo_dice.size() ? number(e.pseudo_dice[c]) : "");
    out += fmt::format(",{},{},{}\n", number(e.learning_rate), number(e.seconds),
                       number(e.loader_wait_fraction));
  }
  return out;
}

bool plot_curves_png(const std::vector<EpochRecord>& epochs, const std::string& title,
                     const std::string& png_path) {
  if (!gnuplot_available()) return false;
  TempDir dir;
  const fs::path data = dir.path() / "curves.dat";
  {
    std::ofstream out(data);
    for (const EpochRecord& e : epochs)
      out << e.epoch << ' ' << number(e.train_loss) << ' ' << number(e.val_loss) << ' '
          << number(e.mean_pseudo_dice) << '\n';
  }
  const std::string script =
      terminal_preamble(dir.path() / "figure.png", 900, 540) +
      fmt::format("set title {}\nset xlabel 'epoch'\nset ylabel 'loss'\nset y2label 'pseudo-Dice'\n",
                  quoted(title)) +
      "set y2range [0:1]\nset ytics nomirror\nset y2tics\nset grid\nset key outside bottom center "
      "horizontal\n"
      "set datafile missing 'NaN'\n" +
      fmt::format(
          "plot {0} using 1:2 with lines lw 2 title 'train loss', \\\n"
          "     {0} using 1:3 with lines lw 2 title 'val loss', \\\n"
          "     {0} using 1:4 axes x1y2 with linespoints lw 2 title 'mean pseudo-Dice'\n",
          quoted(data.string()));
  run_gnuplot(dir, script, png_path);
  return true;
}

bool plot_fusion_png(const std::vector<FusionNodeShares>& nodes, const std::string& title,
                     const std::string& png_path) {
  if (!gnuplot_available()) return false;
  TempDir dir;
  const fs::path data = dir.path() / "fusion.dat";
  {
    std::ofstream out(data);
    out << "node forward upward downward\n";
    for (const FusionNodeShares& n : nodes)
      out << n.node << ' ' << n.forward.share << ' ' << n.upward.share << ' ' << n.downward.share << '\n';
  }
  const std::string script =
      terminal_preamble(dir.path() / "figure.png", 1000, 500) +
      fmt::format("set title {}\nset ylabel 'share of active kernels'\nset yrange [0:1]\n", quoted(title)) +
      "set style data histograms\nset style histogram rowstacked\nset style fill solid 0.85 border -1\n"
      "set boxwidth 0.75\nset key outside right top\nset xtics rotate by -45\nset grid ytics\n" +
      fmt::format(
          "plot {0} using 2:xtic(1) title columnheader(2), '' using 3 title columnheader(3), "
          "'' using 4 title columnheader(4)\n",
          quoted(data.string()));
  run_gnuplot(dir, script, png_path);
  return true;
}

}  // namespace e2e
