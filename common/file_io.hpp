// Whole-file reads and crash-safe writes, shared by every layer that reads or publishes files.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace e2e {

// The whole file as bytes. Throws InputError naming the file when it cannot be opened or read.
std::string read_file(const std::string& path);
// The same, or nothing when the file cannot be opened (missing, unreadable): for callers with their own
// message or their own default.
std::optional<std::string> try_read_file(const std::string& path);

// Writes `bytes` to a temporary file next to `path`, fsyncs it, renames it onto `path` and fsyncs the folder:
// a reader or a crash sees the old file or the new one, never a partial one. Creates missing parent folders.
// Throws std::runtime_error naming the file and the system error; the previous file is then untouched.
void write_file_atomically(const std::string& path, const std::string& bytes);

// Flushes a file or a folder (its entries: a rename in it) to disk. Best effort: some filesystems do not let
// a folder be opened, and then nothing is flushed.
void fsync_path(const std::filesystem::path& path);

// Publishes the finished folder `staging` as `target`: an existing `target` is moved aside first, then
// removed once `staging` is in place (and put back when the rename fails).
void replace_folder(const std::filesystem::path& staging, const std::filesystem::path& target);

}  // namespace e2e
