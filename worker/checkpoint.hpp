// Checkpoint files: a small self-describing container around a LibTorch archive.
//   "E2ECKPT1" | u64 length | meta JSON | u64 length | payload (torch archive bytes)
// The meta JSON carries the payload's SHA-256, so truncation and bit rot are detected before LibTorch ever
// parses the payload; it also names the job (config hash, fold, sparsity, seed) so a checkpoint of another
// job is refused instead of silently resumed. Writes are atomic: temporary file, fsync, rename, fsync dir.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace e2e {

struct CheckpointFile {
  nlohmann::json meta;  // includes "payload_sha256"
  std::string payload;
};

// Adds payload_sha256 to meta and writes atomically. Throws std::runtime_error on I/O failure (the previous
// checkpoint at `path`, if any, is left untouched).
void write_checkpoint_file(const std::string& path, nlohmann::json meta, const std::string& payload);

// Throws InputError naming the file for a missing, truncated, corrupt or foreign file.
CheckpointFile read_checkpoint_file(const std::string& path);

// Writes bytes to path atomically (temporary file in the same folder, fsync, rename, fsync of the folder).
void write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace e2e
