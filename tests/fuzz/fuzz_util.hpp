// Shared by the libFuzzer harnesses: a scratch folder of this process for readers that take a path, and the
// rule that the only exceptions a reader may throw on bad input are ConfigError/InputError (anything else
// escapes the harness, and libFuzzer reports it as a crash).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace e2e::fuzz {

// A folder under the temp directory, unique to this process, removed when the process exits normally.
class ScratchDir {
 public:
  ScratchDir() {
    path_ = std::filesystem::temp_directory_path() / ("e2e-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("fuzz harness: cannot write " + path.string());
}

inline std::string as_string(const uint8_t* data, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// The fuzz input split at the first `separator`: {before, after}; after is empty when there is none.
inline std::pair<std::string, std::string> split_input(const std::string& input,
                                                       const std::string& separator) {
  const std::size_t at = input.find(separator);
  if (at == std::string::npos) return {input, ""};
  return {input.substr(0, at), input.substr(at + separator.size())};
}

// The expected error of a rejected input: silent, or printed with E2E_FUZZ_VERBOSE=1 (to see why a seed is
// rejected: fuzz_TARGET -runs=0 tests/fuzz/corpus/TARGET).
inline void rejected(const std::exception& error) {
  static const bool verbose = std::getenv("E2E_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "rejected: %s\n", error.what());
}

}  // namespace e2e::fuzz
