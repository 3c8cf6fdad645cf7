// Runs the e2e binary (E2E_EXE) as a user would, for the CLI tests.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
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

}  // namespace e2e_cli
