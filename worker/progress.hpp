// Progress on a terminal, kept apart from training: what a step reports (StepProgress), the one-line bar of
// `e2e train`, a block of status lines redrawn in place at the bottom of a terminal with log lines printed
// above it (TerminalFrame, FrameSink), and whether this process's output really reaches a terminal.
//
// Under Open MPI every rank's stdout is a pseudo-terminal that mpirun copies to its own stdout, so isatty()
// says yes even when mpirun writes to a file: output_terminal() asks about mpirun's stdout instead.
#pragma once

#include <spdlog/sinks/base_sink.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace e2e {

// After each training step (Trainer hooks): where the job is and how fast it goes.
struct StepProgress {
  int64_t epoch = 0;   // 0-based
  int64_t epochs = 0;  // planned
  int64_t step = 0;    // steps done in this epoch (1..steps)
  int64_t steps = 0;   // iterations per epoch
  int64_t iteration = 0;
  int64_t total_iterations = 0;
  double mean_loss = 0;              // the epoch's running mean training loss
  double iterations_per_second = 0;  // this epoch so far
};

// "  epoch 2/8 [#########.....................] 15/50  loss 0.8123  4.2 it/s" (ASCII only).
std::string render_bar(const StepProgress& progress, int width = 30);

struct TerminalInfo {
  bool terminal = false;  // output reaches a person's terminal: live views and bars are welcome
  int columns = 0;        // its width (0 = unknown)
};

// Whether file descriptor `fd` (default stdout) reaches a terminal. Launched by Open MPI's mpirun (on the
// node it runs on), the answer is mpirun's own stdout; launched some other way under MPI, isatty() of fd.
TerminalInfo output_terminal(int fd = 1);

// A block of status lines at the bottom of a terminal, redrawn in place (cursor up, clear to the end of the
// screen, the new lines); print() writes a log line above it. Lines are cut to the terminal width so that the
// cursor arithmetic holds. Thread-safe.
class TerminalFrame {
 public:
  explicit TerminalFrame(std::FILE* out, int columns = 0);
  ~TerminalFrame();  // leaves the last frame on screen
  TerminalFrame(const TerminalFrame&) = delete;
  TerminalFrame& operator=(const TerminalFrame&) = delete;

  void draw(const std::vector<std::string>& lines);
  void clear();                         // removes the block
  void print(const std::string& text);  // a log line (a newline is added when missing)

  // The escape sequences for one redraw: erase `previous_lines` lines above the cursor, write `text`, then
  // `lines` (for tests).
  static std::string redraw_text(std::size_t previous_lines, const std::string& text,
                                 const std::vector<std::string>& lines, int columns);

 private:
  void write_locked(const std::string& text, const std::vector<std::string>& lines);
  std::mutex mutex_;
  std::FILE* out_;
  int columns_;
  std::vector<std::string> lines_;
};

// An spdlog sink that prints through a TerminalFrame (the default pattern, without colours), so that log
// lines scroll above the live block instead of through it.
class FrameSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit FrameSink(std::shared_ptr<TerminalFrame> frame);

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override;
  void flush_() override {}

 private:
  std::shared_ptr<TerminalFrame> frame_;
};

// The one-line progress bar of `e2e train` on a terminal: installs a FrameSink as the default logger's sink
// for its lifetime (log lines above the bar) and draws the bar after each step; at the end of an epoch the
// bar is cleared so that the epoch's log line takes its place.
class ProgressBar {
 public:
  explicit ProgressBar(const TerminalInfo& terminal);
  ~ProgressBar();  // clears the bar and restores the default logger's sinks
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  void update(const StepProgress& progress);  // redraws at most 10 times a second

 private:
  std::shared_ptr<TerminalFrame> frame_;
  std::chrono::steady_clock::time_point last_draw_{};
  std::vector<spdlog::sink_ptr> saved_sinks_;
};

}  // namespace e2e
