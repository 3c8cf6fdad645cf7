#include "worker/progress.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace e2e {

namespace {

int columns_of(int fd) {
  winsize size{};
  if (ioctl(fd, TIOCGWINSZ, &size) == 0) return size.ws_col;
  return 0;
}

// The terminal behind a /proc/<pid>/fd/<n> link, if it is one (a path under /dev/pts or /dev/tty*).
TerminalInfo terminal_behind(const std::string& link) {
  char target[256] = {};
  const ssize_t length = readlink(link.c_str(), target, sizeof(target) - 1);
  if (length <= 0) return {};
  const std::string path(target, static_cast<std::size_t>(length));
  if (path.rfind("/dev/pts/", 0) != 0 && path.rfind("/dev/tty", 0) != 0) return {};
  TerminalInfo info{true, 0};
  const int fd = open(path.c_str(), O_RDONLY | O_NOCTTY | O_NONBLOCK);
  if (fd >= 0) {
    info.terminal = isatty(fd) != 0;
    info.columns = columns_of(fd);
    close(fd);
  }
  return info;
}

}  // namespace

std::string render_bar(const StepProgress& p, int width) {
  const int64_t steps = std::max<int64_t>(p.steps, 1);
  const int64_t step = std::clamp<int64_t>(p.step, 0, steps);
  const int64_t filled = width * step / steps;
  return fmt::format("  epoch {}/{} [{}{}] {}/{}  loss {:.4f}  {:.1f} it/s", p.epoch + 1, p.epochs,
                     std::string(static_cast<std::size_t>(filled), '#'),
                     std::string(static_cast<std::size_t>(width - filled), '.'), step, steps, p.mean_loss,
                     p.iterations_per_second);
}

TerminalInfo output_terminal(int fd) {
  if (!isatty(fd)) return {};
  if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr) {
    // mpirun gave this rank a pseudo-terminal; mpirun's own output decides. Ranks that are not mpirun's
    // children (other nodes, daemons) get plain output.
    return terminal_behind(fmt::format("/proc/{}/fd/{}", getppid(), fd));
  }
  return {true, columns_of(fd)};
}

// ------------------------------------------------------------------------------------------ TerminalFrame

TerminalFrame::TerminalFrame(std::FILE* out, int columns) : out_(out), columns_(columns) {}

TerminalFrame::~TerminalFrame() = default;

std::string TerminalFrame::redraw_text(std::size_t previous_lines, const std::string& text,
                                       const std::vector<std::string>& lines, int columns) {
  std::string out;
  if (previous_lines > 0) out += fmt::format("\x1b[{}A", previous_lines);
  out += "\r\x1b[J";  // to the start of the block, erase to the end of the screen
  out += text;
  if (!text.empty() && text.back() != '\n') out += '\n';
  const std::size_t limit = columns > 1 ? static_cast<std::size_t>(columns - 1) : std::string::npos;
  for (const std::string& line : lines) {
    out += line.size() > limit ? line.substr(0, limit) : line;
    out += '\n';
  }
  return out;
}

void TerminalFrame::write_locked(const std::string& text, const std::vector<std::string>& lines) {
  const std::string bytes = redraw_text(lines_.size(), text, lines, columns_);
  std::fwrite(bytes.data(), 1, bytes.size(), out_);
  std::fflush(out_);
  lines_ = lines;
}

void TerminalFrame::draw(const std::vector<std::string>& lines) {
  std::lock_guard<std::mutex> lock(mutex_);
  write_locked("", lines);
}

void TerminalFrame::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!lines_.empty()) write_locked("", {});
}

void TerminalFrame::print(const std::string& text) {
  std::lock_guard<std::mutex> lock(mutex_);
  write_locked(text, lines_);
}

// ------------------------------------------------------------------------------------------ FrameSink

FrameSink::FrameSink(std::shared_ptr<TerminalFrame> frame) : frame_(std::move(frame)) {
  set_formatter(std::make_unique<spdlog::pattern_formatter>("[%Y-%m-%d %H:%M:%S.%e] [%l] %v"));
}

void FrameSink::sink_it_(const spdlog::details::log_msg& message) {
  spdlog::memory_buf_t formatted;
  formatter_->format(message, formatted);
  frame_->print(fmt::to_string(formatted));
}

// ------------------------------------------------------------------------------------------ ProgressBar

ProgressBar::ProgressBar(const TerminalInfo& terminal)
    : frame_(std::make_shared<TerminalFrame>(stdout, terminal.columns)) {
  auto& sinks = spdlog::default_logger()->sinks();
  saved_sinks_ = sinks;
  sinks = {std::make_shared<FrameSink>(frame_)};
}

ProgressBar::~ProgressBar() {
  frame_->clear();
  spdlog::default_logger()->sinks() = saved_sinks_;
}

void ProgressBar::update(const StepProgress& progress) {
  if (progress.step >= progress.steps) {
    frame_->clear();  // the epoch's log line follows
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  frame_->draw({render_bar(progress)});
}

}  // namespace e2e
