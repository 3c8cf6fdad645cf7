// Progress display (worker/progress.hpp): the bar's text, the in-place redraw of a block of lines with log
// lines above it, and terminal detection when the output is not a terminal.
#include "worker/progress.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace e2e {
namespace {

using ::testing::HasSubstr;

TEST(Progress, BarText) {
  StepProgress p;
  p.epoch = 1;
  p.epochs = 8;
  p.step = 15;
  p.steps = 50;
  p.mean_loss = 0.81234;
  p.iterations_per_second = 4.21;
  EXPECT_EQ(render_bar(p, 10), "  epoch 2/8 [###.......] 15/50  loss 0.8123  4.2 it/s");
  p.step = 99;  // clamped
  EXPECT_THAT(render_bar(p, 10), HasSubstr("[##########] 50/50"));
}

TEST(Progress, RedrawMovesUpOverThePreviousBlock) {
  EXPECT_EQ(TerminalFrame::redraw_text(0, "", {"a", "b"}, 0), "\r\x1b[Ja\nb\n");
  EXPECT_EQ(TerminalFrame::redraw_text(2, "", {"c"}, 0), "\x1b[2A\r\x1b[Jc\n");
  // A log line goes above the block, which is drawn again below it.
  EXPECT_EQ(TerminalFrame::redraw_text(1, "log line", {"c"}, 0), "\x1b[1A\r\x1b[Jlog line\nc\n");
  // Lines are cut to the width minus one, so that none wraps and the cursor arithmetic holds.
  EXPECT_EQ(TerminalFrame::redraw_text(0, "", {"abcdefgh"}, 5), "\r\x1b[Jabcd\n");
}

TEST(Progress, FrameKeepsLogLinesAboveTheBlock) {
  char* buffer = nullptr;
  std::size_t size = 0;
  std::FILE* out = open_memstream(&buffer, &size);
  ASSERT_NE(out, nullptr);
  {
    TerminalFrame frame(out, 80);
    frame.draw({"one", "two"});
    frame.print("hello");
    frame.clear();
    frame.clear();  // nothing left to clear
  }
  std::fclose(out);
  const std::string text(buffer, size);
  free(buffer);
  EXPECT_EQ(text,
            "\r\x1b[Jone\ntwo\n"
            "\x1b[2A\r\x1b[Jhello\none\ntwo\n"
            "\x1b[2A\r\x1b[J");
}

TEST(Progress, APipeIsNoTerminal) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const TerminalInfo info = output_terminal(fds[1]);
  EXPECT_FALSE(info.terminal);
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace e2e
