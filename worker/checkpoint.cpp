#include "worker/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "configs/config.hpp"
#include "configs/hash.hpp"

namespace e2e {

namespace {

constexpr char kMagic[] = "E2ECKPT1";
constexpr std::size_t kMagicSize = 8;

void put_u64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t get_u64(const std::string& bytes, std::size_t offset) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i)
    value |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  return value;
}

[[noreturn]] void io_failure(const std::string& what, const std::string& path) {
  throw std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

void fsync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;  // best effort: some filesystems do not allow opening directories
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& bytes) {
  const std::filesystem::path target(path);
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path());
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) io_failure("cannot create", temp);
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      ::unlink(temp.c_str());
      io_failure("cannot write", temp);
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(temp.c_str());
    io_failure("cannot flush", temp);
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    ::unlink(temp.c_str());
    io_failure("cannot rename onto", path);
  }
  fsync_directory(target.parent_path());
}

void write_checkpoint_file(const std::string& path, nlohmann::json meta, const std::string& payload) {
  meta["payload_sha256"] = sha256_hex(payload);
  meta["payload_bytes"] = payload.size();
  const std::string meta_text = meta.dump();
  std::string bytes(kMagic, kMagicSize);
  put_u64(bytes, meta_text.size());
  bytes += meta_text;
  put_u64(bytes, payload.size());
  bytes.reserve(bytes.size() + payload.size());
  bytes += payload;
  write_file_atomically(path, bytes);
}

CheckpointFile read_checkpoint_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open checkpoint");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  if (bytes.size() < kMagicSize + 8 || bytes.compare(0, kMagicSize, kMagic) != 0)
    throw InputError(path + ": not an e2e checkpoint (bad magic)");
  const uint64_t meta_size = get_u64(bytes, kMagicSize);
  const std::size_t payload_header = kMagicSize + 8 + meta_size;
  if (meta_size > bytes.size() || payload_header + 8 > bytes.size())
    throw InputError(path + ": checkpoint is truncated");
  CheckpointFile file;
  try {
    file.meta = nlohmann::json::parse(bytes.substr(kMagicSize + 8, meta_size));
  } catch (const nlohmann::json::exception&) {
    throw InputError(path + ": checkpoint header is corrupt");
  }
  const uint64_t payload_size = get_u64(bytes, payload_header);
  if (payload_size != bytes.size() - payload_header - 8)
    throw InputError(path + ": checkpoint is truncated (payload " +
                     std::to_string(bytes.size() - payload_header - 8) + " of " +
                     std::to_string(payload_size) + " bytes)");
  file.payload = bytes.substr(payload_header + 8);
  if (!file.meta.contains("payload_sha256") || sha256_hex(file.payload) != file.meta["payload_sha256"])
    throw InputError(path + ": checkpoint is corrupt (SHA-256 of the payload does not match its header)");
  return file;
}

}  // namespace e2e
