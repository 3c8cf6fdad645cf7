// Runs the e2e binary (E2E_EXE) as a user would, for the CLI tests.
#pragma once

#include <sys/wait.h>

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

namespace e2e_cli {

struct CliResult {
  int exit_code;
  std::string output;  // stdout, and stderr unless dropped
};

inline CliResult run_e2e(const std::string& args, bool keep_stderr = true) {
  const std::string command = std::string(E2E_EXE) + " " + args + (keep_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  std::array<char, 4096> buffer{};
  while (std::size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// A test with a fresh folder of its own (<temp>/<prefix><pid>), removed afterwards.
class CliFolderTest : public ::testing::Test {
 protected:
  explicit CliFolderTest(const std::string& prefix)
      : root_(std::filesystem::temp_directory_path() / (prefix + std::to_string(::getpid()))) {}
  void SetUp() override {
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string path(const std::string& name) const { return (root_ / name).string(); }
  std::filesystem::path root_;
};

}  // namespace e2e_cli
