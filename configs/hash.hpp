// SHA-256 of bytes and files: config hashes, checkpoint integrity, dataset content hashes.
#pragma once

#include <cstdint>
#include <string>

namespace e2e {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  void update(const std::string& bytes) { update(bytes.data(), bytes.size()); }
  std::string hex_digest();  // finishes the hash; 64 lowercase hex digits

 private:
  void compress(const unsigned char* block);
  uint32_t state_[8];
  unsigned char buffer_[64];
  std::size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

std::string sha256_hex(const std::string& bytes);
// Throws InputError naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace e2e
