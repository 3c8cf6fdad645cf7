// The sparse topology of a network: one bit per kernel of every masked tensor. A plain value type (no
// LibTorch) shared by data-parallel sync, checkpoints and the experiment store.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace e2e {

// One masked tensor: rows × cols kernels ((out,in) for Conv3d, (in,out) for ConvTranspose3d), row-major.
struct TensorMask {
  std::string name;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint64_t> words;  // bit k of the row-major index k

  TensorMask() = default;
  TensorMask(std::string name, int64_t rows, int64_t cols);

  int64_t size() const { return rows * cols; }
  bool get(int64_t index) const { return (words[index >> 6] >> (index & 63)) & 1u; }
  void set(int64_t index, bool on);
  int64_t count() const;
  bool operator==(const TensorMask& other) const;
};

class Topology {
 public:
  std::vector<TensorMask> tensors;

  int64_t active() const;
  int64_t total() const;

  // Compact little-endian bytes: magic "E2ET", version, then per tensor name, shape and packed bits.
  std::string serialize() const;
  // Throws std::invalid_argument on truncated or malformed input.
  static Topology deserialize(const std::string& bytes);

  // FNV-1a 64 of the serialized bytes: identical on every machine, run and rank.
  uint64_t hash() const;
  std::string hash_hex() const;

  bool operator==(const Topology& other) const { return tensors == other.tensors; }
  bool operator!=(const Topology& other) const { return !(*this == other); }
};

}  // namespace e2e
