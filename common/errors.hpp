// The two error types every layer throws; the command line maps both to exit code 2.
#pragma once

#include <stdexcept>

namespace e2e {

// A configuration or usage error. The message names the offending field or file; the CLI exits with code 2.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad input data (a dataset file, a store, a checkpoint): also exit code 2; the message names the file and
// the problem.
class InputError : public ConfigError {
 public:
  using ConfigError::ConfigError;
};

}  // namespace e2e
