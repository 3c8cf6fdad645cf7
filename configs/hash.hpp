// SHA-256 of bytes and files: config hashes, checkpoint integrity, dataset content hashes. The digest comes
// from OpenSSL's libcrypto (EVP); this header keeps OpenSSL out of its includers.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX

namespace e2e {

// An incremental SHA-256: update() any number of times, then hex_digest() once.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  void update(const std::string& bytes) { update(bytes.data(), bytes.size()); }
  std::string hex_digest();  // finishes the hash; 64 lowercase hex digits

 private:
  struct FreeContext {
    void operator()(evp_md_ctx_st* context) const;
  };
  std::unique_ptr<evp_md_ctx_st, FreeContext> context_;
};

std::string sha256_hex(const std::string& bytes);
// Throws InputError naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace e2e
